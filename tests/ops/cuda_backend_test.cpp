// The CUDA backend against the CPU backend: the same random inputs through every op. fp32 must agree to 1e-5
// relative; bf16/fp16 runs get the inputs as the GPU holds them (rounded to the dtype) on the CPU too, so the
// remaining differences are the intermediate and output roundings of a 16-bit run.
#include <gtest/gtest.h>

#include "../gpu_test_util.h"
#include "ops/backend.h"

#ifdef ACTCAP_HAVE_CUDA

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace actcap::ops {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = uniform(rng);
  return v;
}

// The values as a backend of `dtype` stores them.
std::vector<float> rounded(std::vector<float> v, DType dtype) {
  if (dtype == DType::F32) return v;
  std::vector<uint16_t> bits(v.size());
  convert_from_f32(v.data(), dtype, bits.data(), v.size());
  convert_to_f32(bits.data(), dtype, v.data(), v.size());
  return v;
}

// Every |gpu - cpu| within tol * (|cpu| + rms(cpu)): relative, with an rms floor for values near zero.
void expect_close(const std::vector<float>& gpu, const std::vector<float>& cpu, double tol, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  double sq = 0;
  for (float c : cpu) sq += double(c) * c;
  const double rms = cpu.empty() ? 0.0 : std::sqrt(sq / double(cpu.size()));
  size_t bad = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double err = std::fabs(double(gpu[i]) - double(cpu[i]));
    if (!(err <= tol * (std::fabs(double(cpu[i])) + rms))) {
      if (bad < 5) ADD_FAILURE() << what << "[" << i << "]: gpu " << gpu[i] << ", cpu " << cpu[i];
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << cpu.size() << " values differ (rms " << rms << ")";
}

// A batch of three sequences of different lengths, continuing caches of different lengths.
ForwardBatch three_sequence_batch(int64_t vocab) {
  ForwardBatch batch;
  const int64_t rows[] = {5, 1, 40}, first_positions[] = {0, 7, 3};
  std::mt19937 rng(11);
  int64_t row = 0;
  for (int i = 0; i < 3; ++i) {
    batch.sequences.push_back(BatchSequence{row, rows[i], first_positions[i]});
    for (int64_t r = 0; r < rows[i]; ++r) batch.token_ids.push_back(int32_t(rng() % uint32_t(vocab)));
    row += rows[i];
  }
  return batch;
}

class CudaBackendTest : public testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    ACTCAP_SKIP_WITHOUT_GPU();
    cpu_ = make_cpu_backend();
    BackendOptions options;
    options.device = Device{Device::Type::Cuda, 0};
    options.dtype = GetParam();
    options.capture_buffer_bytes = size_t(1) << 20;  // small, so that large captures are split
    gpu_ = make_cuda_backend(options);
  }

  DType dtype() const { return GetParam(); }
  double tolerance() const {
    switch (dtype()) {
      case DType::BF16:
        return 3e-2;
      case DType::F16:
        return 5e-3;
      default:
        return 1e-5;
    }
  }
  // The inputs both backends see: rounded to the GPU's dtype.
  std::vector<float> inputs(size_t n, uint32_t seed, float scale = 1.0f) const {
    return rounded(random_values(n, seed, scale), dtype());
  }

  static const void* put(Backend& b, const std::vector<float>& v) {
    return b.weight(TensorView{v.data(), DType::F32, {int64_t(v.size())}});
  }
  // Writable backend memory holding v.
  static Buffer writable(Backend& b, const std::vector<float>& v) {
    const int64_t n = int64_t(v.size());
    Buffer buffer = b.allocate(n);
    b.copy_rows(buffer.data(), n, put(b, v), n, n, 1);
    return buffer;
  }
  static std::vector<float> read(Backend& b, const Buffer& buffer, int64_t elements) {
    return b.to_host(buffer.data(), elements);
  }

  // Runs fn on both backends and compares what it returns.
  template <typename Fn>
  void compare(const std::string& what, Fn fn, double tol = -1) {
    const std::vector<float> expected = fn(*cpu_);
    const std::vector<float> got = fn(*gpu_);
    expect_close(got, expected, tol < 0 ? tolerance() : tol, what + " (" + std::string(dtype_name(dtype())) + ")");
  }

  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_P(CudaBackendTest, ReportsItsDeviceAndDtype) {
  EXPECT_EQ(gpu_->device().name(), "cuda:0");
  EXPECT_EQ(gpu_->dtype(), dtype());
}

TEST_P(CudaBackendTest, WeightsAreConvertedFromAnyHostDtype) {
  const std::vector<float> values = random_values(3000, 12, 5.0f);
  for (DType host_dtype : {DType::F32, DType::BF16, DType::F16}) {
    std::vector<uint8_t> host(values.size() * dtype_size(host_dtype));
    convert_from_f32(values.data(), host_dtype, host.data(), values.size());
    std::vector<float> expected(values.size());
    convert_to_f32(host.data(), host_dtype, expected.data(), values.size());
    expected = rounded(expected, dtype());
    const void* weight = gpu_->weight(TensorView{host.data(), host_dtype, {int64_t(values.size())}});
    EXPECT_EQ(gpu_->to_host(weight, int64_t(values.size())), expected) << dtype_name(host_dtype);
  }
}

TEST_P(CudaBackendTest, Embeddings) {
  const int64_t vocab = 50, dim = 24, positions = 64;
  const ForwardBatch batch = three_sequence_batch(vocab);
  const std::vector<float> table = inputs(size_t(vocab * dim), 1), position_table = inputs(size_t(positions * dim), 2);
  const int64_t rows = batch.rows();
  compare("embed", [&](Backend& b) {
    b.begin_batch(batch);
    Buffer out = b.allocate(rows * dim);
    b.embed(put(b, table), dim, out.data());
    return read(b, out, rows * dim);
  }, 0.0);
  compare("embed_positions", [&](Backend& b) {
    b.begin_batch(batch);
    Buffer out = b.allocate(rows * dim);
    b.embed_positions(put(b, position_table), dim, 2, out.data());
    return read(b, out, rows * dim);
  }, 0.0);
}

TEST_P(CudaBackendTest, LinearInBothLayoutsWithAndWithoutBias) {
  const int64_t rows = 37, in = 96, out = 80;
  const std::vector<float> x = inputs(size_t(rows * in), 3), w = inputs(size_t(in * out), 4, 0.2f);
  const std::vector<float> bias = inputs(size_t(out), 5);
  for (bool in_out_layout : {false, true})
    for (bool with_bias : {false, true})
      compare("linear" + std::string(in_out_layout ? " [in,out]" : " [out,in]") + (with_bias ? " + bias" : ""),
              [&](Backend& b) {
                const Linear layer{put(b, w), with_bias ? put(b, bias) : nullptr, in, out, in_out_layout};
                Buffer y = b.allocate(rows * out);
                b.linear(layer, put(b, x), rows, y.data());
                return read(b, y, rows * out);
              });
}

TEST_P(CudaBackendTest, Norms) {
  const int64_t rows = 19, dim = 300;
  const std::vector<float> x = inputs(size_t(rows * dim), 6, 3.0f), w = inputs(size_t(dim), 7), bias = inputs(size_t(dim), 8);
  compare("layer_norm", [&](Backend& b) {
    Buffer y = b.allocate(rows * dim);
    b.layer_norm(put(b, x), rows, dim, put(b, w), put(b, bias), 1e-5f, y.data());
    return read(b, y, rows * dim);
  });
  compare("layer_norm without bias", [&](Backend& b) {
    Buffer y = b.allocate(rows * dim);
    b.layer_norm(put(b, x), rows, dim, put(b, w), nullptr, 1e-5f, y.data());
    return read(b, y, rows * dim);
  });
  compare("rms_norm", [&](Backend& b) {
    Buffer y = b.allocate(rows * dim);
    b.rms_norm(put(b, x), rows, dim, put(b, w), 1e-6f, y.data());
    return read(b, y, rows * dim);
  });
  compare("rms_norm in place over heads", [&](Backend& b) {
    Buffer y = writable(b, x);
    b.rms_norm(y.data(), rows * 12, 25, put(b, w), 1e-6f, y.data());
    return read(b, y, rows * dim);
  });
}

TEST_P(CudaBackendTest, RotaryAtEachRowsPosition) {
  const ForwardBatch batch = three_sequence_batch(10);
  const int64_t heads = 3, head_dim = 16, rows = batch.rows();
  std::vector<float> inv_freq(size_t(head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, float(2 * i) / float(head_dim));
  const std::vector<float> x = inputs(size_t(rows * heads * head_dim), 9);
  compare("rotary", [&](Backend& b) {
    b.begin_batch(batch);
    Buffer y = writable(b, x);
    b.rotary(y.data(), heads, head_dim, b.f32_constant(inv_freq));
    return read(b, y, rows * heads * head_dim);
  });
}

// Partial rotary (12 of 16 dims) with LongRoPE's scaled cos/sin: the sequences ending at positions 5, 8 and 43
// straddle long_after = 7, so one launch per sequence picks its table.
TEST_P(CudaBackendTest, PartialScaledRotaryPicksTablePerSequence) {
  const ForwardBatch batch = three_sequence_batch(10);
  const int64_t heads = 3, head_dim = 16, rotary_dims = 12, rows = batch.rows();
  std::vector<float> short_freq(size_t(rotary_dims / 2)), long_freq(short_freq.size());
  for (size_t i = 0; i < short_freq.size(); ++i) {
    short_freq[i] = 1.0f / std::pow(10000.0f, float(2 * i) / float(rotary_dims));
    long_freq[i] = short_freq[i] / float(1 + i);
  }
  const std::vector<float> x = inputs(size_t(rows * heads * head_dim), 9);
  compare("partial scaled rotary", [&](Backend& b) {
    b.begin_batch(batch);
    Buffer y = writable(b, x);
    const RotaryTable table{rotary_dims, b.f32_constant(short_freq), b.f32_constant(long_freq), 7, 1.19f};
    b.rotary(y.data(), heads, head_dim, table);
    return read(b, y, rows * heads * head_dim);
  });
}

// Packed attention over three sequences (different lengths and cache lengths), with grouped-query heads, with
// and without a sliding window, and the pattern of two of the three sequences.
TEST_P(CudaBackendTest, PackedAttentionWithWindowGqaAndPattern) {
  const ForwardBatch batch = three_sequence_batch(10);
  const int64_t heads = 4, kv_heads = 2, rows = batch.rows();
  const double tol = dtype() == DType::F32 ? 1e-5 : dtype() == DType::BF16 ? 5e-2 : 1e-2;
  for (int64_t head_dim : {16, 64, 128})
    for (int64_t window : {0, 6}) {
      const AttentionShape shape{heads, kv_heads, head_dim, float(1.0 / std::sqrt(double(head_dim))), window};
      const std::vector<float> q = inputs(size_t(rows * heads * head_dim), 20, 0.5f);
      std::vector<std::vector<float>> keys, values;
      for (size_t i = 0; i < batch.sequences.size(); ++i) {
        const BatchSequence& s = batch.sequences[i];
        const size_t n = size_t((s.first_position + s.rows) * kv_heads * head_dim);
        keys.push_back(inputs(n, 30 + uint32_t(i), 0.5f));
        values.push_back(inputs(n, 40 + uint32_t(i)));
      }
      const std::string what = "attention head_dim " + std::to_string(head_dim) + " window " + std::to_string(window);
      std::vector<std::vector<float>> patterns[2];
      int run = 0;
      compare(what + " z", [&](Backend& b) {
        b.begin_batch(batch);
        std::vector<AttentionSequence> sequences;
        std::vector<Buffer> pattern_buffers;
        for (size_t i = 0; i < batch.sequences.size(); ++i) {
          const BatchSequence& s = batch.sequences[i];
          Buffer pattern;
          if (i != 1) pattern = b.allocate(s.rows * heads * (s.first_position + s.rows));
          sequences.push_back(AttentionSequence{put(b, keys[i]), put(b, values[i]), pattern.data()});
          pattern_buffers.push_back(std::move(pattern));
        }
        Buffer z = b.allocate(rows * heads * head_dim);
        b.attention(shape, put(b, q), sequences, z.data());
        for (size_t i = 0; i < batch.sequences.size(); ++i)
          if (pattern_buffers[i].data())
            patterns[run].push_back(read(b, pattern_buffers[i], int64_t(pattern_buffers[i].bytes() / dtype_size(b.dtype()))));
        ++run;
        return read(b, z, rows * heads * head_dim);
      }, tol);
      ASSERT_EQ(patterns[1].size(), patterns[0].size());
      for (size_t i = 0; i < patterns[0].size(); ++i)
        expect_close(patterns[1][i], patterns[0][i], tol, what + " pattern " + std::to_string(i));
    }
}

TEST_P(CudaBackendTest, AttentionRepeatsBitForBit) {
  const ForwardBatch batch = three_sequence_batch(10);
  const int64_t heads = 4, kv_heads = 1, head_dim = 64, rows = batch.rows();
  const AttentionShape shape{heads, kv_heads, head_dim, 0.125f, 0};
  const std::vector<float> q = inputs(size_t(rows * heads * head_dim), 50);
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    gpu_->begin_batch(batch);
    std::vector<AttentionSequence> sequences;
    for (size_t i = 0; i < batch.sequences.size(); ++i) {
      const BatchSequence& s = batch.sequences[i];
      const size_t n = size_t((s.first_position + s.rows) * kv_heads * head_dim);
      sequences.push_back(AttentionSequence{put(*gpu_, inputs(n, 60 + uint32_t(i))), put(*gpu_, inputs(n, 70 + uint32_t(i))),
                                            nullptr});
    }
    Buffer z = gpu_->allocate(rows * heads * head_dim);
    gpu_->attention(shape, put(*gpu_, q), sequences, z.data());
    runs.push_back(read(*gpu_, z, rows * heads * head_dim));
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST_P(CudaBackendTest, ActivationsAddAndCopies) {
  const int64_t n = 5000;
  const std::vector<float> a = inputs(size_t(n), 80, 4.0f), c = inputs(size_t(n), 81, 2.0f);
  for (Activation activation :
       {Activation::Silu, Activation::GeluNew, Activation::Gelu, Activation::GeluPytorchTanh, Activation::Relu}) {
    const std::string name = "activation " + std::to_string(int(activation));
    compare(name, [&](Backend& b) {
      Buffer x = writable(b, a);
      b.activate(activation, x.data(), n);
      return read(b, x, n);
    });
    compare("gated " + name, [&](Backend& b) {
      Buffer out = b.allocate(n);
      b.gated_activate(activation, put(b, a), put(b, c), out.data(), n);
      return read(b, out, n);
    });
  }
  compare("add in place", [&](Backend& b) {
    Buffer x = writable(b, a);
    b.add(x.data(), put(b, c), x.data(), n);
    return read(b, x, n);
  });
  compare("copy_rows between pitches", [&](Backend& b) {
    Buffer dst = writable(b, c);
    b.copy_rows(static_cast<char*>(dst.data()) + 3 * dtype_size(b.dtype()), 50, put(b, a), 70, 40, 60);
    return read(b, dst, n);
  }, 0.0);
  compare("upload from the host into a buffer", [&](Backend& b) {
    Buffer dst = writable(b, c);
    std::vector<float> host(a.begin(), a.begin() + 1000);
    b.upload(host.data(), 1000, static_cast<char*>(dst.data()) + 7 * dtype_size(b.dtype()));
    host.assign(host.size(), -1.0f);  // the call copied it: later changes do not reach the device
    return read(b, dst, n);
  }, 0.0);
}

TEST_P(CudaBackendTest, CaptureDeliversSnapshotsInOrder) {
  const int64_t n = 1000, big = 300000;  // big: more than half the 1 MiB pinned pool, so split into pieces
  const std::vector<float> values = inputs(size_t(n), 90), large = inputs(size_t(big), 91);
  Buffer x = writable(*gpu_, values), y = writable(*gpu_, large);
  std::mutex mutex;
  std::vector<int> order;
  std::vector<std::vector<float>> delivered;
  auto keep = [&](int id, int64_t elements) {
    return [&, id, elements](const float* host) {
      std::lock_guard lock(mutex);
      order.push_back(id);
      delivered.emplace_back(host, host + elements);
    };
  };
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < 4; ++i) {
    expected.push_back(gpu_->to_host(x.data(), n));
    gpu_->capture(x.data(), n, keep(2 * i, n));
    gpu_->add(x.data(), x.data(), x.data(), n);  // overwrites the source right after the capture call
    expected.push_back(gpu_->to_host(y.data(), big));
    gpu_->capture(y.data(), big, keep(2 * i + 1, big));
    gpu_->add(y.data(), x.data(), y.data(), n);
  }
  gpu_->synchronize();
  ASSERT_EQ(order.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(order[size_t(i)], i);
    EXPECT_EQ(delivered[size_t(i)], expected[size_t(i)]) << "capture " << i;
  }
}

TEST_P(CudaBackendTest, DeliveryErrorsComeBackFromSynchronize) {
  const std::vector<float> values = inputs(64, 92);
  Buffer x = writable(*gpu_, values);
  int later = 0;
  gpu_->capture(x.data(), 64, [](const float*) { throw Error("sink is full"); });
  gpu_->capture(x.data(), 64, [&](const float*) { ++later; });
  try {
    gpu_->synchronize();
    ADD_FAILURE() << "synchronize() did not rethrow the delivery's error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sink is full");
  }
  EXPECT_EQ(later, 0);  // deliveries after a failure are skipped until it is reported
  gpu_->capture(x.data(), 64, [&](const float* host) { later = int(host[0] == values[0]); });
  EXPECT_NO_THROW(gpu_->synchronize());
  EXPECT_EQ(later, 1);
}

// A fault on the device must come back as an error from capture() or synchronize(), never as a wait for
// staging space that a dead context will never free (the staging pool was once refilled by a stream callback,
// which does not run after a fault). In a child process: the fault ruins the CUDA context. A hang ends in
// SIGALRM, which fails the expectation.
TEST_P(CudaBackendTest, DeviceFaultIsAnErrorNotAHang) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto fault_then_capture = [this] {
    alarm(120);
    ForwardBatch batch;
    batch.token_ids = {1, 2, 3};
    batch.sequences = {BatchSequence{0, 3, 0}};
    const int64_t n = 128 * 1024;  // half the 1 MiB capture buffer of SetUp: the staging pool fills at once
    Buffer out = gpu_->allocate(n);
    try {
      gpu_->begin_batch(batch);
      gpu_->embed(reinterpret_cast<const void*>(uintptr_t{16}), 64, out.data());  // reads address 16
      for (int i = 0; i < 64; ++i) gpu_->capture(out.data(), n, [](const float*) {});
      gpu_->synchronize();
    } catch (const Error& e) {
      std::fprintf(stderr, "reported: %s\n", e.what());
      std::_Exit(3);
    }
    std::fputs("the fault was not reported\n", stderr);
    std::_Exit(0);
  };
  // Says how the child ended when it did not exit with 3 (gtest prints only its stderr).
  auto exited_with_3 = [](int status) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return true;
    if (WIFEXITED(status)) std::fprintf(stderr, "the child exited with %d\n", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) std::fprintf(stderr, "the child was killed by signal %d\n", WTERMSIG(status));
    return false;
  };
  EXPECT_EXIT(fault_then_capture(), exited_with_3, "reported: ");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaBackendTest, testing::Values(DType::F32, DType::BF16, DType::F16),
                         [](const testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

// Runs everywhere: a missing GPU is a one-line error naming the device.
TEST(CudaBackend, MissingDeviceIsAOneLineError) {
  BackendOptions options;
  options.device = Device{Device::Type::Cuda, cuda_device_count() + 3};
  try {
    make_cuda_backend(options);
    ADD_FAILURE() << "no error for a missing GPU";
  } catch (const Error& e) {
    const std::string expected = "--device cuda:" + std::to_string(cuda_device_count() + 3) +
                                 ": no such GPU (this machine has " + std::to_string(cuda_device_count()) + ")";
    EXPECT_EQ(std::string(e.what()), expected);
  }
}

}  // namespace
}  // namespace actcap::ops

#else

TEST(CudaBackend, BuiltWithoutCuda) { ACTCAP_SKIP_WITHOUT_GPU(); }

#endif
