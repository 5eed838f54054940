#pragma once
// Shared helpers for the capture store tests: deterministic records and folder comparison.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "capture/store_writer.h"
#include "core/atomic_file.h"
#include "core/tensor.h"

namespace actcap::store_test {

namespace fs = std::filesystem;

inline const std::vector<std::string> kSites = {"hidden_states.0", "blocks.0.hook_attn_out"};
inline constexpr int32_t kBos = 50256;

// A fresh folder under the system temp folder, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("actcap-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline int64_t rows_of(int64_t record) { return 1 + (record * 7) % 5; }

// The captured activations of a record: [T, 8] and [T, 2, 3], values that exercise rounding.
inline std::vector<std::pair<std::string, Tensor>> sites_of(int64_t record) {
  const int64_t t = rows_of(record);
  std::vector<std::pair<std::string, Tensor>> sites;
  sites.emplace_back(kSites[0], Tensor({t, 8}));
  sites.emplace_back(kSites[1], Tensor({t, 2, 3}));
  for (size_t s = 0; s < sites.size(); ++s) {
    float* v = sites[s].second.f32();
    for (int64_t i = 0; i < sites[s].second.numel(); ++i)
      v[i] = float(std::sin(double(record * 1000 + int64_t(s) * 100 + i)) * std::pow(10.0, double(i % 7) - 3.0));
  }
  return sites;
}

// Prompt of T tokens (position 0 is BOS for even records, token 3 appears at position 1 of records % 3 == 0)
// plus two generated tokens; every prompt position is captured.
inline RecordInfo info_of(int64_t record) {
  const int64_t t = rows_of(record);
  RecordInfo info;
  info.record = record;
  info.id = "id-" + std::to_string(record);
  for (int64_t i = 0; i < t + 2; ++i) info.token_ids.push_back(int32_t(100 + record * 10 + i));
  if (record % 2 == 0) info.token_ids[0] = kBos;
  if (record % 3 == 0 && t > 1) info.token_ids[1] = 3;
  info.n_prompt = int(t);
  for (int64_t i = 0; i < t; ++i) info.positions.push_back(i);
  info.extra = {{"text", "prompt " + std::to_string(record)}, {"generated_text", " g"}};
  return info;
}

inline nlohmann::json test_manifest() {
  return {{"model", {{"path", "/models/tiny"}, {"model_type", "gpt2"}}},
          {"seed", 7},
          {"command_line", "actcap capture --out x"},
          {"tool", {{"name", "actcap"}, {"version", "test"}}}};
}

inline StoreOptions options_for(const std::string& dir, StoreLayout layout = StoreLayout::PerRecord,
                                DType dtype = DType::F32, uint64_t shard_bytes = 400) {
  StoreOptions o;
  o.dir = dir;
  o.layout = layout;
  o.dtype = dtype;
  o.sites = kSites;
  o.shard_bytes = shard_bytes;
  return o;
}

// Writes records [0, n) not yet completed, then finishes.
inline StoreWriter::Summary write_store(StoreOptions options, int64_t n, nlohmann::json manifest = test_manifest()) {
  StoreWriter writer(std::move(options), std::move(manifest));
  for (int64_t r = 0; r < n; ++r)
    if (!writer.completed_records().count(r)) writer.add_record(info_of(r), sites_of(r));
  writer.finish();
  return writer.summary();
}

// Every file of a folder, by name, with its contents (but the store lock's, which names its last holder).
inline std::map<std::string, std::string> folder_contents(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != ".lock") files[entry.path().filename().string()] = read_file(entry.path().string());
  return files;
}

inline nlohmann::json read_manifest(const std::string& dir) { return nlohmann::json::parse(read_file(dir + "/manifest.json")); }
inline int64_t manifest_shard_count(const std::string& dir) { return int64_t(read_manifest(dir)["shards"].size()); }
inline bool manifest_complete(const std::string& dir) { return read_manifest(dir)["complete"].get<bool>(); }

}  // namespace actcap::store_test
