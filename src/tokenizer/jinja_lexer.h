#pragma once
// Jinja lexer matching @huggingface/jinja's tokenize() with the options its Template uses
// (lstrip_blocks and trim_blocks on, the single trailing newline dropped, transformers' {% generation %} tags
// removed). Every token remembers its byte offset in the original source, for error messages.
#include <string>
#include <string_view>
#include <vector>

namespace actcap::jinja {

enum class TokenType {
  Text, NumericLiteral, StringLiteral, Identifier, Equals, OpenParen, CloseParen, OpenStatement, CloseStatement,
  OpenExpression, CloseExpression, OpenSquareBracket, CloseSquareBracket, OpenCurlyBracket, CloseCurlyBracket,
  Comma, Dot, Colon, Pipe, AdditiveBinaryOperator, MultiplicativeBinaryOperator, ExponentiationBinaryOperator,
  ComparisonBinaryOperator, UnaryOperator, Comment
};
const char* token_type_name(TokenType type);

struct Token {
  std::string value;
  TokenType type;
  size_t offset;  // in the original template source
};

// Throws TemplateFailure (with its offset) on a lexical error. The source must be valid UTF-8.
std::vector<Token> tokenize(std::string_view source);

// 1-based line and column (in code points) of a byte offset.
std::pair<size_t, size_t> line_and_column(std::string_view source, size_t offset);

}  // namespace actcap::jinja
