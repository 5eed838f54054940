#pragma once
// Chat templates: renders the Jinja `chat_template` of a tokenizer_config.json exactly like @huggingface/jinja
// (the renderer of transformers.js, and byte-identical to transformers' apply_chat_template on real templates).
#include <nlohmann/json.hpp>

#include <string>

namespace actcap {

// Renders `template_source` with `messages`, `add_generation_prompt` and every key of `extra_context`
// (bos_token, eos_token, tools, enable_thinking, ...) as template variables.
// Throws actcap::Error, one line: a syntax or evaluation error with the template's line and column, or the
// message the template passed to raise_exception().
std::string render_chat_template(const std::string& template_source, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra_context);
// The same with JSON that keeps its key order, for callers that parsed messages/tools themselves: `tojson`
// then prints keys in the order of the input, as the reference does.
std::string render_chat_template(const std::string& template_source, const nlohmann::ordered_json& messages,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra_context);

}  // namespace actcap
