// actcap export integers STORE --out DIR: each site's values as exact integers round(x * 10^s), one .npy per
// site (export/integers.h) + conversion_metadata.json, the input of `actcap export hypercube`.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/export_options.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/export_folder.h"
#include "export/integers.h"
#include "export/output_names.h"
#include "export/scaled_integers.h"
#include "export/site_arrays.h"
#include "io/npy.h"

namespace actcap::cli {
namespace {

struct Options {
  StoreInputOptions input;
  std::string out, format = "object", by = "layer";
  int scale_factor = 0;
  bool scale_factor_given = false;
  double quantize = 0;
};

void run(const Options& options) {
  const IntegerFormat format = parse_integer_format(options.format);
  const OutputNaming naming = parse_output_naming(options.by);
  const std::unique_ptr<StoreReader> store = options.input.open();
  const int scale_factor = options.scale_factor_given ? options.scale_factor : default_scale_factor(store->dtype());
  const int scale = effective_decimal_scale(scale_factor, options.quantize);
  const DecimalScaler scaler(scale);
  const Selection selection = select(*store, options.input, {"all"});
  const RecordLayout layout = selection.one_record ? RecordLayout::Single : RecordLayout::Rows;

  // One site at a time (only one site's rearranged attention patterns in memory); a bad value stops the export
  // and its temporary folder is removed.
  ExportFolder folder(options.out);
  nlohmann::json layer_entries = nlohmann::json::array();
  for (const std::string& name : selection.sites) {
    const SiteArray site = gather_site(*store, name, selection.records, layout);
    const IntegerLayerSummary summary = write_integer_layer(folder.temporary(), output_name(site.site, naming),
                                                            site.pieces, site.shape, scaler, format);
    nlohmann::json entry = {{"layer", summary.layer},
                            {"site", site.site},
                            {"original_shape", summary.shape},
                            {"axes", site.axes},
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
  const nlohmann::json model = store->manifest().value("model", nlohmann::json::object());
  const nlohmann::json& first = store->record(selection.records[0]);
  const bool one = selection.records.size() == 1;
  nlohmann::json metadata = {
      {"model_name", model.value("path", "")},
      {"model", model},
      {"prompt", one && first.contains("text") ? first["text"] : nlohmann::json()},
      {"generated_text", one && first.contains("generated_text") ? first["generated_text"] : nlohmann::json()},
      {"records", selection.records},
      {"record_ids", nlohmann::json::array()},
      {"source", {{"store", store->dir()}, {"dtype", dtype_name(store->dtype())}}},
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
  for (int64_t r : selection.records) metadata["record_ids"].push_back(store->record(r).value("id", ""));
  if (layout == RecordLayout::Single) {
    metadata["record"] = selection.records[0];
    metadata["token_ids"] = first.value("token_ids", nlohmann::json::array());
    metadata["layout"] = "one record, batch-of-one: [1, positions, ...] (attention patterns [1, H, T, tokens])";
  } else {
    const std::vector<int64_t> index = gather_row_index(*store, selection.records);
    write_npy(folder.path("row_index.npy"), DType::I64, {int64_t(index.size() / 2), 2}, index.data());
    metadata["row_index_file"] = "row_index.npy";
    metadata["layout"] = "rows: [N_rows, ...], row_index.npy [N_rows, 2] = (record, position) of each row";
  }
  if (naming == OutputNaming::Layer)
    metadata["naming"] = "embedding = hidden_states.0; layer_N = hidden_states.N+1 (output of block N; the last "
                         "is the final norm's output); other sites keep their names";
  write_file_atomic(folder.path("conversion_metadata.json"), metadata.dump(2) + "\n");
  folder.commit(export_description("integers", *store, selection));
  fmt::print("wrote {} layers of {} record{} to {} (effective scale 10^{}, {})\n", layer_entries.size(),
             selection.records.size(), one ? "" : "s", folder.out(), scale, integer_format_name(format));
}

CommandRegistration registration(
    "export integers", "exact integers round(x * 10^s) of each site, one .npy per site (input of export hypercube)",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      options->input.add_to(command, "every site");
      command.add_option("--out", options->out, "output folder (created; an earlier export there is replaced)")
          ->required();
      CLI::Option* scale = command.add_option(
          "--scale-factor", options->scale_factor,
          "decimal digits kept: integer = round(x * 10^s); 0 to 4096 (default 32 for fp32 stores, 16 for fp16/bf16)");
      command.add_option("--quantize", options->quantize,
                         "percentage (0-100) of the scale factor's digits to drop: the effective scale is "
                         "s = scale_factor - floor(scale_factor * Q / 100), e.g. 32 and 25 give 10^24")
          ->capture_default_str();
      command.add_option("--format", options->format,
                         "object (Python ints, any size; allow_pickle=True) | int64 (fails if a value does not "
                         "fit) | fixed (little-endian two's complement bytes, [..., width])")
          ->capture_default_str();
      command.add_option("--by", options->by,
                         "file names: 'layer' (the original tool's embedding.npy, layer_N.npy: layer_N = "
                         "hidden_states.N+1, the last the final norm's output; other sites by name) or 'site'")
          ->capture_default_str();
      command.footer(
          "Writes OUT/<layer>.npy per site and OUT/conversion_metadata.json (scale, encoding, each file's site,\n"
          "shape and axis names).\n"
          "  every record (the default, or --records LIST): the rows of all records stacked, [N_rows, ...], and\n"
          "    OUT/row_index.npy = (record, position) of each row (attention patterns as in `export npy`)\n"
          "  --record N: that record in the original tool's layout [1, T, ...]\n"
          "Example: actcap export integers out/demo --out ints/ --record 0 --scale-factor 16\n"
          "         actcap export hypercube ints/ --out cube/");
      command.callback([options, scale] {
        options->scale_factor_given = scale->count() > 0;
        run(*options);
      });
    });

}  // namespace
}  // namespace actcap::cli
