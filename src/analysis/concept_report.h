#pragma once
// The per-layer analysis of a concept store (analysis/concept_metrics.h for the metrics): as a text table,
// concept.json and a figure (difference norm, cosine and separation per layer, with the ranking).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "analysis/concept_metrics.h"
#include "analysis/plot.h"

namespace actcap {

struct ConceptReport {
  std::string store, concept_name, model, model_type;
  int64_t pairs = 0;
  std::string positions;                // the row reduction: last | mean
  std::vector<LayerSeparation> layers;  // by block, ranked
};

// Every site of the store that holds a block's output (hidden_states.j, j >= 1; blocks.N.hook_resid_post).
// Throws actcap::Error naming the store when it holds none, or no labelled pairs.
ConceptReport analyze_concept_store(const std::string& store_dir, RowReduction reduction);

nlohmann::ordered_json report_json(const ConceptReport& report);
std::string report_text(const ConceptReport& report);  // a heading, the table, the best layers
plot::Figure report_figure(const ConceptReport& report);

}  // namespace actcap
