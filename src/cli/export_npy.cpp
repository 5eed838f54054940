// actcap export npy STORE --out DIR [--by site|layer] [--record N | --all-records]: plain .npy files that
// numpy.load reads without allow_pickle (bf16 stores are written as float32).
//   --record N      DIR/<name>.npy holds that record's rows as (1, T, ...), HF's batch-of-one layout.
//   --all-records   (the default) DIR/<name>.npy holds every record's rows concatenated, (N_rows, ...), and
//                   DIR/row_index.npy (N_rows, 2) int64 gives each row's (record, position).
//   --by site       (the default) one file per site, named after it (hidden_states.0.npy, ...);
//   --by layer      one per hidden-state layer with the original tools' names (embedding.npy, layer_0.npy, ...).
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "capture/store_reader.h"
#include "cli/command.h"
#include "core/error.h"
#include "export/integers.h"
#include "export/npy_export.h"
#include "io/npy.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string store, out, by = "site";
  int64_t record = -1;
  bool all_records = false;
};

void run(const Options& options) {
  if (options.by != "site" && options.by != "layer")
    fail("--by {}: expected 'site' or 'layer'", options.by);
  if (options.record >= 0 && options.all_records) fail("--record and --all-records exclude each other");
  StoreReader store(options.store);

  std::vector<std::pair<std::string, std::string>> outputs;  // (name, site)
  if (options.by == "layer") {
    for (const HiddenLayer& layer : hidden_state_layers(store.sites())) outputs.emplace_back(layer.name, layer.site);
  } else {
    for (const std::string& site : store.sites()) outputs.emplace_back(site, site);
  }

  const std::filesystem::path out(options.out);
  std::vector<NpyArray> arrays;
  std::vector<int64_t> row_index;  // (record, position) pairs, all-records mode
  if (options.record >= 0) {
    store.record(options.record);
    for (const auto& [name, site] : outputs) {
      TensorView view = store.view(options.record, site);
      Shape shape = view.shape;
      shape.insert(shape.begin(), 1);
      arrays.push_back({(out / npy_file_name(name)).string(), {view}, shape});
    }
  } else {
    for (const nlohmann::json& record : store.records()) {
      const int64_t r = record.at("record").get<int64_t>();
      for (int64_t position : record.at("positions").get<std::vector<int64_t>>()) {
        row_index.push_back(r);
        row_index.push_back(position);
      }
    }
    for (const auto& [name, site] : outputs) {
      NpyArray array{(out / npy_file_name(name)).string(), {}, {}};
      for (const nlohmann::json& record : store.records()) {
        const int64_t r = record.at("record").get<int64_t>();
        TensorView view = store.view(r, site);
        if (array.shape.empty()) {
          array.shape = view.shape;
        } else {
          if (!std::equal(view.shape.begin() + 1, view.shape.end(), array.shape.begin() + 1, array.shape.end()))
            fail("{}: site {} has rows of shape {} in record {} but {} in earlier records: its records cannot be "
                 "concatenated (export them one at a time with --record N)", options.store, site,
                 shape_string(Shape(view.shape.begin() + 1, view.shape.end())), r,
                 shape_string(Shape(array.shape.begin() + 1, array.shape.end())));
          array.shape[0] += view.shape[0];
        }
        array.pieces.push_back(view);
      }
      if (array.shape.empty()) fail("{}: the store holds no records", options.store);
      if (array.shape[0] * 2 != int64_t(row_index.size()))
        fail("{}: site {} has {} rows but the records list {} positions", options.store, site, array.shape[0],
             row_index.size() / 2);
      arrays.push_back(std::move(array));
    }
  }

  std::filesystem::create_directories(out);
  write_npy_arrays(arrays);
  if (options.record < 0)
    write_npy((out / "row_index.npy").string(), DType::I64, {int64_t(row_index.size() / 2), 2}, row_index.data());
  fmt::print("wrote {} arrays to {} ({}{})\n", arrays.size(), options.out,
             dtype_name(npy_export_dtype(store.dtype())),
             store.dtype() == DType::BF16 ? ", converted from BF16: numpy has no bfloat16" : "");
}

CommandRegistration registration(
    "export npy",
    "activations as plain .npy files, one per site or per layer (numpy.load without pickle; bf16 -> float32)",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("store", options->store, "capture store folder")->required();
      command.add_option("--out", options->out, "output folder")->required();
      command.add_option("--by", options->by, "site | layer")->capture_default_str();
      command.add_option("--record", options->record, "one record, as (1, T, ...)");
      command.add_flag("--all-records", options->all_records,
                       "every record's rows concatenated, plus row_index.npy (the default)");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
