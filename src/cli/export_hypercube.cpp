// actcap export hypercube INTEGERS_DIR --out DIR: the integer layers concatenated and reshaped into the
// least-padded uniform hypercube (export/hypercube.h), with the layer map that reverses it.
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/command.h"
#include "export/hypercube.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string integers_dir, out;
  int64_t min_dim = 4, max_dim = 10, num_dims = 0;
  uint64_t pad_seed = 42;
};

void run(const Options& options) {
  const std::optional<int64_t> num_dims = options.num_dims > 0 ? std::optional<int64_t>(options.num_dims) : std::nullopt;
  const nlohmann::json metadata = export_hypercube(options.integers_dir, options.out, options.min_dim,
                                                   options.max_dim, num_dims, options.pad_seed);
  const auto& cube = metadata["hypercube"];
  const std::vector<int64_t> dims = cube["dimensions"].get<std::vector<int64_t>>();
  fmt::print("Optimal shape: ({})   product={}   real={}   padding={}   sparsity={:.2f}%\n", fmt::join(dims, ", "),
             cube["total_elements"].get<int64_t>(), cube["total_real_elements"].get<int64_t>(),
             cube["padding_elements"].get<int64_t>(), 100.0 * cube["sparsity"].get<double>());
  fmt::print("wrote {}/hypercube.npy and hypercube_metadata.json\n", options.out);
}

CommandRegistration registration(
    "export hypercube", "concatenate integer layers and reshape them into a least-padded hypercube",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("integers_dir", options->integers_dir, "folder written by `actcap export integers`")
          ->required();
      command.add_option("--out", options->out, "output folder")->required();
      command.add_option("--min-dim", options->min_dim, "smallest side")->capture_default_str();
      command.add_option("--max-dim", options->max_dim, "largest side")->capture_default_str();
      command.add_option("--num-dims", options->num_dims, "force this many dimensions (default: least padding)");
      command.add_option("--pad-seed", options->pad_seed, "seed of the padding sample")->capture_default_str();
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
