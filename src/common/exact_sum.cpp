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
