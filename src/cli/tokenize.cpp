// actcap tokenize: text -> token ids with a model's tokenizer.json, exactly as HF tokenizers encodes.
// One TEXT prints one JSON array; --jsonl FILE (one JSON string per line) prints one array per line.
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

struct TokenizeOptions {
  std::string model, jsonl, text;
  bool no_special = false, has_text = false;
};

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "]\n";
}

void run(const TokenizeOptions& options) {
  if (options.has_text == !options.jsonl.empty()) fail("tokenize: give either TEXT or --jsonl FILE");
  Tokenizer tokenizer = Tokenizer::load(resolve_model(options.model).dir);
  const bool add_special = !options.no_special;
  std::string out;
  if (options.jsonl.empty()) {
    out = ids_json(tokenizer.encode(options.text, add_special));
  } else {
    std::ifstream in(options.jsonl, std::ios::binary);
    if (!in) fail("{}: cannot open", options.jsonl);
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail("{}:{}: not valid JSON: {}", options.jsonl, number, e.what());
      }
      if (!value.is_string()) fail("{}:{}: expected a JSON string", options.jsonl, number);
      try {
        out += ids_json(tokenizer.encode(value.get<std::string>(), add_special));
      } catch (const Error& e) {
        fail("{}:{}: {}", options.jsonl, number, e.what());
      }
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

CommandRegistration registration("tokenize", "print the token ids of a text (JSON array)", [](CLI::App& cmd) {
  auto options = std::make_shared<TokenizeOptions>();
  cmd.add_option("--model", options->model, "model folder holding tokenizer.json, or a hub model org/name[@revision]")->required();
  cmd.add_flag("--no-special", options->no_special, "Do not add special tokens (BOS/EOS templates)");
  cmd.add_option("--jsonl", options->jsonl, "File with one JSON string per line; prints one array per line");
  CLI::Option* text = cmd.add_option("text", options->text, "Text to tokenize (may be empty)");
  cmd.callback([options, text] {
    options->has_text = text->count() > 0;
    run(*options);
  });
});

}  // namespace
}  // namespace actcap::cli
