// One line of the ablation's printed results, "image 3: class 281 (p=0.4210)\n":
// the line the guide's print_result writes per image, made with
// std::to_chars. snprintf made the same 128 lines in 61 us on the H100's
// host (docs/PERFORMANCE.md, eleventh session), the last batch's printing
// being the end of every timed job.
#pragma once

#include <charconv>
#include <cstdint>
#include <iterator>
#include <string>
#include <system_error>

namespace anvil::cli {

inline void append_result_line(std::string& sink, std::int64_t image, std::int64_t class_index,
                               double probability) {
  // Room for any double in fixed notation (up to 309 integer digits).
  char number[400];
  const auto append = [&](auto value, auto... format) {
    const std::to_chars_result r = std::to_chars(number, std::end(number), value, format...);
    if (r.ec == std::errc()) sink.append(number, r.ptr);
  };
  sink += "image ";
  append(image);
  sink += ": class ";
  append(class_index);
  sink += " (p=";
  append(probability, std::chars_format::fixed, 4);
  sink += ")\n";
}

}  // namespace anvil::cli
