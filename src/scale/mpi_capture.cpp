// The MPI build's rank of a capture (see mpi_capture.h).
#include "scale/mpi_capture.h"

// The C API only: mpi.h would otherwise pull in the long-removed C++ bindings, which libmpi no longer exports.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "capture/merge.h"
#include "capture/store_format.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace actcap::scale {

namespace fs = std::filesystem;

namespace {

// MPI_Init on construction, MPI_Finalize on every way out, so that a failing rank still leaves cleanly.
struct MpiSession {
  MpiSession() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized && MPI_Init(nullptr, nullptr) != MPI_SUCCESS) fail("mpirun: MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // The ranks sharing this node's memory, numbered 0, 1, ...: which GPU and how many cores each takes.
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
  }
  ~MpiSession() { MPI_Finalize(); }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Every rank learns whether any failed: 0 if none, else 1 + the highest failing rank.
  int any_failed(bool failed) const {
    int mine = failed ? rank + 1 : 0, worst = 0;
    MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
  }

  // Rank 0 receives every rank's text, in rank order; the others get nothing.
  std::vector<std::string> gather(const std::string& text) const {
    const int length = int(text.size());
    std::vector<int> lengths(rank == 0 ? size_t(size) : 0), offsets(lengths.size(), 0);
    MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
    for (size_t k = 1; k < lengths.size(); ++k) offsets[k] = offsets[k - 1] + lengths[k - 1];
    std::string all(lengths.empty() ? 0 : size_t(offsets.back() + lengths.back()), '\0');
    MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, 0, MPI_COMM_WORLD);
    std::vector<std::string> texts;
    for (size_t k = 0; k < lengths.size(); ++k) texts.push_back(all.substr(size_t(offsets[k]), size_t(lengths[k])));
    return texts;
  }

  int rank = 0, size = 1, local_rank = 0, local_size = 1;
};

// Passes a part's progress on, but not its summary: rank 0 reports the merged store's instead.
class PartObserver : public CaptureObserver {
 public:
  explicit PartObserver(CaptureObserver& inner) : inner_(inner) {}
  void stage(const std::string& model, const std::string& what) override { inner_.stage(model, what); }
  void capture_started(const Start& start) override { inner_.capture_started(start); }
  void generation_started(int64_t record, const std::vector<int32_t>& prompt) override {
    inner_.generation_started(record, prompt);
  }
  void token(int64_t record, int32_t token) override { inner_.token(record, token); }
  void record_stored(const Stored& record) override { inner_.record_stored(record); }

 private:
  CaptureObserver& inner_;
};

std::string rank_dir(const std::string& out, int rank) {
  return (fs::path(parts_folder(out)) / fmt::format("rank-{}", rank)).string();
}

// Rank 0's look at the job and STORE before anything runs: true when a --resume finds it already merged.
bool check_job(const CaptureJob& job) {
  if (job.models.size() != 1) fail("mpirun: capture one --model at a time (each model is its own job)");
  if (job.shard) fail("mpirun splits the records among its ranks: leave out --shard");
  if (job.device.find(',') != std::string::npos || job.device.ends_with(":all"))
    fail("mpirun: give --device cuda (each rank takes its node-local GPU), not {}", job.device);
  if (!job.write_store) fail("mpirun: a capture under MPI writes a store (--out)");
  if (reads_stdin(job.sources)) fail("mpirun: prompts from stdin reach rank 0 only: give them as a file");
  return already_merged(job.out, job.resume);
}

}  // namespace

std::vector<nlohmann::ordered_json> run_capture_mpi(
    CaptureJob job, const std::function<std::unique_ptr<CaptureObserver>(int rank)>& observer_for) {
  MpiSession mpi;
  const auto start = std::chrono::steady_clock::now();
  const std::string out = job.out;

  // 1. Rank 0 checks the job and STORE; every rank learns the outcome.
  int merged_before = 0;
  std::string problem;
  if (mpi.rank == 0) {
    try {
      merged_before = check_job(job) ? 1 : 0;
    } catch (const Error& e) {
      problem = e.what();
    }
  }
  if (int failed = mpi.any_failed(!problem.empty())) {
    if (mpi.rank + 1 == failed) fail("{}", problem);
    fail("rank {}: stopped: rank {} refused the job", mpi.rank, failed - 1);
  }
  MPI_Bcast(&merged_before, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (merged_before) {
    if (mpi.rank == 0) std::fprintf(stderr, "%s: already complete (merged from its parts): nothing to resume\n", out.c_str());
    return {};
  }

  // 2. Each rank captures its part.
  job.shard = ShardSpec{mpi.rank, mpi.size};
  job.out = rank_dir(out, mpi.rank);
  if (job.device == "cuda") job.device = fmt::format("cuda:{}", mpi.local_rank);
  if (job.threads == 0) job.threads = std::max(1, int(std::thread::hardware_concurrency()) / mpi.local_size);
  const auto observer = observer_for(mpi.rank);
  nlohmann::ordered_json part_summary;
  try {
    PartObserver part_observer(*observer);
    part_summary = run_capture(job, part_observer).front();
  } catch (const std::exception& e) {
    problem = e.what();
  }
  if (int failed = mpi.any_failed(!problem.empty())) {
    if (!problem.empty()) fail("rank {}: {}", mpi.rank, problem);
    fail("rank {}: stopped: rank {} failed (its part is resumable: rerun with --resume)", mpi.rank, failed - 1);
  }

  // 3. Rank 0 merges the parts and removes them (the merged store holds their shards as hard links), and writes
  // the summary of the whole run.
  const std::vector<std::string> part_summaries = mpi.gather(part_summary.dump());
  nlohmann::ordered_json summary;
  if (mpi.rank == 0) {
    try {
      std::vector<std::string> parts;
      std::vector<nlohmann::ordered_json> summaries;
      for (int k = 0; k < mpi.size; ++k) {
        parts.push_back(rank_dir(out, k));
        summaries.push_back(nlohmann::ordered_json::parse(part_summaries[size_t(k)]));
      }
      const MergeSummary merged = merge_parts(parts, out);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      summary = merged_capture_summary(summaries, merged, out, seconds);
      summary["ranks"] = mpi.size;
      write_file_atomic((fs::path(out) / store::kSummaryFile).string(), summary.dump(2) + "\n");
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  if (int failed = mpi.any_failed(!problem.empty())) {
    if (mpi.rank + 1 == failed) fail("merging the parts: {}", problem);
    fail("rank {}: stopped: rank 0 could not merge the parts", mpi.rank);
  }
  if (mpi.rank != 0) return {};
  observer->model_finished(summary);
  return {summary};
}

}  // namespace actcap::scale
