#pragma once
// Reads a complete capture store (see store_writer.h for the layout) under the store lock (shared: no writer can
// be inside it meanwhile). Shards are memory-mapped on first use. Unless told not to, it trusts nothing: the
// manifest's own hash, records.jsonl and metadata.jsonl against the manifest's hashes, the records against each
// other (none missing, none renumbered) and each shard's SHA-256 as it is first mapped, once per reader.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "capture/store_format.h"
#include "capture/store_lock.h"
#include "capture/store_writer.h"
#include "core/tensor.h"
#include "io/safetensors.h"

namespace actcap {

struct StoreReadOptions {
  // Check each shard's SHA-256 and the index files' against the manifest as they are first read
  // (`--no-verify` turns it off; sizes and the records' consistency are checked regardless).
  bool verify_shards = true;
};

class StoreReader {
 public:
  // Reads manifest.json, records.jsonl and metadata.jsonl. Throws actcap::Error naming the file on anything
  // malformed, and for an incomplete store (an interrupted capture: resume it first).
  explicit StoreReader(const std::string& dir, StoreReadOptions options = {});
  ~StoreReader();

  const std::string& dir() const { return dir_; }
  const nlohmann::json& manifest() const { return manifest_; }
  StoreLayout layout() const { return layout_; }
  DType dtype() const { return dtype_; }
  const std::vector<std::string>& sites() const { return sites_; }      // forward order
  const std::vector<nlohmann::json>& records() const { return records_; }    // records.jsonl, in record order
  const std::vector<store::MetadataLine>& metadata() const { return metadata_; }  // metadata.jsonl, same order
  const store::Manifest& format() const { return format_; }  // the manifest, typed
  const nlohmann::json& record(int64_t record) const;  // by record number; throws if absent
  // The first record's number: 0, except in a part-store (`capture --shard K/N`, store_format.h's PartInfo).
  int64_t first_record() const { return first_record_; }

  // A record's rows of a site as stored (dtype()), zero-copy, in either layout: per_record the tensor
  // "<record>/<site>"; token_stream the record's rows of "<site>" ([T_kept, ...]).
  TensorView view(int64_t record, const std::string& site) const;
  Tensor read_f32(int64_t record, const std::string& site) const;  // converted to F32

  // Per site, over every record: the stored shape with -1 where records differ (e.g. [-1, 64]), the number
  // of stored rows (kept positions) and the stored bytes. Maps every shard.
  struct SiteInfo {
    std::string site;
    Shape shape;
    int64_t rows = 0;
    uint64_t bytes = 0;
  };
  std::vector<SiteInfo> site_infos() const;

  size_t num_shards() const { return shard_files_.size(); }
  const std::string& shard_file(size_t index) const { return shard_files_.at(index); }  // name inside dir
  const SafetensorsFile& shard(size_t index) const;  // mapped on first use (thread-safe)

 private:
  size_t index_of(int64_t record) const;
  // The newest metadata line against its record, the manifest and the lines before it.
  void check_metadata(const store::RecordLine& record, const std::string& where, size_t& previous_shard);
  std::string dir_;
  StoreReadOptions options_;
  std::unique_ptr<StoreLock> lock_;
  nlohmann::json manifest_;
  store::Manifest format_;
  StoreLayout layout_ = StoreLayout::PerRecord;
  DType dtype_ = DType::F32;
  std::vector<std::string> sites_;
  int64_t first_record_ = 0;
  std::vector<nlohmann::json> records_;
  std::vector<store::MetadataLine> metadata_;
  std::vector<size_t> shard_of_;  // per record line: its shard's index
  std::vector<std::string> shard_files_;
  std::map<std::string, size_t> shard_by_file_;
  mutable std::mutex shards_mutex_;
  mutable std::vector<std::unique_ptr<SafetensorsFile>> shards_;
};

}  // namespace actcap
