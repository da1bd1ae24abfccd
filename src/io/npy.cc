#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <regex>

#include "onnx/tensor_proto.h"

namespace anvil::io {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct Header {
  std::string descr;
  bool fortran_order = false;
  Extents extents;
};

Header parse_header(const std::string& text, const std::string& where) {
  Header h;
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"('descr'\s*:\s*'([^']+)')")))
    fail(ErrorKind::kInvalidArgument, where, ": .npy header has no 'descr'");
  h.descr = m[1];
  h.fortran_order = std::regex_search(text, std::regex(R"('fortran_order'\s*:\s*True)"));
  if (!std::regex_search(text, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")))
    fail(ErrorKind::kInvalidArgument, where, ": .npy header has no 'shape'");
  const std::string dims = m[1];
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it)
    h.extents.push_back(std::stoll(it->str()));
  return h;
}

DType dtype_of_descr(const std::string& descr, const std::string& where) {
  if (descr == "<f4") return DType::kFloat32;
  if (descr == "<f8") return DType::kFloat64;
  if (descr == "<i8") return DType::kInt64;
  if (descr == "<i4") return DType::kInt32;
  if (descr == "|u1") return DType::kUInt8;
  fail(ErrorKind::kUnsupported, where, ": .npy dtype '", descr,
       "' is not supported (use float32, float64, int64, int32 or uint8, little-endian)");
}

std::string descr_of(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat64:
      return "<f8";
    case DType::kInt64:
      return "<i8";
    case DType::kInt32:
      return "<i4";
    case DType::kUInt8:
      return "|u1";
    default:
      fail(ErrorKind::kUnsupported, "writing ", to_string(dtype), " tensors to .npy");
  }
}

}  // namespace

Tensor read_npy(const std::filesystem::path& path) {
  const std::string where = path.string();
  const std::string bytes = onnx::read_file(path);
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0)
    fail(ErrorKind::kInvalidArgument, where, ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(ErrorKind::kInvalidArgument, where, ": truncated .npy header");
    for (int i = 3; i >= 0; --i)
      header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    offset = 12;
  } else {
    fail(ErrorKind::kUnsupported, where, ": .npy format version ", major);
  }
  if (offset + header_len > bytes.size())
    fail(ErrorKind::kInvalidArgument, where, ": truncated .npy header");
  const Header h = parse_header(bytes.substr(offset, header_len), where);
  if (h.fortran_order)
    fail(ErrorKind::kUnsupported, where,
         ": Fortran-ordered arrays; save with np.ascontiguousarray");
  const DType dtype = dtype_of_descr(h.descr, where);
  Tensor raw(dtype, h.extents);
  const std::size_t data_at = offset + header_len;
  if (bytes.size() - data_at != raw.byte_size())
    fail(ErrorKind::kInvalidArgument, where, ": holds ", bytes.size() - data_at,
         " data bytes, its header ", to_string(h.extents), " ", h.descr, " needs ",
         raw.byte_size());
  std::memcpy(raw.bytes(), bytes.data() + data_at, raw.byte_size());
  if (dtype != DType::kFloat64) return raw;
  Tensor narrowed(DType::kFloat32, h.extents);
  std::copy(raw.data<double>(), raw.data<double>() + raw.element_count(), narrowed.data<float>());
  return narrowed;
}

void write_npy(const std::filesystem::path& path, const Tensor& tensor) {
  std::string shape;
  for (std::int64_t e : tensor.extents())
    shape += std::to_string(e) + ",";
  if (tensor.rank() > 1) shape.pop_back();
  std::string header = "{'descr': '" + descr_of(tensor.dtype()) +
                       "', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Pad with spaces so the data starts on a 64-byte boundary; end with '\n'.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(ErrorKind::kIo, path.string(), ": cannot open for writing");
  out.write(kMagic, 6);
  const char version[2] = {1, 0};
  out.write(version, 2);
  const char len[2] = {static_cast<char>(header.size() & 0xff),
                       static_cast<char>(header.size() >> 8)};
  out.write(len, 2);
  out << header;
  out.write(reinterpret_cast<const char*>(tensor.bytes()),
            static_cast<std::streamsize>(tensor.byte_size()));
  if (!out) fail(ErrorKind::kIo, path.string(), ": write failed");
}

}  // namespace anvil::io
