#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "io/pickle.h"

using namespace actcap;

namespace {
std::string bytes_of(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(char(v));
  return s;
}
}  // namespace

TEST(FormatsPickle, IntegersUseTheSmallestOpcodeLikePython) {
  // Expected bytes are pickle.dumps(v, protocol=3) from CPython.
  EXPECT_EQ(PickleWriter().integer(0).finish(), bytes_of({0x80, 3, 'K', 0, '.'}));
  EXPECT_EQ(PickleWriter().integer(255).finish(), bytes_of({0x80, 3, 'K', 0xff, '.'}));
  EXPECT_EQ(PickleWriter().integer(256).finish(), bytes_of({0x80, 3, 'M', 0, 1, '.'}));
  EXPECT_EQ(PickleWriter().integer(-1).finish(), bytes_of({0x80, 3, 'J', 0xff, 0xff, 0xff, 0xff, '.'}));
  EXPECT_EQ(PickleWriter().integer(1ll << 31).finish(), bytes_of({0x80, 3, 0x8a, 5, 0, 0, 0, 0x80, 0, '.'}));
  EXPECT_EQ(PickleWriter().integer(-(1ll << 31) - 1).finish(),
            bytes_of({0x80, 3, 0x8a, 5, 0xff, 0xff, 0xff, 0x7f, 0xff, '.'}));
  EXPECT_EQ(PickleWriter().integer(INT64_MIN).finish(), bytes_of({0x80, 3, 0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80, '.'}));
}

TEST(FormatsPickle, LongIntegersFromTwosComplementBytes) {
  std::vector<uint8_t> le(300, 0);
  le[299] = 0x01;
  std::string out = PickleWriter().integer_le(le).finish();
  ASSERT_EQ(out.size(), 2u + 1 + 4 + 300 + 1);
  EXPECT_EQ(uint8_t(out[2]), 0x8b);  // LONG4
  EXPECT_EQ(out.substr(3, 4), bytes_of({0x2c, 0x01, 0, 0}));
  EXPECT_EQ(PickleWriter().integer_le({}).finish(), bytes_of({0x80, 3, 0x8a, 0, '.'}));
}

TEST(FormatsPickle, ScalarsStringsAndBytes) {
  EXPECT_EQ(PickleWriter().none().boolean(true).boolean(false).finish(), bytes_of({0x80, 3, 'N', 0x88, 0x89, '.'}));
  EXPECT_EQ(PickleWriter().float64(1.5).finish(), bytes_of({0x80, 3, 'G', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, '.'}));
  EXPECT_EQ(PickleWriter().string("hé").finish(), bytes_of({0x80, 3, 'X', 3, 0, 0, 0, 'h', 0xc3, 0xa9, '.'}));
  EXPECT_EQ(PickleWriter().bytes("ab").finish(), bytes_of({0x80, 3, 'C', 2, 'a', 'b', '.'}));
  std::string big(256, 'x');
  EXPECT_EQ(PickleWriter().bytes(big).finish().substr(2, 5), bytes_of({'B', 0, 1, 0, 0}));
  EXPECT_EQ(PickleWriter().global("torch", "FloatStorage").finish(), std::string("\x80\x03" "ctorch\nFloatStorage\n."));
}

TEST(FormatsPickle, ContainersUseOnlyWeightsOnlyOpcodes) {
  // {"a": [1, ()], "b": (None,)}
  PickleWriter w;
  w.mark().string("a").mark().integer(1).empty_tuple().list().string("b").mark().none().tuple().dict();
  EXPECT_EQ(w.finish(), bytes_of({0x80, 3, '}', '(', 'X', 1, 0, 0, 0, 'a', ']', '(', 'K', 1, ')', 'e', 'X', 1, 0, 0,
                                  0, 'b', '(', 'N', 't', 'u', '.'}));
}

TEST(FormatsPickle, ReduceBuildPersistentId) {
  PickleWriter w;
  w.global("collections", "OrderedDict").empty_tuple().reduce().mark().string("storage").tuple().persistent_id();
  w.build();
  EXPECT_EQ(w.finish(), std::string("\x80\x03" "ccollections\nOrderedDict\n)R(X\x07\0\0\0storagetQb.", 46));
}

TEST(FormatsPickle, UnbalancedMarksAreErrors) {
  EXPECT_THROW(PickleWriter().tuple(), Error);
  EXPECT_THROW(PickleWriter().dict(), Error);
  PickleWriter w;
  w.mark();
  EXPECT_THROW(w.finish(), Error);
}

TEST(FormatsPickle, FinishStartsANewPickle) {
  PickleWriter w;
  w.none();
  EXPECT_EQ(w.finish(), bytes_of({0x80, 3, 'N', '.'}));
  w.append_raw("K\x05");
  EXPECT_EQ(w.finish(), bytes_of({0x80, 3, 'K', 5, '.'}));
}
