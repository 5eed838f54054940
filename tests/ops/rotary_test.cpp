// The CPU backend's rotary op against a plain double-precision rotate_half: partial rotary (the dims past
// rotary_dims untouched), LongRoPE's cos/sin scaling, and the long table chosen per sequence by its length.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ops/backend.h"

namespace actcap::ops {
namespace {

constexpr int64_t HEADS = 2, HEAD_DIM = 10;

// HF's apply_rotary_pos_emb on one head at `position`, in double.
std::vector<double> rotated(const float* head, int64_t position, int64_t rotary_dims,
                            const std::vector<float>& inv_freq, double scaling) {
  std::vector<double> out(head, head + HEAD_DIM);
  const int64_t half = rotary_dims / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double angle = double(position) * inv_freq[size_t(i)];
    const double c = std::cos(angle) * scaling, s = std::sin(angle) * scaling;
    out[size_t(i)] = head[i] * c - head[i + half] * s;
    out[size_t(i + half)] = head[i + half] * c + head[i] * s;
  }
  return out;
}

struct RotaryCase {
  std::vector<float> x, short_freq, long_freq;
  ForwardBatch batch;
};

// Two sequences: 3 new rows after 2 cached (length 5) and 4 new rows after 6 cached (length 10).
RotaryCase make_case(int64_t rotary_dims) {
  RotaryCase c;
  c.batch.sequences = {BatchSequence{0, 3, 2}, BatchSequence{3, 4, 6}};
  c.batch.token_ids.assign(7, 0);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  c.x.resize(size_t(7 * HEADS * HEAD_DIM));
  for (float& v : c.x) v = uniform(rng);
  for (int64_t i = 0; i < rotary_dims / 2; ++i) {
    c.short_freq.push_back(1.0f / std::pow(100.0f, float(2 * i) / float(rotary_dims)));
    c.long_freq.push_back(c.short_freq.back() / float(2 + i));
  }
  return c;
}

// Runs the op and checks every row against `rotated` with the table each sequence should use.
void check(const RotaryCase& c, const RotaryTable& table, const std::vector<bool>& long_per_sequence, double scaling) {
  auto backend = make_cpu_backend();
  backend->begin_batch(c.batch);
  std::vector<float> y = c.x;
  backend->rotary(y.data(), HEADS, HEAD_DIM, table);
  for (size_t q = 0; q < c.batch.sequences.size(); ++q) {
    const BatchSequence& s = c.batch.sequences[q];
    const std::vector<float>& freq = long_per_sequence[q] ? c.long_freq : c.short_freq;
    for (int64_t r = s.first_row; r < s.first_row + s.rows; ++r)
      for (int64_t h = 0; h < HEADS; ++h) {
        const int64_t at = (r * HEADS + h) * HEAD_DIM;
        const std::vector<double> want =
            rotated(c.x.data() + at, s.first_position + r - s.first_row, table.rotary_dims, freq, scaling);
        for (int64_t i = 0; i < HEAD_DIM; ++i) {
          if (i >= table.rotary_dims) EXPECT_EQ(y[size_t(at + i)], c.x[size_t(at + i)]) << "pass-through dim " << i;
          EXPECT_NEAR(y[size_t(at + i)], want[size_t(i)], 1e-6) << "sequence " << q << " row " << r << " dim " << i;
        }
      }
  }
}

TEST(CpuRotary, FullRotationByTheConvenienceOverload) {
  const RotaryCase c = make_case(HEAD_DIM);
  auto backend = make_cpu_backend();
  backend->begin_batch(c.batch);
  std::vector<float> y = c.x;
  backend->rotary(y.data(), HEADS, HEAD_DIM, backend->f32_constant(c.short_freq));
  std::vector<float> z = c.x;
  backend->rotary(z.data(), HEADS, HEAD_DIM, RotaryTable{HEAD_DIM, c.short_freq.data()});
  EXPECT_EQ(y, z);
  check(c, RotaryTable{HEAD_DIM, c.short_freq.data()}, {false, false}, 1.0);
}

TEST(CpuRotary, PartialRotationLeavesTheRestOfEachHead) {
  const RotaryCase c = make_case(4);
  check(c, RotaryTable{4, c.short_freq.data()}, {false, false}, 1.0);
}

TEST(CpuRotary, ScaledCosSinAndLongTablePerSequenceLength) {
  const RotaryCase c = make_case(6);
  // long_after 5: the first sequence (length 5) keeps the short table, the second (length 10) takes the long one
  check(c, RotaryTable{6, c.short_freq.data(), c.long_freq.data(), 5, 1.25f}, {false, true}, 1.25);
  // long_after 4: both are longer
  check(c, RotaryTable{6, c.short_freq.data(), c.long_freq.data(), 4, 1.25f}, {true, true}, 1.25);
}

}  // namespace
}  // namespace actcap::ops
