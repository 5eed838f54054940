#include "tokenizer/wordpiece.h"

#include <fmt/format.h>

#include "core/error.h"
#include "tokenizer/token_id.h"
#include "tokenizer/unicode.h"

namespace actcap::tokenizer {

WordPieceModel::WordPieceModel(const nlohmann::json& model) {
  const auto& vocab = model.at("vocab");
  if (!vocab.is_object()) fail("tokenizer.json: the WordPiece vocab must be an object of token: id");
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    vocab_.emplace(it.key(), parse_token_id(it.value(), fmt::format("vocab token '{}'", it.key())));
  for (const auto& [token, id] : vocab_) vocab_r_.emplace(id, &token);
  unk_token_ = model.value("unk_token", std::string("[UNK]"));
  prefix_ = model.value("continuing_subword_prefix", std::string("##"));
  max_input_chars_per_word_ = model.value("max_input_chars_per_word", size_t{100});
}

std::optional<int32_t> WordPieceModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* WordPieceModel::id_to_token(int32_t id) const {
  auto it = vocab_r_.find(id);
  return it == vocab_r_.end() ? nullptr : it->second;
}

int32_t WordPieceModel::unk_id(std::string_view word) const {
  auto id = token_to_id(unk_token_);
  if (!id)
    fail("tokenizer: WordPiece has no piece for '{}' and its unk_token '{}' is not in the vocab", word, unk_token_);
  return *id;
}

void WordPieceModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  size_t chars = 0;
  for (size_t i = 0; i < word.size(); i += utf8_length(static_cast<unsigned char>(word[i]))) ++chars;
  if (chars > max_input_chars_per_word_) {
    out.push_back(unk_id(word));
    return;
  }
  const size_t first = out.size();
  std::string candidate;
  for (size_t start = 0; start < word.size();) {
    // The longest piece from `start`: shrink the end one character at a time.
    size_t end = word.size();
    std::optional<int32_t> id;
    while (end > start) {
      candidate.assign(start > 0 ? prefix_ : std::string());
      candidate.append(word.substr(start, end - start));
      if ((id = token_to_id(candidate))) break;
      do --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (!id) {
      out.resize(first);
      out.push_back(unk_id(word));
      return;
    }
    out.push_back(*id);
    start = end;
  }
}

}  // namespace actcap::tokenizer
