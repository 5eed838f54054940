#pragma once
// The numbers `actcap metrics` reports for two models run on the same tokens, computed in float64 from the fp32
// activations the engine delivers:
//   logit KL(A‖B) per position t = sum_v pA_t(v) (log pA_t(v) - log pB_t(v)), log-softmax taken stably
//     (x - max - log sum exp(x - max));
//   surprisal of each model at position t = -log p_t(token_{t+1}), in nats (the last position has no next token);
//   hidden-state cosine per position = a·b / sqrt(‖a‖²‖b‖²), averaged over positions (positions where either
//     vector is zero are left out);
//   residual RMS = sqrt(mean of the squares) over every position and channel.
// A model against itself gives exactly KL 0 and cosine 1 (sqrt(x·x) is exactly |x| in IEEE arithmetic).
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace actcap {

struct LogitMetrics {
  std::vector<double> kl;                      // per position, T values
  std::vector<double> surprisal_a, surprisal_b;  // per position but the last, T - 1 values, nats
};

// logits_a, logits_b: [T, V] F32; token_ids: the T tokens. Throws actcap::Error when the shapes differ.
LogitMetrics logit_metrics(const TensorView& logits_a, const TensorView& logits_b, std::span<const int32_t> token_ids);

// a, b: [T, d] F32 hidden states of one layer. nullopt when the widths differ or no position has two non-zero
// vectors.
std::optional<double> mean_cosine(const TensorView& a, const TensorView& b);

// sqrt(mean(x²)) over every element of a [T, d] tensor (0 for an empty one).
double rms(const TensorView& hidden);

// The mean of `values`, nullopt when empty.
std::optional<double> mean_of(std::span<const double> values);

}  // namespace actcap
