// actcap has no npy or pickle *reader* (numpy and torch read its files in the script tests): this target drives
// the writers with arbitrary shapes, descriptors and opcode sequences and checks the invariants readers rely on
// (npy: magic, 64-byte aligned header, declared header length; pickle: balanced marks, STOP last).
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"
#include "io/npy.h"
#include "io/pickle.h"

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

void check_npy(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const size_t rank = data[0] % 8;
  actcap::Shape shape;
  size_t at = 1;
  for (size_t i = 0; i < rank && at + 8 <= size; ++i, at += 8) {
    int64_t d;
    std::memcpy(&d, data + at, 8);
    shape.push_back(d);
  }
  const std::string descr(reinterpret_cast<const char*>(data + at), size - at);
  try {
    const std::string header = actcap::npy_header(descr, shape);
    require(header.size() % 64 == 0 && header.compare(0, 6, "\x93NUMPY") == 0 && header.back() == '\n');
    const size_t declared = header[6] == 1 ? size_t(uint8_t(header[8])) | size_t(uint8_t(header[9])) << 8
                                           : size_t(uint8_t(header[8])) | size_t(uint8_t(header[9])) << 8 |
                                                 size_t(uint8_t(header[10])) << 16 | size_t(uint8_t(header[11])) << 24;
    require(declared + (header[6] == 1 ? 10 : 12) == header.size());
  } catch (const actcap::Error&) {
  }
}

void check_pickle(const uint8_t* data, size_t size) {
  actcap::PickleWriter pickle;
  int open_marks = 0;
  for (size_t i = 0; i < size; ++i) {
    const uint8_t op = data[i] % 16;
    const uint8_t arg = i + 1 < size ? data[i + 1] : 0;
    try {
      switch (op) {
        case 0: pickle.none(); break;
        case 1: pickle.boolean(arg & 1); break;
        case 2: pickle.integer(int64_t(arg) << (arg % 64) ^ -int64_t(arg & 1)); break;
        case 3: pickle.integer_le({data + i, std::min<size_t>(arg, size - i)}); break;
        case 4: pickle.float64(double(arg) / 3); break;
        case 5: pickle.string(std::string(arg % 8, 'x')); break;
        case 6: pickle.bytes(std::string(reinterpret_cast<const char*>(data + i), std::min<size_t>(arg, size - i))); break;
        case 7: pickle.global("torch", "FloatStorage"); break;
        case 8: pickle.mark(); ++open_marks; break;
        case 9: pickle.tuple(); --open_marks; break;
        case 10: pickle.list(); --open_marks; break;
        case 11: pickle.dict(); --open_marks; break;
        case 12: pickle.empty_tuple(); break;
        case 13: pickle.reduce(); break;
        case 14: pickle.persistent_id(); break;
        case 15: {
          const std::string bytes = pickle.finish();
          require(open_marks <= 0 && !bytes.empty() && bytes.back() == '.');
          open_marks = 0;
          break;
        }
      }
    } catch (const actcap::Error&) {
      if (open_marks < 0) open_marks = 0;  // closing without an open mark is refused
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1)
    check_npy(data + 1, size - 1);
  else
    check_pickle(data + 1, size - 1);
  return 0;
}
