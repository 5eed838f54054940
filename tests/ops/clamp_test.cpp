// The clamp op (OLMo's clip_qkv): torch.clamp_(x, -limit, limit) on every backend, NaN kept.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "core/dtype.h"
#include "ops/backend.h"

namespace actcap::ops {
namespace {

const float kInf = std::numeric_limits<float>::infinity();
const std::vector<float> kInput = {-9.5f, -8.0f, -7.75f, 0.0f, 3.5f, 8.0f, 8.5f, 1e30f, -kInf, kInf,
                                   std::numeric_limits<float>::quiet_NaN()};
const std::vector<float> kClamped = {-8.0f, -8.0f, -7.75f, 0.0f, 3.5f, 8.0f, 8.0f, 8.0f, -8.0f, 8.0f};

void expect_clamped(Backend& backend) {
  const int64_t n = int64_t(kInput.size());
  Buffer x = backend.allocate(n);
  backend.upload(kInput.data(), n, x.data());
  backend.clamp(x.data(), 8.0f, n);
  const std::vector<float> got = backend.to_host(x.data(), n);
  for (size_t i = 0; i < kClamped.size(); ++i) EXPECT_EQ(got[i], kClamped[i]) << "clamp(" << kInput[i] << ")";
  EXPECT_TRUE(std::isnan(got.back()));
}

TEST(ClampOp, Cpu) {
  auto cpu = make_cpu_backend();
  expect_clamped(*cpu);
}

#ifdef ACTCAP_HAVE_CUDA
class CudaClamp : public testing::TestWithParam<DType> {};

TEST_P(CudaClamp, SameAsTorch) {
  ACTCAP_SKIP_WITHOUT_GPU();
  BackendOptions options;
  options.device = Device{Device::Type::Cuda, 0};
  options.dtype = GetParam();
  expect_clamped(*make_cuda_backend(options));  // every input is exact in bf16 and fp16, except 1e30 in fp16 (inf)
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaClamp, testing::Values(DType::F32, DType::BF16, DType::F16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });
#endif

}  // namespace
}  // namespace actcap::ops
