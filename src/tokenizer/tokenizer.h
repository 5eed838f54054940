#pragma once
// A Hugging Face tokenizer.json, encoded and decoded exactly as HF `tokenizers` does (BPE families: GPT-2,
// Llama-2/3, Mistral, Qwen2/3, Gemma-3, GPT-4o, DeepSeek-V3; SentencePiece Unigram; BERT WordPiece), plus the
// tokenizer_config.json settings AutoTokenizer applies.
// decode() reproduces raw `tokenizers` decoding: transformers' clean_up_tokenization_spaces is not applied.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace actcap {

namespace tokenizer {
struct TokenizerData;
}

class Tokenizer {
 public:
  // tokenizer.json (+ tokenizer_config.json, special_tokens_map.json and chat_template.jinja when present).
  static Tokenizer load(const std::string& model_dir);
  // tokenizer_config_json may be "": raw tokenizer.json behaviour.
  static Tokenizer from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json);

  // Invalid UTF-8 -> Error naming the byte offset.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Unknown ids are skipped, as HF does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  const std::optional<std::string>& chat_template() const;
  std::optional<std::string> bos_token() const;
  std::optional<std::string> eos_token() const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // The number of tokens, added tokens included (HF's get_vocab_size(with_added_tokens=True)).
  size_t vocab_size() const;
  // The ids of the special tokens (the ones skip_special_tokens leaves out), ascending.
  std::vector<int32_t> special_token_ids() const;
  // Whether the ids added by add_special_tokens start with the BOS token (to spot a chat template adding its own).
  bool adds_bos() const;

 private:
  explicit Tokenizer(std::shared_ptr<const tokenizer::TokenizerData> data) : data_(std::move(data)) {}
  std::shared_ptr<const tokenizer::TokenizerData> data_;
};

// Streaming detokenization as HF's DecodeStream: text is emitted once it no longer ends in U+FFFD, and earlier
// ids stay as context so decoders that strip a leading space do not eat real spaces.
class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens);
  std::string step(int32_t id);  // text newly completed by this token (possibly "")

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

}  // namespace actcap
