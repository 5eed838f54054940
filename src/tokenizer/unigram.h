#pragma once
// The Unigram model of tokenizer.json (SentencePiece unigram: T5, ALBERT, XLNet, mBART...), as HF tokenizers'
// models::unigram: the segmentation with the highest total score (Viterbi over every vocabulary piece that
// starts at each character), a character no piece covers scoring min_score - 10 as unk; consecutive unk
// characters fuse into one piece, which byte_fallback spells as <0xXX> tokens when the vocabulary has them all.
#include "tokenizer/model.h"

namespace actcap::tokenizer {

class UnigramModel : public Model {
 public:
  explicit UnigramModel(const nlohmann::json& model);

  void tokenize(std::string_view text, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  const std::string* id_to_token(int32_t id) const override;
  size_t vocab_size() const override { return pieces_.size(); }

 private:
  // The pieces of the best segmentation of `text`, unknown runs fused.
  void segment(std::string_view text, std::vector<std::string_view>& pieces) const;

  std::vector<std::string> pieces_;  // by id
  std::vector<double> scores_;
  Vocab ids_;
  std::optional<int32_t> unk_id_;
  bool byte_fallback_ = false;
  double min_score_ = 0;
  // A byte trie of the pieces: node -> the id of the piece ending there (-1: none); (node, byte) -> child.
  std::vector<int32_t> node_piece_;
  std::unordered_map<uint64_t, int32_t> children_;
};

}  // namespace actcap::tokenizer
