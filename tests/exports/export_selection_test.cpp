// What an export covers and how it lays it out: record and site selection, the Rows and Single layouts of
// every site shape (attention patterns included), overflow-checked sizes, and the export folder's atomicity.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "capture/store_reader.h"
#include "capture/store_writer.h"
#include "core/atomic_file.h"
#include "export/export_folder.h"
#include "export/output_names.h"
#include "export/site_arrays.h"
#include "export/store_selection.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;
const std::string kPattern = "blocks.0.attn.hook_pattern";

// Three records of 2, 3 and 4 tokens, all positions kept: hidden_states.0 [T, 2] and an attention pattern
// [H=2, T, T] whose value encodes (record, head, query, key).
void write_store(const std::string& dir) {
  StoreOptions options;
  options.dir = dir;
  options.sites = {"hidden_states.0", kPattern};
  StoreWriter writer(options, {{"model", {{"path", "m"}}}});
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t t = r + 2;
    RecordInfo info;
    info.record = r;
    info.id = fmt::format("r{}", r);
    for (int64_t p = 0; p < t; ++p) {
      info.token_ids.push_back(int32_t(p + 10));
      info.positions.push_back(p);
    }
    info.n_prompt = int(t);
    Tensor hidden({t, 2}), pattern({2, t, t});
    for (int64_t i = 0; i < hidden.numel(); ++i) hidden.f32()[i] = float(r * 100 + i);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t q = 0; q < t; ++q)
        for (int64_t k = 0; k < t; ++k) pattern.f32()[(h * t + q) * t + k] = float(r * 1000 + h * 100 + q * 10 + k + 1);
    std::vector<std::pair<std::string, Tensor>> sites;
    sites.emplace_back("hidden_states.0", std::move(hidden));
    sites.emplace_back(kPattern, std::move(pattern));
    writer.add_record(info, sites);
  }
  writer.finish();
}

float value_at(const SiteArray& array, int64_t flat) {
  for (const TensorView& piece : array.pieces) {
    if (flat < piece.numel()) return static_cast<const float*>(piece.data)[flat];
    flat -= piece.numel();
  }
  ADD_FAILURE() << "flat index past the array";
  return 0;
}

class ExportSelection : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("export_selection");
    write_store((dir_ / "store").string());
    store_ = std::make_unique<StoreReader>((dir_ / "store").string());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::unique_ptr<StoreReader> store_;
};

TEST_F(ExportSelection, RecordsAreValidatedAndNamed) {
  EXPECT_EQ(select_records(*store_, "all", "--records"), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(select_records(*store_, "2,0-1,1", "--records"), (std::vector<int64_t>{0, 1, 2}));
  test::expect_one_line_error([&] { select_records(*store_, "9", "--record"); }, {"no record 9", "records 0-2"});
  test::expect_one_line_error([&] { select_records(*store_, "-1", "--records"); }, {"--records -1", "0,2,5-7"});
  test::expect_one_line_error([&] { select_records(*store_, "2-1", "--records"); }, {"empty"});
  test::expect_one_line_error([&] { parse_record_number("-1", "--record"); }, {"--record -1"});
  EXPECT_EQ(parse_record_number("2", "--record"), 2);
}

TEST_F(ExportSelection, SitesByGlobInForwardOrder) {
  EXPECT_EQ(select_sites(*store_, {"blocks.*", "hidden_states.0"}), (std::vector<std::string>{"hidden_states.0", kPattern}));
  EXPECT_EQ(select_sites(*store_, {"blocks.*,hidden*"}).size(), 2u);
  EXPECT_EQ(select_sites(*store_, {"all"}).size(), 2u);
  test::expect_one_line_error([&] { select_sites(*store_, {"logits"}); }, {"\"logits\" matches no site of the store", "hidden_states.0"});
}

TEST_F(ExportSelection, AttentionPatternRowsAreQueriesWithKeysPadded) {
  const SiteArray rows = gather_site(*store_, kPattern, {0, 2}, RecordLayout::Rows);
  EXPECT_EQ(rows.shape, (Shape{6, 2, 4}));  // 2 + 4 query rows, 2 heads, the longest record's 4 keys
  EXPECT_EQ(rows.axes, (std::vector<std::string>{"row", "head", "key_position"}));
  EXPECT_EQ(value_at(rows, (1 * 2 + 1) * 4 + 0), 0 * 1000 + 100 + 10 + 0 + 1);  // record 0, query 1, head 1, key 0
  EXPECT_EQ(value_at(rows, (1 * 2 + 1) * 4 + 2), 0);                            // past record 0's 2 tokens
  EXPECT_EQ(value_at(rows, ((2 + 3) * 2 + 0) * 4 + 3), 2 * 1000 + 30 + 3 + 1);    // record 2, query 3, head 0, key 3
  const SiteArray one = gather_site(*store_, kPattern, {1}, RecordLayout::Single);
  EXPECT_EQ(one.shape, (Shape{1, 2, 3, 3}));  // HF's [batch, heads, queries, keys]
  EXPECT_EQ(one.axes, (std::vector<std::string>{"batch", "head", "query_position", "key_position"}));
  EXPECT_EQ(value_at(one, (1 * 3 + 2) * 3 + 1), 1000 + 100 + 20 + 1 + 1);
  const SiteArray hidden = gather_site(*store_, "hidden_states.0", {0, 1, 2}, RecordLayout::Rows);
  EXPECT_EQ(hidden.shape, (Shape{9, 2}));
  EXPECT_EQ(value_at(hidden, 2 * 2 + 1), 100 + 1);  // row 2 = record 1, position 0
  EXPECT_EQ(gather_row_index(*store_, {1, 2})[0], 1);
  EXPECT_EQ(gather_row_index(*store_, {1, 2}).size(), 2u * 7);
}

TEST(ExportSizes, OverflowingShapesAreErrors) {
  EXPECT_EQ(checked_num_elements({2, 3, 4}, "x"), 24);
  EXPECT_EQ(checked_num_elements({}, "x"), 1);
  test::expect_one_line_error([] { checked_num_elements({int64_t(1) << 62, 4, 1}, "shard.safetensors"); },
                              {"shard.safetensors", "[4611686018427387904, 4, 1]"});
  test::expect_one_line_error([] { checked_num_elements({3, -1}, "x"); }, {"[3, -1]"});
  test::expect_one_line_error([] { checked_num_bytes({int64_t(1) << 61, 2}, DType::F32, "x"); }, {"too large"});
}

TEST(ExportNames, LayerNamesSayWhichHiddenState) {
  EXPECT_EQ(output_name("hidden_states.0", OutputNaming::Layer), "embedding");
  EXPECT_EQ(output_name("hidden_states.3", OutputNaming::Layer), "layer_2");
  EXPECT_EQ(output_name("hidden_states.3", OutputNaming::Site), "hidden_states.3");
  EXPECT_EQ(output_name("blocks.0.hook_resid_post", OutputNaming::Layer), "blocks.0.hook_resid_post");
  EXPECT_EQ(hidden_state_chain({"hidden_states.1", "hidden_states.0", "hidden_states.3"}),
            (std::vector<std::string>{"hidden_states.0", "hidden_states.1"}));
}

TEST(ExportFolderTest, RenamedIntoPlaceOnlyWhenComplete) {
  const fs::path dir = test::temp_dir("export_folder");
  const std::string out = (dir / "out").string();
  {
    ExportFolder folder(out + "/");
    write_file_atomic(folder.path("a.txt"), "partial");
    EXPECT_FALSE(fs::exists(out));
  }  // abandoned (an error): nothing under either name
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::is_empty(dir));
  {
    ExportFolder folder(out);
    write_file_atomic(folder.path("a.txt"), "one");
    folder.commit({{"export", "test"}});
  }
  EXPECT_EQ(read_file(out + "/a.txt"), "one");
  EXPECT_NE(read_file(out + "/actcap_export.json").find("\"a.txt\""), std::string::npos);
  {  // a rerun replaces the earlier export
    ExportFolder folder(out);
    write_file_atomic(folder.path("b.txt"), "two");
    folder.commit({{"export", "test"}});
  }
  EXPECT_FALSE(fs::exists(out + "/a.txt"));
  EXPECT_EQ(read_file(out + "/b.txt"), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);

  // Temporaries of a dead process go; those of a live one (pid 1) stay.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  fs::create_directories(out + ".tmp-" + std::to_string(child));
  fs::create_directories(out + ".old-" + std::to_string(child));
  fs::create_directories(out + ".tmp-1");
  { ExportFolder folder(out); }
  EXPECT_FALSE(fs::exists(out + ".tmp-" + std::to_string(child)));
  EXPECT_FALSE(fs::exists(out + ".old-" + std::to_string(child)));
  EXPECT_TRUE(fs::exists(out + ".tmp-1"));

  fs::create_directories(dir / "mine");
  write_file_atomic((dir / "mine" / "notes.txt").string(), "keep");
  test::expect_one_line_error([&] { ExportFolder folder((dir / "mine").string()); }, {"mine", "not an actcap export"});
  test::expect_one_line_error([&] { ExportFolder folder("."); }, {"--out ."});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace actcap
