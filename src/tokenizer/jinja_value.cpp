#include "tokenizer/jinja_value.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja_string.h"

namespace actcap::jinja {

const char* type_name(Kind kind) {
  switch (kind) {
    case Kind::Integer: return "IntegerValue";
    case Kind::Float: return "FloatValue";
    case Kind::String: return "StringValue";
    case Kind::Boolean: return "BooleanValue";
    case Kind::Object: return "ObjectValue";
    case Kind::KeywordArguments: return "KeywordArgumentsValue";
    case Kind::Namespace: return "NamespaceValue";
    case Kind::Array: return "ArrayValue";
    case Kind::Tuple: return "TupleValue";
    case Kind::Function: return "FunctionValue";
    case Kind::Null: return "NullValue";
    case Kind::Undefined: return "UndefinedValue";
  }
  return "?";
}

const Value* Object::find(std::string_view key) const {
  for (const auto& [name, value] : entries)
    if (name == key) return &value;
  return nullptr;
}

void Object::set(const std::string& key, Value value) {
  for (auto& [name, existing] : entries) {
    if (name == key) {
      existing = std::move(value);
      return;
    }
  }
  entries.emplace_back(key, std::move(value));
}

namespace {
thread_local uint64_t render_bytes = 0;

void charge_render_bytes(size_t bytes) {
  render_bytes += bytes;
  if (render_bytes > kMaxRenderBytes)
    failure("Template creates more than " + std::to_string(kMaxRenderBytes) + " bytes of strings");
}
}  // namespace

void reset_render_bytes() { render_bytes = 0; }

Value::Value(const Value& other)
    : kind(other.kind), number(other.number), boolean(other.boolean), array(other.array), object(other.object),
      function(other.function) {
  charge_render_bytes(other.string.size());
  string = other.string;
}

Value& Value::operator=(const Value& other) {
  if (this != &other) *this = Value(other);
  return *this;
}

Value Value::null() {
  Value v;
  v.kind = Kind::Null;
  return v;
}
Value Value::integer(double value) {
  Value v;
  v.kind = Kind::Integer;
  v.number = value;
  return v;
}
Value Value::floating(double value) {
  Value v;
  v.kind = Kind::Float;
  v.number = value;
  return v;
}
Value Value::from_bool(bool value) {
  Value v;
  v.kind = Kind::Boolean;
  v.boolean = value;
  return v;
}
Value Value::from_string(std::string value) {
  if (value.size() > kMaxStringBytes)
    failure("String of " + std::to_string(value.size()) + " bytes exceeds the limit of " +
            std::to_string(kMaxStringBytes));
  charge_render_bytes(value.size());
  Value v;
  v.kind = Kind::String;
  v.string = std::move(value);
  return v;
}
Value Value::from_array(Array items, Kind kind) {
  if (items.size() > kMaxItems)
    failure("List of " + std::to_string(items.size()) + " items exceeds the limit of " + std::to_string(kMaxItems));
  Value v;
  v.kind = kind;
  v.array = std::make_shared<Array>(std::move(items));
  return v;
}
Value Value::from_object(Object object, Kind kind) {
  Value v;
  v.kind = kind;
  v.object = std::make_shared<Object>(std::move(object));
  return v;
}
Value Value::from_function(Function function) {
  Value v;
  v.kind = Kind::Function;
  v.function = std::make_shared<const Function>(std::move(function));
  return v;
}

// Canonical array index ("0", "17"; below 2^32 - 1): JS enumerates these keys first, in numeric order.
static bool array_index_key(const std::string& key, double& index) {
  if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return false;
  for (char c : key)
    if (c < '0' || c > '9') return false;
  index = std::stod(key);
  return index < 4294967295.0;
}

Value::~Value() {
  if (!array && !object) return;
  // Children of a list or mapping freed here are moved to `pending` and freed by the outermost destructor's
  // loop, one level at a time, instead of recursively.
  thread_local std::vector<Value> pending;
  thread_local bool draining = false;
  if (array && array.use_count() == 1)
    for (Value& item : *array) pending.push_back(std::move(item));
  if (object && object.use_count() == 1)
    for (auto& entry : object->entries) pending.push_back(std::move(entry.second));
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    Value next = std::move(pending.back());
    pending.pop_back();
  }
  draining = false;
}

Value from_json(const nlohmann::ordered_json& json, int depth) {
  if (depth > kMaxValueDepth)
    failure("chat template input nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::null();
    case nlohmann::ordered_json::value_t::boolean: return Value::from_bool(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(static_cast<double>(json.get<int64_t>()));
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(static_cast<double>(json.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: {
      double d = json.get<double>();
      return std::isfinite(d) && std::floor(d) == d ? Value::integer(d) : Value::floating(d);
    }
    case nlohmann::ordered_json::value_t::string: return Value::from_string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Array items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item, depth + 1));
      return Value::from_array(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      std::vector<std::pair<double, std::string>> indexed;
      std::vector<std::string> named;
      for (const auto& [key, value] : json.items()) {
        double index;
        if (array_index_key(key, index)) {
          indexed.emplace_back(index, key);
        } else {
          named.push_back(key);
        }
      }
      std::sort(indexed.begin(), indexed.end());
      Object object;
      for (const auto& [index, key] : indexed) object.entries.emplace_back(key, from_json(json.at(key), depth + 1));
      for (const auto& key : named) object.entries.emplace_back(key, from_json(json.at(key), depth + 1));
      return Value::from_object(std::move(object));
    }
    default: failure("chat template input holds a JSON value of an unsupported type");
  }
}

bool truthy(const Value& value) {
  switch (value.kind) {
    case Kind::Integer:
    case Kind::Float: return value.number != 0 && !std::isnan(value.number);
    case Kind::String: return !value.string.empty();
    case Kind::Boolean: return value.boolean;
    case Kind::Object:
    case Kind::KeywordArguments: return !value.object->entries.empty();
    case Kind::Namespace: return true;
    case Kind::Array:
    case Kind::Tuple: return !value.array->empty();
    case Kind::Function: return true;
    case Kind::Null:
    case Kind::Undefined: return false;
  }
  return false;
}

std::string display_string(const Value& value) {
  switch (value.kind) {
    case Kind::Integer: return js_number_to_string(value.number);
    case Kind::Float: {
      double v = value.number;
      if (v == 0 && std::signbit(v)) return "-0.0";
      if (std::isfinite(v) && std::fmod(v, 1.0) == 0) {
        return std::fabs(v) >= 1e21 ? js_number_to_string(v) : fmt::format("{:.1f}", v);
      }
      return js_number_to_string(v);
    }
    case Kind::String: return value.string;
    case Kind::Boolean: return value.boolean ? "true" : "false";
    case Kind::Null: return "null";
    case Kind::Undefined: return "undefined";
    case Kind::Function: failure("cannot print a function");
    default: return to_json(value, {}, 0, false);
  }
}

std::string primitive_string(const Value& value) {
  switch (value.kind) {
    case Kind::Integer:
    case Kind::Float: return js_number_to_string(value.number);
    case Kind::Array:
    case Kind::Tuple: {
      std::string out;
      for (size_t i = 0; i < value.array->size(); ++i) {
        if (i) out += ',';
        out += display_string((*value.array)[i]);
      }
      return out;
    }
    case Kind::Object:
    case Kind::KeywordArguments:
    case Kind::Namespace: return "[object Map]";
    default: return display_string(value);
  }
}

// Approximates String.prototype.localeCompare (ICU root collation) for sort_keys: case-insensitive first,
// lower case before upper case on ties.
static bool locale_less(const std::string& a, const std::string& b) {
  int primary = compare_utf16(js_to_lower(a), js_to_lower(b));
  if (primary != 0) return primary < 0;
  return compare_utf16(b, a) < 0;
}

std::string to_json(const Value& value, const JsonOptions& options, int depth, bool undefined_as_null) {
  std::string item_separator = ", ", key_separator = ": ";
  bool indenting = options.indent && *options.indent != 0;
  if (options.separators) {
    item_separator = options.separators->first;
    key_separator = options.separators->second;
  } else if (indenting) {
    item_separator = ",";
  }
  switch (value.kind) {
    case Kind::Null: return "null";
    case Kind::Undefined: return undefined_as_null ? "null" : "undefined";
    case Kind::Integer:
    case Kind::Float: return std::isfinite(value.number) ? js_number_to_string(value.number) : "null";
    case Kind::Boolean: return value.boolean ? "true" : "false";
    case Kind::String: {
      std::string quoted = json_quote(value.string);
      return options.ensure_ascii ? make_ascii_safe(quoted) : quoted;
    }
    case Kind::Array:
    case Kind::Namespace:
    case Kind::Object: {
      if (indenting && *options.indent < 0) failure("Invalid count value: " + js_number_to_string(*options.indent));
      if (indenting && *options.indent > double(kMaxStringBytes)) failure("tojson indent is too large");
      if (depth > kMaxValueDepth) failure("tojson: value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
      std::string indent_unit = indenting ? std::string(static_cast<size_t>(*options.indent), ' ') : "";
      std::string base_padding = "\n";
      for (int i = 0; i < depth; ++i) base_padding += indent_unit;
      std::string children_padding = base_padding + indent_unit;
      std::vector<std::string> core;
      if (value.kind == Kind::Array) {
        for (const auto& item : *value.array) core.push_back(to_json(item, options, depth + 1, undefined_as_null));
        std::string out = "[";
        if (indenting && !core.empty()) {
          out += children_padding;
          for (size_t i = 0; i < core.size(); ++i) {
            if (i) out += item_separator + children_padding;
            out += core[i];
          }
          out += base_padding;
        } else {
          for (size_t i = 0; i < core.size(); ++i) {
            if (i) out += item_separator;
            out += core[i];
          }
        }
        return out + "]";
      }
      auto entries = value.object->entries;
      if (options.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto& a, const auto& b) { return locale_less(a.first, b.first); });
      }
      for (const auto& [key, item] : entries) {
        std::string key_json = json_quote(key);
        if (options.ensure_ascii) key_json = make_ascii_safe(key_json);
        std::string entry = key_json + key_separator + to_json(item, options, depth + 1, undefined_as_null);
        core.push_back(indenting ? children_padding + entry : entry);
      }
      std::string out = "{";
      for (size_t i = 0; i < core.size(); ++i) {
        if (i) out += item_separator;
        out += core[i];
      }
      if (indenting && !core.empty()) out += base_padding;
      return out + "}";
    }
    default: failure(std::string("Cannot convert to JSON: ") + type_name(value.kind));
  }
}

namespace {
enum class JsType { Number, String, Boolean, Null, Undefined, Reference };
JsType js_type(const Value& v) {
  switch (v.kind) {
    case Kind::Integer:
    case Kind::Float: return JsType::Number;
    case Kind::String: return JsType::String;
    case Kind::Boolean: return JsType::Boolean;
    case Kind::Null: return JsType::Null;
    case Kind::Undefined: return JsType::Undefined;
    default: return JsType::Reference;
  }
}
const void* identity(const Value& v) {
  if (v.array) return v.array.get();
  if (v.object) return v.object.get();
  return v.function.get();
}
}  // namespace

bool strict_equals(const Value& a, const Value& b) {
  JsType ta = js_type(a), tb = js_type(b);
  if (ta != tb) return false;
  switch (ta) {
    case JsType::Number: return a.number == b.number;
    case JsType::String: return a.string == b.string;
    case JsType::Boolean: return a.boolean == b.boolean;
    case JsType::Null:
    case JsType::Undefined: return true;
    case JsType::Reference: return identity(a) == identity(b);
  }
  return false;
}

bool same_value_zero(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number() && std::isnan(a.number) && std::isnan(b.number)) return true;
  return strict_equals(a, b);
}

bool loose_equals(const Value& a, const Value& b) {
  JsType ta = js_type(a), tb = js_type(b);
  if (ta == tb) return strict_equals(a, b);
  auto nullish = [](JsType t) { return t == JsType::Null || t == JsType::Undefined; };
  if (nullish(ta) || nullish(tb)) return nullish(ta) && nullish(tb);
  if (ta == JsType::Boolean) return loose_equals(Value::integer(a.boolean ? 1 : 0), b);
  if (tb == JsType::Boolean) return loose_equals(a, Value::integer(b.boolean ? 1 : 0));
  if (ta == JsType::Number && tb == JsType::String) return a.number == js_string_to_number(b.string);
  if (ta == JsType::String && tb == JsType::Number) return js_string_to_number(a.string) == b.number;
  if (ta == JsType::Reference && a.kind != Kind::Function) return loose_equals(Value::from_string(primitive_string(a)), b);
  if (tb == JsType::Reference && b.kind != Kind::Function) return loose_equals(a, Value::from_string(primitive_string(b)));
  return false;
}

}  // namespace actcap::jinja
