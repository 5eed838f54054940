#include "tokenizer/decoders.h"

#include "core/error.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace actcap::tokenizer {
namespace {

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& part : parts_) part->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

// Bytes of every token through the byte-level table (a token with a character outside it keeps its own
// UTF-8 bytes), then one lossy UTF-8 decoding of the whole.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    std::string token_bytes;
    for (const auto& token : tokens) {
      token_bytes.clear();
      bool mapped = true;
      size_t i = 0;
      while (i < token.size()) {
        int b = char_to_byte(next_code_point(token, i));
        if (b < 0) {
          mapped = false;
          break;
        }
        token_bytes += static_cast<char>(b);
      }
      bytes += mapped ? token_bytes : token;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<Span> matches;
    for (auto& token : tokens) {
      pattern_.find_all(token, matches);
      if (matches.empty()) continue;
      std::string out;
      size_t at = 0;
      for (auto [b, e] : matches) {
        out.append(token, at, b - at);
        out += content_;
        at = e;
      }
      out.append(token, at, std::string::npos);
      token = std::move(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// <0xXX> tokens are gathered into bytes; valid UTF-8 becomes its text, otherwise one U+FFFD per byte.
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t byte_tokens = 0;
    const auto flush = [&] {
      if (byte_tokens == 0) return;
      if (first_invalid_utf8(bytes) == std::string::npos) {
        out.push_back(bytes);
      } else {
        std::string replacement;
        for (size_t k = 0; k < byte_tokens; ++k) replacement += "\xEF\xBF\xBD";
        out.push_back(replacement);
      }
      bytes.clear();
      byte_tokens = 0;
    };
    for (auto& token : tokens) {
      int byte = parse_byte(token);
      if (byte >= 0) {
        bytes += static_cast<char>(byte);
        ++byte_tokens;
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int parse_byte(const std::string& token) {
    if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
    int hi = hex(token[3]), lo = hex(token[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& token : tokens) all += token;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
      for (size_t i = 0; i < token.size();) {
        size_t at = i;
        chars.emplace_back(at, next_code_point(token, i));
      }
      size_t cut_begin = 0;
      while (cut_begin < start_ && cut_begin < chars.size() && chars[cut_begin].second == content_) ++cut_begin;
      size_t cut_end = chars.size();
      while (chars.size() - cut_end < stop_ && cut_end > cut_begin && chars[cut_end - 1].second == content_) --cut_end;
      size_t b = cut_begin < chars.size() ? chars[cut_begin].first : token.size();
      size_t e = cut_end < chars.size() ? chars[cut_end].first : token.size();
      token = token.substr(b, e - b);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepend) : replacement_(replacement), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t t = 0; t < tokens.size(); ++t) {
      std::string out;
      const std::string& token = tokens[t];
      for (size_t i = 0; i < token.size();) {
        size_t at = i;
        char32_t cp = next_code_point(token, i);
        if (cp != replacement_) {
          out.append(token, at, i - at);
        } else if (!(t == 0 && prepend_)) {
          out += ' ';
        }
      }
      tokens[t] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool prepend_;
};

// HF's WordPiece decoder: a token without the prefix starts a new word (a space before it, but not before the
// first); with cleanup, the spaces tokenization put before punctuation and English contractions go.
class WordPieceDecoder : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t t = 0; t < tokens.size(); ++t) {
      std::string& token = tokens[t];
      if (t != 0) {
        if (token.starts_with(prefix_))
          token.erase(0, prefix_.size());
        else
          token.insert(0, " ");
      }
      if (cleanup_) token = cleaned(token);
    }
  }

 private:
  static void replace_all(std::string& text, std::string_view from, std::string_view to) {
    std::string out;
    size_t at = 0;
    for (size_t hit = text.find(from); hit != std::string::npos; hit = text.find(from, at)) {
      out.append(text, at, hit - at);
      out += to;
      at = hit + from.size();
    }
    out.append(text, at, std::string::npos);
    text = std::move(out);
  }
  static std::string cleaned(std::string text) {
    static const std::pair<std::string_view, std::string_view> kRules[] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (auto [from, to] : kRules) replace_all(text, from, to);
    return text;
  }

  std::string prefix_;
  bool cleanup_;
};

char32_t single_char(const std::string& s, const char* where) {
  size_t i = 0;
  if (s.empty() || first_invalid_utf8(s) != std::string::npos) fail("tokenizer.json: {} must be one character", where);
  char32_t cp = next_code_point(s, i);
  if (i != s.size()) fail("tokenizer.json: {} must be one character", where);
  return cp;
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& spec) {
  if (spec.is_null()) return nullptr;
  const std::string type = spec.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& part : spec.at("decoders"))
      if (auto d = make_decoder(part)) parts.push_back(std::move(d));
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(make_pattern(spec.at("pattern"), "Replace decoder"),
                                            spec.at("content").get<std::string>());
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(single_char(spec.at("content").get<std::string>(), "Strip decoder content"),
                                          spec.at("start").get<size_t>(), spec.at("stop").get<size_t>());
  if (type == "Metaspace") {
    bool prepend = true;
    if (spec.contains("prepend_scheme") && !spec["prepend_scheme"].is_null())
      prepend = spec["prepend_scheme"].get<std::string>() != "never";
    else if (spec.contains("add_prefix_space") && !spec["add_prefix_space"].is_null())
      prepend = spec["add_prefix_space"].get<bool>();
    return std::make_unique<MetaspaceDecoder>(
        single_char(spec.value("replacement", std::string("\xE2\x96\x81")), "Metaspace replacement"), prepend);
  }
  if (type == "WordPiece")
    return std::make_unique<WordPieceDecoder>(spec.value("prefix", std::string("##")), spec.value("cleanup", true));
  fail("tokenizer.json: unsupported decoder type '{}'", type);
}

}  // namespace actcap::tokenizer
