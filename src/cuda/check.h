// Turning CUDA, cuDNN and cuBLASLt status codes into anvil::Error (kind
// kGpu) that names the failing call, its file and line, and the library's
// own message.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

namespace anvil::cuda {

void check(cudaError_t status, const char* call, const char* file, int line);
void check(cudnnStatus_t status, const char* call, const char* file, int line);
void check(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace anvil::cuda

// ANVIL_GPU_CHECK(cudaMemcpyAsync(...)); works for cudaError_t,
// cudnnStatus_t and cublasStatus_t alike.
#define ANVIL_GPU_CHECK(call) ::anvil::cuda::check((call), #call, __FILE__, __LINE__)
