// actcap export zkllm STORE --out DIR: per Llama layer the int32 fixed-point activation files zkLLM's tooling
// reads (export/zkllm.h), optionally the layer weights, and zkllm_metadata.json mapping every file to its site.
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/export_options.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/export_folder.h"
#include "export/store_selection.h"
#include "export/zkllm.h"
#include "models/registry.h"

namespace actcap::cli {
namespace {

namespace fs = std::filesystem;

struct Options {
  StoreInputOptions input;
  std::string out, model;
  int scale_bits = kZkllmDefaultScaleBits;
  bool pad_to_pow2 = false, weights = false;
};

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// One activation file of one layer and the site it holds.
struct ZkllmFile {
  int layer;
  const ZkllmActivation* activation;
  std::string site, file;
};

// The sites --sites selects, each of which must be one of the zkLLM points.
std::vector<std::string> select_sites_for_zkllm(const StoreReader& store, const StoreInputOptions& input) {
  const std::vector<std::string> sites = select_sites(store, input.sites);
  for (const std::string& site : sites) {
    bool known = false;
    for (const ZkllmActivation& activation : zkllm_activations()) {
      const std::string suffix = std::string(".") + activation.site_suffix;
      known |= site.rfind("blocks.", 0) == 0 && site.size() > suffix.size() &&
               site.compare(site.size() - suffix.size(), suffix.size(), suffix) == 0;
    }
    if (!known)
      fail("--sites: {} has no zkLLM file; zkLLM reads per layer blocks.N.hook_resid_pre, ln1.hook_normalized, "
           "hook_resid_mid, ln2.hook_normalized and hook_resid_post", site);
  }
  return sites;
}

// The files for the selected sites, by layer then in the table's order. Without --sites: every zkLLM point the
// store holds, each layer complete (a missing file is silently replaced by random data upstream).
std::vector<ZkllmFile> plan_files(const StoreReader& store, const StoreInputOptions& input) {
  const std::vector<std::string>& stored = store.sites();
  auto has = [](const std::vector<std::string>& sites, const std::string& site) {
    return std::find(sites.begin(), sites.end(), site) != sites.end();
  };
  int layers = 0;
  while (has(stored, fmt::format("blocks.{}.hook_resid_pre", layers)) ||
         has(stored, fmt::format("blocks.{}.hook_resid_post", layers)))
    ++layers;
  const std::vector<std::string> chosen = input.sites.empty() ? stored : select_sites_for_zkllm(store, input);
  std::vector<ZkllmFile> files;
  for (int i = 0; i < layers; ++i)
    for (const ZkllmActivation& activation : zkllm_activations()) {
      const std::string site = zkllm_activation_site(i, activation);
      if (has(chosen, site)) files.push_back({i, &activation, site, zkllm_activation_file(i, activation)});
      else if (input.sites.empty())
        fail("{}: site {} (for {}) was not captured; capture every layer's {}", store.dir(), site,
             zkllm_activation_file(i, activation), "hook_resid_pre, ln1.hook_normalized, hook_resid_mid, "
             "ln2.hook_normalized and hook_resid_post");
    }
  if (files.empty())
    fail("{}: no blocks.*.hook_resid_pre sites; capture a Llama-family model with --sites "
         "'blocks.*.hook_resid_pre,blocks.*.ln1.hook_normalized,blocks.*.hook_resid_mid,"
         "blocks.*.ln2.hook_normalized,blocks.*.hook_resid_post'", store.dir());
  return files;
}

void run(const Options& options) {
  check_zkllm_scale_bits(options.scale_bits);
  const std::unique_ptr<StoreReader> store = options.input.open();
  const std::vector<ZkllmFile> files = plan_files(*store, options.input);
  std::vector<std::string> sites;
  for (const ZkllmFile& f : files)
    if (std::find(sites.begin(), sites.end(), f.site) == sites.end()) sites.push_back(f.site);
  StoreInputOptions resolved = options.input;
  resolved.sites = sites;
  const Selection selection = select(*store, resolved, {});
  if (options.weights && options.model.empty() && !store->manifest().contains("model"))
    fail("--weights: give --model MODEL_DIR");
  const std::string model_type = store->manifest().value("model", nlohmann::json::object()).value("model_type", "");
  const Architecture* architecture = find_architecture(model_type);
  if (!architecture || !architecture->traits.llama_layout)
    fmt::print(stderr, "warning: zkLLM's circuits model Llama layers (RMSNorm, SwiGLU); this capture is of a {} model\n",
               model_type.empty() ? "unknown" : model_type);

  ExportFolder folder(options.out);
  const bool several = selection.records.size() > 1;
  std::vector<int64_t> not_pow2;
  for (int64_t r : selection.records) {
    const nlohmann::json& record = store->record(r);
    // The prover needs every position of the sequence, in order.
    const auto positions = record.value("positions", std::vector<int64_t>{});
    const auto tokens = record.value("token_ids", std::vector<int64_t>{});
    bool whole = positions.size() == tokens.size();
    for (size_t t = 0; whole && t < positions.size(); ++t) whole = positions[t] == int64_t(t);
    if (!whole)
      fail("{}: record {} keeps only some positions; zkLLM needs the whole sequence (capture with --positions "
           "all, without --drop-bos)", store->dir(), r);
    const std::string dir = several ? folder.path(fmt::format("record-{}", r)) : folder.temporary();
    fs::create_directories(dir);
    const TensorView first = store->view(r, files[0].site);
    if (first.shape.size() != 2)
      fail("{}: record {} site {}: expected [seq_len, hidden], got {}", store->dir(), r, files[0].site,
           shape_string(first.shape));
    const int64_t seq_len = first.shape[0], hidden = first.shape[1];
    const int64_t padded = options.pad_to_pow2 ? next_power_of_two(seq_len) : seq_len;
    if (!is_power_of_two(padded)) not_pow2.push_back(r);
    nlohmann::json written = nlohmann::json::array();
    for (const ZkllmFile& f : files) {
      const TensorView rows = store->view(r, f.site);
      if (rows.shape != first.shape)
        fail("{}: record {} site {} has shape {}, expected {}", store->dir(), r, f.site, shape_string(rows.shape),
             shape_string(first.shape));
      write_zkllm_activation((fs::path(dir) / f.file).string(), rows, padded, f.site, options.scale_bits);
      written.push_back({{"file", f.file}, {"layer", f.layer}, {"site", f.site}, {"meaning", f.activation->meaning},
                         {"shape", {padded, hidden}}});
    }
    nlohmann::json metadata = {
        {"format", "raw little-endian int32, row-major [seq_len, hidden], no header"},
        {"scale", fmt::format("round(x * 2^{}), ties to even; out-of-range values are errors", options.scale_bits)},
        {"log_scaling_factor", options.scale_bits},
        {"seq_len", seq_len},
        {"padded_seq_len", padded},
        {"padding", padded > seq_len ? "rows seq_len..padded_seq_len-1 are zeros" : "none"},
        {"hidden", hidden},
        {"num_layers", files.back().layer + 1},
        {"record", r},
        {"token_ids", tokens},
        {"model", store->manifest().value("model", nlohmann::json::object())},
        {"activations", written}};
    write_file_atomic((fs::path(dir) / "zkllm_metadata.json").string(), metadata.dump(2) + "\n");
    fmt::print("record {}: seq_len {} (give the prover --seq_len {})\n", r, padded, padded);
  }

  nlohmann::json description = export_description("zkllm", *store, selection);
  description["scale_bits"] = options.scale_bits;
  if (options.weights) {
    std::string model_dir = options.model;
    const auto model = store->manifest().find("model");  // the capture's model, unless --model names one
    if (model_dir.empty() && model != store->manifest().end() && model->is_object()) model_dir = model->value("path", "");
    if (model_dir.empty()) fail("{}: the store names no model folder: give --model DIR with --weights", store->dir());
    const std::vector<ZkllmWeight> written = write_zkllm_weights(model_dir, folder.temporary(), options.scale_bits);
    std::map<std::pair<int, std::string>, Shape> shapes;
    for (const ZkllmWeight& w : written) shapes[{w.layer, w.parameter}] = w.written_shape;
    if (shapes.count({0, "self_attn.k_proj.weight"}) &&
        shapes[{0, "self_attn.k_proj.weight"}] != shapes[{0, "self_attn.q_proj.weight"}])
      fmt::print(stderr, "warning: k_proj is {} but q_proj is {}: grouped-query attention, which zkLLM's "
                         "self-attention proof (embed x embed q/k/v) does not model\n",
                 shape_string(shapes[{0, "self_attn.k_proj.weight"}]), shape_string(shapes[{0, "self_attn.q_proj.weight"}]));
    nlohmann::json weights = nlohmann::json::array();
    for (const ZkllmWeight& w : written)
      weights.push_back({{"file", w.file}, {"layer", w.layer}, {"parameter", w.parameter}, {"tensor", w.tensor},
                         {"dtype", w.dtype}, {"original_shape", w.original_shape}, {"written_shape", w.written_shape},
                         {"transposed", w.original_shape.size() == 2}});
    nlohmann::json weight_metadata = {
        {"model_dir", model_dir},
        {"naming", fmt::format("layer-{{i}}-{{parameter}}-int.bin as zkLLM's llama-commit.py: round(W * 2^{}) int32, "
                               "matrices transposed to [in, out]", options.scale_bits)},
        {"files", weights}};
    if (several) {
      write_file_atomic(folder.path("zkllm_weights.json"), weight_metadata.dump(2) + "\n");
    } else {  // one record: everything in one folder, as the original tooling writes it
      const std::string path = folder.path("zkllm_metadata.json");
      nlohmann::json metadata = nlohmann::json::parse(read_file(path));
      metadata["weights"] = weight_metadata;
      write_file_atomic(path, metadata.dump(2) + "\n");
    }
  }
  folder.commit(description);

  fmt::print("wrote {} activation files per record ({} record{}{}) to {}; each holds round(x * 2^{}) as int32:\n",
             files.size(), selection.records.size(), several ? "s, in record-<N>/" : "",
             options.weights ? ", and the weights" : "", folder.out(), options.scale_bits);
  for (const ZkllmFile& f : files)
    if (f.layer == 0) fmt::print("  {:<46} {} ({})\n", f.file, f.site, f.activation->meaning);
  if (files.back().layer == 1) fmt::print("  ... and the same for layer 1\n");
  if (files.back().layer > 1) fmt::print("  ... and the same for layers 1 to {}\n", files.back().layer);
  if (!not_pow2.empty())
    fmt::print(stderr,
               "warning: seq_len is not a power of two for {} record{}; zkLLM's attention proof requires one "
               "(re-run with --pad-to-pow2 to pad with zero rows)\n",
               not_pow2.size(), not_pow2.size() == 1 ? "" : "s");
}

CommandRegistration registration(
    "export zkllm", "int32 fixed-point activation (and weight) files named as zkLLM's tooling reads them",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      options->input.add_to(command, "every zkLLM point the store holds (each layer must be complete)");
      command.add_option("--out", options->out, "output folder (created; an earlier export there is replaced)")
          ->required();
      command.add_option("--scale-bits", options->scale_bits,
                         "fixed-point scale: values are round(x * 2^bits) in int32 (0 to 30; zkLLM uses 16)")
          ->capture_default_str();
      command.add_flag("--pad-to-pow2", options->pad_to_pow2,
                       "pad seq_len with zero rows to a power of two (zkLLM's attention proof needs one)");
      command.add_flag("--weights", options->weights,
                       "also write the layer weights (layer-{i}-{parameter}-int.bin, matrices transposed)");
      command.add_option("--model", options->model, "model folder for --weights (default: the store's model path)");
      command.footer(
          "Per Llama layer i, raw little-endian int32 [seq_len, hidden] files of round(x * 2^scale-bits), named\n"
          "as the zkLLM capture tooling names them (the prover reads these names):\n"
          "  layer-{i}-input-rmsnorm-activation.bin          blocks.{i}.hook_resid_pre (block input)\n"
          "  layer-{i}-self-attn-activation.bin              blocks.{i}.ln1.hook_normalized (input-norm output)\n"
          "  layer-{i}-post_attention-rmsnorm-activation.bin blocks.{i}.hook_resid_mid (post-attention residual)\n"
          "  layer-{i}-ffn-activation.bin                    blocks.{i}.ln2.hook_normalized (FFN input)\n"
          "  layer-{i}-block-input.bin                       blocks.{i}.hook_resid_pre (block input)\n"
          "  layer-{i}-block-output.bin                      blocks.{i}.hook_resid_post (block output)\n"
          "and zkllm_metadata.json mapping every file to its site. One record: files in OUT/; several:\n"
          "OUT/record-<N>/ each (weights stay in OUT/).\n"
          "Example: actcap export zkllm out/llama --out zk/ --record 0 --pad-to-pow2 --weights");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
