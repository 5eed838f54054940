// actcap control-vector STORE --method mean-diff|pca-diff|pca-center --out FILE.gguf|FILE.safetensors: one
// direction per layer of a concept store, as repeng computes it, in the file layout llama.cpp's
// --control-vector loads (analysis/control_vector.h).
#include <filesystem>

#include <fmt/format.h>

#include "analysis/concept_capture.h"
#include "analysis/control_vector.h"
#include "capture/store_reader.h"
#include "cli/command.h"
#include "core/error.h"

namespace actcap::cli {
namespace {
namespace fs = std::filesystem;

struct Options {
  std::string store, method = "pca-diff", layers, positions = "last";
  std::vector<std::string> outs;
  bool quiet = false;
};

constexpr const char* kFooter = R"(
Per block N whose output the store holds (hidden_states.(N+1), or blocks.N.hook_resid_post), from the
labelled pairs (p_i, q_i) of `actcap concept`, in float64, stored as float32:
  mean-diff    mean_i (p_i - q_i), not normalised
  pca-diff     first principal component of the diffs p_i - q_i, column mean subtracted (repeng), unit norm
  pca-center   first principal component of p_i - c_i and q_i - c_i, c_i = (p_i + q_i)/2 (repeng), unit norm
Sign: a component's largest entry is made positive (sklearn), then negated if more pairs project p_i below
q_i than above on it (repeng's vote; a tie keeps the sign): positive projects higher.
Files (by extension; --out may be given twice):
  .gguf         general.architecture=controlvector, controlvector.model_hint (model_type),
                controlvector.layer_count (uint32), direction.N F32 [n_embd]: llama.cpp adds direction.N to the
                output of block N (HF model.layers[N]). llama.cpp cannot steer block 0 and refuses a file
                with direction.0, so it is left out, with a warning.
                llama-cli -m model.gguf --control-vector-scaled FILE.gguf:0.8 --control-vector-layer-range 3 9
  .safetensors  direction.N F32 [n_embd] for every block (0 included), __metadata__ model_hint, method,
                concept: repeng's ControlVector(directions={N: ...}) takes them as they are.
Examples:
  actcap control-vector out/honesty --method pca-diff --out honesty.gguf --out honesty.safetensors
  actcap control-vector out/honesty/store --method mean-diff --layers recommended --out h.gguf)";

void run(const Options& options) {
  if (options.outs.empty()) fail("--out FILE.gguf or FILE.safetensors is required");
  for (const std::string& out : options.outs) {
    const std::string extension = fs::path(out).extension().string();
    if (extension != ".gguf" && extension != ".safetensors")
      fail("{}: the file name must end in .gguf or .safetensors", out);
  }
  const ControlVectorMethod method = parse_control_vector_method(options.method);
  const RowReduction reduction = parse_row_reduction(options.positions);
  const StoreReader store(concept_store_dir(options.store));
  const ControlVector vector = fit_control_vector(store, method, reduction, options.layers);
  for (const std::string& out : options.outs) {
    if (fs::path(out).extension() == ".gguf") {
      if (vector.directions.count(0) && vector.directions.size() > 1)
        fmt::print(stderr, "actcap: warning: {}: direction.0 left out: llama.cpp cannot steer block 0 and refuses "
                   "a file that has it\n", out);
      write_control_vector_gguf(out, vector);
    } else {
      write_control_vector_safetensors(out, vector, {{"method", options.method}, {"concept", vector.concept_name},
                                                     {"positions", options.positions}});
    }
    if (options.quiet) continue;
    std::vector<int> blocks;
    for (const auto& [block, values] : vector.directions)
      if (block > 0 || fs::path(out).extension() != ".gguf") blocks.push_back(block);
    fmt::print("wrote {} ({}, {} pairs, blocks {})\n", out, options.method, vector.pairs, fmt::join(blocks, ","));
  }
}

CommandRegistration registration(
    "control-vector", "control vectors from a concept store (mean-diff, pca-diff, pca-center) as GGUF or safetensors",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("store", options->store, "a concept store, or the run folder of `actcap concept`")->required();
      command.add_option("--method", options->method, "mean-diff, pca-diff (default) or pca-center");
      command.add_option("--out", options->outs, "FILE.gguf (llama.cpp) and/or FILE.safetensors")->required();
      command.add_option("--layers", options->layers, "blocks (default: every block the store holds)");
      command.add_option("--positions", options->positions, "last (default: the last stored row) or mean");
      command.add_flag("--quiet", options->quiet, "print nothing but errors");
      command.footer(kFooter);
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
