#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "tokenizer/jinja_string.h"
#include "tokenizer/jinja_value.h"

namespace actcap::jinja {

const char* token_type_name(TokenType type) {
  static constexpr std::array<const char*, 25> names = {
      "Text", "NumericLiteral", "StringLiteral", "Identifier", "Equals", "OpenParen", "CloseParen", "OpenStatement",
      "CloseStatement", "OpenExpression", "CloseExpression", "OpenSquareBracket", "CloseSquareBracket",
      "OpenCurlyBracket", "CloseCurlyBracket", "Comma", "Dot", "Colon", "Pipe", "AdditiveBinaryOperator",
      "MultiplicativeBinaryOperator", "ExponentiationBinaryOperator", "ComparisonBinaryOperator", "UnaryOperator",
      "Comment"};
  return names[static_cast<size_t>(type)];
}

std::pair<size_t, size_t> line_and_column(std::string_view source, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t pos = 0; pos < source.size() && pos < offset;) {
    char32_t cp = next_code_point(source, pos);
    if (cp == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

namespace {

[[noreturn]] void fail_at(const std::string& message, size_t offset) {
  TemplateFailure error(message);
  error.offset = offset;
  throw error;
}

// Text being preprocessed, each byte remembering its offset in the original source. The preprocessing steps
// only delete, so this mapping carries token positions back to what the user wrote.
struct MappedText {
  std::string text;
  std::vector<size_t> origin;  // origin.size() == text.size() + 1
  void append(const MappedText& from, size_t begin, size_t end) {
    text.append(from.text, begin, end - begin);
    origin.insert(origin.end(), from.origin.begin() + static_cast<std::ptrdiff_t>(begin),
                  from.origin.begin() + static_cast<std::ptrdiff_t>(end));
  }
  void finish(size_t end_origin) { origin.push_back(end_origin); }
};

bool is_line_terminator_before(const std::string& s, size_t pos) {
  if (pos == 0) return true;
  char c = s[pos - 1];
  if (c == '\n' || c == '\r') return true;
  // U+2028 / U+2029 end lines for a multiline JS regex too.
  return pos >= 3 && s.compare(pos - 3, 2, "\xE2\x80") == 0 && (s[pos - 1] == '\xA8' || s[pos - 1] == '\xA9');
}

// /^[ \t]*({[#%-])/gm -> "$1"
MappedText lstrip_blocks(const MappedText& in) {
  MappedText out;
  const std::string& s = in.text;
  size_t i = 0;
  while (i < s.size()) {
    if (is_line_terminator_before(s, i)) {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' && (s[j + 1] == '#' || s[j + 1] == '%' || s[j + 1] == '-')) {
        out.append(in, j, j + 2);
        i = j + 2;
        continue;
      }
    }
    out.append(in, i, i + 1);
    ++i;
  }
  out.finish(in.origin.back());
  return out;
}

// /([#%-]})\n/g -> "$1"
MappedText trim_blocks(const MappedText& in) {
  MappedText out;
  const std::string& s = in.text;
  size_t i = 0;
  while (i < s.size()) {
    if (i + 2 < s.size() && (s[i] == '#' || s[i] == '%' || s[i] == '-') && s[i + 1] == '}' && s[i + 2] == '\n') {
      out.append(in, i, i + 2);
      i += 3;
      continue;
    }
    out.append(in, i, i + 1);
    ++i;
  }
  out.finish(in.origin.back());
  return out;
}

size_t skip_whitespace(const std::string& s, size_t pos) {
  while (size_t n = js_whitespace_length_at(s, pos)) pos += n;
  return pos;
}

// Start of the whitespace run that ends at `pos`, not reaching before `floor`.
size_t whitespace_run_start(const std::string& s, size_t pos, size_t floor) {
  while (pos > floor) {
    size_t start = pos - 1;
    while (start > floor && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (js_whitespace_length_at(s, start) != pos - start) break;
    pos = start;
  }
  return pos;
}

// /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs -> (lstrip ? "" : before) + (rstrip ? "" : after)
MappedText remove_generation_tags(const MappedText& in) {
  MappedText out;
  const std::string& s = in.text;
  size_t last = 0, search = 0;
  while ((search = s.find("{%", search)) != std::string::npos) {
    size_t tag = search, q = tag + 2;
    bool strip_before = q < s.size() && s[q] == '-';
    if (strip_before) ++q;
    q = skip_whitespace(s, q);
    if (s.compare(q, 3, "end") == 0 && s.compare(q + 3, 10, "generation") == 0) q += 3;
    bool matched = s.compare(q, 10, "generation") == 0;
    bool strip_after = false;
    if (matched) {
      q = skip_whitespace(s, q + 10);
      strip_after = q < s.size() && s[q] == '-';
      if (strip_after) ++q;
      matched = s.compare(q, 2, "%}") == 0;
    }
    if (!matched) {
      ++search;
      continue;
    }
    size_t tag_end = q + 2;
    size_t before = whitespace_run_start(s, tag, last);
    size_t after = skip_whitespace(s, tag_end);
    out.append(in, last, before);
    if (!strip_before) out.append(in, before, tag);
    if (!strip_after) out.append(in, tag_end, after);
    last = search = after;
  }
  out.append(in, last, s.size());
  out.finish(in.origin.back());
  return out;
}

MappedText preprocess(std::string_view source) {
  MappedText text;
  text.text = std::string(source);
  text.origin.resize(source.size() + 1);
  for (size_t i = 0; i <= source.size(); ++i) text.origin[i] = i;
  if (!text.text.empty() && text.text.back() == '\n') {
    text.text.pop_back();
    text.origin.pop_back();
  }
  return remove_generation_tags(trim_blocks(lstrip_blocks(text)));
}

bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct MappingRule {
  std::string_view sequence;
  TokenType type;
};
constexpr std::array<MappingRule, 29> kMappingTable = {{
    {"{%", TokenType::OpenStatement}, {"%}", TokenType::CloseStatement}, {"{{", TokenType::OpenExpression},
    {"}}", TokenType::CloseExpression}, {"(", TokenType::OpenParen}, {")", TokenType::CloseParen},
    {"{", TokenType::OpenCurlyBracket}, {"}", TokenType::CloseCurlyBracket}, {"[", TokenType::OpenSquareBracket},
    {"]", TokenType::CloseSquareBracket}, {",", TokenType::Comma}, {".", TokenType::Dot}, {":", TokenType::Colon},
    {"|", TokenType::Pipe}, {"<=", TokenType::ComparisonBinaryOperator}, {">=", TokenType::ComparisonBinaryOperator},
    {"==", TokenType::ComparisonBinaryOperator}, {"!=", TokenType::ComparisonBinaryOperator},
    {"<", TokenType::ComparisonBinaryOperator}, {">", TokenType::ComparisonBinaryOperator},
    {"+", TokenType::AdditiveBinaryOperator}, {"-", TokenType::AdditiveBinaryOperator},
    {"~", TokenType::AdditiveBinaryOperator}, {"**", TokenType::ExponentiationBinaryOperator},
    {"*", TokenType::MultiplicativeBinaryOperator}, {"//", TokenType::MultiplicativeBinaryOperator},
    {"/", TokenType::MultiplicativeBinaryOperator}, {"%", TokenType::MultiplicativeBinaryOperator},
    {"=", TokenType::Equals},
}};

class Lexer {
 public:
  explicit Lexer(MappedText source) : mapped_(std::move(source)), src_(mapped_.text) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) step();
    return std::move(tokens_);
  }

 private:
  MappedText mapped_;
  const std::string& src_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;

  size_t origin(size_t pos) const { return mapped_.origin[std::min(pos, src_.size())]; }
  [[noreturn]] void fail(const std::string& message) const { fail_at(message, origin(pos_)); }
  char at(size_t pos) const { return pos < src_.size() ? src_[pos] : '\0'; }
  bool starts(std::string_view s) const { return src_.compare(pos_, s.size(), s) == 0; }
  const Token* last() const { return tokens_.empty() ? nullptr : &tokens_.back(); }
  void push(std::string value, TokenType type, size_t start) { tokens_.push_back({std::move(value), type, origin(start)}); }

  // consumeWhile: note that reaching the end of the input while consuming is an error, as in the reference.
  template <typename Predicate>
  std::string consume_while(Predicate predicate, bool escapes) {
    std::string out;
    while (pos_ < src_.size()) {
      size_t next = pos_;
      char32_t cp = next_code_point(src_, next);
      if (!predicate(cp)) break;
      if (escapes && cp == '\\') {
        ++pos_;
        if (pos_ >= src_.size()) fail("Unexpected end of input");
        char escaped = src_[pos_++];
        if (escaped == 'x' || escaped == 'u') {
          size_t length = escaped == 'x' ? 2 : 4;
          std::string hex = src_.substr(pos_, length);
          bool valid = hex.size() == length;
          for (char c : hex) valid = valid && std::isxdigit(static_cast<unsigned char>(c));
          if (!valid) fail("Invalid hexadecimal escape sequence: \\" + std::string(1, escaped) + hex);
          char32_t unit = static_cast<char32_t>(std::stoul(hex, nullptr, 16));
          pos_ += length;
          // A \uD83D\uDE00 pair forms one character, as in a JS string; a lone surrogate becomes U+FFFD.
          if (unit >= 0xD800 && unit <= 0xDBFF && src_.compare(pos_, 2, "\\u") == 0) {
            std::string low = src_.substr(pos_ + 2, 4);
            bool low_valid = low.size() == 4;
            for (char c : low) low_valid = low_valid && std::isxdigit(static_cast<unsigned char>(c));
            char32_t low_unit = low_valid ? static_cast<char32_t>(std::stoul(low, nullptr, 16)) : 0;
            if (low_unit >= 0xDC00 && low_unit <= 0xDFFF) {
              unit = 0x10000 + ((unit - 0xD800) << 10) + (low_unit - 0xDC00);
              pos_ += 6;
            }
          }
          if (unit >= 0xD800 && unit <= 0xDFFF) unit = 0xFFFD;
          append_utf8(out, unit);
          continue;
        }
        switch (escaped) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'v': out += '\v'; break;
          case '\'': out += '\''; break;
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          default: pos_ -= 2; fail("Unexpected escaped character: " + std::string(1, escaped));
        }
        continue;
      }
      out.append(src_, pos_, next - pos_);
      pos_ = next;
      if (pos_ >= src_.size()) fail("Unexpected end of input");
    }
    return out;
  }

  std::string consume_digits() {
    return consume_while([](char32_t c) { return c >= '0' && c <= '9'; }, false);
  }

  void strip_trailing_whitespace() {
    if (!tokens_.empty() && tokens_.back().type == TokenType::Text) {
      tokens_.back().value = js_trim_end(tokens_.back().value);
      if (tokens_.back().value.empty()) tokens_.pop_back();
    }
  }

  void skip_leading_whitespace() { pos_ = skip_whitespace(src_, pos_); }

  void step() {
    const Token* previous = last();
    if (!previous || previous->type == TokenType::CloseStatement || previous->type == TokenType::CloseExpression ||
        previous->type == TokenType::Comment) {
      size_t start = pos_;
      while (pos_ < src_.size() && !(src_[pos_] == '{' && (at(pos_ + 1) == '%' || at(pos_ + 1) == '{' || at(pos_ + 1) == '#')))
        ++pos_;
      if (pos_ > start) {
        push(src_.substr(start, pos_ - start), TokenType::Text, start);
        return;
      }
    }

    if (at(pos_) == '{' && at(pos_ + 1) == '#') {
      size_t start = pos_;
      pos_ += 2;
      bool strip_before = at(pos_) == '-';
      if (strip_before) ++pos_;
      size_t comment_start = pos_;
      while (at(pos_) != '#' || at(pos_ + 1) != '}') {
        if (pos_ + 2 >= src_.size()) fail_at("Missing end of comment tag", origin(start));
        ++pos_;
      }
      std::string comment = src_.substr(comment_start, pos_ - comment_start);
      bool strip_after = !comment.empty() && comment.back() == '-';
      if (strip_after) comment.pop_back();
      if (strip_before) strip_trailing_whitespace();
      push(std::move(comment), TokenType::Comment, start);
      pos_ += 2;
      if (strip_after) skip_leading_whitespace();
      return;
    }

    if (starts("{%-")) {
      strip_trailing_whitespace();
      push("{%", TokenType::OpenStatement, pos_);
      pos_ += 3;
      return;
    }
    if (starts("{{-")) {
      strip_trailing_whitespace();
      push("{{", TokenType::OpenExpression, pos_);
      curly_depth_ = 0;
      pos_ += 3;
      return;
    }

    consume_while(is_js_whitespace, false);

    if (starts("-%}")) {
      push("%}", TokenType::CloseStatement, pos_);
      pos_ += 3;
      skip_leading_whitespace();
      return;
    }
    if (starts("-}}")) {
      push("}}", TokenType::CloseExpression, pos_);
      pos_ += 3;
      skip_leading_whitespace();
      return;
    }

    char c = at(pos_);
    size_t start = pos_;
    if (c == '-' || c == '+') {
      const Token* before = last();
      if (!before || before->type == TokenType::Text) fail(std::string("Unexpected character: ") + c);
      switch (before->type) {
        case TokenType::Identifier:
        case TokenType::NumericLiteral:
        case TokenType::StringLiteral:
        case TokenType::CloseParen:
        case TokenType::CloseSquareBracket: break;  // binary operator
        default: {
          ++pos_;
          std::string number = consume_digits();
          if (!number.empty() && at(pos_) == '.' && is_digit(at(pos_ + 1))) {
            ++pos_;
            number += "." + consume_digits();
          }
          bool numeric = !number.empty();
          push(std::string(1, c) + number, numeric ? TokenType::NumericLiteral : TokenType::UnaryOperator, start);
          return;
        }
      }
    }

    for (const auto& rule : kMappingTable) {
      if (rule.sequence == "}}" && curly_depth_ > 0) continue;
      if (starts(rule.sequence)) {
        push(std::string(rule.sequence), rule.type, start);
        if (rule.type == TokenType::OpenExpression) curly_depth_ = 0;
        if (rule.type == TokenType::OpenCurlyBracket) ++curly_depth_;
        if (rule.type == TokenType::CloseCurlyBracket) --curly_depth_;
        pos_ += rule.sequence.size();
        return;
      }
    }

    if (c == '\'' || c == '"') {
      ++pos_;
      std::string value = consume_while([c](char32_t x) { return x != static_cast<char32_t>(c); }, true);
      push(std::move(value), TokenType::StringLiteral, start);
      ++pos_;
      return;
    }
    if (is_digit(c)) {
      std::string number = consume_digits();
      if ((tokens_.empty() || tokens_.back().type != TokenType::Dot) && at(pos_) == '.' && is_digit(at(pos_ + 1))) {
        ++pos_;
        number += "." + consume_digits();
      }
      push(std::move(number), TokenType::NumericLiteral, start);
      return;
    }
    if (is_word(c)) {
      std::string word = consume_while([](char32_t x) { return x < 0x80 && is_word(static_cast<char>(x)); }, false);
      push(std::move(word), TokenType::Identifier, start);
      return;
    }
    if (pos_ >= src_.size()) fail("Unexpected end of input");
    size_t next = pos_;
    std::string character;
    append_utf8(character, next_code_point(src_, next));
    fail("Unexpected character: " + character);
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(preprocess(source)).run(); }

}  // namespace actcap::jinja
