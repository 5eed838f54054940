#include "capture/store_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "capture/store_diff.h"
#include "capture/store_lock.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "io/spool_file.h"

namespace actcap {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Shards up to which manifest.json is rewritten after every shard (then at most once a second).
constexpr size_t kManifestEveryShard = 64;

// Provenance that legitimately changes between the interrupted run and its resumption.
const char* const kResumeMayDiffer[] = {"command_line", "tool"};

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("{}: cannot open the folder to sync it: {}", dir, std::strerror(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) fail("{}: fsync failed: {}", dir, std::strerror(e));
}

// The files a store writes, by name (temporaries included; the lock too).
bool is_store_file(const std::string& name) {
  return name == store::kManifestFile || name == store::kRecordsFile || name == store::kMetadataFile ||
         name == store::kLockFile || name == store::kSummaryFile || store::shard_index_of(name) ||
         store::is_temporary_file(name);
}

// An append-only index file, hashed as it grows: whole lines are appended and synced; a failed append is cut
// back off.
class AppendLog {
 public:
  AppendLog() = default;
  ~AppendLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Hashes what the file already holds (resume: its kept lines), to carry the hash on as it grows.
  void open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("{}: cannot open for writing: {}", path, std::strerror(errno));
    std::vector<char> chunk(1 << 20);
    ssize_t n;
    while ((n = ::pread(fd_, chunk.data(), chunk.size(), off_t(size_))) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("{}: read failed: {}", path, std::strerror(errno));
      hash_.update(chunk.data(), size_t(n));
      size_ += uint64_t(n);
    }
  }
  void append(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    size_t left = size;
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("{}: write failed: {}", path_, std::strerror(errno));
      p += n;
      left -= size_t(n);
      size_ += uint64_t(n);
    }
    hash_.update(data, size);
  }
  void sync() {
    if (::fsync(fd_) != 0) fail("{}: fsync failed: {}", path_, std::strerror(errno));
  }
  void truncate_to(uint64_t size) {  // best effort: used while already failing (the writer stops after it)
    if (::ftruncate(fd_, off_t(size)) == 0) size_ = size;
  }
  uint64_t size() const { return size_; }
  store::IndexDigest digest() const { return {hash_.hex_digest_so_far(), size_}; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  Sha256 hash_;
};

// Reads whole lines ('\n'-terminated) of a file that may not exist (then it has none) or end in a torn line.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : in_(path, std::ios::binary) {}
  bool next(std::string& line) {
    if (!in_ || !std::getline(in_, line) || in_.eof()) return false;  // eof: no end of line, a torn line
    offset_ += line.size() + 1;
    return true;
  }
  uint64_t offset() const { return offset_; }  // after the last whole line read

 private:
  std::ifstream in_;
  uint64_t offset_ = 0;
};

// Fixed-size binary fields of a record's pending metadata, spooled until its shard is written.
template <typename T>
void put(SpoolFile& spool, const T& value) {
  spool.append(&value, sizeof(T));
}
void put_string(SpoolFile& spool, const std::string& text) {
  put(spool, uint64_t(text.size()));
  spool.append(text);
}
template <typename T>
T take(SpoolFile& spool) {
  T value;
  spool.read(&value, sizeof(T));
  return value;
}
std::string take_string(SpoolFile& spool) {
  std::string text(size_t(take<uint64_t>(spool)), '\0');
  spool.read(text.data(), text.size());
  return text;
}

// The shard being filled: its tensor data and header entries, and its records' index lines, all on disk.
struct OpenShard {
  OpenShard(const std::string& path, size_t lanes)
      : data(path, lanes), record_lines(path + fmt::format(".tmp-{}.records", ::getpid())),
        pending(path + fmt::format(".tmp-{}.pending", ::getpid())) {}
  SafetensorsSpool data;  // per_record: one lane; token_stream: one per site, then row_index
  SpoolFile record_lines;  // records.jsonl lines, final
  SpoolFile pending;       // per record: record, span, offsets within lanes, id, text sha (see write_pending)
  int64_t records = 0, rows = 0;
  uint64_t bytes = 0;  // tensor bytes (row_index included)
};

}  // namespace

struct StoreWriter::Impl {
  StoreOptions options;
  std::string dir;
  size_t dtype_bytes = 4;
  std::set<int32_t> drop_ids;
  std::optional<StoreLock> lock;

  store::Manifest manifest;
  AppendLog records_log, metadata_log;
  int64_t next_shard = 0;
  int64_t last_record = -1;
  std::unique_ptr<OpenShard> shard;
  std::chrono::steady_clock::time_point manifest_written;
  std::vector<uint8_t> scratch;  // one site's converted bytes
  bool failed = false;
  bool finished = false;

  Summary summary;
  std::vector<std::optional<Shape>> trailing;  // token_stream: per site, dims after the first

  std::string path(std::string_view name) const { return (fs::path(dir) / name).string(); }
  size_t lanes() const { return options.layout == StoreLayout::PerRecord ? 1 : options.sites.size() + 1; }
  size_t lane_of(size_t site) const { return options.layout == StoreLayout::PerRecord ? 0 : site; }

  void write_manifest(bool complete) {
    manifest.complete = complete;
    manifest.records = records_log.digest();
    manifest.metadata = metadata_log.digest();
    write_file_atomic(path(store::kManifestFile), manifest.to_text());
  }

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

  // Files named like a store's in a folder that has no manifest were not written by a store (the manifest
  // comes first): refuse rather than take them over or delete them.
  void refuse_foreign_store_files() const {
    if (fs::exists(path(store::kManifestFile))) return;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (is_store_file(name) && name != store::kLockFile && !store::is_temporary_file(name))
        fail("{}: holds {} but no {}: not a store actcap wrote (move the file away or choose another folder)", dir,
             name, store::kManifestFile);
    }
  }

  void remove_temporaries() {
    for (const auto& entry : fs::directory_iterator(dir))
      if (store::is_temporary_file(entry.path().filename().string())) fs::remove(entry.path());
  }

  // --overwrite: removes the store's own files, after checking that the folder holds nothing else.
  void remove_store() {
    const auto manifest_json = store::parse_object(read_file(path(store::kManifestFile)));
    if (!manifest_json || manifest_json->value("format", "") != store::kFormat)
      fail("{}: cannot overwrite: not an actcap store manifest", path(store::kManifestFile));
    std::vector<fs::path> owned;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (!is_store_file(name) || !entry.is_regular_file())
        fail("{}: cannot overwrite: the folder also holds {}, which is not the store's (move it away or choose "
             "another folder)",
             dir, name);
      if (name != store::kLockFile) owned.push_back(entry.path());
    }
    for (const auto& file : owned)
      if (file.filename() != store::kManifestFile) fs::remove(file);
    fs::remove(path(store::kManifestFile));  // last: until then the folder is still recognisably a store
  }

  void check_resumable(const store::Manifest& stored, const nlohmann::json& provenance, const std::string& manifest_path) {
    auto comparable = [&](StoreLayout layout, DType dtype, const std::vector<std::string>& sites, json view) {
      for (const char* key : kResumeMayDiffer) view.erase(key);
      view["layout"] = store_layout_name(layout);
      view["dtype"] = dtype_name(dtype);
      view["sites"] = sites;
      return view;
    };
    const json theirs = comparable(stored.layout, stored.dtype, stored.sites, stored.provenance);
    const json ours = comparable(options.layout, options.dtype, options.sites, provenance);
    if (auto difference = describe_difference(theirs, ours)) fail("{}: cannot resume: {}", manifest_path, *difference);
  }

  // Keeps the complete shards and their index lines; drops whatever an interruption left after them.
  void recover(std::set<int64_t>& completed) {
    const std::string manifest_path = path(store::kManifestFile);
    const store::Manifest stored = store::Manifest::parse(read_file(manifest_path), manifest_path);
    check_resumable(stored, manifest.provenance, manifest_path);
    // The original run's provenance stays: the resumed store is the store that run would have made.
    for (const char* key : kResumeMayDiffer)
      if (stored.provenance.contains(key)) manifest.provenance[key] = stored.provenance[key];
      else manifest.provenance.erase(key);

    // The index files are read a line at a time, alongside the shards: memory does not grow with the store.
    LineReader records_in(path(store::kRecordsFile)), metadata_in(path(store::kMetadataFile));
    uint64_t records_keep = 0, metadata_keep = 0;
    std::string record_line, metadata_line;
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
      if (count == 0) break;
      // The shard's index lines, if they are whole and agree with each other and with the shard.
      std::vector<store::RecordLine> records;
      std::vector<store::MetadataLine> metadata;
      int64_t previous = last_record;
      auto accept = [&] {
        if (!records_in.next(record_line) || !metadata_in.next(metadata_line)) return false;
        auto r = store::parse_object(record_line);
        auto m = store::parse_object(metadata_line);
        if (!r || !m) return false;  // a torn line
        try {
          records.push_back(store::RecordLine::from_json(*r, std::string(store::kRecordsFile)));
          metadata.push_back(store::MetadataLine::from_json(*m, std::string(store::kMetadataFile)));
        } catch (const Error&) {
          return false;
        }
        if (records.back().record != metadata.back().record || records.back().record <= previous ||
            metadata.back().shard != file || metadata.back().sites != options.sites)
          return false;
        previous = records.back().record;
        return true;
      };
      bool whole = true;
      for (size_t i = 0; i < count && whole; ++i) whole = accept();
      if (!whole) break;
      const std::string sha = sha256_file(shard_path);
      if (!std::all_of(metadata.begin(), metadata.end(), [&](const auto& m) { return m.shard_sha256 == sha; })) break;
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
          const int64_t rows = metadata[i].span_end - metadata[i].span_begin;
          for (size_t s = 0; s < options.sites.size(); ++s) {
            const std::string& site = options.sites[s];
            Shape shape;
            if (options.layout == StoreLayout::PerRecord) {
              shape = shard->entry(store::record_tensor_name(records[i].record, site)).shape;
            } else {
              shape = shard->entry(site).shape;
              shape.at(0) = rows;
            }
            noted.push_back({s, std::move(shape), rows, metadata[i].offsets[s].second - metadata[i].offsets[s].first});
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
        completed.insert(r.record);
        summary.records += 1;
        summary.tokens += int64_t(r.token_ids.size());
      }
      last_record = previous;
      records_keep = records_in.offset();
      metadata_keep = metadata_in.offset();
      manifest.shards.push_back({file, sha, uint64_t(fs::file_size(shard_path))});
    }
    summary.shards = next_shard;

    // Cut the logs back to the accepted lines and remove the shards nobody indexes (an interrupted commit's).
    auto cut = [&](std::string_view name, uint64_t keep) {
      std::string p = path(name);
      if (fs::exists(p) && fs::file_size(p) != keep) fs::resize_file(p, keep);
    };
    cut(store::kRecordsFile, records_keep);
    cut(store::kMetadataFile, metadata_keep);
    for (const auto& entry : fs::directory_iterator(dir)) {
      auto index = store::shard_index_of(entry.path().filename().string());
      if (!index || *index < next_shard) continue;
      // Only a shard this store wrote: a whole safetensors file that says so.
      bool ours = false;
      try {
        const SafetensorsFile file(entry.path().string());
        auto format = file.metadata().find("format");
        ours = format != file.metadata().end() && format->second == store::kFormat;
      } catch (const Error&) {
      }
      if (!ours)
        fail("{}: not a shard of this store, and in its way (move it away to resume)", entry.path().string());
      fs::remove(entry.path());
    }
    open_logs();
  }

  void open_logs() {
    records_log.open(path(store::kRecordsFile));
    metadata_log.open(path(store::kMetadataFile));
  }

  void open_shard() {
    shard = std::make_unique<OpenShard>(path(store::shard_file_name(next_shard)), lanes());
  }

  // Writes the open shard, then its records' index lines, then the manifest.
  void write_shard() {
    OpenShard& open = *shard;
    const std::string file = store::shard_file_name(next_shard);
    const std::string shard_path = path(file);
    const size_t n_sites = options.sites.size();
    // Where each lane starts in the data section.
    std::vector<uint64_t> lane_base(lanes(), 0);
    for (size_t lane = 1; lane < lanes(); ++lane) lane_base[lane] = lane_base[lane - 1] + open.data.lane_bytes(lane - 1);
    if (options.layout == StoreLayout::TokenStream) {
      for (size_t s = 0; s < n_sites; ++s) {
        Shape shape{open.rows};
        shape.insert(shape.end(), trailing[s]->begin(), trailing[s]->end());
        open.data.add_tensor(options.sites[s], options.dtype, shape);
      }
      open.data.add_tensor(std::string(store::kRowIndexTensor), DType::I64, {open.rows, 2});
    }
    const auto written = open.data.commit({{"format", std::string(store::kFormat)},
                                           {"layout", std::string(store_layout_name(options.layout))},
                                           {std::string(store::kShardRecordsKey), std::to_string(open.records)}});

    const uint64_t records_size = records_log.size(), metadata_size = metadata_log.size();
    try {
      fsync_dir(dir);
      open.record_lines.read_back([&](const uint8_t* data, size_t n) { records_log.append(data, n); });
      store::MetadataLine m;
      m.sites = options.sites;
      m.dtype = options.dtype;
      m.shard = file;
      m.shard_sha256 = written.sha256;
      m.offsets.resize(n_sites);
      std::string lines;
      open.pending.rewind();
      for (int64_t r = 0; r < open.records; ++r) {
        m.record = take<int64_t>(open.pending);
        m.span_begin = take<int64_t>(open.pending);
        m.span_end = take<int64_t>(open.pending);
        for (size_t s = 0; s < n_sites; ++s) {
          const uint64_t base = written.data_offset + lane_base[lane_of(s)];
          m.offsets[s].first = base + take<uint64_t>(open.pending);
          m.offsets[s].second = base + take<uint64_t>(open.pending);
        }
        m.id = take_string(open.pending);
        const bool has_text = take<uint8_t>(open.pending) != 0;
        m.text_sha256.reset();
        if (has_text) m.text_sha256 = take_string(open.pending);
        lines += m.to_line();
        if (lines.size() >= (1u << 20) || r + 1 == open.records) {
          metadata_log.append(lines.data(), lines.size());
          lines.clear();
        }
      }
      records_log.sync();
      metadata_log.sync();
    } catch (const Error&) {
      // Leave the store as it was before this shard.
      records_log.truncate_to(records_size);
      metadata_log.truncate_to(metadata_size);
      std::remove(shard_path.c_str());
      throw;
    }
    manifest.shards.push_back({file, written.sha256, written.file_bytes});
    ++next_shard;
    summary.shards = next_shard;
    summary.bytes_written += written.file_bytes + (records_log.size() - records_size) + (metadata_log.size() - metadata_size);
    shard.reset();
    // The manifest lists every shard, so rewriting it after each one would be quadratic in the shard count:
    // past the first few it is rewritten at most once a second. Nothing depends on it being current before
    // finish(): resume finds the complete shards from the shards and index lines themselves.
    const auto now = std::chrono::steady_clock::now();
    if (manifest.shards.size() <= kManifestEveryShard || now - manifest_written >= std::chrono::seconds(1)) {
      write_manifest(false);
      manifest_written = now;
    }
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
  if (options.resume && options.overwrite) fail("{}: resume and overwrite exclude each other", options.dir);
  if (!manifest.is_object()) fail("{}: the store's provenance must be a JSON object", options.dir);
  w.dtype_bytes = dtype_size(options.dtype);
  w.drop_ids.insert(options.drop_token_ids.begin(), options.drop_token_ids.end());
  w.trailing.resize(options.sites.size());
  w.options = std::move(options);
  w.manifest.layout = w.options.layout;
  w.manifest.dtype = w.options.dtype;
  w.manifest.sites = w.options.sites;
  for (auto& [key, value] : manifest.items())
    if (!store::Manifest::is_format_key(key)) w.manifest.provenance[key] = value;

  std::error_code ec;
  fs::create_directories(w.dir, ec);
  if (ec || !fs::is_directory(w.dir)) fail("{}: cannot create the output folder: {}", w.dir, ec ? ec.message() : "not a folder");
  try {
    w.lock.emplace(w.dir, StoreLock::Mode::Exclusive);
    w.refuse_foreign_store_files();
    bool existing = fs::exists(w.path(store::kManifestFile));
    if (existing && w.options.overwrite) {
      w.remove_store();
      existing = false;
    }
    if (existing && !w.options.resume)
      fail("{}: already holds a capture store (continue it with --resume, replace it with --overwrite, or choose "
           "another folder)",
           w.dir);
    w.remove_temporaries();
    fs::remove(w.path(store::kSummaryFile));
    if (existing) {
      w.recover(completed_);
      w.write_manifest(false);  // names the kept index lines (and upgrades a version-1 store)
    } else {
      // A fresh store: its manifest comes first, so that the folder is recognisably a store before anything else.
      w.write_manifest(false);
      w.open_logs();
    }
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

  store::RecordLine line;
  line.record = info.record;
  line.id = info.id;
  line.token_ids = info.token_ids;
  line.n_prompt = info.n_prompt;
  line.extra = info.extra;
  for (size_t i : kept) line.positions.push_back(info.positions[i]);
  std::vector<Shape> shapes;
  uint64_t record_bytes = 0;
  for (const auto& [name, t] : sites) {
    Shape shape = t.shape();
    if (dropping) shape[0] = int64_t(kept.size());
    record_bytes += uint64_t(num_elements(shape)) * w.dtype_bytes;
    shapes.push_back(std::move(shape));
  }
  const bool token_stream = w.options.layout == StoreLayout::TokenStream;
  if (token_stream) record_bytes += line.positions.size() * 2 * sizeof(int64_t);

  w.writing([&] {
    if (w.shard && w.shard->records > 0 && w.shard->bytes + record_bytes > w.options.shard_bytes) w.write_shard();
    if (!w.shard) w.open_shard();
    OpenShard& open = *w.shard;
    const int64_t rows = int64_t(line.positions.size());
    put(open.pending, info.record);
    put(open.pending, token_stream ? open.rows : int64_t(0));
    put(open.pending, token_stream ? open.rows + rows : rows);
    for (size_t s = 0; s < sites.size(); ++s) {
      const Tensor& t = sites[s].second;
      w.scratch.resize(size_t(num_elements(shapes[s])) * w.dtype_bytes);
      if (!dropping || kept.size() == info.positions.size()) {
        convert_from_f32(t.f32(), w.options.dtype, w.scratch.data(), size_t(t.numel()));
      } else {
        const size_t row = t.dim(0) ? size_t(t.numel() / t.dim(0)) : 0;
        for (size_t k = 0; k < kept.size(); ++k)
          convert_from_f32(t.f32() + kept[k] * row, w.options.dtype, w.scratch.data() + k * row * w.dtype_bytes, row);
      }
      const size_t lane = w.lane_of(s);
      const uint64_t begin = open.data.lane_bytes(lane);
      open.data.append(lane, w.scratch.data(), w.scratch.size());
      if (!token_stream) open.data.add_tensor(store::record_tensor_name(info.record, names[s]), w.options.dtype, shapes[s]);
      put(open.pending, begin);
      put(open.pending, begin + uint64_t(w.scratch.size()));
      if (token_stream && !w.trailing[s]) w.trailing[s] = Shape(t.shape().begin() + 1, t.shape().end());
      w.note_site(s, shapes[s], rows, w.scratch.size());
    }
    if (token_stream)
      for (int64_t position : line.positions) {
        const int64_t row[2] = {info.record, position};
        open.data.append(w.lanes() - 1, row, sizeof(row));
      }
    put_string(open.pending, info.id);
    const std::string* text = line.text();
    put(open.pending, uint8_t(text != nullptr));
    if (text) put_string(open.pending, sha256_hex(text->data(), text->size()));
    open.record_lines.append(line.to_line());
    open.records += 1;
    open.rows += rows;
    open.bytes += record_bytes;
  });
  w.summary.records += 1;
  w.summary.tokens += int64_t(info.token_ids.size());
  w.last_record = info.record;
}

void StoreWriter::finish() {
  Impl& w = *impl_;
  w.check_usable();
  w.writing([&] {
    if (w.shard && w.shard->records > 0) w.write_shard();
    w.write_manifest(true);
    fsync_dir(w.dir);
    w.finished = true;
  });
}

StoreWriter::Summary StoreWriter::summary() const { return impl_->summary; }

uint64_t StoreWriter::buffered_bytes() const { return impl_->shard ? impl_->shard->bytes : 0; }

}  // namespace actcap
