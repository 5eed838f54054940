#pragma once
// Runtime values of the chat-template interpreter, with the semantics of @huggingface/jinja's runtime values
// (which follow JavaScript: numbers are doubles, `==` is JS loose equality on the underlying value, printing
// and `tojson` follow its toString()/toJSON()).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace actcap::jinja {

// A failure while lexing, parsing or rendering. `offset` is the byte offset in the template source once known.
struct TemplateFailure : std::runtime_error {
  explicit TemplateFailure(const std::string& message, bool raised = false)
      : std::runtime_error(message), raised_by_template(raised) {}
  bool raised_by_template;      // raise_exception() called by the template itself
  size_t offset = SIZE_MAX;     // where, in the original template source
};

[[noreturn]] inline void failure(const std::string& message) { throw TemplateFailure(message); }

// Rendering limits, in the spirit of Jinja's sandbox (whose MAX_RANGE is 100000): a template cannot make a
// string, list or range larger than these, or do more than kMaxRenderSteps evaluations, so a hostile or buggy
// template fails with a clear error instead of exhausting memory or time. Real chat templates stay far below.
constexpr size_t kMaxStringBytes = size_t(16) << 20;
constexpr size_t kMaxItems = 100000;
constexpr uint64_t kMaxRenderSteps = 10'000'000;
// Deeper values (JSON input, or lists built in a loop) are refused by every recursive walk over them.
constexpr int kMaxValueDepth = 1000;

enum class Kind { Integer, Float, String, Boolean, Object, KeywordArguments, Namespace, Array, Tuple, Function, Null, Undefined };

// The runtime's type names, as its error messages spell them ("IntegerValue", "UndefinedValue", ...).
const char* type_name(Kind kind);

struct Value;
class Environment;
using Array = std::vector<Value>;
// Insertion-ordered map; assigning an existing key keeps its position, like a JS Map.
struct Object {
  std::vector<std::pair<std::string, Value>> entries;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};
// Arguments are positional values, followed by one KeywordArguments value when keywords were given.
using Function = std::function<Value(std::vector<Value>& arguments, const std::shared_ptr<Environment>& caller)>;

// String bytes created while rendering, copies included (copying a list copies its strings), are counted
// against kMaxRenderBytes: a list of one large string doubled in a loop fails instead of filling memory.
constexpr uint64_t kMaxRenderBytes = uint64_t(1) << 30;
void reset_render_bytes();  // at the start of each render (per thread)

struct Value {
  Value() = default;
  Value(const Value& other);
  Value(Value&&) noexcept = default;
  Value& operator=(const Value& other);
  Value& operator=(Value&&) noexcept = default;
  // Frees nested lists and mappings iteratively: a template can nest values (in a loop) far deeper than the
  // stack could unwind recursively.
  ~Value();

  Kind kind = Kind::Undefined;
  double number = 0;  // Integer, Float
  bool boolean = false;
  std::string string;
  std::shared_ptr<Array> array;        // Array, Tuple
  std::shared_ptr<Object> object;      // Object, KeywordArguments, Namespace
  std::shared_ptr<const Function> function;

  static Value undefined() { return {}; }
  static Value null();
  static Value integer(double value);
  static Value floating(double value);
  static Value from_bool(bool value);
  static Value from_string(std::string value);
  static Value from_array(Array items, Kind kind = Kind::Array);
  static Value from_object(Object object, Kind kind = Kind::Object);
  static Value from_function(Function function);

  bool is(Kind k) const { return kind == k; }
  bool is_number() const { return kind == Kind::Integer || kind == Kind::Float; }
  bool is_numeric_like() const { return is_number() || kind == Kind::Boolean; }
  bool is_array() const { return kind == Kind::Array || kind == Kind::Tuple; }                  // instanceof ArrayValue
  bool is_object() const { return kind == Kind::Object || kind == Kind::KeywordArguments; }    // instanceof ObjectValue
  bool is_attribute_container() const { return is_object() || kind == Kind::Namespace; }
  double numeric() const { return kind == Kind::Boolean ? (boolean ? 1 : 0) : number; }
};

// JSON input (messages, tools, ...) as @huggingface/jinja sees it after JSON.parse: integral numbers become
// integers and object keys follow JS property order (array-index keys first, ascending).
Value from_json(const nlohmann::ordered_json& json, int depth = 0);

bool truthy(const Value& value);
// RuntimeValue.toString(): what `{{ value }}` prints.
std::string display_string(const Value& value);
// String(value.value): what `+` and `~` concatenate.
std::string primitive_string(const Value& value);

struct JsonOptions {
  std::optional<double> indent;
  bool ensure_ascii = false;
  std::optional<std::pair<std::string, std::string>> separators;  // item, key
  bool sort_keys = false;
};
std::string to_json(const Value& value, const JsonOptions& options, int depth = 0, bool undefined_as_null = true);

// `left.value == right.value` in JS (loose), `===` (strict), and SameValueZero (Set membership).
bool loose_equals(const Value& a, const Value& b);
bool strict_equals(const Value& a, const Value& b);
bool same_value_zero(const Value& a, const Value& b);

}  // namespace actcap::jinja
