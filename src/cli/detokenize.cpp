// actcap detokenize: token ids -> text, exactly as HF tokenizers decodes (no clean_up_tokenization_spaces).
// IDS is a JSON array or a comma-separated list; the text is printed followed by a newline. --jsonl FILE (one
// JSON array per line) prints one JSON string per line.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "io/hub.h"
#include "tokenizer/tokenizer.h"

namespace actcap::cli {
namespace {

struct DetokenizeOptions {
  std::string model, jsonl, ids;
  bool skip_special = false;
};

std::vector<int32_t> parse_ids(const std::string& text, const std::string& where) {
  std::string trimmed = text;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
  size_t first = trimmed.find_first_not_of(" \t");
  if (first != std::string::npos && trimmed[first] != '[') trimmed = "[" + trimmed + "]";
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(trimmed);
  } catch (const nlohmann::json::exception&) {
    fail("{}: expected token ids as a JSON array or a comma-separated list", where);
  }
  if (!value.is_array()) fail("{}: expected a JSON array of token ids", where);
  std::vector<int32_t> ids;
  for (const auto& v : value) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      fail("{}: token ids must be non-negative integers", where);
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

// HF's decode skips unknown ids silently; asked for explicitly, an id the tokenizer lacks is a mistake.
void check_known(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, const std::string& where) {
  for (int32_t id : ids)
    if (!tokenizer.id_to_token(id))
      fail("{}: token id {} is not in the vocabulary ({} tokens)", where, id, tokenizer.vocab_size());
}

void run(const DetokenizeOptions& options) {
  if (options.jsonl.empty() == options.ids.empty()) fail("detokenize: give either IDS or --jsonl FILE");
  Tokenizer tokenizer = Tokenizer::load(resolve_model(options.model).dir);
  std::string out;
  if (options.jsonl.empty()) {
    auto ids = parse_ids(options.ids, "detokenize IDS");
    check_known(tokenizer, ids, "detokenize IDS");
    out = tokenizer.decode(ids, options.skip_special) + "\n";
  } else {
    std::ifstream in(options.jsonl, std::ios::binary);
    if (!in) fail("{}: cannot open", options.jsonl);
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = fmt::format("{}:{}", options.jsonl, number);
      auto ids = parse_ids(line, where);
      check_known(tokenizer, ids, where);
      out += nlohmann::json(tokenizer.decode(ids, options.skip_special)).dump() + "\n";
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

CommandRegistration registration("detokenize", "print the text of token ids", [](CLI::App& cmd) {
  auto options = std::make_shared<DetokenizeOptions>();
  cmd.add_option("--model", options->model, "model folder holding tokenizer.json, or a hub model org/name[@revision]")->required();
  cmd.add_flag("--skip-special", options->skip_special, "Drop special tokens");
  cmd.add_option("--jsonl", options->jsonl, "File with one JSON array of ids per line; prints one JSON string per line");
  cmd.add_option("ids", options->ids, "Token ids: [1,2,3] or 1,2,3");
  cmd.callback([options] { run(*options); });
});

}  // namespace
}  // namespace actcap::cli
