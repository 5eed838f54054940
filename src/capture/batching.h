#pragma once
// Groups consecutive records into batches by a token budget: a batch holds records while the sum of their
// token counts (prompt + tokens to generate) stays within the budget; a record larger than the budget forms a
// batch alone. Records keep their order, so the captured files do not depend on the budget or on timing.
#include <cstdint>
#include <optional>
#include <vector>

namespace actcap {

class TokenBudgetBatcher {
 public:
  explicit TokenBudgetBatcher(int64_t budget);  // throws actcap::Error unless budget > 0

  // Adds the next record's token count; returns true if the current batch was closed first, i.e. this
  // record starts a new batch (the caller flushes what it had gathered before adding it).
  bool add(int64_t tokens);
  int64_t batch_tokens() const { return tokens_; }
  int64_t batch_records() const { return records_; }

 private:
  int64_t budget_;
  int64_t tokens_ = 0, records_ = 0;
};

// The batches for a whole list of token counts, as [begin, end) index ranges.
std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<int64_t>& tokens, int64_t budget);

}  // namespace actcap
