#include "recis_convert/common/exact_sum.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace recis_convert {
namespace {

TEST(ExactSumTest, KeepsWhatADoubleSumLoses) {
  ExactSum sum;
  double naive = 0;
  for (double v : {1e16, 1.0, 1.0}) {
    sum.add(v);
    naive += v;
  }
  EXPECT_EQ(naive, 1e16);  // each 1 was rounded away
  EXPECT_EQ(sum.value(), 1e16 + 2);
}

TEST(ExactSumTest, RoundsOnceToNearestEven) {
  ExactSum tie;
  tie.add(1.0);
  tie.add(std::ldexp(1.0, -53));  // exactly half an ulp of 1: ties to the even 1
  EXPECT_EQ(tie.value(), 1.0);
  ExactSum above = tie;
  above.add(std::ldexp(1.0, -200));  // far below, but it breaks the tie
  EXPECT_EQ(above.value(), 1.0 + std::ldexp(1.0, -52));
}

TEST(ExactSumTest, SubnormalsAndZeroAreExact) {
  ExactSum sum;
  EXPECT_EQ(sum.value(), 0.0);
  const double smallest = std::numeric_limits<double>::denorm_min();
  for (int i = 0; i < 3; ++i) sum.add(smallest);
  sum.add(0.0);
  sum.add(-1.0);                                      // ignored: only non-negative values are summed
  sum.add(std::numeric_limits<double>::infinity());   // ignored
  EXPECT_EQ(sum.value(), 3 * smallest);
}

TEST(ExactSumTest, AnyOrderAndAnySplitGiveTheSameBits) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> exponent(-40, 40);
  std::vector<double> values(5000);
  for (double& v : values) v = std::exp2(exponent(rng));
  ExactSum forward, backward, left, right;
  for (double v : values) forward.add(v);
  for (auto it = values.rbegin(); it != values.rend(); ++it) backward.add(*it);
  for (size_t i = 0; i < values.size(); ++i) (i % 3 == 0 ? left : right).add(values[i]);
  left.add(right);
  EXPECT_TRUE(forward == backward);
  EXPECT_TRUE(forward == left);
  EXPECT_EQ(forward.value(), left.value());
}

TEST(ExactSumTest, DigitsRoundTripAndMalformedDigitsAreRefused) {
  ExactSum sum;
  sum.add(3.5);
  sum.add(1e-300);
  sum.add(1e300);
  ExactSum copy;
  ASSERT_TRUE(copy.set_digits(sum.digits()));
  EXPECT_TRUE(copy == sum);
  EXPECT_EQ(copy.value(), sum.value());
  ExactSum::Digits too_many;
  too_many.lowest = 60;
  too_many.digits.assign(20, 1u);
  EXPECT_FALSE(copy.set_digits(too_many));
}

}  // namespace
}  // namespace recis_convert
