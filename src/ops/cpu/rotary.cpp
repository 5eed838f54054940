// Rotary position embeddings (HF's apply_rotary_pos_emb with rotate_half), full or partial, with LongRoPE's
// cos/sin scaling. Each row is computed by one thread from its own position.
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops::cpu {

void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position,
                  int64_t rotary_dims, const float* inv_freq, float attention_scaling) {
  const int64_t half = rotary_dims / 2;
  constexpr int64_t ROW_GRAIN = 16;
  ThreadPool::global().parallel_for(0, rows, ROW_GRAIN, [&](int64_t begin, int64_t end) {
    std::vector<float> table(size_t(2 * half));
    float* cos = table.data();
    float* sin = cos + half;
    for (int64_t r = begin; r < end; ++r) {
      const float position = float(first_position + r);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = position * inv_freq[i];
        cos[i] = std::cos(angle) * attention_scaling;
        sin[i] = std::sin(angle) * attention_scaling;
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (r * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cos[i] - b * sin[i];
          v[i + half] = b * cos[i] + a * sin[i];
        }
      }
    }
  });
}

}  // namespace actcap::ops::cpu
