// The CPU backend: fp32, OpenBLAS sgemm for matmuls (and the GEMM the reference ops of ops.h
// call), its own kernels (kernels.h) where they beat the reference, OpenMP for the rest.
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend.h"
#include "error.h"
#include "kernels.h"
#include "ops.h"
#include "ops_decode.h"
#include "tensor.h"
#include "simd_avx2.h"

extern "C" void openblas_set_num_threads(int);

namespace lf {
static const int g_omp_default = omp_get_max_threads();  // before anything changes it

namespace ops {

// Cephes expf: exp(x) = 2^n * exp(r), r = x - n ln2, degree-6 polynomial, within 2 ulp of expf;
// inputs below -87 give 0. simd::exp8 (simd_avx2.h) does the same IEEE operations in the same
// order (no FMA), so the result does not depend on which one runs.
static inline float exp_scalar(float v0) {
    const float keep = v0 >= -87.0f ? 1.0f : 0.0f;
    const float v = std::min(std::max(v0, -87.0f), 88.0f);
    const float fn = std::floor(v * 1.44269504088896341f + 0.5f);
    float r = v - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    const int32_t e = ((int32_t)fn + 127) << 23;
    float scale;
    std::memcpy(&scale, &e, 4);
    return y * scale * keep;
}

__attribute__((target("avx2"))) static void vexp_avx2(float* x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, simd::exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = exp_scalar(x[i]);
}

void vexp_f32(float* x, int n) {
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2) {
        vexp_avx2(x, n);
        return;
    }
    for (int i = 0; i < n; i++) x[i] = exp_scalar(x[i]);
}

// OpenBLAS forks its threads for every GEMM above a small size. A fork/join costs little on an
// idle machine but milliseconds on a busy one, so GEMMs smaller than kGemmParallelMin run on
// one thread. Inside an OpenMP parallel region OpenBLAS is single-threaded anyway.
static int g_blas_threads = 0;  // what set_threads asked for (0: OpenMP default)
static int g_blas_current = -1;
void blas_threads_for(double mnk) {
    if (omp_in_parallel()) return;
    int want = mnk < kGemmParallelMin ? 1 : (g_blas_threads > 0 ? g_blas_threads : omp_get_max_threads());
    if (want != g_blas_current) {
        openblas_set_num_threads(want);
        omp_set_num_threads(g_blas_threads > 0 ? g_blas_threads : g_omp_default);
        g_blas_current = want;
    }
}

void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
          float beta, float* C, int ldc) {
    blas_threads_for((double)M * N * K);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}
void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B, int ldb,
          double beta, double* C, int ldc) {
    blas_threads_for((double)M * N * K);
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}
}  // namespace ops

namespace {
class CpuBackend : public Backend {
public:
    std::string name() const override { return "cpu"; }
    // every op, with F32, F16 or BF16 frozen weights (held as fp32: weights())
    bool supports_op(Op, DType weights) const override {
        return weights == DType::F32 || weights == DType::F16 || weights == DType::BF16;
    }
    void set_threads(int n) override {
        if (n > 0) {
            omp_set_num_threads(n);
            ops::g_blas_threads = n;
            ops::g_blas_current = -1;
        }
        threads_ = n > 0 ? n : omp_get_max_threads();
    }
    // Data parallelism: one model replica per thread, up to one per row. Each replica runs its
    // ops on one OpenMP thread with one BLAS thread (the pthreads OpenBLAS would not know), one
    // coarse parallel region per micro-batch instead of one per op.
    int threads() const override { return threads_; }
    int replicas_for(int rows) const override { return std::max(1, std::min(threads_, rows)); }
    void run_replicas(int P, const std::function<void(int p)>& body) override {
        if (P <= 1) {
            if (P == 1) body(0);
            return;
        }
        std::vector<std::unique_ptr<Error>> errors(P);  // the first one (by replica) is rethrown whole
        ops::blas_threads_for(0);
#pragma omp parallel num_threads(P)
        {
            const int p = omp_get_thread_num();
            try {
                body(p);
            } catch (const Error& e) {  // an exception must not leave the parallel region
                errors[p] = std::make_unique<Error>(e);
            }
        }
        for (int p = 0; p < P; p++)
            if (errors[p]) throw Error(*errors[p]);
    }
    float* alloc(size_t n) override {
        size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
        if (bytes == 0) bytes = 64;
        void* p = std::aligned_alloc(64, bytes);
        if (!p) throw Error(EXIT_INTERNAL, strprintf("out of memory allocating %zu bytes", bytes));
        std::memset(p, 0, bytes);
        return (float*)p;
    }
    void free(float* p) override { std::free(p); }
    // Frozen tensors: F32 ones (4-byte aligned) are used in place, F16/BF16 ones converted to
    // fp32 once per backend; the ones small_gemm takes also get packed copies (one per
    // orientation), made on first use. All dropped when the last holder releases the tensor.
    const float* weights(const FrozenTensor& t) override {
        std::lock_guard<std::mutex> lock(frozen_mu_);
        Frozen& f = frozen_[t.data];
        if (f.refs++ == 0) {
            if (t.dtype == DType::F32 && (uintptr_t)t.data % 4 == 0) {
                f.view = (const float*)t.data;
            } else {
                f.fp32.resize((size_t)t.numel);
                if (!frozen_to_f32(t, f.fp32.data()))
                    throw Error(EXIT_INTERNAL, std::string("cpu backend: frozen tensor of unsupported dtype ") + dtype_name(t.dtype));
                f.view = f.fp32.data();
            }
            by_view_[f.view] = t.data;
        }
        return f.view;
    }
    void release_weights(const void* data) override {
        std::lock_guard<std::mutex> lock(frozen_mu_);
        auto it = frozen_.find(data);
        if (it != frozen_.end() && --it->second.refs <= 0) {
            by_view_.erase(it->second.view);
            frozen_.erase(it);
        }
    }
    void upload(float* dst, const float* host, size_t n) override { if (dst != host) std::memcpy(dst, host, n * 4); }
    void download(float* host, const float* src, size_t n) override { if (host != src) std::memcpy(host, src, n * 4); }
    void zero(float* p, size_t n) override { std::memset(p, 0, n * 4); }
    void add(float* y, const float* x, size_t n) override {
#pragma omp parallel for schedule(static) if ((int64_t)n >= ops::kParallelMin)
        for (int64_t i = 0; i < (int64_t)n; i++) y[i] += x[i];
    }
    void scale(float* y, float a, size_t n) override {
#pragma omp parallel for schedule(static) if ((int64_t)n >= ops::kParallelMin)
        for (int64_t i = 0; i < (int64_t)n; i++) y[i] *= a;
    }
    double sum_squares(const float* x, size_t n) override { return ops::sum_squares(x, (int64_t)n); }
    bool all_finite(const float* x, size_t n) override {
        for (size_t i = 0; i < n; i++) if (!std::isfinite(x[i])) return false;
        return true;
    }
    void embedding(float* out, const int* tokens, const float* table, int N, int C) override {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= ops::kParallelMin)
        for (int n = 0; n < N; n++) std::memcpy(out + (int64_t)n * C, table + (int64_t)tokens[n] * C, (size_t)C * 4);
    }
    void scatter_rows(float* out, const float* x, const int* rows, int n, int C) override {
#pragma omp parallel for schedule(static) if ((int64_t)n * C >= ops::kParallelMin)
        for (int i = 0; i < n; i++) std::memcpy(out + (int64_t)rows[i] * C, x + (int64_t)i * C, (size_t)C * 4);
    }
    // out[N,O] = a x W^T + b out
    void matmul_forward(float* out, const float* x, const float* W, int N, int I, int O, float a, float b) override {
        if (!ops::small_gemm_fits(O, I)) return ops::matmul_forward(out, x, W, N, I, O, a, b);
        std::vector<float> scratch;
        ops::small_gemm(N, O, I, a, x, I, packed(W, true, O, I, &scratch), b, out, O);
    }
    // dx[N,I] = a dout W + b dx
    void matmul_backward_input(float* dx, const float* dout, const float* W, int N, int I, int O, float a, float b) override {
        if (!ops::small_gemm_fits(I, O)) return ops::matmul_backward_input(dx, dout, W, N, I, O, a, b);
        std::vector<float> scratch;
        ops::small_gemm(N, I, O, a, dout, O, packed(W, false, I, O, &scratch), b, dx, I);
    }
    void matmul_backward_weight(float* dW, const float* dout, const float* x, int N, int I, int O, float a, float b) override {
        ops::matmul_backward_weight(dW, dout, x, N, I, O, a, b);
    }
    void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int C, double eps) override {
        ops::rmsnorm_forward(out, rstd, x, w, N, C, eps);
    }
    void rmsnorm_backward(float* dx, const float* dout, const float* x, const float* w, const float* rstd, int N, int C) override {
        ops::rmsnorm_backward(dx, dout, x, w, rstd, N, C);
    }
    void rope_forward(float* x, const float* c, const float* s, int B, int T, int nh, int hd) override {
        ops::rope_forward(x, c, s, B, T, nh, hd);
    }
    void rope_backward(float* dx, const float* c, const float* s, int B, int T, int nh, int hd) override {
        ops::rope_backward(dx, c, s, B, T, nh, hd);
    }
    size_t attention_probs_floats(int B, int T, int H, int hd) const override {
        return ops::attention_fast_probs_floats(B, T, H, hd);
    }
    void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int* lens, int B,
                           int T, int H, int KV, int hd, int window, float* probs) override {
        if (!ops::attention_forward_fast(out, lse, q, k, v, lens, B, T, H, KV, hd, window, probs))
            ops::attention_forward(out, lse, q, k, v, lens, B, T, H, KV, hd, window);
    }
    void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                            const float* k, const float* v, const int* lens, int B, int T, int H, int KV, int hd,
                            int window, const float* probs) override {
        if (!ops::attention_backward_fast(dq, dk, dv, dout, lse, q, k, v, lens, B, T, H, KV, hd, window, probs))
            ops::attention_backward(dq, dk, dv, dout, lse, q, k, v, lens, B, T, H, KV, hd, window);
    }
    // SwiGLU 8 at a time with exp in registers: the same IEEE operations in the same order as
    // ops::swiglu_* (which does the tail), so the same bits
    void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override {
        const int64_t n8 = n / 8 * 8;
        const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
#pragma omp parallel for schedule(static) if (n >= ops::kParallelMin)
        for (int64_t i = 0; i < n8; i += 8) {
            const __m256 gv = _mm256_loadu_ps(g + i);
            const __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, simd::exp8(_mm256_xor_ps(gv, neg))));
            _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(gv, sg), _mm256_loadu_ps(u + i)));
        }
        ops::swiglu_forward(h + n8, g + n8, u + n8, n - n8);
    }
    void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override {
        const int64_t n8 = n / 8 * 8;
        const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
#pragma omp parallel for schedule(static) if (n >= ops::kParallelMin)
        for (int64_t i = 0; i < n8; i += 8) {
            const __m256 gv = _mm256_loadu_ps(g + i), dhv = _mm256_loadu_ps(dh + i);
            const __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, simd::exp8(_mm256_xor_ps(gv, neg))));
            _mm256_storeu_ps(du + i, _mm256_mul_ps(dhv, _mm256_mul_ps(gv, sg)));
            const __m256 k = _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, sg)));
            _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dhv, _mm256_loadu_ps(u + i)), sg), k));
        }
        ops::swiglu_backward(dg + n8, du + n8, dh + n8, g + n8, u + n8, n - n8);
    }
    double cross_entropy(float* dl, const float* l, const int* t, int N, int V, double gs, double* rl) override {
        return ops::cross_entropy(dl, l, t, N, V, gs, rl);
    }
    void dropout_apply(float* out, const float* x, int64_t n, double p, uint64_t key) override {
        ops::dropout_apply(out, x, n, p, key);
    }
    void dropout_backward(float* dx, const float* dout, int64_t n, double p, uint64_t key) override {
        ops::dropout_backward_acc(dx, dout, n, p, key);
    }
    void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double b1, double b2, double eps,
               double wd, int64_t step) override {
        ops::adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, step);
    }
    // small weights: the packed small_gemm (a row's sums do not depend on the others); large
    // ones: one pass over W for all rows instead of OpenBLAS packing W on every decoding step
    void matmul_rows(float* out, const float* x, const float* W, int N, int I, int O) override {
        if (ops::small_gemm_fits(O, I)) return matmul_forward(out, x, W, N, I, O, 1.0f, 0.0f);
        ops::matmul_rows_f32(out, x, W, N, I, O);
    }
    void rope_forward_at(float* x, const float* c, const float* s, const int* pos, int B, int n, int nh, int hd) override {
        ops::rope_forward_at(x, c, s, pos, B, n, nh, hd);
    }
    void kv_cache_write(float* cache, const float* x, const int* pos, int B, int n, int Tcap, int width) override {
        ops::kv_cache_write(cache, x, pos, B, n, Tcap, width);
    }
    void attention_cached(float* out, const float* q, const float* kc, const float* vc, const int* pos, int B, int n,
                          int H, int KV, int hd, int Tcap, int window) override {
        ops::attention_cached(out, q, kc, vc, pos, B, n, H, KV, hd, Tcap, window);
    }

private:
    struct Frozen {
        int refs = 0;
        const float* view = nullptr;   // what the ops read: the tensor itself, or fp32
        std::vector<float> fp32;       // the converted copy (F16/BF16, or unaligned F32)
        std::vector<float> packed[2];  // small_gemm panels of W^T (forward) and W (input gradient)
    };
    // W's panels for small_gemm as op(W) [K, N] (W^T when trans): the kept copy when W is a frozen
    // tensor, else packed into *scratch (a LoRA matrix changes every step)
    const float* packed(const float* W, bool trans, int N, int K, std::vector<float>* scratch) {
        const size_t n = ops::small_gemm_packed_floats(N, K);
        {
            std::lock_guard<std::mutex> lock(frozen_mu_);
            auto src = by_view_.find(W);
            if (src != by_view_.end()) {
                std::vector<float>& v = frozen_.at(src->second).packed[trans ? 0 : 1];
                if (v.size() != n) {  // first use (a tensor is always used with one shape)
                    v.resize(n);
                    ops::small_gemm_pack(v.data(), trans, N, K, W, trans ? K : N);
                }
                return v.data();  // stays valid while W is held (std::map nodes do not move)
            }
        }
        scratch->resize(n);
        ops::small_gemm_pack(scratch->data(), trans, N, K, W, trans ? K : N);
        return scratch->data();
    }
    int threads_ = omp_get_max_threads();
    std::mutex frozen_mu_;
    std::map<const void*, Frozen> frozen_;            // by the tensor's data (FrozenTensor::data)
    std::map<const float*, const void*> by_view_;     // what ops get -> the tensor's data
};
}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

// the `backends` verb's line for the CPU (backend.cpp)
BackendInfo probe_cpu_backend() { return {"cpu", true, true, strprintf("%d OpenMP threads", g_omp_default)}; }

}  // namespace lf
