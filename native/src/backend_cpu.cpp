// The CPU backend: fp32, OpenBLAS sgemm for matmuls, OpenMP for the rest.
#include <cblas.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend.h"
#include "error.h"
#include "ops.h"

extern "C" void openblas_set_num_threads(int);

namespace lf {

const char* op_name(Op op) {
    static const char* names[] = {"matmul_forward", "matmul_backward_input", "matmul_backward_weight",
                                  "rmsnorm_forward", "rmsnorm_backward", "rope_forward", "rope_backward",
                                  "attention_forward", "attention_backward", "swiglu_forward", "swiglu_backward",
                                  "cross_entropy", "dropout_apply", "dropout_backward", "adamw", "embedding"};
    static_assert(sizeof(names) / sizeof(names[0]) == (size_t)Op::Count, "op names");
    return names[(int)op];
}

namespace {
class CpuBackend : public Backend {
public:
    std::string name() const override { return "cpu"; }
    bool supports_op(Op) const override { return true; }
    void set_threads(int n) override {
        if (n > 0) {
            omp_set_num_threads(n);
            openblas_set_num_threads(n);
        }
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
    const float* weights(const float* host, size_t) override { return host; }
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
    void matmul_forward(float* out, const float* x, const float* W, int N, int I, int O, float a, float b) override {
        ops::matmul_forward(out, x, W, N, I, O, a, b);
    }
    void matmul_backward_input(float* dx, const float* dout, const float* W, int N, int I, int O, float a, float b) override {
        ops::matmul_backward_input(dx, dout, W, N, I, O, a, b);
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
    void attention_forward(float* out, float* P, const float* q, const float* k, const float* v, const int* lens, int B,
                           int T, int H, int KV, int hd, int window) override {
        ops::attention_forward(out, P, q, k, v, lens, B, T, H, KV, hd, window);
    }
    void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* P, const float* q,
                            const float* k, const float* v, const int* lens, int B, int T, int H, int KV, int hd,
                            int window) override {
        ops::attention_backward(dq, dk, dv, dout, P, q, k, v, lens, B, T, H, KV, hd, window);
    }
    void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override { ops::swiglu_forward(h, g, u, n); }
    void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override {
        ops::swiglu_backward(dg, du, dh, g, u, n);
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
};
}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

#ifdef LORAFORGE_CUDA
std::unique_ptr<Backend> make_cuda_backend();
#endif

std::vector<std::string> backend_names() {
    std::vector<std::string> v{"cpu"};
#ifdef LORAFORGE_CUDA
    v.push_back("cuda");
#endif
    return v;
}
std::unique_ptr<Backend> make_backend(const std::string& name) {
    if (name == "cpu") return make_cpu_backend();
#ifdef LORAFORGE_CUDA
    if (name == "cuda") return make_cuda_backend();
#endif
    return nullptr;
}

}  // namespace lf
