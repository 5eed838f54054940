#pragma once
// How well each layer separates a concept, from its pairs (p_i, q_i) = (positive, negative) vectors, i = 1..n,
// all in float64:
//   diff_norm      ||mu||, mu = mean_i (p_i - q_i): how far the concept moves the mean activation
//   mean_norm      mean of ||h|| over all 2n vectors (the residual stream's scale grows with depth)
//   relative_diff  diff_norm / mean_norm: the move relative to the activations' size, comparable across layers
//   cosine         mean_i cos(p_i, q_i): near 1 when the persona barely changes the activation
//   separation     Cohen's d along u = mu / ||mu||: (mean_i p_i.u - mean_i q_i.u) / sqrt((var p.u + var q.u) / 2),
//                  sample variances (n - 1); how many spreads apart the two sides lie on the concept direction
//                  (null with fewer than 2 pairs or no spread)
//   pair_accuracy  share of pairs with p_i.u > q_i.u: how often the direction orders a pair correctly
// Layers are ranked by separation (1 = best), layers without one last.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "analysis/concept_pairs.h"

namespace actcap {

struct LayerSeparation {
  std::string site;
  int block = -1;  // the block whose output the site holds
  int64_t pairs = 0;
  double diff_norm = 0, mean_norm = 0, relative_diff = 0, cosine = 0, separation = 0, pair_accuracy = 0;
  int rank = 0;
};

// The metrics of one site's pairs (site and block left for the caller).
LayerSeparation layer_separation(const PairMatrices& pairs);

// Sets each layer's rank by separation, descending (ties keep the layers' order; NaN last).
void rank_layers(std::vector<LayerSeparation>& layers);

// {"site", "block", "pairs", "diff_norm", ..., "rank"}, NaN as null.
nlohmann::ordered_json to_json(const LayerSeparation& layer);

// A fixed-width table of the layers in their order, with a header line.
std::string separation_table(const std::vector<LayerSeparation>& layers);

}  // namespace actcap
