// actcap export hypercube INTEGERS_DIR --out DIR: the integer layers concatenated and reshaped into the
// least-padded uniform hypercube (export/hypercube.h), with the layer map that reverses it.
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/command.h"
#include "core/error.h"
#include "export/export_folder.h"
#include "export/hypercube.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string integers_dir, out;
  int64_t min_dim = 4, max_dim = 10, num_dims = 0;
  bool num_dims_given = false;
  int64_t pad_seed = 42;
};

void run(const Options& options) {
  if (options.pad_seed < 0) fail("--pad-seed {}: must be 0 or more", options.pad_seed);
  if (options.num_dims_given && options.num_dims < 1) fail("--num-dims {}: must be 1 or more", options.num_dims);
  if (options.min_dim < 2 || options.max_dim < options.min_dim)
    fail("--min-dim {} --max-dim {}: need 2 <= min-dim <= max-dim", options.min_dim, options.max_dim);
  const std::optional<int64_t> num_dims = options.num_dims_given ? std::optional<int64_t>(options.num_dims) : std::nullopt;
  ExportFolder folder(options.out);
  const nlohmann::json metadata = export_hypercube(options.integers_dir, folder.temporary(), options.min_dim,
                                                   options.max_dim, num_dims, uint64_t(options.pad_seed));
  folder.commit({{"export", "hypercube"},
                 {"tool", {{"name", "actcap"}, {"version", ACTCAP_VERSION}, {"command_line", command_line()}}},
                 {"integers_dir", options.integers_dir}});
  const auto& cube = metadata["hypercube"];
  const std::vector<int64_t> dims = cube["dimensions"].get<std::vector<int64_t>>();
  fmt::print("Optimal shape: ({})   product={}   real={}   padding={}   sparsity={:.2f}%\n", fmt::join(dims, ", "),
             cube["total_elements"].get<int64_t>(), cube["total_real_elements"].get<int64_t>(),
             cube["padding_elements"].get<int64_t>(), 100.0 * cube["sparsity"].get<double>());
  fmt::print("wrote {}/hypercube.npy and hypercube_metadata.json\n", folder.out());
}

CommandRegistration registration(
    "export hypercube", "concatenate integer layers and reshape them into a least-padded hypercube",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("integers_dir", options->integers_dir, "folder written by `actcap export integers`")
          ->required();
      command.add_option("--out", options->out, "output folder (created; an earlier export there is replaced)")
          ->required();
      command.add_option("--min-dim", options->min_dim, "smallest side d of the cube (2 or more)")->capture_default_str();
      command.add_option("--max-dim", options->max_dim, "largest side d of the cube")->capture_default_str();
      CLI::Option* num_dims = command.add_option(
          "--num-dims", options->num_dims, "force k dimensions (default: the k and d with the least padding)");
      command.add_option("--pad-seed", options->pad_seed, "seed of the padding sample (padding copies real values)")
          ->capture_default_str();
      command.footer(
          "Flattens every layer .npy (C order) in conversion_metadata.json's order, concatenates them into N\n"
          "values, pads to d^k with copies of randomly chosen real values, and writes OUT/hypercube.npy (k axes of\n"
          "side d, in the layers' encoding) and OUT/hypercube_metadata.json (layer_map: each layer's site, flat\n"
          "range, shape and axis names). `actcap hypercube locate OUT` maps coordinates back.\n"
          "Example: actcap export hypercube ints/ --out cube/ --min-dim 4 --max-dim 10");
      command.callback([options, num_dims] {
        options->num_dims_given = num_dims->count() > 0;
        run(*options);
      });
    });

}  // namespace
}  // namespace actcap::cli
