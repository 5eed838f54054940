#pragma once
// Says where two JSON values first differ, short enough for a one-line error: "generation.max_new_tokens: the
// store has 8, this run 16", or for lists of names "sites: this run adds [a, b], lacks [c]".
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace actcap {

// nullopt when equal. `stored` is what the store has, `ours` what this run asks for; objects compare key by key.
std::optional<std::string> describe_difference(const nlohmann::json& stored, const nlohmann::json& ours,
                                               const std::string& path = "");

}  // namespace actcap
