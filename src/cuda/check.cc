#include "cuda/check.h"

#include "anvil/error.h"

namespace anvil::cuda {

namespace {

const char* base_name(const char* file) {
  const char* slash = file;
  for (const char* p = file; *p; ++p)
    if (*p == '/') slash = p + 1;
  return slash;
}

}  // namespace

void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  fail(ErrorKind::kGpu, call, " failed at ", base_name(file), ":", line, ": ",
       cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
}

void check(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  fail(ErrorKind::kGpu, call, " failed at ", base_name(file), ":", line, ": ",
       cudnnGetErrorString(status), detail[0] ? cat(" (", detail, ")") : std::string());
}

void check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail(ErrorKind::kGpu, call, " failed at ", base_name(file), ":", line, ": ",
       cublasLtGetStatusName(status), " (", cublasLtGetStatusString(status), ")");
}

}  // namespace anvil::cuda
