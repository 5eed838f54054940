#include "capture/inputs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/sha256.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

class CaptureInputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("actcap-inputs-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& contents) {
    auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }
  static std::vector<InputRecord> read_all(const InputSet& set) {
    std::vector<InputRecord> records;
    auto cursor = set.cursor();
    while (auto record = cursor.next()) records.push_back(std::move(*record));
    return records;
  }
  fs::path dir_;
};

TEST_F(CaptureInputs, ParsesTokenIds) {
  EXPECT_EQ(parse_token_ids("1,2,3", "x"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_token_ids(" 50256 , 7", "x"), (std::vector<int32_t>{50256, 7}));
  // What `actcap tokenize` prints.
  EXPECT_EQ(parse_token_ids("[15496,995]", "x"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(parse_token_ids(" [15496, 995] ", "x"), (std::vector<int32_t>{15496, 995}));
  for (const char* bad : {"", "1,,2", "1,a", "-1", "1,2,", "99999999999", "1.5", "[1,2", "[]", "[[1]]"})
    EXPECT_THROW(parse_token_ids(bad, "--input-ids"), Error) << bad;
}

TEST_F(CaptureInputs, KeepsCommandLineOrderAcrossSources) {
  auto prompts = write("p.txt", "first line\r\n\nsecond line\n");
  auto jsonl = write("d.jsonl",
                     "{\"text\": \"q1\", \"id\": \"a\", \"answer\": \"Paris\"}\n"
                     "\n{\"input_ids\": [5, 6], \"id\": 7, \"extra\": true}\n");
  fs::create_directories(dir_ / "samples");
  write("samples/b.txt", "sample b\n");
  write("samples/a.txt", "sample a");
  write("samples/ignored.md", "not a sample");
  InputSet set({{InputSource::Kind::Prompt, "hello"},
                {InputSource::Kind::PromptsFile, prompts},
                {InputSource::Kind::InputIds, "1,2"},
                {InputSource::Kind::Jsonl, jsonl},
                {InputSource::Kind::Directory, (dir_ / "samples").string()}});
  ASSERT_EQ(set.size(), 8);
  EXPECT_TRUE(set.has_text());
  EXPECT_FALSE(InputSet({{InputSource::Kind::InputIds, "3"}}).has_text());
  auto records = read_all(set);
  ASSERT_EQ(records.size(), 8u);
  EXPECT_EQ(*records[0].text, "hello");
  EXPECT_EQ(*records[1].text, "first line");
  EXPECT_EQ(records[1].origin, prompts + ":1");
  EXPECT_EQ(*records[2].text, "second line");
  EXPECT_EQ(records[2].origin, prompts + ":3");
  // Ids are line numbers: the blank line 2 is skipped but counted, so "second line" keeps id p.txt:3.
  EXPECT_EQ(records[1].id, "p.txt:1");
  EXPECT_EQ(records[2].id, "p.txt:3");
  EXPECT_TRUE(records[0].id.is_null());
  EXPECT_EQ(*records[3].input_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(*records[4].text, "q1");
  EXPECT_EQ(records[4].id, "a");
  EXPECT_EQ(records[4].answer, "Paris");
  EXPECT_EQ(*records[5].input_ids, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(records[5].id, 7);
  EXPECT_EQ(InputSet({{InputSource::Kind::Jsonl, write("noid.jsonl", "\n{\"text\": \"x\"}\n")}}).cursor().next()->id,
            "noid.jsonl:2");
  EXPECT_TRUE(records[5].answer.is_null());
  EXPECT_EQ(*records[6].text, "sample a");
  EXPECT_EQ(records[6].id, "a.txt");
  EXPECT_EQ(*records[7].text, "sample b\n");

  // Ledger: each file with its SHA-256, the directory's samples one by one.
  ASSERT_EQ(set.ledger().size(), 4u);
  EXPECT_EQ(set.ledger()[0].path, prompts);
  EXPECT_EQ(set.ledger()[0].sha256, sha256_file(prompts));
  EXPECT_EQ(set.ledger()[2].path, (dir_ / "samples" / "a.txt").string());

  // Paths are canonical and absolute: the same file named relatively, or through "dir/./", is the same entry.
  const auto here = fs::current_path();
  fs::current_path(dir_);
  InputSet relative({{InputSource::Kind::PromptsFile, "./p.txt"}, {InputSource::Kind::PromptsFile, "samples/../p.txt"}});
  fs::current_path(here);
  EXPECT_EQ(relative.ledger()[0].path, fs::weakly_canonical(prompts).string());
  EXPECT_EQ(relative.ledger()[1].path, relative.ledger()[0].path);
  EXPECT_TRUE(fs::path(relative.ledger()[0].path).is_absolute());

  // A second cursor reads the same records again (one pass per model); skip() resumes part-way.
  auto cursor = set.cursor();
  cursor.skip(6);
  EXPECT_EQ(*cursor.next()->text, "sample a");
  EXPECT_EQ(*cursor.next()->text, "sample b\n");
  EXPECT_FALSE(cursor.next().has_value());
  auto again = set.cursor();
  EXPECT_THROW(again.skip(9), Error);
}

TEST_F(CaptureInputs, RejectsBadInputBeforeReadingAnyRecord) {
  auto expect_error = [&](std::vector<InputSource> sources, const std::string& fragment) {
    test::expect_one_line_error([&] { InputSet set(sources); }, {fragment});
  };
  expect_error({}, "no prompts given");
  expect_error({{InputSource::Kind::PromptsFile, (dir_ / "missing.txt").string()}}, "missing.txt: no such file");
  expect_error({{InputSource::Kind::Directory, (dir_ / "nodir").string()}}, "no such folder");
  auto empty = write("empty.txt", "\n\n");
  expect_error({{InputSource::Kind::PromptsFile, empty}}, "empty.txt: holds no prompts");
  auto bad_json = write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \n");
  expect_error({{InputSource::Kind::Jsonl, bad_json}}, "bad.jsonl:2: not valid JSON");
  // A number beyond double's range is nlohmann's out_of_range, not parse_error: it used to escape (terminate).
  auto huge_number = write("huge.jsonl", "{\"text\": \"x\", \"n\": 1e999}\n");
  expect_error({{InputSource::Kind::Jsonl, huge_number}}, "huge.jsonl:1: not valid JSON");
  auto both = write("both.jsonl", "{\"text\": \"x\", \"input_ids\": [1]}\n");
  expect_error({{InputSource::Kind::Jsonl, both}}, "both.jsonl:1: give exactly one of");
  auto bad_ids = write("ids.jsonl", "{\"input_ids\": [1, -2]}\n");
  expect_error({{InputSource::Kind::Jsonl, bad_ids}}, "ids.jsonl:1: \"input_ids\" holds -2");
  auto bad_answer = write("answer.jsonl", "{\"text\": \"x\", \"answer\": 3}\n");
  expect_error({{InputSource::Kind::Jsonl, bad_answer}}, "\"answer\" must be");
  auto bad_utf8 = write("utf8.txt", "fine\nbroken \xC3\x28 text\n");
  expect_error({{InputSource::Kind::PromptsFile, bad_utf8}}, "utf8.txt:2: the prompt is not valid UTF-8");
  expect_error({{InputSource::Kind::Prompt, "\xFF"}}, "--prompt: the prompt is not valid UTF-8");
  fs::create_directories(dir_ / "empty-dir");
  expect_error({{InputSource::Kind::Directory, (dir_ / "empty-dir").string()}}, "holds no .txt files");
}

}  // namespace
}  // namespace actcap
