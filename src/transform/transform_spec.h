#pragma once
// The transforms spec of the distillation tooling (seed 004's transforms.json), read and checked against a
// model's config:
//   {"layers": [{"name": "model.layers.1", "rotation_path": "r.pt", "head_permutation_path": "heads.pt",
//                "neuron_permutation_path": "neurons.pt", "head_dim": 128}, ...]}
// Every path is optional; files may be .npy, .pt (torch.save) or .safetensors (one tensor, or actcap rotation's
// transport file, whose "linear_map" is used). Relative paths are looked up from the current folder, then from
// the spec's folder.
//
// Conventions (row vectors, as the stores and numpy hold activations): a rotation R [d, d] maps a residual
// vector h to h·R; a permutation p maps new index i to old index p[i] (new = old[p], numpy's gather). A head
// permutation lists the query heads (length num_attention_heads; with grouped-query attention it must move each
// key/value group's query heads together) or the key/value heads (length num_key_value_heads: whole groups move).
#include <Eigen/Dense>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/config.h"

namespace actcap {

struct LayerTransform {
  int64_t layer = 0;
  std::string name;                          // "model.layers.N"
  std::optional<Eigen::MatrixXd> rotation;   // [hidden, hidden], orthogonal
  std::string rotation_path;                 // as resolved
  std::vector<int64_t> query_heads;          // [num_attention_heads] or empty
  std::vector<int64_t> kv_heads;             // [num_key_value_heads] or empty (set together with query_heads)
  std::vector<int64_t> neurons;              // [intermediate_size] or empty
};

struct TransformSpec {
  std::string path;
  std::vector<LayerTransform> layers;  // in layer order, each layer at most once
};

// Throws actcap::Error naming the spec (or the transform file) and the problem: a missing file, a matrix of the
// wrong shape, one that is not orthogonal (max |RᵀR - I| > 1e-4), a permutation that is not one or splits a
// key/value group, a head_dim that is not the model's, an unknown or repeated layer name.
TransformSpec read_transform_spec(const std::string& path, const ModelConfig& config, const std::string& model_dir);

}  // namespace actcap
