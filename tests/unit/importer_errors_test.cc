// Bad model files: every one must give one anvil::Error of the right kind whose
// message starts with the file's path and names the node or tensor at fault;
// none may crash or throw anything else.
#include <gtest/gtest.h>

#include <random>

#include "../fuzz/onnx_model_builder.h"
#include "anvil/error.h"
#include "onnx/importer.h"
#include "ops/op.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;
using anvil::testing::kOnnxFloat;
using anvil::testing::kOnnxInt64;
using anvil::testing::ModelBuilder;
using anvil::testing::raw_bytes;
using anvil::testing::relu_model;
using anvil::testing::ScratchDir;
using anvil::testing::tensor_proto;

std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return cat("anvil_", info->test_suite_name(), "_", info->name());
}

// Imports `path`; success iff it throws an Error of `kind` whose message starts
// with the path and contains every one of `parts`.
::testing::AssertionResult fails_with(const fs::path& path, ErrorKind kind,
                                      const std::vector<std::string>& parts) {
  try {
    onnx::import_model(path);
  } catch (const Error& e) {
    const std::string message = e.what();
    if (e.kind() != kind)
      return ::testing::AssertionFailure()
             << "error kind '" << to_string(e.kind()) << "', expected '" << to_string(kind)
             << "': " << message;
    if (message.rfind(path.string(), 0) != 0)
      return ::testing::AssertionFailure() << "message does not start with the path: " << message;
    for (const auto& part : parts)
      if (message.find(part) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks \"" << part << "\": " << message;
    return ::testing::AssertionSuccess() << message;
  }
  return ::testing::AssertionFailure() << "import of " << path << " succeeded";
}

// Imports bytes that may or may not form a valid model: success unless the
// import throws something other than an Error, or an internal error (a bug).
::testing::AssertionResult imports_or_fails_cleanly(const std::string& bytes) {
  try {
    onnx::import_model_bytes(bytes, "/nonexistent-anvil-test-dir", "mutated");
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kInternal)
      return ::testing::AssertionFailure() << "internal error: " << e.what();
  }
  return ::testing::AssertionSuccess();
}

class ImporterErrors : public ::testing::Test {
 protected:
  fs::path write_model(const ModelBuilder& b, const std::string& name = "model.onnx") {
    return dir_.write(name, b.bytes());
  }

  ScratchDir dir_{current_test_name()};
};

// ---- Unreadable and corrupt files -----------------------------------------------

TEST_F(ImporterErrors, EmptyFile) {
  EXPECT_TRUE(fails_with(dir_.write("empty.onnx", ""), ErrorKind::kInvalidModel, {"empty"}));
}

TEST_F(ImporterErrors, NonexistentPath) {
  EXPECT_TRUE(fails_with(dir_.path() / "missing.onnx", ErrorKind::kIo, {"cannot open"}));
}

TEST_F(ImporterErrors, DirectoryPath) {
  EXPECT_TRUE(fails_with(dir_.path(), ErrorKind::kIo, {"is a directory"}));
}

TEST_F(ImporterErrors, ModelCutInHalfIsCorrupt) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string bytes = b.bytes();
  EXPECT_TRUE(fails_with(dir_.write("half.onnx", bytes.substr(0, bytes.size() / 2)),
                         ErrorKind::kInvalidModel, {"protobuf parsing failed"}));
}

TEST_F(ImporterErrors, EveryTruncationIsAnError) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string bytes = b.bytes();
  ASSERT_NO_THROW(onnx::import_model(dir_.write("full.onnx", bytes)));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const fs::path path = dir_.write("cut.onnx", bytes.substr(0, n));
    try {
      onnx::import_model(path);
      ADD_FAILURE() << "a model cut to " << n << " of " << bytes.size() << " bytes imported";
    } catch (const Error& e) {
      EXPECT_NE(e.kind(), ErrorKind::kInternal) << "cut at " << n << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind(path.string(), 0), 0u) << e.what();
    }
  }
}

// Protobuf merges repeated occurrences of a message field, so a model can be
// written as fragments; a cut between fragments still parses and only the
// importer's own checks can tell that something is missing.
TEST_F(ImporterErrors, CutAtFieldBoundaryIsCaughtByChecks) {
  ModelBuilder head;
  head.model().clear_graph();
  onnx::ModelProto outputs, first, second;
  ModelBuilder io;
  io.input("x", {std::int64_t{2}, std::int64_t{3}}).output("y");
  *outputs.mutable_graph() = io.graph();
  auto* relu1 = first.mutable_graph()->add_node();
  relu1->set_op_type("Relu");
  relu1->set_name("relu1");
  relu1->add_input("x");
  relu1->add_output("h");
  auto* relu2 = second.mutable_graph()->add_node();
  *relu2 = *relu1;
  relu2->set_name("relu2");
  relu2->set_input(0, "h");
  relu2->set_output(0, "y");

  const std::vector<std::string> fragments = {head.bytes(), outputs.SerializeAsString(),
                                              first.SerializeAsString(),
                                              second.SerializeAsString()};
  const std::vector<std::vector<std::string>> expected = {
      {"no ONNX graph"}, {"graph output 'y'"}, {"graph output 'y'"}};
  std::string bytes;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    bytes += fragments[i];
    onnx::ModelProto parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes)) << "prefix of " << i + 1 << " fragments";
    EXPECT_TRUE(fails_with(dir_.write("cut.onnx", bytes), ErrorKind::kInvalidModel, expected[i]))
        << "prefix of " << i + 1 << " fragments";
  }
  bytes += fragments.back();
  ir::Graph graph = onnx::import_model(dir_.write("whole.onnx", bytes));
  EXPECT_EQ(graph.nodes().size(), 2u);
}

TEST_F(ImporterErrors, RandomBytes) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t size : {1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 64, 127, 256, 1000, 4096, 65536}) {
    for (int trial = 0; trial < 8; ++trial) {
      std::string bytes(size, '\0');
      for (char& c : bytes)
        c = static_cast<char>(byte(rng));
      const fs::path path = dir_.write("random.onnx", bytes);
      try {
        onnx::import_model(path);
        ADD_FAILURE() << size << " random bytes (trial " << trial << ") imported";
      } catch (const Error& e) {
        EXPECT_NE(e.kind(), ErrorKind::kInternal) << e.what();
        EXPECT_EQ(std::string(e.what()).rfind(path.string(), 0), 0u) << e.what();
      }
    }
  }
}

// Single-byte corruptions of a valid model may still form a valid model, but
// must never crash or end in anything but a clean Error.
TEST_F(ImporterErrors, ByteCorruptionsFailCleanly) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string bytes = b.bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned char value : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string mutated = bytes;
      mutated[i] = static_cast<char>(value);
      EXPECT_TRUE(imports_or_fails_cleanly(mutated)) << "byte " << i << " set to " << +value;
    }
  }
}

// ---- Graph structure ----------------------------------------------------------------

TEST_F(ImporterErrors, NoGraph) {
  ModelBuilder b;
  b.model().clear_graph();
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"no ONNX graph"}));
}

TEST_F(ImporterErrors, MissingNodeInput) {
  ModelBuilder b;
  b.input("x", {std::int64_t{4}}).output("y");
  b.node("Relu", {"nope"}, {"y"}, "relu");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"Relu 'relu'", "'nope'"}));
}

TEST_F(ImporterErrors, Cycle) {
  ModelBuilder b;
  b.input("x", {std::int64_t{4}}).output("y2");
  b.node("Relu", {"y2"}, {"y1"}, "a");
  b.node("Relu", {"y1"}, {"y2"}, "b");
  EXPECT_TRUE(
      fails_with(write_model(b), ErrorKind::kInvalidModel, {"cycle", "Relu 'a'", "Relu 'b'"}));
}

TEST_F(ImporterErrors, GraphOutputNobodyProduces) {
  ModelBuilder b = relu_model();
  b.output("z");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"graph output 'z'"}));
}

TEST_F(ImporterErrors, NoGraphOutputs) {
  ModelBuilder b = relu_model();
  b.graph().clear_output();
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"no outputs"}));
}

TEST_F(ImporterErrors, TwoNodesWriteTheSameOutput) {
  ModelBuilder b = relu_model();
  b.node("Relu", {"x"}, {"y"}, "second");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"Relu 'second'", "'y'"}));
}

TEST_F(ImporterErrors, NodeOutputShadowsGraphInput) {
  ModelBuilder b = relu_model();
  b.node("Relu", {"y"}, {"x"}, "back");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"Relu 'back'", "'x'"}));
}

TEST_F(ImporterErrors, DuplicateInitializerName) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {1}, {1});
  b.raw_f32("w", {1}, {2});
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"'w'", "more than once"}));
}

// ---- Types ------------------------------------------------------------------------

TEST_F(ImporterErrors, ReluOfInt64IsUnsupported) {
  ModelBuilder b;
  b.input("x", {std::int64_t{4}}, kOnnxInt64).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kUnsupported, {"Relu 'relu'", "int64"}));
}

TEST_F(ImporterErrors, AddOfFloatAndInt64) {
  if (!ops::find_op("Add")) GTEST_SKIP() << "the Add op is not registered yet";
  ModelBuilder b;
  b.input("x", {std::int64_t{2}}).output("y");
  b.raw_i64("c", {2}, {1, 2});
  b.node("Add", {"x", "c"}, {"y"}, "add");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"Add 'add'", "int64"}));
}

TEST_F(ImporterErrors, GraphInputOfUnsupportedType) {
  ModelBuilder b;
  b.input("x", {std::int64_t{4}}, 8 /* string */).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kUnsupported, {"graph input 'x'"}));
}

TEST_F(ImporterErrors, GraphInputWithoutShape) {
  ModelBuilder b = relu_model();
  b.graph().mutable_input(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kUnsupported, {"graph input 'x'", "shape"}));
}

TEST_F(ImporterErrors, AttributeOfUnsupportedType) {
  ModelBuilder b = relu_model();
  auto* attr = b.graph().mutable_node(0)->add_attribute();
  attr->set_name("body");
  attr->set_type(onnx::AttributeProto::GRAPH);
  EXPECT_TRUE(
      fails_with(write_model(b), ErrorKind::kUnsupported, {"Relu 'relu'", "'body'", "GRAPH"}));
}

// ---- Initializers -------------------------------------------------------------------

TEST_F(ImporterErrors, RawDataSizeDoesNotMatchShape) {
  ModelBuilder b = relu_model();
  auto w = tensor_proto("w", kOnnxFloat, {2, 3});
  w.set_raw_data(std::string(20, '\0'));
  b.initializer(w);
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel,
                         {"initializer 'w'", "20 bytes", "[2,3]", "needs 24"}));
}

TEST_F(ImporterErrors, FloatDataCountDoesNotMatchShape) {
  ModelBuilder b = relu_model();
  auto w = tensor_proto("w", kOnnxFloat, {2, 3});
  for (int i = 0; i < 5; ++i)
    w.add_float_data(1.0f);
  b.initializer(w);
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel,
                         {"initializer 'w'", "5 values in float_data", "needs 6"}));
}

TEST_F(ImporterErrors, Int64DataCountDoesNotMatchShape) {
  ModelBuilder b = relu_model();
  auto w = tensor_proto("idx", kOnnxInt64, {2});
  w.add_int64_data(7);
  b.initializer(w);
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel,
                         {"initializer 'idx'", "1 values in int64_data", "needs 2"}));
}

TEST_F(ImporterErrors, InitializerWithoutData) {
  ModelBuilder b = relu_model();
  b.initializer(tensor_proto("w", kOnnxFloat, {3}));
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"initializer 'w'"}));
}

TEST_F(ImporterErrors, InitializerWithNegativeDim) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {-1}, {});
  EXPECT_TRUE(
      fails_with(write_model(b), ErrorKind::kInvalidModel, {"initializer 'w'", "negative"}));
}

TEST_F(ImporterErrors, InitializerWithImpossibleShape) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {std::int64_t{1} << 40, std::int64_t{1} << 40}, {1});
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel,
                         {"initializer 'w'", "impossibly large"}));
}

// A few bytes claiming a multi-GiB tensor must be refused before anything of
// that size is allocated.
TEST_F(ImporterErrors, SmallFileClaimingHugeTensor) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {std::int64_t{1} << 33}, {1});  // 32 GiB of float32
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"initializer 'w'"}));
  ModelBuilder typed = relu_model();
  auto t = tensor_proto("t", kOnnxFloat, {std::int64_t{1} << 33});
  t.add_float_data(1.0f);
  typed.initializer(t);
  EXPECT_TRUE(fails_with(write_model(typed, "typed.onnx"), ErrorKind::kInvalidModel,
                         {"initializer 't'", "float_data"}));
}

TEST_F(ImporterErrors, InitializerOfUnsupportedType) {
  ModelBuilder b = relu_model();
  auto s = tensor_proto("s", 8 /* string */, {1});
  s.add_string_data("hello");
  b.initializer(s);
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kUnsupported, {"initializer 's'"}));
}

// ---- External data ----------------------------------------------------------------

onnx::TensorProto external_tensor(const std::string& location, std::int64_t offset = -1,
                                  std::int64_t length = -1) {
  auto w = tensor_proto("w", kOnnxFloat, {2, 3});
  w.set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const std::string& key, const std::string& value) {
    auto* entry = w.add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  };
  add("location", location);
  if (offset >= 0) add("offset", std::to_string(offset));
  if (length >= 0) add("length", std::to_string(length));
  return w;
}

ModelBuilder model_with_external(const onnx::TensorProto& w) {
  ModelBuilder b = relu_model();
  b.initializer(w);
  b.output("w");
  return b;
}

TEST_F(ImporterErrors, ExternalDataLoads) {
  const std::vector<float> values = {1.5f, -2, 3, 4, 5, 6};
  dir_.write("m/weights.bin", "8 bytes!" + raw_bytes(values));
  const fs::path model = dir_.write(
      "m/model.onnx", model_with_external(external_tensor("weights.bin", 8, 24)).bytes());
  ir::Graph graph = onnx::import_model(model);
  const ir::Value* w = graph.find_value("w");
  ASSERT_TRUE(w && w->is_constant());
  EXPECT_EQ(w->constant->extents(), (Extents{2, 3}));
  EXPECT_EQ(
      std::vector<float>(w->constant->values<float>().begin(), w->constant->values<float>().end()),
      values);
}

TEST_F(ImporterErrors, ExternalDataInSubfolderLoads) {
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  dir_.write("m/data/weights.bin", raw_bytes(values));
  const fs::path model =
      dir_.write("m/model.onnx", model_with_external(external_tensor("data/weights.bin")).bytes());
  ir::Graph graph = onnx::import_model(model);
  ASSERT_TRUE(graph.find_value("w") && graph.find_value("w")->is_constant());
  EXPECT_EQ(graph.find_value("w")->constant->values<float>()[5], 6.0f);
}

TEST_F(ImporterErrors, ExternalDataOutsideModelFolder) {
  dir_.write("x.bin", std::string(24, '\0'));  // exists, so only the check can refuse it
  for (const std::string location : {"../x.bin", "/etc/passwd", "sub/../../x.bin"}) {
    const fs::path model =
        dir_.write("m/model.onnx", model_with_external(external_tensor(location)).bytes());
    EXPECT_TRUE(fails_with(model, ErrorKind::kInvalidModel, {"initializer 'w'", location}));
  }
}

TEST_F(ImporterErrors, ExternalDataSymlinkOutOfModelFolder) {
  dir_.write("secret.bin", std::string(24, '\0'));
  const fs::path model =
      dir_.write("m/model.onnx", model_with_external(external_tensor("link.bin")).bytes());
  fs::create_symlink(dir_.path() / "secret.bin", dir_.path() / "m/link.bin");
  EXPECT_TRUE(fails_with(model, ErrorKind::kInvalidModel, {"initializer 'w'", "outside"}));
}

TEST_F(ImporterErrors, ExternalDataFileMissing) {
  const fs::path model =
      dir_.write("m/model.onnx", model_with_external(external_tensor("gone.bin")).bytes());
  EXPECT_TRUE(fails_with(model, ErrorKind::kIo, {"initializer 'w'", "gone.bin"}));
}

TEST_F(ImporterErrors, ExternalDataFileTooShort) {
  dir_.write("m/short.bin", std::string(10, '\0'));
  const fs::path model =
      dir_.write("m/model.onnx", model_with_external(external_tensor("short.bin")).bytes());
  EXPECT_TRUE(fails_with(model, ErrorKind::kInvalidModel, {"initializer 'w'", "too short"}));
}

TEST_F(ImporterErrors, ExternalDataLengthDoesNotMatchShape) {
  dir_.write("m/w.bin", std::string(64, '\0'));
  const fs::path model =
      dir_.write("m/model.onnx", model_with_external(external_tensor("w.bin", 0, 20)).bytes());
  EXPECT_TRUE(fails_with(model, ErrorKind::kInvalidModel, {"initializer 'w'", "length 20"}));
}

TEST_F(ImporterErrors, ExternalDataOffsetNotANumber) {
  auto w = external_tensor("w.bin");
  auto* entry = w.add_external_data();
  entry->set_key("offset");
  entry->set_value("twelve");
  const fs::path model = dir_.write("m/model.onnx", model_with_external(w).bytes());
  EXPECT_TRUE(fails_with(model, ErrorKind::kInvalidModel, {"initializer 'w'", "twelve"}));
}

// External data is resolved against the model's folder for every tensor,
// including a Constant node's value, never against the working directory.
ModelBuilder constant_with_external(const std::string& location) {
  ModelBuilder b;
  b.output("y");
  anvil::testing::add_tensor_attribute(b.node("Constant", {}, {"y"}, "const"), "value",
                                       external_tensor(location));
  return b;
}

TEST_F(ImporterErrors, ExternalDataOfConstantAttributeLoads) {
  if (!ops::find_op("Constant")) GTEST_SKIP() << "the Constant op is not registered yet";
  dir_.write("m/c.bin", raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6}));
  const fs::path model = dir_.write("m/model.onnx", constant_with_external("c.bin").bytes());
  ir::Graph graph = onnx::import_model(model);
  ASSERT_TRUE(graph.outputs[0]->is_constant());
  EXPECT_EQ(graph.outputs[0]->constant->values<float>()[5], 6.0f);
}

TEST_F(ImporterErrors, ExternalDataOfConstantAttributeOutsideModelFolder) {
  dir_.write("c.bin", std::string(24, '\0'));
  const fs::path model = dir_.write("m/model.onnx", constant_with_external("../c.bin").bytes());
  EXPECT_TRUE(
      fails_with(model, ErrorKind::kInvalidModel, {"Constant 'const'", "'value'", "../c.bin"}));
}

// ---- Ops and opsets -----------------------------------------------------------------

TEST_F(ImporterErrors, UnsupportedOpsAreListedInOneError) {
  ModelBuilder b;
  b.input("x", {std::int64_t{4}}).output("y");
  b.node("FancyOp", {"x"}, {"a"}, "f1");
  b.node("MysteryOp", {"a"}, {"b"});  // unnamed: the importer names it MysteryOp_1
  b.node("Custom", {"b"}, {"c"}, "c1").set_domain("com.acme");
  b.node("Relu", {"c"}, {"y"}, "relu");
  EXPECT_TRUE(fails_with(
      write_model(b), ErrorKind::kUnsupported,
      {"3 node(s)", "'f1' (FancyOp)", "'MysteryOp_1' (MysteryOp)", "'c1' (com.acme::Custom)"}));
  try {
    onnx::import_model(write_model(b));
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("'relu'"), std::string::npos) << e.what();
  }
}

TEST_F(ImporterErrors, OpsetTooOld) {
  EXPECT_TRUE(fails_with(write_model(relu_model(10)), ErrorKind::kUnsupported, {"opset 10"}));
}

TEST_F(ImporterErrors, OpsetTooNew) {
  EXPECT_TRUE(fails_with(write_model(relu_model(22)), ErrorKind::kUnsupported, {"opset 22"}));
}

TEST_F(ImporterErrors, NoDefaultOpset) {
  ModelBuilder b = relu_model();
  b.model().mutable_opset_import(0)->set_domain("com.acme");
  EXPECT_TRUE(fails_with(write_model(b), ErrorKind::kInvalidModel, {"opset_import"}));
}

}  // namespace
}  // namespace anvil
