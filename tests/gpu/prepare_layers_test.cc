// runtime::prepare_layers with stand-in runners: compiling layers are
// prepared on worker threads with handles of their own, at the same time,
// the others on the caller's thread with its handles; the layers come back
// in order; the first failing layer's error is the one thrown.
#include "runtime/prepare_layers.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "anvil/error.h"
#include "cuda/handles.h"
#include "gpu_test.h"

namespace anvil {
namespace {

using runtime::Handles;
using runtime::LayerRunner;
using runtime::PreparedLayer;

// What prepare() saw.
struct Seen : PreparedLayer {
  int index = 0;
  std::thread::id thread;
  Handles handles;
  void enqueue(const runtime::LaunchArgs&) const override {}
};

// Sleeps in prepare() where it "compiles", and counts how many prepares
// overlap; throws where asked.
struct Overlap {
  std::mutex mutex;
  int now = 0, most = 0;
};

class StandIn final : public LayerRunner {
 public:
  StandIn(int index, bool compiles, Overlap& overlap, bool fails = false)
      : index_(index), compiles_(compiles), fails_(fails), overlap_(overlap) {}

  bool compiles(std::int64_t) const override { return compiles_; }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t, const Handles& h) const override {
    if (compiles_) {
      {
        std::lock_guard lock(overlap_.mutex);
        overlap_.most = std::max(overlap_.most, ++overlap_.now);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::lock_guard lock(overlap_.mutex);
      --overlap_.now;
    }
    if (fails_) fail(ErrorKind::kUnsupported, "layer ", index_, " fails");
    auto seen = std::make_unique<Seen>();
    seen->index = index_;
    seen->thread = std::this_thread::get_id();
    seen->handles = h;
    return seen;
  }

 private:
  int index_;
  bool compiles_, fails_;
  Overlap& overlap_;
};

TEST(PrepareLayers, CompilingLayersArePreparedOnWorkersAtOnceAndComeBackInOrder) {
  ANVIL_REQUIRE_GPU();
  if (std::thread::hardware_concurrency() < 4) GTEST_SKIP() << "needs 4 cores";
  Overlap overlap;
  const std::vector<bool> compiling = {false, true, true, false, true, true};
  std::vector<std::unique_ptr<LayerRunner>> runners;
  for (std::size_t i = 0; i < compiling.size(); ++i)
    runners.push_back(std::make_unique<StandIn>(static_cast<int>(i), compiling[i], overlap));
  const cuda::CudnnHandle cudnn;
  const cuda::CublasLtHandle cublaslt;
  const Handles mine{cudnn.get(), cublaslt.get()};
  runtime::WorkerHandles workers;

  const auto layers = runtime::prepare_layers(runners, 8, mine, workers);
  ASSERT_EQ(layers.size(), runners.size());
  std::set<cudnnHandle_t> worker_cudnn;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto* seen = dynamic_cast<const Seen*>(layers[i].get());
    ASSERT_NE(seen, nullptr);
    EXPECT_EQ(seen->index, static_cast<int>(i)) << "out of order";
    if (compiling[i]) {
      EXPECT_NE(seen->thread, std::this_thread::get_id()) << "layer " << i;
      // (cuBLASLt may give every cublasLtCreate the same context: its
      // handles are not compared.)
      EXPECT_NE(seen->handles.cudnn, mine.cudnn) << "layer " << i;
      worker_cudnn.insert(seen->handles.cudnn);
    } else {
      EXPECT_EQ(seen->thread, std::this_thread::get_id()) << "layer " << i;
      EXPECT_EQ(seen->handles.cudnn, mine.cudnn) << "layer " << i;
    }
  }
  EXPECT_GE(overlap.most, 2) << "the compiling layers were prepared one at a time";
  EXPECT_GE(worker_cudnn.size(), 2u) << "each worker has handles of its own";

  // Again: the workers' handles are reused, not made anew.
  const auto again = runtime::prepare_layers(runners, 8, mine, workers);
  for (std::size_t i = 0; i < again.size(); ++i) {
    if (!compiling[i]) continue;
    EXPECT_TRUE(worker_cudnn.count(dynamic_cast<const Seen*>(again[i].get())->handles.cudnn))
        << "layer " << i;
  }
}

TEST(PrepareLayers, OneCompilingLayerIsPreparedOnTheCallersThread) {
  ANVIL_REQUIRE_GPU();
  Overlap overlap;
  std::vector<std::unique_ptr<LayerRunner>> runners;
  runners.push_back(std::make_unique<StandIn>(0, false, overlap));
  runners.push_back(std::make_unique<StandIn>(1, true, overlap));
  const cuda::CudnnHandle cudnn;
  const cuda::CublasLtHandle cublaslt;
  const Handles mine{cudnn.get(), cublaslt.get()};
  runtime::WorkerHandles workers;
  const auto layers = runtime::prepare_layers(runners, 8, mine, workers);
  for (const auto& layer : layers) {
    const auto* seen = dynamic_cast<const Seen*>(layer.get());
    EXPECT_EQ(seen->thread, std::this_thread::get_id());
    EXPECT_EQ(seen->handles.cudnn, mine.cudnn);
  }
}

TEST(PrepareLayers, TheFirstFailingLayersErrorIsThrown) {
  ANVIL_REQUIRE_GPU();
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 cores";
  Overlap overlap;
  std::vector<std::unique_ptr<LayerRunner>> runners;
  for (int i = 0; i < 5; ++i)
    runners.push_back(std::make_unique<StandIn>(i, i > 0, overlap, i == 2 || i == 4));
  const cuda::CudnnHandle cudnn;
  const cuda::CublasLtHandle cublaslt;
  runtime::WorkerHandles workers;
  try {
    runtime::prepare_layers(runners, 8, {cudnn.get(), cublaslt.get()}, workers);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("layer 2 fails"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anvil
