#include "tokenizer/jinja_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <optional>
#include <set>
#include <unordered_set>

#include "tokenizer/jinja_string.h"

namespace actcap::jinja {

Value Environment::lookup(const std::string& name) const {
  for (const Environment* env = this; env; env = env->parent_.get()) {
    auto it = env->variables_.find(name);
    if (it != env->variables_.end()) return it->second;
  }
  return Value::undefined();
}

namespace {

struct BreakSignal {};
struct ContinueSignal {};

using Arguments = std::vector<Value>;

std::string type_of(const Value& v) { return type_name(v.kind); }

// JS truthiness of the raw value behind a runtime value (arrays and maps are always truthy there).
bool raw_truthy(const Value& v) {
  if (v.is_array() || v.is_attribute_container()) return true;
  return truthy(v);
}

// What Array.prototype.join makes of one raw value.
std::string join_piece(const Value& v) {
  if (v.is(Kind::Null) || v.is(Kind::Undefined)) return "";
  return primitive_string(v);
}

// ---------------------------------------------------------------------------------------------------------
// Builtin methods of strings, objects and arrays (what `value.name` finds when not an object key).

std::string js_replace(const std::string& text, const std::string& old_value, const std::string& new_value,
                       std::optional<double> count) {
  if (count && *count == 0) return text;
  double remaining = !count || *count < 0 ? INFINITY : *count;
  std::string out;
  if (old_value.empty()) {
    // /(?=)/gu matches before every code point and at the end.
    size_t pos = 0;
    while (true) {
      if (remaining > 0) {
        out += new_value;
        --remaining;
      }
      if (pos >= text.size()) break;
      size_t next = pos;
      next_code_point(text, next);
      out.append(text, pos, next - pos);
      pos = next;
    }
    return out;
  }
  size_t pos = 0;
  while (remaining > 0) {
    size_t found = text.find(old_value, pos);
    if (found == std::string::npos) break;
    out.append(text, pos, found - pos);
    out += new_value;
    pos = found + old_value.size();
    --remaining;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

Value string_split(const std::string& text, const Arguments& args) {
  Value sep = args.size() > 0 ? args[0] : Value::null();
  if (!sep.is(Kind::String) && !sep.is(Kind::Null)) failure("sep argument must be a string or null");
  Value maxsplit_value = args.size() > 1 ? args[1] : Value::integer(-1);
  if (!maxsplit_value.is(Kind::Integer)) failure("maxsplit argument must be a number");
  double maxsplit = maxsplit_value.number;
  std::vector<std::string> parts;
  if (sep.is(Kind::Null)) {
    std::string rest = js_trim_start(text);
    size_t pos = 0;
    while (pos < rest.size()) {
      while (size_t n = js_whitespace_length_at(rest, pos)) pos += n;
      if (pos >= rest.size()) break;
      size_t start = pos;
      while (pos < rest.size() && js_whitespace_length_at(rest, pos) == 0) next_code_point(rest, pos);
      if (maxsplit != -1 && static_cast<double>(parts.size()) >= maxsplit) {
        parts.push_back(rest.substr(start));
        break;
      }
      parts.push_back(rest.substr(start, pos - start));
    }
  } else {
    const std::string& separator = sep.string;
    if (separator.empty()) failure("empty separator");
    size_t pos = 0;
    while (true) {
      size_t found = text.find(separator, pos);
      if (found == std::string::npos) {
        parts.push_back(text.substr(pos));
        break;
      }
      parts.push_back(text.substr(pos, found - pos));
      pos = found + separator.size();
    }
    if (maxsplit != -1 && static_cast<double>(parts.size()) > maxsplit) {
      // result.push(result.splice(maxsplit).join(sep))
      double n = static_cast<double>(parts.size());
      double start = maxsplit < 0 ? std::max(n + maxsplit, 0.0) : std::min(maxsplit, n);
      size_t keep = static_cast<size_t>(start);
      std::string joined;
      for (size_t i = keep; i < parts.size(); ++i) {
        if (i > keep) joined += separator;
        joined += parts[i];
      }
      parts.resize(keep);
      parts.push_back(joined);
    }
  }
  Array items;
  for (auto& part : parts) items.push_back(Value::from_string(std::move(part)));
  return Value::from_array(std::move(items));
}

Value string_affix_test(const std::string& text, const Arguments& args, const char* name, bool prefix) {
  auto matches = [&](const std::string& affix) {
    if (affix.size() > text.size()) return false;
    return prefix ? text.compare(0, affix.size(), affix) == 0
                  : text.compare(text.size() - affix.size(), affix.size(), affix) == 0;
  };
  if (args.empty()) failure(fmt::format("{}() requires at least one argument", name));
  const Value& pattern = args[0];
  if (pattern.is(Kind::String)) return Value::from_bool(matches(pattern.string));
  if (pattern.is_array()) {
    for (const auto& item : *pattern.array) {
      if (!item.is(Kind::String)) failure(fmt::format("{}() tuple elements must be strings", name));
      if (matches(item.string)) return Value::from_bool(true);
    }
    return Value::from_bool(false);
  }
  failure(fmt::format("{}() argument must be a string or tuple of strings", name));
}

std::string title_case(const std::string& text) {
  // /\b\w/g with ASCII word characters: upper-case a word character that follows a non-word one.
  auto is_word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::string out = text;
  for (size_t i = 0; i < out.size(); ++i) {
    if (is_word(out[i]) && (i == 0 || !is_word(out[i - 1])) && out[i] >= 'a' && out[i] <= 'z') out[i] -= 32;
  }
  return out;
}

std::string capitalize(const std::string& text) {
  if (text.empty()) return text;
  size_t pos = 0;
  char32_t first = next_code_point(text, pos);
  if (first >= 0x10000) return text;  // charAt(0) is half a surrogate pair: unchanged
  return js_to_upper(text.substr(0, pos)) + text.substr(pos);
}

std::optional<Value> string_builtin(const Value& self, const std::string& name) {
  const std::string text = self.string;
  auto method = [](auto body) { return Value::from_function(std::move(body)); };
  if (name == "upper") return method([text](Arguments&, const Scope&) { return Value::from_string(js_to_upper(text)); });
  if (name == "lower") return method([text](Arguments&, const Scope&) { return Value::from_string(js_to_lower(text)); });
  if (name == "strip") return method([text](Arguments&, const Scope&) { return Value::from_string(js_trim(text)); });
  if (name == "rstrip") return method([text](Arguments&, const Scope&) { return Value::from_string(js_trim_end(text)); });
  if (name == "lstrip")
    return method([text](Arguments&, const Scope&) { return Value::from_string(js_trim_start(text)); });
  if (name == "title") return method([text](Arguments&, const Scope&) { return Value::from_string(title_case(text)); });
  if (name == "capitalize")
    return method([text](Arguments&, const Scope&) { return Value::from_string(capitalize(text)); });
  if (name == "length") return Value::integer(static_cast<double>(utf16_length(text)));
  if (name == "startswith")
    return method([text](Arguments& a, const Scope&) { return string_affix_test(text, a, "startswith", true); });
  if (name == "endswith")
    return method([text](Arguments& a, const Scope&) { return string_affix_test(text, a, "endswith", false); });
  if (name == "split") return method([text](Arguments& a, const Scope&) { return string_split(text, a); });
  if (name == "replace") {
    return method([text](Arguments& args, const Scope&) {
      if (args.size() < 2) failure("replace() requires at least two arguments");
      if (!args[0].is(Kind::String) || !args[1].is(Kind::String)) failure("replace() arguments must be strings");
      Value count = Value::null();
      if (args.size() > 2) {
        if (args[2].is(Kind::KeywordArguments)) {
          const Value* c = args[2].object->find("count");
          count = c ? *c : Value::null();
        } else {
          count = args[2];
        }
      }
      if (!count.is(Kind::Integer) && !count.is(Kind::Null))
        failure("replace() count argument must be a number or null");
      std::optional<double> limit;
      if (count.is(Kind::Integer)) limit = count.number;
      return Value::from_string(js_replace(text, args[0].string, args[1].string, limit));
    });
  }
  return std::nullopt;
}

// compareRuntimeValues: the ordering used by sort and dictsort.
int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  if (a.is(Kind::Null) && b.is(Kind::Null)) return 0;
  if (a.is(Kind::Null) || b.is(Kind::Null)) failure(fmt::format("Cannot compare {} with {}", type_of(a), type_of(b)));
  if (a.is(Kind::Undefined) && b.is(Kind::Undefined)) return 0;
  if (a.is(Kind::Undefined) || b.is(Kind::Undefined))
    failure(fmt::format("Cannot compare {} with {}", type_of(a), type_of(b)));
  if (a.is_numeric_like() && b.is_numeric_like()) {
    double x = a.numeric(), y = b.numeric();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind != b.kind) failure(fmt::format("Cannot compare different types: {} and {}", type_of(a), type_of(b)));
  if (a.is(Kind::String)) {
    if (case_sensitive) return compare_utf16(a.string, b.string);
    return compare_utf16(js_to_lower(a.string), js_to_lower(b.string));
  }
  failure("Cannot compare type: " + type_of(a));
}

Value object_items(const Object& object) {
  Array items;
  for (const auto& [key, value] : object.entries)
    items.push_back(Value::from_array({Value::from_string(key), value}));
  return Value::from_array(std::move(items));
}

std::optional<Value> object_builtin(const Value& self, const std::string& name) {
  std::shared_ptr<Object> object = self.object;
  if (name == "get") {
    return Value::from_function([object](Arguments& args, const Scope&) {
      if (args.empty()) failure("Object key must be a string: got nothing");
      if (!args[0].is(Kind::String)) failure("Object key must be a string: got " + type_of(args[0]));
      if (const Value* found = object->find(args[0].string)) return *found;
      return args.size() > 1 ? args[1] : Value::null();
    });
  }
  if (name == "items") return Value::from_function([object](Arguments&, const Scope&) { return object_items(*object); });
  if (name == "keys") {
    return Value::from_function([object](Arguments&, const Scope&) {
      Array keys;
      for (const auto& entry : object->entries) keys.push_back(Value::from_string(entry.first));
      return Value::from_array(std::move(keys));
    });
  }
  if (name == "values") {
    return Value::from_function([object](Arguments&, const Scope&) {
      Array values;
      for (const auto& entry : object->entries) values.push_back(entry.second);
      return Value::from_array(std::move(values));
    });
  }
  if (name == "dictsort") {
    return Value::from_function([object](Arguments& args, const Scope&) {
      const Object* keywords = nullptr;
      Arguments positional;
      for (const auto& arg : args) {
        if (arg.is(Kind::KeywordArguments)) {
          keywords = arg.object.get();
        } else {
          positional.push_back(arg);
        }
      }
      auto option = [&](size_t index, const char* key, Value fallback) {
        if (index < positional.size()) return positional[index];
        if (keywords)
          if (const Value* v = keywords->find(key)) return *v;
        return fallback;
      };
      Value case_sensitive = option(0, "case_sensitive", Value::from_bool(false));
      if (!case_sensitive.is(Kind::Boolean)) failure("case_sensitive must be a boolean");
      Value by = option(1, "by", Value::from_string("key"));
      if (!by.is(Kind::String)) failure("by must be a string");
      if (by.string != "key" && by.string != "value") failure("by must be either 'key' or 'value'");
      Value reverse = option(2, "reverse", Value::from_bool(false));
      if (!reverse.is(Kind::Boolean)) failure("reverse must be a boolean");
      size_t index = by.string == "key" ? 0 : 1;
      Array items = *object_items(*object).array;
      std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
        int result = compare_values((*a.array)[index], (*b.array)[index], case_sensitive.boolean);
        return (reverse.boolean ? -result : result) < 0;
      });
      return Value::from_array(std::move(items));
    });
  }
  return std::nullopt;
}

std::optional<Value> builtin(const Value& self, const std::string& name) {
  if (self.is(Kind::String)) return string_builtin(self, name);
  if (self.is_object()) return object_builtin(self, name);
  if (self.is_array() && name == "length") return Value::integer(static_cast<double>(self.array->size()));
  return std::nullopt;
}

// getAttributeValue: "a.b.0" through mappings and arrays.
Value attribute_path(const Value& item, const std::string& path) {
  Value value = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (value.is_attribute_container()) {
      const Value* found = value.object->find(part);
      value = found ? *found : Value::undefined();
    } else if (value.is_array()) {
      double index;
      if (js_parse_int(part, index) && index >= 0 && index < static_cast<double>(value.array->size())) {
        value = (*value.array)[static_cast<size_t>(index)];
      } else {
        return Value::undefined();
      }
    } else {
      return Value::undefined();
    }
    if (dot == std::string::npos) return value;
    start = dot + 1;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Tests (`x is name`).

using Test = std::function<bool(const Value&, const std::optional<Value>&)>;

const Test* find_test(const std::string& name) {
  static const std::unordered_map<std::string, Test> tests = [] {
    std::unordered_map<std::string, Test> t;
    auto unary = [](std::function<bool(const Value&)> f) {
      return Test([f](const Value& v, const std::optional<Value>&) { return f(v); });
    };
    t["boolean"] = unary([](const Value& v) { return v.is(Kind::Boolean); });
    t["callable"] = unary([](const Value& v) { return v.is(Kind::Function); });
    t["odd"] = unary([](const Value& v) {
      if (!v.is(Kind::Integer)) failure("cannot odd on " + type_of(v));
      return std::fmod(v.number, 2) != 0;
    });
    t["even"] = unary([](const Value& v) {
      if (!v.is(Kind::Integer)) failure("cannot even on " + type_of(v));
      return std::fmod(v.number, 2) == 0;
    });
    t["false"] = unary([](const Value& v) { return v.is(Kind::Boolean) && !v.boolean; });
    t["true"] = unary([](const Value& v) { return v.is(Kind::Boolean) && v.boolean; });
    t["none"] = unary([](const Value& v) { return v.is(Kind::Null); });
    t["string"] = unary([](const Value& v) { return v.is(Kind::String); });
    t["number"] = unary([](const Value& v) { return v.is_number(); });
    t["integer"] = unary([](const Value& v) { return v.is(Kind::Integer); });
    t["iterable"] = unary([](const Value& v) { return v.is(Kind::Array) || v.is(Kind::String); });
    t["mapping"] = unary([](const Value& v) { return v.is_object(); });
    t["sequence"] = unary([](const Value& v) { return v.is_array() || v.is_object() || v.is(Kind::String); });
    t["lower"] = unary([](const Value& v) { return v.is(Kind::String) && v.string == js_to_lower(v.string); });
    t["upper"] = unary([](const Value& v) { return v.is(Kind::String) && v.string == js_to_upper(v.string); });
    t["defined"] = unary([](const Value& v) { return !v.is(Kind::Undefined); });
    t["undefined"] = unary([](const Value& v) { return v.is(Kind::Undefined); });
    Test equal = [](const Value& a, const std::optional<Value>& b) {
      if (!b) failure("equalto needs a value to compare with");
      return strict_equals(a, *b);
    };
    t["equalto"] = equal;
    t["eq"] = equal;
    return t;
  }();
  auto it = tests.find(name);
  return it == tests.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------------------------------------

// Whether `value` contains (or is) `target`, through lists and mappings.
bool reaches(const Value& value, const Object* target, std::unordered_set<const void*>& seen, int depth = 0) {
  if (depth > kMaxValueDepth) failure("Value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  if (value.object) {
    if (value.object.get() == target) return true;
    if (!seen.insert(value.object.get()).second) return false;
    for (const auto& [key, item] : value.object->entries)
      if (reaches(item, target, seen, depth + 1)) return true;
  }
  if (value.array && seen.insert(value.array.get()).second)
    for (const auto& item : *value.array)
      if (reaches(item, target, seen, depth + 1)) return true;
  return false;
}

class Interpreter {
 public:
  Value evaluate(const Node* node, const Scope& env) {
    if (!node) return Value::undefined();
    try {
      // Macros can call themselves: bound the recursion (the parser already bounds the tree's own depth).
      step();
      if (depth_ >= kMaxRenderDepth)
        failure("Recursion too deep (more than " + std::to_string(kMaxRenderDepth) + " nested evaluations)");
      ++depth_;
      struct Leave {
        int& depth;
        ~Leave() { --depth; }
      } leave{depth_};
      return evaluate_node(*node, env);
    } catch (TemplateFailure& error) {
      if (error.offset == SIZE_MAX) error.offset = node->offset;
      throw;
    }
  }

  std::string evaluate_block(const std::vector<std::unique_ptr<Node>>& statements, const Scope& env) {
    std::string result;
    for (const auto& statement : statements) {
      Value value = evaluate(statement.get(), env);
      if (value.is(Kind::Null) || value.is(Kind::Undefined)) continue;
      try {
        append_output(result, display_string(value));
      } catch (TemplateFailure& error) {
        if (error.offset == SIZE_MAX) error.offset = statement->offset;
        throw;
      }
    }
    return result;
  }

 private:
  static constexpr int kMaxRenderDepth = 2 * kMaxTemplateDepth;
  uint64_t steps_ = 0;
  int depth_ = 0;

  // One unit of work (an evaluation, a loop iteration): bounds the time a template can take.
  void step() {
    if (++steps_ > kMaxRenderSteps)
      failure("Template takes more than " + std::to_string(kMaxRenderSteps) + " evaluation steps");
  }
  static void append_output(std::string& out, const std::string& piece) {
    out += piece;
    if (out.size() > kMaxStringBytes) failure("Output exceeds the limit of " + std::to_string(kMaxStringBytes) + " bytes");
  }

  Value evaluate_node(const Node& node, const Scope& env) {
    switch (node.kind) {
      case NodeKind::Program: return Value::from_string(evaluate_block(node.body, env));
      case NodeKind::Set: return evaluate_set(node, env);
      case NodeKind::If: {
        bool test = truthy(evaluate(node.x.get(), env));
        return Value::from_string(evaluate_block(test ? node.body : node.alternate, env));
      }
      case NodeKind::For: return evaluate_for(node, env);
      case NodeKind::Macro: return evaluate_macro(node, env);
      case NodeKind::CallStatement: return evaluate_call_statement(node, env);
      case NodeKind::Break: throw BreakSignal{};
      case NodeKind::Continue: throw ContinueSignal{};
      case NodeKind::IntegerLiteral: return Value::integer(node.number);
      case NodeKind::FloatLiteral: return Value::floating(node.number);
      case NodeKind::StringLiteral: return Value::from_string(node.text);
      case NodeKind::ArrayLiteral:
      case NodeKind::TupleLiteral: {
        Array items;
        for (const auto& item : node.items) items.push_back(evaluate(item.get(), env));
        return Value::from_array(std::move(items), node.kind == NodeKind::ArrayLiteral ? Kind::Array : Kind::Tuple);
      }
      case NodeKind::ObjectLiteral: {
        Object object;
        for (size_t i = 0; i < node.items.size(); ++i) {
          Value key = evaluate(node.items[i].get(), env);
          if (!key.is(Kind::String)) failure("Object keys must be strings: got " + type_of(key));
          object.set(key.string, evaluate(node.values[i].get(), env));
        }
        return Value::from_object(std::move(object));
      }
      case NodeKind::Identifier: return env->lookup(node.text);
      case NodeKind::Call: return evaluate_call(node, env);
      case NodeKind::Member: return evaluate_member(node, env);
      case NodeKind::Unary: return evaluate_unary(node, env);
      case NodeKind::Binary: return evaluate_binary(node, env);
      case NodeKind::Filter: return apply_filter(evaluate(node.x.get(), env), *node.y, env);
      case NodeKind::FilterStatement: return apply_filter(Value::from_string(evaluate_block(node.body, env)), *node.y, env);
      case NodeKind::Test: {
        Value operand = evaluate(node.x.get(), env);
        const Test* test = find_test(node.text);
        if (!test) failure("Unknown test: " + node.text);
        bool result = (*test)(operand, std::nullopt);
        return Value::from_bool(node.flag ? !result : result);
      }
      case NodeKind::Select: {
        if (!truthy(evaluate(node.y.get(), env))) return Value::undefined();
        return evaluate(node.x.get(), env);
      }
      case NodeKind::Ternary:
        return truthy(evaluate(node.x.get(), env)) ? evaluate(node.y.get(), env) : evaluate(node.z.get(), env);
      case NodeKind::Comment: return Value::null();
      default: failure("Unknown node type");
    }
  }

  std::pair<Arguments, Object> evaluate_arguments(const std::vector<std::unique_ptr<Node>>& args, const Scope& env) {
    Arguments positional;
    Object keywords;
    auto add_keyword = [&](const std::string& key, Value value) {
      if (keywords.find(key)) failure("Got multiple values for keyword argument '" + key + "'");
      keywords.entries.emplace_back(key, std::move(value));
    };
    for (const auto& arg : args) {
      if (arg->kind == NodeKind::Spread) {
        Value value = evaluate(arg->x.get(), env);
        if (!value.is_array()) failure("Cannot unpack non-iterable type: " + type_of(value));
        for (const auto& item : *value.array) positional.push_back(item);
      } else if (arg->kind != NodeKind::KeywordArgument && arg->kind != NodeKind::KeywordSpread) {
        positional.push_back(evaluate(arg.get(), env));
      }
    }
    for (const auto& arg : args) {
      if (arg->kind == NodeKind::KeywordArgument) {
        add_keyword(arg->text, evaluate(arg->y.get(), env));
      } else if (arg->kind == NodeKind::KeywordSpread) {
        Value value = evaluate(arg->x.get(), env);
        if (!value.is_object()) failure("Argument after ** must be a mapping, not " + type_of(value));
        for (const auto& [key, item] : value.object->entries) add_keyword(key, item);
      }
    }
    return {std::move(positional), std::move(keywords)};
  }

  Value evaluate_call(const Node& node, const Scope& env) {
    auto [args, keywords] = evaluate_arguments(node.items, env);
    if (!keywords.entries.empty()) args.push_back(Value::from_object(std::move(keywords), Kind::KeywordArguments));
    Value function = evaluate(node.x.get(), env);
    if (!function.is(Kind::Function)) failure("Cannot call something that is not a function: got " + type_of(function));
    return (*function.function)(args, env);
  }

  Value evaluate_slice(const Value& object, const Node& slice, const Scope& env) {
    if (!object.is_array() && !object.is(Kind::String)) failure("Slice object must be an array or string");
    Value start = evaluate(slice.x.get(), env), stop = evaluate(slice.y.get(), env), step = evaluate(slice.z.get(), env);
    auto check = [](const Value& v, const char* what) {
      if (!v.is(Kind::Integer) && !v.is(Kind::Undefined))
        failure(fmt::format("Slice {} must be numeric or undefined", what));
    };
    check(start, "start");
    check(stop, "stop");
    check(step, "step");
    std::vector<std::string> characters;
    if (object.is(Kind::String)) {
      for (size_t pos = 0; pos < object.string.size();) {
        size_t begin = pos;
        next_code_point(object.string, pos);
        characters.push_back(object.string.substr(begin, pos - begin));
      }
    }
    double length = object.is(Kind::String) ? static_cast<double>(characters.size()) : static_cast<double>(object.array->size());
    double step_value = step.is(Kind::Integer) ? step.number : 1;
    double direction = step_value > 0 ? 1 : step_value < 0 ? -1 : 0;
    double first, last;
    if (direction >= 0) {
      first = start.is(Kind::Integer) ? start.number : 0;
      first = first < 0 ? std::max(length + first, 0.0) : std::min(first, length);
      last = stop.is(Kind::Integer) ? stop.number : length;
      last = last < 0 ? std::max(length + last, 0.0) : std::min(last, length);
    } else {
      first = start.is(Kind::Integer) ? start.number : length - 1;
      first = first < 0 ? std::max(length + first, -1.0) : std::min(first, length - 1);
      last = stop.is(Kind::Integer) ? stop.number : -1;
      last = last < -1 ? std::max(length + last, -1.0) : std::min(last, length - 1);
    }
    std::vector<size_t> indices;
    if (direction != 0)
      for (double i = first; direction * i < direction * last; i += step_value) indices.push_back(static_cast<size_t>(i));
    if (object.is(Kind::String)) {
      std::string out;
      for (size_t i : indices) out += characters[i];
      return Value::from_string(std::move(out));
    }
    Array items;
    for (size_t i : indices) items.push_back((*object.array)[i]);
    return Value::from_array(std::move(items));
  }

  Value evaluate_member(const Node& node, const Scope& env) {
    Value object = evaluate(node.x.get(), env);
    Value property;
    if (node.flag) {
      if (node.y->kind == NodeKind::Slice) return evaluate_slice(object, *node.y, env);
      property = evaluate(node.y.get(), env);
    } else if (node.y->kind == NodeKind::IntegerLiteral) {
      property = Value::integer(node.y->number);
    } else {
      property = Value::from_string(node.y->text);
    }
    std::optional<Value> value;
    if (object.is_attribute_container()) {
      if (!property.is(Kind::String)) failure("Cannot access property with non-string: got " + type_of(property));
      if (const Value* found = object.object->find(property.string)) {
        value = *found;
      } else if (object.is_object()) {
        value = builtin(object, property.string);
      }
    } else if (object.is_array() || object.is(Kind::String)) {
      if (property.is(Kind::Integer)) {
        double index = std::trunc(property.number);
        if (object.is(Kind::String)) {
          std::string character;
          if (utf16_at(object.string, static_cast<int64_t>(index), character)) value = Value::from_string(character);
        } else {
          double n = static_cast<double>(object.array->size());
          if (index < 0) index += n;
          if (index >= 0 && index < n) value = (*object.array)[static_cast<size_t>(index)];
        }
      } else if (property.is(Kind::String)) {
        value = builtin(object, property.string);
      } else {
        failure("Cannot access property with non-string/non-number: got " + type_of(property));
      }
    } else {
      if (!property.is(Kind::String)) failure("Cannot access property with non-string: got " + type_of(property));
    }
    return value ? *value : Value::undefined();
  }

  Value evaluate_unary(const Node& node, const Scope& env) {
    Value argument = evaluate(node.x.get(), env);
    if (node.text == "not") return Value::from_bool(!truthy(argument));
    double sign = node.text == "-" ? -1 : 1;
    if (argument.is_numeric_like()) {
      double result = sign * argument.numeric();
      return argument.is(Kind::Float) ? Value::floating(result) : Value::integer(result);
    }
    failure(fmt::format("Unknown operator \"{}\" for {}", node.text, type_of(argument)));
  }

  Value evaluate_binary(const Node& node, const Scope& env) {
    const std::string& op = node.text;
    Value left = evaluate(node.x.get(), env);
    if (op == "and") return truthy(left) ? evaluate(node.y.get(), env) : left;
    if (op == "or") return truthy(left) ? left : evaluate(node.y.get(), env);
    Value right = evaluate(node.y.get(), env);
    if (op == "==") return Value::from_bool(loose_equals(left, right));
    if (op == "!=") return Value::from_bool(!loose_equals(left, right));

    if (left.is(Kind::Undefined) || right.is(Kind::Undefined)) {
      if (right.is(Kind::Undefined) && (op == "in" || op == "not in")) return Value::from_bool(op == "not in");
      failure("Cannot perform operation " + op + " on undefined values");
    } else if (left.is(Kind::Null) || right.is(Kind::Null)) {
      failure("Cannot perform operation on null values");
    } else if (op == "~") {
      return Value::from_string(primitive_string(left) + primitive_string(right));
    } else if (op == "**" && left.is_numeric_like() && right.is_numeric_like()) {
      double a = left.numeric(), b = right.numeric();
      if (a == 0 && b < 0) failure("0.0 cannot be raised to a negative power");
      double result = std::pow(a, b);
      if (!std::isfinite(result)) failure("Exponentiation result is not a finite real number");
      bool is_float = left.is(Kind::Float) || right.is(Kind::Float) || b < 0;
      return is_float ? Value::floating(result) : Value::integer(result);
    } else if (left.is_number() && right.is_number()) {
      double a = left.number, b = right.number;
      bool is_float = left.is(Kind::Float) || right.is(Kind::Float);
      auto number = [&](double v) { return is_float ? Value::floating(v) : Value::integer(v); };
      if (op == "+") return number(a + b);
      if (op == "-") return number(a - b);
      if (op == "*") return number(a * b);
      if (op == "/") return Value::floating(a / b);
      if (op == "//") return number(std::floor(a / b));
      if (op == "%") return number(std::fmod(a, b));
      if (op == "<") return Value::from_bool(a < b);
      if (op == ">") return Value::from_bool(a > b);
      if (op == ">=") return Value::from_bool(a >= b);
      if (op == "<=") return Value::from_bool(a <= b);
    } else if (left.is_array() && right.is_array()) {
      if (op == "+") {
        Array items = *left.array;
        items.insert(items.end(), right.array->begin(), right.array->end());
        return Value::from_array(std::move(items));
      }
    } else if (right.is_array()) {
      bool member = std::any_of(right.array->begin(), right.array->end(),
                                [&](const Value& item) { return strict_equals(item, left); });
      if (op == "in") return Value::from_bool(member);
      if (op == "not in") return Value::from_bool(!member);
    }
    if ((left.is(Kind::String) || right.is(Kind::String)) && op == "+")
      return Value::from_string(primitive_string(left) + primitive_string(right));
    if (left.is(Kind::String) && right.is(Kind::String)) {
      bool contains = right.string.find(left.string) != std::string::npos;
      if (op == "in") return Value::from_bool(contains);
      if (op == "not in") return Value::from_bool(!contains);
    }
    if (left.is(Kind::String) && right.is_object()) {
      bool has = right.object->find(left.string) != nullptr;
      if (op == "in") return Value::from_bool(has);
      if (op == "not in") return Value::from_bool(!has);
    }
    failure(fmt::format("Unknown operator \"{}\" between {} and {}", op, type_of(left), type_of(right)));
  }

  Value apply_filter(const Value& operand, const Node& filter_node, const Scope& env) {
    if (filter_node.kind == NodeKind::Identifier) return apply_simple_filter(operand, filter_node.text);
    if (filter_node.kind != NodeKind::Call) failure("Unknown filter");
    if (filter_node.x->kind != NodeKind::Identifier) failure("Unknown filter");
    return apply_call_filter(operand, filter_node.x->text, filter_node, env);
  }

  Value apply_simple_filter(const Value& operand, const std::string& name) {
    if (name == "safe") return operand;
    if (name == "tojson") return Value::from_string(to_json(operand, {}));
    if (operand.is_array()) {
      const Array& items = *operand.array;
      if (name == "list") return operand;
      if (name == "first") return items.empty() ? Value::undefined() : items.front();
      if (name == "last") return items.empty() ? Value::undefined() : items.back();
      if (name == "length") return Value::integer(static_cast<double>(items.size()));
      if (name == "reverse") return Value::from_array(Array(items.rbegin(), items.rend()));
      if (name == "sort") {
        Array sorted = items;
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const Value& a, const Value& b) { return compare_values(a, b, false) < 0; });
        return Value::from_array(std::move(sorted));
      }
      if (name == "join") {
        std::string out;
        for (const auto& item : items) out += join_piece(item);
        return Value::from_string(std::move(out));
      }
      if (name == "string") return Value::from_string(to_json(operand, {}, 0, false));
      if (name == "unique") {
        Array unique;
        for (const auto& item : items) {
          bool seen = std::any_of(unique.begin(), unique.end(), [&](const Value& u) { return same_value_zero(u, item); });
          if (!seen) unique.push_back(item);
        }
        return Value::from_array(std::move(unique));
      }
      failure("Unknown ArrayValue filter: " + name);
    }
    if (operand.is(Kind::String)) {
      const std::string& text = operand.string;
      if (name == "length" || name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
        Value method = *string_builtin(operand, name);
        if (method.is(Kind::Integer)) return method;
        Arguments none;
        return (*method.function)(none, nullptr);
      }
      if (name == "trim") return Value::from_string(js_trim(text));
      if (name == "indent") return Value::from_string(indent(text, "    ", false, false));
      if (name == "join" || name == "string") return operand;
      if (name == "int") {
        double value;
        return Value::integer(js_parse_int(text, value) ? value : 0);
      }
      if (name == "float") {
        double value;
        return Value::floating(js_parse_float(text, value) ? value : 0);
      }
      failure("Unknown StringValue filter: " + name);
    }
    if (operand.is_number()) {
      if (name == "abs") return operand.is(Kind::Integer) ? Value::integer(std::fabs(operand.number)) : Value::floating(std::fabs(operand.number));
      if (name == "int") return Value::integer(std::floor(operand.number));
      if (name == "float") return Value::floating(operand.number);
      if (name == "string") return Value::from_string(display_string(operand));
      failure("Unknown NumericValue filter: " + name);
    }
    if (operand.is_object()) {
      if (name == "items") return object_items(*operand.object);
      if (name == "length") return Value::integer(static_cast<double>(operand.object->entries.size()));
      if (auto method = object_builtin(operand, name)) {
        if (!method->is(Kind::Function)) return *method;
        Arguments none;
        return (*method->function)(none, nullptr);
      }
      failure("Unknown ObjectValue filter: " + name);
    }
    if (operand.is(Kind::Boolean)) {
      if (name == "bool") return operand;
      if (name == "int") return Value::integer(operand.boolean ? 1 : 0);
      if (name == "float") return Value::floating(operand.boolean ? 1 : 0);
      if (name == "string") return Value::from_string(operand.boolean ? "true" : "false");
      failure("Unknown BooleanValue filter: " + name);
    }
    failure(fmt::format("Cannot apply filter \"{}\" to type: {}", name, type_of(operand)));
  }

  static std::string indent(const std::string& text, const std::string& prefix, bool first, bool blank) {
    std::string out;
    size_t start = 0, line = 0;
    while (true) {
      size_t end = text.find('\n', start);
      std::string piece = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (line > 0) out += '\n';
      if ((!first && line == 0) || (!blank && piece.empty())) {
        out += piece;
      } else {
        out += prefix + piece;
      }
      if (end == std::string::npos) break;
      start = end + 1;
      ++line;
    }
    return out;
  }

  Value apply_call_filter(const Value& operand, const std::string& name, const Node& call, const Scope& env) {
    auto arguments = [&] { return evaluate_arguments(call.items, env); };
    auto keyword = [](const Object& keywords, const char* key) -> std::optional<Value> {
      if (const Value* v = keywords.find(key)) return *v;
      return std::nullopt;
    };
    if (name == "tojson") {
      auto [args, keywords] = arguments();
      JsonOptions options;
      Value indent_value = keyword(keywords, "indent").value_or(Value::null());
      if (!indent_value.is(Kind::Integer) && !indent_value.is(Kind::Null)) failure("If set, indent must be a number");
      if (indent_value.is(Kind::Integer)) options.indent = indent_value.number;
      Value ensure_ascii = keyword(keywords, "ensure_ascii").value_or(Value::from_bool(false));
      if (!ensure_ascii.is(Kind::Boolean)) failure("If set, ensure_ascii must be a boolean");
      options.ensure_ascii = ensure_ascii.boolean;
      Value sort_keys = keyword(keywords, "sort_keys").value_or(Value::from_bool(false));
      if (!sort_keys.is(Kind::Boolean)) failure("If set, sort_keys must be a boolean");
      options.sort_keys = sort_keys.boolean;
      Value separators = keyword(keywords, "separators").value_or(Value::null());
      if (separators.is_array()) {
        if (separators.array->size() != 2) failure("separators must be a tuple of two strings");
        const Value &item = (*separators.array)[0], &key = (*separators.array)[1];
        if (!item.is(Kind::String) || !key.is(Kind::String)) failure("separators must be a tuple of two strings");
        options.separators = std::make_pair(item.string, key.string);
      } else if (!separators.is(Kind::Null)) {
        failure("If set, separators must be a tuple of two strings");
      }
      return Value::from_string(to_json(operand, options));
    }
    if (name == "join") {
      std::vector<std::string> pieces;
      if (operand.is(Kind::String)) {
        for (size_t pos = 0; pos < operand.string.size();) {
          size_t begin = pos;
          next_code_point(operand.string, pos);
          pieces.push_back(operand.string.substr(begin, pos - begin));
        }
      } else if (operand.is_array()) {
        for (const auto& item : *operand.array) pieces.push_back(join_piece(item));
      } else {
        failure(fmt::format("Cannot apply filter \"{}\" to type: {}", name, type_of(operand)));
      }
      auto [args, keywords] = arguments();
      Value separator = !args.empty() ? args[0] : keyword(keywords, "separator").value_or(Value::from_string(""));
      if (!separator.is(Kind::String)) failure("separator must be a string");
      std::string out;
      for (size_t i = 0; i < pieces.size(); ++i) {
        if (i) out += separator.string;
        out += pieces[i];
      }
      return Value::from_string(std::move(out));
    }
    if (name == "int" || name == "float") {
      bool integer = name == "int";
      auto [args, keywords] = arguments();
      Value fallback = !args.empty() ? args[0]
                                     : keyword(keywords, "default").value_or(integer ? Value::integer(0) : Value::floating(0));
      if (operand.is(Kind::String)) {
        double value;
        bool ok = integer ? js_parse_int(operand.string, value) : js_parse_float(operand.string, value);
        if (!ok) return fallback;
        return integer ? Value::integer(value) : Value::floating(value);
      }
      if (operand.is_number()) return operand;
      if (operand.is(Kind::Boolean)) return integer ? Value::integer(operand.boolean) : Value::floating(operand.boolean);
      failure(fmt::format("Cannot apply filter \"{}\" to type: {}", name, type_of(operand)));
    }
    if (name == "default") {
      auto [args, keywords] = arguments();
      Value fallback = !args.empty() ? args[0] : Value::from_string("");
      Value boolean = args.size() > 1 ? args[1] : keyword(keywords, "boolean").value_or(Value::from_bool(false));
      if (!boolean.is(Kind::Boolean)) failure("`default` filter flag must be a boolean");
      if (operand.is(Kind::Undefined) || (boolean.boolean && !truthy(operand))) return fallback;
      return operand;
    }
    if (operand.is_array()) {
      const Array& items = *operand.array;
      if (name == "sort") {
        auto [args, keywords] = arguments();
        auto option = [&, &args = args, &keywords = keywords](size_t i, const char* key, Value fallback) {
          return i < args.size() ? args[i] : keyword(keywords, key).value_or(fallback);
        };
        Value reverse = option(0, "reverse", Value::from_bool(false));
        if (!reverse.is(Kind::Boolean)) failure("reverse must be a boolean");
        Value case_sensitive = option(1, "case_sensitive", Value::from_bool(false));
        if (!case_sensitive.is(Kind::Boolean)) failure("case_sensitive must be a boolean");
        Value attribute = option(2, "attribute", Value::null());
        if (!attribute.is(Kind::String) && !attribute.is(Kind::Integer) && !attribute.is(Kind::Null))
          failure("attribute must be a string, integer, or null");
        auto sort_value = [&](const Value& item) {
          if (attribute.is(Kind::Null)) return item;
          return attribute_path(item, attribute.is(Kind::Integer) ? js_number_to_string(attribute.number) : attribute.string);
        };
        Array sorted = items;
        std::stable_sort(sorted.begin(), sorted.end(), [&](const Value& a, const Value& b) {
          int result = compare_values(sort_value(a), sort_value(b), case_sensitive.boolean);
          return (reverse.boolean ? -result : result) < 0;
        });
        return Value::from_array(std::move(sorted));
      }
      if (name == "selectattr" || name == "rejectattr") {
        bool select = name == "selectattr";
        for (const auto& item : items)
          if (!item.is_attribute_container()) failure("`" + name + "` can only be applied to array of objects");
        for (const auto& arg : call.items)
          if (arg->kind != NodeKind::StringLiteral) failure("arguments of `" + name + "` must be strings");
        if (call.items.empty()) failure("`" + name + "` needs an attribute name");
        std::string attribute = call.items[0]->text;
        std::optional<Value> compare_with;
        if (call.items.size() > 2) compare_with = Value::from_string(call.items[2]->text);
        const Test* test = nullptr;
        if (call.items.size() > 1) {
          test = find_test(call.items[1]->text);
          if (!test) failure("Unknown test: " + call.items[1]->text);
        }
        Array kept;
        for (const auto& item : items) {
          const Value* value = item.object->find(attribute);
          bool result = value ? (test ? (*test)(*value, compare_with) : truthy(*value)) : false;
          if (result == select) kept.push_back(item);
        }
        return Value::from_array(std::move(kept));
      }
      if (name == "map") {
        auto [args, keywords] = arguments();
        auto attribute = keyword(keywords, "attribute");
        if (!attribute) failure("`map` expressions without `attribute` set are not currently supported.");
        if (!attribute->is(Kind::String)) failure("attribute must be a string");
        auto fallback = keyword(keywords, "default");
        Array mapped;
        for (const auto& item : items) {
          if (!item.is_attribute_container()) failure("items in map must be an object");
          Value value = attribute_path(item, attribute->string);
          mapped.push_back(value.is(Kind::Undefined) ? fallback.value_or(Value::undefined()) : value);
        }
        return Value::from_array(std::move(mapped));
      }
      failure("Unknown ArrayValue filter: " + name);
    }
    if (operand.is(Kind::String)) {
      if (name == "indent") {
        auto [args, keywords] = arguments();
        auto option = [&, &args = args, &keywords = keywords](size_t i, const char* key, Value fallback) {
          return i < args.size() ? args[i] : keyword(keywords, key).value_or(fallback);
        };
        Value width = option(0, "width", Value::integer(4));
        if (!width.is(Kind::Integer)) failure("width must be a number");
        if (width.number < 0) failure("Invalid count value: " + js_number_to_string(width.number));
        if (width.number > double(kMaxStringBytes)) failure("indent width is too large");
        Value first = option(1, "first", Value::from_bool(false));
        Value blank = option(2, "blank", Value::from_bool(false));
        return Value::from_string(indent(operand.string, std::string(static_cast<size_t>(width.number), ' '),
                                         raw_truthy(first), raw_truthy(blank)));
      }
      if (name == "replace") {
        auto [args, keywords] = arguments();
        args.push_back(Value::from_object(std::move(keywords), Kind::KeywordArguments));
        Value method = *string_builtin(operand, "replace");
        return (*method.function)(args, env);
      }
      failure("Unknown StringValue filter: " + name);
    }
    if (operand.is_object()) {
      auto method = object_builtin(operand, name);
      if (method && method->is(Kind::Function)) {
        auto [args, keywords] = arguments();
        if (!keywords.entries.empty()) args.push_back(Value::from_object(std::move(keywords), Kind::KeywordArguments));
        return (*method->function)(args, env);
      }
      failure("Unknown ObjectValue filter: " + name);
    }
    failure(fmt::format("Cannot apply filter \"{}\" to type: {}", name, type_of(operand)));
  }

  Value evaluate_set(const Node& node, const Scope& env) {
    Value value = node.y ? evaluate(node.y.get(), env) : Value::from_string(evaluate_block(node.body, env));
    const Node& target = *node.x;
    if (target.kind == NodeKind::Identifier) {
      env->set(target.text, std::move(value));
    } else if (target.kind == NodeKind::TupleLiteral) {
      if (!value.is_array()) failure("Cannot unpack non-iterable type in set: " + type_of(value));
      const Array& items = *value.array;
      if (items.size() != target.items.size())
        failure(fmt::format("Too {} items to unpack in set", target.items.size() > items.size() ? "few" : "many"));
      for (size_t i = 0; i < items.size(); ++i) {
        if (target.items[i]->kind != NodeKind::Identifier) failure("Cannot unpack to non-identifier in set");
        env->set(target.items[i]->text, items[i]);
      }
    } else if (target.kind == NodeKind::Member) {
      Value object = evaluate(target.x.get(), env);
      if (!object.is(Kind::Namespace)) failure("cannot assign attribute on non-namespace object");
      if (target.y->kind != NodeKind::Identifier) failure("Cannot assign to member with non-identifier property");
      std::unordered_set<const void*> seen;
      // Values are shared, reference-counted: a namespace holding itself would never be freed.
      if (reaches(value, object.object.get(), seen)) failure("Cannot assign a namespace into itself");
      object.object->set(target.y->text, std::move(value));
    } else {
      failure("Invalid LHS inside assignment expression");
    }
    return Value::null();
  }

  // Binds loop variable(s) of `target` to `item` in `scope`.
  static void bind_loop_variable(const Node& target, const Value& item, const Scope& scope) {
    if (target.kind == NodeKind::Identifier) {
      scope->set(target.text, item);
      return;
    }
    for (size_t j = 0; j < target.items.size(); ++j) {
      if (target.items[j]->kind != NodeKind::Identifier) failure("Cannot unpack non-identifier type");
      scope->set(target.items[j]->text, (*item.array)[j]);
    }
  }

  Value evaluate_for(const Node& node, const Scope& env) {
    auto scope = std::make_shared<Environment>(env);
    const Node* test = nullptr;
    Value iterable;
    if (node.y->kind == NodeKind::Select) {
      iterable = evaluate(node.y->x.get(), scope);
      test = node.y->y.get();
    } else {
      iterable = evaluate(node.y.get(), scope);
    }
    if (!iterable.is_array() && !iterable.is_object())
      failure("Expected iterable or object type in for loop: got " + type_of(iterable));
    Array all;
    if (iterable.is_object()) {
      for (const auto& entry : iterable.object->entries) all.push_back(Value::from_string(entry.first));
    } else {
      all = *iterable.array;
    }
    const Node& target = *node.x;
    Array items;
    for (const auto& current : all) {
      step();
      if (target.kind == NodeKind::TupleLiteral) {
        if (!current.is(Kind::Array)) failure("Cannot unpack non-iterable type: " + type_of(current));
        if (target.items.size() != current.array->size())
          failure(fmt::format("Too {} items to unpack", target.items.size() > current.array->size() ? "few" : "many"));
      }
      if (test) {
        auto loop_scope = std::make_shared<Environment>(scope);
        bind_loop_variable(target, current, loop_scope);
        if (!truthy(evaluate(test, loop_scope))) continue;
      }
      items.push_back(current);
    }
    std::string result;
    bool no_iteration = true;
    for (size_t i = 0; i < items.size(); ++i) {
      step();
      Object loop;
      double n = static_cast<double>(items.size()), index = static_cast<double>(i);
      loop.entries = {{"index", Value::integer(index + 1)},
                      {"index0", Value::integer(index)},
                      {"revindex", Value::integer(n - index)},
                      {"revindex0", Value::integer(n - index - 1)},
                      {"first", Value::from_bool(i == 0)},
                      {"last", Value::from_bool(i + 1 == items.size())},
                      {"length", Value::integer(n)},
                      {"previtem", i > 0 ? items[i - 1] : Value::undefined()},
                      {"nextitem", i + 1 < items.size() ? items[i + 1] : Value::undefined()}};
      scope->set("loop", Value::from_object(std::move(loop)));
      bind_loop_variable(target, items[i], scope);
      try {
        append_output(result, evaluate_block(node.body, scope));
      } catch (const ContinueSignal&) {
        continue;
      } catch (const BreakSignal&) {
        break;
      }
      no_iteration = false;
    }
    if (no_iteration) append_output(result, evaluate_block(node.alternate, scope));
    return Value::from_string(std::move(result));
  }

  // Names among kwargs/varargs that a macro body reads, so that calls may pass extra arguments into them.
  static void collect_special_arguments(const Node* node, std::set<std::string>& found) {
    if (!node) return;
    if (node->kind == NodeKind::Identifier) {
      if (node->text == "kwargs" || node->text == "varargs") found.insert(node->text);
      return;
    }
    if (node->kind == NodeKind::Member && !node->flag) {
      collect_special_arguments(node->x.get(), found);
      return;
    }
    if (node->kind == NodeKind::Filter || node->kind == NodeKind::FilterStatement) {
      collect_special_arguments(node->x.get(), found);
      for (const auto& child : node->body) collect_special_arguments(child.get(), found);
      if (node->y->kind == NodeKind::Call)
        for (const auto& arg : node->y->items) collect_special_arguments(arg.get(), found);
      return;
    }
    for (const Node* child : {node->x.get(), node->y.get(), node->z.get()}) collect_special_arguments(child, found);
    for (const auto* list : {&node->body, &node->alternate, &node->items, &node->values})
      for (const auto& child : *list) collect_special_arguments(child.get(), found);
  }

  static std::set<std::string> special_arguments(const std::vector<std::unique_ptr<Node>>& parameters,
                                                 const std::vector<std::unique_ptr<Node>>& body) {
    std::set<std::string> found;
    for (const auto& statement : body) collect_special_arguments(statement.get(), found);
    for (const auto& parameter : parameters) found.erase(parameter->text);
    return found;
  }

  void bind_macro_arguments(const std::string& display_name, const std::vector<std::unique_ptr<Node>>& parameters,
                            const std::set<std::string>& special, Arguments args, const Scope& scope) {
    Object keywords;
    if (!args.empty() && args.back().is(Kind::KeywordArguments)) {
      keywords = *args.back().object;
      args.pop_back();
    }
    std::vector<const Node*> pending_defaults;
    for (size_t i = 0; i < parameters.size(); ++i) {
      const Node& parameter = *parameters[i];
      std::optional<Value> value;
      if (i < args.size()) value = args[i];
      if (!value) {
        auto it = std::find_if(keywords.entries.begin(), keywords.entries.end(),
                               [&](const auto& entry) { return entry.first == parameter.text; });
        if (it != keywords.entries.end()) {
          value = it->second;
          keywords.entries.erase(it);
        }
      }
      if (!value && parameter.kind == NodeKind::KeywordArgument) pending_defaults.push_back(&parameter);
      scope->set(parameter.text, value.value_or(Value::undefined()));
    }
    if (special.count("kwargs")) {
      scope->set("kwargs", Value::from_object(keywords));
    } else if (!keywords.entries.empty()) {
      failure(fmt::format("macro {} takes no keyword argument '{}'", display_name, keywords.entries.front().first));
    }
    if (special.count("varargs")) {
      Array rest;
      for (size_t i = parameters.size(); i < args.size(); ++i) rest.push_back(args[i]);
      scope->set("varargs", Value::from_array(std::move(rest)));
    } else if (args.size() > parameters.size()) {
      failure(fmt::format("macro {} takes not more than {} argument(s)", display_name, parameters.size()));
    }
    for (const Node* parameter : pending_defaults) scope->set(parameter->text, evaluate(parameter->y.get(), scope));
  }

  Value evaluate_macro(const Node& node, const Scope& env) {
    auto special = special_arguments(node.items, node.body);
    const Node* macro = &node;
    env->set(node.x->text, Value::from_function([this, macro, special](Arguments& args, const Scope& caller) {
      auto scope = std::make_shared<Environment>(caller);
      bind_macro_arguments("'" + macro->x->text + "'", macro->items, special, args, scope);
      return Value::from_string(evaluate_block(macro->body, scope));
    }));
    return Value::null();
  }

  Value evaluate_call_statement(const Node& node, const Scope& env) {
    auto special = special_arguments(node.items, node.body);
    const Node* statement = &node;
    // A weak reference: `caller` stored into a namespace of `env` must not keep `env` alive in a cycle.
    Value caller = Value::from_function([this, statement, special, weak_env = std::weak_ptr(env)](Arguments& args,
                                                                                                  const Scope&) {
      auto scope = std::make_shared<Environment>(weak_env.lock());
      bind_macro_arguments("None", statement->items, special, args, scope);
      return Value::from_string(evaluate_block(statement->body, scope));
    });
    auto [args, keywords] = evaluate_arguments(node.x->items, env);
    args.push_back(Value::from_object(std::move(keywords), Kind::KeywordArguments));
    Value function = evaluate(node.x->x.get(), env);
    if (!function.is(Kind::Function)) failure("Cannot call something that is not a function: got " + type_of(function));
    auto call_scope = std::make_shared<Environment>(env);
    call_scope->set("caller", caller);
    return (*function.function)(args, call_scope);
  }
};

// ---------------------------------------------------------------------------------------------------------
// Globals.

Value namespace_function(Arguments& args, const Scope&) {
  Arguments positional = args;
  std::optional<Object> keywords;
  if (!positional.empty() && positional.back().is(Kind::KeywordArguments)) {
    keywords = *positional.back().object;
    positional.pop_back();
  }
  if (positional.size() > 1) failure(fmt::format("namespace expected at most 1 argument, got {}", positional.size()));
  Object entries;
  if (positional.size() == 1) {
    const Value& source = positional[0];
    if (source.is_object()) {
      for (const auto& [key, value] : source.object->entries) entries.set(key, value);
    } else if (source.is_array()) {
      for (const auto& pair : *source.array) {
        Array values;
        if (pair.is_array()) {
          values = *pair.array;
        } else if (pair.is(Kind::String)) {
          for (size_t pos = 0; pos < pair.string.size();) {
            size_t begin = pos;
            next_code_point(pair.string, pos);
            values.push_back(Value::from_string(pair.string.substr(begin, pos - begin)));
          }
        }
        if (values.size() != 2) failure("namespace expected an object or an iterable of [key, value] pairs");
        if (!values[0].is(Kind::String)) failure("namespace keys must be strings");
        entries.set(values[0].string, values[1]);
      }
    } else {
      failure("'" + type_of(source) + "' object is not iterable");
    }
  }
  if (keywords)
    for (const auto& [key, value] : keywords->entries) entries.set(key, value);
  return Value::from_object(std::move(entries), Kind::Namespace);
}

// Functions the reference passes in as plain JS functions see the raw values of their arguments.
std::string raw_message(const Value& v) {
  if (v.is(Kind::Undefined)) return "";
  return primitive_string(v);
}

Value raise_exception_function(Arguments& args, const Scope&) {
  throw TemplateFailure(args.empty() ? "" : raw_message(args[0]), true);
}

Value range_function(Arguments& args, const Scope&) {
  std::vector<std::optional<double>> numbers;
  for (const auto& arg : args) {
    if (arg.is(Kind::Undefined)) {
      numbers.push_back(std::nullopt);
    } else if (arg.is_number()) {
      numbers.push_back(arg.number);
    } else {
      failure("range() arguments must be numbers, got " + type_of(arg));
    }
  }
  numbers.resize(3);
  if (!numbers[0]) failure("range() needs at least one argument");
  double start = *numbers[0], stop, step = numbers[2].value_or(1);
  if (!numbers[1]) {
    stop = start;
    start = 0;
  } else {
    stop = *numbers[1];
  }
  if (step == 0) failure("range() step must not be zero");
  Array items;
  auto number = [](double v) { return std::floor(v) == v ? Value::integer(v) : Value::floating(v); };
  // Bounded: a huge range (or one whose step is lost to rounding) fails instead of filling memory.
  for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (items.size() == kMaxItems) failure("range() exceeds the limit of " + std::to_string(kMaxItems) + " items");
    items.push_back(number(i));
  }
  return Value::from_array(std::move(items));
}

Value strftime_now_function(Arguments& args, const Scope&) {
  if (args.empty() || !args[0].is(Kind::String)) failure("strftime_now() needs a format string");
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  const std::string& format = args[0].string;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    char code = format[i + 1];
    switch (code) {
      case 'Y': out += std::to_string(local.tm_year + 1900); break;
      case 'm': out += fmt::format("{:02}", local.tm_mon + 1); break;
      case 'd': out += fmt::format("{:02}", local.tm_mday); break;
      case 'b': out += std::string(kMonths[local.tm_mon]).substr(0, 3); break;
      case 'B': out += kMonths[local.tm_mon]; break;
      case 'H': out += fmt::format("{:02}", local.tm_hour); break;
      case 'M': out += fmt::format("{:02}", local.tm_min); break;
      case '%': out += '%'; break;
      default: out += format.substr(i, 2);
    }
    ++i;
  }
  return Value::from_string(std::move(out));
}

}  // namespace

Scope make_global_scope(const std::vector<std::pair<std::string, Value>>& context) {
  auto scope = std::make_shared<Environment>();
  scope->set("namespace", Value::from_function(namespace_function));
  for (const char* name : {"false", "False"}) scope->set(name, Value::from_bool(false));
  for (const char* name : {"true", "True"}) scope->set(name, Value::from_bool(true));
  for (const char* name : {"none", "None"}) scope->set(name, Value::null());
  scope->set("raise_exception", Value::from_function(raise_exception_function));
  scope->set("range", Value::from_function(range_function));
  scope->set("strftime_now", Value::from_function(strftime_now_function));
  for (const auto& [name, value] : context) {
    if (scope->has_own(name)) failure("Variable already declared: " + name);
    scope->set(name, value);
  }
  return scope;
}

std::string render(const Node& program, const Scope& globals) {
  Interpreter interpreter;
  try {
    return interpreter.evaluate_block(program.body, globals);
  } catch (const BreakSignal&) {
    failure("{% break %} outside of a loop");
  } catch (const ContinueSignal&) {
    failure("{% continue %} outside of a loop");
  }
}

}  // namespace actcap::jinja
