#include "tokenizer/model.h"

#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/unigram.h"
#include "tokenizer/wordpiece.h"

namespace actcap::tokenizer {

std::unique_ptr<Model> make_model(const nlohmann::json& model) {
  const std::string type = model.value("type", std::string("BPE"));  // old files omit BPE's type
  if (type == "BPE") return std::make_unique<BpeModel>(model);
  if (type == "Unigram") return std::make_unique<UnigramModel>(model);
  if (type == "WordPiece") return std::make_unique<WordPieceModel>(model);
  fail("tokenizer.json: unsupported model type '{}' (BPE, Unigram and WordPiece are implemented)", type);
}

}  // namespace actcap::tokenizer
