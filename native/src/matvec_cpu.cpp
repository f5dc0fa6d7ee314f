// The CPU backend's decoding matmul (ops_decode.h matmul_rows): out[N,O] = x[N,I] W[O,I]^T for a
// few rows, W read once per call. Every element is ops::dot8(x[n], W[o], I): the same IEEE
// operations (8 lanes of multiply-then-add, the tail into lane i&7, the fixed combine), so a row's
// result depends neither on N, nor on which rows share a group, nor on the thread count.
#include <immintrin.h>
#include <omp.h>

#include "ops.h"
#include "ops_decode.h"
#include "simd_avx2.h"

namespace lf {
namespace ops {

namespace {
// four rows of x against one row of W, in registers
inline void dot8_x4(float* out4, const float* const* x, const float* w, int I) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 8 <= I; i += 8) {
        const __m256 wv = _mm256_loadu_ps(w + i);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(x[0] + i), wv));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(x[1] + i), wv));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(x[2] + i), wv));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(x[3] + i), wv));
    }
    __m256 acc[4] = {a0, a1, a2, a3};
    for (int r = 0; r < 4; r++) {
        if (i < I) {  // the tail as dot8 adds it: element i into lane i & 7
            alignas(32) float lanes[8];
            _mm256_store_ps(lanes, acc[r]);
            for (int j = i; j < I; j++) lanes[j & 7] += x[r][j] * w[j];
            acc[r] = _mm256_load_ps(lanes);
        }
        out4[r] = simd::hsum8(acc[r]);
    }
}
}  // namespace

void matmul_rows_f32(float* out, const float* x, const float* W, int N, int I, int O) {
#pragma omp parallel for schedule(static) if ((int64_t)N * I * O >= kParallelMin)
    for (int o = 0; o < O; o++) {
        const float* w = W + (int64_t)o * I;
        int n = 0;
        for (; n + 4 <= N; n += 4) {
            const float* xs[4] = {x + (int64_t)n * I, x + (int64_t)(n + 1) * I, x + (int64_t)(n + 2) * I,
                                  x + (int64_t)(n + 3) * I};
            float r[4];
            dot8_x4(r, xs, w, I);
            for (int k = 0; k < 4; k++) out[(int64_t)(n + k) * O + o] = r[k];
        }
        for (; n < N; n++) out[(int64_t)n * O + o] = dot8(x + (int64_t)n * I, w, I);
    }
}

}  // namespace ops
}  // namespace lf
