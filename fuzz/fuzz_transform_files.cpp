// The readers of the transforms `actcap fold` takes from other tools, on arbitrary bytes: numpy's .npy and
// torch.save's .pt (a zip holding a pickle, read by a restricted unpickler). The same bytes go to both.
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/loaded_array.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace actcap;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  double sum = 0;
  try {
    for (double v : read_npy(fuzz::write_scratch("input.npy", bytes)).values) sum += v;
  } catch (const Error&) {
  }
  try {
    for (const auto& [name, array] : read_torch_tensors(fuzz::write_scratch("input.pt", bytes)))
      for (double v : array.values) sum += v;
  } catch (const Error&) {
  }
  (void)sum;
  return 0;
}
