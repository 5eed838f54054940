#include "capture/batching.h"

#include "core/error.h"

namespace actcap {

TokenBudgetBatcher::TokenBudgetBatcher(int64_t budget) : budget_(budget) {
  if (budget <= 0) fail("--batch-tokens must be positive, got {}", budget);
}

bool TokenBudgetBatcher::add(int64_t tokens) {
  bool closes = records_ > 0 && tokens_ + tokens > budget_;
  if (closes) tokens_ = records_ = 0;
  tokens_ += tokens;
  ++records_;
  return closes;
}

std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<int64_t>& tokens, int64_t budget) {
  TokenBudgetBatcher batcher(budget);
  std::vector<std::pair<size_t, size_t>> batches;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (batcher.add(tokens[i]) || batches.empty()) batches.push_back({i, i});
    batches.back().second = i + 1;
  }
  return batches;
}

}  // namespace actcap
