#pragma once
// Which sites (and which positions) a capture keeps.
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace actcap {

class Model;

struct SiteSelection {
  // patterns: comma-separated globs over site names ("all" = every site; "" = the default "hidden_states.*");
  // layers: "" (all) | "0,2,5-7" | "recommended" (45%-85% of depth): keeps blocks.{i}.* and hidden_states.{i+1}
  // (layer i's output) for the listed layers; sites outside any layer (hook_embed, ln_final, logits) are kept,
  // hidden_states.0 (the embedding output) is dropped when a layer list is given.
  // positions: all|last|prompt|generated.
  // Throws actcap::Error for a pattern that matches nothing, a layer out of range, or bad syntax.
  static SiteSelection parse(const std::string& patterns, const std::string& layers, const std::string& positions,
                             const Model& model);
  // Every site of the model, all positions.
  static SiteSelection all(const Model& model);

  std::vector<std::string> sites;  // selected sites, forward order
  bool wants(std::string_view site) const;
  bool empty() const { return sites.empty(); }
  enum class Positions { All, Last, Prompt, Generated } positions = Positions::All;

 private:
  mutable std::unordered_set<std::string> set_;  // rebuilt when `sites` was changed directly
  void index() const;
};

// The layers picked by "recommended": 45%-85% of the depth (never empty).
std::vector<int> recommended_layers(int num_layers);

}  // namespace actcap
