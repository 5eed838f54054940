#pragma once
// `actcap verify`: proves a capture store whole: every shard's SHA-256, every index entry against the shard's
// tensors, and the two index files against each other.
#include <cstdint>
#include <string>

namespace actcap {

struct StoreCheck {
  bool ok = false;
  std::string problem;  // the first inconsistency found, one line naming the file
  int64_t records = 0, shards = 0, rows = 0;
  uint64_t bytes = 0;  // shard bytes
};

StoreCheck verify_store(const std::string& dir);

}  // namespace actcap
