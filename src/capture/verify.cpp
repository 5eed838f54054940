#include "capture/verify.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "capture/store_format.h"
#include "capture/store_reader.h"
#include "core/error.h"
#include "core/sha256.h"

namespace actcap {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Throws actcap::Error at the first inconsistency.
void check(const std::string& dir, StoreCheck& result) {
  const StoreReader store(dir);
  const json& manifest = store.manifest();
  const std::string metadata_path = (fs::path(dir) / store::kMetadataFile).string();
  const std::string records_path = (fs::path(dir) / store::kRecordsFile).string();
  const bool per_record = store.layout() == StoreLayout::PerRecord;
  const auto& sites = store.sites();
  const json sites_json = sites;

  // Every shard is the file the manifest describes, and no other shard lies in the folder.
  std::map<std::string, std::string> sha_of;
  for (size_t k = 0; k < store.num_shards(); ++k) {
    const json& entry = manifest["shards"][k];
    const std::string file = store.shard_file(k);
    const std::string path = (fs::path(dir) / file).string();
    if (file != store::shard_file_name(int64_t(k)))
      fail("{}: shard {} is {}, expected {}", (fs::path(dir) / store::kManifestFile).string(), k, file,
           store::shard_file_name(int64_t(k)));
    if (!fs::exists(path)) fail("{}: missing (listed in {})", path, store::kManifestFile);
    const uint64_t bytes = fs::file_size(path);
    if (bytes != entry["bytes"].get<uint64_t>())
      fail("{}: {} bytes, {} says {}", path, bytes, store::kManifestFile, entry["bytes"].get<uint64_t>());
    const std::string sha = sha256_file(path);
    if (sha != entry["sha256"].get<std::string>())
      fail("{}: SHA-256 {} differs from {}'s {}", path, sha, store::kManifestFile, entry["sha256"].get<std::string>());
    sha_of[file] = sha;
    result.bytes += bytes;
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("shard-", 0) == 0 && !sha_of.count(name))
      fail("{}: not listed in {}", entry.path().string(), store::kManifestFile);
  }

  // Every index line against its record and its shard.
  std::map<std::string, int64_t> lines_per_shard;
  std::map<std::string, int64_t> next_row;  // token_stream: rows are covered in order without gaps
  size_t shard_position = 0;
  int64_t expected_record = 0;
  for (size_t i = 0; i < store.records().size(); ++i) {
    const json& r = store.records()[i];
    const json& m = store.metadata()[i];
    const int64_t record = r["record"].get<int64_t>();
    const std::string where = fmt::format("{}: line {} (record {})", metadata_path, i + 1, record);
    if (record != expected_record)
      fail("{}: line {}: record {} where record {} was expected (missing record)", records_path, i + 1, record,
           expected_record);
    ++expected_record;
    if (!r.contains("token_ids") || !r["token_ids"].is_array() || !r.contains("positions") ||
        !r["positions"].is_array() || !r.contains("n_prompt") || !r["n_prompt"].is_number_integer() ||
        !r.contains("id"))
      fail("{}: line {}: needs id, token_ids, n_prompt and positions", records_path, i + 1);
    const auto token_ids = r["token_ids"].get<std::vector<int64_t>>();
    const auto positions = r["positions"].get<std::vector<int64_t>>();
    if (r["n_prompt"].get<int64_t>() < 0 || r["n_prompt"].get<int64_t>() > int64_t(token_ids.size()))
      fail("{}: line {}: n_prompt {} for {} tokens", records_path, i + 1, r["n_prompt"].get<int64_t>(), token_ids.size());
    for (int64_t p : positions)
      if (p < 0 || p >= int64_t(token_ids.size()))
        fail("{}: line {}: position {} outside its {} tokens", records_path, i + 1, p, token_ids.size());
    if (m.value("id", json()) != r["id"]) fail("{}: id {} differs from records.jsonl's {}", where, m.value("id", json()).dump(), r["id"].dump());
    json text_sha = nullptr;
    if (r.contains("text") && r["text"].is_string()) {
      const std::string& text = r["text"].get_ref<const std::string&>();
      text_sha = sha256_hex(text.data(), text.size());
    }
    if (m.value("text_sha256", json()) != text_sha)
      fail("{}: text_sha256 {} does not match the record's text ({})", where, m.value("text_sha256", json()).dump(), text_sha.dump());
    if (m.value("sites", json()) != sites_json) fail("{}: sites differ from the manifest's", where);
    if (m.value("dtype", "") != dtype_name(store.dtype()))
      fail("{}: dtype {} differs from the manifest's {}", where, m.value("dtype", json()).dump(), dtype_name(store.dtype()));
    const std::string shard_file = m["shard"].get<std::string>();
    if (m.value("shard_sha256", "") != sha_of[shard_file])
      fail("{}: shard_sha256 {} differs from {}'s SHA-256 {}", where, m.value("shard_sha256", json()).dump(), shard_file,
           sha_of[shard_file]);
    size_t shard_index = 0;
    while (store.shard_file(shard_index) != shard_file) ++shard_index;
    if (shard_index < shard_position) fail("{}: shard {} comes after a later shard", where, shard_file);
    shard_position = shard_index;
    ++lines_per_shard[shard_file];

    const SafetensorsFile& shard = store.shard(shard_index);
    std::vector<int64_t> span;
    try {
      span = m.at("token_span").get<std::vector<int64_t>>();
    } catch (const json::exception&) {
      fail("{}: malformed token_span", where);
    }
    if (span.size() != 2 || span[1] - span[0] != int64_t(positions.size()))
      fail("{}: token_span {} does not hold its {} positions", where, m["token_span"].dump(), positions.size());
    if (per_record) {
      if (span[0] != 0) fail("{}: token_span {} should start at 0", where, m["token_span"].dump());
    } else {
      int64_t& next = next_row[shard_file];
      if (span[0] != next) fail("{}: token_span {} should start at row {}", where, m["token_span"].dump(), next);
      next = span[1];
      const TensorView index = shard.view(std::string(store::kRowIndexTensor));
      if (index.dtype != DType::I64 || index.shape.size() != 2 || index.shape[1] != 2 || span[1] > index.shape[0])
        fail("{}: {} {} {} cannot hold token_span {}", shard.path(), store::kRowIndexTensor, dtype_name(index.dtype),
             shape_string(index.shape), m["token_span"].dump());
      // After 2-byte tensors the row index need not be 8-byte aligned: read it bytewise (a misaligned int64 load
      // is undefined behaviour, caught by the sanitizer build).
      const auto rows = [data = static_cast<const uint8_t*>(index.data)](int64_t i) {
        int64_t value;
        std::memcpy(&value, data + 8 * i, 8);
        return value;
      };
      for (int64_t row = span[0]; row < span[1]; ++row)
        if (rows(2 * row) != record || rows(2 * row + 1) != positions[size_t(row - span[0])])
          fail("{}: {} row {} is ({}, {}), the index says ({}, {})", shard.path(), store::kRowIndexTensor, row,
               rows(2 * row), rows(2 * row + 1), record, positions[size_t(row - span[0])]);
    }
    if (!m.contains("offsets") || !m["offsets"].is_object() || m["offsets"].size() != sites.size())
      fail("{}: offsets must name every site", where);
    for (const auto& site : sites) {
      const std::string name = per_record ? store::record_tensor_name(record, site) : site;
      if (!shard.contains(name)) fail("{}: no tensor '{}' (record {})", shard.path(), name, record);
      const SafetensorsEntry& e = shard.entry(name);
      if (e.dtype != store.dtype())
        fail("{}: tensor '{}' is {}, the store is {}", shard.path(), name, dtype_name(e.dtype), dtype_name(store.dtype()));
      uint64_t begin = shard.data_offset() + e.begin, end = shard.data_offset() + e.end;
      if (!per_record) {
        if (e.shape.empty() || e.shape[0] < span[1])
          fail("{}: tensor '{}' {} cannot hold token_span {}", shard.path(), name, shape_string(e.shape), m["token_span"].dump());
        const uint64_t row_bytes = e.shape[0] ? (e.end - e.begin) / uint64_t(e.shape[0]) : 0;
        end = begin + uint64_t(span[1]) * row_bytes;
        begin += uint64_t(span[0]) * row_bytes;
      }
      const json expected = {begin, end};
      if (m["offsets"].value(site, json()) != expected)
        fail("{}: offsets of '{}' are {}, the shard holds it at {}", where, site, m["offsets"].value(site, json()).dump(),
             expected.dump());
    }
    result.rows += int64_t(positions.size());
  }

  // Each shard holds exactly the records indexed to it.
  for (size_t k = 0; k < store.num_shards(); ++k) {
    const std::string& file = store.shard_file(k);
    const SafetensorsFile& shard = store.shard(k);
    const int64_t lines = lines_per_shard[file];
    auto it = shard.metadata().find(std::string(store::kShardRecordsKey));
    if (it == shard.metadata().end() || it->second != std::to_string(lines))
      fail("{}: holds {} records, {} indexes {}", shard.path(), it == shard.metadata().end() ? "an unknown number of" : it->second,
           store::kMetadataFile, lines);
    const size_t expected_tensors = per_record ? size_t(lines) * sites.size() : sites.size() + 1;
    if (shard.names().size() != expected_tensors)
      fail("{}: {} tensors, the index accounts for {}", shard.path(), shard.names().size(), expected_tensors);
    if (!per_record) {
      for (const auto& site : sites)
        if (shard.entry(site).shape[0] != next_row[file])
          fail("{}: tensor '{}' has {} rows, the index covers {}", shard.path(), site, shard.entry(site).shape[0], next_row[file]);
      if (shard.entry(std::string(store::kRowIndexTensor)).shape[0] != next_row[file])
        fail("{}: {} has {} rows, the index covers {}", shard.path(), store::kRowIndexTensor,
             shard.entry(std::string(store::kRowIndexTensor)).shape[0], next_row[file]);
    }
  }
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
