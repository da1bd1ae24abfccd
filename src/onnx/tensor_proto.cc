#include "onnx/tensor_proto.h"

#include <cstring>
#include <fstream>
#include <limits>

#include "anvil/error.h"
#include "onnx/onnx_subset.pb.h"

namespace anvil::onnx {

namespace {

// Refuse absurd sizes before allocating: a corrupt dims field must give an
// error, not an out-of-memory abort.
constexpr std::int64_t kMaxTensorBytes = std::int64_t{1} << 36;  // 64 GiB

Extents checked_extents(const TensorProto& proto, DType dtype, const std::string& what) {
  Extents extents(proto.dims().begin(), proto.dims().end());
  std::int64_t bytes = static_cast<std::int64_t>(size_of(dtype));
  for (std::int64_t d : extents) {
    if (d < 0)
      fail(ErrorKind::kInvalidModel, what, " has a negative dimension ", to_string(extents));
    if (d != 0 && bytes > kMaxTensorBytes / d)
      fail(ErrorKind::kInvalidModel, what, " has an impossibly large shape ", to_string(extents));
    bytes *= d;
  }
  return extents;
}

// A path from an external_data "location" entry must name a file inside the
// model's folder: no absolute paths, no "..", no symlink leading out.
std::filesystem::path resolve_external(const std::filesystem::path& model_dir,
                                       const std::string& location, const std::string& what) {
  namespace fs = std::filesystem;
  fs::path rel(location);
  if (location.empty() || rel.is_absolute() || rel.has_root_name())
    fail(ErrorKind::kInvalidModel, what, ": external data location '", location,
         "' must be a relative path inside the model's folder");
  std::error_code ec;
  fs::path base = fs::weakly_canonical(model_dir.empty() ? fs::path(".") : model_dir, ec);
  fs::path full = fs::weakly_canonical(base / rel, ec);
  auto [base_end, full_it] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (ec || base_end != base.end())
    fail(ErrorKind::kInvalidModel, what, ": external data location '", location,
         "' points outside the model's folder ", base.string(), "; refusing to read it");
  return full;
}

Tensor read_external(const TensorProto& proto, const std::filesystem::path& model_dir,
                     const std::string& what, DType dtype, Extents extents) {
  std::string location;
  std::int64_t offset = 0, length = -1;
  for (const auto& entry : proto.external_data()) {
    try {
      if (entry.key() == "location") location = entry.value();
      if (entry.key() == "offset") offset = std::stoll(entry.value());
      if (entry.key() == "length") length = std::stoll(entry.value());
    } catch (const std::exception&) {
      fail(ErrorKind::kInvalidModel, what, ": external data ", entry.key(), " '", entry.value(),
           "' is not a number");
    }
  }
  const std::filesystem::path path = resolve_external(model_dir, location, what);
  const auto need = element_count(extents) * static_cast<std::int64_t>(size_of(dtype));
  if (offset < 0 || (length >= 0 && length != need))
    fail(ErrorKind::kInvalidModel, what, ": external data offset ", offset, " / length ", length,
         " do not match the ", need, " bytes its shape needs");
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(ErrorKind::kIo, what, ": cannot open external data file ", path.string());
  // Check the size before allocating: a corrupt shape must not cost gigabytes.
  std::error_code ec;
  const auto file_size = static_cast<std::int64_t>(std::filesystem::file_size(path, ec));
  if (ec || file_size < offset || file_size - offset < need)
    fail(ErrorKind::kInvalidModel, what, ": external data file ", path.string(),
         " is too short for ", need, " bytes at offset ", offset);
  Tensor tensor(dtype, std::move(extents));
  file.seekg(offset);
  file.read(reinterpret_cast<char*>(tensor.bytes()), need);
  if (!file || file.gcount() != need)
    fail(ErrorKind::kInvalidModel, what, ": external data file ", path.string(),
         " is too short for ", need, " bytes at offset ", offset);
  return tensor;
}

template <typename Dst, typename Field>
Tensor copy_typed(const Field& field, DType dtype, Extents extents, const std::string& what,
                  const char* field_name) {
  const std::int64_t count = element_count(extents);
  if (static_cast<std::int64_t>(field.size()) != count)
    fail(ErrorKind::kInvalidModel, what, " has ", field.size(), " values in ", field_name,
         " but its shape ", to_string(extents), " needs ", count);
  Tensor tensor(dtype, std::move(extents));
  auto* out = reinterpret_cast<Dst*>(tensor.bytes());
  for (int i = 0; i < field.size(); ++i)
    out[i] = static_cast<Dst>(field.Get(i));
  return tensor;
}

Tensor read_typed(const TensorProto& proto, const std::string& what, DType dtype, Extents extents) {
  switch (dtype) {
    case DType::kFloat32:
      return copy_typed<float>(proto.float_data(), dtype, extents, what, "float_data");
    case DType::kFloat64:
      return copy_typed<double>(proto.double_data(), dtype, extents, what, "double_data");
    case DType::kInt64:
      return copy_typed<std::int64_t>(proto.int64_data(), dtype, extents, what, "int64_data");
    case DType::kInt32:
      return copy_typed<std::int32_t>(proto.int32_data(), dtype, extents, what, "int32_data");
    case DType::kInt8:
      return copy_typed<std::int8_t>(proto.int32_data(), dtype, extents, what, "int32_data");
    case DType::kUInt8:
      return copy_typed<std::uint8_t>(proto.int32_data(), dtype, extents, what, "int32_data");
    case DType::kBool:
      return copy_typed<std::uint8_t>(proto.int32_data(), dtype, extents, what, "int32_data");
    case DType::kFloat16:  // stored as the raw 16 bits in int32_data
      return copy_typed<std::uint16_t>(proto.int32_data(), dtype, extents, what, "int32_data");
    case DType::kUndefined:
    case DType::kFloat8E4M3:
      break;
  }
  fail(ErrorKind::kInternal, what, ": no typed field for ", to_string(dtype));
}

}  // namespace

DType dtype_from_onnx(int onnx_type) {
  switch (onnx_type) {
    case 1:
      return DType::kFloat32;
    case 2:
      return DType::kUInt8;
    case 3:
      return DType::kInt8;
    case 6:
      return DType::kInt32;
    case 7:
      return DType::kInt64;
    case 9:
      return DType::kBool;
    case 10:
      return DType::kFloat16;
    case 11:
      return DType::kFloat64;
    default:
      return DType::kUndefined;
  }
}

Tensor to_tensor(const TensorProto& proto, const std::filesystem::path& model_dir,
                 const std::string& what) {
  const DType dtype = dtype_from_onnx(proto.data_type());
  if (dtype == DType::kUndefined)
    fail(
        ErrorKind::kUnsupported, what, " has ONNX data type ", proto.data_type(),
        ", which Anvil does not support (float, float16, double, int8, uint8, int32, int64, bool)");
  // Every data size is checked against the shape before the tensor is
  // allocated, so a few corrupt bytes cannot claim gigabytes.
  Extents extents = checked_extents(proto, dtype, what);
  if (proto.data_location() == TensorProto::EXTERNAL)
    return read_external(proto, model_dir, what, dtype, std::move(extents));
  if (!proto.has_raw_data()) return read_typed(proto, what, dtype, std::move(extents));
  const auto need = static_cast<std::size_t>(element_count(extents)) * size_of(dtype);
  if (proto.raw_data().size() != need)
    fail(ErrorKind::kInvalidModel, what, " has ", proto.raw_data().size(),
         " bytes of data, but its shape ", to_string(extents), " of ", to_string(dtype), " needs ",
         need);
  Tensor tensor(dtype, std::move(extents));
  if (need) std::memcpy(tensor.bytes(), proto.raw_data().data(), need);
  return tensor;
}

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail(ErrorKind::kIo, path.string(), ": is a directory, expected a file");
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(ErrorKind::kIo, path.string(), ": cannot open file (does it exist?)");
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) fail(ErrorKind::kIo, path.string(), ": read error");
  return bytes;
}

Tensor read_tensor_file(const std::filesystem::path& path, std::string* name) {
  const std::string bytes = read_file(path);
  TensorProto proto;
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    fail(ErrorKind::kInvalidModel, path.string(), ": not a serialized ONNX TensorProto");
  if (name) *name = proto.name();
  return to_tensor(proto, path.parent_path(), cat(path.string(), " tensor '", proto.name(), "'"));
}

}  // namespace anvil::onnx
