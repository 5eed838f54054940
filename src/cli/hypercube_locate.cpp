// actcap hypercube locate DIR (--coord i,j,k,... | --flat F | --layer L --position p): maps a hypercube
// coordinate to the (layer, position) it holds, and back, from hypercube_metadata.json, naming each axis.
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include <fmt/ranges.h>

#include "cli/command.h"
#include "core/error.h"
#include "export/hypercube.h"
#include "export/integers.h"
#include "export/object_npy.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string dir, coord, layer, position;
  int64_t flat = 0;
  bool flat_given = false;
};

// (record, position) of row `row` in the cube folder's copy of row_index.npy.
std::pair<int64_t, int64_t> row_origin(const std::string& dir, const std::string& file, int64_t row) {
  const std::string path = (std::filesystem::path(dir) / file).string();
  IntegerNpyReader reader(path);
  if (reader.kind() != IntegerNpyReader::Kind::Int64 || reader.shape().size() != 2 || reader.shape()[1] != 2 ||
      row >= reader.shape()[0])
    fail("{}: expected an int64 [rows, 2] array with row {}", path, row);
  for (int64_t i = 0; i < 2 * row; ++i) reader.next();
  int64_t pair[2];
  for (int64_t& value : pair) std::memcpy(&value, reader.next().data(), sizeof(int64_t));
  return {pair[0], pair[1]};
}

std::vector<int64_t> parse_indices(const std::string& text, const char* option) {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail("{} {}: expected comma-separated integers", option, text);
    }
  }
  if (values.empty()) fail("{} {}: expected comma-separated integers", option, text);
  return values;
}

void run(const Options& options) {
  if (int(!options.coord.empty()) + int(options.flat_given) + int(!options.layer.empty()) > 1)
    fail("hypercube locate: give one of --coord, --flat or --layer");
  if (!options.position.empty() && options.layer.empty()) fail("--position {}: give --layer too", options.position);
  const HypercubeLayout layout = read_hypercube_layout(options.dir);
  int64_t flat;
  if (!options.coord.empty()) {
    flat = coords_to_flat(parse_indices(options.coord, "--coord"), layout.cube);
  } else if (options.flat_given) {
    if (options.flat < 0 || options.flat >= layout.cube.total)
      fail("--flat {}: the cube's flat indices are 0 to {}", options.flat, layout.cube.total - 1);
    flat = options.flat;
  } else if (!options.layer.empty()) {
    const auto it = std::find_if(layout.layers.begin(), layout.layers.end(),
                                 [&](const LayerSpan& span) { return span.layer == options.layer; });
    if (it == layout.layers.end()) fail("--layer {}: not in {}/hypercube_metadata.json", options.layer, options.dir);
    const std::vector<int64_t> index = parse_indices(options.position.empty() ? "0" : options.position, "--position");
    int64_t position = 0;
    if (index.size() == 1) {
      position = index[0];
    } else {
      if (index.size() != it->shape.size())
        fail("--position {}: layer {} has shape {}", options.position, it->layer, shape_string(it->shape));
      for (size_t i = 0; i < index.size(); ++i) {
        if (index[i] < 0 || index[i] >= it->shape[i])
          fail("--position {}: outside layer {}'s shape {}", options.position, it->layer, shape_string(it->shape));
        position = position * it->shape[i] + index[i];
      }
    }
    if (position < 0 || position >= it->flat_end - it->flat_offset)
      fail("--position {}: layer {} has {} elements", options.position, it->layer, it->flat_end - it->flat_offset);
    flat = it->flat_offset + position;
  } else {
    fail("hypercube locate: give --coord, --flat, or --layer with --position");
  }
  const Located located = locate_flat(flat, layout.layers, layout.cube, layout.pad_seed);
  const LayerSpan& span = layout.layers[located.layer];
  fmt::print("cube: {} axes of side {}\n", layout.cube.dims, layout.cube.side);
  fmt::print("coord: ({})\n", fmt::join(flat_to_coords(flat, layout.cube), ", "));
  fmt::print("flat: {}\n", flat);
  if (located.padding) fmt::print("padding: copy of flat {}\n", located.padding_source);
  fmt::print("layer: {}\n", span.layer);
  if (!span.site.empty()) fmt::print("site: {}\n", span.site);
  fmt::print("position: {} (flat {} within the layer)\n", position_string(span.shape, located.position),
             located.position);
  if (span.axes.size() == span.shape.size()) {
    const std::vector<int64_t> coords = unravel_index(span.shape, located.position);
    std::vector<std::string> named;
    for (size_t i = 0; i < coords.size(); ++i) named.push_back(fmt::format("{} {}", span.axes[i], coords[i]));
    fmt::print("axes: {}\n", fmt::join(named, ", "));
    if (!span.axes.empty() && span.axes[0] == "row" && !layout.row_index_file.empty()) {
      const auto [record, position] = row_origin(options.dir, layout.row_index_file, coords[0]);
      fmt::print("row: {} = record {}, position {}\n", coords[0], record, position);
    }
  }
}

CommandRegistration registration(
    "hypercube locate", "map a hypercube coordinate to (layer, position) and back", [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("dir", options->dir, "folder written by `actcap export hypercube`")->required();
      command.add_option("--coord", options->coord, "hypercube coordinate i,j,k,...: one index per cube axis");
      CLI::Option* flat = command.add_option("--flat", options->flat, "flat (C-order) index into the hypercube");
      command.add_option("--layer", options->layer,
                         "layer name as in hypercube_metadata.json's layer_map (embedding, layer_0, or a site)");
      command.add_option("--position", options->position,
                         "with --layer: the flat index within the layer, or one index per layer axis (e.g. "
                         "batch,position,hidden = 0,2,5)");
      command.footer(
          "Prints the cube coordinate, its flat index, the layer and site holding it, the position within the\n"
          "layer with each axis named (batch or row, position, hidden, head, ...), the record and token position\n"
          "of a row, and for padding the real value it copies.\n"
          "Example: actcap hypercube locate cube/ --coord 1,2,0,3\n"
          "         actcap hypercube locate cube/ --layer layer_0 --position 0,2,5");
      command.callback([options, flat] {
        options->flat_given = flat->count() > 0;
        run(*options);
      });
    });

}  // namespace
}  // namespace actcap::cli
