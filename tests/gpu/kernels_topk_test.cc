// The top-k kernel (src/cuda/kernels/topk.h) against the host reference the
// CPU executor uses (pipeline::softmax_in_place + pipeline::top_k): exact
// ties (broken by the lower index), NaN ranked last, rows with NaN or
// infinities, -0 against +0, k up to 32 and rows longer than a block.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/topk.h"
#include "gpu_test.h"
#include "pipeline/host_postprocess.h"

namespace anvil {
namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

enum class Values {
  kQuantized,   // multiples of 1/2 in [-8, 8]: many exact ties, no near ones
  kContinuous,  // normal floats: near ties possible after softmax
};

struct TopKCase {
  std::int64_t rows, cols;
  int k;
  bool softmax;
  Values values;
};

std::string describe(const TopKCase& c) {
  return cat("top_k_rows [", c.rows, ",", c.cols, "] k=", c.k, c.softmax ? " softmax" : " raw",
             c.values == Values::kQuantized ? " quantized" : " continuous");
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const TopKCase& c, std::ostream* os) {
  *os << c.rows << "x" << c.cols << "_k" << c.k << (c.softmax ? "_softmax" : "_raw")
      << (c.values == Values::kQuantized ? "_quantized" : "_continuous");
}

// Random logits; then special rows (where there are enough rows): 1 holds a
// NaN, 2 a +inf, 3 all -inf, 4 some -inf, 5 -0 and +0 as the largest values.
std::vector<float> make_logits(const TopKCase& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<float> x(static_cast<std::size_t>(c.rows * c.cols));
  std::uniform_int_distribution<int> halves(-16, 16);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (float& v : x)
    v = c.values == Values::kQuantized ? 0.5f * static_cast<float>(halves(rng)) : normal(rng);
  auto row = [&](std::int64_t r) { return x.data() + r * c.cols; };
  const std::int64_t last = c.cols - 1;
  if (c.rows > 1) row(1)[last / 2] = kNan, row(1)[last] = kNan;
  if (c.rows > 2) row(2)[last] = kInf;
  if (c.rows > 3)
    for (std::int64_t j = 0; j < c.cols; ++j)
      row(3)[j] = -kInf;
  if (c.rows > 4)
    for (std::int64_t j = 0; j < c.cols; j += 3)
      row(4)[j] = -kInf;
  if (c.rows > 5) {
    for (std::int64_t j = 0; j < c.cols; ++j)
      row(5)[j] = -std::fabs(row(5)[j]) - 1.0f;
    row(5)[last] = 0.0f;
    row(5)[last / 2] = -0.0f;  // equal to +0: the lower index goes first
  }
  return x;
}

struct Pair {
  std::int64_t index;
  float score;
};

std::vector<Pair> host_top_k(const TopKCase& c, const std::vector<float>& x, std::int64_t r,
                             std::vector<float>& scores) {
  scores.assign(x.begin() + r * c.cols, x.begin() + (r + 1) * c.cols);
  if (c.softmax) pipeline::softmax_in_place(scores);
  std::vector<Classification> best(static_cast<std::size_t>(c.k));
  pipeline::top_k(scores, best);
  std::vector<Pair> out;
  for (const Classification& b : best)
    out.push_back({b.class_index, b.score});
  return out;
}

bool same_score(float got, float want, float tolerance) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tolerance;
}

class TopKRows : public ::testing::TestWithParam<TopKCase> {};

TEST_P(TopKRows, MatchesTheHostReference) {
  ANVIL_REQUIRE_GPU();
  const TopKCase& c = GetParam();
  const std::string what = describe(c);
  const std::vector<float> x = make_logits(c, 7);
  const auto pairs = static_cast<std::size_t>(c.rows * c.k);
  cuda::DeviceBuffer d_x(x.size() * sizeof(float));
  cuda::DeviceBuffer d_indices(pairs * sizeof(std::int32_t)), d_scores(pairs * sizeof(float));
  cuda::copy_to_device(d_x.data(), x.data(), d_x.bytes());
  test::poison(d_indices.data(), d_indices.bytes());
  test::poison(d_scores.data(), d_scores.bytes());
  cuda::Stream stream;
  cuda::kernels::top_k_rows(d_x.as<float>(), c.rows, c.cols, c.k, c.softmax,
                            d_indices.as<std::int32_t>(), d_scores.as<float>(), stream.get());
  stream.synchronize();
  std::vector<std::int32_t> indices(pairs);
  std::vector<float> scores(pairs);
  ANVIL_GPU_CHECK(
      cudaMemcpy(indices.data(), d_indices.data(), d_indices.bytes(), cudaMemcpyDeviceToHost));
  ANVIL_GPU_CHECK(
      cudaMemcpy(scores.data(), d_scores.data(), d_scores.bytes(), cudaMemcpyDeviceToHost));

  // Probabilities to 1e-6 (at most 1); raw logits exactly (they are copied).
  const float tolerance = c.softmax ? 1e-6f : 0.0f;
  int failures = 0;
  std::vector<float> row_scores;
  for (std::int64_t r = 0; r < c.rows && failures < 5; ++r) {
    const std::vector<Pair> want = host_top_k(c, x, r, row_scores);
    for (int j = 0; j < c.k; ++j) {
      const auto at = static_cast<std::size_t>(r * c.k + j);
      const Pair& w = want[static_cast<std::size_t>(j)];
      const std::int64_t got_index = indices[at];
      bool ok = same_score(scores[at], w.score, tolerance);
      if (c.values == Values::kQuantized || !c.softmax) {
        // Scores are exactly tied or far apart: the order is fully determined.
        ok = ok && got_index == w.index;
      } else {
        // A near tie after softmax may order two classes either way: the
        // class given must have the score the j-th best has.
        ok = ok && got_index >= 0 && got_index < c.cols &&
             same_score(row_scores[static_cast<std::size_t>(got_index)], w.score, tolerance);
      }
      if (!ok) {
        ADD_FAILURE() << what << ": row " << r << " rank " << j << " got (class " << got_index
                      << ", score " << scores[at] << ") want (class " << w.index << ", score "
                      << w.score << ")";
        ++failures;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, TopKRows,
                         ::testing::Values(TopKCase{8, 1000, 5, true, Values::kQuantized},
                                           TopKCase{8, 1000, 5, false, Values::kQuantized},
                                           TopKCase{8, 1000, 32, true, Values::kQuantized},
                                           TopKCase{7, 17, 17, true, Values::kQuantized},
                                           TopKCase{7, 17, 17, false, Values::kQuantized},
                                           TopKCase{6, 4097, 32, true, Values::kQuantized},
                                           TopKCase{6, 4097, 32, false, Values::kContinuous},
                                           TopKCase{130, 1000, 5, true, Values::kContinuous},
                                           TopKCase{3, 1, 1, true, Values::kQuantized},
                                           TopKCase{200, 10, 3, false, Values::kQuantized}));

// Checked before anything reaches the GPU: runs on any machine.
TEST(TopKRowsArguments, BadShapesAndKAreRefused) {
  std::int32_t index = 0;
  float score = 0.0f, x = 0.0f;
  auto run = [&](std::int64_t rows, std::int64_t cols, int k, const float* in) {
    cuda::kernels::top_k_rows(in, rows, cols, k, true, &index, &score, nullptr);
  };
  struct Bad {
    std::int64_t rows, cols;
    int k;
  };
  for (const Bad& b : {Bad{1, 10, 0}, Bad{1, 10, 11}, Bad{1, 100, cuda::kernels::kMaxTopK + 1},
                       Bad{-1, 10, 1}, Bad{1, 0, 1}}) {
    try {
      run(b.rows, b.cols, b.k, &x);
      ADD_FAILURE() << "rows=" << b.rows << " cols=" << b.cols << " k=" << b.k << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    }
  }
  try {
    run(1, 10, 1, nullptr);
    ADD_FAILURE() << "a null input was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
  }
}

}  // namespace
}  // namespace anvil
