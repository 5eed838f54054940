#pragma once
// A pickle protocol 3 writer: enough for torch.save zips and numpy object arrays.
//
// Containers use only the opcodes that torch's weights_only unpickler accepts: list() and dict() close what was
// pushed since the matching mark() and are written as EMPTY_LIST/EMPTY_DICT before that MARK and APPENDS/SETITEMS
// after it (the opcodes Python's own pickler emits), never LIST/DICT.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace actcap {

class PickleWriter {
 public:
  PickleWriter();  // PROTO 3

  PickleWriter& none();
  PickleWriter& boolean(bool v);
  PickleWriter& integer(int64_t v);  // BININT1/BININT2/BININT when it fits, else LONG1, as Python writes ints
  // An integer of any size given as little-endian two's complement bytes (LONG1 up to 255 bytes, else LONG4).
  // No bytes means 0.
  PickleWriter& integer_le(std::span<const uint8_t> twos_complement_little_endian);
  PickleWriter& float64(double v);  // BINFLOAT (not accepted by torch 1.13's weights_only unpickler)
  PickleWriter& string(std::string_view utf8);  // BINUNICODE; the caller guarantees valid UTF-8
  PickleWriter& bytes(std::string_view raw);    // SHORT_BINBYTES/BINBYTES
  PickleWriter& global(std::string_view module, std::string_view name);

  PickleWriter& mark();
  PickleWriter& tuple();        // TUPLE: the items since the last mark
  PickleWriter& empty_tuple();  // EMPTY_TUPLE
  PickleWriter& list();         // the items since the last mark, as a list
  PickleWriter& dict();         // the key, value pairs since the last mark, as a dict
  PickleWriter& reduce();
  PickleWriter& build();
  PickleWriter& persistent_id();  // BINPERSID

  // STOP; returns the pickle bytes and starts a new pickle. Throws actcap::Error if a mark is still open.
  std::string finish();
  // Bytes the caller has already encoded as pickle opcodes (for streaming large payloads, e.g. many integers).
  void append_raw(std::string_view bytes);

  size_t size() const { return buffer_.size(); }

 private:
  void op(uint8_t opcode) { buffer_.push_back(char(opcode)); }
  void little_endian(uint64_t value, int bytes);
  size_t pop_mark(const char* what);

  std::string buffer_;
  std::vector<size_t> marks_;  // buffer offsets of the open MARK opcodes
};

}  // namespace actcap
