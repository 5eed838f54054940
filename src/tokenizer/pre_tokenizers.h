#pragma once
// tokenizer.json "pre_tokenizer": Sequence, Split, ByteLevel, Metaspace, BertPreTokenizer.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace actcap::tokenizer {

struct PreToken {
  std::string text;
  bool at_origin;  // starts at offset 0 of the original input (Metaspace's prepend_scheme "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their pre-tokenized pieces; empty pieces are dropped, as HF does.
  virtual void pre_tokenize(std::vector<PreToken>& pieces) const = 0;
};

// Null json -> nullptr. Unsupported type or option -> Error naming it.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec);

// GPT-2's byte-to-character table (bytes_to_unicode) as UTF-8 strings, and its inverse (-1: not a byte char).
const std::string& byte_to_char(unsigned char byte);
int char_to_byte(char32_t cp);

}  // namespace actcap::tokenizer
