// Whether a plan may run here. Tactics name cuDNN engines and cuBLASLt algos
// of one library major version and kernels compiled for one compute
// capability; running them elsewhere fails deep inside a library call or,
// worse, silently picks other kernels, so the mismatch is refused up front.
#include <vector>

#include "anvil/error.h"
#include "plan/plan.h"

namespace anvil::plan {
namespace {

struct Version {
  int major, minor;
};

// Each library's integer encoding (see TargetInfo).
Version cuda_version(int v) {
  return {v / 1000, v % 1000 / 10};
}
Version cudnn_version(int v) {
  return v >= 90000 ? Version{v / 10000, v / 100 % 100} : Version{v / 1000, v / 100 % 10};
}
Version cublaslt_version(int v) {
  return {v / 10000, v / 100 % 100};
}

std::string describe(const char* library, Version v) {
  return cat(library, " ", v.major, ".", v.minor);
}

std::string describe_gpu(const TargetInfo& t) {
  std::string text = cat(t.cc_major, ".", t.cc_minor);
  if (!t.gpu_name.empty()) text += " (" + t.gpu_name + ")";
  return text;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts)
    out += (out.empty() ? "" : ", ") + part;
  return out;
}

// "<gpu> with <libs>", either part optional.
std::string side(const std::string& gpu, const std::vector<std::string>& libs) {
  if (libs.empty()) return gpu;
  return gpu.empty() ? join(libs) : gpu + " with " + join(libs);
}

}  // namespace

void check_compatible(const Plan& plan, const TargetInfo& current, std::string_view label) {
  const TargetInfo& built = plan.target;
  std::string built_gpu, current_gpu;
  if (built.cc_major != current.cc_major || built.cc_minor != current.cc_minor) {
    built_gpu = "compute capability " + describe_gpu(built);
    current_gpu = describe_gpu(current);
  }
  std::vector<std::string> built_libs, current_libs;
  const auto compare = [&](const char* library, Version b, Version c, bool refuse) {
    if (!refuse) return;
    built_libs.push_back(describe(library, b));
    current_libs.push_back(describe(library, c));
  };
  const Version cudnn_b = cudnn_version(built.cudnn_version);
  const Version cudnn_c = cudnn_version(current.cudnn_version);
  compare("cuDNN", cudnn_b, cudnn_c, cudnn_b.major != cudnn_c.major);
  const Version blas_b = cublaslt_version(built.cublaslt_version);
  const Version blas_c = cublaslt_version(current.cublaslt_version);
  compare("cuBLASLt", blas_b, blas_c, blas_b.major != blas_c.major);
  // Kernels built against a CUDA runtime need at least its major version.
  const Version cuda_b = cuda_version(built.cuda_runtime_version);
  const Version cuda_c = cuda_version(current.cuda_runtime_version);
  compare("CUDA runtime", cuda_b, cuda_c, cuda_c.major < cuda_b.major);

  if (built_gpu.empty() && built_libs.empty()) return;
  const std::string built_text =
      built_gpu.empty() ? "with " + join(built_libs) : "for " + side(built_gpu, built_libs);
  fail(ErrorKind::kIncompatible, label, " was built ", built_text, "; this machine has ",
       side(current_gpu, current_libs), ": rebuild the plan here with `anvil build`");
}

}  // namespace anvil::plan
