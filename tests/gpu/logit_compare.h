// Shared by the GPU whole-model tests (engine_model, engine_int8,
// torchvision_accuracy): a classifier's logits against a reference's, in the
// measures those tests hold an engine to (max abs error relative to the
// output range, top-1 agreement) and one diagnostic line that says where the
// worst element is.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace anvil::test {

// A sample whose top-1 class is not the reference's.
struct Top1Miss {
  std::int64_t sample = 0, got_class = 0, want_class = 0;
  double margin = 0;  // the reference's logit of want_class minus that of got_class
};

struct LogitComparison {
  std::size_t count = 0;  // logits compared: samples() rows of `classes`
  std::int64_t classes = 0;
  double max_abs_error = 0;  // max |got - want|, the difference taken in double
  double output_range = 0;   // max |want|
  std::size_t worst = 0;     // flat index of the first largest |got - want|
  float worst_got = 0, worst_want = 0;
  int top1_agree = 0;  // samples whose first largest logit is at the reference's
  std::vector<Top1Miss> misses;

  std::int64_t samples() const { return static_cast<std::int64_t>(count) / classes; }
  double relative_error() const { return max_abs_error / output_range; }
  // Misses where the reference's own top-2 margin is within 2 x max_abs_error:
  // an error of that size may flip them without anything being wrong.
  int near_ties() const {
    return static_cast<int>(std::count_if(misses.begin(), misses.end(), [&](const Top1Miss& m) {
      return m.margin <= 2 * max_abs_error;
    }));
  }
};

// `got` against `want`, both rows of `classes` logits. The caller checks
// `got` for NaN first: a NaN is never the worst element nor a row's top-1.
inline LogitComparison compare_logits(std::span<const float> got, std::span<const float> want,
                                      std::int64_t classes) {
  if (classes <= 0 || got.size() != want.size() ||
      want.size() % static_cast<std::size_t>(classes) != 0)
    throw std::invalid_argument("compare_logits: " + std::to_string(got.size()) + " against " +
                                std::to_string(want.size()) + " logits, not rows of " +
                                std::to_string(classes));
  LogitComparison r;
  r.count = want.size();
  r.classes = classes;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double err = std::abs(static_cast<double>(got[i]) - want[i]);
    if (err > r.max_abs_error) {
      r.max_abs_error = err;
      r.worst = i;
    }
    r.output_range = std::max(r.output_range, static_cast<double>(std::abs(want[i])));
  }
  r.worst_got = got.empty() ? 0.0f : got[r.worst];
  r.worst_want = want.empty() ? 0.0f : want[r.worst];
  const auto row = static_cast<std::size_t>(classes);
  for (std::int64_t b = 0; b < r.samples(); ++b) {
    const float* g = got.data() + static_cast<std::size_t>(b) * row;
    const float* w = want.data() + static_cast<std::size_t>(b) * row;
    const std::int64_t top_got = std::max_element(g, g + row) - g;
    const std::int64_t top_want = std::max_element(w, w + row) - w;
    if (top_got == top_want) {
      ++r.top1_agree;
      continue;
    }
    r.misses.push_back(
        {b, top_got, top_want, static_cast<double>(w[top_want]) - static_cast<double>(w[top_got])});
  }
  return r;
}

// "max abs error ..., relative ..., top-1 agreement a/b; worst: sample s
// class c got g want w; output range r".
inline std::string describe(const LogitComparison& r) {
  char line[512];
  std::snprintf(
      line, sizeof line,
      "max abs error %.3g, relative to the output range %.3g, top-1 agreement %d/%lld; "
      "worst: sample %lld class %lld got %.6g want %.6g; output range %.4g",
      r.max_abs_error, r.relative_error(), r.top1_agree, static_cast<long long>(r.samples()),
      static_cast<long long>(static_cast<std::int64_t>(r.worst) / r.classes),
      static_cast<long long>(static_cast<std::int64_t>(r.worst) % r.classes),
      static_cast<double>(r.worst_got), static_cast<double>(r.worst_want), r.output_range);
  return line;
}

// Prints "label: describe(r)[; note]", then the first few top-1 misses and
// how many of them are near ties.
inline void print_logit_comparison(const std::string& label, const LogitComparison& r,
                                   const std::string& note = "") {
  std::printf("%s: %s%s%s\n", label.c_str(), describe(r).c_str(), note.empty() ? "" : "; ",
              note.c_str());
  for (std::size_t i = 0; i < r.misses.size() && i < 5; ++i) {
    const Top1Miss& m = r.misses[i];
    std::printf("  top-1 differs at sample %lld: got class %lld, want %lld (reference margin %g)\n",
                static_cast<long long>(m.sample), static_cast<long long>(m.got_class),
                static_cast<long long>(m.want_class), m.margin);
  }
  if (!r.misses.empty())
    std::printf("  %d of %zu disagreements are near ties (reference margin <= 2 x max abs error)\n",
                r.near_ties(), r.misses.size());
}

}  // namespace anvil::test
