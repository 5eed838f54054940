#pragma once
// Splitting one capture into N parts (`capture --shard K/N`, MPI ranks, several devices) so that their stores
// merge into the store a single process writes.
//
// The rule: record i (in input order) weighs w_i = its prompt tokens + --max-new-tokens (what the capture will
// run), C_i = w_0 + ... + w_{i-1}, W = the total. Record i belongs to part floor(N * (C_i + w_i / 2) / W): the
// part whose 1/N of the total its midpoint falls in. Parts are therefore contiguous ranges of record numbers, in
// order, each about W/N tokens; they depend only on the inputs (and the tokenizer that counts them), the
// generation length and N, never on the machine, the device or the batch size. A part may be empty (N > records).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "capture/inputs.h"

namespace actcap {

// "K/N": part K (0-based) of N.
struct ShardSpec {
  int64_t index = 0, count = 1;
  static ShardSpec parse(std::string_view text);  // throws actcap::Error naming the option
  std::string str() const;
};

// Records [begin, end).
struct RecordRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// The N contiguous ranges of the rule above, covering [0, weights.size()).
std::vector<RecordRange> partition_records(const std::vector<int64_t>& weights, int64_t parts);

// The whole job's identity: SHA-256 of a manifest's provenance without what legitimately differs between
// the parts of one job (command_line, tool, the part itself, the device's index: cuda:0 and cuda:1 compute the
// same). Parts of one job have equal identities.
std::string job_identity(const nlohmann::json& provenance);

// Every part reads the inputs itself, which stdin cannot serve twice (nor, under mpirun, beyond rank 0).
bool reads_stdin(const std::vector<InputSource>& sources);

}  // namespace actcap
