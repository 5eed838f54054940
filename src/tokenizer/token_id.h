#pragma once
// Token ids are int32 throughout actcap: an id in a tokenizer file that does not fit (or is negative) is an
// error, never truncated.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace actcap::tokenizer {

// `value` as a token id (an integer from 0 to INT32_MAX); Error naming tokenizer.json and `what` otherwise.
int32_t parse_token_id(const nlohmann::json& value, std::string_view what);

}  // namespace actcap::tokenizer
