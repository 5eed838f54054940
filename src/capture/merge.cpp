#include "capture/merge.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "capture/partition.h"
#include "capture/store_format.h"
#include "capture/store_lock.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"

namespace actcap {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Part {
  std::string dir;
  store::Manifest manifest;
  store::PartInfo info;
  std::unique_ptr<StoreLock> lock;  // shared: no capture writes the part while it is merged
};

Part open_part(const std::string& dir) {
  Part part;
  part.dir = dir;
  if (!fs::is_directory(dir)) fail("{}: not a folder", dir);
  part.lock = std::make_unique<StoreLock>(dir, StoreLock::Mode::Shared);
  const std::string path = (fs::path(dir) / store::kManifestFile).string();
  if (!fs::exists(path)) fail("{}: no {}: not a capture store", dir, store::kManifestFile);
  part.manifest = store::Manifest::parse(read_file(path), path);
  if (!part.manifest.complete) fail("{}: the part is incomplete (continue its capture with --resume)", path);
  if (part.manifest.format_version < 2) fail("{}: format_version {} has no index hashes: resume it to upgrade", path,
                                             part.manifest.format_version);
  auto info = store::PartInfo::of(part.manifest.provenance, path);
  if (!info) fail("{}: not a part-store (no \"{}\": capture it with --shard K/N)", path, store::kPartKey);
  part.info = *info;
  if (job_identity(part.manifest.provenance) != part.info.job_sha256)
    fail("{}: its provenance does not match its part's job_sha256 (the manifest was edited)", path);
  return part;
}

// The parts of one job, in order, each once, their records following on from each other.
void check_parts(const std::vector<Part>& parts) {
  const Part& first = parts.front();
  std::map<int64_t, const Part*> by_index;
  for (const Part& p : parts) {
    const std::string path = (fs::path(p.dir) / store::kManifestFile).string();
    if (p.info.job_sha256 != first.info.job_sha256 || p.info.count != first.info.count ||
        p.info.total_records != first.info.total_records)
      fail("{}: part of another job than {} (model, inputs or options differ)", path, first.dir);
    if (p.manifest.layout != first.manifest.layout || p.manifest.dtype != first.manifest.dtype ||
        p.manifest.sites != first.manifest.sites)
      fail("{}: its layout, dtype or sites differ from {}'s", path, first.dir);
    if (auto [it, fresh] = by_index.emplace(p.info.index, &p); !fresh)
      fail("{}: part {}/{} is given twice (also {})", p.dir, p.info.index, p.info.count, it->second->dir);
  }
  for (int64_t k = 0; k < first.info.count; ++k)
    if (!by_index.count(k))
      fail("{}: part {}/{} is missing (give every part of the job)", first.dir, k, first.info.count);
  int64_t next = 0;
  for (const auto& [index, p] : by_index) {
    if (p->info.first_record != next)
      fail("{}: part {}/{} starts at record {}, the parts before it end at {}", p->dir, index, p->info.count,
           p->info.first_record, next);
    next = p->info.end_record;
  }
  if (next != first.info.total_records)
    fail("{}: the parts hold {} of the job's {} records", first.dir, next, first.info.total_records);
}

// Hard link, or a kernel-side copy when the part lies on another filesystem. Returns whether it linked.
bool link_or_copy(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return true;
  const int e = errno;
  if (e != EXDEV && e != EPERM && e != EMLINK) fail("{}: cannot link into {}: {}", from, to, std::strerror(e));
  std::error_code ec;
  fs::copy_file(from, to, ec);  // libstdc++: copy_file_range/sendfile, no user-space buffer
  if (ec) fail("{}: cannot copy to {}: {}", from, to, ec.message());
  const int fd = ::open(to.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced) fail("{}: fsync failed", to);
  return false;
}

// Calls `take` with each '\n'-terminated line of an index file, after checking the whole file against the
// manifest's size and SHA-256 as it streams (a torn or edited part is refused before anything is renamed).
template <typename Take>
void stream_index(const std::string& path, const store::IndexDigest& expected, Take&& take) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
  Sha256 hash;
  uint64_t bytes = 0;
  int64_t line_number = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    if (in.eof()) fail("{}: line {} is truncated (no end of line)", path, line_number);
    line += '\n';
    hash.update(line.data(), line.size());
    bytes += line.size();
    take(line, line_number);
  }
  if (in.bad()) fail("{}: read error", path);
  if (bytes != expected.bytes || hash.hex_digest() != expected.sha256)
    fail("{}: differs from its manifest's SHA-256 and size (the file was changed)", path);
}

int64_t record_of(const std::string& line, const std::string& path, int64_t line_number) {
  auto j = store::parse_object(line);
  if (!j || !j->contains("record") || !(*j)["record"].is_number_integer())
    fail("{}: line {} has no integer \"record\"", path, line_number);
  return (*j)["record"].get<int64_t>();
}

// Writes a file of the new store, hashing what it writes.
class IndexOut {
 public:
  explicit IndexOut(const std::string& path) : file_(path) {}
  void write(const std::string& text) {
    file_.write(text);
    hash_.update(text.data(), text.size());
  }
  store::IndexDigest commit() {
    file_.commit();
    return {hash_.hex_digest(), file_.bytes_written()};
  }

 private:
  AtomicFile file_;
  Sha256 hash_;
};

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced) fail("{}: cannot sync the folder: {}", dir, std::strerror(errno));
}

// The temporary folder of the store being built: removed unless the merge completes.
struct TemporaryDir {
  std::string path;
  bool keep = false;
  ~TemporaryDir() {
    std::error_code ec;
    if (!keep) fs::remove_all(path, ec);
  }
};

}  // namespace

MergeSummary merge_stores(const std::vector<std::string>& part_dirs, const std::string& out) {
  if (part_dirs.empty()) fail("merge: give the part-stores to merge");
  if (out.empty()) fail("merge: give the merged store's folder with --out");
  if (fs::exists(out)) fail("{}: already exists (merge writes a new store: choose another folder)", out);
  std::vector<Part> parts;
  for (const auto& dir : part_dirs) parts.push_back(open_part(dir));
  check_parts(parts);
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.info.index < b.info.index; });

  const fs::path target = fs::absolute(out).lexically_normal();
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  TemporaryDir temp{target.string() + fmt::format(".tmp-{}", ::getpid())};
  fs::remove_all(temp.path, ec);
  if (!fs::create_directory(temp.path, ec) || ec) fail("{}: cannot create: {}", temp.path, ec.message());

  MergeSummary summary;
  summary.parts = int64_t(parts.size());
  store::Manifest merged;
  merged.layout = parts.front().manifest.layout;
  merged.dtype = parts.front().manifest.dtype;
  merged.sites = parts.front().manifest.sites;
  merged.provenance = parts.front().manifest.provenance;
  merged.provenance.erase(std::string(store::kPartKey));
  merged.provenance["merged"] = {{"parts", parts.front().info.count}, {"job_sha256", parts.front().info.job_sha256}};

  IndexOut records((fs::path(temp.path) / store::kRecordsFile).string());
  IndexOut metadata((fs::path(temp.path) / store::kMetadataFile).string());
  for (const Part& part : parts) {
    // The part's shards, renumbered after the previous parts'.
    std::map<std::string, std::string> renamed;
    for (const auto& shard : part.manifest.shards) {
      const std::string from = (fs::path(part.dir) / shard.file).string();
      const std::string name = store::shard_file_name(summary.shards++);
      if (!fs::is_regular_file(from) || fs::file_size(from) != shard.bytes)
        fail("{}: missing, or not the {} bytes its manifest says", from, shard.bytes);
      const bool linked = link_or_copy(from, (fs::path(temp.path) / name).string());
      ++(linked ? summary.linked : summary.copied);
      renamed[shard.file] = name;
      merged.shards.push_back({name, shard.sha256, shard.bytes});
    }
    // records.jsonl: the part's lines as they are (their numbers are already the job's).
    const std::string records_path = (fs::path(part.dir) / store::kRecordsFile).string();
    int64_t expected = part.info.first_record;
    stream_index(records_path, *part.manifest.records, [&](const std::string& line, int64_t n) {
      if (record_of(line, records_path, n) != expected)
        fail("{}: line {} is not record {}", records_path, n, expected);
      ++expected;
      records.write(line);
    });
    if (expected != part.info.end_record)
      fail("{}: holds records [{}, {}), its part says [{}, {})", records_path, part.info.first_record, expected,
           part.info.first_record, part.info.end_record);
    // metadata.jsonl: the same lines but for the new shard names.
    const std::string metadata_path = (fs::path(part.dir) / store::kMetadataFile).string();
    expected = part.info.first_record;
    stream_index(metadata_path, *part.manifest.metadata, [&](const std::string& line, int64_t n) {
      const std::string where = fmt::format("{}: line {}", metadata_path, n);
      auto j = store::parse_object(line);
      if (!j) fail("{}: not a JSON object", where);
      store::MetadataLine m = store::MetadataLine::from_json(*j, where);
      if (m.record != expected) fail("{}: is not record {}", where, expected);
      auto name = renamed.find(m.shard);
      if (name == renamed.end()) fail("{}: shard {} is not in the part's manifest", where, m.shard);
      m.shard = name->second;
      ++expected;
      metadata.write(m.to_line());
    });
    const int64_t records_in_part = part.info.end_record - part.info.first_record;
    if (expected != part.info.end_record)
      fail("{}: {} lines, records.jsonl has {}", metadata_path, expected - part.info.first_record, records_in_part);
    summary.records += records_in_part;
  }
  merged.records = records.commit();
  merged.metadata = metadata.commit();
  merged.complete = true;
  write_file_atomic((fs::path(temp.path) / store::kManifestFile).string(), merged.to_text());
  fsync_dir(temp.path);
  // Into place only now, and never over a store that appeared meanwhile.
  if (::renameat2(AT_FDCWD, temp.path.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0)
    fail("{}: cannot rename {} into place: {}", out, temp.path, std::strerror(errno));
  temp.keep = true;
  fsync_dir(target.parent_path().string());
  return summary;
}

std::string parts_folder(const std::string& out) { return out + ".parts"; }

bool already_merged(const std::string& out, bool resume) {
  if (!fs::exists(fs::path(out) / store::kManifestFile)) return false;
  if (!resume)
    fail("{}: already holds a capture store (--resume checks it is complete; remove it to capture again)", out);
  if (fs::exists(parts_folder(out)))
    fail("{}: holds a store and {} exists too: remove whichever is stale", out, parts_folder(out));
  const std::string path = (fs::path(out) / store::kManifestFile).string();
  if (!store::Manifest::parse(read_file(path), path).complete)
    fail("{}: an incomplete store that no merge wrote (merges are atomic): remove it", path);
  return true;
}

MergeSummary merge_parts(const std::vector<std::string>& parts, const std::string& out) {
  const MergeSummary summary = merge_stores(parts, out);
  fs::remove_all(parts_folder(out));
  return summary;
}

nlohmann::ordered_json merged_capture_summary(const std::vector<nlohmann::ordered_json>& parts,
                                              const MergeSummary& merged, const std::string& out, double seconds) {
  nlohmann::ordered_json s = parts.front();
  s["out"] = out;
  s["shards"] = merged.shards;
  for (const char* key : {"records", "records_this_run", "tokens", "tokens_this_run", "bytes_written"}) {
    int64_t total = 0;
    for (const auto& p : parts) total += p[key].get<int64_t>();
    s[key] = total;
  }
  for (auto& [site, info] : s["sites"].items()) {
    int64_t rows = 0, bytes = 0;
    for (const auto& p : parts)
      if (p["sites"].contains(site)) {
        rows += p["sites"][site]["rows"].get<int64_t>();
        bytes += p["sites"][site]["bytes"].get<int64_t>();
      }
    info["rows"] = rows;
    info["bytes"] = bytes;
  }
  int64_t graded = 0;
  double exact = 0, contains = 0;
  for (const auto& p : parts)
    if (p.contains("accuracy")) {
      const int64_t n = p["accuracy"]["graded"];
      graded += n;
      exact += p["accuracy"]["exact_match"].get<double>() * double(n);
      contains += p["accuracy"]["contains"].get<double>() * double(n);
    }
  if (graded > 0)
    s["accuracy"] = {{"graded", graded},
                     {"exact_match", exact / double(graded)},
                     {"contains", contains / double(graded)}};
  s["wall_seconds"] = seconds;
  s["tokens_per_second"] = seconds > 0 ? double(s["tokens_this_run"].get<int64_t>()) / seconds : 0.0;
  return s;
}

}  // namespace actcap
