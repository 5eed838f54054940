#pragma once
// Exact decimal fixed-point encoding of floats: integer = round(x * 10^s), ties to even, computed from the
// float's binary value (x = m * 2^e exactly, so x * 10^s = m * 5^s * 2^(s+e)) with no float64 or decimal
// context in between. 128-bit integer arithmetic where the result fits, GMP beyond.
#include <gmp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace actcap {

// --scale-factor default: 32 decimal digits for fp32 sources, 16 for fp16/bf16.
int default_scale_factor(DType source);
// s = scale_factor - floor(scale_factor * quantize_percent / 100), the floor taken on the double product
// exactly as the Python tool computed it. Throws actcap::Error on a negative scale factor, one above
// kMaxScaleFactor, or a percentage outside [0, 100].
int effective_decimal_scale(int scale_factor, double quantize_percent);
inline constexpr int kMaxScaleFactor = 4096;

// One exact integer: sign and magnitude, the magnitude in 128 bits when it fits, else in GMP.
// Reused across conversions so the GMP storage is allocated once.
class ScaledInteger {
 public:
  ScaledInteger();
  ~ScaledInteger();
  ScaledInteger(const ScaledInteger&) = delete;
  ScaledInteger& operator=(const ScaledInteger&) = delete;

  bool negative() const { return negative_; }
  bool is_zero() const { return !big_ && small_ == 0; }
  // Bits of the magnitude (0 for zero).
  int64_t magnitude_bits() const;
  // The value as int64 if it fits.
  bool to_int64(int64_t* out) const;
  std::string decimal() const;  // "-123", "0"
  // Fewest bytes of two's complement that hold the value (0 for zero), as pickle's encode_long writes ints.
  size_t min_twos_complement_bytes() const;
  // Little-endian two's complement in exactly `width` bytes (sign-extended); width must be at least
  // min_twos_complement_bytes().
  void write_twos_complement_le(uint8_t* out, size_t width) const;

 private:
  friend class DecimalScaler;
  bool negative_ = false;
  bool big_ = false;
  unsigned __int128 small_ = 0;
  mpz_t big_value_;
};

class DecimalScaler {
 public:
  explicit DecimalScaler(int scale);  // scale >= 0
  ~DecimalScaler();
  DecimalScaler(const DecimalScaler&) = delete;
  DecimalScaler& operator=(const DecimalScaler&) = delete;

  int scale() const { return scale_; }
  // out = round(x * 10^scale), ties to even. x must be finite (callers report NaN/Inf with their context).
  void convert(float x, ScaledInteger& out) const;

 private:
  int scale_;
  bool pow5_fits_ = false;          // 5^scale * (any 24-bit mantissa) < 2^127
  unsigned __int128 pow5_small_ = 0;
  mpz_t pow5_;
};

// The first non-finite element of n floats, or -1.
int64_t first_non_finite(const float* values, int64_t n);

}  // namespace actcap
