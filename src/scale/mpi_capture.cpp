// The MPI build's rank of a capture (see mpi_capture.h).
#include "scale/mpi_capture.h"

// The C API only: mpi.h would otherwise pull in the long-removed C++ bindings, which libmpi no longer exports.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "capture/merge.h"
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

  int rank = 0, size = 1, local_rank = 0, local_size = 1;
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
  nlohmann::ordered_json part_summary;
  try {
    auto observer = observer_for(mpi.rank);
    auto summaries = run_capture(job, *observer);
    if (!summaries.empty()) part_summary = summaries.front();
  } catch (const std::exception& e) {
    problem = e.what();
  }
  if (int failed = mpi.any_failed(!problem.empty())) {
    if (!problem.empty()) fail("rank {}: {}", mpi.rank, problem);
    fail("rank {}: stopped: rank {} failed (its part is resumable: rerun with --resume)", mpi.rank, failed - 1);
  }

  // 3. Rank 0 merges the parts and removes them (the merged store holds their shards as hard links).
  MergeSummary merged;
  if (mpi.rank == 0) {
    try {
      std::vector<std::string> parts;
      for (int k = 0; k < mpi.size; ++k) parts.push_back(rank_dir(out, k));
      merged = merge_parts(parts, out);
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  if (int failed = mpi.any_failed(!problem.empty())) {
    if (mpi.rank + 1 == failed) fail("merging the parts: {}", problem);
    fail("rank {}: stopped: rank 0 could not merge the parts", mpi.rank);
  }
  if (mpi.rank != 0) return {};
  nlohmann::ordered_json summary = {{"out", out},
                                    {"ranks", mpi.size},
                                    {"records", merged.records},
                                    {"shards", merged.shards},
                                    {"shards_linked", merged.linked},
                                    {"shards_copied", merged.copied},
                                    {"rank_0", part_summary}};
  return {summary};
}

}  // namespace actcap::scale
