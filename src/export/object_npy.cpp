#include "export/object_npy.h"

#include <cstring>
#include <regex>

#include "core/error.h"
#include "io/npy.h"
#include "io/pickle.h"

namespace actcap {

namespace {

// The pickle of an object ndarray as numpy's __reduce__ gives it:
//   _reconstruct(ndarray, (0,), b'b') then BUILD with (1, shape, dtype('O8', False, True)+state, False, [ints])
// split where the elements go, so that they stream in between EMPTY_LIST MARK ... APPENDS.
struct Framing {
  std::string prefix, suffix;
};

Framing object_framing(const Shape& shape) {
  PickleWriter w;
  w.global("numpy.core.multiarray", "_reconstruct");
  w.mark().global("numpy", "ndarray").mark().integer(0).tuple().bytes("b").tuple();
  w.reduce();
  w.mark().integer(1);
  w.mark();
  for (int64_t d : shape) w.integer(d);
  w.tuple();
  w.global("numpy", "dtype").mark().string("O8").boolean(false).boolean(true).tuple().reduce();
  w.mark().integer(3).string("|").none().none().none().integer(-1).integer(-1).integer(63).tuple().build();
  w.boolean(false);
  w.mark();
  // list() puts EMPTY_LIST before its MARK, so the elements belong one byte after the current end.
  const size_t elements_at = w.size() + 1;
  w.list().tuple().build();
  const std::string whole = w.finish();
  if (whole.size() <= elements_at || whole[elements_at - 1] != '(' || whole[elements_at] != 'e')
    fail("internal error: unexpected pickle framing for an object .npy");
  Framing framing;
  framing.prefix = npy_header("|O", shape) + whole.substr(0, elements_at);
  framing.suffix = whole.substr(elements_at);
  return framing;
}

void append_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(char(uint8_t(v >> (8 * i))));
}

}  // namespace

void append_pickle_int(std::string& out, int64_t value) {
  if (value >= 0 && value <= 0xff) {
    out.push_back('K');
    append_le(out, uint64_t(value), 1);
  } else if (value >= 0 && value <= 0xffff) {
    out.push_back('M');
    append_le(out, uint64_t(value), 2);
  } else if (value >= INT32_MIN && value <= INT32_MAX) {
    out.push_back('J');
    append_le(out, uint64_t(value), 4);
  } else {
    // encode_long: the fewest two's complement bytes (at most 8 here)
    int n = 1;
    while (n < 8 && !(value >= -(int64_t(1) << (8 * n - 1)) && value < (int64_t(1) << (8 * n - 1)))) ++n;
    out.push_back('\x8a');
    out.push_back(char(n));
    append_le(out, uint64_t(value), n);
  }
}

void append_pickle_int(std::string& out, const ScaledInteger& value) {
  int64_t small;
  if (value.to_int64(&small)) return append_pickle_int(out, small);
  const size_t n = value.min_twos_complement_bytes();
  if (n < 256) {
    out.push_back('\x8a');
    out.push_back(char(n));
  } else {
    out.push_back('\x8b');
    append_le(out, n, 4);
  }
  const size_t at = out.size();
  out.resize(at + n);
  value.write_twos_complement_le(reinterpret_cast<uint8_t*>(out.data() + at), n);
}

ObjectNpyWriter::ObjectNpyWriter(std::string path, Shape shape)
    : file_(std::move(path)), shape_(std::move(shape)), expected_(num_elements(shape_)) {
  Framing framing = object_framing(shape_);
  file_.write(framing.prefix);
  suffix_ = std::move(framing.suffix);
}

void ObjectNpyWriter::append(std::string_view pickled_ints, int64_t count) {
  file_.write(pickled_ints);
  written_ += count;
}

void ObjectNpyWriter::commit() {
  if (written_ != expected_)
    fail("{}: {} elements written for shape {}", file_.path(), written_, shape_string(shape_));
  file_.write(suffix_);
  file_.commit();
}

NpyHeader parse_npy_header(const uint8_t* data, size_t size, const std::string& path) {
  static const char kMagic[] = "\x93NUMPY";
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) fail("{}: not a .npy file (bad magic)", path);
  const int major = data[6];
  size_t header_len, start;
  if (major == 1) {
    header_len = size_t(data[8]) | size_t(data[9]) << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail("{}: truncated .npy header", path);
    header_len = size_t(data[8]) | size_t(data[9]) << 8 | size_t(data[10]) << 16 | size_t(data[11]) << 24;
    start = 12;
  } else {
    fail("{}: unsupported .npy version {}", path, major);
  }
  if (start + header_len > size) fail("{}: truncated .npy header", path);
  const std::string dict(reinterpret_cast<const char*>(data + start), header_len);
  static const std::regex descr_re(R"('descr':\s*'([^']*)')"), fortran_re(R"('fortran_order':\s*(True|False))"),
      shape_re(R"('shape':\s*\(([^)]*)\))");
  std::smatch m;
  NpyHeader header;
  if (!std::regex_search(dict, m, descr_re)) fail("{}: .npy header has no descr", path);
  header.descr = m[1];
  if (!std::regex_search(dict, m, fortran_re)) fail("{}: .npy header has no fortran_order", path);
  if (m[1] == "True") fail("{}: Fortran-order arrays are not supported", path);
  if (!std::regex_search(dict, m, shape_re)) fail("{}: .npy header has no shape", path);
  const std::string dims = m[1];
  static const std::regex int_re(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), int_re); it != std::sregex_iterator(); ++it)
    header.shape.push_back(std::stoll(it->str()));
  header.data_offset = start + header_len;
  return header;
}

IntegerNpyReader::IntegerNpyReader(const std::string& path) : file_(path) {
  const NpyHeader header = parse_npy_header(file_.data(), file_.size(), path);
  shape_ = header.shape;
  pos_ = header.data_offset;
  end_ = file_.size();
  if (header.descr == "|O") {
    kind_ = Kind::Object;
    count_ = num_elements(shape_);
    const Framing framing = object_framing(shape_);
    if (file_.size() < framing.prefix.size() + framing.suffix.size() ||
        std::memcmp(file_.data(), framing.prefix.data(), framing.prefix.size()) != 0 ||
        std::memcmp(file_.data() + file_.size() - framing.suffix.size(), framing.suffix.data(),
                    framing.suffix.size()) != 0)
      fail("{}: not an object array of ints as `actcap export integers` writes it", path);
    pos_ = framing.prefix.size();
    end_ = file_.size() - framing.suffix.size();
  } else if (header.descr == "<i8") {
    kind_ = Kind::Int64;
    width_ = 8;
    count_ = num_elements(shape_);
  } else if (header.descr == "|u1") {
    kind_ = Kind::Fixed;
    if (shape_.empty() || shape_.back() <= 0) fail("{}: fixed-width integers need a last axis of bytes", path);
    width_ = size_t(shape_.back());
    shape_.pop_back();
    count_ = num_elements(shape_);
  } else {
    fail("{}: dtype {} is not an integer export (object, <i8 or |u1)", path, header.descr);
  }
  if (kind_ != Kind::Object && end_ - pos_ != size_t(count_) * width_)
    fail("{}: {} data bytes for {} elements of {} bytes", path, end_ - pos_, count_, width_);
}

std::string_view IntegerNpyReader::next() {
  if (read_ >= count_) fail("{}: more elements requested than its shape holds", file_.path());
  const char* base = reinterpret_cast<const char*>(file_.data());
  size_t length = width_;
  if (kind_ == Kind::Object) {
    auto need = [&](size_t n) {
      if (pos_ + n > end_) fail("{}: pickle ends inside element {}", file_.path(), read_);
    };
    need(1);
    switch (uint8_t(base[pos_])) {
      case 'K': length = 2; break;
      case 'M': length = 3; break;
      case 'J': length = 5; break;
      case 0x8a:
        need(2);
        length = 2 + uint8_t(base[pos_ + 1]);
        break;
      case 0x8b: {
        need(5);
        uint32_t n;
        std::memcpy(&n, base + pos_ + 1, 4);
        length = 5 + size_t(n);
        break;
      }
      default: fail("{}: element {} is not a pickled int", file_.path(), read_);
    }
    need(length);
  }
  std::string_view element(base + pos_, length);
  pos_ += length;
  ++read_;
  return element;
}

void IntegerNpyReader::finish() {
  if (read_ != count_ || pos_ != end_) fail("{}: element data does not match its shape", file_.path());
}

}  // namespace actcap
