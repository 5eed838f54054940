#pragma once
// The WordPiece model of tokenizer.json (BERT and its kin), as HF tokenizers' models::wordpiece: greedy
// longest match first, later pieces carrying continuing_subword_prefix ("##"); a word with a part no piece
// matches, or longer than max_input_chars_per_word characters, is one unk_token.
#include "tokenizer/model.h"

namespace actcap::tokenizer {

class WordPieceModel : public Model {
 public:
  explicit WordPieceModel(const nlohmann::json& model);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  const std::string* id_to_token(int32_t id) const override;
  size_t vocab_size() const override { return vocab_.size(); }

 private:
  int32_t unk_id(std::string_view word) const;

  Vocab vocab_;
  std::unordered_map<int32_t, const std::string*> vocab_r_;
  std::string unk_token_, prefix_;
  size_t max_input_chars_per_word_ = 100;
};

}  // namespace actcap::tokenizer
