#include <gtest/gtest.h>

#include <set>

#include "capture/store_format.h"
#include "capture/store_reader.h"
#include "capture/verify.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "store_test_util.h"

namespace actcap {
namespace {

using namespace store_test;
using json = nlohmann::json;

// What a value becomes once stored in `dtype` and read back as F32.
std::vector<float> rounded(const Tensor& t, DType dtype) {
  std::vector<uint8_t> stored(size_t(t.numel()) * dtype_size(dtype));
  convert_from_f32(t.f32(), dtype, stored.data(), size_t(t.numel()));
  std::vector<float> back(size_t(t.numel()));
  convert_to_f32(stored.data(), dtype, back.data(), back.size());
  return back;
}

class StoreRoundTrip : public ::testing::TestWithParam<std::tuple<StoreLayout, DType>> {};

TEST_P(StoreRoundTrip, ReadsBackEveryRecordAndVerifies) {
  const auto [layout, dtype] = GetParam();
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  const int64_t n = 11;
  const auto summary = write_store(options_for(dir, layout, dtype), n);

  EXPECT_EQ(summary.records, n);
  int64_t tokens = 0, rows = 0;
  for (int64_t r = 0; r < n; ++r) tokens += rows_of(r) + 2, rows += rows_of(r);
  EXPECT_EQ(summary.tokens, tokens);
  EXPECT_GT(summary.shards, 2);
  EXPECT_EQ(summary.sites.at(kSites[0]).rows, rows);
  EXPECT_EQ(summary.sites.at(kSites[0]).shape, (Shape{-1, 8}));
  EXPECT_EQ(summary.sites.at(kSites[1]).shape, (Shape{-1, 2, 3}));
  EXPECT_EQ(summary.sites.at(kSites[1]).bytes, uint64_t(rows * 6) * dtype_size(dtype));

  StoreReader store(dir);
  EXPECT_EQ(store.layout(), layout);
  EXPECT_EQ(store.dtype(), dtype);
  EXPECT_EQ(store.sites(), kSites);
  EXPECT_TRUE(store.manifest()["complete"].get<bool>());
  EXPECT_EQ(store.manifest()["model"]["model_type"], "gpt2");
  EXPECT_EQ(store.manifest()["command_line"], "actcap capture --out x");
  EXPECT_EQ(int64_t(store.num_shards()), summary.shards);
  ASSERT_EQ(int64_t(store.records().size()), n);
  for (int64_t r = 0; r < n; ++r) {
    const json& record = store.record(r);
    const RecordInfo info = info_of(r);
    EXPECT_EQ(record["id"], info.id);
    EXPECT_EQ(record["token_ids"].get<std::vector<int32_t>>(), info.token_ids);
    EXPECT_EQ(record["positions"].get<std::vector<int64_t>>(), info.positions);
    EXPECT_EQ(record["n_prompt"], info.n_prompt);
    EXPECT_EQ(record["text"], info.extra["text"]);
    EXPECT_EQ(record["generated_text"], " g");
    const auto sites = sites_of(r);
    for (const auto& [site, expected] : sites) {
      const TensorView view = store.view(r, site);
      EXPECT_EQ(view.dtype, dtype);
      EXPECT_EQ(view.shape, expected.shape());
      const Tensor got = store.read_f32(r, site);
      const auto want = rounded(expected, dtype);
      ASSERT_EQ(got.numel(), int64_t(want.size()));
      EXPECT_EQ(0, std::memcmp(got.f32(), want.data(), want.size() * 4)) << "record " << r << " " << site;
    }
  }
  // The byte offsets of the index address the same bytes in the shard file directly.
  const store::MetadataLine& m = store.metadata()[3];
  const std::string shard = read_file((fs::path(dir) / m.shard).string());
  const auto offsets = m.offsets[0];
  const TensorView view = store.view(3, kSites[0]);
  ASSERT_EQ(offsets.second - offsets.first, view.nbytes());
  EXPECT_EQ(0, std::memcmp(shard.data() + offsets.first, view.data, view.nbytes()));

  const StoreCheck check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
  EXPECT_EQ(check.records, n);
  EXPECT_EQ(check.rows, rows);
}

INSTANTIATE_TEST_SUITE_P(LayoutsAndDtypes, StoreRoundTrip,
                         ::testing::Combine(::testing::Values(StoreLayout::PerRecord, StoreLayout::TokenStream),
                                            ::testing::Values(DType::F32, DType::BF16, DType::F16)));

int64_t record_bytes(int64_t record, StoreLayout layout, DType dtype) {
  int64_t elements = rows_of(record) * (8 + 6);
  return elements * int64_t(dtype_size(dtype)) + (layout == StoreLayout::TokenStream ? rows_of(record) * 16 : 0);
}

TEST(StoreShards, SplitAtTheCapWithOversizedRecordsAlone) {
  for (StoreLayout layout : {StoreLayout::PerRecord, StoreLayout::TokenStream}) {
    TempDir tmp;
    const std::string dir = tmp.sub("store");
    const uint64_t cap = 250;
    write_store(options_for(dir, layout, DType::F32, cap), 20);
    StoreReader store(dir);
    // Replays the rule: a record joins the current shard unless that would pass the cap.
    std::vector<std::vector<int64_t>> expected(1);
    int64_t in_shard = 0;
    for (int64_t r = 0; r < 20; ++r) {
      const int64_t bytes = record_bytes(r, layout, DType::F32);
      if (!expected.back().empty() && uint64_t(in_shard + bytes) > cap) expected.emplace_back(), in_shard = 0;
      expected.back().push_back(r);
      in_shard += bytes;
    }
    ASSERT_EQ(store.num_shards(), expected.size());
    size_t line = 0;
    bool saw_oversized = false;
    for (size_t k = 0; k < expected.size(); ++k) {
      uint64_t data = 0;
      for (const auto& name : store.shard(k).names()) {
        const auto& e = store.shard(k).entry(name);
        data += e.end - e.begin;
      }
      if (expected[k].size() > 1) EXPECT_LE(data, cap) << store.shard_file(k);
      else saw_oversized |= data > cap;
      EXPECT_EQ(store.shard(k).metadata().at("records"), std::to_string(expected[k].size()));
      for (int64_t r : expected[k]) {
        EXPECT_EQ(store.metadata()[line].record, r);
        EXPECT_EQ(store.metadata()[line].shard, store::shard_file_name(int64_t(k)));
        ++line;
      }
    }
    EXPECT_TRUE(saw_oversized) << "the data should include a record larger than the cap";
  }
}

TEST(StoreTokenStream, DropsBosAndSpecialTokensAndIndexesRows) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  StoreOptions options = options_for(dir, StoreLayout::TokenStream, DType::F32, 1 << 20);
  options.drop_bos = true;
  options.bos_token_id = kBos;
  options.drop_token_ids = {3};
  write_store(options, 9);
  StoreReader store(dir);
  ASSERT_EQ(store.num_shards(), 1u);
  std::vector<int64_t> expected_index;
  int64_t row = 0;
  for (int64_t r = 0; r < 9; ++r) {
    const RecordInfo info = info_of(r);
    std::vector<int64_t> kept;
    for (int64_t p : info.positions)
      if (!(p == 0 && info.token_ids[0] == kBos) && info.token_ids[size_t(p)] != 3) kept.push_back(p);
    EXPECT_EQ(store.record(r)["positions"].get<std::vector<int64_t>>(), kept) << r;
    EXPECT_EQ(store.metadata()[size_t(r)].span_begin, row);
    EXPECT_EQ(store.metadata()[size_t(r)].span_end, row + int64_t(kept.size()));
    row += int64_t(kept.size());
    const auto sites = sites_of(r);
    const Tensor got = store.read_f32(r, kSites[0]);
    ASSERT_EQ(got.shape(), (Shape{int64_t(kept.size()), 8}));
    for (size_t k = 0; k < kept.size(); ++k) {
      EXPECT_EQ(0, std::memcmp(got.f32() + k * 8, sites[0].second.f32() + kept[k] * 8, 32)) << r;
      expected_index.push_back(r);
      expected_index.push_back(kept[k]);
    }
  }
  const TensorView index = store.shard(0).view("row_index");
  EXPECT_EQ(index.dtype, DType::I64);
  ASSERT_EQ(index.shape, (Shape{row, 2}));
  EXPECT_EQ(std::vector<int64_t>(static_cast<const int64_t*>(index.data), static_cast<const int64_t*>(index.data) + 2 * row),
            expected_index);
  EXPECT_EQ(store.shard(0).view(kSites[1]).shape, (Shape{row, 2, 3}));
  EXPECT_LT(row, 9 * 3) << "some rows should have been dropped";
  const StoreCheck check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
}

TEST(StoreMemory, BufferNeverPassesTheCapOrOneRecord) {
  for (StoreLayout layout : {StoreLayout::PerRecord, StoreLayout::TokenStream}) {
    TempDir tmp;
    const uint64_t cap = 250;
    StoreWriter writer(options_for(tmp.sub("store"), layout, DType::F32, cap), test_manifest());
    for (int64_t r = 0; r < 60; ++r) {
      writer.add_record(info_of(r), sites_of(r));
      const uint64_t record = uint64_t(record_bytes(r, layout, DType::F32));
      EXPECT_LE(writer.buffered_bytes(), std::max(cap, record)) << r;
    }
    EXPECT_GT(writer.summary().shards, 10);
    writer.finish();
    EXPECT_EQ(writer.buffered_bytes(), 0u);
  }
}

TEST(StoreWriterErrors, RefusesBadUseWithOneLineErrors) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  write_store(options_for(dir), 3);
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message([&] { StoreWriter w(options_for(dir), test_manifest()); }).find("already holds a capture store"),
            std::string::npos);
  StoreOptions resume = options_for(dir, StoreLayout::PerRecord, DType::BF16);
  resume.resume = true;
  EXPECT_NE(message([&] { StoreWriter w(resume, test_manifest()); }).find("cannot resume: dtype: the store has \"F32\", this run \"BF16\""),
            std::string::npos);
  resume.dtype = DType::F32;
  json other = test_manifest();
  other["seed"] = 8;
  EXPECT_NE(message([&] { StoreWriter w(resume, other); }).find("cannot resume: seed: the store has 7, this run 8"), std::string::npos);

  StoreWriter writer(options_for(tmp.sub("other")), test_manifest());
  writer.add_record(info_of(2), sites_of(2));
  EXPECT_NE(message([&] { writer.add_record(info_of(1), sites_of(1)); }).find("increasing order"), std::string::npos);
  auto swapped = sites_of(3);
  std::swap(swapped[0], swapped[1]);
  EXPECT_NE(message([&] { writer.add_record(info_of(3), swapped); }).find("has site 'blocks.0.hook_attn_out' where"),
            std::string::npos);
  StoreOptions bad = options_for(tmp.sub("bad"));
  bad.dtype = DType::I32;
  EXPECT_NE(message([&] { StoreWriter w(bad, test_manifest()); }).find("must be F32, BF16 or F16"), std::string::npos);
  bad = options_for(tmp.sub("bad"));
  bad.drop_bos = true;
  EXPECT_NE(message([&] { StoreWriter w(bad, test_manifest()); }).find("needs the token_stream layout"), std::string::npos);
}

TEST(StoreWriterErrors, TokenStreamNeedsOneRowShape) {
  TempDir tmp;
  StoreWriter writer(options_for(tmp.sub("store"), StoreLayout::TokenStream), test_manifest());
  writer.add_record(info_of(0), sites_of(0));
  auto sites = sites_of(1);
  sites[0].second = Tensor({rows_of(1), 9});
  EXPECT_THROW(writer.add_record(info_of(1), sites), Error);
}

TEST(StoreWriterErrors, UnwritableFolderNamesTheFile) {
  TempDir tmp;
  write_file_atomic(tmp.sub("file"), "x");
  try {
    StoreWriter w(options_for(tmp.sub("file") + "/store"), test_manifest());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(tmp.sub("file") + "/store: cannot create the output folder"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace actcap
