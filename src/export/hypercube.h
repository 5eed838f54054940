#pragma once
// The hypercube export: the integer layers flattened (C order) and concatenated in layer order into N values,
// padded to d^k with values sampled from the real ones, and reshaped to k axes of size d.
// Shape search (as the original tool): for every side d in [min_dim, max_dim], the smallest k >= 1 with
// d^k >= N; the (d, k) with the least padding wins, the smallest d on a tie. With num_dims forced, k is fixed
// and the smallest d in range with d^k >= N wins.
// Padding slot j (flat index N + j) copies the value at flat index source_j, drawn in slot order from
// std::mt19937_64(pad_seed) as a uniform integer in [0, N) by rejection: draw r, reject while
// r >= 2^64 - (2^64 mod N), source = r mod N.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace actcap {

struct HypercubeShape {
  int64_t side = 0, dims = 0, total = 0;  // total = side^dims
};
HypercubeShape choose_hypercube(int64_t n, int64_t min_dim, int64_t max_dim, std::optional<int64_t> num_dims);

// The sources of the padding slots, in slot order.
std::vector<int64_t> hypercube_padding_sources(int64_t n, int64_t padding, uint64_t seed);

struct LayerSpan {
  std::string layer, file;
  int64_t flat_offset = 0, flat_end = 0;
  Shape shape;
  std::string site;                // "" in metadata written before sites were recorded
  std::vector<std::string> axes;   // names of the shape's axes ("row", "position", "hidden", ...); may be empty
};

std::vector<int64_t> flat_to_coords(int64_t flat, const HypercubeShape& cube);
int64_t coords_to_flat(const std::vector<int64_t>& coords, const HypercubeShape& cube);  // throws if out of range

struct Located {
  bool padding = false;
  int64_t flat = 0;
  size_t layer = 0;              // index into the layer map (of the source, for padding)
  int64_t position = 0;          // flat position within that layer
  int64_t padding_source = -1;   // padding: the real flat index it copies
};
// Where a flat hypercube index comes from.
Located locate_flat(int64_t flat, const std::vector<LayerSpan>& layers, const HypercubeShape& cube,
                    uint64_t pad_seed);

// Reads INTEGERS_DIR (conversion_metadata.json and the layer .npy files written by `actcap export integers`)
// and writes OUT/hypercube.npy (the layers' encoding; fixed widths widened to the widest layer),
// OUT/hypercube_metadata.json and, when the layers are rows of several records, a copy of row_index.npy (the
// (record, position) of each row). Returns the metadata.
nlohmann::json export_hypercube(const std::string& integers_dir, const std::string& out_dir, int64_t min_dim,
                                int64_t max_dim, std::optional<int64_t> num_dims, uint64_t pad_seed);

// Reads the layer map and the cube's shape back from hypercube_metadata.json.
struct HypercubeLayout {
  HypercubeShape cube;
  std::vector<LayerSpan> layers;
  uint64_t pad_seed = 0;
  int64_t total_real = 0;
  std::string row_index_file;  // "" when the layers hold one record
};
HypercubeLayout read_hypercube_layout(const std::string& hypercube_dir);

}  // namespace actcap
