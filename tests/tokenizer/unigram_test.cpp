// The Unigram model on a small vocabulary; the expected ids are those of the real HF tokenizers 0.22 for the
// same tokenizer.json. Real vocabularies: tests/scripts/test_tokenizer_oracle.sh and test_tokenizer_sweep.sh.
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

Tokenizer unigram(bool byte_fallback, nlohmann::json unk_id) {
  nlohmann::json vocab = nlohmann::json::array(
      {{"<unk>", 0}, {"a", -1}, {"b", -1}, {"ab", -1.5}, {"abc", -4}, {"c", -2}, {"<0xC3>", -1}, {"<0xA9>", -1}});
  nlohmann::json j = {{"version", "1.0"}, {"added_tokens", nlohmann::json::array()},
                      {"model", {{"type", "Unigram"}, {"unk_id", unk_id}, {"byte_fallback", byte_fallback}, {"vocab", vocab}}}};
  fs::path path = fs::temp_directory_path() / ("actcap-unigram-test-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << j.dump();
  Tokenizer tokenizer = Tokenizer::from_files(path.string(), "");
  fs::remove(path);
  return tokenizer;
}

using Ids = std::vector<int32_t>;

TEST(UnigramModel, BestScoringSegmentationAndFusedUnknowns) {
  Tokenizer t = unigram(false, 0);
  EXPECT_EQ(t.encode("abc"), (Ids{3, 5}));  // ab + c (-3.5) beats abc (-4)
  EXPECT_EQ(t.encode("ab"), (Ids{3}));
  EXPECT_EQ(t.encode("ba"), (Ids{2, 1}));
  EXPECT_EQ(t.encode("aabx"), (Ids{1, 3, 0}));
  EXPECT_EQ(t.encode("xyzab"), (Ids{0, 3}));  // x, y, z fuse into one unk
  EXPECT_EQ(t.encode("\xC3\xA9"), (Ids{0}));
  EXPECT_EQ(t.decode(Ids{3, 5}), "ab c");
  EXPECT_EQ(t.vocab_size(), 8u);
}

TEST(UnigramModel, ByteFallbackSpellsUnknownPiecesWhenEveryByteHasAToken) {
  Tokenizer t = unigram(true, 0);
  EXPECT_EQ(t.encode("\xC3\xA9"), (Ids{6, 7}));
  EXPECT_EQ(t.encode("\xC3\xA9x"), (Ids{0}));  // the fused piece "éx": no <0x78>, so unk
}

TEST(UnigramModel, ErrorsNameTheProblem) {
  Tokenizer no_unk = unigram(false, nullptr);
  EXPECT_EQ(no_unk.encode("ab"), (Ids{3}));
  EXPECT_THROW(no_unk.encode("ax"), Error);  // HF: "unknown token but `unk_id` is missing"
  EXPECT_THROW(unigram(false, 8), Error);    // unk_id past the vocab
}

}  // namespace
}  // namespace actcap
