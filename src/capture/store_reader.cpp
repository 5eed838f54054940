#include "capture/store_reader.h"

#include <algorithm>
#include <filesystem>
#include <functional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"

namespace actcap {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Calls `take` with every line of an index file as a JSON object with an integer "record", the records first,
// first + 1, ... in order (first is 0 except in a part-store); returns the number of lines.
size_t read_index(const std::string& path, const std::string& text, int64_t first,
                  const std::function<void(json&&)>& take) {
  size_t lines = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t line_number = lines + 1;
    size_t nl = text.find('\n', begin);
    if (nl == std::string::npos) fail("{}: line {} is truncated (no end of line)", path, line_number);
    json j = json::parse(std::string_view(text).substr(begin, nl - begin), nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("{}: line {} is not a JSON object", path, line_number);
    if (!j.contains("record") || !j["record"].is_number_integer())
      fail("{}: line {} has no integer \"record\"", path, line_number);
    const int64_t record = j["record"].get<int64_t>();
    const int64_t expected = first + int64_t(lines);
    if (record < expected) fail("{}: line {}: record {} appears twice or out of order", path, line_number, record);
    if (record > expected)
      fail("{}: line {}: record {} where record {} was expected (a record is missing)", path, line_number, record, expected);
    take(std::move(j));
    ++lines;
    begin = nl + 1;
  }
  return lines;
}

// An index file's text, checked against the manifest's size (always) and SHA-256 (when verifying).
std::string read_checked(const std::string& path, const std::optional<store::IndexDigest>& expected, bool verify) {
  std::string text = read_file(path);
  if (!expected) return text;  // format_version 1
  if (text.size() != expected->bytes)
    fail("{}: {} bytes, {} says {} (the file was changed)", path, text.size(), store::kManifestFile, expected->bytes);
  if (verify && sha256_hex(text.data(), text.size()) != expected->sha256)
    fail("{}: SHA-256 differs from {}'s (the file was edited)", path, store::kManifestFile);
  return text;
}

}  // namespace

StoreReader::StoreReader(const std::string& dir, StoreReadOptions options) : dir_(dir), options_(options) {
  const std::string manifest_path = (fs::path(dir) / store::kManifestFile).string();
  if (!fs::is_directory(dir)) fail("{}: not a folder", dir);
  lock_ = std::make_unique<StoreLock>(dir, StoreLock::Mode::Shared);
  const std::string manifest_text = read_file(manifest_path);
  format_ = store::Manifest::parse(manifest_text, manifest_path);
  manifest_ = json::parse(manifest_text);
  if (!format_.complete)
    fail("{}: the store is incomplete (its capture was interrupted: continue it with --resume)", manifest_path);
  layout_ = format_.layout;
  dtype_ = format_.dtype;
  sites_ = format_.sites;
  for (size_t k = 0; k < format_.shards.size(); ++k) {
    shard_files_.push_back(format_.shards[k].file);
    if (shard_files_.back() != store::shard_file_name(int64_t(k)))
      fail("{}: shard {} is {}, expected {}", manifest_path, k, shard_files_.back(), store::shard_file_name(int64_t(k)));
    shard_by_file_.emplace(shard_files_.back(), k);
  }
  shards_.resize(shard_files_.size());
  const auto part = store::PartInfo::of(format_.provenance, manifest_path);
  first_record_ = part ? part->first_record : 0;

  const std::string records_path = (fs::path(dir) / store::kRecordsFile).string();
  const std::string metadata_path = (fs::path(dir) / store::kMetadataFile).string();
  read_index(records_path, read_checked(records_path, format_.records, options_.verify_shards), first_record_,
             [&](json&& line) { records_.push_back(std::move(line)); });
  // Metadata lines are held typed only (not also as JSON): a store's index can be large.
  size_t previous_shard = 0;
  const size_t metadata_lines = read_index(
      metadata_path, read_checked(metadata_path, format_.metadata, options_.verify_shards), first_record_,
      [&](json&& line) {
        const size_t i = metadata_.size();
        if (i >= records_.size()) return;  // counted and refused below
        const auto record = store::RecordLine::from_json(records_[i], fmt::format("{}: line {}", records_path, i + 1));
        const std::string where = fmt::format("{}: line {} (record {})", metadata_path, i + 1, record.record);
        metadata_.push_back(store::MetadataLine::from_json(line, where));
        check_metadata(record, where, previous_shard);
      });
  if (records_.size() != metadata_lines)
    fail("{}: {} records, but {} has {}", metadata_path, metadata_lines, records_path, records_.size());
  if (part && int64_t(records_.size()) != part->end_record - part->first_record)
    fail("{}: part {}/{} should hold records [{}, {}), {} has {}", manifest_path, part->index, part->count,
         part->first_record, part->end_record, store::kRecordsFile, records_.size());
}

void StoreReader::check_metadata(const store::RecordLine& record, const std::string& where, size_t& previous_shard) {
  const store::MetadataLine& m = metadata_.back();
  if (m.id != record.id) fail("{}: id \"{}\" differs from {}'s \"{}\"", where, m.id, store::kRecordsFile, record.id);
  if (m.span_end - m.span_begin != int64_t(record.positions.size()))
    fail("{}: token_span [{}, {}] does not hold its {} positions", where, m.span_begin, m.span_end, record.positions.size());
  if (m.sites != sites_) fail("{}: sites differ from {}'s", where, store::kManifestFile);
  if (m.dtype != dtype_) fail("{}: dtype {} differs from {}'s {}", where, dtype_name(m.dtype), store::kManifestFile, dtype_name(dtype_));
  auto shard = shard_by_file_.find(m.shard);
  if (shard == shard_by_file_.end()) fail("{}: shard {} is not in {}", where, m.shard, store::kManifestFile);
  if (shard->second < previous_shard) fail("{}: shard {} comes after a later shard", where, m.shard);
  if (m.shard_sha256 != format_.shards[shard->second].sha256)
    fail("{}: shard_sha256 differs from {}'s SHA-256 of {}", where, store::kManifestFile, m.shard);
  previous_shard = shard->second;
  shard_of_.push_back(shard->second);
}

StoreReader::~StoreReader() = default;

size_t StoreReader::index_of(int64_t record) const {
  if (record < first_record_ || record - first_record_ >= int64_t(records_.size())) fail("{}: no record {}", dir_, record);
  return size_t(record - first_record_);  // records are first, first + 1, ... (checked on open)
}

const json& StoreReader::record(int64_t record) const { return records_[index_of(record)]; }

const SafetensorsFile& StoreReader::shard(size_t index) const {
  std::lock_guard<std::mutex> lock(shards_mutex_);
  auto& slot = shards_.at(index);
  if (!slot) {
    const std::string path = (fs::path(dir_) / shard_files_[index]).string();
    const store::ShardEntry& expected = format_.shards[index];
    if (!fs::exists(path)) fail("{}: missing (listed in {})", path, store::kManifestFile);
    {
      const MappedFile bytes(path);  // hashed from the same pages the shard's views will read
      if (bytes.size() != expected.bytes)
        fail("{}: {} bytes, {} says {}", path, bytes.size(), store::kManifestFile, expected.bytes);
      if (options_.verify_shards) {
        const std::string sha = sha256_hex(bytes.data(), bytes.size());
        if (sha != expected.sha256)
          fail("{}: SHA-256 {} differs from {}'s {} (the shard was changed or swapped)", path, sha, store::kManifestFile,
               expected.sha256);
      }
    }
    slot = std::make_unique<SafetensorsFile>(path);
  }
  return *slot;
}

TensorView StoreReader::view(int64_t record, const std::string& site) const {
  if (std::find(sites_.begin(), sites_.end(), site) == sites_.end()) fail("{}: the store has no site '{}'", dir_, site);
  const size_t index = index_of(record);
  const store::MetadataLine& m = metadata_[index];
  const SafetensorsFile& file = shard(shard_of_[index]);
  if (layout_ == StoreLayout::PerRecord) return file.view(store::record_tensor_name(record, site));
  TensorView rows = file.view(site);
  if (rows.shape.empty() || m.span_end > rows.shape[0])
    fail("{}: record {} token_span [{}, {}] is outside {} {}", file.path(), record, m.span_begin, m.span_end, site,
         shape_string(rows.shape));
  const size_t row_bytes = rows.shape[0] ? rows.nbytes() / size_t(rows.shape[0]) : 0;
  TensorView out = rows;
  out.data = static_cast<const uint8_t*>(rows.data) + size_t(m.span_begin) * row_bytes;
  out.shape[0] = m.span_end - m.span_begin;
  return out;
}

Tensor StoreReader::read_f32(int64_t record, const std::string& site) const { return Tensor::to_f32(view(record, site)); }

std::vector<StoreReader::SiteInfo> StoreReader::site_infos() const {
  std::vector<SiteInfo> out;
  for (const auto& site : sites_) {
    SiteInfo info{site, {}, 0, 0};
    bool first = true;
    for (size_t i = 0; i < records_.size(); ++i) {
      TensorView v = view(first_record_ + int64_t(i), site);
      if (first) {
        info.shape = v.shape;
        first = false;
      } else if (info.shape.size() != v.shape.size()) {
        info.shape.assign(std::max(info.shape.size(), v.shape.size()), -1);
      } else {
        for (size_t d = 0; d < v.shape.size(); ++d)
          if (info.shape[d] != v.shape[d]) info.shape[d] = -1;
      }
      info.rows += metadata_[i].span_end - metadata_[i].span_begin;
      info.bytes += v.nbytes();
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace actcap
