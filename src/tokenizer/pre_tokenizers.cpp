#include "tokenizer/pre_tokenizers.h"

#include <algorithm>
#include <array>

#include "core/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace actcap::tokenizer {
namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& name) {
  if (name == "Removed") return Behavior::Removed;
  if (name == "Isolated") return Behavior::Isolated;
  if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::MergedWithNext;
  if (name == "Contiguous") return Behavior::Contiguous;
  fail("tokenizer.json: unsupported Split behavior '{}'", name);
}

struct Segment {
  size_t begin, end;
  bool is_match;
};

// NormalizedString::split of HF: `matches` cover the piece left to right; behavior decides the pieces.
void split_by(const PreToken& piece, const std::vector<Span>& matches, bool invert, Behavior behavior,
              std::vector<PreToken>& out) {
  const std::string& s = piece.text;
  std::vector<Segment> segments;
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) segments.push_back({prev, b, invert});
    segments.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != s.size()) segments.push_back({prev, s.size(), invert});

  std::vector<Segment> kept;  // is_match here means "remove"
  switch (behavior) {
    case Behavior::Isolated:
      for (auto seg : segments) kept.push_back({seg.begin, seg.end, false});
      break;
    case Behavior::Removed:
      kept = segments;
      break;
    case Behavior::Contiguous: {
      bool previous_match = false;
      for (auto seg : segments) {
        if (!kept.empty() && seg.is_match == previous_match)
          kept.back().end = seg.end;
        else
          kept.push_back({seg.begin, seg.end, false});
        previous_match = seg.is_match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool previous_match = false;
      for (auto seg : segments) {
        if (seg.is_match && !previous_match && !kept.empty())
          kept.back().end = seg.end;
        else
          kept.push_back({seg.begin, seg.end, false});
        previous_match = seg.is_match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty())
          kept.back().begin = it->begin;
        else
          kept.push_back({it->begin, it->end, false});
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
  }
  for (auto seg : kept) {
    if (seg.is_match || seg.begin == seg.end) continue;
    out.push_back({s.substr(seg.begin, seg.end - seg.begin), piece.at_origin && seg.begin == 0});
  }
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (const auto& part : parts_) part->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> out;
    std::vector<Span> matches;
    for (const auto& piece : pieces) {
      pattern_.find_all(piece.text, matches);
      split_by(piece, matches, invert_, behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Pattern>(Pattern::regex(kGpt2Pattern));
  }
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> split;
    std::vector<Span> matches;
    for (auto& piece : pieces) {
      if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) piece.text.insert(0, " ");
      if (regex_) {
        regex_->find_all(piece.text, matches);
        split_by(piece, matches, false, Behavior::Isolated, split);
      } else if (!piece.text.empty()) {
        split.push_back(std::move(piece));
      }
    }
    for (auto& piece : split) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      for (char c : piece.text) mapped += byte_to_char(static_cast<unsigned char>(c));
      piece.text = std::move(mapped);
    }
    pieces = std::move(split);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Pattern> regex_;
};

// Each character of `text` for which `is_delimiter` holds, as one match.
template <typename Predicate>
void character_matches(const std::string& text, Predicate is_delimiter, std::vector<Span>& out) {
  out.clear();
  for (size_t i = 0; i < text.size();) {
    size_t at = i;
    if (is_delimiter(next_code_point(text, i))) out.emplace_back(at, i);
  }
}

// HF's BertPreTokenizer: whitespace removed, each punctuation character a piece of its own.
class BertPreTokenizer : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> words, out;
    std::vector<Span> matches;
    for (const auto& piece : pieces) {
      character_matches(piece.text, is_white_space, matches);
      split_by(piece, matches, false, Behavior::Removed, words);
    }
    for (const auto& word : words) {
      character_matches(word.text, [](char32_t cp) { return contains(bert_punctuation(), cp); }, matches);
      split_by(word, matches, false, Behavior::Isolated, out);
    }
    pieces = std::move(out);
  }
};

enum class PrependScheme { Always, First, Never };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split), pattern_(Pattern::literal(replacement_)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> out;
    std::vector<Span> matches;
    for (auto& piece : pieces) {
      std::string replaced;
      replaced.reserve(piece.text.size());
      for (char c : piece.text) {
        if (c == ' ')
          replaced += replacement_;
        else
          replaced += c;
      }
      bool starts = replaced.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && piece.at_origin)))
        replaced.insert(0, replacement_);
      piece.text = std::move(replaced);
      if (split_) {
        pattern_.find_all(piece.text, matches);
        split_by(piece, matches, false, Behavior::MergedWithNext, out);
      } else if (!piece.text.empty()) {
        out.push_back(std::move(piece));
      }
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  Pattern pattern_;
};

bool flag(const nlohmann::json& spec, const char* key, bool fallback) {
  auto it = spec.find(key);
  return it == spec.end() || it->is_null() ? fallback : it->get<bool>();
}

}  // namespace

const std::string& byte_to_char(unsigned char byte) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      append_utf8(t[b], static_cast<char32_t>(printable ? b : next++));
    }
    return t;
  }();
  return table[byte];
}

int char_to_byte(char32_t cp) {
  static const std::array<int, 324> table = [] {
    std::array<int, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) {
      size_t i = 0;
      t[next_code_point(byte_to_char(static_cast<unsigned char>(b)), i)] = b;
    }
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec) {
  if (spec.is_null()) return nullptr;
  const std::string type = spec.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& part : spec.at("pretokenizers"))
      if (auto p = make_pre_tokenizer(part)) parts.push_back(std::move(p));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(make_pattern(spec.at("pattern"), "Split pre-tokenizer"),
                                               parse_behavior(spec.at("behavior").get<std::string>()),
                                               flag(spec, "invert", false));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(flag(spec, "add_prefix_space", true), flag(spec, "use_regex", true));
  if (type == "Metaspace") {
    PrependScheme scheme = PrependScheme::Always;
    if (spec.contains("prepend_scheme") && !spec["prepend_scheme"].is_null()) {
      const std::string name = spec["prepend_scheme"].get<std::string>();
      if (name == "always") scheme = PrependScheme::Always;
      else if (name == "first") scheme = PrependScheme::First;
      else if (name == "never") scheme = PrependScheme::Never;
      else fail("tokenizer.json: unsupported Metaspace prepend_scheme '{}'", name);
    } else if (!flag(spec, "add_prefix_space", true)) {
      scheme = PrependScheme::Never;
    }
    std::string replacement = spec.value("replacement", std::string("\xE2\x96\x81"));
    return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, flag(spec, "split", true));
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  fail("tokenizer.json: unsupported pre_tokenizer type '{}'", type);
}

}  // namespace actcap::tokenizer
