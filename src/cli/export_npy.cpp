// actcap export npy STORE --out DIR: plain .npy files, one per site, that numpy.load reads without allow_pickle
// (bf16 stores are written as float32), plus DIR/actcap_export.json describing every array.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/export_options.h"
#include "core/error.h"
#include "export/export_folder.h"
#include "export/npy_export.h"
#include "export/output_names.h"
#include "export/site_arrays.h"
#include "io/npy.h"

namespace actcap::cli {
namespace {

struct Options {
  StoreInputOptions input;
  std::string out, by = "site";
  bool all_records = false;
};

void run(const Options& options) {
  const OutputNaming naming = parse_output_naming(options.by);
  if (options.all_records && (!options.input.records.empty() || !options.input.record.empty()))
    fail("--all-records excludes --record and --records");
  const std::unique_ptr<StoreReader> store = options.input.open();
  const Selection selection = select(*store, options.input, {"all"});
  const RecordLayout layout = selection.one_record ? RecordLayout::Single : RecordLayout::Rows;

  // One site at a time, so that only one site's rearranged attention patterns are in memory.
  ExportFolder folder(options.out);
  nlohmann::json described = nlohmann::json::array();
  for (const std::string& name : selection.sites) {
    const SiteArray site = gather_site(*store, name, selection.records, layout);
    const std::string file = npy_file_name(output_name(site.site, naming));
    write_npy_arrays({{folder.path(file), site.pieces, site.shape}});
    described.push_back({{"file", file}, {"site", site.site}, {"shape", site.shape}, {"axes", site.axes},
                         {"dtype", dtype_name(npy_export_dtype(site.dtype))}});
  }
  nlohmann::json description = export_description("npy", *store, selection);
  if (layout == RecordLayout::Rows) {
    const std::vector<int64_t> index = gather_row_index(*store, selection.records);
    write_npy(folder.path("row_index.npy"), DType::I64, {int64_t(index.size() / 2), 2}, index.data());
    description["layout"] = "rows: [N_rows, ...], row_index.npy [N_rows, 2] = (record, position) of each row";
  } else {
    description["layout"] = "one record, batch-of-one: [1, positions, ...] (attention patterns [1, H, T, tokens])";
  }
  if (naming == OutputNaming::Layer)
    description["naming"] = "embedding = hidden_states.0; layer_N = hidden_states.N+1 (output of block N; the "
                            "last is the final norm's output)";
  description["arrays"] = described;
  folder.commit(description);
  fmt::print("wrote {} arrays of {} record{} to {} ({}{})\n", described.size(), selection.records.size(),
             selection.records.size() == 1 ? "" : "s", folder.out(), dtype_name(npy_export_dtype(store->dtype())),
             store->dtype() == DType::BF16 ? ", converted from BF16: numpy has no bfloat16" : "");
}

CommandRegistration registration(
    "export npy", "activations as plain .npy files, one per site (numpy.load without pickle; bf16 -> float32)",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      options->input.add_to(command, "every site");
      command.add_option("--out", options->out, "output folder (created; an earlier export there is replaced)")
          ->required();
      command.add_option("--by", options->by,
                         "file names: 'site' (hidden_states.3.npy) or 'layer' (the original tools' embedding.npy, "
                         "layer_0.npy, ...: layer_N = hidden_states.N+1, the last one the final norm's output)")
          ->capture_default_str();
      command.add_flag("--all-records", options->all_records, "every record (the default; same as --records all)");
      command.footer(
          "Writes OUT/<site>.npy per site (float32 for fp32 and bf16 stores, float16 for fp16 ones).\n"
          "  every record (the default, or --records LIST): the rows of all records stacked, [N_rows, ...], and\n"
          "    OUT/row_index.npy [N_rows, 2] int64 = (record, position) of each row; attention patterns become\n"
          "    [N_rows, heads, tokens], keys zero-padded to the longest record\n"
          "  --record N: that record alone in HF's batch-of-one layout [1, T, ...] (patterns [1, heads, T, tokens])\n"
          "OUT/actcap_export.json lists each file's site, shape, axis names and dtype.\n"
          "Example: actcap export npy out/demo --out npy/ --sites 'hidden_states.*'\n"
          "  python3 -c \"import numpy; print(numpy.load('npy/hidden_states.0.npy').shape)\"");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
