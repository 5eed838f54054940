#include "tokenizer/regex.h"

#include <oniguruma.h>

#include <mutex>

#include "core/error.h"
#include "tokenizer/unicode.h"
#include "tokenizer/unicode_classes.h"

namespace actcap::tokenizer {

struct Pattern::Compiled {
  regex_t* regex = nullptr;
  ~Compiled() {
    if (regex) onig_free(regex);
  }
};

Pattern::Pattern(Pattern&&) noexcept = default;
Pattern& Pattern::operator=(Pattern&&) noexcept = default;
Pattern::~Pattern() = default;

Pattern Pattern::literal(std::string text) {
  if (text.empty()) fail("tokenizer.json: empty String pattern");
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

Pattern Pattern::regex(const std::string& source) {
  static std::once_flag initialized;
  std::call_once(initialized, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
  Pattern p;
  p.compiled_ = std::make_unique<Compiled>();
  OnigErrorInfo info;
  const std::string expanded = expand_unicode_classes(source);
  const auto* begin = reinterpret_cast<const OnigUChar*>(expanded.data());
  int rc = onig_new(&p.compiled_->regex, begin, begin + expanded.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                    ONIG_SYNTAX_DEFAULT, &info);
  if (rc != ONIG_NORMAL) {
    OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(message, rc, &info);
    fail("tokenizer.json: bad Regex pattern '{}': {}", source, reinterpret_cast<const char*>(message));
  }
  return p;
}

void Pattern::find_all(std::string_view text, std::vector<Span>& out) const {
  out.clear();
  if (!compiled_) {
    for (size_t at = text.find(literal_); at != std::string_view::npos; at = text.find(literal_, at + literal_.size()))
      out.emplace_back(at, at + literal_.size());
    return;
  }
  OnigRegion* region = onig_region_new();
  const auto* str = reinterpret_cast<const OnigUChar*>(text.data());
  const OnigUChar* end = str + text.size();
  size_t start = 0;
  size_t last_match_end = std::string_view::npos;
  while (start <= text.size()) {
    int rc = onig_search(compiled_->regex, str, end, str + start, end, region, ONIG_OPTION_NONE);
    if (rc == ONIG_MISMATCH) break;
    if (rc < 0) {
      onig_region_free(region, 1);
      fail("tokenizer: regex search failed (Oniguruma error {})", rc);
    }
    size_t b = static_cast<size_t>(region->beg[0]), e = static_cast<size_t>(region->end[0]);
    if (b == e && last_match_end == e) {
      // As onig's FindMatches: no empty match right after the previous match; step one character.
      if (start >= text.size()) break;
      start += utf8_length(static_cast<unsigned char>(text[start]));
      continue;
    }
    out.emplace_back(b, e);
    last_match_end = e;
    start = e;
    if (b == e) {
      if (start >= text.size()) break;
    }
  }
  onig_region_free(region, 1);
}

Pattern make_pattern(const nlohmann::json& spec, const char* where) {
  if (spec.is_object() && spec.contains("String")) return Pattern::literal(spec["String"].get<std::string>());
  if (spec.is_object() && spec.contains("Regex")) return Pattern::regex(spec["Regex"].get<std::string>());
  fail("tokenizer.json: {} pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}", where);
}

}  // namespace actcap::tokenizer
