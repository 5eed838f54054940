#include "capture/store_reader.h"

#include <algorithm>
#include <filesystem>

#include "capture/store_format.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace actcap {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Every line of an index file as a JSON object with an integer "record", strictly increasing.
std::vector<json> read_index(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<json> lines;
  size_t begin = 0;
  int64_t previous = -1;
  while (begin < text.size()) {
    const size_t line_number = lines.size() + 1;
    size_t nl = text.find('\n', begin);
    if (nl == std::string::npos) fail("{}: line {} is truncated (no end of line)", path, line_number);
    json j = json::parse(std::string_view(text).substr(begin, nl - begin), nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("{}: line {} is not a JSON object", path, line_number);
    if (!j.contains("record") || !j["record"].is_number_integer())
      fail("{}: line {} has no integer \"record\"", path, line_number);
    const int64_t record = j["record"].get<int64_t>();
    if (record == previous) fail("{}: line {}: record {} appears twice", path, line_number, record);
    if (record < previous) fail("{}: line {}: record {} comes after record {}", path, line_number, record, previous);
    previous = record;
    lines.push_back(std::move(j));
    begin = nl + 1;
  }
  return lines;
}

}  // namespace

StoreReader::StoreReader(const std::string& dir, StoreReadOptions options) : dir_(dir), options_(options) {
  const std::string manifest_path = (fs::path(dir) / store::kManifestFile).string();
  if (!fs::is_directory(dir)) fail("{}: not a folder", dir);
  manifest_ = json::parse(read_file(manifest_path), nullptr, false);
  if (manifest_.is_discarded() || !manifest_.is_object()) fail("{}: not valid JSON", manifest_path);
  try {  // value() throws a type_error for a key of another type (found by fuzz_store_reader)
    if (manifest_.value("format", "") != store::kFormat) fail("{}: not an actcap store manifest", manifest_path);
    if (manifest_.value("format_version", json()) != store::kFormatVersion)
      fail("{}: unsupported format_version {}", manifest_path, manifest_.value("format_version", json()).dump());
    layout_ = parse_store_layout(manifest_.at("layout").get<std::string>());
    dtype_ = parse_dtype(manifest_.at("dtype").get<std::string>());
    sites_ = manifest_.at("sites").get<std::vector<std::string>>();
    for (const auto& shard : manifest_.at("shards")) {
      shard_files_.push_back(shard.at("file").get<std::string>());
      shard.at("sha256").get<std::string>();
      // Checked first: converting a float such as 1e300 to an integer is undefined (found by fuzz_store_reader).
      if (!shard.at("bytes").is_number_unsigned()) fail("{}: shard {} has no byte count", manifest_path, shard_files_.back());
      if (!shard_by_file_.emplace(shard_files_.back(), shard_files_.size() - 1).second)
        fail("{}: shard {} is listed twice", manifest_path, shard_files_.back());
    }
    if (!manifest_.at("complete").get<bool>())
      fail("{}: the store is incomplete (its capture was interrupted: continue it with --resume)", manifest_path);
  } catch (const json::exception& e) {
    fail("{}: malformed manifest: {}", manifest_path, e.what());
  }
  shards_.resize(shard_files_.size());

  const std::string records_path = (fs::path(dir) / store::kRecordsFile).string();
  const std::string metadata_path = (fs::path(dir) / store::kMetadataFile).string();
  records_ = read_index(records_path);
  metadata_ = read_index(metadata_path);
  if (records_.size() != metadata_.size())
    fail("{}: {} records, but {} has {}", metadata_path, metadata_.size(), records_path, records_.size());
  for (size_t i = 0; i < records_.size(); ++i) {
    if (metadata_[i]["record"] != records_[i]["record"])
      fail("{}: line {} is record {}, but line {} of {} is record {}", metadata_path, i + 1,
           metadata_[i]["record"].dump(), i + 1, records_path, records_[i]["record"].dump());
    const json& shard = metadata_[i].contains("shard") ? metadata_[i]["shard"] : json();
    if (!shard.is_string() || !shard_by_file_.count(shard.get<std::string>()))
      fail("{}: line {}: shard {} is not in {}", metadata_path, i + 1, shard.dump(), store::kManifestFile);
    index_.emplace(records_[i]["record"].get<int64_t>(), i);
  }
}

StoreReader::~StoreReader() = default;

size_t StoreReader::index_of(int64_t record) const {
  auto it = index_.find(record);
  if (it == index_.end()) fail("{}: no record {}", dir_, record);
  return it->second;
}

const json& StoreReader::record(int64_t record) const { return records_[index_of(record)]; }

const SafetensorsFile& StoreReader::shard(size_t index) const {
  std::lock_guard<std::mutex> lock(shards_mutex_);
  auto& slot = shards_.at(index);
  if (!slot) slot = std::make_unique<SafetensorsFile>((fs::path(dir_) / shard_files_[index]).string());
  return *slot;
}

TensorView StoreReader::view(int64_t record, const std::string& site) const {
  if (std::find(sites_.begin(), sites_.end(), site) == sites_.end()) fail("{}: the store has no site '{}'", dir_, site);
  const json& m = metadata_[index_of(record)];
  const SafetensorsFile& file = shard(shard_by_file_.at(m["shard"].get<std::string>()));
  if (layout_ == StoreLayout::PerRecord) return file.view(store::record_tensor_name(record, site));
  TensorView rows = file.view(site);
  int64_t begin = 0, end = 0;
  try {
    const json& span = m.at("token_span");
    if (!span.at(0).is_number_integer() || !span.at(1).is_number_integer()) throw std::invalid_argument("not integers");
    begin = span.at(0).get<int64_t>();
    end = span.at(1).get<int64_t>();
  } catch (const std::exception&) {
    fail("{}: record {} has a malformed token_span", dir_, record);
  }
  if (rows.shape.empty() || begin < 0 || begin > end || end > rows.shape[0])
    fail("{}: record {} token_span [{}, {}] is outside {} {}", file.path(), record, begin, end, site, shape_string(rows.shape));
  const size_t row_bytes = rows.shape[0] ? rows.nbytes() / size_t(rows.shape[0]) : 0;
  TensorView out = rows;
  out.data = static_cast<const uint8_t*>(rows.data) + size_t(begin) * row_bytes;
  out.shape[0] = end - begin;
  return out;
}

Tensor StoreReader::read_f32(int64_t record, const std::string& site) const { return Tensor::to_f32(view(record, site)); }

std::vector<StoreReader::SiteInfo> StoreReader::site_infos() const {
  std::vector<SiteInfo> out;
  for (const auto& site : sites_) {
    SiteInfo info{site, {}, 0, 0};
    bool first = true;
    for (const auto& r : records_) {
      const int64_t record = r["record"].get<int64_t>();
      TensorView v = view(record, site);
      if (first) {
        info.shape = v.shape;
        first = false;
      } else if (info.shape.size() != v.shape.size()) {
        info.shape.assign(std::max(info.shape.size(), v.shape.size()), -1);
      } else {
        for (size_t d = 0; d < v.shape.size(); ++d)
          if (info.shape[d] != v.shape[d]) info.shape[d] = -1;
      }
      info.rows += int64_t(r.value("positions", json::array()).size());
      info.bytes += v.nbytes();
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace actcap
