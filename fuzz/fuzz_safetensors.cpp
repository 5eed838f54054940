// The safetensors reader on arbitrary bytes: header validation, then every tensor viewed and converted.
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace actcap;
  const std::string path = fuzz::write_scratch("input.safetensors", {reinterpret_cast<const char*>(data), size});
  try {
    SafetensorsFile file(path);
    for (const std::string& name : file.names()) {
      TensorView view = file.view(name);
      if (view.dtype == DType::F32 || view.dtype == DType::F16 || view.dtype == DType::BF16) {
        Tensor copy = Tensor::to_f32(view);
        (void)copy;
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
