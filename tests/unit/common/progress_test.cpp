#include "recis_convert/common/progress.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

using Clock = ProgressMeter::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ProgressTest, FirstLineAfterOneIntervalThenOncePerInterval) {
  const Clock::time_point t0{};
  ProgressMeter meter(40ull << 30, 400, 5.0, t0);
  EXPECT_FALSE(meter.due(t0 + milliseconds(4999)));  // short runs print nothing
  EXPECT_TRUE(meter.due(t0 + seconds(5)));
  meter.line(1, 1, t0 + seconds(5));
  EXPECT_FALSE(meter.due(t0 + seconds(9)));
  EXPECT_TRUE(meter.due(t0 + seconds(10)));
}

TEST(ProgressTest, LineSaysBytesRateEtaAndFiles) {
  const Clock::time_point t0{};
  ProgressMeter meter(40ull << 30, 400, 5.0, t0);
  // 12 GiB in 8 s: 1.5 GiB/s, 28 GiB left -> 18.7 s
  EXPECT_EQ(meter.line(12ull << 30, 120, t0 + seconds(8)),
            "progress: 12.00 GiB of 40.00 GiB (30%), 1.50 GiB/s, ETA 19 s, files 120 of 400");
  EXPECT_EQ(meter.line(1ull << 30, 1, t0 + seconds(1000)),
            "progress: 1.00 GiB of 40.00 GiB (2%), 1.02 MiB/s, ETA 10 h 50 min, files 1 of 400");
  EXPECT_EQ(meter.line(0, 0, t0 + seconds(5)),
            "progress: 0 B of 40.00 GiB (0%), 0 B/s, ETA unknown, files 0 of 400");
}

TEST(ProgressTest, ZeroIntervalDisables) {
  const Clock::time_point t0{};
  ProgressMeter meter(100, 1, 0, t0);
  EXPECT_FALSE(meter.due(t0 + seconds(1000)));
}

}  // namespace
}  // namespace recis_convert
