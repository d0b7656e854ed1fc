#include "recis_convert/common/exact_sum.h"

#include <cmath>
#include <cstring>

namespace recis_convert {
namespace {
__extension__ typedef unsigned __int128 Wide;  // GCC's 128-bit integer (-Wpedantic: not ISO C++)
constexpr uint64_t kDigitMask = 0xFFFFFFFFu;
constexpr int kDigitBits = 32;
constexpr int kLowestExponent = -1074;  // the weight of bit 0: a double's smallest subnormal
}  // namespace

void ExactSum::normalize() const {
  uint64_t carry = 0;
  for (auto& d : digit_) {
    d += carry;
    carry = d >> kDigitBits;
    d &= kDigitMask;
  }
  pending_ = 0;  // the headroom above a double's top bit holds any carry of 2^64 addends
}

void ExactSum::add(double v) {
  if (!(v > 0) || !std::isfinite(v)) return;
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  const uint64_t exponent = bits >> 52;  // sign is 0
  const uint64_t mantissa = (bits & ((uint64_t{1} << 52) - 1)) | (exponent ? uint64_t{1} << 52 : 0);
  const uint64_t position = exponent ? exponent - 1 : 0;  // of the mantissa's bit 0, counted from 2^-1074
  const Wide shifted = static_cast<Wide>(mantissa) << (position % kDigitBits);
  const size_t at = position / kDigitBits;
  // Each digit grows by less than 2^32 per addition: 2^31 additions fit in 64 bits before a carry is needed.
  digit_[at] += static_cast<uint64_t>(shifted) & kDigitMask;
  digit_[at + 1] += static_cast<uint64_t>(shifted >> kDigitBits) & kDigitMask;
  digit_[at + 2] += static_cast<uint64_t>(shifted >> (2 * kDigitBits));
  if (++pending_ == (1u << 31)) normalize();
}

void ExactSum::add(const ExactSum& other) {
  normalize();
  other.normalize();
  for (int i = 0; i < kDigits; ++i) digit_[i] += other.digit_[i];
  normalize();
}

double ExactSum::value() const {
  normalize();
  int top = kDigits - 1;
  while (top >= 0 && digit_[top] == 0) --top;
  if (top < 0) return 0.0;
  // The top four digits (at least 97 significant bits) and whether anything below them is non-zero.
  const int low = top - 3;
  Wide head = 0;
  for (int i = top; i >= low; --i) head = head << kDigitBits | (i >= 0 ? digit_[i] : 0);
  bool sticky = false;
  for (int i = 0; i < low; ++i) sticky = sticky || digit_[i] != 0;
  int length = 0;
  for (Wide h = head; h != 0; h >>= 1) ++length;
  const int drop = length > 53 ? length - 53 : 0;
  uint64_t mantissa = static_cast<uint64_t>(head >> drop);
  if (drop > 0) {
    const Wide rest = head & ((static_cast<Wide>(1) << drop) - 1);
    const Wide half = static_cast<Wide>(1) << (drop - 1);
    if (rest > half || (rest == half && (sticky || (mantissa & 1)))) ++mantissa;  // to nearest, ties to even
  }
  return std::ldexp(static_cast<double>(mantissa), low * kDigitBits + kLowestExponent + drop);
}

bool ExactSum::operator==(const ExactSum& other) const {
  normalize();
  other.normalize();
  return digit_ == other.digit_;
}

ExactSum::Digits ExactSum::digits() const {
  normalize();
  Digits out;
  int lowest = 0, top = kDigits - 1;
  while (top >= 0 && digit_[top] == 0) --top;
  while (lowest <= top && digit_[lowest] == 0) ++lowest;
  out.lowest = static_cast<uint32_t>(top < 0 ? 0 : lowest);
  for (int i = lowest; i <= top; ++i) out.digits.push_back(static_cast<uint32_t>(digit_[i]));
  return out;
}

bool ExactSum::set_digits(const Digits& d) {
  if (d.lowest > kDigits || d.digits.size() > kDigits - d.lowest) return false;
  digit_.fill(0);
  pending_ = 0;
  for (size_t i = 0; i < d.digits.size(); ++i) digit_[d.lowest + i] = d.digits[i];
  return true;
}

}  // namespace recis_convert
