#pragma once
// GPU tests skip themselves where no GPU can be used, saying why (no GPU, or a plugin that failed to load and
// the loader's message). With ACTCAP_REQUIRE_CUDA=1, which the device scripts set, they fail instead: on a GPU
// machine, "skipped" must never hide a broken install.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "ops/backend.h"

namespace actcap::test {

inline bool cuda_required() {
  const char* value = std::getenv("ACTCAP_REQUIRE_CUDA");
  return value && std::string_view(value) == "1";
}

}  // namespace actcap::test

// In SetUp() or a test body: returns from it, skipped or failed, when no GPU can be used.
#define ACTCAP_SKIP_WITHOUT_GPU()                                                            \
  do {                                                                                       \
    const std::string actcap_no_gpu = ::actcap::ops::cuda_unavailable_reason();              \
    if (!actcap_no_gpu.empty()) {                                                            \
      if (::actcap::test::cuda_required()) FAIL() << "ACTCAP_REQUIRE_CUDA=1: " << actcap_no_gpu; \
      GTEST_SKIP() << actcap_no_gpu;                                                         \
    }                                                                                        \
  } while (false)
