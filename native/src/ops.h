// The CPU reference ops, templated on the element type: float is what the CPU backend runs,
// double is what the op tests check against finite differences. Each op is a forward/backward
// pair over plain row-major arrays; shapes are in the comments. Reductions accumulate in
// double and are split over threads so that each output element is computed by exactly one
// thread in a fixed order: results do not depend on thread timing.
#pragma once
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "rng.h"

namespace lf {
namespace ops {

// Ops smaller than this many element-operations run on one thread: a parallel region costs a
// barrier, and on a busy machine (CI shares 2 cores) a barrier can cost milliseconds.
constexpr int64_t kParallelMin = 1 << 16;
constexpr int64_t kParallelMinAttention = 1 << 21;  // B*H*T*T*hd multiply-adds
constexpr int64_t kParallelMinRows = 1 << 18;       // cross-entropy N*V

// ---------------------------------------------------------------------------------------------
// GEMM (row-major): C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C

inline void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                 int ldb, float beta, float* C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B,
                 int ldb, double beta, double* C, int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

// ---------------------------------------------------------------------------------------------
// matmul (nn.Linear without bias): out[N,O] = alpha * x[N,I] @ W[O,I]^T + beta * out

template <class T>
void matmul_forward(T* out, const T* x, const T* W, int N, int I, int O, T alpha = 1, T beta = 0) {
    gemm(false, true, N, O, I, alpha, x, I, W, I, beta, out, O);
}
// dx[N,I] = alpha * dout[N,O] @ W[O,I] + beta * dx
template <class T>
void matmul_backward_input(T* dx, const T* dout, const T* W, int N, int I, int O, T alpha = 1, T beta = 0) {
    gemm(false, false, N, I, O, alpha, dout, O, W, I, beta, dx, I);
}
// dW[O,I] = alpha * dout[N,O]^T @ x[N,I] + beta * dW
template <class T>
void matmul_backward_weight(T* dW, const T* dout, const T* x, int N, int I, int O, T alpha = 1, T beta = 1) {
    gemm(true, false, O, I, N, alpha, dout, O, x, I, beta, dW, I);
}

// ---------------------------------------------------------------------------------------------
// RMSNorm (HF LlamaRMSNorm): out = w * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps)
// x, out: [N, C]   w: [C]   rstd: [N] (saved for backward)

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int N, int C, double eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kParallelMin)
    for (int n = 0; n < N; n++) {
        const T* xr = x + (int64_t)n * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xr[i] * xr[i];
        T r = (T)(1.0 / std::sqrt(ss / C + eps));
        rstd[n] = r;
        T* o = out + (int64_t)n * C;
        for (int i = 0; i < C; i++) o[i] = w[i] * (xr[i] * r);
    }
}
// dx[N,C] += d/dx given dout[N,C] (w is frozen: no dw)
template <class T>
void rmsnorm_backward(T* dx, const T* dout, const T* x, const T* w, const T* rstd, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kParallelMin)
    for (int n = 0; n < N; n++) {
        const T* xr = x + (int64_t)n * C;
        const T* dr = dout + (int64_t)n * C;
        double dot = 0;  // sum_i dout_i * w_i * x_i
        for (int i = 0; i < C; i++) dot += (double)dr[i] * w[i] * xr[i];
        double r = rstd[n];
        T k = (T)(dot * r * r * r / C);
        T* o = dx + (int64_t)n * C;
        for (int i = 0; i < C; i++) o[i] += dr[i] * w[i] * (T)r - xr[i] * k;
    }
}

// ---------------------------------------------------------------------------------------------
// RoPE, HF rotate_half layout, in place. x: [B, T, nh, hd]; cos, sin: [T, hd/2] (fp32 tables)
// out[i] = x[i] cos - x[i+h] sin ; out[i+h] = x[i+h] cos + x[i] sin   (h = hd/2)

template <class T>
void rope_forward(T* x, const float* cosT, const float* sinT, int B, int Tn, int nh, int hd) {
    int h = hd / 2;
#pragma omp parallel for schedule(static) if ((int64_t)B * Tn * nh * hd >= kParallelMin)
    for (int bt = 0; bt < B * Tn; bt++) {
        int t = bt % Tn;
        for (int head = 0; head < nh; head++) {
            T* v = x + ((int64_t)bt * nh + head) * hd;
            for (int i = 0; i < h; i++) {
                T c = cosT[t * h + i], s = sinT[t * h + i];
                T a = v[i], b = v[i + h];
                v[i] = a * c - b * s;
                v[i + h] = b * c + a * s;
            }
        }
    }
}
template <class T>
void rope_backward(T* dx, const float* cosT, const float* sinT, int B, int Tn, int nh, int hd) {
    int h = hd / 2;
#pragma omp parallel for schedule(static) if ((int64_t)B * Tn * nh * hd >= kParallelMin)
    for (int bt = 0; bt < B * Tn; bt++) {
        int t = bt % Tn;
        for (int head = 0; head < nh; head++) {
            T* v = dx + ((int64_t)bt * nh + head) * hd;
            for (int i = 0; i < h; i++) {
                T c = cosT[t * h + i], s = sinT[t * h + i];
                T a = v[i], b = v[i + h];
                v[i] = a * c + b * s;
                v[i + h] = b * c - a * s;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Causal GQA attention with right padding. q: [B, T, H, hd]; k, v: [B, T, KV, hd];
// out: [B, T, H, hd]; P: [B, H, T, T] softmax probabilities (saved for backward).
// Query t of row b sees keys j <= min(t, len[b]-1) (and j > t - window when window > 0):
// the same mask HF builds from a right-padded attention_mask.

inline int attn_first_key(int t, int window) { return window > 0 ? std::max(0, t - window + 1) : 0; }
inline int attn_last_key(int t, int len) { return std::min(t, len - 1); }

template <class T>
void attention_forward(T* out, T* P, const T* q, const T* k, const T* v, const int* lens, int B, int Tn, int H,
                       int KV, int hd, int window = 0) {
    const int group = H / KV;
    const T scale = (T)(1.0 / std::sqrt((double)hd));
    const int qs = H * hd, ks = KV * hd;
#pragma omp parallel for collapse(2) schedule(static) if ((int64_t)B * H * Tn * Tn * hd >= kParallelMinAttention)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const int kvh = h / group;
            const T* qb = q + (int64_t)b * Tn * qs + h * hd;
            const T* kb = k + (int64_t)b * Tn * ks + kvh * hd;
            const T* vb = v + (int64_t)b * Tn * ks + kvh * hd;
            T* S = P + ((int64_t)b * H + h) * Tn * Tn;
            // S = scale * Q K^T
            gemm(false, true, Tn, Tn, hd, scale, qb, qs, kb, ks, (T)0, S, Tn);
            for (int t = 0; t < Tn; t++) {
                T* row = S + (int64_t)t * Tn;
                int j0 = attn_first_key(t, window), j1 = attn_last_key(t, lens[b]);
                T mx = -INFINITY;
                for (int j = j0; j <= j1; j++) mx = std::max(mx, row[j]);
                double sum = 0;
                for (int j = j0; j <= j1; j++) { T e = std::exp(row[j] - mx); row[j] = e; sum += e; }
                T inv = (T)(1.0 / sum);
                for (int j = 0; j < Tn; j++) row[j] = (j >= j0 && j <= j1) ? row[j] * inv : (T)0;
            }
            // out = P V
            gemm(false, false, Tn, hd, Tn, (T)1, S, Tn, vb, ks, (T)0, out + (int64_t)b * Tn * qs + h * hd, qs);
        }
    }
}

// dq: [B,T,H,hd] (overwritten); dk, dv: [B,T,KV,hd] (overwritten). The heads of one KV group are
// accumulated in order by one thread.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* P, const T* q, const T* k, const T* v,
                        const int* lens, int B, int Tn, int H, int KV, int hd, int window = 0) {
    (void)window;  // masked entries of P are 0, which zeroes their gradient
    const int group = H / KV;
    const T scale = (T)(1.0 / std::sqrt((double)hd));
    const int qs = H * hd, ks = KV * hd;
    (void)lens;
#pragma omp parallel if ((int64_t)B * H * Tn * Tn * hd >= kParallelMinAttention)
    {
        std::vector<T> dS((size_t)Tn * Tn);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int kvh = 0; kvh < KV; kvh++) {
                const T* kb = k + (int64_t)b * Tn * ks + kvh * hd;
                const T* vb = v + (int64_t)b * Tn * ks + kvh * hd;
                T* dkb = dk + (int64_t)b * Tn * ks + kvh * hd;
                T* dvb = dv + (int64_t)b * Tn * ks + kvh * hd;
                for (int g = 0; g < group; g++) {
                    const int h = kvh * group + g;
                    const T* qb = q + (int64_t)b * Tn * qs + h * hd;
                    const T* dob = dout + (int64_t)b * Tn * qs + h * hd;
                    const T* Pb = P + ((int64_t)b * H + h) * Tn * Tn;
                    T beta = g == 0 ? (T)0 : (T)1;
                    // dV += P^T dOut
                    gemm(true, false, Tn, hd, Tn, (T)1, Pb, Tn, dob, qs, beta, dvb, ks);
                    // dP = dOut V^T
                    gemm(false, true, Tn, Tn, hd, (T)1, dob, qs, vb, ks, (T)0, dS.data(), Tn);
                    // dS = P * (dP - sum_j P dP)
                    for (int t = 0; t < Tn; t++) {
                        const T* pr = Pb + (int64_t)t * Tn;
                        T* dr = dS.data() + (int64_t)t * Tn;
                        double dot = 0;
                        for (int j = 0; j < Tn; j++) dot += (double)pr[j] * dr[j];
                        for (int j = 0; j < Tn; j++) dr[j] = pr[j] * (dr[j] - (T)dot);
                    }
                    // dQ = scale dS K ; dK += scale dS^T Q
                    gemm(false, false, Tn, hd, Tn, scale, dS.data(), Tn, kb, ks, (T)0, dq + (int64_t)b * Tn * qs + h * hd, qs);
                    gemm(true, false, Tn, hd, Tn, scale, dS.data(), Tn, qb, qs, beta, dkb, ks);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: h = silu(g) * u, silu(g) = g / (1 + exp(-g)). g, u, h: [n]

template <class T>
void swiglu_forward(T* h, const T* g, const T* u, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; i++) {
        T s = (T)1 / ((T)1 + std::exp(-g[i]));
        h[i] = g[i] * s * u[i];
    }
}
template <class T>
void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; i++) {
        T s = (T)1 / ((T)1 + std::exp(-g[i]));
        T silu = g[i] * s;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * s * ((T)1 + g[i] * ((T)1 - s));
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy over rows of logits[N, V] with targets[N] (-1 = ignored). Returns the sum of the
// row losses; when `dlogits` is given, writes d(grad_scale * sum)/d logits there (it may alias
// logits). row_loss[N] receives each row's loss (0 for ignored rows).

template <class T>
double cross_entropy(T* dlogits, const T* logits, const int* targets, int N, int V, double grad_scale,
                     double* row_loss) {
#pragma omp parallel for schedule(static) if ((int64_t)N * V >= kParallelMinRows)
    for (int n = 0; n < N; n++) {
        const T* l = logits + (int64_t)n * V;
        int t = targets[n];
        if (t < 0) {
            row_loss[n] = 0;
            if (dlogits) std::fill(dlogits + (int64_t)n * V, dlogits + (int64_t)(n + 1) * V, (T)0);
            continue;
        }
        T mx = l[0];
        for (int i = 1; i < V; i++) mx = std::max(mx, l[i]);
        double sum = 0;
        for (int i = 0; i < V; i++) sum += std::exp((double)(l[i] - mx));
        double lse = (double)mx + std::log(sum);
        row_loss[n] = lse - (double)l[t];
        if (dlogits) {
            T* d = dlogits + (int64_t)n * V;
            for (int i = 0; i < V; i++) d[i] = (T)(std::exp((double)l[i] - lse) * grad_scale);
            d[t] -= (T)grad_scale;
        }
    }
    double s = 0;
    for (int n = 0; n < N; n++) s += row_loss[n];
    return s;
}

// ---------------------------------------------------------------------------------------------
// Dropout on the LoRA input (PEFT: lora_B(lora_A(dropout(x)))). Masks come from a counter-based
// hash of (key, element index), so forward and backward agree and no mask is stored.
// out[i] = x[i] * keep(i) / (1 - p)

template <class T>
void dropout_apply(T* out, const T* x, int64_t n, double p, uint64_t key) {
    const T scale = (T)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; i++) out[i] = uniform_at(key, (uint64_t)i) >= p ? x[i] * scale : (T)0;
}
// dx[i] += dout[i] * keep(i) / (1 - p)
template <class T>
void dropout_backward_acc(T* dx, const T* dout, int64_t n, double p, uint64_t key) {
    const T scale = (T)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; i++)
        if (uniform_at(key, (uint64_t)i) >= p) dx[i] += dout[i] * scale;
}

// ---------------------------------------------------------------------------------------------
// AdamW, torch.optim.AdamW semantics (decoupled weight decay, bias corrections in double,
// element math in the parameter's precision). `step` is the 1-based step count.

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps,
                  double wd, int64_t step) {
    const double bc1 = 1.0 - std::pow(beta1, (double)step);
    const double bc2 = 1.0 - std::pow(beta2, (double)step);
    const T step_size = (T)(lr / bc1);
    const T bc2_sqrt = (T)std::sqrt(bc2);
    const T decay = (T)(1.0 - lr * wd);
    const T w1 = (T)(1.0 - beta1), b2 = (T)beta2, w2 = (T)(1.0 - beta2), e = (T)eps;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] += w1 * (g[i] - m[i]);
        v[i] = v[i] * b2 + w2 * g[i] * g[i];
        T denom = std::sqrt(v[i]) / bc2_sqrt + e;
        p[i] -= step_size * (m[i] / denom);
    }
}

// sum of squares in double, in a fixed order
template <class T>
double sum_squares(const T* x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

}  // namespace ops
}  // namespace lf
