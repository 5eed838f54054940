#include "export/output_names.h"

#include <algorithm>

#include "core/error.h"

namespace actcap {

OutputNaming parse_output_naming(const std::string& name) {
  if (name == "site") return OutputNaming::Site;
  if (name == "layer") return OutputNaming::Layer;
  fail("--by {}: expected 'site' or 'layer'", name);
}

std::string layer_name_of_site(const std::string& site) {
  constexpr std::string_view prefix = "hidden_states.";
  if (site.rfind(prefix, 0) != 0) return site;
  const std::string k = site.substr(prefix.size());
  if (k.empty() || k.size() > 9 || !std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return site;
  const long index = std::stol(k);
  return index == 0 ? "embedding" : "layer_" + std::to_string(index - 1);
}

std::string output_name(const std::string& site, OutputNaming naming) {
  return naming == OutputNaming::Layer ? layer_name_of_site(site) : site;
}

std::vector<std::string> hidden_state_chain(const std::vector<std::string>& sites) {
  std::vector<std::string> chain;
  for (size_t k = 0;; ++k) {
    const std::string site = "hidden_states." + std::to_string(k);
    if (std::find(sites.begin(), sites.end(), site) == sites.end()) return chain;
    chain.push_back(site);
  }
}

}  // namespace actcap
