#include "capture/prompt_encoder.h"

#include <cstdio>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace actcap {

PromptEncoder::PromptEncoder(const Tokenizer* tokenizer, std::string model_dir, int64_t vocab_size, bool chat,
                             int64_t max_length)
    : tokenizer_(tokenizer), model_dir_(std::move(model_dir)), vocab_size_(vocab_size), chat_(chat),
      max_length_(max_length) {
  if (max_length < 0) fail("--max-length must be positive, got {}", max_length);
  if (chat_ && tokenizer_ == nullptr) fail("{}: --chat needs the model's tokenizer.json", model_dir_);
  if (chat_ && !tokenizer_->chat_template())
    fail("{}: --chat: the tokenizer_config.json has no chat_template", model_dir_);
}

std::string PromptEncoder::prompt_text(const std::string& text) const {
  if (!chat_) return text;
  nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", text}}});
  nlohmann::json context = nlohmann::json::object();
  if (auto bos = tokenizer_->bos_token()) context["bos_token"] = *bos;
  if (auto eos = tokenizer_->eos_token()) context["eos_token"] = *eos;
  return render_chat_template(*tokenizer_->chat_template(), messages, /*add_generation_prompt=*/true, context);
}

PromptEncoder::Encoded PromptEncoder::encode(const InputRecord& record) const {
  Encoded encoded;
  if (record.input_ids) {
    encoded.token_ids = *record.input_ids;
  } else {
    if (tokenizer_ == nullptr)
      fail("{}: the model {} has no tokenizer.json, so text prompts cannot be encoded (give --input-ids)",
           record.origin, model_dir_);
    if (chat_) {
      // The template writes the special tokens itself; like apply_chat_template, encode without adding more.
      encoded.token_ids = tokenizer_->encode(prompt_text(*record.text), /*add_special_tokens=*/false);
      if (auto bos = tokenizer_->bos_token(); bos && !warned_double_bos_ && encoded.token_ids.size() >= 2) {
        auto bos_ids = tokenizer_->encode(*bos, false);
        if (bos_ids.size() == 1 && encoded.token_ids[0] == bos_ids[0] && encoded.token_ids[1] == bos_ids[0]) {
          std::fprintf(stderr, "actcap: warning: %s: the chat template of %s starts the prompt with two BOS tokens\n",
                       record.origin.c_str(), model_dir_.c_str());
          warned_double_bos_ = true;
        }
      }
    } else {
      encoded.token_ids = tokenizer_->encode(*record.text, /*add_special_tokens=*/true);
    }
  }
  if (encoded.token_ids.empty()) fail("{}: the prompt is empty (it has no tokens)", record.origin);
  for (int32_t id : encoded.token_ids)
    if (id < 0 || id >= vocab_size_)
      fail("{}: token id {} is outside the vocabulary of {} ({} tokens)", record.origin, id, model_dir_, vocab_size_);
  if (max_length_ > 0 && int64_t(encoded.token_ids.size()) > max_length_) {
    encoded.token_ids.resize(size_t(max_length_));
    encoded.truncated = true;
  }
  return encoded;
}

}  // namespace actcap
