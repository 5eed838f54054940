#pragma once
// tokenizer.json "model": BPE (bpe.h), Unigram (unigram.h) or WordPiece (wordpiece.h), as HF tokenizers' models.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace actcap::tokenizer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-token.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual const std::string* id_to_token(int32_t id) const = 0;  // nullptr when unknown
  virtual size_t vocab_size() const = 0;
};

// Error naming the type when it is not one of the three, or the model is inconsistent.
std::unique_ptr<Model> make_model(const nlohmann::json& model);

}  // namespace actcap::tokenizer
