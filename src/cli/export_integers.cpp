// actcap export integers STORE --out DIR: each hidden-state layer of one record as exact integers
// round(x * 10^s), one .npy per layer (embedding.npy, layer_0.npy, ...) + conversion_metadata.json.
#include <filesystem>
#include <memory>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "capture/store_reader.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/integers.h"
#include "export/scaled_integers.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string store, out, format = "object";
  int64_t record = 0;
  int scale_factor = -1;  // -1: the source dtype's default
  double quantize = 0;
};

void run(const Options& options) {
  const IntegerFormat format = parse_integer_format(options.format);
  StoreReader store(options.store);
  const std::vector<HiddenLayer> layers = hidden_state_layers(store.sites());
  const int scale_factor = options.scale_factor >= 0 ? options.scale_factor : default_scale_factor(store.dtype());
  const int scale = effective_decimal_scale(scale_factor, options.quantize);
  const DecimalScaler scaler(scale);
  const nlohmann::json& record = store.record(options.record);

  // Everything is checked before the first file is written, so a bad value leaves no partial export.
  std::vector<std::pair<TensorView, Shape>> views;
  for (const HiddenLayer& layer : layers) {
    TensorView view = store.view(options.record, layer.site);
    Shape shape = view.shape;
    shape.insert(shape.begin(), 1);  // (1, seq_len, hidden) as the original tool's tensors
    check_integer_layer(layer.name, view, shape, scaler, format);
    views.emplace_back(view, shape);
  }

  std::filesystem::create_directories(options.out);
  nlohmann::json layer_entries = nlohmann::json::array();
  for (size_t i = 0; i < layers.size(); ++i) {
    const IntegerLayerSummary summary =
        write_integer_layer(options.out, layers[i].name, views[i].first, views[i].second, scaler, format);
    nlohmann::json entry = {{"layer", summary.layer},
                            {"site", layers[i].site},
                            {"original_shape", summary.shape},
                            {"num_elements", summary.count},
                            {"original_dtype", torch_dtype_name(summary.source_dtype)},
                            {"npy_file", summary.file},
                            {"encoding", integer_format_name(format)},
                            {"sample_original", summary.sample_original},
                            {"sample_converted", summary.sample_converted}};
    if (format == IntegerFormat::Fixed) entry["width_bytes"] = summary.width_bytes;
    layer_entries.push_back(std::move(entry));
  }

  static const char* const kEncodings[] = {
      "object: dtype object array of Python ints; numpy.load(path, allow_pickle=True)",
      "int64: '<i8' array; numpy.load(path)",
      "fixed: '|u1' array [..., width_bytes], each value little-endian two's complement; "
      "int.from_bytes(a[idx].tobytes(), 'little', signed=True)"};
  const nlohmann::json model = store.manifest().value("model", nlohmann::json::object());
  nlohmann::json metadata = {
      {"model_name", model.value("path", "")},
      {"model", model},
      {"prompt", record.contains("text") ? record["text"] : nlohmann::json()},
      {"generated_text", record.contains("generated_text") ? record["generated_text"] : nlohmann::json()},
      {"record", options.record},
      {"record_id", record.value("id", "")},
      {"token_ids", record.value("token_ids", nlohmann::json::array())},
      {"source", {{"store", options.store}, {"dtype", dtype_name(store.dtype())}}},
      {"conversion",
       {{"scale_factor", scale_factor},
        {"quantize_pct", options.quantize},
        {"truncated_digits", scale_factor - scale},
        {"effective_scale", scale},
        {"formula", "integer = round(float_value * 10^effective_scale)"},
        {"rounding", "exact, from the float's binary value (no float64 or decimal context in between), "
                     "ties to even"},
        {"reverse", "float_value ~= integer / 10^effective_scale (within 0.5 * 10^-effective_scale)"},
        {"format", integer_format_name(format)},
        {"format_description", kEncodings[int(format)]},
        {"sample_converted", "decimal text of the exact integer (JSON numbers cannot hold it)"}}},
      {"tool", {{"name", "actcap"}, {"version", ACTCAP_VERSION}, {"command_line", command_line()}}},
      {"layers", layer_entries}};
  write_file_atomic((std::filesystem::path(options.out) / "conversion_metadata.json").string(),
                    metadata.dump(2) + "\n");
  fmt::print("wrote {} layers to {} (effective scale 10^{}, {})\n", layers.size(), options.out, scale,
             integer_format_name(format));
}

CommandRegistration registration(
    "export integers", "exact integers round(x * 10^s) of each hidden-state layer, one .npy per layer",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("store", options->store, "capture store folder")->required();
      command.add_option("--out", options->out, "output folder")->required();
      command.add_option("--record", options->record, "record number")->capture_default_str();
      command.add_option("--scale-factor", options->scale_factor,
                         "decimal digits (default 32 for fp32 stores, 16 for fp16/bf16)");
      command.add_option("--quantize", options->quantize, "percentage (0-100) of the digits to drop")
          ->capture_default_str();
      command.add_option("--format", options->format, "object | int64 | fixed")->capture_default_str();
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
