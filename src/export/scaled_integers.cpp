#include "export/scaled_integers.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace actcap {

namespace {

int bit_length(unsigned __int128 v) {
  uint64_t hi = uint64_t(v >> 64), lo = uint64_t(v);
  return hi ? 128 - std::countl_zero(hi) : 64 - std::countl_zero(lo);
}

}  // namespace

int default_scale_factor(DType source) {
  switch (source) {
    case DType::F16:
    case DType::BF16: return 16;
    default: return 32;
  }
}

int effective_decimal_scale(int scale_factor, double quantize_percent) {
  if (scale_factor < 0 || scale_factor > kMaxScaleFactor)
    fail("--scale-factor {}: must be between 0 and {}", scale_factor, kMaxScaleFactor);
  if (!(quantize_percent >= 0.0 && quantize_percent <= 100.0))
    fail("--quantize {}: must be a percentage between 0 and 100", quantize_percent);
  double truncated = std::floor(double(scale_factor) * quantize_percent / 100.0);
  return scale_factor - int(truncated);
}

ScaledInteger::ScaledInteger() { mpz_init(big_value_); }
ScaledInteger::~ScaledInteger() { mpz_clear(big_value_); }

int64_t ScaledInteger::magnitude_bits() const {
  return big_ ? int64_t(mpz_sizeinbase(big_value_, 2)) : bit_length(small_);
}

bool ScaledInteger::to_int64(int64_t* out) const {
  if (big_) return false;
  const unsigned __int128 limit = negative_ ? (unsigned __int128)1 << 63 : ((unsigned __int128)1 << 63) - 1;
  if (small_ > limit) return false;
  *out = negative_ ? int64_t(-small_) : int64_t(small_);  // -2^63 wraps to itself, exactly INT64_MIN
  return true;
}

std::string ScaledInteger::decimal() const {
  std::string digits;
  if (big_) {
    digits.resize(mpz_sizeinbase(big_value_, 10) + 1);
    mpz_get_str(digits.data(), 10, big_value_);
    digits.resize(std::strlen(digits.c_str()));
  } else {
    unsigned __int128 v = small_;
    do {
      digits.push_back(char('0' + int(v % 10)));
      v /= 10;
    } while (v != 0);
    digits.assign(digits.rbegin(), digits.rend());
  }
  return (negative_ && !is_zero()) ? "-" + digits : digits;
}

size_t ScaledInteger::min_twos_complement_bytes() const {
  if (is_zero()) return 0;
  int64_t bits;
  if (!negative_) {
    bits = magnitude_bits();
  } else if (big_) {
    // A negative value -a needs bit_length(a - 1) bits besides the sign bit.
    bool power_of_two = mpz_scan1(big_value_, 0) == mpz_sizeinbase(big_value_, 2) - 1;
    bits = int64_t(mpz_sizeinbase(big_value_, 2)) - (power_of_two ? 1 : 0);
  } else {
    bits = bit_length(small_ - 1);
  }
  return size_t(bits / 8 + 1);
}

void ScaledInteger::write_twos_complement_le(uint8_t* out, size_t width) const {
  std::memset(out, 0, width);
  if (big_) {
    size_t count = 0;
    // Magnitude bytes, least significant first; width >= their count by the caller's contract.
    mpz_export(out, &count, -1, 1, -1, 0, big_value_);
  } else {
    unsigned __int128 v = small_;
    for (size_t i = 0; i < width && v != 0; ++i, v >>= 8) out[i] = uint8_t(v);
  }
  if (negative_ && !is_zero()) {
    unsigned carry = 1;  // two's complement: invert and add one
    for (size_t i = 0; i < width; ++i) {
      unsigned byte = unsigned(uint8_t(~out[i])) + carry;
      out[i] = uint8_t(byte);
      carry = byte >> 8;
    }
  }
}

DecimalScaler::DecimalScaler(int scale) : scale_(scale) {
  if (scale < 0) fail("decimal scale {}: must not be negative", scale);
  mpz_init(pow5_);
  mpz_ui_pow_ui(pow5_, 5, unsigned(scale));
  // 24-bit mantissas times 5^scale stay below 2^127 when 5^scale < 2^103.
  if (mpz_sizeinbase(pow5_, 2) <= 103) {
    pow5_fits_ = true;
    unsigned __int128 p = 1;
    for (int i = 0; i < scale; ++i) p *= 5;
    pow5_small_ = p;
  }
}

DecimalScaler::~DecimalScaler() { mpz_clear(pow5_); }

void DecimalScaler::convert(float x, ScaledInteger& out) const {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t biased = (bits >> 23) & 0xffu;
  uint32_t mantissa = bits & 0x7fffffu;
  int exponent;  // x = +-mantissa * 2^exponent exactly
  if (biased == 0) {
    exponent = -149;
  } else {
    mantissa |= 0x800000u;
    exponent = int(biased) - 150;
  }
  out.negative_ = (bits >> 31) != 0;
  out.big_ = false;
  out.small_ = 0;
  if (mantissa == 0) {
    out.negative_ = false;  // -0.0 scales to the integer 0
    return;
  }
  const int64_t shift = int64_t(exponent) + scale_;  // x * 10^s = mantissa * 5^s * 2^shift

  if (pow5_fits_) {
    const unsigned __int128 m = (unsigned __int128)mantissa * pow5_small_;  // < 2^127
    if (shift >= 0) {
      if (bit_length(m) + shift <= 127) {
        out.small_ = m << shift;
        return;
      }
    } else {
      const int64_t right = -shift;
      if (right >= 128) return;  // m < 2^127 <= 2^(right-1): below one half, rounds to 0
      const unsigned __int128 quotient = m >> right;
      const unsigned __int128 remainder = m - (quotient << right);
      const unsigned __int128 half = (unsigned __int128)1 << (right - 1);
      out.small_ = quotient + ((remainder > half || (remainder == half && (quotient & 1))) ? 1 : 0);
      return;
    }
  }

  mpz_ptr value = out.big_value_;
  mpz_mul_ui(value, pow5_, mantissa);
  if (shift >= 0) {
    mpz_mul_2exp(value, value, mp_bitcnt_t(shift));
  } else {
    const mp_bitcnt_t right = mp_bitcnt_t(-shift);
    const bool half_bit = mpz_tstbit(value, right - 1);
    const bool below_half_nonzero = right >= 2 && mpz_scan1(value, 0) < right - 1;
    mpz_tdiv_q_2exp(value, value, right);
    if (half_bit && (below_half_nonzero || mpz_odd_p(value))) mpz_add_ui(value, value, 1);
  }
  if (mpz_sizeinbase(value, 2) <= 127) {
    // Keep one representation per value: small whenever it fits.
    unsigned __int128 v = 0;
    size_t count = 0;
    uint8_t bytes[16] = {};
    mpz_export(bytes, &count, -1, 1, -1, 0, value);
    for (int i = 15; i >= 0; --i) v = (v << 8) | bytes[i];
    out.small_ = v;
    if (v == 0) out.negative_ = false;
    return;
  }
  out.big_ = true;
}

int64_t first_non_finite(const float* values, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    if ((bits & 0x7f800000u) == 0x7f800000u) return i;
  }
  return -1;
}

}  // namespace actcap
