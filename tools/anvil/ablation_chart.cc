#include "ablation_chart.h"

#include <png.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace anvil::cli {

namespace {

constexpr int kWidth = 320;
constexpr int kRowHeight = 14;
constexpr int kBarHeight = 10;
constexpr int kMargin = 8;

struct Rgb {
  std::uint8_t r, g, b;
};
constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGrey{128, 128, 128}, kBlue{40, 100, 200};

}  // namespace

std::string ablation_chart_png(const AblationReport& report) {
  const int rows = static_cast<int>(report.rows.size());
  const int height = 2 * kMargin + std::max(rows, 1) * kRowHeight;
  std::vector<Rgb> pixels(static_cast<std::size_t>(kWidth) * static_cast<std::size_t>(height),
                          kWhite);
  auto fill = [&](int x0, int y0, int x1, int y1, Rgb c) {
    for (int y = std::max(y0, 0); y < std::min(y1, height); ++y)
      for (int x = std::max(x0, 0); x < std::min(x1, kWidth); ++x)
        pixels[static_cast<std::size_t>(y) * kWidth + static_cast<std::size_t>(x)] = c;
  };
  double longest = 0;
  for (const AblationRow& row : report.rows)
    if (row.available) longest = std::max(longest, row.timed_ms);
  fill(kMargin - 2, kMargin, kMargin, height - kMargin, kBlack);  // the axis
  for (int i = 0; i < rows; ++i) {
    const AblationRow& row = report.rows[static_cast<std::size_t>(i)];
    if (!row.available || longest <= 0) continue;
    const int length =
        std::max(1, static_cast<int>(row.timed_ms / longest * (kWidth - 2 * kMargin)));
    const int y = kMargin + i * kRowHeight + (kRowHeight - kBarHeight) / 2;
    fill(kMargin, y, kMargin + length, y + kBarHeight, row.config == 0 ? kGrey : kBlue);
  }

  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = kWidth;
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr))
    fail(ErrorKind::kInternal, "ablation chart: libpng: ", image.message);
  std::string png(size, '\0');
  if (!png_image_write_to_memory(&image, png.data(), &size, 0, pixels.data(), 0, nullptr))
    fail(ErrorKind::kInternal, "ablation chart: libpng: ", image.message);
  png.resize(size);
  return png;
}

void write_ablation_chart(const std::filesystem::path& path, const AblationReport& report) {
  const std::string png = ablation_chart_png(report);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(png.data(), static_cast<std::streamsize>(png.size()));
  out.close();
  if (!out) fail(ErrorKind::kIo, path.string(), ": cannot write the chart");
}

}  // namespace anvil::cli
