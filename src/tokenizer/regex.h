#pragma once
// The patterns of tokenizer.json (Split, Replace) run on Oniguruma, the engine HF tokenizers uses, with the
// same syntax and options as its `onig::Regex::new`. Unicode classes are first rewritten into code point
// classes from actcap's Unicode 16.0 tables (unicode_classes.h), the data HF's bundled Oniguruma has, so the
// host's older or newer Oniguruma tables never change a split.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actcap::tokenizer {

using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets

class Pattern {
 public:
  // A `{"String": s}` pattern matches s literally; a `{"Regex": r}` pattern is compiled (Error naming it if bad).
  static Pattern literal(std::string text);
  static Pattern regex(const std::string& source);
  Pattern(Pattern&&) noexcept;
  Pattern& operator=(Pattern&&) noexcept;
  ~Pattern();

  // Left-to-right non-overlapping matches, as onig's find_iter (an empty match never repeats at one place).
  void find_all(std::string_view text, std::vector<Span>& out) const;

 private:
  Pattern() = default;
  std::string literal_;
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

// A tokenizer.json pattern object ({"String": s} or {"Regex": r}); `where` names its owner in errors.
Pattern make_pattern(const nlohmann::json& spec, const char* where);

}  // namespace actcap::tokenizer
