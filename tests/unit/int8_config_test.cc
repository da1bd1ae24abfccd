// What an INT8 build checks before it lowers (builder/int8_config.h): the
// calibration cache must be this model's and name what its convs read, and
// --layer-precision must name convs.
#include "builder/int8_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "anvil/error.h"
#include "pass_test_util.h"
#include "passes/pass_manager.h"
#include "quant/calibrate.h"
#include "quant/calibration_cache.h"

namespace anvil::builder {
namespace {

namespace fs = std::filesystem;
using passes::testing::GraphBuilder;

struct Model {
  ir::Graph graph;
  std::string x, conv_name;
};

Model two_convs() {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, 4, 6, 6});
  ir::Value* a = b.node("Relu", {b.conv(x, 4, 8, 3, /*bias=*/true)});
  b.output(b.conv(a, 8, 8, 1));
  Model m;
  m.x = x->name;
  m.graph = b.finish();
  passes::PassManager().run(m.graph);
  m.conv_name = m.graph.nodes().front()->name;
  return m;
}

// A model file (any bytes: only its hash matters here) and a cache beside it.
class Files {
 public:
  Files()
      : dir_(fs::temp_directory_path() / ("anvil_int8_config_test_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    std::ofstream(model()) << "model bytes";
  }
  ~Files() { fs::remove_all(dir_); }
  fs::path model() const { return dir_ / "model.onnx"; }
  fs::path cache(const std::string& fingerprint, std::map<std::string, float> amax) const {
    const fs::path path = dir_ / "model.calib";
    quant::write_calibration_cache(path, {"minmax", fingerprint, std::move(amax)});
    return path;
  }

 private:
  fs::path dir_;
};

std::string error_of(const std::function<void()>& fn, ErrorKind kind) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(Int8Config, ScalesComeFromThisModelsCache) {
  const Model m = two_convs();
  const Files files;
  const std::string hash = "model=" + quant::hash_file(files.model());
  const auto scales = int8_scales_for(
      files.model(), m.graph, files.cache(hash + " input=x:[1,4,6,6] bins=2048", {{m.x, 12.7f}}));
  ASSERT_TRUE(scales.contains(m.x));
  EXPECT_FLOAT_EQ(scales.at(m.x), 0.1f);
}

TEST(Int8Config, ACacheOfAnotherModelOrWithoutConvInputsIsRefused) {
  const Model m = two_convs();
  const Files files;
  const fs::path other = files.cache("model=0123456789abcdef bins=2048", {{m.x, 1.0f}});
  const std::string message = error_of([&] { int8_scales_for(files.model(), m.graph, other); },
                                       ErrorKind::kInvalidArgument);
  EXPECT_NE(message.find("another model"), std::string::npos) << message;
  EXPECT_NE(message.find("anvil calibrate"), std::string::npos) << message;

  const std::string hash = "model=" + quant::hash_file(files.model());
  const fs::path unrelated = files.cache(hash, {{"not_a_tensor", 1.0f}});
  EXPECT_NE(error_of([&] { int8_scales_for(files.model(), m.graph, unrelated); },
                     ErrorKind::kInvalidArgument)
                .find("names none"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { int8_scales_for(files.model(), m.graph, files.model().string() + "x"); },
                     ErrorKind::kIo)
                .empty(),
            false);
}

TEST(Int8Config, LayerPrecisionMustNameConvs) {
  const Model m = two_convs();
  EXPECT_EQ(fp16_layer_names(m.graph, {m.conv_name}), std::set<std::string>{m.conv_name});
  const std::string message = error_of(
      [&] {
        fp16_layer_names(m.graph, {"nope", m.conv_name, "nada"});
      },
      ErrorKind::kInvalidArgument);
  EXPECT_NE(message.find("'nope', 'nada'"), std::string::npos) << message;
  EXPECT_NE(message.find(m.conv_name), std::string::npos) << "lists the convs there are";
}

TEST(Int8Config, Fp8NeedsComputeCapability89OrLater) {
  EXPECT_NO_THROW(require_fp8_gpu("NVIDIA H100 80GB HBM3", 9, 0));
  EXPECT_NO_THROW(require_fp8_gpu("NVIDIA L4", 8, 9));
  EXPECT_NO_THROW(require_fp8_gpu("NVIDIA B200", 10, 0));
  try {
    require_fp8_gpu("NVIDIA A100-SXM4-80GB", 8, 0);
    ADD_FAILURE() << "an A100 has no FP8 tensor cores";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    const std::string what = e.what();
    EXPECT_NE(what.find("A100"), std::string::npos) << what;
    EXPECT_NE(what.find("8.0"), std::string::npos) << what;
    EXPECT_NE(what.find("--int8"), std::string::npos) << what;
  }
  EXPECT_THROW(require_fp8_gpu("NVIDIA A10", 8, 6), Error);
  EXPECT_THROW(require_fp8_gpu("Tesla V100", 7, 0), Error);
}

}  // namespace
}  // namespace anvil::builder
