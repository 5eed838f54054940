#include "tokenizer/unicode_classes.h"

#include <cstdint>
#include <fmt/format.h>

#include "core/error.h"
#include "tokenizer/unicode.h"
#include "tokenizer/unicode_tables.h"

namespace actcap::tokenizer {
namespace {

// Each \p{L} becomes about 14 KB of ranges: real patterns stay far below this, thousands of classes do not.
constexpr size_t kMaxExpandedBytes = 4 << 20;

std::string loosen(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '_') continue;
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return out;
}

void append_code_point(std::string& out, char32_t cp) {
  fmt::format_to(std::back_inserter(out), "\\x{{{:X}}}", static_cast<uint32_t>(cp));
}

// A bracketed class of the property's ranges (negated: its complement). Nested in an enclosing class it is a
// union member, so the same text works inside and outside brackets. Surrogates never occur in UTF-8 text and
// Oniguruma refuses them as code points: they are left out.
void append_class(std::string& out, std::span<const CodePointRange> ranges, bool negated) {
  std::string items;
  for (auto [first, last] : ranges) {
    const auto add = [&](char32_t a, char32_t b) {
      append_code_point(items, a);
      if (b != a) {
        items += '-';
        append_code_point(items, b);
      }
    };
    if (last < 0xD800 || first > 0xDFFF) {
      add(first, last);
    } else {
      if (first < 0xD800) add(first, 0xD7FF);
      if (last > 0xDFFF) add(0xE000, last);
    }
  }
  if (items.empty()) {  // matches nothing (or, negated, anything)
    negated = !negated;
    items = "\\x{0}-\\x{10FFFF}";
  }
  out += negated ? "[^" : "[";
  out += items;
  out += ']';
}

std::span<const CodePointRange> property(std::string_view loose_name, std::string_view shown,
                                         const std::string& pattern) {
  auto ranges = unicode_property(loose_name);
  if (!ranges)
    fail("tokenizer.json: Regex pattern '{}' uses the Unicode property '{}', for which actcap has no table "
         "(it has General_Category values, scripts, White_Space, Alphabetic, Word, Any, Assigned)",
         pattern, shown);
  return *ranges;
}

}  // namespace

std::string expand_unicode_classes(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size());
  size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] != '\\' || i + 1 == pattern.size()) {
      out += pattern[i++];
      continue;
    }
    if (out.size() > kMaxExpandedBytes)
      fail("tokenizer.json: Regex pattern '{}...' has too many Unicode classes (over {} MiB once expanded)",
           pattern.substr(0, 40), kMaxExpandedBytes >> 20);
    const char escape = pattern[i + 1];
    const bool negated = escape >= 'A' && escape <= 'Z';
    switch (escape) {
      case 's': case 'S':
        append_class(out, property("whitespace", "White_Space", pattern), negated);
        i += 2;
        continue;
      case 'd': case 'D':
        append_class(out, property("nd", "Nd", pattern), negated);
        i += 2;
        continue;
      case 'w': case 'W':
        append_class(out, property("word", "Word", pattern), negated);
        i += 2;
        continue;
      case 'p': case 'P': {
        size_t close = pattern.find('}', i + 2);
        if (i + 2 < pattern.size() && pattern[i + 2] == '{' && close != std::string::npos) {
          std::string_view name(pattern.data() + i + 3, close - i - 3);
          bool invert = negated;
          if (name.starts_with('^')) {
            invert = !invert;
            name.remove_prefix(1);
          }
          append_class(out, property(loosen(name), name, pattern), invert);
          i = close + 1;
          continue;
        }
        break;
      }
      default:
        break;
    }
    // Any other escape is kept whole (a multi-byte escaped character included).
    size_t length = 1 + utf8_length(static_cast<unsigned char>(escape));
    out.append(pattern, i, length);
    i += length;
  }
  return out;
}

}  // namespace actcap::tokenizer
