#pragma once
// The capture store's file formats, in one place: the typed lines of records.jsonl and metadata.jsonl and the
// manifest, each with its JSON encoding and a parser that names the file (and line) of anything malformed.
// Used by the writer, resume recovery, the reader and verify. docs/STORE.md describes the format for users.
//
// format_version 2 (this one) adds to the manifest the SHA-256 and size of records.jsonl and metadata.jsonl as of
// the last commit, and "manifest_sha256", the SHA-256 of the manifest's canonical JSON without that key.
// Version-1 stores (no such keys) stay readable; resuming one upgrades it to version 2.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"

namespace actcap {

enum class StoreLayout { PerRecord, TokenStream };
std::string_view store_layout_name(StoreLayout layout);  // "per_record" | "token_stream"
StoreLayout parse_store_layout(std::string_view name);  // throws actcap::Error

namespace store {

inline constexpr std::string_view kFormat = "actcap-store";
inline constexpr int kFormatVersion = 2;
inline constexpr int kOldestReadableVersion = 1;
inline constexpr std::string_view kManifestFile = "manifest.json";
inline constexpr std::string_view kRecordsFile = "records.jsonl";
inline constexpr std::string_view kMetadataFile = "metadata.jsonl";
inline constexpr std::string_view kLockFile = ".lock";
// The capture's summary, added once the store is complete; not part of the hashed format. The writer removes it
// (under the lock) whenever it is about to change the store, so it never describes another state of the store.
inline constexpr std::string_view kSummaryFile = "summary.json";
inline constexpr std::string_view kRowIndexTensor = "row_index";  // token_stream: I64 [N, 2] (record, position)
// Each shard's safetensors __metadata__ names the number of records it holds, so that a resumed run can tell a
// complete shard's index lines from a torn tail.
inline constexpr std::string_view kShardRecordsKey = "records";

inline std::string shard_file_name(int64_t index) { return fmt::format("shard-{:05d}.safetensors", index); }
inline std::string record_tensor_name(int64_t record, std::string_view site) { return fmt::format("{}/{}", record, site); }
std::optional<int64_t> shard_index_of(std::string_view file_name);  // of "shard-NNNNN.safetensors", else nullopt
// "manifest.json.tmp-*" and "shard-*.safetensors.tmp-*": what an interrupted atomic write leaves.
bool is_temporary_file(std::string_view file_name);

// A part-store (`capture --shard K/N`, an MPI rank's part) names the slice of the whole job it holds under this
// provenance key; its records are numbered as in the whole job, so it starts at first_record, not 0.
inline constexpr std::string_view kPartKey = "part";
struct PartInfo {
  int64_t index = 0, count = 1;             // part K of N
  int64_t first_record = 0, end_record = 0;  // the records it holds: [first_record, end_record)
  int64_t total_records = 0;                 // of the whole job
  std::string job_sha256;                    // capture/partition.h's job_identity(): equal for parts of one job

  nlohmann::json to_json() const;
  // The provenance's "part", when there is one; throws naming `path` if it is malformed.
  static std::optional<PartInfo> of(const nlohmann::json& provenance, const std::string& path);
};

// One line of records.jsonl: the record's tokens and the caller's extra fields (text, generated_text, ...).
struct RecordLine {
  int64_t record = 0;
  std::string id;
  std::vector<int32_t> token_ids;  // prompt + generated
  int64_t n_prompt = 0;
  std::vector<int64_t> positions;  // of the stored rows
  nlohmann::json extra = nlohmann::json::object();

  nlohmann::json to_json() const;
  std::string to_line() const;  // one line, '\n'-terminated
  // Checks types and ranges (n_prompt and positions within token_ids); `where` names file and line.
  static RecordLine from_json(const nlohmann::json& j, const std::string& where);
  const std::string* text() const;  // extra["text"] when it is a string
};

// One line of metadata.jsonl: where a record's rows lie in its shard.
struct MetadataLine {
  int64_t record = 0;
  std::string id;
  std::optional<std::string> text_sha256;  // of the record's text, when it has one
  int64_t span_begin = 0, span_end = 0;    // token_span: rows [begin, end) of the shard's tensors
  std::vector<std::string> sites;
  DType dtype = DType::F32;
  std::string shard;
  std::vector<std::pair<uint64_t, uint64_t>> offsets;  // per site (in `sites` order): absolute byte range in the shard
  std::string shard_sha256;

  nlohmann::json to_json() const;
  std::string to_line() const;
  static MetadataLine from_json(const nlohmann::json& j, const std::string& where);
};

struct ShardEntry {
  std::string file;
  std::string sha256;
  uint64_t bytes = 0;
};

// An index file's state as of the last commit.
struct IndexDigest {
  std::string sha256;
  uint64_t bytes = 0;
};

struct Manifest {
  int format_version = kFormatVersion;
  StoreLayout layout = StoreLayout::PerRecord;
  DType dtype = DType::F32;
  std::vector<std::string> sites;
  std::vector<ShardEntry> shards;
  bool complete = false;
  std::optional<IndexDigest> records, metadata;  // absent in version 1
  nlohmann::json provenance = nlohmann::json::object();  // every other key: the capture's model, inputs, options

  std::string to_text() const;  // pretty JSON with manifest_sha256, '\n'-terminated
  // Checks format, version, types and (version 2) manifest_sha256; errors name `path`.
  static Manifest parse(std::string_view text, const std::string& path);
  static bool is_format_key(std::string_view key);  // a key the format owns rather than the provenance
};

// A JSON object from one index line, or nullopt.
std::optional<nlohmann::json> parse_object(std::string_view line);

}  // namespace store
}  // namespace actcap
