#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/decoders.h"
#include "tokenizer/model.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processors.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/token_id.h"
#include "tokenizer/unicode.h"

namespace actcap {
namespace tokenizer {

struct TokenizerData {
  std::unique_ptr<Model> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  std::vector<std::unique_ptr<AddedToken>> added_tokens;
  std::unordered_map<int32_t, const AddedToken*> added_by_id;
  std::unordered_map<std::string, const AddedToken*> added_by_content;
  std::unordered_set<std::string> special_contents;
  AddedTokenMatcher raw_matcher;         // added tokens with normalized: false, found in the input text
  AddedTokenMatcher normalized_matcher;  // normalized: true, found in normalized text
  std::optional<std::string> chat_template, bos_token, eos_token;
  bool adds_bos = false;
};

namespace {

// nlohmann's message without its "[json.exception.type_error.302] " prefix.
std::string json_error_text(const nlohmann::json::exception& e) {
  std::string message = e.what();
  if (message.rfind("[json.exception.", 0) == 0) message.erase(0, message.find("] ") + 2);
  return message;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) fail("{}: read error", path);
  return buffer.str();
}

nlohmann::json parse_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", path, json_error_text(e));
  }
}

// A special token in tokenizer_config.json / special_tokens_map.json: a string or an AddedToken object.
std::optional<std::string> token_setting(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return (*it)["content"].get<std::string>();
  fail("tokenizer_config.json: '{}' must be a string or an object with \"content\"", key);
}

void load_tokenizer_json(TokenizerData& d, const nlohmann::json& j) {
  if (j.value("version", std::string()) != "1.0")
    fail("tokenizer.json: unsupported version '{}' (expected \"1.0\")", j.value("version", std::string("?")));
  for (const char* key : {"truncation", "padding"})
    if (j.contains(key) && !j[key].is_null()) fail("tokenizer.json: '{}' is set, which actcap does not support", key);
  d.model = make_model(j.at("model"));
  d.normalizer = make_normalizer(j.value("normalizer", nlohmann::json()));
  d.pre_tokenizer = make_pre_tokenizer(j.value("pre_tokenizer", nlohmann::json()));
  d.post_processor = make_post_processor(j.value("post_processor", nlohmann::json()));
  d.decoder = make_decoder(j.value("decoder", nlohmann::json()));

  int32_t max_added_id = -1;
  for (const auto& spec : j.value("added_tokens", nlohmann::json::array())) {
    auto token = std::make_unique<AddedToken>();
    token->content = spec.at("content").get<std::string>();
    if (token->content.empty() || d.added_by_content.count(token->content)) continue;  // as HF: ignored
    // HF's AddedVocabulary ignores the stored id: a content already in the vocab keeps the model's id, others
    // are numbered from the vocab size on, after the largest added id.
    if (spec.contains("id")) parse_token_id(spec["id"], fmt::format("added token '{}'", token->content));
    if (auto model_id = d.model->token_to_id(token->content)) {
      token->id = *model_id;
    } else {
      const auto vocab_size = static_cast<int64_t>(d.model->vocab_size());
      const int64_t id = max_added_id < 0 ? vocab_size
                         : (max_added_id >= vocab_size || vocab_size == 0 ? int64_t(max_added_id) + 1 : vocab_size);
      if (id > INT32_MAX) fail("tokenizer.json: added token '{}' would get id {}, beyond {}", token->content, id, INT32_MAX);
      token->id = static_cast<int32_t>(id);
    }
    max_added_id = std::max(max_added_id, token->id);
    token->single_word = spec.value("single_word", false);
    token->lstrip = spec.value("lstrip", false);
    token->rstrip = spec.value("rstrip", false);
    token->normalized = spec.value("normalized", true);
    token->special = spec.value("special", false);
    if (token->special) d.special_contents.insert(token->content);
    d.added_by_id.emplace(token->id, token.get());
    d.added_by_content.emplace(token->content, token.get());
    d.added_tokens.push_back(std::move(token));
  }
  for (const auto& token : d.added_tokens) {
    if (token->normalized) {
      std::string pattern = token->content;
      if (d.normalizer) d.normalizer->normalize(pattern);
      d.normalized_matcher.add(pattern, token.get());
    } else {
      d.raw_matcher.add(token->content, token.get());
    }
  }
}

std::optional<int32_t> lookup(const TokenizerData& d, std::string_view token) {
  auto it = d.added_by_content.find(std::string(token));
  if (it != d.added_by_content.end()) return it->second->id;
  return d.model->token_to_id(token);
}

// What AutoTokenizer does with tokenizer_config.json. LlamaTokenizerFast and GemmaTokenizerFast rebuild the
// post-processor from add_bos_token (default true) and add_eos_token (default false); other classes keep
// tokenizer.json's post_processor.
void apply_tokenizer_config(TokenizerData& d, const nlohmann::json& config) {
  d.bos_token = token_setting(config, "bos_token");
  d.eos_token = token_setting(config, "eos_token");
  if (auto it = config.find("chat_template"); it != config.end() && !it->is_null()) {
    if (it->is_string()) {
      d.chat_template = it->get<std::string>();
    } else if (it->is_array()) {  // [{"name", "template"}]: the "default" one
      for (const auto& entry : *it)
        if (entry.value("name", std::string()) == "default") d.chat_template = entry.at("template").get<std::string>();
    }
  }
  const std::string cls = config.value("tokenizer_class", std::string());
  static const std::unordered_set<std::string> rebuilds_template = {
      "LlamaTokenizer", "LlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast", "CodeLlamaTokenizer",
      "CodeLlamaTokenizerFast"};
  if (!rebuilds_template.count(cls)) return;
  const auto flag = [&](const char* key, bool fallback) {
    auto it = config.find(key);
    return it == config.end() || it->is_null() ? fallback : it->get<bool>();
  };
  std::vector<int32_t> prefix, suffix;
  const auto special_id = [&](const std::optional<std::string>& token, const char* what) {
    if (!token) fail("tokenizer_config.json: add_{}_token is true but {}_token is not set", what, what);
    auto id = lookup(d, *token);
    if (!id) fail("tokenizer_config.json: {}_token '{}' is not in the vocabulary", what, *token);
    return *id;
  };
  if (flag("add_bos_token", true)) prefix.push_back(special_id(d.bos_token, "bos"));
  if (flag("add_eos_token", false)) suffix.push_back(special_id(d.eos_token, "eos"));
  d.post_processor = make_bos_eos_template(std::move(prefix), std::move(suffix));
}

// Runs `f`, turning a JSON type or key error in `file` into an Error naming it.
template <typename F>
void interpreting(const char* file, F&& f) {
  try {
    f();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", file, json_error_text(e));
  }
}

std::shared_ptr<TokenizerData> build(const nlohmann::json& tokenizer_json, const nlohmann::json* config) {
  auto d = std::make_shared<TokenizerData>();
  if (!tokenizer_json.is_object()) fail("tokenizer.json: not a JSON object");
  interpreting("tokenizer.json", [&] { load_tokenizer_json(*d, tokenizer_json); });
  if (config) {
    if (!config->is_object()) fail("tokenizer_config.json: not a JSON object");
    interpreting("tokenizer_config.json", [&] { apply_tokenizer_config(*d, *config); });
  }
  if (d->bos_token && d->post_processor) {
    if (auto bos = lookup(*d, *d->bos_token)) {
      std::vector<int32_t> probe;
      d->post_processor->process(probe, true);
      d->adds_bos = !probe.empty() && probe.front() == *bos;
    }
  }
  return d;
}

// Names the file in errors raised while interpreting it.
template <typename F>
auto with_file(const std::string& path, F&& f) {
  try {
    return f();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", path, json_error_text(e));
  } catch (const Error& e) {
    std::string message = e.what();
    if (message.rfind(path, 0) == 0) throw;
    fail("{}: {}", path, message);
  }
}

}  // namespace
}  // namespace tokenizer

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  nlohmann::json j = tokenizer::parse_json(tokenizer_json);
  std::optional<nlohmann::json> config;
  if (!tokenizer_config_json.empty()) config = tokenizer::parse_json(tokenizer_config_json);
  return Tokenizer(tokenizer::with_file(tokenizer_json + (config ? " / " + tokenizer_config_json : std::string()), [&] {
    return tokenizer::build(j, config ? &*config : nullptr);
  }));
}

Tokenizer Tokenizer::load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  const fs::path json = dir / "tokenizer.json";
  if (!fs::exists(json)) fail("{}: no tokenizer.json in this model directory", model_dir);
  nlohmann::json j = tokenizer::parse_json(json.string());
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(dir / "special_tokens_map.json")) {
    const nlohmann::json map = tokenizer::parse_json((dir / "special_tokens_map.json").string());
    if (!map.is_object()) fail("{}: not a JSON object", (dir / "special_tokens_map.json").string());
    for (auto it = map.begin(); it != map.end(); ++it) config[it.key()] = it.value();
  }
  if (fs::exists(dir / "tokenizer_config.json")) {
    const nlohmann::json settings = tokenizer::parse_json((dir / "tokenizer_config.json").string());
    if (!settings.is_object()) fail("{}: not a JSON object", (dir / "tokenizer_config.json").string());
    for (auto it = settings.begin(); it != settings.end(); ++it)
      if (!it.value().is_null() || !config.contains(it.key())) config[it.key()] = it.value();
  }
  if (fs::exists(dir / "chat_template.jinja")) config["chat_template"] = tokenizer::read_file((dir / "chat_template.jinja").string());
  return Tokenizer(tokenizer::with_file(model_dir, [&] { return tokenizer::build(j, &config); }));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  using namespace tokenizer;
  const TokenizerData& d = *data_;
  if (size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    fail("tokenizer input: invalid UTF-8 at byte {}", bad);
  std::vector<int32_t> ids;
  std::vector<TextSplit> splits, inner;
  std::vector<PreToken> pieces;
  const auto model_pieces = [&](std::string_view piece, bool at_origin) {
    pieces.clear();
    pieces.push_back({std::string(piece), at_origin});
    if (d.pre_tokenizer) d.pre_tokenizer->pre_tokenize(pieces);
    for (const auto& p : pieces) d.model->tokenize(p.text, ids);
  };
  d.raw_matcher.split(text, splits);
  for (const auto& split : splits) {
    if (split.token) {
      ids.push_back(split.token->id);
      continue;
    }
    std::string normalized(text.substr(split.begin, split.end - split.begin));
    if (d.normalizer) d.normalizer->normalize(normalized);
    if (normalized.empty()) continue;
    if (d.normalized_matcher.empty()) {
      model_pieces(normalized, split.begin == 0);
      continue;
    }
    d.normalized_matcher.split(normalized, inner);
    for (const auto& sub : inner) {
      if (sub.token)
        ids.push_back(sub.token->id);
      else
        model_pieces(std::string_view(normalized).substr(sub.begin, sub.end - sub.begin),
                     split.begin == 0 && sub.begin == 0);
    }
  }
  if (d.post_processor) d.post_processor->process(ids, add_special_tokens);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const tokenizer::TokenizerData& d = *data_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* token = nullptr;
    if (auto it = d.added_by_id.find(id); it != d.added_by_id.end())
      token = &it->second->content;
    else
      token = d.model->id_to_token(id);
    if (!token) continue;
    if (skip_special_tokens && d.special_contents.count(*token)) continue;
    tokens.push_back(*token);
  }
  std::string text;
  if (d.decoder) {
    d.decoder->decode_chain(tokens);
    for (const auto& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) text += ' ';
      text += tokens[i];
    }
  }
  return text;
}

const std::optional<std::string>& Tokenizer::chat_template() const { return data_->chat_template; }
std::optional<std::string> Tokenizer::bos_token() const { return data_->bos_token; }
std::optional<std::string> Tokenizer::eos_token() const { return data_->eos_token; }
std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return tokenizer::lookup(*data_, token); }
bool Tokenizer::adds_bos() const { return data_->adds_bos; }

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (auto it = data_->added_by_id.find(id); it != data_->added_by_id.end()) return it->second->content;
  if (const std::string* token = data_->model->id_to_token(id)) return *token;
  return std::nullopt;
}

size_t Tokenizer::vocab_size() const {
  size_t size = data_->model->vocab_size();
  for (const auto& token : data_->added_tokens)
    if (!data_->model->id_to_token(token->id)) ++size;
  return size;
}

std::vector<int32_t> Tokenizer::special_token_ids() const {
  std::vector<int32_t> ids;
  for (const std::string& content : data_->special_contents)
    if (auto id = token_to_id(content)) ids.push_back(*id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string DecodeStream::step(int32_t id) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const auto ends_broken = [](const std::string& s) { return s.ends_with(kReplacement); };
  if (prefix_.empty() && !ids_.empty()) {
    std::string new_prefix = tokenizer_.decode(ids_, skip_special_tokens_);
    if (!ends_broken(new_prefix)) {
      prefix_ = std::move(new_prefix);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  std::string text = tokenizer_.decode(ids_, skip_special_tokens_);
  if (text.size() <= prefix_.size() || ends_broken(text)) return {};
  if (!text.starts_with(prefix_)) fail("decode stream: the decoded text no longer extends the text already emitted");
  std::string fresh = text.substr(prefix_.size());
  size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_.decode(ids_, skip_special_tokens_);
  prefix_index_ = new_prefix_index;
  return fresh;
}

}  // namespace actcap
