#pragma once
// The evaluator: renders a parsed template, a port of @huggingface/jinja's Interpreter (scoping, loop
// variables, macros, filters, tests and operators behave as there, including where that differs from Python).
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_value.h"

namespace actcap::jinja {

class Environment {
 public:
  explicit Environment(std::shared_ptr<Environment> parent = nullptr) : parent_(std::move(parent)) {}
  void set(const std::string& name, Value value) { variables_[name] = std::move(value); }
  bool has_own(const std::string& name) const { return variables_.count(name) != 0; }
  // The innermost binding of `name`, or Undefined.
  Value lookup(const std::string& name) const;

 private:
  std::shared_ptr<Environment> parent_;
  std::unordered_map<std::string, Value> variables_;
};
using Scope = std::shared_ptr<Environment>;

// A global scope with the runtime's globals (true/false/none in both cases, namespace, raise_exception, range,
// strftime_now) plus `context`. Throws TemplateFailure when a context name is already declared.
Scope make_global_scope(const std::vector<std::pair<std::string, Value>>& context);

// Renders `program`. Throws TemplateFailure, with the offset of the failing node.
std::string render(const Node& program, const Scope& globals);

}  // namespace actcap::jinja
