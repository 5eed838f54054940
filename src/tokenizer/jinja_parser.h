#pragma once
// Parser from tokens to the AST, a port of @huggingface/jinja's parse(): same grammar, precedence and
// syntax errors.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_lexer.h"

namespace actcap::jinja {

enum class NodeKind {
  Program, If, For, Break, Continue, Set, Macro, Comment, CallStatement, FilterStatement,
  // expressions
  Member, Call, Identifier, IntegerLiteral, FloatLiteral, StringLiteral, ArrayLiteral, TupleLiteral, ObjectLiteral,
  Binary, Filter, Select, Test, Unary, Slice, KeywordArgument, Spread, KeywordSpread, Ternary
};

// One node type for the whole tree; which fields a kind uses is listed beside each.
struct Node {
  NodeKind kind;
  size_t offset = 0;  // in the original source
  std::string text;   // Identifier name, StringLiteral value, operator, Test name, KeywordArgument key
  double number = 0;  // Integer/FloatLiteral
  bool flag = false;  // Member: computed; Test: negated; CallStatement: has caller parameters
  // If: x test, body, alternate. For: x loop variable, y iterable, body, alternate (else block).
  // Set: x target, y value (may be null), body. Macro: x name, items parameters, body.
  // CallStatement: x call, items caller parameters, body. FilterStatement: y filter, body.
  // Member: x object, y property. Call: x callee, items arguments. Array/TupleLiteral: items.
  // ObjectLiteral: items keys, values. Binary: x, y. Filter: x operand, y filter (Identifier or Call).
  // Select: x value, y test. Test: x operand. Unary: x. Slice: x start, y stop, z step (each may be null).
  // KeywordArgument: y value. Spread/KeywordSpread: x. Ternary: x condition, y if true, z if false.
  std::unique_ptr<Node> x, y, z;
  std::vector<std::unique_ptr<Node>> body, alternate, items, values;

  Node(NodeKind k, size_t at) : kind(k), offset(at) {}
};

// Templates nested deeper than this (blocks, parentheses, operator chains such as a+a+...+a all deepen the tree)
// are refused: parsing, rendering and freeing such a tree would overflow the stack. Real chat templates stay
// far below it.
constexpr int kMaxTemplateDepth = 200;

// Throws TemplateFailure (with its offset) on a syntax error or a tree deeper than kMaxTemplateDepth.
std::unique_ptr<Node> parse(const std::vector<Token>& tokens, size_t source_size);

}  // namespace actcap::jinja
