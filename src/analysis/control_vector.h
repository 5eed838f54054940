#pragma once
// Control vectors from a concept's pairs, per layer, as repeng (vgel/repeng, extract.py) computes them, in
// float64 (the result is stored as float32):
//   mean-diff   mu = mean_i (p_i - q_i), not normalised: adding it moves the negative mean onto the positive
//   pca-diff    the first principal component of the diffs p_i - q_i after subtracting their column mean
//               (sklearn's PCA), unit norm; NOT the mean diff
//   pca-center  the first principal component of the rows p_i - c_i and q_i - c_i, c_i = (p_i + q_i) / 2,
//               in repeng's order [p_1 - c_1, q_1 - c_1, ...], column mean subtracted, unit norm
// A principal component's sign is first fixed as sklearn's svd_flip does (its largest-magnitude entry
// positive), then, for every method, repeng's vote: project p_i and q_i on d / ||d||; if more pairs have
// p_i below q_i than above, negate; a tie keeps the sign.
// Files, in the layout llama.cpp's --control-vector loader reads (common_control_vector_load_one):
// general.architecture = "controlvector", controlvector.model_hint (the model_type, string),
// controlvector.layer_count (uint32, the number of directions), tensors direction.N (F32, 1-D, n_embd) where N
// is the block whose output the vector steers: llama.cpp adds direction.N after block N (HF model.layers[N]),
// which is what the direction fit on hidden_states.(N+1) describes. llama.cpp refuses a file with direction.0
// (it cannot steer block 0), so GGUF leaves it out; safetensors, read by Python, keeps it.
#include <Eigen/Dense>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "analysis/concept_pairs.h"

namespace actcap {

class StoreReader;

enum class ControlVectorMethod { mean_diff, pca_diff, pca_center };
ControlVectorMethod parse_control_vector_method(const std::string& name);  // throws for an unknown one
std::string method_name(ControlVectorMethod method);

// The direction of one layer. Throws actcap::Error when the pairs cannot give one (no pairs; for the PCA
// methods fewer than 2 pairs, or no variance at all).
Eigen::VectorXd control_direction(const PairMatrices& pairs, ControlVectorMethod method);

struct ControlVector {
  std::string model_hint;                        // controlvector.model_hint: the model's model_type
  std::map<int, std::vector<float>> directions;  // by block
  std::string concept_name;                      // the pairs' concept, when fitted from a store
  int64_t pairs = 0;
};

// A direction for every block whose output `store` holds (block_output_sites), or for the blocks of `layers`
// (a --layers list, counted against the model's blocks: its config.json when the model the manifest names is
// still there, else the deepest block stored + 1), from the store's labelled pairs. model_hint = the
// manifest's model_type. Throws actcap::Error naming the store and site.
ControlVector fit_control_vector(const StoreReader& store, ControlVectorMethod method, RowReduction reduction,
                                 const std::string& layers);

// Writes the GGUF (without direction.0, which llama.cpp cannot load: the caller warns) atomically; throws
// when nothing is left to write or the directions differ in width.
void write_control_vector_gguf(const std::string& path, const ControlVector& vector);
// Writes direction.N (every block) as F32 [n_embd] with __metadata__ {"model_hint", plus `metadata`}.
void write_control_vector_safetensors(const std::string& path, const ControlVector& vector,
                                      const std::map<std::string, std::string>& metadata);

}  // namespace actcap
