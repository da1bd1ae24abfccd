#include "io/image.h"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>

#include "anvil/error.h"
#include "onnx/tensor_proto.h"

namespace anvil::io {

namespace {

// libjpeg reports fatal errors through error_exit, which must not return:
// jump back to decode_jpeg and turn it into an anvil::Error there.
struct JpegError {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg's warnings (level -1) all mean corrupt data: a truncated file comes
// back padded with gray after "Premature end of JPEG file". Such an image
// would be classified as if it were whole, so a warning is an error too (and
// libjpeg no longer prints it to stderr). Trace messages (level >= 0) are
// ignored.
void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_jpeg_error(cinfo);
}

// Only trivially destructible locals live between setjmp and longjmp.
bool decode_jpeg_raw(const std::string& bytes, Image& image, JpegError& err) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_jpeg_error;
  err.base.emit_message = on_jpeg_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  image.width = static_cast<int>(cinfo.output_width);
  image.height = static_cast<int>(cinfo.output_height);
  image.rgb.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row =
        image.rgb.data() + static_cast<std::size_t>(cinfo.output_scanline) * image.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

Image decode_png(const std::string& bytes, const std::string& where) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    fail(ErrorKind::kInvalidArgument, where, ": corrupt PNG (", png.message, ")");
  png.format = PNG_FORMAT_RGB;
  Image image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.rgb.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, image.rgb.data(), 0, nullptr)) {
    std::string message = png.message;
    png_image_free(&png);
    fail(ErrorKind::kInvalidArgument, where, ": corrupt PNG (", message, ")");
  }
  return image;
}

float sample_bilinear(const Image& img, float y, float x, int c) {
  y = std::clamp(y, 0.0f, static_cast<float>(img.height - 1));
  x = std::clamp(x, 0.0f, static_cast<float>(img.width - 1));
  const int y0 = static_cast<int>(y), x0 = static_cast<int>(x);
  const int y1 = std::min(y0 + 1, img.height - 1), x1 = std::min(x0 + 1, img.width - 1);
  const float fy = y - y0, fx = x - x0;
  auto at = [&](int yy, int xx) {
    return static_cast<float>(img.rgb[(static_cast<std::size_t>(yy) * img.width + xx) * 3 + c]);
  };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
         fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
}

}  // namespace

Image decode_image(const std::filesystem::path& path) {
  const std::string where = path.string();
  const std::string bytes = onnx::read_file(path);
  Image image;
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8) {
    JpegError err{};
    if (!decode_jpeg_raw(bytes, image, err))
      fail(ErrorKind::kInvalidArgument, where, ": corrupt JPEG (", err.message, ")");
  } else if (bytes.size() >= 8 &&
             png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0) {
    image = decode_png(bytes, where);
  } else {
    fail(ErrorKind::kInvalidArgument, where, ": not a JPEG or PNG image");
  }
  if (image.width <= 0 || image.height <= 0)
    fail(ErrorKind::kInvalidArgument, where, ": image has no pixels");
  return image;
}

void preprocess_imagenet(const Image& image, int height, int width, float* out) {
  static constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
  static constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};
  // Resize the shorter side to height*256/224 then crop the center, in one
  // pass: map each output pixel back into the source image.
  const float target_short = static_cast<float>(height) * 256.0f / 224.0f;
  const float scale = static_cast<float>(std::min(image.width, image.height)) / target_short;
  const float resized_h = image.height / scale, resized_w = image.width / scale;
  const float top = (resized_h - height) / 2.0f, left = (resized_w - width) / 2.0f;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const float sy = (y + top + 0.5f) * scale - 0.5f, sx = (x + left + 0.5f) * scale - 0.5f;
        const float v = sample_bilinear(image, sy, sx, c) / 255.0f;
        out[(static_cast<std::size_t>(c) * height + y) * width + x] = (v - kMean[c]) / kStd[c];
      }
}

}  // namespace anvil::io
