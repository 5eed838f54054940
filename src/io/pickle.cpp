#include "io/pickle.h"

#include <cstring>

#include "core/error.h"

namespace actcap {

namespace {
// Opcodes (CPython Lib/pickle.py).
constexpr uint8_t kProto = 0x80, kStop = '.', kNone = 'N', kNewTrue = 0x88, kNewFalse = 0x89;
constexpr uint8_t kBinInt1 = 'K', kBinInt2 = 'M', kBinInt = 'J', kLong1 = 0x8a, kLong4 = 0x8b;
constexpr uint8_t kBinFloat = 'G', kBinUnicode = 'X', kShortBinBytes = 'C', kBinBytes = 'B', kGlobal = 'c';
constexpr uint8_t kMark = '(', kTuple = 't', kEmptyTuple = ')', kEmptyList = ']', kAppends = 'e';
constexpr uint8_t kEmptyDict = '}', kSetItems = 'u', kReduce = 'R', kBuild = 'b', kBinPersId = 'Q';
}  // namespace

PickleWriter::PickleWriter() {
  op(kProto);
  op(3);
}

void PickleWriter::little_endian(uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) buffer_.push_back(char((value >> (8 * i)) & 0xff));
}

PickleWriter& PickleWriter::none() {
  op(kNone);
  return *this;
}

PickleWriter& PickleWriter::boolean(bool v) {
  op(v ? kNewTrue : kNewFalse);
  return *this;
}

PickleWriter& PickleWriter::integer(int64_t v) {
  if (v >= 0 && v < 256) {
    op(kBinInt1);
    little_endian(uint64_t(v), 1);
  } else if (v >= 0 && v < 65536) {
    op(kBinInt2);
    little_endian(uint64_t(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    op(kBinInt);
    little_endian(uint64_t(uint32_t(int32_t(v))), 4);
  } else {
    // Fewest bytes whose sign bit matches the value's sign (at least 5 here).
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(uint64_t(v) >> (8 * i));
    size_t n = 8;
    while (n > 1 && ((le[n - 1] == 0x00 && !(le[n - 2] & 0x80)) || (le[n - 1] == 0xff && (le[n - 2] & 0x80)))) --n;
    integer_le({le, n});
  }
  return *this;
}

PickleWriter& PickleWriter::integer_le(std::span<const uint8_t> twos_complement_little_endian) {
  size_t n = twos_complement_little_endian.size();
  if (n < 256) {
    op(kLong1);
    little_endian(n, 1);
  } else {
    if (n > UINT32_MAX) fail("pickle: integer of {} bytes is too large", n);
    op(kLong4);
    little_endian(n, 4);
  }
  buffer_.append(reinterpret_cast<const char*>(twos_complement_little_endian.data()), n);
  return *this;
}

PickleWriter& PickleWriter::float64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  op(kBinFloat);
  for (int i = 7; i >= 0; --i) buffer_.push_back(char((bits >> (8 * i)) & 0xff));  // big-endian
  return *this;
}

PickleWriter& PickleWriter::string(std::string_view utf8) {
  if (utf8.size() > UINT32_MAX) fail("pickle: string of {} bytes is too large", utf8.size());
  op(kBinUnicode);
  little_endian(utf8.size(), 4);
  buffer_.append(utf8);
  return *this;
}

PickleWriter& PickleWriter::bytes(std::string_view raw) {
  if (raw.size() < 256) {
    op(kShortBinBytes);
    little_endian(raw.size(), 1);
  } else {
    if (raw.size() > UINT32_MAX) fail("pickle: bytes object of {} bytes is too large", raw.size());
    op(kBinBytes);
    little_endian(raw.size(), 4);
  }
  buffer_.append(raw);
  return *this;
}

PickleWriter& PickleWriter::global(std::string_view module, std::string_view name) {
  if (module.find('\n') != std::string_view::npos || name.find('\n') != std::string_view::npos)
    fail("pickle: global name '{}.{}' contains a newline", module, name);
  op(kGlobal);
  buffer_.append(module);
  buffer_.push_back('\n');
  buffer_.append(name);
  buffer_.push_back('\n');
  return *this;
}

PickleWriter& PickleWriter::mark() {
  marks_.push_back(buffer_.size());
  op(kMark);
  return *this;
}

size_t PickleWriter::pop_mark(const char* what) {
  if (marks_.empty()) fail("pickle: {} without a matching mark", what);
  size_t at = marks_.back();
  marks_.pop_back();
  return at;
}

PickleWriter& PickleWriter::tuple() {
  pop_mark("tuple");
  op(kTuple);
  return *this;
}

PickleWriter& PickleWriter::empty_tuple() {
  op(kEmptyTuple);
  return *this;
}

PickleWriter& PickleWriter::list() {
  buffer_.insert(buffer_.begin() + ptrdiff_t(pop_mark("list")), char(kEmptyList));
  op(kAppends);
  return *this;
}

PickleWriter& PickleWriter::dict() {
  buffer_.insert(buffer_.begin() + ptrdiff_t(pop_mark("dict")), char(kEmptyDict));
  op(kSetItems);
  return *this;
}

PickleWriter& PickleWriter::reduce() {
  op(kReduce);
  return *this;
}

PickleWriter& PickleWriter::build() {
  op(kBuild);
  return *this;
}

PickleWriter& PickleWriter::persistent_id() {
  op(kBinPersId);
  return *this;
}

std::string PickleWriter::finish() {
  if (!marks_.empty()) fail("pickle: {} mark(s) still open at the end", marks_.size());
  op(kStop);
  std::string out = std::move(buffer_);
  buffer_.clear();
  op(kProto);
  op(3);
  return out;
}

void PickleWriter::append_raw(std::string_view bytes) { buffer_.append(bytes); }

}  // namespace actcap
