// Shared by the CUDA backend's files: error checks that name the call, the file:line and a
// likely cause; the element types frozen weights are kept in; and the per-backend context (one
// stream, one cuBLAS handle, scratch) that every op takes, so there is no process-wide GPU state.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../tensor.h"

namespace lf {
namespace cuda {

// throws lf::Error (EXIT_INTERNAL; out of memory says so) naming the failed call and where
[[noreturn]] void fail_cuda(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t s, const char* call, const char* file, int line);
#define LF_CUDA_CHECK(call)                                                  \
    do {                                                                     \
        cudaError_t lf_err_ = (call);                                        \
        if (lf_err_ != cudaSuccess) ::lf::cuda::fail_cuda(lf_err_, #call, __FILE__, __LINE__); \
    } while (0)
#define LF_CUBLAS_CHECK(call)                                                \
    do {                                                                     \
        cublasStatus_t lf_st_ = (call);                                      \
        if (lf_st_ != CUBLAS_STATUS_SUCCESS) ::lf::cuda::fail_cublas(lf_st_, #call, __FILE__, __LINE__); \
    } while (0)
// after a kernel launch: a bad launch configuration is a bug, reported where it happened
#define LF_CUDA_LAUNCHED() LF_CUDA_CHECK(cudaGetLastError())

// Frozen tensors (the base model's weights) are stored on the device as lf::DType F32, F16 or
// BF16 (../tensor.h); activations, gradients, LoRA parameters and optimizer state are fp32.

struct Context {
    cudaStream_t stream = nullptr;
    cublasHandle_t cublas = nullptr;
    int cc_major = 0, cc_minor = 0;
    DType compute = DType::F32;  // the dtype GEMMs with frozen weights run in
    // grow-only scratch, owned by the backend (the stream orders its uses)
    void* scratch = nullptr;
    size_t scratch_bytes = 0;
    void* scratch_at_least(size_t bytes);
    double* host_pinned = nullptr;  // small device → host results (losses, sums)
    size_t host_pinned_n = 0;
    double* pinned_at_least(size_t n);
};

inline int blocks_for(int64_t n, int threads) { return (int)((n + threads - 1) / threads); }
constexpr int kGridCap = 65535 * 8;  // grid-stride loops cap their grid here

template <class T> __device__ __forceinline__ float to_f32(T x);
template <> __device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

}  // namespace cuda
}  // namespace lf
