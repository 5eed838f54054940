#pragma once
// Which sites (and which positions) a capture keeps.
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace actcap {

class Model;

struct SiteSelection {
  // patterns: comma-separated globs over site names ("all" = every site; "" = the default "hidden_states.*").
  // layers: "" (all) | "0,2,5-7" | "-1" (Python-style: the last block) | "recommended" (see recommended_layers).
  // A layer list filters only the sites of blocks: block K's sites are blocks.K.* and hidden_states.K (the
  // input of block K; hidden_states.0 is the embedding output, the input of block 0). Sites outside the blocks
  // (hook_embed, hook_pos_embed, ln_final.hook_normalized, hidden_states.L = the final norm's output, logits)
  // stay as the patterns select them.
  // positions: all|last|last-prompt|prompt|generated.
  // Throws actcap::Error for a pattern that matches nothing (naming the nearest site), a layer out of range, or
  // bad syntax.
  static SiteSelection parse(const std::string& patterns, const std::string& layers, const std::string& positions,
                             const Model& model);
  // Every site of the model, all positions.
  static SiteSelection all(const Model& model);

  std::vector<std::string> sites;  // selected sites, forward order
  bool wants(std::string_view site) const;
  bool empty() const { return sites.empty(); }
  enum class Positions { All, Last, LastPrompt, Prompt, Generated } positions = Positions::All;

 private:
  mutable std::unordered_set<std::string> set_;  // rebuilt when `sites` was changed directly
  void index() const;
};

// The layers picked by "recommended": the blocks i whose depth (i + 1) / L lies in [0.45, 0.85], the middle of
// the model where probing usually works best; when none does (L < 3), the block at 65% of the depth.
std::vector<int> recommended_layers(int num_layers);

// The blocks of a --layers list ("0,2,5-7", "-1", "-3--1", "recommended") for a model of `num_layers` blocks;
// throws actcap::Error naming the list for bad syntax or a layer out of range.
std::set<int> parse_layers(const std::string& spec, int num_layers);

// The block a site belongs to for --layers: blocks.K.* and hidden_states.K (K < num_layers) -> K; nullopt for
// the sites outside the blocks.
std::optional<int> block_of_site(const std::string& site, int num_layers);

// Splits a comma-separated list ("a, b,c"), trimming blanks around each item.
std::vector<std::string> split_list(const std::string& text);

// Which of `names` the comma-separated site globs pick (fnmatch patterns; "all" picks every name), in the
// names' order. Throws actcap::Error for an empty pattern, or for one that matches nothing: the error says whose
// sites these are (`whose`, e.g. "this gpt2 model"), suggests the nearest name or generic pattern, and says how to
// list them (`listing`, e.g. "`actcap ls STORE`"), after the option the patterns came from.
std::vector<std::string> match_site_globs(const std::string& patterns, const std::vector<std::string>& names,
                                          const std::string& whose, const std::string& listing,
                                          const std::string& option = "--sites");

// Whether a site has one row per token (the rows a token-stream store holds); attention patterns do not: their
// rows are heads and their width grows with the sequence.
bool is_token_row_site(std::string_view site);

}  // namespace actcap
