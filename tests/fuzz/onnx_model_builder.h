// Small ONNX models built in code with the generated protobuf classes: the
// importer unit tests and the fuzzer's seed corpus start from the same models,
// so the fuzzer begins where the tests leave off.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "io/scratch_dir.h"
#include "onnx/onnx_subset.pb.h"

namespace anvil::testing {

// ONNX TensorProto.DataType codes used by the tests.
inline constexpr int kOnnxFloat = 1;
inline constexpr int kOnnxInt32 = 6;
inline constexpr int kOnnxInt64 = 7;
inline constexpr int kOnnxDouble = 11;

// A graph input dimension: a size, or a symbol such as the batch "N".
using InputDim = std::variant<std::int64_t, std::string>;

// Little-endian bytes of `values`, as ONNX raw_data stores them.
template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

inline onnx::TensorProto tensor_proto(const std::string& name, int data_type,
                                      const std::vector<std::int64_t>& dims) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(data_type);
  for (std::int64_t d : dims)
    t.add_dims(d);
  return t;
}

inline void add_int_attribute(onnx::NodeProto& node, const std::string& name, std::int64_t value) {
  auto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(value);
}

inline void add_float_attribute(onnx::NodeProto& node, const std::string& name, float value) {
  auto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::FLOAT);
  attr->set_f(value);
}

inline void add_ints_attribute(onnx::NodeProto& node, const std::string& name,
                               const std::vector<std::int64_t>& values) {
  auto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INTS);
  for (std::int64_t v : values)
    attr->add_ints(v);
}

inline void add_tensor_attribute(onnx::NodeProto& node, const std::string& name,
                                 const onnx::TensorProto& value) {
  auto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = value;
}

// Builds a ModelProto with one default-domain opset import.
class ModelBuilder {
 public:
  explicit ModelBuilder(int opset = 17) {
    model_.set_ir_version(8);
    model_.set_producer_name("anvil-tests");
    auto* entry = model_.add_opset_import();
    entry->set_version(opset);
    model_.mutable_graph()->set_name("test_graph");
  }

  onnx::ModelProto& model() { return model_; }
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }

  ModelBuilder& input(const std::string& name, const std::vector<InputDim>& dims,
                      int elem_type = kOnnxFloat) {
    auto* info = graph().add_input();
    info->set_name(name);
    auto* tensor_type = info->mutable_type()->mutable_tensor_type();
    tensor_type->set_elem_type(elem_type);
    auto* shape = tensor_type->mutable_shape();
    for (const InputDim& d : dims) {
      auto* dim = shape->add_dim();
      if (const auto* size = std::get_if<std::int64_t>(&d))
        dim->set_dim_value(*size);
      else
        dim->set_dim_param(std::get<std::string>(d));
    }
    return *this;
  }

  // Graph outputs get an element type but no shape: the importer infers both.
  ModelBuilder& output(const std::string& name, int elem_type = kOnnxFloat) {
    auto* info = graph().add_output();
    info->set_name(name);
    info->mutable_type()->mutable_tensor_type()->set_elem_type(elem_type);
    return *this;
  }

  onnx::NodeProto& node(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "") {
    auto* node = graph().add_node();
    node->set_op_type(op_type);
    if (!name.empty()) node->set_name(name);
    for (const auto& in : inputs)
      node->add_input(in);
    for (const auto& out : outputs)
      node->add_output(out);
    return *node;
  }

  onnx::TensorProto& initializer(const onnx::TensorProto& tensor) {
    *graph().add_initializer() = tensor;
    return *graph().mutable_initializer(graph().initializer_size() - 1);
  }

  // A float32 initializer with its data in raw_data.
  onnx::TensorProto& raw_f32(const std::string& name, const std::vector<std::int64_t>& dims,
                             const std::vector<float>& values) {
    auto t = tensor_proto(name, kOnnxFloat, dims);
    t.set_raw_data(raw_bytes(values));
    return initializer(t);
  }

  // An int64 initializer with its data in raw_data.
  onnx::TensorProto& raw_i64(const std::string& name, const std::vector<std::int64_t>& dims,
                             const std::vector<std::int64_t>& values) {
    auto t = tensor_proto(name, kOnnxInt64, dims);
    t.set_raw_data(raw_bytes(values));
    return initializer(t);
  }

  std::string bytes() const { return model_.SerializeAsString(); }

 private:
  onnx::ModelProto model_;
};

// x[N,3] -> Relu 'relu' -> y: the smallest model the importer accepts.
inline ModelBuilder relu_model(int opset = 17) {
  ModelBuilder b(opset);
  b.input("x", {std::string("N"), std::int64_t{3}}).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu");
  return b;
}

// The flatten PyTorch exports for a dynamic batch: x[N,C,1,1] ->
// Shape -> Gather(0) -> Unsqueeze(0) -> Concat(_, [-1]) -> Reshape(x, _) -> y.
inline ModelBuilder flatten_model(const std::vector<InputDim>& x_dims) {
  ModelBuilder b(13);  // Unsqueeze takes its axes as an input from opset 13
  b.input("x", x_dims).output("y");
  onnx::TensorProto zero = tensor_proto("zero", kOnnxInt64, {});
  zero.set_raw_data(raw_bytes(std::vector<std::int64_t>{0}));
  b.initializer(zero);
  b.raw_i64("axes0", {1}, {0});
  b.raw_i64("minus_one", {1}, {-1});
  b.node("Shape", {"x"}, {"shape"}, "shape");
  b.node("Gather", {"shape", "zero"}, {"batch"}, "gather");
  b.node("Unsqueeze", {"batch", "axes0"}, {"batch_1d"}, "unsqueeze");
  add_int_attribute(b.node("Concat", {"batch_1d", "minus_one"}, {"target"}, "concat"), "axis", 0);
  b.node("Reshape", {"x", "target"}, {"y"}, "reshape");
  return b;
}

// The tests' scratch directories are io::ScratchDir (unique per process and
// object, removed on destruction).
using ScratchDir = io::ScratchDir;

}  // namespace anvil::testing
