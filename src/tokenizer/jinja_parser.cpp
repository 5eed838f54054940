#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>
#include <set>
#include <string_view>

#include "tokenizer/jinja_value.h"

namespace actcap::jinja {

namespace {

using NodePtr = std::unique_ptr<Node>;

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, size_t source_size) : tokens_(tokens), end_offset_(source_size) {}

  NodePtr program() {
    auto root = std::make_unique<Node>(NodeKind::Program, 0);
    while (current_ < tokens_.size()) root->body.push_back(parse_any());
    return root;
  }

 private:
  const std::vector<Token>& tokens_;
  size_t end_offset_;
  size_t current_ = 0;

  size_t offset() const { return current_ < tokens_.size() ? tokens_[current_].offset : end_offset_; }
  [[noreturn]] void fail(const std::string& message, size_t at) const {
    TemplateFailure error(message);
    error.offset = at;
    throw error;
  }
  [[noreturn]] void fail(const std::string& message) const { fail(message, offset()); }
  NodePtr node(NodeKind kind, size_t at) const { return std::make_unique<Node>(kind, at); }

  // Counts the depth of the tree being built: one level per nested call of a recursive rule, one per link of an
  // operator chain (whose tree deepens with every link).
  int depth_ = 0;
  class Depth {
   public:
    explicit Depth(Parser& parser, int levels = 1) : parser_(parser) { add(levels); }
    ~Depth() { parser_.depth_ -= added_; }
    Depth(const Depth&) = delete;
    Depth& operator=(const Depth&) = delete;
    void add(int levels = 1) {
      added_ += levels;
      parser_.depth_ += levels;
      if (parser_.depth_ > kMaxTemplateDepth)
        parser_.fail("Template nested too deeply (more than " + std::to_string(kMaxTemplateDepth) + " levels)");
    }

   private:
    Parser& parser_;
    int added_ = 0;
  };

  const Token& expect(TokenType type, std::string_view error) {
    if (current_ >= tokens_.size()) {
      fail("Parser Error: " + std::string(error) + ". end of template !== " + token_type_name(type) + ".");
    }
    const Token& token = tokens_[current_++];
    if (token.type != type) {
      fail("Parser Error: " + std::string(error) + ". " + token_type_name(token.type) + " !== " + token_type_name(type) + ".",
           token.offset);
    }
    return token;
  }

  void expect_identifier(std::string_view name) {
    if (!is_identifier({name})) fail("Expected " + std::string(name));
    ++current_;
  }

  bool is(std::initializer_list<TokenType> types) const {
    if (current_ + types.size() > tokens_.size()) return false;
    size_t i = current_;
    for (TokenType type : types)
      if (tokens_[i++].type != type) return false;
    return true;
  }

  bool is_statement(std::initializer_list<std::string_view> names) const {
    if (current_ + 1 >= tokens_.size()) return false;
    if (tokens_[current_].type != TokenType::OpenStatement || tokens_[current_ + 1].type != TokenType::Identifier)
      return false;
    return std::find(names.begin(), names.end(), tokens_[current_ + 1].value) != names.end();
  }

  bool is_identifier(std::initializer_list<std::string_view> names) const {
    if (current_ + names.size() > tokens_.size()) return false;
    size_t i = current_;
    for (std::string_view name : names) {
      if (tokens_[i].type != TokenType::Identifier || tokens_[i].value != name) return false;
      ++i;
    }
    return true;
  }

  NodePtr parse_any() {
    Depth depth(*this);
    if (current_ >= tokens_.size()) fail("Unexpected end of template: a block is not closed");
    const Token& token = tokens_[current_];
    switch (token.type) {
      case TokenType::Comment: {
        auto comment = node(NodeKind::Comment, token.offset);
        comment->text = token.value;
        ++current_;
        return comment;
      }
      case TokenType::Text: {
        auto text = node(NodeKind::StringLiteral, token.offset);
        text->text = token.value;
        ++current_;
        return text;
      }
      case TokenType::OpenStatement: return parse_statement();
      case TokenType::OpenExpression: {
        expect(TokenType::OpenExpression, "Expected opening expression token");
        auto result = parse_expression();
        expect(TokenType::CloseExpression, "Expected closing expression token");
        return result;
      }
      default: fail(std::string("Unexpected token type: ") + token_type_name(token.type));
    }
  }

  void expect_end(std::string_view keyword) {
    expect(TokenType::OpenStatement, "Expected {% token");
    expect_identifier(keyword);
    expect(TokenType::CloseStatement, "Expected %} token");
  }

  void parse_until(std::vector<NodePtr>& into, std::initializer_list<std::string_view> names) {
    while (!is_statement(names)) into.push_back(parse_any());
  }

  NodePtr parse_statement() {
    size_t at = offset();
    expect(TokenType::OpenStatement, "Expected opening statement token");
    if (current_ >= tokens_.size()) fail("Unexpected end of template after {%");
    if (tokens_[current_].type != TokenType::Identifier)
      fail(std::string("Unknown statement, got ") + token_type_name(tokens_[current_].type));
    std::string name = tokens_[current_].value;
    NodePtr result;
    if (name == "set") {
      ++current_;
      result = parse_set(at);
    } else if (name == "if") {
      ++current_;
      result = parse_if(at);
      expect_end("endif");
    } else if (name == "macro") {
      ++current_;
      result = node(NodeKind::Macro, at);
      result->x = parse_primary();
      if (result->x->kind != NodeKind::Identifier) fail("Expected identifier following macro statement");
      parse_args(result->items, true);
      expect(TokenType::CloseStatement, "Expected closing statement token");
      parse_until(result->body, {"endmacro"});
      expect_end("endmacro");
    } else if (name == "for") {
      ++current_;
      result = parse_for(at);
      expect_end("endfor");
    } else if (name == "call") {
      ++current_;
      result = node(NodeKind::CallStatement, at);
      if (is({TokenType::OpenParen})) {
        result->flag = true;
        parse_args(result->items, true);
      }
      auto callee = parse_primary();
      if (callee->kind != NodeKind::Identifier) fail("Expected identifier following call statement");
      auto call = node(NodeKind::Call, callee->offset);
      call->x = std::move(callee);
      parse_args(call->items, false);
      result->x = std::move(call);
      expect(TokenType::CloseStatement, "Expected closing statement token");
      parse_until(result->body, {"endcall"});
      expect(TokenType::OpenStatement, "Expected '{%'");
      expect_identifier("endcall");
      expect(TokenType::CloseStatement, "Expected closing statement token");
    } else if (name == "break" || name == "continue") {
      ++current_;
      expect(TokenType::CloseStatement, "Expected closing statement token");
      result = node(name == "break" ? NodeKind::Break : NodeKind::Continue, at);
    } else if (name == "filter") {
      ++current_;
      result = node(NodeKind::FilterStatement, at);
      auto filter = parse_primary();
      if (filter->kind == NodeKind::Identifier && is({TokenType::OpenParen})) filter = parse_call(std::move(filter));
      result->y = std::move(filter);
      expect(TokenType::CloseStatement, "Expected closing statement token");
      parse_until(result->body, {"endfilter"});
      expect(TokenType::OpenStatement, "Expected '{%'");
      expect_identifier("endfilter");
      expect(TokenType::CloseStatement, "Expected '%}'");
    } else {
      fail("Unknown statement type: " + name);
    }
    return result;
  }

  NodePtr parse_set(size_t at) {
    auto result = node(NodeKind::Set, at);
    result->x = parse_expression_sequence(false);
    if (is({TokenType::Equals})) {
      ++current_;
      result->y = parse_expression_sequence(false);
    } else {
      expect(TokenType::CloseStatement, "Expected %} token");
      parse_until(result->body, {"endset"});
      expect(TokenType::OpenStatement, "Expected {% token");
      expect_identifier("endset");
    }
    expect(TokenType::CloseStatement, "Expected closing statement token");
    return result;
  }

  NodePtr parse_if(size_t at) {
    Depth depth(*this);
    auto result = node(NodeKind::If, at);
    result->x = parse_expression();
    expect(TokenType::CloseStatement, "Expected closing statement token");
    parse_until(result->body, {"elif", "else", "endif"});
    if (is_statement({"elif"})) {
      size_t elif_at = offset();
      current_ += 2;
      result->alternate.push_back(parse_if(elif_at));
    } else if (is_statement({"else"})) {
      current_ += 2;
      expect(TokenType::CloseStatement, "Expected closing statement token");
      parse_until(result->alternate, {"endif"});
    }
    return result;
  }

  NodePtr parse_expression_sequence(bool primary) {
    Depth depth(*this);
    size_t at = offset();
    auto parse_one = [&] { return primary ? parse_primary() : parse_expression(); };
    std::vector<NodePtr> expressions;
    expressions.push_back(parse_one());
    bool is_tuple = is({TokenType::Comma});
    while (is_tuple) {
      ++current_;
      expressions.push_back(parse_one());
      if (!is({TokenType::Comma})) break;
    }
    if (!is_tuple) return std::move(expressions[0]);
    auto tuple = node(NodeKind::TupleLiteral, at);
    tuple->items = std::move(expressions);
    return tuple;
  }

  NodePtr parse_for(size_t at) {
    auto result = node(NodeKind::For, at);
    result->x = parse_expression_sequence(true);
    if (result->x->kind != NodeKind::Identifier && result->x->kind != NodeKind::TupleLiteral)
      fail("Expected identifier/tuple for the loop variable");
    if (!is_identifier({"in"})) fail("Expected `in` keyword following loop variable");
    ++current_;
    result->y = parse_expression();
    expect(TokenType::CloseStatement, "Expected closing statement token");
    parse_until(result->body, {"endfor", "else"});
    if (is_statement({"else"})) {
      current_ += 2;
      expect(TokenType::CloseStatement, "Expected closing statement token");
      parse_until(result->alternate, {"endfor"});
    }
    return result;
  }

  NodePtr parse_expression() { return parse_if_expression(); }

  NodePtr parse_if_expression() {
    Depth depth(*this);
    auto a = parse_logical_or();
    if (is_identifier({"if"})) {
      size_t at = offset();
      ++current_;
      auto test = parse_logical_or();
      if (is_identifier({"else"})) {
        ++current_;
        auto ternary = node(NodeKind::Ternary, at);
        ternary->x = std::move(test);
        ternary->y = std::move(a);
        ternary->z = parse_if_expression();
        return ternary;
      }
      auto select = node(NodeKind::Select, at);
      select->x = std::move(a);
      select->y = std::move(test);
      return select;
    }
    return a;
  }

  NodePtr binary(std::string op, NodePtr left, NodePtr right, size_t at) {
    auto result = node(NodeKind::Binary, at);
    result->text = std::move(op);
    result->x = std::move(left);
    result->y = std::move(right);
    return result;
  }

  NodePtr parse_logical_or() {
    Depth depth(*this, 0);
    auto left = parse_logical_and();
    while (is_identifier({"or"})) {
      depth.add();
      size_t at = offset();
      ++current_;
      left = binary("or", std::move(left), parse_logical_and(), at);
    }
    return left;
  }

  NodePtr parse_logical_and() {
    Depth depth(*this, 0);
    auto left = parse_logical_not();
    while (is_identifier({"and"})) {
      depth.add();
      size_t at = offset();
      ++current_;
      left = binary("and", std::move(left), parse_logical_not(), at);
    }
    return left;
  }

  NodePtr parse_logical_not() {
    Depth depth(*this);
    NodePtr right;
    while (is_identifier({"not"})) {
      size_t at = offset();
      ++current_;
      auto unary = node(NodeKind::Unary, at);
      unary->text = "not";
      unary->x = parse_logical_not();
      right = std::move(unary);
    }
    return right ? std::move(right) : parse_comparison();
  }

  NodePtr parse_comparison() {
    Depth depth(*this, 0);
    auto left = parse_additive();
    while (true) {
      size_t at = offset();
      std::string op;
      if (is_identifier({"not", "in"})) {
        op = "not in";
        current_ += 2;
      } else if (is_identifier({"in"})) {
        op = "in";
        ++current_;
      } else if (is({TokenType::ComparisonBinaryOperator})) {
        op = tokens_[current_++].value;
      } else {
        break;
      }
      depth.add();
      left = binary(op, std::move(left), parse_additive(), at);
    }
    return left;
  }

  NodePtr parse_additive() {
    Depth depth(*this, 0);
    auto left = parse_multiplicative();
    while (is({TokenType::AdditiveBinaryOperator})) {
      depth.add();
      size_t at = offset();
      std::string op = tokens_[current_++].value;
      left = binary(op, std::move(left), parse_multiplicative(), at);
    }
    return left;
  }

  NodePtr parse_call_member() {
    auto member = parse_member(parse_primary());
    if (is({TokenType::OpenParen})) return parse_call(std::move(member));
    return member;
  }

  NodePtr parse_call(NodePtr callee) {
    Depth depth(*this);
    auto call = node(NodeKind::Call, callee->offset);
    call->x = std::move(callee);
    parse_args(call->items, false);
    NodePtr expression = parse_member(std::move(call));
    if (is({TokenType::OpenParen})) expression = parse_call(std::move(expression));
    return expression;
  }

  void parse_args(std::vector<NodePtr>& into, bool parameters) {
    expect(TokenType::OpenParen, "Expected opening parenthesis for arguments list");
    std::set<std::string> parameter_names;
    bool saw_keyword = false, saw_spread = false;
    while (!is({TokenType::CloseParen})) {
      if (current_ >= tokens_.size()) fail("Unexpected end of template in an argument list");
      size_t at = offset();
      bool keyword_spread = is({TokenType::ExponentiationBinaryOperator});
      bool positional_spread = is({TokenType::MultiplicativeBinaryOperator}) && tokens_[current_].value == "*";
      if (parameters && (keyword_spread || positional_spread))
        fail("Argument unpacking is not allowed in parameter declarations");
      if (keyword_spread) {
        ++current_;
        auto spread = node(NodeKind::KeywordSpread, at);
        spread->x = parse_expression();
        into.push_back(std::move(spread));
        if (is({TokenType::Comma})) ++current_;
        if (!is({TokenType::CloseParen}))
          fail("Expected closing parenthesis: `**` must be applied to the final argument");
        break;
      }
      NodePtr argument;
      if (positional_spread) {
        if (saw_spread) fail("Only one `*` argument unpacking is allowed");
        saw_spread = true;
        ++current_;
        argument = node(NodeKind::Spread, at);
        argument->x = parse_expression();
      } else {
        argument = parse_expression();
        if (is({TokenType::Equals})) {
          ++current_;
          if (argument->kind != NodeKind::Identifier)
            fail(parameters ? "Expected identifier for parameter declaration" : "Expected identifier for keyword argument");
          auto keyword = node(NodeKind::KeywordArgument, argument->offset);
          keyword->text = argument->text;
          keyword->y = parse_expression();
          argument = std::move(keyword);
        }
        if (parameters) {
          if (argument->kind != NodeKind::Identifier && argument->kind != NodeKind::KeywordArgument)
            fail("Expected identifier for parameter declaration");
          if (!parameter_names.insert(argument->text).second) fail("Duplicate parameter name: " + argument->text);
        }
        if (argument->kind == NodeKind::KeywordArgument) {
          saw_keyword = true;
        } else if (saw_keyword) {
          fail(parameters ? "Non-default argument follows default argument"
                          : "Positional arguments must come before keyword arguments");
        } else if (saw_spread) {
          fail("Positional arguments must not follow `*` argument unpacking");
        }
      }
      into.push_back(std::move(argument));
      if (is({TokenType::Comma})) ++current_;
    }
    expect(TokenType::CloseParen, "Expected closing parenthesis for arguments list");
  }

  NodePtr parse_member_arguments() {
    size_t at = offset();
    std::vector<NodePtr> slices;
    bool is_slice = false;
    while (!is({TokenType::CloseSquareBracket})) {
      if (current_ >= tokens_.size()) fail("Unexpected end of template in a subscript");
      if (is({TokenType::Colon})) {
        slices.push_back(nullptr);
        ++current_;
        is_slice = true;
      } else {
        slices.push_back(parse_expression());
        if (is({TokenType::Colon})) {
          ++current_;
          is_slice = true;
        }
      }
    }
    if (slices.empty()) fail("Expected at least one argument for member/slice expression");
    if (!is_slice) return std::move(slices[0]);
    if (slices.size() > 3) fail("Expected 0-3 arguments for slice expression");
    auto slice = node(NodeKind::Slice, at);
    slices.resize(3);
    slice->x = std::move(slices[0]);
    slice->y = std::move(slices[1]);
    slice->z = std::move(slices[2]);
    return slice;
  }

  NodePtr parse_member(NodePtr object) {
    Depth depth(*this, 0);
    while (is({TokenType::Dot}) || is({TokenType::OpenSquareBracket})) {
      depth.add();
      size_t at = offset();
      bool computed = tokens_[current_++].type == TokenType::OpenSquareBracket;
      NodePtr property;
      if (computed) {
        property = parse_member_arguments();
        expect(TokenType::CloseSquareBracket, "Expected closing square bracket");
      } else {
        property = parse_primary();
        if (property->kind != NodeKind::Identifier && property->kind != NodeKind::IntegerLiteral)
          fail("Expected identifier or integer following dot operator", property->offset);
      }
      auto member = node(NodeKind::Member, at);
      member->flag = computed;
      member->x = std::move(object);
      member->y = std::move(property);
      object = std::move(member);
    }
    return object;
  }

  NodePtr parse_multiplicative() {
    Depth depth(*this, 0);
    auto left = parse_power();
    while (is({TokenType::MultiplicativeBinaryOperator})) {
      depth.add();
      size_t at = offset();
      std::string op = tokens_[current_++].value;
      left = binary(op, std::move(left), parse_power(), at);
    }
    return left;
  }

  NodePtr parse_power() {
    Depth depth(*this, 0);
    auto left = parse_test();
    while (is({TokenType::ExponentiationBinaryOperator})) {
      depth.add();
      size_t at = offset();
      ++current_;
      left = binary("**", std::move(left), parse_test(), at);
    }
    return left;
  }

  NodePtr parse_test() {
    Depth depth(*this, 0);
    auto operand = parse_filter();
    while (is_identifier({"is"})) {
      depth.add();
      size_t at = offset();
      ++current_;
      bool negate = is_identifier({"not"});
      if (negate) ++current_;
      auto name = parse_primary();
      if (name->kind != NodeKind::Identifier) fail("Expected identifier for the test", name->offset);
      auto test = node(NodeKind::Test, at);
      test->flag = negate;
      test->text = name->text;
      test->x = std::move(operand);
      operand = std::move(test);
    }
    return operand;
  }

  NodePtr parse_filter() {
    Depth depth(*this, 0);
    auto operand = parse_unary_sign();
    while (is({TokenType::Pipe})) {
      depth.add();
      size_t at = offset();
      ++current_;
      auto filter = parse_primary();
      if (filter->kind != NodeKind::Identifier) fail("Expected identifier for the filter", filter->offset);
      if (is({TokenType::OpenParen})) filter = parse_call(std::move(filter));
      auto expression = node(NodeKind::Filter, at);
      expression->x = std::move(operand);
      expression->y = std::move(filter);
      operand = std::move(expression);
    }
    return operand;
  }

  NodePtr parse_unary_sign() {
    Depth depth(*this);
    if (current_ < tokens_.size()) {
      const Token& token = tokens_[current_];
      if ((token.type == TokenType::UnaryOperator || token.type == TokenType::AdditiveBinaryOperator) &&
          (token.value == "-" || token.value == "+")) {
        ++current_;
        auto unary = node(NodeKind::Unary, token.offset);
        unary->text = token.value;
        unary->x = parse_unary_sign();
        return unary;
      }
    }
    return parse_call_member();
  }

  NodePtr parse_primary() {
    if (current_ >= tokens_.size()) fail("Unexpected end of template in an expression");
    const Token& token = tokens_[current_++];
    switch (token.type) {
      case TokenType::NumericLiteral: {
        bool is_float = token.value.find('.') != std::string::npos;
        auto literal = node(is_float ? NodeKind::FloatLiteral : NodeKind::IntegerLiteral, token.offset);
        literal->number = std::stod(token.value);
        return literal;
      }
      case TokenType::StringLiteral: {
        auto literal = node(NodeKind::StringLiteral, token.offset);
        literal->text = token.value;
        while (is({TokenType::StringLiteral})) literal->text += tokens_[current_++].value;
        return literal;
      }
      case TokenType::Identifier: {
        auto identifier = node(NodeKind::Identifier, token.offset);
        identifier->text = token.value;
        return identifier;
      }
      case TokenType::OpenParen: {
        auto expression = parse_expression_sequence(false);
        expect(TokenType::CloseParen, "Expected closing parenthesis");
        return expression;
      }
      case TokenType::OpenSquareBracket: {
        auto array = node(NodeKind::ArrayLiteral, token.offset);
        while (!is({TokenType::CloseSquareBracket})) {
          if (current_ >= tokens_.size()) fail("Unexpected end of template in a list");
          array->items.push_back(parse_expression());
          if (is({TokenType::Comma})) ++current_;
        }
        ++current_;
        return array;
      }
      case TokenType::OpenCurlyBracket: {
        auto object = node(NodeKind::ObjectLiteral, token.offset);
        while (!is({TokenType::CloseCurlyBracket})) {
          if (current_ >= tokens_.size()) fail("Unexpected end of template in a mapping");
          object->items.push_back(parse_expression());
          expect(TokenType::Colon, "Expected colon between key and value in object literal");
          object->values.push_back(parse_expression());
          if (is({TokenType::Comma})) ++current_;
        }
        ++current_;
        return object;
      }
      default: fail(std::string("Unexpected token: ") + token_type_name(token.type), token.offset);
    }
  }
};

}  // namespace

std::unique_ptr<Node> parse(const std::vector<Token>& tokens, size_t source_size) {
  return Parser(tokens, source_size).program();
}

}  // namespace actcap::jinja
