// actcap hypercube locate DIR (--coord i,j,k,... | --flat F | --layer L --position p): maps a hypercube
// coordinate to the (layer, position) it holds, and back, from hypercube_metadata.json.
#include <memory>
#include <sstream>

#include <fmt/ranges.h>

#include "cli/command.h"
#include "core/error.h"
#include "export/hypercube.h"
#include "export/integers.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string dir, coord, layer, position;
  int64_t flat = -1;
};

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
  const HypercubeLayout layout = read_hypercube_layout(options.dir);
  int64_t flat;
  if (!options.coord.empty()) {
    flat = coords_to_flat(parse_indices(options.coord, "--coord"), layout.cube);
  } else if (options.flat >= 0) {
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
  fmt::print("coord: ({})\n", fmt::join(flat_to_coords(flat, layout.cube), ", "));
  fmt::print("flat: {}\n", flat);
  if (located.padding) fmt::print("padding: copy of flat {}\n", located.padding_source);
  fmt::print("layer: {}\n", span.layer);
  fmt::print("position: {} (flat {} within the layer)\n", position_string(span.shape, located.position),
             located.position);
}

CommandRegistration registration(
    "hypercube locate", "map a hypercube coordinate to (layer, position) and back", [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("dir", options->dir, "folder written by `actcap export hypercube`")->required();
      command.add_option("--coord", options->coord, "hypercube coordinate i,j,k,...");
      command.add_option("--flat", options->flat, "flat index into the hypercube");
      command.add_option("--layer", options->layer, "layer name (embedding, layer_0, ...)");
      command.add_option("--position", options->position, "flat index within the layer, or its index t,d,...");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
