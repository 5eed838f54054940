#pragma once
// The labelled pairs of a concept store (what `actcap concept` captures): each record of records.jsonl carries
// "meta": {"concept", "side": "positive"|"negative", "pair": i, ...}, and a site's vectors are gathered into one
// matrix per side, row i = pair i, in float64 for the analysis.
#include <Eigen/Dense>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace actcap {

class StoreReader;

struct StorePairs {
  std::string concept_name;               // the records' "concept" ("" when they do not name one)
  std::vector<int64_t> positive, negative;  // record numbers; pair i = (positive[i], negative[i])
};

// Reads the labels; throws actcap::Error naming the store and record for a record without a label, a pair
// without both sides, or a side given twice.
StorePairs store_pairs(const StoreReader& store);

// How a record's rows of a site become one vector: its last stored row (by default, the last prompt token
// `actcap concept` keeps), or the mean of its stored rows.
enum class RowReduction { last, mean };
RowReduction parse_row_reduction(const std::string& text);  // "last" | "mean"; throws otherwise

struct PairMatrices {
  Eigen::MatrixXd positive, negative;  // [pairs, width]
};
// Throws naming the store and site when a record's rows are not vectors of one width.
PairMatrices pair_matrices(const StoreReader& store, const StorePairs& pairs, const std::string& site,
                           RowReduction reduction);

// The sites of `store` that hold a block's output, by block. Throws naming the store when it holds none, or
// two for one block.
std::map<int, std::string> block_output_sites(const StoreReader& store);

// The block whose output a site holds: hidden_states.j (j >= 1) is the output of block j - 1 (the last one
// after the final norm, as HF's output_hidden_states and repeng read it); blocks.N.hook_resid_post is block
// N's. nullopt for any other site.
std::optional<int> output_block_of_site(const std::string& site);

}  // namespace actcap
