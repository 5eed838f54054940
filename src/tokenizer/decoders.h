#pragma once
// tokenizer.json "decoder": Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, WordPiece —
// each a decode_chain over the token strings as in HF tokenizers; the results are concatenated.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace actcap::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Null json -> nullptr (tokens joined with " "). Unsupported type -> Error naming it.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& spec);

}  // namespace actcap::tokenizer
