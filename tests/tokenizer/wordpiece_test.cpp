// BERT's pipeline on a small vocabulary: BertNormalizer (clean text, CJK spacing, accents, lowercase),
// BertPreTokenizer, the WordPiece model and decoder. Expected values are those of the real HF tokenizers 0.22
// for the same tokenizer.json; real vocabularies: test_tokenizer_oracle.sh and test_tokenizer_sweep.sh.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

nlohmann::json bert_json() {
  nlohmann::json special = {{"[CLS]", {{"id", "[CLS]"}, {"ids", {1}}, {"tokens", {"[CLS]"}}}},
                            {"[SEP]", {{"id", "[SEP]"}, {"ids", {2}}, {"tokens", {"[SEP]"}}}}};
  return {{"version", "1.0"},
          {"added_tokens", nlohmann::json::array()},
          {"normalizer", {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
                          {"strip_accents", nullptr}, {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
                     {"max_input_chars_per_word", 8},
                     {"vocab", {{"[UNK]", 0}, {"[CLS]", 1}, {"[SEP]", 2}, {"un", 3}, {"##aff", 4}, {"##able", 5},
                                {"hello", 6}, {",", 7}, {"!", 8}, {"##s", 9}, {"a", 10}, {"\xE4\xB8\xAD", 11}}}}},
          {"post_processor", {{"type", "TemplateProcessing"},
                              {"single", {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
                                          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                          {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}}},
                              {"pair", nlohmann::json::array()},
                              {"special_tokens", special}}},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}}};
}

Tokenizer load(const nlohmann::json& j) {
  fs::path path = fs::temp_directory_path() / ("actcap-wordpiece-test-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << j.dump();
  Tokenizer tokenizer = Tokenizer::from_files(path.string(), "");
  fs::remove(path);
  return tokenizer;
}

TEST(WordPieceModel, BertPipelineMatchesHF) {
  Tokenizer t = load(bert_json());
  EXPECT_EQ(t.encode("UnAffable, hello!"), (Ids{1, 0, 7, 6, 8, 2}));  // "unaffable": 9 characters > 8, so unk
  EXPECT_EQ(t.encode("H\xC3\xA9llo\x0b"), (Ids{1, 6, 2}));             // accent stripped, VT dropped
  EXPECT_EQ(t.encode(std::string("hello\0a", 7)), (Ids{1, 0, 2}));      // NUL dropped: "helloa", no ##a
  EXPECT_EQ(t.encode("xyz hellos"), (Ids{1, 0, 6, 9, 2}));
  EXPECT_EQ(t.encode("a\xE4\xB8\xAD" "a"), (Ids{1, 10, 11, 10, 2}));  // a CJK ideograph is a word of its own
  EXPECT_EQ(t.encode("Hello\xE3\x80\x80" "A"), (Ids{1, 6, 10, 2}));   // U+3000 is whitespace
  EXPECT_EQ(t.decode(Ids{1, 3, 4, 5, 7, 6, 9, 8, 2}), "[CLS] unaffable, hellos! [SEP]");
}

TEST(WordPieceModel, LongestPieceFirstAndMissingUnk) {
  nlohmann::json j = bert_json();
  j["model"]["max_input_chars_per_word"] = 100;
  Tokenizer t = load(j);
  EXPECT_EQ(t.encode("unaffable", false), (Ids{3, 4, 5}));
  j["model"]["unk_token"] = "<nope>";
  Tokenizer no_unk = load(j);
  EXPECT_EQ(no_unk.encode("hello", false), (Ids{6}));
  EXPECT_THROW(no_unk.encode("xyz", false), Error);
}

}  // namespace
}  // namespace actcap
