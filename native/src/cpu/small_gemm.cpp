// The CPU backend's fp32 GEMM for the small products of small models.
//
// OpenBLAS is built for large products: every call packs both operands, zeroes C when beta is 0
// and then accumulates. At dim 64 (stories260K) a q_proj is [2048 x 64] x [64 x 64]: the packing,
// the zeroing pass and the call overhead cost as much as the arithmetic, and OpenBLAS reaches
// ~45 GFLOP/s on a core whose FMA peak is ~94. Here B is packed into panels of 16 columns (the
// backend keeps the packed copy of a frozen weight; a LoRA matrix is packed per call), A is read
// in place, and
// a 6 x 16 register tile (12 accumulators) runs over the whole K, so each element of C is one
// sequential sum written once. Results do not depend on the thread count: threads split rows.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "ops.h"

namespace lf {
namespace ops {
namespace {

constexpr int kNR = 16;  // columns per panel: two AVX2 registers
constexpr int kMR = 6;   // rows per tile: 12 accumulators, 2 B registers, 1 broadcast

}  // namespace

// Bp[(p * K + k) * 16 + c] = op(B)[k][16p + c], 0 past N. op(B) = B^T for B [N, K] (trans_b),
// B for B [K, N].
size_t small_gemm_packed_floats(int N, int K) { return (size_t)((N + kNR - 1) / kNR) * K * kNR; }
void small_gemm_pack(float* Bp, bool trans_b, int N, int K, const float* B, int ldb) {
    const int np = (N + kNR - 1) / kNR;
    for (int p = 0; p < np; p++) {
        float* dst = Bp + (size_t)p * K * kNR;
        const int n0 = p * kNR, nc = std::min(kNR, N - n0);
        for (int k = 0; k < K; k++) {
            float* row = dst + (size_t)k * kNR;
            if (trans_b)
                for (int c = 0; c < nc; c++) row[c] = B[(size_t)(n0 + c) * ldb + k];
            else
                std::memcpy(row, B + (size_t)k * ldb + n0, sizeof(float) * nc);
            for (int c = nc; c < kNR; c++) row[c] = 0.0f;
        }
    }
}

namespace {

// C[MR rows, nc <= 16 cols] = alpha * A[MR, K] Bpanel + beta * C
template <int MR>
inline void tile(int K, const float* A, int lda, const float* Bp, float* C, int ldc, int nc, float alpha, float beta) {
    // every loop over i is unrolled, so that the accumulator arrays become registers
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(Bp + (size_t)k * kNR), b1 = _mm256_loadu_ps(Bp + (size_t)k * kNR + 8);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m256 a = _mm256_broadcast_ss(A + (size_t)i * lda + k);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        float* ci = C + (size_t)i * ldc;
        __m256 r0 = _mm256_mul_ps(c0[i], va), r1 = _mm256_mul_ps(c1[i], va);
        if (nc == kNR) {
            if (beta != 0.0f) {  // beta 0 never reads C (it may hold anything)
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        } else {
            alignas(32) float t[kNR];
            _mm256_store_ps(t, r0);
            _mm256_store_ps(t + 8, r1);
            for (int c = 0; c < nc; c++) ci[c] = beta != 0.0f ? beta * ci[c] + t[c] : t[c];
        }
    }
}

// Rows [m0, m1) of C, in blocks of kMB rows: within a block every panel of B runs over all the
// block's tiles, so a panel is loaded into L1 once per block and the block of A stays in L2.
constexpr int kMB = 8 * kMR;

void rows(int m0, int m1, int N, int K, float alpha, const float* A, int lda, const float* Bp, float beta, float* C,
          int ldc) {
    const int np = (N + kNR - 1) / kNR;
    for (int mb = m0; mb < m1; mb += kMB) {
        const int me = std::min(m1, mb + kMB);
        for (int p = 0; p < np; p++) {
            const float* b = Bp + (size_t)p * K * kNR;
            const int nc = std::min(kNR, N - p * kNR);
            int m = mb;
            for (; m + kMR <= me; m += kMR)
                tile<kMR>(K, A + (size_t)m * lda, lda, b, C + (size_t)m * ldc + p * kNR, ldc, nc, alpha, beta);
            const float* a = A + (size_t)m * lda;
            float* c = C + (size_t)m * ldc + p * kNR;
            switch (me - m) {
                case 0: break;
                case 1: tile<1>(K, a, lda, b, c, ldc, nc, alpha, beta); break;
                case 2: tile<2>(K, a, lda, b, c, ldc, nc, alpha, beta); break;
                case 3: tile<3>(K, a, lda, b, c, ldc, nc, alpha, beta); break;
                case 4: tile<4>(K, a, lda, b, c, ldc, nc, alpha, beta); break;
                default: tile<5>(K, a, lda, b, c, ldc, nc, alpha, beta); break;
            }
        }
    }
}

}  // namespace

bool small_gemm_fits(int N, int K) { return K <= kSmallGemmMaxK && (int64_t)N * K <= kSmallGemmMaxNK; }

void small_gemm(int M, int N, int K, float alpha, const float* A, int lda, const float* Bp, float beta, float* C,
                int ldc) {
    const bool parallel = !omp_in_parallel() && omp_get_max_threads() > 1 && (double)M * N * K >= kSmallGemmParallelMin;
    if (!parallel) {
        rows(0, M, N, K, alpha, A, lda, Bp, beta, C, ldc);
        return;
    }
#pragma omp parallel
    {
        // contiguous row ranges in multiples of the tile height
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int tiles = (M + kMR - 1) / kMR;
        const int t0 = (int)((int64_t)tiles * t / nt), t1 = (int)((int64_t)tiles * (t + 1) / nt);
        rows(std::min(M, t0 * kMR), std::min(M, t1 * kMR), N, K, alpha, A, lda, Bp, beta, C, ldc);
    }
}

}  // namespace ops
}  // namespace lf
