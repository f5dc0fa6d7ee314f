// The CPU backend's decoding matmul (ops_decode.h matmul_rows) for weights too large for
// small_gemm: out[N,O] = x[N,I] W[O,I]^T, W streamed once per call for all N rows.
//
// Every element is computed by the same operations whatever N is and whichever rows share its
// group: 8 lanes of fused multiply-adds over i (element i into lane i & 7, the tail by std::fma,
// which rounds as the vector FMA does), then the lanes combined as ((0+1)+(2+3))+((4+5)+(6+7)).
// Rows are taken 8 at a time (8 independent FMA chains per W row, enough to hide the FMA
// latency), the rest 4, 2, 1 at a time: grouping only shares the loads of W, each row keeps its
// own chain. So a row's result depends neither on the batch nor on the thread count (threads
// split the O outputs).
#include <immintrin.h>
#include <omp.h>

#include <cmath>

#include "kernels.h"
#include "ops.h"
#include "ops_decode.h"
#include "simd_avx2.h"

namespace lf {
namespace ops {

namespace {
// out[r * ldo] = x[r] . w for the G rows of a group (x rows at stride I)
template <int G>
inline void dot_group(float* out, int64_t ldo, const float* x, const float* w, int I) {
    __m256 acc[G];
    for (int r = 0; r < G; r++) acc[r] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= I; i += 8) {
        const __m256 wv = _mm256_loadu_ps(w + i);
        for (int r = 0; r < G; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + (int64_t)r * I + i), wv, acc[r]);
    }
    for (int r = 0; r < G; r++) {
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, acc[r]);
        for (int j = i; j < I; j++) lanes[j & 7] = std::fma(x[(int64_t)r * I + j], w[j], lanes[j & 7]);
        out[(int64_t)r * ldo] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    }
}
}  // namespace

void matmul_rows_f32(float* out, const float* x, const float* W, int N, int I, int O) {
#pragma omp parallel for schedule(static) if ((int64_t)N * I * O >= kParallelMin)
    for (int o = 0; o < O; o++) {
        const float* w = W + (int64_t)o * I;
        int n = 0;
        for (; n + 8 <= N; n += 8) dot_group<8>(out + (int64_t)n * O + o, O, x + (int64_t)n * I, w, I);
        if (n + 4 <= N) { dot_group<4>(out + (int64_t)n * O + o, O, x + (int64_t)n * I, w, I); n += 4; }
        if (n + 2 <= N) { dot_group<2>(out + (int64_t)n * O + o, O, x + (int64_t)n * I, w, I); n += 2; }
        if (n < N) dot_group<1>(out + (int64_t)n * O + o, O, x + (int64_t)n * I, w, I);
    }
}

}  // namespace ops
}  // namespace lf
