#include "cli/export_options.h"

#include "cli/command.h"
#include "core/error.h"
#include "export/store_selection.h"

namespace actcap::cli {

void StoreInputOptions::add_to(CLI::App& command, const std::string& sites_default) {
  command.add_option("store", store, "capture store folder (written by `actcap capture`)")->required();
  command.add_option("--sites", sites,
                     "sites to export: glob patterns over the store's site names, space- or comma-separated "
                     "('all', 'hidden_states.*', 'blocks.*.hook_resid_post'; `actcap ls STORE` lists them). "
                     "Default: " + sites_default)
      ->expected(1, -1)
      ->type_name("GLOB");
  command.add_option("--records", records, "records to export: 'all' (the default) or a list such as 0,2,5-7")
      ->type_name("LIST");
  command.add_option("--record", record, "one record N, in HF's batch-of-one layout (excludes --records)")
      ->type_name("N");
  command.add_flag("--no-verify", no_verify, "skip the SHA-256 check of the store's shards (faster on large stores)");
}

std::unique_ptr<StoreReader> StoreInputOptions::open() const {
  if (!record.empty() && !records.empty()) fail("--record and --records exclude each other: give one");
  if (!record.empty()) parse_record_number(record, "--record");  // a bad number fails before the store is read
  return std::make_unique<StoreReader>(store, StoreReadOptions{.verify_shards = !no_verify});
}

Selection select(const StoreReader& store, const StoreInputOptions& options, const std::vector<std::string>& default_sites) {
  Selection selection;
  selection.sites = select_sites(store, options.sites.empty() ? default_sites : options.sites);
  if (!options.record.empty()) {
    selection.records = select_records(store, std::to_string(parse_record_number(options.record, "--record")), "--record");
    selection.one_record = true;
  } else {
    selection.records = select_records(store, options.records.empty() ? "all" : options.records, "--records");
  }
  return selection;
}

nlohmann::json export_description(const std::string& kind, const StoreReader& store, const Selection& selection) {
  return {{"export", kind},
          {"tool", {{"name", "actcap"}, {"version", ACTCAP_VERSION}, {"command_line", command_line()}}},
          {"store", store.dir()},
          {"store_dtype", dtype_name(store.dtype())},
          {"sites", selection.sites},
          {"records", selection.records}};
}

}  // namespace actcap::cli
