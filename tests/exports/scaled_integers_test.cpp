// The exact integer export: round(x * 10^s) half to even, checked here on hand-made cases and, through
// tests/exports/check_integers.py, against Python's decimal module on about two million values.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "export/integers.h"
#include "export/scaled_integers.h"
#include "io/npy.h"

namespace actcap {
namespace {

std::string scaled(float x, int scale) {
  DecimalScaler scaler(scale);
  ScaledInteger v;
  scaler.convert(x, v);
  return v.decimal();
}

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(ExportsScaledIntegers, KnownValues) {
  EXPECT_EQ(scaled(0.5f, 0), "0");
  EXPECT_EQ(scaled(1.5f, 0), "2");
  EXPECT_EQ(scaled(2.5f, 0), "2");
  EXPECT_EQ(scaled(-2.5f, 0), "-2");
  EXPECT_EQ(scaled(-3.5f, 0), "-4");
  EXPECT_EQ(scaled(-0.0f, 5), "0");
  EXPECT_EQ(scaled(0.25f, 1), "2");   // 2.5 ties to even
  EXPECT_EQ(scaled(0.75f, 1), "8");   // 7.5 ties to even
  EXPECT_EQ(scaled(0.125f, 2), "12");  // 12.5
  EXPECT_EQ(scaled(1.0f, 32), "100000000000000000000000000000000");
  // 0.04248f is 0.0424799993634223937988281250 exactly
  EXPECT_EQ(scaled(0.04248f, 32), "4247999936342239379882812500000");
  EXPECT_EQ(scaled(0.04248f, 16), "424799993634224");
  EXPECT_EQ(scaled(std::numeric_limits<float>::max(), 0), "340282346638528859811704183484516925440");
  EXPECT_EQ(scaled(-std::numeric_limits<float>::max(), 2), "-34028234663852885981170418348451692544000");
  EXPECT_EQ(scaled(from_bits(1), 45), "1");    // 1.4012984643e-45 * 10^45 = 1.40..
  EXPECT_EQ(scaled(from_bits(1), 44), "0");
  EXPECT_EQ(scaled(from_bits(1), 60), "1401298464324817");
}

TEST(ExportsScaledIntegers, TwosComplementAndInt64) {
  DecimalScaler scaler(0);
  ScaledInteger v;
  struct Case {
    float x;
    size_t bytes;
  } cases[] = {{0.0f, 0}, {127.0f, 1}, {128.0f, 2}, {-128.0f, 1}, {-129.0f, 2}, {-256.0f, 2}, {65536.0f, 3}};
  for (const Case& c : cases) {
    scaler.convert(c.x, v);
    EXPECT_EQ(v.min_twos_complement_bytes(), c.bytes) << c.x;
  }
  scaler.convert(-129.0f, v);
  uint8_t out[4];
  v.write_twos_complement_le(out, 4);
  EXPECT_EQ(out[0], 0x7f);
  EXPECT_EQ(out[1], 0xff);
  EXPECT_EQ(out[3], 0xff);
  int64_t i64;
  scaler.convert(-9.223372036854775808e18f, v);  // -2^63 fits
  ASSERT_TRUE(v.to_int64(&i64));
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::min());
  scaler.convert(9.223372036854775808e18f, v);  // +2^63 does not
  EXPECT_FALSE(v.to_int64(&i64));
}

TEST(ExportsScaledIntegers, EffectiveScale) {
  EXPECT_EQ(effective_decimal_scale(32, 0), 32);
  EXPECT_EQ(effective_decimal_scale(32, 25), 24);
  EXPECT_EQ(effective_decimal_scale(16, 50), 8);
  EXPECT_EQ(effective_decimal_scale(32, 100), 0);
  EXPECT_EQ(effective_decimal_scale(10, 33), 7);  // floor(3.3) = 3
  EXPECT_THROW(effective_decimal_scale(32, 101), Error);
  EXPECT_THROW(effective_decimal_scale(-1, 0), Error);
  EXPECT_EQ(default_scale_factor(DType::F32), 32);
  EXPECT_EQ(default_scale_factor(DType::BF16), 16);
  EXPECT_EQ(default_scale_factor(DType::F16), 16);
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("actcap-exports-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(ExportsScaledIntegers, NonFiniteNamesLayerAndPosition) {
  TempDir dir;
  std::vector<float> values(12, 1.0f);
  values[7] = std::numeric_limits<float>::quiet_NaN();
  TensorView view{values.data(), DType::F32, {3, 4}};
  DecimalScaler scaler(8);
  try {
    write_integer_layer(dir.str(), "layer_3", {view}, {3, 4}, scaler, IntegerFormat::Object);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer_3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[1, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("layer_3.npy")));
  values[7] = -std::numeric_limits<float>::infinity();
  EXPECT_THROW(write_integer_layer(dir.str(), "layer_3", {view}, {3, 4}, scaler, IntegerFormat::Fixed), Error);
}

TEST(ExportsScaledIntegers, Int64RefusesValuesThatDoNotFit) {
  TempDir dir;
  std::vector<float> values = {0.5f, -3.0f};
  TensorView view{values.data(), DType::F32, {2}};
  DecimalScaler scaler(32);
  EXPECT_THROW(write_integer_layer(dir.str(), "embedding", {view}, {2}, scaler, IntegerFormat::Int64), Error);
}

// Writes the corpus and its integers in all three encodings; Python's decimal module checks every value.
TEST(ExportsScaledIntegers, MatchesPythonDecimalOnMillionsOfValues) {
  const char* python = "/usr/bin/python3";
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) GTEST_SKIP() << "no numpy";
  TempDir dir;
  nlohmann::json cases = nlohmann::json::array();
  std::mt19937_64 rng(20260501);

  auto add = [&](const std::string& name, const std::vector<float>& values, int scale, IntegerFormat format) {
    const std::string layer = name + "_s" + std::to_string(scale) + "_" + std::string(integer_format_name(format));
    const std::string source = layer + "_source.npy";
    write_npy(dir.file(source), DType::F32, {int64_t(values.size())}, values.data());
    DecimalScaler scaler(scale);
    TensorView view{values.data(), DType::F32, {int64_t(values.size())}};
    write_integer_layer(dir.str(), layer, {view}, view.shape, scaler, format);
    cases.push_back({{"source", source}, {"dtype", "F32"}, {"file", layer + ".npy"}, {"scale", scale},
                     {"format", integer_format_name(format)}});
  };
  auto add_half = [&](const std::string& name, DType dtype, const std::vector<uint16_t>& bits, int scale) {
    const std::string source = name + "_source.npy";
    // bf16 has no numpy dtype: its bits go as int16 and the checker widens them
    write_npy(dir.file(source), dtype == DType::F16 ? DType::F16 : DType::I16, {int64_t(bits.size())}, bits.data());
    DecimalScaler scaler(scale);
    const std::string layer = name + "_s" + std::to_string(scale);
    TensorView view{bits.data(), dtype, {int64_t(bits.size() / 2), 2}};
    write_integer_layer(dir.str(), layer, {view}, {int64_t(bits.size())}, scaler, IntegerFormat::Object);
    cases.push_back({{"source", source}, {"dtype", std::string(dtype_name(dtype))}, {"file", layer + ".npy"},
                     {"scale", scale}, {"format", "object"}});
  };

  // Every finite bf16 and fp16 value.
  std::vector<uint16_t> bf16, f16;
  for (uint32_t b = 0; b < 65536; ++b) {
    if ((b & 0x7f80u) != 0x7f80u) bf16.push_back(uint16_t(b));
    if ((b & 0x7c00u) != 0x7c00u) f16.push_back(uint16_t(b));
  }
  for (int scale : {16, 0}) add_half("bf16_all", DType::BF16, bf16, scale);
  for (int scale : {16, 8, 0}) add_half("f16_all", DType::F16, f16, scale);

  // A million random finite fp32 bit patterns (every exponent), and activation-like values.
  std::vector<float> random_bits, activations;
  while (random_bits.size() < 1000000) {
    const float x = from_bits(uint32_t(rng()));
    if (std::isfinite(x)) random_bits.push_back(x);
  }
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (int i = 0; i < 200000; ++i) activations.push_back(normal(rng));
  add("f32_random_bits", random_bits, 32, IntegerFormat::Object);
  add("f32_activations", activations, 32, IntegerFormat::Object);
  add("f32_activations", activations, 32, IntegerFormat::Fixed);
  add("f32_activations", activations, 8, IntegerFormat::Int64);

  // Extremes, subnormals, signed zeros and exact ties (odd j * 2^-(s+1) is a half-integer at scale s),
  // across the 128-bit / GMP boundary (scale 44/45) and far beyond.
  for (int scale : {0, 1, 2, 3, 7, 16, 32, 44, 45, 46, 60, 100, 200, 700}) {  // 700: LONG4 pickles
    std::vector<float> special = {0.0f, -0.0f, 1.0f, -1.0f, std::numeric_limits<float>::max(),
                                  -std::numeric_limits<float>::max(), std::numeric_limits<float>::min(),
                                  -std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(),
                                  -std::numeric_limits<float>::denorm_min(), from_bits(0x007fffffu),
                                  from_bits(0x807fffffu)};
    for (uint32_t b = 1; b < 4096; ++b) special.push_back(from_bits(b));  // the smallest subnormals
    if (scale + 1 <= 149) {
      for (uint32_t j = 1; j < 20000; j += 2) {
        const float tie = std::ldexp(float(j), -(scale + 1));
        special.push_back(tie);
        special.push_back(-tie);
      }
    }
    for (int k = -149; k <= 127; ++k) special.push_back(std::ldexp(1.0f, k));
    add("f32_special", special, scale, IntegerFormat::Object);
    if (scale == 60 || scale == 0 || scale == 700) add("f32_special", special, scale, IntegerFormat::Fixed);
  }

  write_file_atomic(dir.file("cases.json"), cases.dump());
  const std::string command = std::string(python) + " " + ACTCAP_SOURCE_DIR + "/tests/exports/check_integers.py " +
                              dir.str();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

}  // namespace
}  // namespace actcap
