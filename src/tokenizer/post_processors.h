#pragma once
// tokenizer.json "post_processor" for single sequences: TemplateProcessing, RobertaProcessing, BertProcessing,
// ByteLevel (offsets only: ids unchanged), Sequence. Special tokens are added only with add_special_tokens.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace actcap::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};

// Null json -> nullptr. Unsupported type -> Error naming it.
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& spec);

// The template LlamaTokenizerFast / GemmaTokenizerFast rebuild: [bos] $A [eos].
std::unique_ptr<PostProcessor> make_bos_eos_template(std::vector<int32_t> prefix, std::vector<int32_t> suffix);

}  // namespace actcap::tokenizer
