// actcap verify DIR: checks a capture store end to end; prints OK and its counts, or the first inconsistency.
#include <cstdio>
#include <memory>

#include "capture/verify.h"
#include "cli/command.h"
#include "core/error.h"

namespace {

actcap::cli::CommandRegistration reg(
    "verify", "check a capture store: the SHA-256 of every file, the index against the shards, no record missing",
    [](CLI::App& cmd) {
      auto dir = std::make_shared<std::string>();
      cmd.add_option("dir", *dir, "The capture store folder")->required();
      cmd.callback([dir] {
        const actcap::StoreCheck check = actcap::verify_store(*dir);
        if (!check.ok) actcap::fail("{}", check.problem);
        std::printf("OK: %s: %lld records, %lld shards, %lld rows, %llu shard bytes\n", dir->c_str(),
                    static_cast<long long>(check.records), static_cast<long long>(check.shards),
                    static_cast<long long>(check.rows), static_cast<unsigned long long>(check.bytes));
        if (check.format_version < 2)
          std::printf("note: format_version %d: records.jsonl, metadata.jsonl and manifest.json carry no hashes and were "
                      "checked only against each other and the shards (resume the capture to upgrade the store)\n",
                      check.format_version);
      });
    });

}  // namespace
