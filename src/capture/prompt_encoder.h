#pragma once
// Turns input records into the token ids a model sees: text through the model's tokenizer (optionally wrapped
// as one user message of its chat template, as transformers' apply_chat_template does), ids checked against
// the vocabulary, prompts truncated to --max-length tokens (the beginning is kept).
#include <cstdint>
#include <string>
#include <vector>

#include "capture/inputs.h"

namespace actcap {

class Tokenizer;

class PromptEncoder {
 public:
  // `tokenizer` may be null when every record carries token ids; max_length 0 = no truncation.
  // Throws actcap::Error if `chat` and the tokenizer has no chat template.
  PromptEncoder(const Tokenizer* tokenizer, std::string model_dir, int64_t vocab_size, bool chat,
                int64_t max_length);

  struct Encoded {
    std::vector<int32_t> token_ids;
    bool truncated = false;
  };
  Encoded encode(const InputRecord& record) const;  // throws actcap::Error naming record.origin

  // The text given to the tokenizer: the chat rendering of `text` as a user turn when --chat, else `text`.
  std::string prompt_text(const std::string& text) const;

 private:
  const Tokenizer* tokenizer_;
  std::string model_dir_;
  int64_t vocab_size_;
  bool chat_;
  int64_t max_length_;
  mutable bool warned_double_bos_ = false;
};

}  // namespace actcap
