#include "analysis/metrics.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"

namespace actcap {
namespace {

// log softmax of one row of logits, in float64.
void log_softmax(const float* logits, int64_t vocab, std::vector<double>& out) {
  out.resize(size_t(vocab));
  double max = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) max = std::max(max, double(logits[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - max);
  const double log_normaliser = max + std::log(sum);
  for (int64_t v = 0; v < vocab; ++v) out[size_t(v)] = double(logits[v]) - log_normaliser;
}

}  // namespace

LogitMetrics logit_metrics(const TensorView& logits_a, const TensorView& logits_b,
                           std::span<const int32_t> token_ids) {
  if (logits_a.shape.size() != 2 || logits_a.shape != logits_b.shape)
    fail("logits of shapes {} and {} cannot be compared (both [tokens, vocabulary] and equal)",
         shape_string(logits_a.shape), shape_string(logits_b.shape));
  const int64_t positions = logits_a.shape[0], vocab = logits_a.shape[1];
  if (int64_t(token_ids.size()) != positions)
    fail("{} token ids for logits of {} positions", token_ids.size(), positions);
  for (int64_t t = 1; t < positions; ++t)
    if (token_ids[size_t(t)] < 0 || token_ids[size_t(t)] >= vocab)
      fail("token id {} is outside the vocabulary (size {})", token_ids[size_t(t)], vocab);
  LogitMetrics metrics;
  metrics.kl.resize(size_t(positions));
  metrics.surprisal_a.resize(size_t(std::max<int64_t>(positions - 1, 0)));
  metrics.surprisal_b.resize(metrics.surprisal_a.size());
  // Positions are independent: each is computed whole by one thread, so the values do not depend on the threads.
  ThreadPool::global().parallel_for(0, positions, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> log_p, log_q;
    for (int64_t t = begin; t < end; ++t) {
      log_softmax(logits_a.f32() + t * vocab, vocab, log_p);
      log_softmax(logits_b.f32() + t * vocab, vocab, log_q);
      double kl = 0;
      for (int64_t v = 0; v < vocab; ++v) kl += std::exp(log_p[size_t(v)]) * (log_p[size_t(v)] - log_q[size_t(v)]);
      metrics.kl[size_t(t)] = kl;
      if (t + 1 < positions) {
        const size_t next = size_t(token_ids[size_t(t + 1)]);
        metrics.surprisal_a[size_t(t)] = -log_p[next];
        metrics.surprisal_b[size_t(t)] = -log_q[next];
      }
    }
  });
  return metrics;
}

std::optional<double> mean_cosine(const TensorView& a, const TensorView& b) {
  if (a.shape.size() != 2 || a.shape != b.shape) return std::nullopt;
  const int64_t positions = a.shape[0], width = a.shape[1];
  double sum = 0;
  int64_t counted = 0;
  for (int64_t t = 0; t < positions; ++t) {
    const float* x = a.f32() + t * width;
    const float* y = b.f32() + t * width;
    double dot = 0, xx = 0, yy = 0;
    for (int64_t i = 0; i < width; ++i) {
      dot += double(x[i]) * double(y[i]);
      xx += double(x[i]) * double(x[i]);
      yy += double(y[i]) * double(y[i]);
    }
    if (xx == 0 || yy == 0) continue;
    sum += dot / std::sqrt(xx * yy);
    ++counted;
  }
  if (counted == 0) return std::nullopt;
  return sum / double(counted);
}

double rms(const TensorView& hidden) {
  const int64_t n = hidden.numel();
  if (n == 0) return 0;
  double sum = 0;
  const float* x = hidden.f32();
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return std::sqrt(sum / double(n));
}

std::optional<double> mean_of(std::span<const double> values) {
  if (values.empty()) return std::nullopt;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / double(values.size());
}

}  // namespace actcap
