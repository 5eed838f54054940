#pragma once
// Unicode tables (code point ranges) with the Unicode versions HF tokenizers 0.22 uses, so tokenization never
// depends on the host's Oniguruma or utf8proc. Generated: scripts/gen_unicode_tables.mjs writes unicode_tables.cpp.
#include <optional>
#include <span>
#include <string_view>

namespace actcap::tokenizer {

struct CodePointRange {
  char32_t first, last;  // inclusive
};

extern const char* const kRegexUnicodeVersion;          // of its Oniguruma: 16.0.0
extern const char* const kNormalizationUnicodeVersion;  // of its NFC/NFD/NFKC/NFKD tables: 9.0.0

// The ranges, ascending and disjoint, of a property named as Oniguruma's \p{...} names it, already loosened
// (lowercase, without ' ', '-', '_'): General_Category values (short and long names), scripts, White_Space,
// Alphabetic, Word (\w), Any, Assigned. nullopt for any other name.
std::optional<std::span<const CodePointRange>> unicode_property(std::string_view loose_name);

// The code points assigned in kNormalizationUnicodeVersion; the others are left alone by HF's normalizers.
std::span<const CodePointRange> normalization_assigned();

// The classes of HF's BERT normalizer and pre-tokenizer (the unicode_categories crate, Unicode 8.0):
// punctuation (with ASCII's), "other" (Cc, Cf, Co, Cs), nonspacing marks (Mn).
std::span<const CodePointRange> bert_punctuation();
std::span<const CodePointRange> bert_other();
std::span<const CodePointRange> bert_nonspacing_mark();

// Rust's char::to_lowercase (Unicode 16.0), for the code points it changes, ascending; `to` ends at the first 0.
struct CaseMapping {
  char32_t from;
  char32_t to[3];
};
std::span<const CaseMapping> lowercase_mappings();

}  // namespace actcap::tokenizer
