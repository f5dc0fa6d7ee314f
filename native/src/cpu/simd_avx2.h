// AVX2 building blocks shared by the CPU kernels (the build targets x86-64-v3).
#pragma once
#include <immintrin.h>

namespace lf {
namespace simd {

// exp of 8 floats: Cephes expf (exp(x) = 2^n exp(r), r = x - n ln2, degree-6 polynomial), within
// 2 ulp of expf; inputs below -87 give 0. Separate multiplies and adds in the same order as
// ops::exp_scalar (cpu/backend.cpp), so a vector lane and the scalar tail give the same bits.
inline __m256 exp8(__m256 v0) {
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f), one = _mm256_set1_ps(1.0f);
    const __m256 keep = _mm256_and_ps(_mm256_cmp_ps(v0, lo, _CMP_GE_OQ), one);
    const __m256 v = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
    const __m256 fn = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_sub_ps(v, _mm256_mul_ps(fn, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(fn, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), one);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fn), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), keep);
}

// lanes 0..7 summed as ((0+1)+(2+3))+((4+5)+(6+7)), the order of ops::sum8's final combine
inline float hsum8(__m256 v) {
    alignas(32) float a[8];
    _mm256_store_ps(a, v);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
inline float hmax8(__m256 v) {
    alignas(32) float a[8];
    _mm256_store_ps(a, v);
    float m = a[0];
    for (int i = 1; i < 8; i++) m = a[i] > m ? a[i] : m;
    return m;
}

// all-ones in lanes whose index jc + lane lies in [j0, j1]
inline __m256 lane_mask(int jc, int j0, int j1) {
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(jc), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i ge = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(j0 - 1));
    const __m256i le = _mm256_cmpgt_epi32(_mm256_set1_epi32(j1 + 1), idx);
    return _mm256_castsi256_ps(_mm256_and_si256(ge, le));
}

}  // namespace simd
}  // namespace lf
