// Unicode data independent of the host: regex classes from actcap's Unicode 16.0 tables (HF's Oniguruma) and
// normalizers that leave code points assigned after Unicode 9.0 alone (HF's normalization tables). Debian 12's
// Oniguruma (Unicode 14) and utf8proc (Unicode 15) disagree with HF on each case below. Every code point is
// checked against the real HF tokenizers by tests/scripts/test_tokenizer_sweep.sh.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/unicode_tables.h"

namespace actcap::tokenizer {
namespace {

std::vector<Span> matches(const std::string& regex, const std::string& text) {
  std::vector<Span> out;
  Pattern::regex(regex).find_all(text, out);
  return out;
}

TEST(UnicodeClasses, LettersOfUnicode15And16AreLetters) {
  // U+31350 (CJK Extension H, Unicode 15.0), U+1C89 (Cyrillic, 16.0), U+A7CB (Latin, 16.0).
  for (const std::string letter : {"\xF0\xB1\x8D\x90", "\xE1\xB2\x89", "\xEA\x9F\x8B"}) {
    EXPECT_EQ(matches("\\p{L}+", letter + "x"), (std::vector<Span>{{0, letter.size() + 1}})) << letter;
    EXPECT_TRUE(matches("\\P{L}", letter).empty()) << letter;
    EXPECT_TRUE(matches("[^\\s\\p{L}\\p{N}]", letter).empty()) << letter;
  }
  // Llama 3's split of "𱍐's": the letter, then the contraction (HF: [172,109,235,238,596]).
  const std::string llama3 = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  EXPECT_EQ(matches(llama3, "\xF0\xB1\x8D\x90's"), (std::vector<Span>{{0, 4}, {4, 6}}));
}

TEST(UnicodeClasses, EscapesNegationsAndNames) {
  EXPECT_EQ(matches("\\p{^N}", "1a"), (std::vector<Span>{{1, 2}}));
  EXPECT_EQ(matches("\\P{Number}", "1a"), (std::vector<Span>{{1, 2}}));
  EXPECT_EQ(matches("\\p{decimal_number}", "a\xD9\xA3"), (std::vector<Span>{{1, 3}}));  // loose name, U+0663
  EXPECT_EQ(matches("\\s+", "a \xE3\x80\x80" "b"), (std::vector<Span>{{1, 5}}));          // U+3000
  EXPECT_EQ(matches("\\S+", "a b"), (std::vector<Span>{{0, 1}, {2, 3}}));
  EXPECT_EQ(matches("\\d", "x\xEF\xBC\x97"), (std::vector<Span>{{1, 4}}));  // U+FF17 fullwidth 7
  EXPECT_EQ(matches("\\w+", "a\xC2\xB2_ b"), (std::vector<Span>{{0, 4}, {5, 6}}));  // ² is a word char
  EXPECT_EQ(matches("[a\\p{Han}]+", "a\xE4\xB8\x80!"), (std::vector<Span>{{0, 4}}));
  EXPECT_EQ(matches("\\\\s", "\\s"), (std::vector<Span>{{0, 2}}));  // an escaped backslash stays literal
  EXPECT_EQ(matches("[\\p{Cs}x]", "x"), (std::vector<Span>{{0, 1}}));  // surrogates only: matches nothing
  EXPECT_THROW(Pattern::regex("\\p{NoSuchProperty}"), Error);
  std::string many;
  for (int k = 0; k < 1000; ++k) many += "\\p{L}";
  EXPECT_THROW(Pattern::regex(many), Error);  // 14 MB once expanded
  EXPECT_EQ(expand_unicode_classes("a\\p{Zl}b"), "a[\\x{2028}]b");
  EXPECT_EQ(expand_unicode_classes("\\P{Zp}"), "[^\\x{2029}]");
}

TEST(UnicodeClasses, TablesAreTheVersionsHFUses) {
  EXPECT_STREQ(kRegexUnicodeVersion, "16.0.0");
  EXPECT_STREQ(kNormalizationUnicodeVersion, "9.0.0");
  auto letters = unicode_property("l");
  ASSERT_TRUE(letters);
  size_t count = 0;
  for (auto [first, last] : *letters) count += last - first + 1;
  EXPECT_EQ(count, 141028u);  // General_Category=L in Unicode 16.0
}

std::string normalized(const char* form, std::string text) {
  make_normalizer(nlohmann::json{{"type", form}})->normalize(text);
  return text;
}

TEST(UnicodeNormalizers, CodePointsAfterUnicode9AreLeftAlone) {
  EXPECT_EQ(normalized("NFKC", "\xE3\x8B\xBF"), "\xE3\x8B\xBF");                 // U+32FF (12.1): HF keeps it
  EXPECT_EQ(normalized("NFKD", "a\xEA\x9F\xB2"), "a\xEA\x9F\xB2");               // U+A7F2 (14.0)
  EXPECT_EQ(normalized("NFKC", "\xEF\xAC\x81\xE3\x8B\xBF\xE2\x91\xA0"), "fi\xE3\x8B\xBF" "1");  // ﬁ and ① still map
  // U+0D3B (10.0, combining class 9) is unknown to HF: no reordering around it; U+0301 still composes.
  EXPECT_EQ(normalized("NFD", "a\xE0\xB4\xBB\xCC\xB4"), "a\xE0\xB4\xBB\xCC\xB4");
  EXPECT_EQ(normalized("NFC", "e\xCC\x81\xE0\xB4\xBB" "e\xCC\x81"), "\xC3\xA9\xE0\xB4\xBB\xC3\xA9");
}

}  // namespace
}  // namespace actcap::tokenizer
