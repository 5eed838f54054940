#pragma once
// tokenizer.json "normalizer": Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, BertNormalizer.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace actcap::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// Null json -> nullptr. Unsupported type -> Error naming it.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec);

}  // namespace actcap::tokenizer
