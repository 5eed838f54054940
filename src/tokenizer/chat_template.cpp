#include "tokenizer/chat_template.h"

#include <utility>
#include <vector>

#include "core/error.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_string.h"
#include "tokenizer/jinja_value.h"

namespace actcap {

std::string render_chat_template(const std::string& template_source, const nlohmann::ordered_json& messages,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra_context) {
  if (!jinja::is_valid_utf8(template_source)) fail("chat template: not valid UTF-8");
  if (!extra_context.is_null() && !extra_context.is_object())
    fail("chat template: the extra context must be a JSON object, got {}", extra_context.type_name());
  try {
    jinja::reset_render_bytes();
    auto program = jinja::parse(jinja::tokenize(template_source), template_source.size());
    std::vector<std::pair<std::string, jinja::Value>> context;
    if (extra_context.is_object()) {
      for (const auto& [key, value] : extra_context.items()) {
        if (key == "messages" || key == "add_generation_prompt")
          fail("chat template: `{}` is given separately, not in the extra context", key);
        context.emplace_back(key, jinja::from_json(value));
      }
    }
    context.emplace_back("messages", jinja::from_json(messages));
    context.emplace_back("add_generation_prompt", jinja::Value::from_bool(add_generation_prompt));
    return jinja::render(*program, jinja::make_global_scope(context));
  } catch (const jinja::TemplateFailure& error) {
    std::string where;
    if (error.offset != SIZE_MAX) {
      auto [line, column] = jinja::line_and_column(template_source, error.offset);
      where = fmt::format(" at line {}, column {}", line, column);
    }
    // Error messages are one line.
    std::string message = error.what();
    for (size_t at; (at = message.find('\n')) != std::string::npos;) message.replace(at, 1, "\\n");
    if (error.raised_by_template) fail("chat template raised an error{}: {}", where, message);
    fail("chat template error{}: {}", where, message);
  }
}

std::string render_chat_template(const std::string& template_source, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra_context) {
  return render_chat_template(template_source, nlohmann::ordered_json::parse(messages.dump()), add_generation_prompt,
                              nlohmann::ordered_json::parse(extra_context.dump()));
}

}  // namespace actcap
