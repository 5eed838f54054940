// actcap stats STORE: per-site statistics (count, min, max, mean, std) over the chosen records, as a table on
// stdout, or as JSON in the original capture tool's `<model>_stats.json` format (analysis/stats.h) with --json
// (stdout) or --out FILE; --plot FILE.png|svg draws mean, std, norm and max |x| per layer for each site kind.
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "analysis/layer_series.h"
#include "analysis/site_rows.h"
#include "analysis/stats.h"
#include "cli/command.h"
#include "cli/export_options.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/export_folder.h"

namespace actcap::cli {
namespace {

struct Options {
  StoreInputOptions input;
  std::string out, plot;
  bool json = false;
};

std::optional<std::string> text_of(const nlohmann::json& record, const char* key) {
  if (!record.contains(key) || !record[key].is_string()) return std::nullopt;
  return record[key].get<std::string>();
}

std::string number(const nlohmann::ordered_json& value) {
  return value.is_number() ? fmt::format("{:.6g}", value.get<double>()) : "-";
}

// A fixed-width table of the stats document's layers.
std::string table(const nlohmann::ordered_json& stats, const StoreReader& store, size_t records) {
  std::vector<std::vector<std::string>> rows = {{"site", "layer", "shape", "elements", "min", "max", "mean", "std"}};
  for (const auto& layer : stats["layer_stats"]) {
    const std::string site = layer["site"].get<std::string>(), name = layer["layer"].get<std::string>();
    rows.push_back({site, name == site ? "" : name, shape_string(layer["shape"].get<Shape>()),
                    std::to_string(layer["num_elements"].get<int64_t>()), number(layer["min"]), number(layer["max"]),
                    number(layer["mean"]), number(layer["std"])});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  std::string text = fmt::format("{}: {} site{}, {} record{}, {} (std: sample, divisor N - 1)\n", store.dir(),
                                 rows.size() - 1, rows.size() == 2 ? "" : "s", records, records == 1 ? "" : "s",
                                 dtype_name(store.dtype()));
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c)
      line += c < 3 ? fmt::format("{:<{}}  ", row[c], widths[c]) : fmt::format("{:>{}}  ", row[c], widths[c]);
    line.erase(line.find_last_not_of(' ') + 1);
    text += line + "\n";
  }
  return text;
}

// The model's name for the figure's title: its hub repo, else its folder's name.
std::string model_label(const nlohmann::json& manifest) {
  const nlohmann::json model = manifest.value("model", nlohmann::json::object());
  const nlohmann::json hub = model.value("hub", nlohmann::json::object());
  if (hub.contains("repo_id") && hub["repo_id"].is_string()) return hub["repo_id"].get<std::string>();
  return std::filesystem::path(model.value("path", std::string())).filename().string();
}

void run(const Options& options) {
  if (!options.plot.empty()) check_figure_path(options.plot);
  const std::unique_ptr<StoreReader> store = options.input.open();
  const Selection selection = select(*store, options.input, {"all"});
  const std::vector<int64_t>& records = selection.records;

  std::vector<LayerStats> layers;
  for (const std::string& site : selection.sites) {
    LayerStats layer;
    layer.layer = layer_name_of_site(site);
    layer.site = site;
    layer.dtype = store->dtype();
    for (int64_t record : records) {
      const TensorView view = store->view(record, site);
      if (layer.shape.empty()) {
        layer.shape = view.shape;
        layer.shape.insert(layer.shape.begin(), int64_t(records.size()));  // the batch dimension first
      } else if (layer.shape.size() != view.shape.size() + 1) {
        fail("{}: site {} has rank {} in record {} but {} in record {}", store->dir(), site, view.shape.size(),
             record, layer.shape.size() - 1, records[0]);
      } else {
        for (size_t d = 0; d < view.shape.size(); ++d)
          if (layer.shape[d + 1] != view.shape[d]) layer.shape[d + 1] = -1;
      }
      layer.values.add(view);
      if (!options.plot.empty()) layer.row_norms.add(view, position_axis(site));
    }
    layers.push_back(std::move(layer));
  }

  const std::string model_path = store->manifest().value("model", nlohmann::json::object()).value("path", "");
  const nlohmann::json& first = store->record(records[0]);
  const bool one = records.size() == 1;
  nlohmann::ordered_json stats = stats_json(model_path, one ? text_of(first, "text") : std::nullopt,
                                            one ? text_of(first, "generated_text") : std::nullopt, layers);
  stats["records"] = records;
  stats["std"] = "sample standard deviation (divisor N - 1), as torch.std() by default";

  plot::Figure figure;
  if (!options.plot.empty()) {
    figure = stats_figure(fmt::format("{}: {}, {} record{}", store->dir(), model_label(store->manifest()), records.size(),
                                      one ? "" : "s"),
                          layers);
    check_something_to_draw(figure, options.plot);  // before any output
  }

  if (options.out.empty() || options.out == "-") {
    fmt::print("{}", options.json || options.out == "-" ? stats.dump(2) + "\n" : table(stats, *store, records.size()));
  } else {
    remove_stale_temporaries(options.out);
    write_file_atomic(options.out, stats.dump(2) + "\n");
    fmt::print("wrote {} ({} sites, {} record{})\n", options.out, layers.size(), records.size(), one ? "" : "s");
  }
  if (!options.plot.empty()) {
    remove_stale_temporaries(options.plot);
    plot::write_figure(figure, options.plot);
  }
}

CommandRegistration registration(
    "stats", "per-site statistics (min, max, mean, std) as a table, or JSON (<model>_stats.json's format)",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      options->input.add_to(command, "every site");
      command.add_flag("--json", options->json, "print JSON (the original tool's <model>_stats.json format) instead");
      command.add_option("--out", options->out, "write the JSON to FILE instead of printing a table ('-': stdout)");
      command.add_option("--plot", options->plot,
                         "also draw mean, std, norm per position and max |x| per layer, one line per site kind, "
                         "to FILE.png or FILE.svg")
          ->type_name("FILE");
      command.footer(
          "Statistics of each site over the chosen records (all by default): elements, min, max, mean and sample\n"
          "std (divisor N - 1, as torch.std). hidden_states.k also shows the original tool's layer name\n"
          "(embedding, layer_N = hidden_states.N+1).\n"
          "Example: actcap stats out/demo --sites 'hidden_states.*'\n"
          "         actcap stats out/demo --out tiny-gpt2_stats.json\n"
          "         actcap stats out/demo --plot stats.png   # norm = mean L2 norm of a position's row");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
