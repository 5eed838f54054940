#pragma once
// Writes a capture store: sharded safetensors plus append-only indexes, crash-safe and resumable.
//
// DIR/manifest.json    provenance (the caller's JSON) + format, format_version, layout, dtype, sites,
//                      shards [{file, sha256, bytes}], complete, records_sha256/records_bytes and
//                      metadata_sha256/metadata_bytes (the index files as of the last commit), manifest_sha256
// DIR/shard-NNNNN.safetensors
//     per_record:   "<record>/<site>" as captured ([T_kept, ...]), records in order, sites in forward order
//     token_stream: "<site>" [N_rows, ...] = the kept rows of the shard's records, in order, and
//                   "row_index" I64 [N_rows, 2] = (record, position) of each row
// DIR/records.jsonl    per record: record, id, token_ids, n_prompt, positions (of the stored rows) + extra fields
// DIR/metadata.jsonl   per record: record, id, text_sha256 (of extra.text, null without text), token_span
//                      (its rows [begin, end) in the shard: [0, n_positions] per_record; in token_stream the
//                      rows of "<site>" and "row_index"), sites, dtype, shard, offsets {site: [begin, end] of
//                      its bytes in the shard file, absolute}, shard_sha256
// DIR/.lock            the store lock (store_lock.h): the writer holds it exclusively for its whole life
// Record numbers are 0, 1, 2, ... with none missing in a complete store (verify checks it).
// The typed lines and manifest are in store_format.h; docs/STORE.md describes the format for users.
//
// Commit protocol (what makes kill -9 at any moment safe): each record's tensor bytes, header entries and index
// lines are spooled to unlinked temporary files as it arrives (memory does not grow with the shard size);
// when the next record would push the shard past shard_bytes, the shard is written under a temporary name,
// fsynced and renamed, THEN the index lines of its records are appended and fsynced, THEN manifest.json is
// replaced atomically (after each of the first 64 shards, then at most once a second, and at finish()). A store is therefore always its complete shards plus their index lines; resume
// discards everything after those (temporary files, a shard without its lines, a torn last line) and carries
// on from there. Nothing is ever deleted that the store did not write: a folder without manifest.json that
// holds files named like a store's is refused.
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "capture/store_format.h"
#include "core/tensor.h"

namespace actcap {

struct StoreOptions {
  std::string dir;
  StoreLayout layout = StoreLayout::PerRecord;
  DType dtype = DType::F32;               // F32, BF16 or F16 (rounded to nearest even)
  std::vector<std::string> sites;         // every site each record carries, in forward order
  uint64_t shard_bytes = 1ull << 30;      // cap on a shard's tensor data (a single larger record gets its own)
  bool resume = false;                    // continue the store in `dir` (or start it if there is none)
  // Replace the store in `dir`: its own files are removed, under the lock; refused if the folder holds others.
  bool overwrite = false;
  // token_stream only: rows not to store. drop_bos drops position 0 when its token is bos_token_id.
  bool drop_bos = false;
  int32_t bos_token_id = -1;
  std::vector<int32_t> drop_token_ids;
};

struct RecordInfo {
  int64_t record = 0;               // strictly increasing from one add_record to the next
  std::string id;
  std::vector<int32_t> token_ids;   // prompt + generated
  int n_prompt = 0;
  std::vector<int64_t> positions;   // positions of the rows in each site's tensor (dim 0)
  nlohmann::json extra = nlohmann::json::object();  // text, generated_text, answer, grade, ...: into records.jsonl
};

class StoreWriter {
 public:
  // Creates `dir` (and parents), takes the store lock and starts an empty, incomplete store. Throws
  // actcap::Error if another process holds the lock, if `dir` already holds a store and neither resume nor
  // overwrite is set, or, with resume, if that store was made with another layout/dtype/sites or provenance
  // (the message names the first difference; the manifest's "command_line" and "tool" may differ: the
  // original ones are kept).
  StoreWriter(StoreOptions options, nlohmann::json manifest);
  ~StoreWriter();  // without finish(), the open shard's records are dropped: the store stays valid and resumable
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Records already safely stored (non-empty only when resuming): skip them and add the others in order.
  const std::set<int64_t>& completed_records() const { return completed_; }

  // `sites`: exactly options.sites, in order, F32 (as Recorder::take gives them). per_record: any shape;
  // token_stream: [T_kept, ...] with dim 0 matching info.positions and the same trailing dims for every record.
  // May write a shard. Throws actcap::Error naming the file on an I/O failure (disk full, unwritable folder);
  // the store on disk then stays valid up to its last complete shard and the writer refuses further use.
  void add_record(const RecordInfo& info, const std::vector<std::pair<std::string, Tensor>>& sites);

  // Writes the last shard and the final manifest ("complete": true).
  void finish();

  struct SiteSummary {
    Shape shape;         // dims that differ between records are -1 (e.g. [-1, 64])
    int64_t rows = 0;    // total of dim 0 over every record
    uint64_t bytes = 0;  // stored tensor bytes
  };
  struct Summary {
    int64_t records = 0;        // in the store (including those of an earlier run when resuming)
    int64_t tokens = 0;         // total token_ids
    int64_t shards = 0;
    uint64_t bytes_written = 0; // shard and index bytes written by this writer
    std::map<std::string, SiteSummary> sites;
  };
  Summary summary() const;

  // Tensor bytes of the shard being filled (spooled on disk, not in memory): never more than
  // max(shard_bytes, one record).
  uint64_t buffered_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::set<int64_t> completed_;
};

}  // namespace actcap
