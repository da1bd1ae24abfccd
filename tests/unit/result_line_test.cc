// The ablation's printed result line (tools/anvil/result_line.h, header-only)
// is the line snprintf("image %lld: class %lld (p=%.4f)\n") makes, for any
// value: the guide's print_result, made faster, not changed.
#include "../../tools/anvil/result_line.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace anvil::cli {
namespace {

std::string with_printf(std::int64_t image, std::int64_t class_index, double p) {
  std::vector<char> line(512);
  std::snprintf(line.data(), line.size(), "image %lld: class %lld (p=%.4f)\n",
                static_cast<long long>(image), static_cast<long long>(class_index), p);
  return line.data();
}

TEST(ResultLine, IsThePrintfLine) {
  std::vector<double> values = {0.0,
                                1.0,
                                0.5,
                                0.03125,
                                0.99995,
                                0.00005,
                                0.00015,
                                0.12345,
                                0.98765,
                                -0.0,
                                -3.5,
                                1e20,
                                1e300,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::denorm_min()};
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 20000; ++i)
    values.push_back(unit(rng));
  // Ties at the fourth decimal (k + 0.5) / 10^4, rounded as float scores are.
  for (int k = 0; k < 10000; k += 7)
    values.push_back(static_cast<float>((k + 0.5) / 1e4));

  std::string sink;
  for (std::size_t i = 0; i < values.size(); ++i) {
    sink.clear();
    const auto image = static_cast<std::int64_t>(i);
    const std::int64_t class_index = static_cast<std::int64_t>(i * 7919 % 1000) - 1;
    append_result_line(sink, image, class_index, values[i]);
    ASSERT_EQ(sink, with_printf(image, class_index, values[i])) << "value " << values[i];
  }
}

TEST(ResultLine, AppendsToWhatIsThere) {
  std::string sink = "before\n";
  append_result_line(sink, 0, 281, 0.421);
  append_result_line(sink, 127, 9, 1.0);
  EXPECT_EQ(sink, "before\nimage 0: class 281 (p=0.4210)\nimage 127: class 9 (p=1.0000)\n");
}

TEST(ResultLine, NaNPrintsAsPrintfDoes) {
  std::string sink;
  append_result_line(sink, 1, 2, std::nan(""));
  EXPECT_EQ(sink, with_printf(1, 2, std::nan("")));
}

}  // namespace
}  // namespace anvil::cli
