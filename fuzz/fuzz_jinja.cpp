// Chat templates: lexing, parsing and rendering an arbitrary template over a fixed conversation.
// Input: template NUL extra context (JSON object, optional).
#include <nlohmann/json.hpp>

#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace actcap;
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <b>there</b>"},
    {"role": "assistant", "content": "Hello!", "tool_calls": [{"name": "f", "arguments": {"x": 1}}]},
    {"role": "user", "content": ["a", 2, null, 1.5, true]}])");
  const auto parts = fuzz::split_parts(data, size, 2);
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (!parts[1].empty()) {
    extra = nlohmann::ordered_json::parse(parts[1], nullptr, false);
    if (extra.is_discarded()) return 0;
  }
  try {
    render_chat_template(std::string(parts[0]), messages, true, extra);
  } catch (const Error&) {
  }
  return 0;
}
