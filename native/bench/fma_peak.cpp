// lf-fma-peak: the fp32 arithmetic ceiling of this machine, for the benchmark's roofline column.
//   lf-fma-peak [--threads N] [--seconds S]
// Prints one JSON line: the FMA peak (AVX2: 10 independent 8-wide FMA chains per thread, enough
// to cover FMA latency x throughput on current x86 cores) and OpenBLAS sgemm on a large square
// product (the practical ceiling a matmul reaches), both in GFLOP/s, with N threads.
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" void openblas_set_num_threads(int);

static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

static double fma_loop(long iters) {
    __m256 a0 = _mm256_set1_ps(0.1f), a1 = _mm256_set1_ps(0.2f), a2 = _mm256_set1_ps(0.3f), a3 = _mm256_set1_ps(0.4f),
           a4 = _mm256_set1_ps(0.5f), a5 = _mm256_set1_ps(0.6f), a6 = _mm256_set1_ps(0.7f), a7 = _mm256_set1_ps(0.8f),
           a8 = _mm256_set1_ps(0.9f), a9 = _mm256_set1_ps(1.0f);
    const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
    for (long k = 0; k < iters; k++) {
        a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c); a2 = _mm256_fmadd_ps(a2, b, c);
        a3 = _mm256_fmadd_ps(a3, b, c); a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
        a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c); a8 = _mm256_fmadd_ps(a8, b, c);
        a9 = _mm256_fmadd_ps(a9, b, c);
        // keep the chains in registers and the loop from being folded away
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(a0, a9));
    return out[0];
}

int main(int argc, char** argv) {
    int threads = omp_get_max_threads();
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
        else {
            std::fprintf(stderr, "usage: lf-fma-peak [--threads N] [--seconds S]\n");
            return 2;
        }
    }
    if (threads < 1) threads = 1;
    omp_set_num_threads(threads);
    // FMA: best of 5 timed rounds (another process only ever slows a round down)
    const long iters = 20000000;
    double best = 0, sink = 0;
    for (int round = 0; round < 5; round++) {
        const double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fma_loop(iters);
        const double el = now() - t0;
        best = std::max(best, (double)iters * 10 * 16 * threads / el / 1e9);
        if (round >= 2 && (now() - t0) * (5 - round) > seconds) break;
    }
    // sgemm 1536^3, best of 3
    openblas_set_num_threads(threads);
    const int n = 1536;
    std::vector<float> A((size_t)n * n, 0.5f), B((size_t)n * n, 0.25f), C((size_t)n * n);
    double gemm = 0;
    for (int r = 0; r < 3; r++) {
        const double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
        gemm = std::max(gemm, 2.0 * n * n * n / (now() - t0) / 1e9);
    }
    std::printf("{\"threads\":%d,\"fma_peak_gflops\":%.1f,\"sgemm_gflops\":%.1f,\"check\":%g}\n", threads, best, gemm,
                (double)sink * 0 + C[0]);
    return 0;
}
