#pragma once
// The options every command that reads a capture store for export shares (export npy|pt|integers|zkllm, stats):
// the store, --sites, --records / --record and --no-verify, and what they resolve to.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "capture/store_reader.h"

namespace actcap::cli {

struct StoreInputOptions {
  std::string store;
  std::vector<std::string> sites;  // globs; empty: the command's default
  std::string records;             // "all" or "0,2,5-7"; empty: all
  std::string record;              // --record N: one record, in HF's batch-of-one layout
  bool no_verify = false;

  // Adds the positional store and --sites, --records, --record, --no-verify. `sites_default` describes the
  // default in the help.
  void add_to(CLI::App& command, const std::string& sites_default);
  std::unique_ptr<StoreReader> open() const;
};

struct Selection {
  std::vector<std::string> sites;
  std::vector<int64_t> records;
  bool one_record = false;  // --record N was given
};
// Resolves the options against the store; `default_sites` are globs used without --sites.
Selection select(const StoreReader& store, const StoreInputOptions& options, const std::vector<std::string>& default_sites);

// The actcap_export.json description every export starts from: tool, command line, store, sites, records.
nlohmann::json export_description(const std::string& kind, const StoreReader& store, const Selection& selection);

}  // namespace actcap::cli
