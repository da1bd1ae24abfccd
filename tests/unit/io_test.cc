// .npy and image files: round trips and clear errors for bad files.
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/image.h"
#include "io/npy.h"
#include "io/scratch_dir.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;

// A folder per process (ctest runs this binary's tests as parallel
// processes), removed when the process exits.
fs::path temp_path(const std::string& name) {
  static const io::ScratchDir dir("anvil_io_test");
  return dir.path() / name;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A width x height RGB gradient, so decoding errors show up as wrong pixels.
std::vector<std::uint8_t> gradient(int width, int height) {
  std::vector<std::uint8_t> rgb;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        rgb.push_back(static_cast<std::uint8_t>((x * 7 + y * 3 + c * 50) % 256));
  return rgb;
}

void write_png(const fs::path& path, int width, int height, const std::vector<std::uint8_t>& rgb) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_RGB;
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, rgb.data(), 0, nullptr));
}

void write_jpeg(const fs::path& path, int width, int height, const std::vector<std::uint8_t>& rgb) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  jpeg_stdio_dest(&cinfo, file);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 100, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(rgb.data() + cinfo.next_scanline * width * 3);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::fclose(file);
}

TEST(Npy, RoundTripsFloat32) {
  const fs::path path = temp_path("x.npy");
  Tensor t = Tensor::from<float>({2, 3}, {1, -2, 3.5f, 0, 1e-3f, 7});
  io::write_npy(path, t);
  Tensor back = io::read_npy(path);
  EXPECT_EQ(back.extents(), (Extents{2, 3}));
  EXPECT_EQ(std::vector<float>(back.values<float>().begin(), back.values<float>().end()),
            std::vector<float>(t.values<float>().begin(), t.values<float>().end()));
}

TEST(Npy, TruncatedDataIsAnErrorNamingTheFile) {
  const fs::path path = temp_path("short.npy");
  io::write_npy(path, Tensor::from<float>({4}, {1, 2, 3, 4}));
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  write_bytes(path, bytes.substr(0, bytes.size() - 3));
  try {
    io::read_npy(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("short.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("needs 16"), std::string::npos) << e.what();
  }
}

TEST(Npy, NotAnNpyFileIsAnError) {
  const fs::path path = temp_path("bad.npy");
  write_bytes(path, "hello, not numpy");
  EXPECT_THROW(io::read_npy(path), Error);
}

TEST(Image, DecodesPngExactly) {
  const fs::path path = temp_path("g.png");
  const auto rgb = gradient(17, 9);
  write_png(path, 17, 9, rgb);
  io::Image image = io::decode_image(path);
  EXPECT_EQ(image.width, 17);
  EXPECT_EQ(image.height, 9);
  EXPECT_EQ(image.rgb, rgb);
}

TEST(Image, DecodesJpegCloseToTheSource) {
  const fs::path path = temp_path("g.jpg");
  const auto rgb = gradient(32, 16);
  write_jpeg(path, 32, 16, rgb);
  io::Image image = io::decode_image(path);
  ASSERT_EQ(image.width, 32);
  ASSERT_EQ(image.height, 16);
  double error = 0;
  for (std::size_t i = 0; i < rgb.size(); ++i)
    error += std::abs(int(image.rgb[i]) - int(rgb[i]));
  EXPECT_LT(error / static_cast<double>(rgb.size()), 8.0) << "mean absolute error per channel";
}

TEST(Image, TruncatedJpegIsAnErrorNamingTheFile) {
  const fs::path good = temp_path("full.jpg"), bad = temp_path("cut.jpg");
  write_jpeg(good, 32, 16, gradient(32, 16));
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  write_bytes(bad, bytes.substr(0, 200));
  // libjpeg would pad the missing rows with gray and only warn: an error here.
  try {
    io::decode_image(bad);
    FAIL() << "a truncated JPEG decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    const std::string m = e.what();
    EXPECT_NE(m.find("cut.jpg"), std::string::npos) << m;
    EXPECT_NE(m.find("corrupt JPEG"), std::string::npos) << m;
  }
}

TEST(Image, CorruptPngAndUnknownFormatsAreErrors) {
  const fs::path png = temp_path("g2.png"), junk = temp_path("junk.bin");
  write_png(png, 8, 8, gradient(8, 8));
  std::ifstream in(png, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  bytes.resize(bytes.size() / 2);
  write_bytes(png, bytes);
  EXPECT_THROW(io::decode_image(png), Error);
  write_bytes(junk, "GIF89a....");
  try {
    io::decode_image(junk);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a JPEG or PNG"), std::string::npos) << e.what();
  }
}

TEST(Image, PreprocessMatchesTorchvisionNormalizationOnAFlatImage) {
  // A flat image resizes and crops to the same color everywhere, so each
  // plane must equal (value/255 - mean) / std exactly.
  io::Image image{300, 250, std::vector<std::uint8_t>(300 * 250 * 3)};
  for (std::size_t i = 0; i < image.rgb.size(); i += 3) {
    image.rgb[i] = 255;
    image.rgb[i + 1] = 128;
    image.rgb[i + 2] = 0;
  }
  std::vector<float> out(3 * 224 * 224);
  io::preprocess_imagenet(image, 224, 224, out.data());
  EXPECT_NEAR(out[0], (1.0f - 0.485f) / 0.229f, 1e-5);
  EXPECT_NEAR(out[224 * 224 + 1000], (128 / 255.0f - 0.456f) / 0.224f, 1e-5);
  EXPECT_NEAR(out[2 * 224 * 224 + 5000], (0.0f - 0.406f) / 0.225f, 1e-5);
}

}  // namespace
}  // namespace anvil
