// actcap merge PARTS... --out STORE: the part-stores of one job (capture --shard K/N) joined into one store.
#include <cstdio>
#include <memory>

#include "capture/merge.h"
#include "cli/command.h"

namespace {

actcap::cli::CommandRegistration reg(
    "merge", "join the part-stores of one capture (capture --shard K/N, every K) into the store one process writes",
    [](CLI::App& cmd) {
      auto parts = std::make_shared<std::vector<std::string>>();
      auto out = std::make_shared<std::string>();
      cmd.add_option("parts", *parts, "the part-stores, in any order (every part of the job, once)")->required();
      cmd.add_option("--out", *out, "the merged store's folder (must not exist)")->required();
      cmd.footer(R"(
Shards are hard-linked (copied by the kernel across filesystems): the parts stay as they were and may be deleted
afterwards. records.jsonl and every record's tensors equal a single-process capture's; a new shard starts at each
part (docs/SCALE.md says exactly what is identical). Check the result with `actcap verify STORE`.)");
      cmd.callback([parts, out] {
        const actcap::MergeSummary s = actcap::merge_stores(*parts, *out);
        std::printf("merged %lld parts into %s: %lld records, %lld shards (%lld linked, %lld copied)\n",
                    static_cast<long long>(s.parts), out->c_str(), static_cast<long long>(s.records),
                    static_cast<long long>(s.shards), static_cast<long long>(s.linked),
                    static_cast<long long>(s.copied));
      });
    });

}  // namespace
