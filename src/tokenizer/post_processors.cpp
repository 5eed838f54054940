#include "tokenizer/post_processors.h"

#include <string>

#include "core/error.h"
#include "tokenizer/token_id.h"

namespace actcap::tokenizer {
namespace {

// Special ids around the sequence: prefix + A + suffix.
class WrapProcessor : public PostProcessor {
 public:
  WrapProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  }

 private:
  std::vector<int32_t> prefix_, suffix_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& part : parts_) part->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

class NoIdChange : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

std::unique_ptr<PostProcessor> template_processing(const nlohmann::json& spec) {
  const auto& special = spec.at("special_tokens");
  std::vector<int32_t> prefix, suffix;
  bool seen_a = false;
  for (const auto& piece : spec.at("single")) {
    if (piece.contains("Sequence")) {
      const std::string id = piece["Sequence"].at("id").get<std::string>();
      if (id != "A" || seen_a) fail("tokenizer.json: TemplateProcessing single template must use sequence $A once");
      seen_a = true;
    } else if (piece.contains("SpecialToken")) {
      const std::string name = piece["SpecialToken"].at("id").get<std::string>();
      if (!special.contains(name)) fail("tokenizer.json: TemplateProcessing special token '{}' is not defined", name);
      auto& target = seen_a ? suffix : prefix;
      for (const auto& id : special[name].at("ids"))
        target.push_back(parse_token_id(id, fmt::format("TemplateProcessing special token '{}'", name)));
    } else {
      fail("tokenizer.json: TemplateProcessing piece is neither Sequence nor SpecialToken");
    }
  }
  if (!seen_a) fail("tokenizer.json: TemplateProcessing single template lacks $A");
  return std::make_unique<WrapProcessor>(std::move(prefix), std::move(suffix));
}

}  // namespace

std::unique_ptr<PostProcessor> make_bos_eos_template(std::vector<int32_t> prefix, std::vector<int32_t> suffix) {
  return std::make_unique<WrapProcessor>(std::move(prefix), std::move(suffix));
}

std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& spec) {
  if (spec.is_null()) return nullptr;
  const std::string type = spec.at("type").get<std::string>();
  if (type == "TemplateProcessing") return template_processing(spec);
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    // {"cls": [token, id], "sep": [token, id]}: <cls> A <sep>
    int32_t cls = parse_token_id(spec.at("cls").at(1), type + " cls");
    int32_t sep = parse_token_id(spec.at("sep").at(1), type + " sep");
    return std::make_unique<WrapProcessor>(std::vector<int32_t>{cls}, std::vector<int32_t>{sep});
  }
  if (type == "ByteLevel") return std::make_unique<NoIdChange>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& part : spec.at("processors"))
      if (auto p = make_post_processor(part)) parts.push_back(std::move(p));
    return std::make_unique<SequenceProcessor>(std::move(parts));
  }
  fail("tokenizer.json: unsupported post_processor type '{}'", type);
}

}  // namespace actcap::tokenizer
