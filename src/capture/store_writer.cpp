#include "capture/store_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "capture/store_format.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "io/safetensors.h"

namespace actcap {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string_view store_layout_name(StoreLayout layout) {
  return layout == StoreLayout::PerRecord ? "per_record" : "token_stream";
}

StoreLayout parse_store_layout(std::string_view name) {
  if (name == "per_record") return StoreLayout::PerRecord;
  if (name == "token_stream") return StoreLayout::TokenStream;
  fail("unknown store layout '{}' (expected per_record or token_stream)", name);
}

namespace {

// Keys of manifest.json that the writer owns; the rest is the caller's provenance.
const char* const kWriterKeys[] = {"format", "format_version", "layout", "dtype", "sites", "shards", "complete"};
// Provenance that legitimately changes between the interrupted run and its resumption.
const char* const kResumeMayDiffer[] = {"command_line", "tool"};

std::string dump_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("{}: cannot open the folder to sync it: {}", dir, std::strerror(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) fail("{}: fsync failed: {}", dir, std::strerror(e));
}

bool is_temp_debris(const std::string& name) {
  return name.rfind(std::string(store::kManifestFile) + ".tmp-", 0) == 0 ||
         (name.rfind("shard-", 0) == 0 && name.find(".safetensors.tmp-") != std::string::npos);
}

// The index of "shard-NNNNN.safetensors", or nullopt for any other name.
std::optional<int64_t> shard_index_of(const std::string& name) {
  if (name.size() < 6 + 12 || name.rfind("shard-", 0) != 0 || !name.ends_with(".safetensors")) return std::nullopt;
  std::string digits = name.substr(6, name.size() - 6 - 12);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  int64_t index = std::stoll(digits);
  if (store::shard_file_name(index) != name) return std::nullopt;
  return index;
}

// An append-only index file: whole lines are appended and synced; a failed append is cut back off.
class AppendLog {
 public:
  AppendLog() = default;
  ~AppendLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  void open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("{}: cannot open for writing: {}", path, std::strerror(errno));
    off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) fail("{}: cannot seek: {}", path, std::strerror(errno));
    size_ = uint64_t(end);
  }
  void append(std::string_view text) {
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("{}: write failed: {}", path_, std::strerror(errno));
      p += n;
      left -= size_t(n);
      size_ += uint64_t(n);
    }
  }
  void sync() {
    if (::fsync(fd_) != 0) fail("{}: fsync failed: {}", path_, std::strerror(errno));
  }
  void truncate_to(uint64_t size) {  // best effort: used while already failing
    if (::ftruncate(fd_, off_t(size)) == 0) size_ = size;
  }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// One record waiting for its shard.
struct PendingRecord {
  int64_t record;
  std::string id;
  json text_sha256;
  std::string record_line;           // records.jsonl line, ready
  std::vector<int64_t> positions;    // of the stored rows
  std::vector<Shape> shapes;         // per site, as stored
  std::vector<std::vector<uint8_t>> bytes;  // per site, converted to the store's dtype
  uint64_t buffered = 0;
};

// Splits a log into its complete lines (terminated by '\n'), with the byte offset after each.
std::vector<std::pair<std::string_view, uint64_t>> complete_lines(std::string_view text) {
  std::vector<std::pair<std::string_view, uint64_t>> lines;
  size_t begin = 0;
  while (true) {
    size_t nl = text.find('\n', begin);
    if (nl == std::string_view::npos) break;
    lines.emplace_back(text.substr(begin, nl - begin), uint64_t(nl + 1));
    begin = nl + 1;
  }
  return lines;
}

std::optional<json> parse_object(std::string_view line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

}  // namespace

struct StoreWriter::Impl {
  StoreOptions options;
  json provenance;
  std::string dir;
  size_t dtype_bytes = 4;
  std::set<int32_t> drop_ids;

  AppendLog records_log, metadata_log;
  json shards = json::array();
  int64_t next_shard = 0;
  int64_t last_record = -1;
  std::vector<PendingRecord> pending;
  uint64_t pending_bytes = 0;
  bool failed = false;
  bool finished = false;

  Summary summary;
  std::vector<std::optional<Shape>> trailing;  // token_stream: per site, dims after the first

  std::string path(std::string_view name) const { return (fs::path(dir) / name).string(); }

  std::string manifest_text(bool complete) const {
    json m = provenance;
    m["format"] = store::kFormat;
    m["format_version"] = store::kFormatVersion;
    m["layout"] = store_layout_name(options.layout);
    m["dtype"] = dtype_name(options.dtype);
    m["sites"] = options.sites;
    m["shards"] = shards;
    m["complete"] = complete;
    return m.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  }

  void write_manifest(bool complete) { write_file_atomic(path(store::kManifestFile), manifest_text(complete)); }

  void note_site(size_t site, const Shape& shape, int64_t rows, uint64_t bytes) {
    auto [it, first] = summary.sites.try_emplace(options.sites[site]);
    SiteSummary& s = it->second;
    if (first) {
      s.shape = shape;
    } else if (s.shape.size() != shape.size()) {
      s.shape.assign(std::max(s.shape.size(), shape.size()), -1);
    } else {
      for (size_t d = 0; d < shape.size(); ++d)
        if (s.shape[d] != shape[d]) s.shape[d] = -1;
    }
    s.rows += rows;
    s.bytes += bytes;
  }

  void remove_debris() {
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (is_temp_debris(name)) fs::remove(entry.path());
    }
  }

  bool holds_store() const {
    if (fs::exists(path(store::kManifestFile)) || fs::exists(path(store::kRecordsFile)) ||
        fs::exists(path(store::kMetadataFile)))
      return true;
    for (const auto& entry : fs::directory_iterator(dir))
      if (shard_index_of(entry.path().filename().string())) return true;
    return false;
  }

  void check_resumable(const json& stored, const std::string& manifest_path) {
    if (!stored.is_object() || stored.value("format", "") != store::kFormat)
      fail("{}: not an actcap store manifest", manifest_path);
    if (stored.value("format_version", 0) != store::kFormatVersion)
      fail("{}: unsupported format_version {}", manifest_path, stored.value("format_version", json()).dump());
    auto mismatch = [&](const std::string& key, const json& ours) {
      if (!stored.contains(key) || stored[key] != ours)
        fail("{}: cannot resume: the store has {} {}, this run asks for {}", manifest_path, key,
             stored.contains(key) ? stored[key].dump() : "none", ours.dump());
    };
    mismatch("layout", store_layout_name(options.layout));
    mismatch("dtype", dtype_name(options.dtype));
    mismatch("sites", options.sites);
    auto may_differ = [](const std::string& key) {
      for (const char* k : kResumeMayDiffer)
        if (key == k) return true;
      for (const char* k : kWriterKeys)
        if (key == k) return true;
      return false;
    };
    for (auto& [key, value] : provenance.items())
      if (!may_differ(key)) mismatch(key, value);
    for (auto& [key, value] : stored.items())
      if (!may_differ(key) && !provenance.contains(key))
        fail("{}: cannot resume: the store has {} {}, this run has none", manifest_path, key, value.dump());
  }

  // Keeps the complete shards and their index lines; drops whatever an interruption left after them.
  void recover(std::set<int64_t>& completed) {
    const std::string manifest_path = path(store::kManifestFile);
    json stored;
    if (fs::exists(manifest_path)) {
      stored = json::parse(read_file(manifest_path), nullptr, false);
      if (stored.is_discarded()) fail("{}: not valid JSON", manifest_path);
      check_resumable(stored, manifest_path);
      // The original run's provenance stays: the resumed store is the store that run would have made.
      for (const char* key : kResumeMayDiffer)
        if (stored.contains(key)) provenance[key] = stored[key];
        else provenance.erase(key);
    }
    auto read_log = [&](std::string_view name) {
      std::string p = path(name);
      return fs::exists(p) ? read_file(p) : std::string();
    };
    const std::string records_text = read_log(store::kRecordsFile);
    const std::string metadata_text = read_log(store::kMetadataFile);
    const auto record_lines = complete_lines(records_text);
    const auto metadata_lines = complete_lines(metadata_text);

    size_t line = 0;
    for (;; ++next_shard) {
      const std::string file = store::shard_file_name(next_shard);
      const std::string shard_path = path(file);
      if (!fs::exists(shard_path)) break;
      std::optional<SafetensorsFile> shard;
      try {
        shard.emplace(shard_path);
      } catch (const Error&) {
        break;
      }
      auto count_it = shard->metadata().find(std::string(store::kShardRecordsKey));
      if (count_it == shard->metadata().end()) break;
      size_t count = std::strtoull(count_it->second.c_str(), nullptr, 10);
      if (count == 0 || line + count > record_lines.size() || line + count > metadata_lines.size()) break;
      std::vector<json> records, metadata;
      bool ok = true;
      int64_t previous = last_record;
      for (size_t i = line; i < line + count && ok; ++i) {
        auto r = parse_object(record_lines[i].first);
        auto m = parse_object(metadata_lines[i].first);
        ok = r && m && r->contains("record") && (*r)["record"].is_number_integer() && m->contains("record") &&
             (*m)["record"] == (*r)["record"] && (*r)["record"].get<int64_t>() > previous &&
             m->value("shard", "") == file && m->contains("offsets") && m->contains("token_span") &&
             r->contains("token_ids") && (*r)["token_ids"].is_array();
        if (ok) {
          previous = (*r)["record"].get<int64_t>();
          records.push_back(std::move(*r));
          metadata.push_back(std::move(*m));
        }
      }
      if (!ok) break;
      const std::string sha = sha256_file(shard_path);
      if (!std::all_of(metadata.begin(), metadata.end(),
                       [&](const json& m) { return m.value("shard_sha256", "") == sha; }))
        break;
      // The shard is whole and fully indexed: account for it as if this writer had written it.
      struct Noted {
        size_t site;
        Shape shape;
        int64_t rows;
        uint64_t bytes;
      };
      std::vector<Noted> noted;
      try {
        for (size_t i = 0; i < count; ++i) {
          const int64_t record = records[i]["record"].get<int64_t>();
          const auto span = metadata[i]["token_span"].get<std::vector<int64_t>>();
          for (size_t s = 0; s < options.sites.size(); ++s) {
            const std::string& site = options.sites[s];
            const auto offsets = metadata[i]["offsets"].at(site).get<std::vector<uint64_t>>();
            Shape shape;
            if (options.layout == StoreLayout::PerRecord) {
              shape = shard->entry(store::record_tensor_name(record, site)).shape;
            } else {
              shape = shard->entry(site).shape;
              shape.at(0) = span.at(1) - span.at(0);
            }
            noted.push_back({s, std::move(shape), span.at(1) - span.at(0), offsets.at(1) - offsets.at(0)});
          }
        }
      } catch (const std::exception&) {
        break;
      }
      for (const auto& n : noted) {
        note_site(n.site, n.shape, n.rows, n.bytes);
        if (options.layout == StoreLayout::TokenStream) trailing[n.site] = Shape(n.shape.begin() + 1, n.shape.end());
      }
      for (const auto& r : records) {
        completed.insert(r["record"].get<int64_t>());
        summary.records += 1;
        summary.tokens += int64_t(r["token_ids"].size());
      }
      last_record = previous;
      line += count;
      shards.push_back({{"file", file}, {"sha256", sha}, {"bytes", uint64_t(fs::file_size(shard_path))}});
    }
    summary.shards = next_shard;

    // Cut the logs back to the accepted lines and remove shards nobody indexes.
    auto cut = [&](std::string_view name, const std::vector<std::pair<std::string_view, uint64_t>>& lines) {
      std::string p = path(name);
      uint64_t keep = line == 0 ? 0 : lines[line - 1].second;
      if (fs::exists(p) && fs::file_size(p) != keep) fs::resize_file(p, keep);
    };
    cut(store::kRecordsFile, record_lines);
    cut(store::kMetadataFile, metadata_lines);
    for (const auto& entry : fs::directory_iterator(dir)) {
      auto index = shard_index_of(entry.path().filename().string());
      if (index && *index >= next_shard) fs::remove(entry.path());
    }
  }

  // Writes the pending records as the next shard, then their index lines, then the manifest.
  void write_shard() {
    const std::string file = store::shard_file_name(next_shard);
    const std::string shard_path = path(file);
    const size_t n_sites = options.sites.size();

    std::vector<SafetensorsSource> tensors;
    // Byte ranges relative to the data section, per pending record and site.
    std::vector<std::vector<std::pair<uint64_t, uint64_t>>> ranges(pending.size(), std::vector<std::pair<uint64_t, uint64_t>>(n_sites));
    std::vector<std::pair<int64_t, int64_t>> spans(pending.size());
    std::vector<int64_t> row_index;
    uint64_t offset = 0;
    if (options.layout == StoreLayout::PerRecord) {
      for (size_t r = 0; r < pending.size(); ++r) {
        const auto& p = pending[r];
        spans[r] = {0, int64_t(p.positions.size())};
        for (size_t s = 0; s < n_sites; ++s) {
          ranges[r][s] = {offset, offset + p.bytes[s].size()};
          offset += p.bytes[s].size();
          tensors.push_back({store::record_tensor_name(p.record, options.sites[s]), options.dtype, p.shapes[s], {p.bytes[s]}});
        }
      }
    } else {
      int64_t rows = 0;
      for (size_t r = 0; r < pending.size(); ++r) {
        spans[r] = {rows, rows + int64_t(pending[r].positions.size())};
        rows = spans[r].second;
        for (int64_t position : pending[r].positions) {
          row_index.push_back(pending[r].record);
          row_index.push_back(position);
        }
      }
      for (size_t s = 0; s < n_sites; ++s) {
        SafetensorsSource t{options.sites[s], options.dtype, {rows}, {}};
        t.shape.insert(t.shape.end(), trailing[s]->begin(), trailing[s]->end());
        for (size_t r = 0; r < pending.size(); ++r) {
          const auto& b = pending[r].bytes[s];
          ranges[r][s] = {offset, offset + b.size()};
          offset += b.size();
          t.chunks.emplace_back(b);
        }
        tensors.push_back(std::move(t));
      }
      tensors.push_back({std::string(store::kRowIndexTensor), DType::I64, {rows, 2},
                         {{reinterpret_cast<const uint8_t*>(row_index.data()), row_index.size() * sizeof(int64_t)}}});
    }

    // The data is streamed from the pending buffers rather than copied into a SafetensorsWriter, so a shard
    // never needs twice its size in memory.
    const auto written = write_safetensors(shard_path,
                                           {{"format", std::string(store::kFormat)},
                                            {"layout", std::string(store_layout_name(options.layout))},
                                            {std::string(store::kShardRecordsKey), std::to_string(pending.size())}},
                                           tensors);
    const uint64_t data_offset = written.data_offset;
    const std::string& sha = written.sha256;

    std::string record_lines, metadata_lines;
    for (size_t r = 0; r < pending.size(); ++r) {
      const auto& p = pending[r];
      json offsets = json::object();
      for (size_t s = 0; s < n_sites; ++s)
        offsets[options.sites[s]] = {data_offset + ranges[r][s].first, data_offset + ranges[r][s].second};
      json m = {{"record", p.record},      {"id", p.id},
                {"text_sha256", p.text_sha256},
                {"token_span", {spans[r].first, spans[r].second}},
                {"sites", options.sites},  {"dtype", dtype_name(options.dtype)},
                {"shard", file},           {"offsets", std::move(offsets)},
                {"shard_sha256", sha}};
      record_lines += p.record_line;
      metadata_lines += dump_line(m);
    }
    const uint64_t records_size = records_log.size(), metadata_size = metadata_log.size();
    try {
      fsync_dir(dir);
      records_log.append(record_lines);
      metadata_log.append(metadata_lines);
      records_log.sync();
      metadata_log.sync();
    } catch (const Error&) {
      // Leave the store as it was before this shard.
      records_log.truncate_to(records_size);
      metadata_log.truncate_to(metadata_size);
      std::remove(shard_path.c_str());
      throw;
    }
    shards.push_back({{"file", file}, {"sha256", sha}, {"bytes", written.file_bytes}});
    ++next_shard;
    summary.shards = next_shard;
    summary.bytes_written += written.file_bytes + record_lines.size() + metadata_lines.size();
    pending.clear();
    pending_bytes = 0;
    write_manifest(false);
  }

  void check_usable() const {
    if (failed) fail("{}: the store writer stopped after an earlier write error", dir);
    if (finished) fail("{}: the store is already finished", dir);
  }

  // Runs an operation that writes to disk; after a failure the writer refuses further use.
  template <typename F>
  void writing(F&& f) {
    try {
      f();
    } catch (...) {
      failed = true;
      throw;
    }
  }
};

StoreWriter::StoreWriter(StoreOptions options, nlohmann::json manifest) : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  w.dir = options.dir;
  if (options.dtype != DType::F32 && options.dtype != DType::BF16 && options.dtype != DType::F16)
    fail("{}: a store's dtype must be F32, BF16 or F16, not {}", options.dir, dtype_name(options.dtype));
  if (options.sites.empty()) fail("{}: a store needs at least one site", options.dir);
  if (std::set<std::string>(options.sites.begin(), options.sites.end()).size() != options.sites.size())
    fail("{}: a site is listed twice", options.dir);
  if (options.layout == StoreLayout::TokenStream &&
      std::find(options.sites.begin(), options.sites.end(), store::kRowIndexTensor) != options.sites.end())
    fail("{}: a site may not be called '{}' in a token_stream store", options.dir, store::kRowIndexTensor);
  if (options.shard_bytes == 0) fail("{}: the shard size cap must be positive", options.dir);
  if (options.layout == StoreLayout::PerRecord && (options.drop_bos || !options.drop_token_ids.empty()))
    fail("{}: dropping BOS or special tokens needs the token_stream layout", options.dir);
  if (!manifest.is_object()) fail("{}: the store's provenance must be a JSON object", options.dir);
  w.dtype_bytes = dtype_size(options.dtype);
  w.drop_ids.insert(options.drop_token_ids.begin(), options.drop_token_ids.end());
  w.trailing.resize(options.sites.size());
  w.options = std::move(options);
  w.provenance = std::move(manifest);
  for (const char* key : kWriterKeys) w.provenance.erase(key);

  std::error_code ec;
  fs::create_directories(w.dir, ec);
  if (ec || !fs::is_directory(w.dir)) fail("{}: cannot create the output folder: {}", w.dir, ec ? ec.message() : "not a folder");
  try {
    const bool existing = w.holds_store();
    if (existing && !w.options.resume)
      fail("{}: already holds a capture store (continue it with --resume, or choose another folder)", w.dir);
    w.remove_debris();
    if (existing) w.recover(completed_);
    w.write_manifest(false);
    w.records_log.open(w.path(store::kRecordsFile));
    w.metadata_log.open(w.path(store::kMetadataFile));
    fsync_dir(w.dir);
  } catch (const fs::filesystem_error& e) {
    fail("{}: {}", e.path1().empty() ? w.dir : e.path1().string(), e.code().message());
  }
}

StoreWriter::~StoreWriter() = default;

void StoreWriter::add_record(const RecordInfo& info, const std::vector<std::pair<std::string, Tensor>>& sites) {
  Impl& w = *impl_;
  w.check_usable();
  const auto& names = w.options.sites;
  if (info.record <= w.last_record)
    fail("{}: record {} added after record {}: records must come in increasing order", w.dir, info.record, w.last_record);
  if (sites.size() != names.size())
    fail("{}: record {} has {} sites, the store has {}", w.dir, info.record, sites.size(), names.size());
  if (info.n_prompt < 0 || size_t(info.n_prompt) > info.token_ids.size())
    fail("{}: record {} has n_prompt {} for {} tokens", w.dir, info.record, info.n_prompt, info.token_ids.size());
  if (!info.extra.is_object()) fail("{}: record {}: extra fields must be a JSON object", w.dir, info.record);
  for (size_t s = 0; s < sites.size(); ++s) {
    const Tensor& t = sites[s].second;
    if (sites[s].first != names[s])
      fail("{}: record {} has site '{}' where the store expects '{}'", w.dir, info.record, sites[s].first, names[s]);
    if (t.dtype() != DType::F32)
      fail("{}: record {} site '{}' is {}, expected F32", w.dir, info.record, names[s], dtype_name(t.dtype()));
    if (w.options.layout == StoreLayout::TokenStream) {
      if (t.rank() < 1 || t.dim(0) != int64_t(info.positions.size()))
        fail("{}: record {} site '{}' has shape {} for {} positions", w.dir, info.record, names[s],
             shape_string(t.shape()), info.positions.size());
      Shape trailing(t.shape().begin() + 1, t.shape().end());
      if (w.trailing[s] && *w.trailing[s] != trailing)
        fail("{}: record {} site '{}' has rows of shape {}, earlier records {}: a token_stream needs the same row "
             "shape throughout",
             w.dir, info.record, names[s], shape_string(trailing), shape_string(*w.trailing[s]));
    }
  }

  // Which rows to keep (token_stream may drop BOS and special tokens).
  std::vector<size_t> kept;
  const bool dropping = w.options.drop_bos || !w.drop_ids.empty();
  for (size_t i = 0; i < info.positions.size(); ++i) {
    const int64_t position = info.positions[i];
    if (position < 0 || position >= int64_t(info.token_ids.size()))
      fail("{}: record {} has position {} outside its {} tokens", w.dir, info.record, position, info.token_ids.size());
    const int32_t token = info.token_ids[size_t(position)];
    if (dropping && ((w.options.drop_bos && position == 0 && token == w.options.bos_token_id) || w.drop_ids.count(token)))
      continue;
    kept.push_back(i);
  }

  PendingRecord p;
  p.record = info.record;
  p.id = info.id;
  for (size_t i : kept) p.positions.push_back(info.positions[i]);
  for (const auto& [name, t] : sites) {
    Shape shape = t.shape();
    if (dropping) shape[0] = int64_t(kept.size());
    p.buffered += uint64_t(num_elements(shape)) * w.dtype_bytes;
    p.shapes.push_back(std::move(shape));
  }
  if (w.options.layout == StoreLayout::TokenStream) p.buffered += p.positions.size() * 2 * sizeof(int64_t);

  if (!w.pending.empty() && w.pending_bytes + p.buffered > w.options.shard_bytes) w.writing([&] { w.write_shard(); });

  for (size_t s = 0; s < sites.size(); ++s) {
    const Tensor& t = sites[s].second;
    std::vector<uint8_t> bytes(size_t(num_elements(p.shapes[s])) * w.dtype_bytes);
    if (!dropping || kept.size() == info.positions.size()) {
      convert_from_f32(t.f32(), w.options.dtype, bytes.data(), size_t(t.numel()));
    } else {
      const size_t row = t.dim(0) ? size_t(t.numel() / t.dim(0)) : 0;
      for (size_t k = 0; k < kept.size(); ++k)
        convert_from_f32(t.f32() + kept[k] * row, w.options.dtype, bytes.data() + k * row * w.dtype_bytes, row);
    }
    if (w.options.layout == StoreLayout::TokenStream && !w.trailing[s])
      w.trailing[s] = Shape(t.shape().begin() + 1, t.shape().end());
    w.note_site(s, p.shapes[s], int64_t(p.positions.size()), bytes.size());
    p.bytes.push_back(std::move(bytes));
  }

  json line = info.extra;
  line["record"] = info.record;
  line["id"] = info.id;
  line["token_ids"] = info.token_ids;
  line["n_prompt"] = info.n_prompt;
  line["positions"] = p.positions;
  p.record_line = dump_line(line);
  if (info.extra.contains("text") && info.extra["text"].is_string()) {
    const std::string& text = info.extra["text"].get_ref<const std::string&>();
    p.text_sha256 = sha256_hex(text.data(), text.size());
  }
  w.summary.records += 1;
  w.summary.tokens += int64_t(info.token_ids.size());
  w.last_record = info.record;
  w.pending_bytes += p.buffered;
  w.pending.push_back(std::move(p));
}

void StoreWriter::finish() {
  Impl& w = *impl_;
  w.check_usable();
  w.writing([&] {
    if (!w.pending.empty()) w.write_shard();
    w.write_manifest(true);
    fsync_dir(w.dir);
    w.finished = true;
  });
}

StoreWriter::Summary StoreWriter::summary() const { return impl_->summary; }

uint64_t StoreWriter::buffered_bytes() const { return impl_->pending_bytes; }

}  // namespace actcap
