// actcap stats STORE [--record N] [--out FILE]: per-layer statistics as the original capture tool's
// `<model>_stats.json` (see analysis/stats.h). Without --record the statistics cover every record.
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "analysis/stats.h"
#include "capture/store_reader.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/torch_export.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string store, out;
  int64_t record = -1;  // -1: every record
};

std::optional<std::string> text_of(const nlohmann::json& record, const char* key) {
  if (!record.contains(key) || !record[key].is_string()) return std::nullopt;
  return record[key].get<std::string>();
}

void run(const Options& options) {
  StoreReader store(options.store);
  std::vector<int64_t> records;
  if (options.record >= 0) {
    store.record(options.record);  // throws naming the store if absent
    records.push_back(options.record);
  } else {
    for (const nlohmann::json& r : store.records()) records.push_back(r.at("record").get<int64_t>());
  }
  if (records.empty()) fail("{}: the store holds no records", options.store);

  std::vector<LayerStats> layers;
  for (const std::string& site : store.sites()) {
    LayerStats layer;
    layer.layer = layer_name_of_site(site);
    layer.site = site;
    layer.dtype = store.dtype();
    for (int64_t record : records) {
      const TensorView view = store.view(record, site);
      if (layer.shape.empty()) {
        layer.shape = view.shape;
        layer.shape.insert(layer.shape.begin(), int64_t(records.size()));  // the batch dimension first
      } else if (layer.shape.size() != view.shape.size() + 1) {
        fail("{}: site {} has rank {} in record {} but {} in record {}", options.store, site, view.shape.size(),
             record, layer.shape.size() - 1, records[0]);
      } else {
        for (size_t d = 0; d < view.shape.size(); ++d)
          if (layer.shape[d + 1] != view.shape[d]) layer.shape[d + 1] = -1;
      }
      layer.values.add(view);
    }
    layers.push_back(std::move(layer));
  }

  const nlohmann::json model = store.manifest().value("model", nlohmann::json::object());
  const std::string model_path = model.value("path", "");
  const nlohmann::json& first = store.record(records[0]);
  const bool one = records.size() == 1;
  nlohmann::ordered_json stats = stats_json(model_path, one ? text_of(first, "text") : std::nullopt,
                                            one ? text_of(first, "generated_text") : std::nullopt, layers);
  stats["records"] = records;
  stats["std"] = "sample standard deviation (divisor N - 1), as torch.std() by default";

  const std::string path = options.out.empty() ? model_file_prefix(model_path) + "_stats.json" : options.out;
  write_file_atomic(path, stats.dump(2) + "\n");
  fmt::print("wrote {} ({} layers, {} record{})\n", path, layers.size(), records.size(), one ? "" : "s");
}

CommandRegistration registration(
    "stats", "per-layer statistics (<model>_stats.json, the original capture tool's format)",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("store", options->store, "capture store folder")->required();
      command.add_option("--record", options->record, "one record (default: every record)");
      command.add_option("--out", options->out, "output file (default: ./<model>_stats.json)");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
