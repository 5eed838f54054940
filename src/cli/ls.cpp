// actcap ls DIR: what a capture store holds: sites, shapes, dtypes, sizes, records.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "capture/store_reader.h"
#include "cli/command.h"

namespace {

// "[T, 64]": a first dimension that varies between records is the row count T; other varying ones are '?'.
std::string shape_text(const actcap::Shape& shape) {
  std::string out = "[";
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d) out += ", ";
    out += shape[d] >= 0 ? std::to_string(shape[d]) : d == 0 ? "T" : "?";
  }
  return out + "]";
}

actcap::cli::CommandRegistration reg(
    "ls", "list a capture store's sites, shapes, dtypes and sizes", [](CLI::App& cmd) {
      auto dir = std::make_shared<std::string>();
      auto as_json = std::make_shared<bool>(false);
      auto no_verify = std::make_shared<bool>(false);
      cmd.add_option("dir", *dir, "The capture store folder")->required();
      cmd.add_flag("--json", *as_json, "Print JSON (shapes use -1 where records differ)");
      cmd.add_flag("--no-verify", *no_verify, "Skip checking the shards' and index files' SHA-256 against the manifest");
      cmd.callback([dir, as_json, no_verify] {
        const actcap::StoreReader store(*dir, actcap::StoreReadOptions{.verify_shards = !*no_verify});
        const auto infos = store.site_infos();
        uint64_t shard_bytes = 0;
        for (const auto& shard : store.format().shards) shard_bytes += shard.bytes;
        const std::string layout(actcap::store_layout_name(store.layout()));
        const std::string dtype(actcap::dtype_name(store.dtype()));
        if (*as_json) {
          nlohmann::ordered_json out = {{"dir", *dir},
                                        {"layout", layout},
                                        {"dtype", dtype},
                                        {"records", store.records().size()},
                                        {"shards", store.num_shards()},
                                        {"bytes", shard_bytes},
                                        {"sites", nlohmann::ordered_json::array()}};
          for (const auto& info : infos)
            out["sites"].push_back({{"site", info.site}, {"shape", info.shape}, {"rows", info.rows}, {"bytes", info.bytes}});
          std::printf("%s\n", out.dump(2).c_str());
          return;
        }
        const size_t records = store.records().size(), shards = store.num_shards();
        std::printf("%s: %s store, %zu record%s, %zu shard%s, %llu bytes, dtype %s\n", dir->c_str(), layout.c_str(),
                    records, records == 1 ? "" : "s", shards, shards == 1 ? "" : "s",
                    static_cast<unsigned long long>(shard_bytes), dtype.c_str());
        size_t width = 4;
        for (const auto& info : infos) width = std::max(width, info.site.size());
        std::printf("%-*s  %-16s  %-5s  %12s  %14s\n", int(width), "site", "shape", "dtype", "rows", "bytes");
        for (const auto& info : infos)
          std::printf("%-*s  %-16s  %-5s  %12lld  %14llu\n", int(width), info.site.c_str(), shape_text(info.shape).c_str(),
                      dtype.c_str(), static_cast<long long>(info.rows), static_cast<unsigned long long>(info.bytes));
      });
    });

}  // namespace
