// actcap export pt STORE --out DIR [--record N]: one record's hidden states as the original capture tool's
// `<model>_activations.pt`, which torch.load(path, weights_only=True) reads.
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "capture/store_reader.h"
#include "cli/command.h"
#include "core/error.h"
#include "export/integers.h"
#include "export/torch_export.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string store, out;
  int64_t record = 0;
};

std::optional<std::string> optional_text(const nlohmann::json& record, const char* key) {
  if (!record.contains(key) || !record[key].is_string()) return std::nullopt;
  return record[key].get<std::string>();
}

void run(const Options& options) {
  StoreReader store(options.store);
  const std::vector<HiddenLayer> layers = hidden_state_layers(store.sites());
  const nlohmann::json& record = store.record(options.record);
  const std::vector<int64_t> tokens = record.at("token_ids").get<std::vector<int64_t>>();
  const std::vector<int64_t> positions = record.at("positions").get<std::vector<int64_t>>();
  bool every_position = positions.size() == tokens.size();
  for (size_t i = 0; every_position && i < positions.size(); ++i) every_position = positions[i] == int64_t(i);
  if (!every_position)
    fail("{}: record {} keeps {} of its {} positions; the .pt format holds every token (capture with "
         "--positions all)", options.store, options.record, positions.size(), tokens.size());

  TorchActivations activations;
  const std::string model_path = store.manifest().value("model", nlohmann::json::object()).value("path", "");
  activations.model_name = model_path;
  activations.prompt = optional_text(record, "text");
  activations.generated_text = optional_text(record, "generated_text");
  activations.token_sequence = tokens;
  for (const HiddenLayer& layer : layers) activations.hidden_states.push_back(store.view(options.record, layer.site));

  std::filesystem::create_directories(options.out);
  const std::string path =
      (std::filesystem::path(options.out) / (model_file_prefix(model_path) + "_activations.pt")).string();
  write_torch_activations(path, activations);
  fmt::print("wrote {} ({} hidden states of {} tokens, {})\n", path, layers.size(), tokens.size(),
             torch_dtype_name(store.dtype()));
}

CommandRegistration registration(
    "export pt", "one record's hidden states as <model>_activations.pt (torch.load(..., weights_only=True))",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("store", options->store, "capture store folder")->required();
      command.add_option("--out", options->out, "output folder")->required();
      command.add_option("--record", options->record, "record number")->capture_default_str();
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
