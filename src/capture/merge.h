#pragma once
// `actcap merge PARTS... --out STORE`: joins the part-stores of one job (`capture --shard K/N`, MPI ranks,
// several devices; partition.h) into the store a single process would have written.
//
// What is identical to a single-process capture of the same inputs and options: records.jsonl byte for byte;
// every record's tensors (names, shapes, dtype, bytes) and, in token_stream, its row_index rows; each
// metadata.jsonl line except where the record's rows lie (shard, shard_sha256, token_span, offsets). The shard
// files are the parts' own, in part order and renumbered shard-00000, shard-00001, ...: a part boundary always
// starts a new shard, so they match a single run's only where that run's shard boundaries fall at part
// boundaries too. The manifest holds part 0's provenance without "part", plus "merged" {parts, job_sha256}.
//
// Shards are hard-linked into the new store (the parts are left as they were, and may be deleted afterwards);
// across filesystems they are copied by the kernel (std::filesystem::copy_file: copy_file_range or sendfile),
// never through this process's memory.
// The index files are streamed. The store is built in STORE.tmp-<pid> and renamed into place when complete.
// Refused, with one line naming the part: an incomplete store, a store that is not a part, parts of different
// jobs (job_identity), a part missing or given twice, records that do not follow on from the previous part's.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace actcap {

struct MergeSummary {
  int64_t parts = 0, records = 0, shards = 0;
  int64_t linked = 0, copied = 0;  // shards hard-linked / copied (another filesystem)
};

MergeSummary merge_stores(const std::vector<std::string>& parts, const std::string& out);

// A capture split into parts by actcap itself (mpirun ranks, several devices) keeps them in OUT.parts/<name>
// until it merges them into OUT.
std::string parts_folder(const std::string& out);
// Before such a capture: true when `resume` finds OUT already merged (nothing left to do). Throws when OUT holds
// a store without `resume`, or when OUT and OUT.parts both exist (one of them is stale).
bool already_merged(const std::string& out, bool resume);
// After it: merges the parts into OUT, then removes OUT.parts (OUT holds their shards as hard links).
MergeSummary merge_parts(const std::vector<std::string>& parts, const std::string& out);
// The merged store's summary.json from its parts' capture summaries (capture_job.h): counts added up (graded
// accuracy too), shards as merged, wall time and tokens/s those of the whole run (`seconds`).
nlohmann::ordered_json merged_capture_summary(const std::vector<nlohmann::ordered_json>& parts,
                                              const MergeSummary& merged, const std::string& out, double seconds);

}  // namespace actcap
