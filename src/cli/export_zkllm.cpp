// actcap export zkllm STORE --out DIR: per Llama layer the six int32 fixed-point activation files zkLLM's
// tooling reads (export/zkllm.h), optionally the layer weights, and zkllm_metadata.json mapping every file to
// its source.
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "capture/store_reader.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/zkllm.h"

namespace actcap::cli {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::string store, out, model;
  int64_t record = 0;
  bool pad_to_pow2 = false, weights = false;
};

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

void run(const Options& options) {
  StoreReader store(options.store);
  const nlohmann::json& record = store.record(options.record);
  const auto& sites = store.sites();
  auto has = [&](const std::string& site) { return std::find(sites.begin(), sites.end(), site) != sites.end(); };
  int layers = 0;
  while (has(fmt::format("blocks.{}.hook_resid_pre", layers))) ++layers;
  if (layers == 0)
    fail("{}: no blocks.*.hook_resid_pre sites; capture a Llama-family model with --sites "
         "'blocks.*.hook_resid_pre,blocks.*.ln1.hook_normalized,blocks.*.hook_resid_mid,"
         "blocks.*.ln2.hook_normalized,blocks.*.hook_resid_post'", options.store);
  for (int i = 0; i < layers; ++i)
    for (const ZkllmActivation& activation : zkllm_activations())
      if (!has(zkllm_activation_site(i, activation)))
        fail("{}: site {} (for {}) was not captured", options.store, zkllm_activation_site(i, activation),
             zkllm_activation_file(i, activation));

  // The prover needs every position of the sequence, in order.
  const auto positions = record.value("positions", std::vector<int64_t>{});
  for (size_t t = 0; t < positions.size(); ++t)
    if (positions[t] != int64_t(t))
      fail("{}: record {} keeps only some positions; zkLLM needs the whole sequence (capture with --positions all)",
           options.store, options.record);
  if (options.weights && options.model.empty() && !store.manifest().contains("model"))
    fail("--weights: give --model MODEL_DIR");

  const TensorView first = store.view(options.record, zkllm_activation_site(0, zkllm_activations()[0]));
  if (first.shape.size() != 2) fail("{}: expected [seq_len, hidden] activations, got {}", options.store, shape_string(first.shape));
  const int64_t seq_len = first.shape[0], hidden = first.shape[1];
  const int64_t padded = options.pad_to_pow2 ? next_power_of_two(seq_len) : seq_len;

  // Every value is checked before the first file is written, so an out-of-range value leaves no partial export.
  for (int i = 0; i < layers; ++i)
    for (const ZkllmActivation& activation : zkllm_activations()) {
      const std::string site = zkllm_activation_site(i, activation);
      const TensorView rows = store.view(options.record, site);
      if (rows.shape != first.shape)
        fail("{}: site {} has shape {}, expected {}", options.store, site, shape_string(rows.shape),
             shape_string(first.shape));
      std::vector<int32_t> scratch(size_t(rows.numel()));
      to_zkllm_fixed_point(rows, scratch.data(), site);
    }
  const std::string model_type = store.manifest().value("model", nlohmann::json::object()).value("model_type", "");
  if (model_type != "llama" && model_type != "mistral" && model_type != "qwen2" && model_type != "qwen3")
    fmt::print(stderr, "warning: zkLLM's circuits model Llama layers (RMSNorm, SwiGLU); this capture is of a {} model\n",
               model_type.empty() ? "unknown" : model_type);

  fs::create_directories(options.out);
  nlohmann::json files = nlohmann::json::array();
  for (int i = 0; i < layers; ++i) {
    for (const ZkllmActivation& activation : zkllm_activations()) {
      const std::string site = zkllm_activation_site(i, activation), file = zkllm_activation_file(i, activation);
      const TensorView rows = store.view(options.record, site);
      write_zkllm_activation((fs::path(options.out) / file).string(), rows, padded, site);
      files.push_back({{"file", file}, {"layer", i}, {"site", site}, {"meaning", activation.meaning},
                       {"shape", {padded, rows.shape.size() == 2 ? rows.shape[1] : 0}}});
    }
  }
  nlohmann::json metadata = {
      {"format", "raw little-endian int32, row-major [seq_len, hidden], no header"},
      {"scale", "round(x * 2^16), ties to even; out-of-range values are errors"},
      {"log_scaling_factor", kZkllmLogScale},
      {"seq_len", seq_len},
      {"padded_seq_len", padded},
      {"padding", padded > seq_len ? "rows seq_len..padded_seq_len-1 are zeros" : "none"},
      {"hidden", hidden},
      {"num_layers", layers},
      {"record", options.record},
      {"token_ids", record.value("token_ids", nlohmann::json::array())},
      {"model", store.manifest().value("model", nlohmann::json::object())},
      {"activations", files}};

  if (options.weights) {
    const std::string model_dir =
        !options.model.empty() ? options.model : store.manifest()["model"].value("path", "");
    nlohmann::json weights = nlohmann::json::array();
    const std::vector<ZkllmWeight> written = write_zkllm_weights(model_dir, options.out);
    std::map<std::pair<int, std::string>, Shape> shapes;
    for (const ZkllmWeight& w : written) shapes[{w.layer, w.parameter}] = w.written_shape;
    if (shapes.count({0, "self_attn.k_proj.weight"}) &&
        shapes[{0, "self_attn.k_proj.weight"}] != shapes[{0, "self_attn.q_proj.weight"}])
      fmt::print(stderr, "warning: k_proj is {} but q_proj is {}: grouped-query attention, which zkLLM's "
                         "self-attention proof (embed x embed q/k/v) does not model\n",
                 shape_string(shapes[{0, "self_attn.k_proj.weight"}]), shape_string(shapes[{0, "self_attn.q_proj.weight"}]));
    for (const ZkllmWeight& w : written)
      weights.push_back({{"file", w.file}, {"layer", w.layer}, {"parameter", w.parameter}, {"tensor", w.tensor},
                         {"dtype", w.dtype}, {"original_shape", w.original_shape}, {"written_shape", w.written_shape},
                         {"transposed", w.original_shape.size() == 2}});
    metadata["weights"] = {{"model_dir", model_dir},
                           {"naming", "layer-{i}-{parameter}-int.bin as zkLLM's llama-commit.py: round(W * 2^16) "
                                      "int32, matrices transposed to [in, out]"},
                           {"files", weights}};
  }
  write_file_atomic((fs::path(options.out) / "zkllm_metadata.json").string(), metadata.dump(2) + "\n");

  fmt::print("wrote {} activation files ({} layers) to {}\n", files.size(), layers, options.out);
  fmt::print("seq_len: {} (give the prover --seq_len {})\n", padded, padded);
  if (!is_power_of_two(padded))
    fmt::print(stderr,
               "warning: seq_len {} is not a power of two; zkLLM's attention proof requires one "
               "(re-run with --pad-to-pow2 to pad with zero rows to {})\n",
               seq_len, next_power_of_two(seq_len));
}

CommandRegistration registration(
    "export zkllm", "int32 fixed-point (2^16) activation and weight files named as zkLLM's tooling reads them",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("store", options->store, "capture store folder")->required();
      command.add_option("--out", options->out, "output folder")->required();
      command.add_option("--record", options->record, "record number")->capture_default_str();
      command.add_flag("--pad-to-pow2", options->pad_to_pow2, "pad seq_len with zero rows to a power of two");
      command.add_flag("--weights", options->weights, "also write the layer weights");
      command.add_option("--model", options->model, "model folder for --weights (default: the store's model path)");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
