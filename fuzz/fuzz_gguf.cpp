// The GGUF reader on arbitrary bytes: every count, length and offset checked against the file; whatever it
// accepts is written back and must read back identically.
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace actcap;
  const std::string path = fuzz::write_scratch("input.gguf", {reinterpret_cast<const char*>(data), size});
  gguf::File file;
  try {
    file = gguf::read(path);
  } catch (const Error&) {
    return 0;
  }
  const std::string copy = fuzz::write_scratch("copy.gguf", "");
  gguf::write(copy, file);
  const gguf::File again = gguf::read(copy);
  if (again.metadata.size() != file.metadata.size() || again.tensors.size() != file.tensors.size()) __builtin_trap();
  for (size_t i = 0; i < file.tensors.size(); ++i)
    if (again.tensors[i].ne != file.tensors[i].ne ||
        std::memcmp(again.tensors[i].data.data(), file.tensors[i].data.data(), 4 * file.tensors[i].data.size()) != 0)
      __builtin_trap();
  return 0;
}
