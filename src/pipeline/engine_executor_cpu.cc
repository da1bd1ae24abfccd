// engine_executor_factory where Anvil is built without CUDA: the declaration
// in anvil/pipeline.h links everywhere, and says why it cannot serve. The
// GPU executor itself is src/pipeline/gpu/engine_executor.cc.
#include "anvil/pipeline.h"

#if !ANVIL_HAVE_CUDA

namespace anvil {

ExecutorFactory engine_executor_factory(std::shared_ptr<const Engine> /*engine*/) {
  fail(ErrorKind::kUnsupported,
       "engine_executor_factory: this Anvil was built without CUDA; serve with "
       "pipeline::cpu_executor_factory instead");
}

}  // namespace anvil

#endif
