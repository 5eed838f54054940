#include "capture/store_diff.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <vector>

namespace actcap {

using json = nlohmann::json;

namespace {

std::string brief(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() <= 60 ? text : text.substr(0, 57) + "...";
}

std::string join(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 5) out += fmt::format(", ... {} in all", names.size());
  return out + "]";
}

bool all_strings(const json& list) {
  return list.is_array() && std::all_of(list.begin(), list.end(), [](const json& v) { return v.is_string(); });
}

std::string child(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

}  // namespace

std::optional<std::string> describe_difference(const json& stored, const json& ours, const std::string& path) {
  if (stored == ours) return std::nullopt;
  const std::string where = path.empty() ? "" : path + ": ";
  if (stored.is_object() && ours.is_object()) {
    std::set<std::string> keys;
    for (const auto& [key, _] : stored.items()) keys.insert(key);
    for (const auto& [key, _] : ours.items()) keys.insert(key);
    for (const auto& key : keys) {
      if (!ours.contains(key)) return fmt::format("{}: the store has {}, this run has none", child(path, key), brief(stored[key]));
      if (!stored.contains(key)) return fmt::format("{}: the store has none, this run has {}", child(path, key), brief(ours[key]));
      if (auto d = describe_difference(stored[key], ours[key], child(path, key))) return d;
    }
    return std::nullopt;
  }
  if (all_strings(stored) && all_strings(ours)) {
    const auto a = stored.get<std::vector<std::string>>(), b = ours.get<std::vector<std::string>>();
    const std::set<std::string> in_a(a.begin(), a.end()), in_b(b.begin(), b.end());
    std::vector<std::string> added, missing;
    for (const auto& name : b)
      if (!in_a.count(name)) added.push_back(name);
    for (const auto& name : a)
      if (!in_b.count(name)) missing.push_back(name);
    if (added.empty() && missing.empty()) return fmt::format("{}the same {} entries in another order", where, a.size());
    std::string text = where + "this run";
    if (!added.empty()) text += " adds " + join(added);
    if (!missing.empty()) text += std::string(added.empty() ? "" : ",") + " lacks " + join(missing);
    return text + " (the store's list has " + std::to_string(a.size()) + ")";
  }
  if (stored.is_array() && ours.is_array() && stored.size() == ours.size()) {
    for (size_t i = 0; i < stored.size(); ++i)
      if (auto d = describe_difference(stored[i], ours[i], fmt::format("{}[{}]", path, i))) return d;
  }
  if (stored.is_array() && ours.is_array())
    return fmt::format("{}the store has {} entries, this run {}", where, stored.size(), ours.size());
  return fmt::format("{}the store has {}, this run {}", where, brief(stored), brief(ours));
}

}  // namespace actcap
