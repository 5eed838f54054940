#include "capture/sites.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/suggest.h"
#include "models/model.h"

namespace actcap {
namespace {


// A layer number, negative ones counting from the end as in Python (-1 = the last block).
int parse_layer(const std::string& text, int num_layers, const std::string& spec) {
  size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size())
    fail("--layers \"{}\": \"{}\" is not a layer number (give e.g. 0,2,5-7, -1 or recommended)", spec, text);
  if (value >= num_layers || value < -num_layers)
    fail("--layers \"{}\": layer {} is out of range (the model has {} layers: 0 to {}, or -{} to -1)", spec, value,
         num_layers, num_layers - 1, num_layers);
  return value < 0 ? value + num_layers : value;
}

}  // namespace

std::set<int> parse_layers(const std::string& spec, int num_layers) {
  std::set<int> layers;
  if (spec == "recommended") {
    for (int i : recommended_layers(num_layers)) layers.insert(i);
    return layers;
  }
  for (const std::string& part : split_list(spec)) {
    // A range's dash is the first one after the first character ("-3--1" is the range from -3 to -1).
    size_t dash = part.size() > 1 ? part.find('-', 1) : std::string::npos;
    if (dash == std::string::npos) {
      layers.insert(parse_layer(part, num_layers, spec));
    } else {
      int first = parse_layer(part.substr(0, dash), num_layers, spec);
      int last = parse_layer(part.substr(dash + 1), num_layers, spec);
      if (last < first) fail("--layers \"{}\": range \"{}\" is empty", spec, part);
      for (int i = first; i <= last; ++i) layers.insert(i);
    }
  }
  return layers;
}

namespace {

// The names a misspelled pattern is compared with: every site, and every site with its block number as "*".
std::vector<std::string> pattern_candidates(const std::vector<std::string>& names) {
  std::vector<std::string> candidates = names;
  for (const auto& name : names) {
    for (const std::string prefix : {"blocks.", "hidden_states."}) {
      if (name.rfind(prefix, 0) != 0) continue;
      size_t end = name.find('.', prefix.size());
      std::string generic = prefix + "*" + (end == std::string::npos ? "" : name.substr(end));
      if (std::find(candidates.begin(), candidates.end(), generic) == candidates.end()) candidates.push_back(generic);
    }
  }
  return candidates;
}

SiteSelection::Positions parse_positions(const std::string& text) {
  if (text == "all" || text.empty()) return SiteSelection::Positions::All;
  if (text == "last") return SiteSelection::Positions::Last;
  if (text == "last-prompt") return SiteSelection::Positions::LastPrompt;
  if (text == "prompt") return SiteSelection::Positions::Prompt;
  if (text == "generated") return SiteSelection::Positions::Generated;
  fail("--positions \"{}\": expected all, last, last-prompt, prompt or generated", text);
}

}  // namespace

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> parts;
  size_t begin = 0;
  for (;;) {
    const size_t end = text.find(',', begin);
    std::string part = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    part.erase(0, part.find_first_not_of(" \t"));
    part.erase(part.find_last_not_of(" \t") + 1);
    parts.push_back(part);
    if (end == std::string::npos) return parts;
    begin = end + 1;
  }
}

std::vector<std::string> match_site_globs(const std::string& patterns, const std::vector<std::string>& names,
                                          const std::string& whose, const std::string& listing,
                                          const std::string& option) {
  std::vector<bool> picked(names.size(), false);
  for (const std::string& glob : split_list(patterns)) {
    if (glob.empty()) fail("{} \"{}\": empty pattern", option, patterns);
    bool matched = false;
    for (size_t i = 0; i < names.size(); ++i) {
      if (glob == "all" || fnmatch(glob.c_str(), names[i].c_str(), 0) == 0) {
        picked[i] = true;
        matched = true;
      }
    }
    if (matched) continue;
    if (auto near = nearest_name(glob, pattern_candidates(names)))
      fail("{}: \"{}\" matches no site of {} (did you mean \"{}\"? {} lists them)", option, glob, whose, *near,
           listing);
    if (names.empty()) fail("{}: \"{}\" matches no site of {}: it has none", option, glob, whose);
    fail("{}: \"{}\" matches no site of {} (e.g. {}, {}, {}; {} lists them)", option, glob, whose, names.front(),
         names[names.size() / 2], names.back(), listing);
  }
  std::vector<std::string> selected;
  for (size_t i = 0; i < names.size(); ++i)
    if (picked[i]) selected.push_back(names[i]);
  return selected;
}

std::optional<int> block_of_site(const std::string& site, int num_layers) {
  auto number_after = [&](size_t at) {
    size_t end = site.find('.', at);
    return std::stoi(site.substr(at, end == std::string::npos ? std::string::npos : end - at));
  };
  if (site.rfind("blocks.", 0) == 0) return number_after(7);
  if (site.rfind("hidden_states.", 0) == 0) {
    int k = number_after(14);
    if (k < num_layers) return k;  // the input of block k; hidden_states.L is the final norm's output
  }
  return std::nullopt;
}

bool is_token_row_site(std::string_view site) {
  constexpr std::string_view pattern = "hook_pattern";
  return !(site.size() >= pattern.size() && site.substr(site.size() - pattern.size()) == pattern);
}

std::vector<int> recommended_layers(int num_layers) {
  std::vector<int> layers;
  for (int i = 0; i < num_layers; ++i) {
    const double depth = double(i + 1) / double(num_layers);
    if (depth >= 0.45 && depth <= 0.85) layers.push_back(i);
  }
  if (layers.empty()) layers.push_back(std::clamp(int(std::lround(0.65 * num_layers)) - 1, 0, num_layers - 1));
  return layers;
}

SiteSelection SiteSelection::parse(const std::string& patterns, const std::string& layers,
                                   const std::string& positions, const Model& model) {
  const std::vector<std::string> names = model.site_names();
  const int num_layers = int(model.config().num_hidden_layers);
  SiteSelection selection;
  selection.positions = parse_positions(positions);

  const std::vector<std::string> matched =
      match_site_globs(patterns.empty() ? "hidden_states.*" : patterns, names,
                       fmt::format("this {} model", model.config().model_type), "`actcap sites --model DIR`");
  std::optional<std::set<int>> layer_set;
  if (!layers.empty()) layer_set = parse_layers(layers, num_layers);
  for (const std::string& site : matched) {
    if (layer_set) {
      std::optional<int> layer = block_of_site(site, num_layers);
      if (layer && !layer_set->count(*layer)) continue;
    }
    selection.sites.push_back(site);
  }
  if (selection.sites.empty())
    fail("--sites \"{}\" with --layers \"{}\" selects no site", patterns, layers);
  selection.index();
  return selection;
}

SiteSelection SiteSelection::all(const Model& model) {
  SiteSelection selection;
  selection.sites = model.site_names();
  selection.index();
  return selection;
}

void SiteSelection::index() const { set_ = std::unordered_set<std::string>(sites.begin(), sites.end()); }

bool SiteSelection::wants(std::string_view site) const {
  if (set_.size() != sites.size()) index();
  return set_.count(std::string(site)) != 0;
}

}  // namespace actcap
