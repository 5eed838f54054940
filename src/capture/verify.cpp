#include "capture/verify.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>

#include "capture/store_format.h"
#include "capture/store_reader.h"
#include "core/error.h"
#include "core/sha256.h"

namespace actcap {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Throws actcap::Error at the first inconsistency. The reader has already checked the manifest's own hash, the
// index files against the manifest's hashes, the records against each other and each shard's hash as it maps it.
void check(const std::string& dir, StoreCheck& result) {
  const StoreReader store(dir);
  const std::string metadata_path = (fs::path(dir) / store::kMetadataFile).string();
  const std::string records_path = (fs::path(dir) / store::kRecordsFile).string();
  const bool per_record = store.layout() == StoreLayout::PerRecord;
  const auto& sites = store.sites();

  // Every shard is the file the manifest describes (mapping it checks its size and SHA-256), and no other shard
  // lies in the folder.
  for (size_t k = 0; k < store.num_shards(); ++k) {
    store.shard(k);
    result.bytes += store.format().shards[k].bytes;
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("shard-", 0) == 0 && !std::any_of(store.format().shards.begin(), store.format().shards.end(),
                                                     [&](const store::ShardEntry& s) { return s.file == name; }))
      fail("{}: not listed in {}", entry.path().string(), store::kManifestFile);
  }

  // Every index line against its record and its shard.
  std::vector<int64_t> lines_per_shard(store.num_shards(), 0);
  std::vector<int64_t> next_row(store.num_shards(), 0);  // token_stream: rows are covered in order without gaps
  for (size_t i = 0; i < store.records().size(); ++i) {
    const auto r = store::RecordLine::from_json(store.records()[i], fmt::format("{}: line {}", records_path, i + 1));
    const store::MetadataLine& m = store.metadata()[i];
    const int64_t record = r.record;
    const std::string where = fmt::format("{}: line {} (record {})", metadata_path, i + 1, record);
    std::optional<std::string> text_sha;
    if (const std::string* text = r.text()) text_sha = sha256_hex(text->data(), text->size());
    if (m.text_sha256 != text_sha)
      fail("{}: text_sha256 {} does not match the record's text ({})", where, m.text_sha256.value_or("null"),
           text_sha.value_or("null"));
    const size_t shard_index = size_t(store::shard_index_of(m.shard).value());
    ++lines_per_shard[shard_index];
    const SafetensorsFile& shard = store.shard(shard_index);
    const auto& positions = r.positions;
    if (per_record) {
      if (m.span_begin != 0) fail("{}: token_span [{}, {}] should start at 0", where, m.span_begin, m.span_end);
    } else {
      int64_t& next = next_row[shard_index];
      if (m.span_begin != next) fail("{}: token_span [{}, {}] should start at row {}", where, m.span_begin, m.span_end, next);
      next = m.span_end;
      const TensorView index = shard.view(std::string(store::kRowIndexTensor));
      if (index.dtype != DType::I64 || index.shape.size() != 2 || index.shape[1] != 2 || m.span_end > index.shape[0])
        fail("{}: {} {} {} cannot hold token_span [{}, {}]", shard.path(), store::kRowIndexTensor, dtype_name(index.dtype),
             shape_string(index.shape), m.span_begin, m.span_end);
      // row_index follows F16/BF16 rows, so it need not be 8-byte aligned: copied out, not dereferenced.
      const auto* bytes = static_cast<const uint8_t*>(index.data);
      for (int64_t row = m.span_begin; row < m.span_end; ++row) {
        int64_t pair[2];
        std::memcpy(pair, bytes + size_t(row) * sizeof(pair), sizeof(pair));
        if (pair[0] != record || pair[1] != positions[size_t(row - m.span_begin)])
          fail("{}: {} row {} is ({}, {}), the index says ({}, {})", shard.path(), store::kRowIndexTensor, row, pair[0],
               pair[1], record, positions[size_t(row - m.span_begin)]);
      }
    }
    for (size_t s = 0; s < sites.size(); ++s) {
      const std::string& site = sites[s];
      const std::string name = per_record ? store::record_tensor_name(record, site) : site;
      if (!shard.contains(name)) fail("{}: no tensor '{}' (record {})", shard.path(), name, record);
      const SafetensorsEntry& e = shard.entry(name);
      if (e.dtype != store.dtype())
        fail("{}: tensor '{}' is {}, the store is {}", shard.path(), name, dtype_name(e.dtype), dtype_name(store.dtype()));
      uint64_t begin = shard.data_offset() + e.begin, end = shard.data_offset() + e.end;
      if (!per_record) {
        if (e.shape.empty() || e.shape[0] < m.span_end)
          fail("{}: tensor '{}' {} cannot hold token_span [{}, {}]", shard.path(), name, shape_string(e.shape),
               m.span_begin, m.span_end);
        const uint64_t row_bytes = e.shape[0] ? (e.end - e.begin) / uint64_t(e.shape[0]) : 0;
        end = begin + uint64_t(m.span_end) * row_bytes;
        begin += uint64_t(m.span_begin) * row_bytes;
      }
      if (m.offsets[s] != std::pair<uint64_t, uint64_t>{begin, end})
        fail("{}: offsets of '{}' are [{}, {}], the shard holds it at [{}, {}]", where, site, m.offsets[s].first,
             m.offsets[s].second, begin, end);
    }
    result.rows += int64_t(positions.size());
  }

  // Each shard holds exactly the records indexed to it.
  for (size_t k = 0; k < store.num_shards(); ++k) {
    const SafetensorsFile& shard = store.shard(k);
    const int64_t lines = lines_per_shard[k];
    auto it = shard.metadata().find(std::string(store::kShardRecordsKey));
    if (it == shard.metadata().end() || it->second != std::to_string(lines))
      fail("{}: holds {} records, {} indexes {}", shard.path(), it == shard.metadata().end() ? "an unknown number of" : it->second,
           store::kMetadataFile, lines);
    const size_t expected_tensors = per_record ? size_t(lines) * sites.size() : sites.size() + 1;
    if (shard.names().size() != expected_tensors)
      fail("{}: {} tensors, the index accounts for {}", shard.path(), shard.names().size(), expected_tensors);
    if (!per_record) {
      for (const auto& site : sites)
        if (shard.entry(site).shape[0] != next_row[k])
          fail("{}: tensor '{}' has {} rows, the index covers {}", shard.path(), site, shard.entry(site).shape[0], next_row[k]);
      if (shard.entry(std::string(store::kRowIndexTensor)).shape[0] != next_row[k])
        fail("{}: {} has {} rows, the index covers {}", shard.path(), store::kRowIndexTensor,
             shard.entry(std::string(store::kRowIndexTensor)).shape[0], next_row[k]);
    }
  }
  result.format_version = store.format().format_version;
  result.records = int64_t(store.records().size());
  result.shards = int64_t(store.num_shards());
}

}  // namespace

StoreCheck verify_store(const std::string& dir) {
  StoreCheck result;
  try {
    check(dir, result);
    result.ok = true;
  } catch (const std::exception& e) {
    result.ok = false;
    result.problem = e.what();
  }
  return result;
}

}  // namespace actcap
