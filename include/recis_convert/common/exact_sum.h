// An exact sum of non-negative doubles: a fixed-point integer wide enough for every double (about 2200 bits, in
// 32-bit digits), so adding is exact and the order of additions, and how the sum was split over ranks, cannot
// change a bit of the result. value() rounds the exact sum once, to nearest (ties to even), as Python's
// math.fsum does. Used for the quantization error figures, which must not depend on the number of ranks.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace recis_convert {

class ExactSum {
 public:
  // v must be finite and >= 0 (others are ignored: the callers add absolute values and squares). Inline: it runs
  // twice per converted row.
  void add(double v) {
    if (!(v > 0) || !(v <= std::numeric_limits<double>::max())) return;
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    const uint64_t exponent = bits >> 52;  // sign is 0
    const uint64_t mantissa = (bits & ((uint64_t{1} << 52) - 1)) | (exponent ? uint64_t{1} << 52 : 0);
    const uint64_t position = exponent ? exponent - 1 : 0;  // of the mantissa's bit 0, counted from 2^-1074
    const size_t at = position / 32;
    const unsigned shift = position % 32;
    // Each digit grows by less than 2^32 per addition: 2^31 additions fit in 64 bits before a carry is needed.
    digit_[at] += (mantissa << shift) & 0xFFFFFFFFu;
    digit_[at + 1] += (mantissa >> (32 - shift)) & 0xFFFFFFFFu;  // shift < 32: at most 53 + 31 bits in all
    digit_[at + 2] += shift ? mantissa >> (64 - shift) : 0;
    if (++pending_ == (1u << 31)) normalize();
  }
  void add(const ExactSum& other);
  // The exact sum rounded to the nearest double.
  double value() const;
  bool operator==(const ExactSum& other) const;

  // The digits from the lowest non-zero one, and its index (one encoding, for messages between ranks).
  struct Digits {
    uint32_t lowest = 0;
    std::vector<uint32_t> digits;
  };
  Digits digits() const;
  // False when the digits do not fit (a malformed message).
  bool set_digits(const Digits& d);

 private:
  static constexpr int kDigits = 70;  // 2240 bits: a double's 2098 bit positions and headroom for 2^64 addends
  void normalize() const;             // carries every digit down to 32 bits

  mutable std::array<uint64_t, kDigits> digit_{};  // digit i weighs 2^(32 i - 1074)
  mutable uint32_t pending_ = 0;                     // additions since the last normalize
};

}  // namespace recis_convert
