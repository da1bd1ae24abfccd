// Writes the importer fuzzer's seed corpus: a few small valid models that
// together touch every importer path (raw, typed and external initializers,
// Constant nodes, symbolic shapes, shape subgraphs, the CNN ops) so mutations
// start deep inside the importer rather than at the protobuf parser.
//
//   make_seed_corpus SEED_DIR MODEL_DIR
//
// MODEL_DIR is the folder the fuzzer resolves external data against; it gets
// the weights file the external-data seed refers to.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>

#include "anvil/error.h"
#include "onnx/importer.h"
#include "onnx_model_builder.h"

namespace {

namespace fs = std::filesystem;
using namespace anvil::testing;

ModelBuilder initializers_model() {
  ModelBuilder b = relu_model();
  b.raw_f32("raw_f32", {2, 3}, {1, 2, 3, 4, 5, 6});
  b.raw_i64("raw_i64", {2}, {-1, 7});
  auto f = tensor_proto("f", kOnnxFloat, {2});
  f.add_float_data(0.5f);
  f.add_float_data(-1.5f);
  auto d = tensor_proto("d", kOnnxDouble, {});
  d.add_double_data(0.25);
  auto i64 = tensor_proto("i64", kOnnxInt64, {1, 2});
  i64.add_int64_data(3);
  i64.add_int64_data(-4);
  b.initializer(f);
  b.initializer(d);
  b.initializer(i64);
  // int32_data carries int32, int8, uint8, bool and float16 (as raw bits).
  const std::pair<const char*, int> int32_carried[] = {
      {"i32", kOnnxInt32}, {"i8", 3}, {"u8", 2}, {"b", 9}, {"h", 10}};
  for (const auto& [name, type] : int32_carried) {
    auto t = tensor_proto(name, type, {2});
    t.add_int32_data(1);
    t.add_int32_data(0);
    b.initializer(t);
  }
  for (const auto& init : b.graph().initializer())
    b.output(init.name(), init.data_type());
  return b;
}

ModelBuilder constant_model() {
  ModelBuilder b;
  b.output("y");
  auto value = tensor_proto("", kOnnxFloat, {3});
  for (float v : {-1.0f, 0.0f, 4.0f})
    value.add_float_data(v);
  add_tensor_attribute(b.node("Constant", {}, {"c"}, "const"), "value", value);
  b.node("Relu", {"c"}, {"y"}, "relu");
  return b;
}

ModelBuilder external_data_model() {
  ModelBuilder b = relu_model();
  auto w = tensor_proto("w", kOnnxFloat, {2, 3});
  w.set_data_location(anvil::onnx::TensorProto::EXTERNAL);
  for (const auto& [key, value] :
       {std::pair{"location", "weights.bin"}, {"offset", "0"}, {"length", "24"}}) {
    auto* entry = w.add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  }
  b.initializer(w);
  b.output("w");
  return b;
}

// Conv -> BatchNormalization -> activations -> Pad/Slice/Concat/Transpose ->
// ReduceMean -> elementwise arithmetic -> Softmax, on a dynamic batch.
ModelBuilder cnn_model() {
  ModelBuilder b(17);
  b.input("x", {std::string("N"), std::int64_t{3}, std::int64_t{8}, std::int64_t{8}});
  b.output("y").output("flat");
  b.raw_f32("w", {4, 3, 3, 3}, std::vector<float>(4 * 3 * 3 * 3, 0.1f));
  b.raw_f32("bias", {4}, {0, 1, 2, 3});
  for (const char* name : {"bn_scale", "bn_b", "bn_mean", "bn_var"})
    b.raw_f32(name, {4}, {1, 1, 1, 1});
  b.raw_i64("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  b.raw_i64("starts", {2}, {1, 1});
  b.raw_i64("ends", {2}, {9, 9});
  b.raw_i64("axes23", {2}, {2, 3});
  b.raw_i64("axis2", {1}, {2});
  b.raw_f32("zero", {}, {0});
  b.raw_f32("six", {}, {6});
  b.raw_f32("slope", {4, 1, 1}, {0.1f, 0.2f, 0.3f, 0.4f});
  b.raw_f32("vec8", {8}, {1, 2, 3, 4, 5, 6, 7, 8});

  auto& conv = b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv");
  add_ints_attribute(conv, "pads", {1, 1, 1, 1});
  add_ints_attribute(conv, "kernel_shape", {3, 3});
  add_float_attribute(
      b.node("BatchNormalization", {"c", "bn_scale", "bn_b", "bn_mean", "bn_var"}, {"bn"}, "bn"),
      "epsilon", 1e-5f);
  b.node("Relu", {"bn"}, {"r"}, "relu");
  b.node("Pad", {"r", "pads"}, {"p"}, "pad");
  b.node("Slice", {"p", "starts", "ends", "axes23"}, {"sl"}, "slice");
  b.node("Clip", {"sl", "zero", "six"}, {"cl"}, "clip");
  b.node("HardSwish", {"cl"}, {"hs"}, "hardswish");
  add_float_attribute(b.node("LeakyRelu", {"hs"}, {"lr"}, "leaky"), "alpha", 0.1f);
  b.node("PRelu", {"lr", "slope"}, {"pr"}, "prelu");
  add_int_attribute(b.node("Concat", {"pr", "r"}, {"cat"}, "concat"), "axis", 1);
  add_ints_attribute(b.node("Transpose", {"cat"}, {"t"}, "transpose"), "perm", {0, 2, 3, 1});
  auto& mean = b.node("ReduceMean", {"t"}, {"rm"}, "mean");
  add_ints_attribute(mean, "axes", {1, 2});
  add_int_attribute(mean, "keepdims", 0);
  b.node("Add", {"rm", "vec8"}, {"a"}, "add");
  b.node("Mul", {"a", "six"}, {"m"}, "mul");
  b.node("Sub", {"m", "vec8"}, {"s"}, "sub");
  b.node("Div", {"s", "six"}, {"dv"}, "div");
  b.node("Sigmoid", {"dv"}, {"sg"}, "sigmoid");
  b.node("HardSigmoid", {"sg"}, {"hsg"}, "hardsigmoid");
  b.node("Tanh", {"hsg"}, {"th"}, "tanh");
  add_int_attribute(b.node("Softmax", {"th"}, {"sm"}, "softmax"), "axis", 1);
  b.node("Unsqueeze", {"sm", "axis2"}, {"u"}, "unsqueeze");
  b.node("Squeeze", {"u", "axis2"}, {"sq"}, "squeeze");
  b.node("Identity", {"sq"}, {"id"}, "identity");
  b.node("Dropout", {"id"}, {"y"}, "dropout");
  add_int_attribute(b.node("Flatten", {"r"}, {"flat"}, "flatten"), "axis", 1);
  return b;
}

// Opset 11 keeps axes as attributes (Unsqueeze, Squeeze) where 13+ uses inputs.
ModelBuilder opset11_model() {
  ModelBuilder b(11);
  b.input("x", {std::string("batch"), std::int64_t{4}}).output("y");
  b.raw_f32("lo", {}, {-1});
  b.raw_f32("hi", {}, {1});
  add_ints_attribute(b.node("Unsqueeze", {"x"}, {"u"}, "unsqueeze"), "axes", {1});
  add_ints_attribute(b.node("Squeeze", {"u"}, {"s"}, "squeeze"), "axes", {1});
  add_int_attribute(b.node("Softmax", {"s"}, {"sm"}, "softmax"), "axis", 1);
  b.node("Clip", {"sm", "lo", "hi"}, {"y"}, "clip");
  return b;
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SEED_DIR MODEL_DIR\n", argv[0]);
    return 2;
  }
  const fs::path seed_dir = argv[1], model_dir = argv[2];
  fs::create_directories(seed_dir);
  fs::create_directories(model_dir);
  write(model_dir / "weights.bin", raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6}));

  const std::pair<const char*, ModelBuilder> seeds[] = {
      {"relu", relu_model()},
      {"initializers", initializers_model()},
      {"constant", constant_model()},
      {"external_data", external_data_model()},
      {"flatten_dynamic",
       flatten_model({std::string("N"), std::string("C"), std::int64_t{1}, std::int64_t{1}})},
      {"flatten_static",
       flatten_model({std::int64_t{2}, std::int64_t{8}, std::int64_t{1}, std::int64_t{1}})},
      {"cnn", cnn_model()},
      {"opset11", opset11_model()},
  };
  for (const auto& [name, builder] : seeds) {
    const std::string bytes = builder.bytes();
    write(seed_dir / (std::string(name) + ".onnx"), bytes);
    // A seed the importer rejects still helps, but less: say so, do not fail.
    try {
      anvil::onnx::import_model_bytes(bytes, model_dir, name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "make_seed_corpus: warning: seed %s does not import: %s\n", name,
                   e.what());
    }
  }
  return 0;
}
