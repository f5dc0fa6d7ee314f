// The CPU backend's own fp32 kernels and their tuning: what cpu/backend.cpp runs instead of the
// reference ops of ops.h where measurements showed a gain (docs/BENCHMARKS.md). Each kernel is
// checked against the reference in tests/test_ops.cpp. Nothing outside cpu/ and the op tests
// includes this header.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lf {
namespace ops {

// ---------------------------------------------------------------------------------------------
// BLAS threading. OpenBLAS forks its threads for every GEMM above a small size; GEMMs below
// kGemmParallelMin multiply-adds run on one BLAS thread (cpu/backend.cpp).
constexpr double kGemmParallelMin = 1 << 24;
void blas_threads_for(double mnk);  // 1 BLAS thread for a GEMM of mnk multiply-adds below it, all otherwise

// ---------------------------------------------------------------------------------------------
// small_gemm (cpu/small_gemm.cpp): C[M,N] = alpha * A[M,K] op(B) + beta * C, with op(B) packed
// first by small_gemm_pack (op(B) = B^T for B [N,K] when trans_b, else B [K,N];
// small_gemm_packed_floats floats). small_gemm_fits says which shapes it is for: up to these
// sizes it beats OpenBLAS on Zen 3 (docs/BENCHMARKS.md), beyond them it does not.
constexpr int kSmallGemmMaxK = 1024;
constexpr int64_t kSmallGemmMaxNK = 1 << 18;        // packed B up to 1 MB
constexpr double kSmallGemmParallelMin = 1 << 20;  // M*N*K below this runs on one thread
bool small_gemm_fits(int N, int K);
size_t small_gemm_packed_floats(int N, int K);
void small_gemm_pack(float* Bp, bool trans_b, int N, int K, const float* B, int ldb);
void small_gemm(int M, int N, int K, float alpha, const float* A, int lda, const float* Bp, float beta, float* C,
                int ldc);

// ---------------------------------------------------------------------------------------------
// Attention for common head sizes (cpu/attention.cpp); false when hd has none. `probs` (may be
// null) holds each query's softmax row, attention_fast_probs_floats(B, T, H, hd) floats (0 when
// hd has no kernel): forward writes it, backward reads it instead of recomputing exp(S - lse);
// with probs, lse holds each row's 1/sum (the rows are kept unnormalized).
size_t attention_fast_probs_floats(int B, int Tn, int H, int hd);
bool attention_forward_fast(float* out, float* lse, const float* q, const float* k, const float* v, const int* lens,
                            int B, int Tn, int H, int KV, int hd, int window, float* probs = nullptr);
bool attention_backward_fast(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                             const float* k, const float* v, const int* lens, int B, int Tn, int H, int KV, int hd,
                             int window, const float* probs = nullptr);

}  // namespace ops
}  // namespace lf
