// tokenizer.json loading (+ tokenizer_config.json), then encoding and decoding a text with it.
// Input: tokenizer.json NUL tokenizer_config.json NUL text.
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace actcap;
  const auto parts = fuzz::split_parts(data, size, 3);
  const std::string json = fuzz::write_scratch("tokenizer.json", parts[0]);
  const std::string config = parts[1].empty() ? "" : fuzz::write_scratch("tokenizer_config.json", parts[1]);
  try {
    Tokenizer tokenizer = Tokenizer::from_files(json, config);
    const std::vector<int32_t> ids = tokenizer.encode(parts[2]);
    tokenizer.decode(ids);
    tokenizer.decode(ids, true);
    DecodeStream stream(tokenizer, false);
    for (int32_t id : ids) stream.step(id);
    for (int32_t id : {0, 1, 255, 256, -1, 1 << 30}) tokenizer.id_to_token(id);
    tokenizer.special_token_ids();
  } catch (const Error&) {
  }
  return 0;
}
