#include "tokenizer/normalizers.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/unicode_tables.h"

namespace actcap::tokenizer {
namespace {

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& part : parts_) part->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);  // HF never prepends to an empty string
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    std::vector<Span> matches;
    pattern_.find_all(text, matches);
    if (matches.empty()) return;
    std::string out;
    out.reserve(text.size() + matches.size() * content_.size());
    size_t at = 0;
    for (auto [b, e] : matches) {
      out.append(text, at, b - at);
      out += content_;
      at = e;
    }
    out.append(text, at, std::string::npos);
    text = std::move(out);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

bool known_to_normalization(char32_t cp) { return contains(normalization_assigned(), cp); }

// NFC/NFD/NFKC/NFKD with HF's tables (Unicode 9.0): code points assigned later are left alone, as HF does.
// Such a code point is a starter that composes with nothing there, so normalizing the runs between them
// separately gives HF's result, and utf8proc (any version with Unicode >= 9.0) agrees with HF on the runs:
// decompositions and combining classes never change once assigned.
class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(std::string& text) const override {
    bool ascii = true;
    for (char c : text) ascii &= static_cast<unsigned char>(c) < 0x80;
    if (ascii) return;  // ASCII is invariant under every normalization form
    std::string out;
    out.reserve(text.size());
    size_t run = 0, i = 0;
    while (i < text.size()) {
      size_t at = i;
      if (known_to_normalization(next_code_point(text, i))) continue;
      append_normalized(std::string_view(text).substr(run, at - run), out);
      out.append(text, at, i - at);
      run = i;
    }
    append_normalized(std::string_view(text).substr(run), out);
    text = std::move(out);
  }

 private:
  void append_normalized(std::string_view run, std::string& out) const {
    if (run.empty()) return;
    utf8proc_uint8_t* mapped = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                                      static_cast<utf8proc_ssize_t>(run.size()), &mapped,
                                      static_cast<utf8proc_option_t>(options_));
    if (n < 0) fail("tokenizer: Unicode normalization failed: {}", utf8proc_errmsg(n));
    out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
    std::free(mapped);
  }

  int options_;
};

std::unique_ptr<Normalizer> unicode_normalizer(int options) {
  // utf8proc must know at least every code point HF's tables know.
  if (std::atoi(utf8proc_unicode_version()) < std::atoi(kNormalizationUnicodeVersion))
    fail("tokenizer: this utf8proc has Unicode {}; Unicode normalizers need {} or later", utf8proc_unicode_version(),
         kNormalizationUnicodeVersion);
  return std::make_unique<UnicodeNormalizer>(options);
}

// Rust's char::to_lowercase of every character, as HF's NormalizedString::lowercase.
void lowercase(std::string& text) {
  const auto mappings = lowercase_mappings();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t at = i;
    char32_t cp = next_code_point(text, i);
    auto it = std::lower_bound(mappings.begin(), mappings.end(), cp,
                               [](const CaseMapping& m, char32_t c) { return m.from < c; });
    if (it == mappings.end() || it->from != cp) {
      out.append(text, at, i - at);
      continue;
    }
    for (char32_t to : it->to)
      if (to) append_utf8(out, to);
  }
  text = std::move(out);
}

class LowercaseNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override { lowercase(text); }
};

// HF's BertNormalizer: clean_text drops NUL, U+FFFD and control characters and turns whitespace into spaces;
// handle_chinese_chars puts spaces around CJK ideographs; strip_accents (by default as lowercase) is NFD
// without nonspacing marks; then lowercase.
class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese, bool strip_accents, bool lower)
      : clean_text_(clean_text), chinese_(chinese), lowercase_(lower) {
    if (strip_accents) nfd_ = unicode_normalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  }
  void normalize(std::string& text) const override {
    if (clean_text_ || chinese_) {
      std::string out;
      out.reserve(text.size());
      for (size_t i = 0; i < text.size();) {
        size_t at = i;
        char32_t cp = next_code_point(text, i);
        if (clean_text_) {
          const bool tab_or_newline = cp == U'\t' || cp == U'\n' || cp == U'\r';
          if (cp == 0 || cp == 0xFFFD || (!tab_or_newline && contains(bert_other(), cp))) continue;
          if (is_white_space(cp)) {  // tab and newlines included
            out += ' ';
            continue;
          }
        }
        if (chinese_ && is_chinese_char(cp)) {
          out += ' ';
          out.append(text, at, i - at);
          out += ' ';
        } else {
          out.append(text, at, i - at);
        }
      }
      text = std::move(out);
    }
    if (nfd_) {
      nfd_->normalize(text);
      std::string out;
      out.reserve(text.size());
      for (size_t i = 0; i < text.size();) {
        size_t at = i;
        if (!contains(bert_nonspacing_mark(), next_code_point(text, i))) out.append(text, at, i - at);
      }
      text = std::move(out);
    }
    if (lowercase_) lowercase(text);
  }

 private:
  static bool is_chinese_char(char32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0x2F800 && cp <= 0x2FA1F);
  }

  bool clean_text_, chinese_, lowercase_;
  std::unique_ptr<Normalizer> nfd_;
};

bool optional_flag(const nlohmann::json& spec, const char* key, bool fallback) {
  auto it = spec.find(key);
  return it == spec.end() || it->is_null() ? fallback : it->get<bool>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec) {
  if (spec.is_null()) return nullptr;
  const std::string type = spec.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& part : spec.at("normalizers"))
      if (auto n = make_normalizer(part)) parts.push_back(std::move(n));
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(spec.at("prepend").get<std::string>());
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(make_pattern(spec.at("pattern"), "Replace normalizer"),
                                               spec.at("content").get<std::string>());
  if (type == "NFC") return unicode_normalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (type == "NFD") return unicode_normalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return unicode_normalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD") return unicode_normalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "BertNormalizer") {
    const bool lower = optional_flag(spec, "lowercase", true);
    return std::make_unique<BertNormalizer>(optional_flag(spec, "clean_text", true),
                                            optional_flag(spec, "handle_chinese_chars", true),
                                            optional_flag(spec, "strip_accents", lower), lower);
  }
  fail("tokenizer.json: unsupported normalizer type '{}'", type);
}

}  // namespace actcap::tokenizer
