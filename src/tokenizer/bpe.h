#pragma once
// The BPE model of tokenizer.json, as HF tokenizers' models::bpe: one symbol per character (byte_fallback to
// <0xXX>, else unk with fuse_unk), then merges applied lowest rank first, leftmost on ties, with a heap:
// O(n log n) per word. Results of short words are cached.
#include <mutex>

#include "tokenizer/model.h"

namespace actcap::tokenizer {

class BpeModel : public Model {
 public:
  // `model` is tokenizer.json's "model" object; Error if its type is not BPE or it is inconsistent.
  explicit BpeModel(const nlohmann::json& model);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  const std::string* id_to_token(int32_t id) const override;
  size_t vocab_size() const override { return vocab_.size(); }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  Vocab vocab_;
  std::unordered_map<int32_t, const std::string*> vocab_r_;  // a map: ids may be sparse
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_, end_of_word_suffix_;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  int32_t byte_ids_[256];  // <0xXX> ids for byte_fallback, -1 when absent

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace actcap::tokenizer
