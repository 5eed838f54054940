#pragma once
// `actcap verify`: proves a capture store whole: the manifest's own hash, every shard's and index file's SHA-256
// against the manifest, every index entry against the shard's tensors, and the two index files against each
// other. Editing any byte of any file of a (format_version 2) store fails it, naming the file.
#include <cstdint>
#include <string>

namespace actcap {

struct StoreCheck {
  bool ok = false;
  std::string problem;  // the first inconsistency found, one line naming the file
  int64_t records = 0, shards = 0, rows = 0;
  uint64_t bytes = 0;  // shard bytes
  int format_version = 0;  // 1: the index files and the manifest carry no hashes (resume upgrades the store)
};

StoreCheck verify_store(const std::string& dir);

}  // namespace actcap
