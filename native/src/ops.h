// The reference ops, templated on the element type: float is what the CPU backend runs where it
// has no kernel of its own, double is what the op tests check against finite differences. Each
// op is a forward/backward pair over plain row-major arrays; shapes are in the comments.
// Reductions accumulate in double and are split over threads (OpenMP pragmas, ignored without
// OpenMP) so that each output element is computed by exactly one thread in a fixed order:
// results do not depend on thread timing. Nothing here is tied to a BLAS, an ISA or a backend:
// the CPU backend's fast kernels, its BLAS and its tuning live in cpu/ (cpu/kernels.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "error.h"
#include "rng.h"

namespace lf {
namespace ops {

// x[i] = exp(x[i]) for fp32, vectorized (Cephes-style polynomial, within 2 ulp of expf; inputs
// below -87 give 0). Double uses std::exp. Defined in cpu/backend.cpp.
void vexp_f32(float* x, int n);
inline void vexp(float* x, int n) { vexp_f32(x, n); }
inline void vexp(double* x, int n) {
    for (int i = 0; i < n; i++) x[i] = std::exp(x[i]);
}

// sum(x[0..n)) and sum(x*y) with 8 interleaved float partial sums combined in a fixed order:
// vectorizes, and gives the same bits on every run and thread count. Double: plain loop.
inline float sum8(const float* x, int n) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k];
    for (; i < n; i++) a[i & 7] += x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
inline float dot8(const float* x, const float* y, int n) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k] * y[i + k];
    for (; i < n; i++) a[i & 7] += x[i] * y[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
inline double sum8(const double* x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}
inline double dot8(const double* x, const double* y, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

// Ops smaller than this many element-operations run on one thread: a parallel region costs a
// barrier, and on a busy machine (CI shares 2 cores) a barrier can cost milliseconds.
constexpr int64_t kParallelMin = 1 << 16;
constexpr int64_t kParallelMinAttention = 1 << 21;  // B*H*T*T*hd multiply-adds
constexpr int64_t kParallelMinRows = 1 << 18;       // cross-entropy N*V

// ---------------------------------------------------------------------------------------------
// GEMM (row-major): C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
// The reference's one dependency: a BLAS GEMM, bound by the CPU backend (cpu/backend.cpp).

void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
          float beta, float* C, int ldc);
void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B, int ldb,
          double beta, double* C, int ldc);

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

// sum of x[i] * y[i] * z[i] (z may be null: 1) in double, as four interleaved partial sums
// combined in a fixed order: the compiler keeps them in one vector register
template <class T>
inline double dot3_f64(const T* x, const T* y, const T* z, int n) {
    double a[4] = {0, 0, 0, 0};
    int i = 0;
    if (z) {
        for (; i + 4 <= n; i += 4)
            for (int k = 0; k < 4; k++) a[k] += (double)x[i + k] * y[i + k] * z[i + k];
        for (; i < n; i++) a[i & 3] += (double)x[i] * y[i] * z[i];
    } else {
        for (; i + 4 <= n; i += 4)
            for (int k = 0; k < 4; k++) a[k] += (double)x[i + k] * y[i + k];
        for (; i < n; i++) a[i & 3] += (double)x[i] * y[i];
    }
    return (a[0] + a[1]) + (a[2] + a[3]);
}

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int N, int C, double eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kParallelMin)
    for (int n = 0; n < N; n++) {
        const T* xr = x + (int64_t)n * C;
        const double ss = dot3_f64(xr, xr, (const T*)nullptr, C);
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
        const double dot = dot3_f64(dr, w, xr, C);  // sum_i dout_i * w_i * x_i
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
// out: [B, T, H, hd]; lse: [B, H, T] log-sum-exp of each query's scores (saved for backward,
// which recomputes the probabilities instead of storing [B, H, T, T]).
// Query t of row b sees keys j <= min(t, len[b]-1) (and j > t - window when window > 0):
// the same mask HF builds from a right-padded attention_mask. Queries are processed in blocks
// of kAttnBlock rows, each against only the keys it can see.

constexpr int kAttnBlock = 64;
inline int attn_first_key(int t, int window) { return window > 0 ? std::max(0, t - window + 1) : 0; }
inline int attn_last_key(int t, int len) { return std::min(t, len - 1); }

// S[nb, nk] = scale * Q_blk K^T, then P = softmax over the visible keys (0 elsewhere); lse per row
template <class T>
void attn_probs(T* S, T* lse_out, const T* qblk, int qs, const T* kb, int ks, int t0, int nb, int nk, int hd, int len,
                int window, T scale, bool recompute) {
    gemm(false, true, nb, nk, hd, scale, qblk, qs, kb, ks, (T)0, S, nk);
    for (int i = 0; i < nb; i++) {
        const int t = t0 + i;
        T* row = S + (int64_t)i * nk;
        const int j0 = attn_first_key(t, window), j1 = attn_last_key(t, len);
        if (recompute) {
            const T l = lse_out[i];
            for (int j = j0; j <= j1; j++) row[j] -= l;
            vexp(row + j0, j1 - j0 + 1);
            for (int j = 0; j < j0; j++) row[j] = (T)0;
            for (int j = j1 + 1; j < nk; j++) row[j] = (T)0;
            continue;
        }
        T mx = -INFINITY;
        for (int j = j0; j <= j1; j++) mx = std::max(mx, row[j]);
        for (int j = j0; j <= j1; j++) row[j] -= mx;
        vexp(row + j0, j1 - j0 + 1);
        const double sum = sum8(row + j0, j1 - j0 + 1);
        const T inv = (T)(1.0 / sum);
        for (int j = 0; j < j0; j++) row[j] = (T)0;
        for (int j = j0; j <= j1; j++) row[j] *= inv;
        for (int j = j1 + 1; j < nk; j++) row[j] = (T)0;
        lse_out[i] = mx + (T)std::log(sum);
    }
}

template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const int* lens, int B, int Tn, int H,
                       int KV, int hd, int window = 0) {
    const int group = H / KV;
    const T scale = (T)(1.0 / std::sqrt((double)hd));
    const int qs = H * hd, ks = KV * hd;
#pragma omp parallel if ((int64_t)B * H * Tn * Tn * hd >= kParallelMinAttention)
    {
        std::vector<T> S((size_t)kAttnBlock * Tn);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                const int kvh = h / group, len = lens[b];
                const T* kb = k + (int64_t)b * Tn * ks + kvh * hd;
                const T* vb = v + (int64_t)b * Tn * ks + kvh * hd;
                for (int t0 = 0; t0 < Tn; t0 += kAttnBlock) {
                    const int nb = std::min(kAttnBlock, Tn - t0);
                    const int nk = std::min(t0 + nb, len);  // keys 0 .. nk-1 can be visible
                    const T* qblk = q + ((int64_t)b * Tn + t0) * qs + h * hd;
                    T* lrow = lse + ((int64_t)b * H + h) * Tn + t0;
                    attn_probs(S.data(), lrow, qblk, qs, kb, ks, t0, nb, nk, hd, len, window, scale, false);
                    gemm(false, false, nb, hd, nk, (T)1, S.data(), nk, vb, ks, (T)0, out + ((int64_t)b * Tn + t0) * qs + h * hd, qs);
                }
            }
        }
    }
}

// dq: [B,T,H,hd] (overwritten); dk, dv: [B,T,KV,hd] (overwritten). The heads of one KV group are
// accumulated in a fixed order by one thread.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* lse, const T* q, const T* k, const T* v,
                        const int* lens, int B, int Tn, int H, int KV, int hd, int window = 0) {
    const int group = H / KV;
    const T scale = (T)(1.0 / std::sqrt((double)hd));
    const int qs = H * hd, ks = KV * hd;
#pragma omp parallel if ((int64_t)B * H * Tn * Tn * hd >= kParallelMinAttention)
    {
        std::vector<T> P((size_t)kAttnBlock * Tn), dS((size_t)kAttnBlock * Tn), lrow(kAttnBlock);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int kvh = 0; kvh < KV; kvh++) {
                const int len = lens[b];
                const T* kb = k + (int64_t)b * Tn * ks + kvh * hd;
                const T* vb = v + (int64_t)b * Tn * ks + kvh * hd;
                T* dkb = dk + (int64_t)b * Tn * ks + kvh * hd;
                T* dvb = dv + (int64_t)b * Tn * ks + kvh * hd;
                for (int t = 0; t < Tn; t++) {
                    std::fill(dkb + (int64_t)t * ks, dkb + (int64_t)t * ks + hd, (T)0);
                    std::fill(dvb + (int64_t)t * ks, dvb + (int64_t)t * ks + hd, (T)0);
                }
                for (int g = 0; g < group; g++) {
                    const int h = kvh * group + g;
                    for (int t0 = 0; t0 < Tn; t0 += kAttnBlock) {
                        const int nb = std::min(kAttnBlock, Tn - t0);
                        const int nk = std::min(t0 + nb, len);
                        const T* qblk = q + ((int64_t)b * Tn + t0) * qs + h * hd;
                        const T* doblk = dout + ((int64_t)b * Tn + t0) * qs + h * hd;
                        std::copy(lse + ((int64_t)b * H + h) * Tn + t0, lse + ((int64_t)b * H + h) * Tn + t0 + nb, lrow.begin());
                        attn_probs(P.data(), lrow.data(), qblk, qs, kb, ks, t0, nb, nk, hd, len, window, scale, true);
                        // dV += P^T dOut
                        gemm(true, false, nk, hd, nb, (T)1, P.data(), nk, doblk, qs, (T)1, dvb, ks);
                        // dP = dOut V^T ; dS = P * (dP - sum_j P dP)
                        gemm(false, true, nb, nk, hd, (T)1, doblk, qs, vb, ks, (T)0, dS.data(), nk);
                        for (int i = 0; i < nb; i++) {
                            const T* pr = P.data() + (int64_t)i * nk;
                            T* dr = dS.data() + (int64_t)i * nk;
                            const T dot = dot8(pr, dr, nk);
                            for (int j = 0; j < nk; j++) dr[j] = pr[j] * (dr[j] - dot);
                        }
                        // dQ = scale dS K ; dK += scale dS^T Q
                        gemm(false, false, nb, hd, nk, scale, dS.data(), nk, kb, ks, (T)0, dq + ((int64_t)b * Tn + t0) * qs + h * hd, qs);
                        gemm(true, false, nk, hd, nb, scale, dS.data(), nk, qblk, qs, (T)1, dkb, ks);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: h = silu(g) * u, silu(g) = g / (1 + exp(-g)). g, u, h: [n]

template <class T>
void swiglu_forward(T* h, const T* g, const T* u, int64_t n) {
    const int64_t chunk = 512;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        T e[chunk];
        const int m = (int)std::min(chunk, n - c0);
        for (int i = 0; i < m; i++) e[i] = -g[c0 + i];
        vexp(e, m);  // exp(-g)
        for (int i = 0; i < m; i++) h[c0 + i] = g[c0 + i] * ((T)1 / ((T)1 + e[i])) * u[c0 + i];
    }
}
template <class T>
void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, int64_t n) {
    const int64_t chunk = 512;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        T e[chunk];
        const int m = (int)std::min(chunk, n - c0);
        for (int i = 0; i < m; i++) e[i] = -g[c0 + i];
        vexp(e, m);
        for (int i = 0; i < m; i++) {
            const int64_t k = c0 + i;
            const T sg = (T)1 / ((T)1 + e[i]);
            const T silu = g[k] * sg;
            du[k] = dh[k] * silu;
            dg[k] = dh[k] * u[k] * sg * ((T)1 + g[k] * ((T)1 - sg));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy over rows of logits[N, V] with targets[N] (-1 = ignored). Returns the sum of the
// row losses; when `dlogits` is given, writes d(grad_scale * sum)/d logits there (it may alias
// logits). row_loss[N] receives each row's loss (0 for ignored rows).

template <class T>
double cross_entropy(T* dlogits, const T* logits, const int* targets, int N, int V, double grad_scale,
                     double* row_loss) {
#pragma omp parallel if ((int64_t)N * V >= kParallelMinRows)
    {
        std::vector<T> scratch(dlogits ? 0 : V);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const T* l = logits + (int64_t)n * V;
            const int t = targets[n];
            T* e = dlogits ? dlogits + (int64_t)n * V : scratch.data();  // may alias l
            if (t < 0) {
                row_loss[n] = 0;
                if (dlogits) std::fill(e, e + V, (T)0);
                continue;
            }
            T mx = l[0];
            for (int i = 1; i < V; i++) mx = std::max(mx, l[i]);
            const double lt = (double)l[t];
            for (int i = 0; i < V; i++) e[i] = l[i] - mx;
            vexp(e, V);
            // four interleaved partial sums in double, combined in a fixed order
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int i = 0;
            for (; i + 4 <= V; i += 4) { s0 += e[i]; s1 += e[i + 1]; s2 += e[i + 2]; s3 += e[i + 3]; }
            for (; i < V; i++) s0 += e[i];
            const double sum = (s0 + s1) + (s2 + s3);
            row_loss[n] = (double)mx + std::log(sum) - lt;
            if (dlogits) {
                const T k = (T)(grad_scale / sum);  // softmax * grad_scale = exp(l - mx) * k
                for (int j = 0; j < V; j++) e[j] *= k;
                e[t] -= (T)grad_scale;
            }
        }
    }
    double s = 0;
    for (int n = 0; n < N; n++) s += row_loss[n];
    return s;
}

// ---------------------------------------------------------------------------------------------
// Dropout on the LoRA input (PEFT: lora_B(lora_A(dropout(x)))). Masks come from a counter-based
// hash of (key, element index) (rng.h), so forward and backward agree and no mask is stored.
// out[i] = x[i] * keep(i) / (1 - p)

template <class T>
void dropout_apply(T* out, const T* x, int64_t n, double p, uint64_t key) {
    LF_ASSERT(n < ((int64_t)1 << 32));
    const T scale = (T)(1.0 / (1.0 - p));
    const uint32_t thr = dropout_threshold(p), un = (uint32_t)n;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (uint32_t i = 0; i < un; i++) {
        const T k = dropout_bits(key, i) >= thr ? scale : (T)0;  // a select: the loop vectorizes
        out[i] = x[i] * k;
    }
}
// dx[i] += dout[i] * keep(i) / (1 - p)
template <class T>
void dropout_backward_acc(T* dx, const T* dout, int64_t n, double p, uint64_t key) {
    LF_ASSERT(n < ((int64_t)1 << 32));
    const T scale = (T)(1.0 / (1.0 - p));
    const uint32_t thr = dropout_threshold(p), un = (uint32_t)n;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (uint32_t i = 0; i < un; i++) {
        const T k = dropout_bits(key, i) >= thr ? scale : (T)0;
        dx[i] += dout[i] * k;
    }
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
