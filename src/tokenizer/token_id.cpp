#include "tokenizer/token_id.h"

#include "core/error.h"

namespace actcap::tokenizer {

int32_t parse_token_id(const nlohmann::json& value, std::string_view what) {
  if (!value.is_number_integer() ||
      (value.is_number_unsigned() ? value.get<uint64_t>() > uint64_t(INT32_MAX) : value.get<int64_t>() < 0))
    fail("tokenizer.json: {} has id {}, which is not a token id (an integer from 0 to {})", what, value.dump(),
         INT32_MAX);
  return value.get<int32_t>();
}

}  // namespace actcap::tokenizer
