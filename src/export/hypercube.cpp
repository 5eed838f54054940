#include "export/hypercube.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "export/object_npy.h"
#include "io/npy.h"

namespace actcap {

namespace {

int64_t saturating_power(int64_t base, int64_t exponent) {
  int64_t result = 1;
  for (int64_t i = 0; i < exponent; ++i) {
    if (result > std::numeric_limits<int64_t>::max() / base) return std::numeric_limits<int64_t>::max();
    result *= base;
  }
  return result;
}

namespace fs = std::filesystem;

}  // namespace

HypercubeShape choose_hypercube(int64_t n, int64_t min_dim, int64_t max_dim, std::optional<int64_t> num_dims) {
  if (n < 1) fail("hypercube: there are no values to reshape");
  if (min_dim < 2 || max_dim < min_dim)
    fail("hypercube: --min-dim {} / --max-dim {}: need 2 <= min-dim <= max-dim", min_dim, max_dim);
  if (num_dims && *num_dims < 1) fail("hypercube: --num-dims {}: must be at least 1", *num_dims);
  std::optional<HypercubeShape> best;
  for (int64_t d = min_dim; d <= max_dim; ++d) {
    int64_t k = 1;
    if (num_dims) {
      k = *num_dims;
    } else {
      while (saturating_power(d, k) < n) ++k;
    }
    const int64_t total = saturating_power(d, k);
    if (total < n || total == std::numeric_limits<int64_t>::max()) continue;
    if (!best || total < best->total) best = HypercubeShape{d, k, total};
    // Larger sides only add padding once k is fixed, or once d >= n (k = 1): stop, however large --max-dim is.
    if (num_dims || d >= n) break;
  }
  if (!best)
    fail("hypercube: no side in [{}, {}] with {} dimensions holds {} values", min_dim, max_dim,
         num_dims ? *num_dims : 0, n);
  return *best;
}

std::vector<int64_t> hypercube_padding_sources(int64_t n, int64_t padding, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const uint64_t range = uint64_t(n);
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - (std::numeric_limits<uint64_t>::max() % range + 1) % range;
  std::vector<int64_t> sources(size_t(std::max<int64_t>(padding, 0)));
  for (auto& source : sources) {
    uint64_t r;
    do r = rng();
    while (r > limit);
    source = int64_t(r % range);
  }
  return sources;
}

std::vector<int64_t> flat_to_coords(int64_t flat, const HypercubeShape& cube) {
  if (flat < 0 || flat >= cube.total) fail("hypercube: flat index {} is outside [0, {})", flat, cube.total);
  std::vector<int64_t> coords(size_t(cube.dims));
  for (int64_t i = cube.dims; i-- > 0;) {
    coords[size_t(i)] = flat % cube.side;
    flat /= cube.side;
  }
  return coords;
}

int64_t coords_to_flat(const std::vector<int64_t>& coords, const HypercubeShape& cube) {
  if (int64_t(coords.size()) != cube.dims)
    fail("hypercube: {} coordinates given for a cube of {} dimensions", coords.size(), cube.dims);
  int64_t flat = 0;
  for (int64_t c : coords) {
    if (c < 0 || c >= cube.side) fail("hypercube: coordinate {} is outside [0, {})", c, cube.side);
    flat = flat * cube.side + c;
  }
  return flat;
}

Located locate_flat(int64_t flat, const std::vector<LayerSpan>& layers, const HypercubeShape& cube,
                    uint64_t pad_seed) {
  if (flat < 0 || flat >= cube.total) fail("hypercube: flat index {} is outside [0, {})", flat, cube.total);
  const int64_t n = layers.empty() ? 0 : layers.back().flat_end;
  Located located;
  located.flat = flat;
  int64_t real = flat;
  if (flat >= n) {
    located.padding = true;
    real = hypercube_padding_sources(n, flat - n + 1, pad_seed).back();
    located.padding_source = real;
  }
  const auto it = std::upper_bound(layers.begin(), layers.end(), real,
                                   [](int64_t v, const LayerSpan& span) { return v < span.flat_end; });
  located.layer = size_t(it - layers.begin());
  located.position = real - it->flat_offset;
  return located;
}

nlohmann::json export_hypercube(const std::string& integers_dir, const std::string& out_dir, int64_t min_dim,
                                int64_t max_dim, std::optional<int64_t> num_dims, uint64_t pad_seed) {
  const std::string metadata_path = (fs::path(integers_dir) / "conversion_metadata.json").string();
  nlohmann::json conversion;
  try {
    conversion = nlohmann::json::parse(read_file(metadata_path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", metadata_path, e.what());
  }
  if (!conversion.contains("layers") || !conversion["layers"].is_array() || conversion["layers"].empty())
    fail("{}: no \"layers\" list", metadata_path);

  // Headers first: the total, the common encoding and the widest fixed width.
  std::vector<LayerSpan> layers;
  std::optional<IntegerNpyReader::Kind> kind;
  size_t width = 0;
  int64_t n = 0;
  for (const auto& entry : conversion["layers"]) {
    LayerSpan span;
    span.layer = entry.value("layer", "");
    span.file = entry.value("npy_file", "");
    span.site = entry.value("site", "");
    if (entry.contains("axes")) span.axes = entry["axes"].get<std::vector<std::string>>();
    if (span.layer.empty() || span.file.empty()) fail("{}: a layer entry lacks \"layer\" or \"npy_file\"", metadata_path);
    IntegerNpyReader reader((fs::path(integers_dir) / span.file).string());
    if (kind && reader.kind() != *kind)
      fail("{}: layers mix encodings (object, int64, fixed); export them all in one", metadata_path);
    kind = reader.kind();
    width = std::max(width, reader.width());
    span.shape = reader.shape();
    span.flat_offset = n;
    n += reader.count();
    span.flat_end = n;
    layers.push_back(std::move(span));
  }
  const HypercubeShape cube = choose_hypercube(n, min_dim, max_dim, num_dims);
  const int64_t padding = cube.total - n;
  const std::vector<int64_t> sources = hypercube_padding_sources(n, padding, pad_seed);
  std::vector<std::pair<int64_t, size_t>> wanted;  // (source, slot), by source
  wanted.reserve(sources.size());
  for (size_t slot = 0; slot < sources.size(); ++slot) wanted.emplace_back(sources[slot], slot);
  std::sort(wanted.begin(), wanted.end());
  std::vector<std::string> padding_values(sources.size());

  fs::create_directories(out_dir);
  const std::string cube_path = (fs::path(out_dir) / "hypercube.npy").string();
  const Shape cube_shape(size_t(cube.dims), cube.side);
  std::unique_ptr<ObjectNpyWriter> object_writer;
  std::unique_ptr<NpyWriter> numeric_writer;
  if (*kind == IntegerNpyReader::Kind::Object) {
    object_writer = std::make_unique<ObjectNpyWriter>(cube_path, cube_shape);
  } else if (*kind == IntegerNpyReader::Kind::Int64) {
    numeric_writer = std::make_unique<NpyWriter>(cube_path, DType::I64, cube_shape);
  } else {
    Shape bytes_shape = cube_shape;
    bytes_shape.push_back(int64_t(width));
    numeric_writer = std::make_unique<NpyWriter>(cube_path, DType::U8, bytes_shape);
  }
  std::string buffer;
  int64_t buffered = 0;
  auto flush = [&] {
    if (object_writer) object_writer->append(buffer, buffered);
    else numeric_writer->append(buffer.data(), buffer.size());
    buffer.clear();
    buffered = 0;
  };
  auto emit = [&](std::string_view element) {
    buffer.append(element);
    if (*kind == IntegerNpyReader::Kind::Fixed && element.size() < width)  // sign-extend
      buffer.append(width - element.size(), (uint8_t(element.back()) & 0x80) ? char(0xff) : char(0));
    if (++buffered >= (1 << 16)) flush();
  };

  size_t next_wanted = 0;
  int64_t flat = 0;
  for (const LayerSpan& span : layers) {
    IntegerNpyReader reader((fs::path(integers_dir) / span.file).string());
    for (int64_t i = 0; i < reader.count(); ++i, ++flat) {
      const std::string_view element = reader.next();
      emit(element);
      while (next_wanted < wanted.size() && wanted[next_wanted].first == flat) {
        std::string& value = padding_values[wanted[next_wanted++].second];
        value.assign(element);
        if (*kind == IntegerNpyReader::Kind::Fixed && value.size() < width)
          value.append(width - element.size(), (uint8_t(element.back()) & 0x80) ? char(0xff) : char(0));
      }
    }
    reader.finish();
  }
  for (const std::string& value : padding_values) emit(value);
  flush();
  if (object_writer) object_writer->commit();
  else numeric_writer->commit();

  nlohmann::json layer_map = nlohmann::json::array();
  for (const LayerSpan& span : layers)
    layer_map.push_back({{"layer", span.layer}, {"site", span.site}, {"npy_file", span.file},
                         {"flat_offset", span.flat_offset}, {"flat_end", span.flat_end},
                         {"original_shape", span.shape}, {"axes", span.axes}});
  const char* encoding = *kind == IntegerNpyReader::Kind::Object ? "object"
                         : *kind == IntegerNpyReader::Kind::Int64 ? "int64" : "fixed";
  nlohmann::json hypercube = {{"dimensions", cube_shape}, {"side", cube.side}, {"num_dims", cube.dims},
                              {"total_elements", cube.total}, {"total_real_elements", n},
                              {"padding_elements", padding},
                              {"sparsity", double(padding) / double(cube.total)}, {"npy_file", "hypercube.npy"},
                              {"encoding", encoding}};
  if (*kind == IntegerNpyReader::Kind::Fixed) hypercube["width_bytes"] = width;
  nlohmann::json metadata = {
      {"source_dir", integers_dir},
      {"hypercube", hypercube},
      {"search", {{"min_dim", min_dim}, {"max_dim", max_dim}, {"num_dims", num_dims ? nlohmann::json(*num_dims) : nlohmann::json()},
                  {"rule", "uniform side d in [min_dim, max_dim], smallest k with d^k >= N, least padding, "
                           "smallest d on a tie"}}},
      {"padding", {{"seed", pad_seed}, {"count", padding},
                   {"method", "slot j copies flat index source_j, drawn in slot order from std::mt19937_64(seed): "
                              "r rejected while r >= 2^64 - (2^64 mod N), source = r mod N"}}},
      {"mapping", {{"coords_to_flat", "numpy.ravel_multi_index(coords, dimensions) (C order)"},
                   {"flat_to_layer", "the layer_map entry with flat_offset <= flat < flat_end; position = "
                                     "numpy.unravel_index(flat - flat_offset, original_shape); flat >= "
                                     "total_real_elements is padding"}}},
      {"layer_map", layer_map}};
  for (const char* key : {"model_name", "prompt", "generated_text", "records", "conversion"})
    if (conversion.contains(key)) metadata[key] = conversion[key];
  if (conversion.contains("row_index_file")) {
    const std::string file = conversion["row_index_file"].get<std::string>();
    fs::copy_file(fs::path(integers_dir) / file, fs::path(out_dir) / file, fs::copy_options::overwrite_existing);
    metadata["row_index_file"] = file;
  }
  write_file_atomic((fs::path(out_dir) / "hypercube_metadata.json").string(), metadata.dump(2) + "\n");
  return metadata;
}

HypercubeLayout read_hypercube_layout(const std::string& hypercube_dir) {
  const std::string path = (fs::path(hypercube_dir) / "hypercube_metadata.json").string();
  try {
    const nlohmann::json metadata = nlohmann::json::parse(read_file(path));
    HypercubeLayout layout;
    const auto& cube = metadata.at("hypercube");
    layout.cube = {cube.at("side").get<int64_t>(), cube.at("num_dims").get<int64_t>(),
                   cube.at("total_elements").get<int64_t>()};
    layout.total_real = cube.at("total_real_elements").get<int64_t>();
    layout.pad_seed = metadata.at("padding").at("seed").get<uint64_t>();
    layout.row_index_file = metadata.value("row_index_file", "");
    for (const auto& entry : metadata.at("layer_map"))
      layout.layers.push_back({entry.at("layer").get<std::string>(), entry.at("npy_file").get<std::string>(),
                               entry.at("flat_offset").get<int64_t>(), entry.at("flat_end").get<int64_t>(),
                               entry.at("original_shape").get<Shape>(), entry.value("site", ""),
                               entry.value("axes", std::vector<std::string>{})});
    if (layout.layers.empty() || layout.layers.back().flat_end != layout.total_real ||
        saturating_power(layout.cube.side, layout.cube.dims) != layout.cube.total)
      fail("{}: inconsistent layer map or dimensions", path);
    return layout;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", path, e.what());
  }
}

}  // namespace actcap
