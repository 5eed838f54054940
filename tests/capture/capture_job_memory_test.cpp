// The in-memory side of CaptureJob: records handed to the observer (record_captured) with or without a store,
// and models the caller loaded once.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "capture/capture_job.h"
#include "capture/store_reader.h"
#include "models/model.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(ACTCAP_TEST_DATA) + "/reference/tiny-gpt2";

struct Captured {
  int64_t record;
  std::vector<int32_t> token_ids;
  std::vector<int64_t> positions;
  std::string generated_text;
  std::vector<std::pair<std::string, Tensor>> sites;
};

// Keeps every record's activations, moved out of the job.
class Collector : public CaptureObserver {
 public:
  std::vector<Captured> records;
  void record_captured(const RecordInfo& info, std::vector<std::pair<std::string, Tensor>>& sites) override {
    records.push_back({info.record, info.token_ids, info.positions,
                       info.extra.value("generated_text", std::string()), std::move(sites)});
  }
};

CaptureJob job_for(const std::string& out) {
  CaptureJob job;
  job.models = {kModel};
  job.sources = {{InputSource::Kind::Prompt, "Hello world"}, {InputSource::Kind::InputIds, "15496, 995, 11"}};
  job.sites = "blocks.*.hook_resid_post,blocks.0.attn.hook_pattern,logits";
  job.max_new_tokens = 3;
  job.out = out;
  return job;
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

TEST(CaptureJobMemory, RecordsInMemoryEqualTheStoreBitForBit) {
  fs::path tmp = test::temp_dir("capture_memory");
  CaptureJob stored_job = job_for((tmp / "store").string());
  Collector alongside;  // the hook also sees the records of a job that writes a store
  run_capture(stored_job, alongside);
  StoreReader store((tmp / "store").string());

  CaptureJob memory_job = job_for((tmp / "nothing").string());
  memory_job.write_store = false;
  Collector memory;
  auto summaries = run_capture(memory_job, memory);
  EXPECT_FALSE(fs::exists(tmp / "nothing")) << "an in-memory capture wrote files";
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0]["records_this_run"], 2);

  ASSERT_EQ(memory.records.size(), 2u);
  ASSERT_EQ(alongside.records.size(), 2u);
  for (int64_t r = 0; r < 2; ++r) {
    const Captured& captured = memory.records[size_t(r)];
    EXPECT_EQ(captured.record, r);
    EXPECT_EQ(captured.token_ids, store.record(r)["token_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(captured.positions, store.record(r)["positions"].get<std::vector<int64_t>>());
    EXPECT_EQ(captured.generated_text, store.record(r)["generated_text"].get<std::string>());
    ASSERT_EQ(captured.sites.size(), store.sites().size());
    for (size_t s = 0; s < captured.sites.size(); ++s) {
      const auto& [site, tensor] = captured.sites[s];
      EXPECT_EQ(site, store.sites()[s]);
      EXPECT_TRUE(same_bytes(tensor.view(), store.view(r, site))) << "record " << r << " " << site;
      EXPECT_TRUE(same_bytes(alongside.records[size_t(r)].sites[s].second.view(), store.view(r, site)));
    }
  }
  fs::remove_all(tmp);
}

TEST(CaptureJobMemory, UsesAModelTheCallerLoaded) {
  CaptureJob job = job_for("");
  job.write_store = false;
  Collector fresh;
  run_capture(job, fresh);

  std::shared_ptr<Model> model = Model::load(kModel);
  job.loaded_models[kModel] = model;
  Collector reused;
  run_capture(job, reused);
  run_capture(job, reused);  // twice with one model: nothing of the first run stays in it
  EXPECT_EQ(model.use_count(), 2) << "the job kept or dropped the caller's model";
  ASSERT_EQ(reused.records.size(), 4u);
  for (size_t i = 0; i < reused.records.size(); ++i) {
    const auto& expected = fresh.records[i % 2].sites;
    ASSERT_EQ(reused.records[i].sites.size(), expected.size());
    for (size_t s = 0; s < expected.size(); ++s)
      EXPECT_TRUE(same_bytes(reused.records[i].sites[s].second.view(), expected[s].second.view()));
  }
}

TEST(CaptureJobMemory, AStoreStillNeedsAnOutputFolder) {
  CaptureJob job = job_for("");
  Collector collector;
  test::expect_one_line_error([&] { run_capture(job, collector); }, {"--out"});
}

}  // namespace
}  // namespace actcap
