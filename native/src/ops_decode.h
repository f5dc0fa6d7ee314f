// The inference ops of generation (generate.cpp): RoPE at per-sequence positions, the KV cache
// write, and causal attention of new queries against the cache. Templated like ops.h (float is
// what the CPU backend runs, double is the op tests' reference); there is no backward.
//
// Shapes: a step feeds n new tokens of each of B sequences, x: [B, n, nh, hd]; sequence b's
// tokens sit at positions pos[b] .. pos[b]+n-1 (pos is host memory, like lens). The cache of
// one layer is [B, Tcap, KV, hd]. Every output element is computed by one thread in a fixed
// order, so a sequence's results depend neither on the thread count nor on the other
// sequences of the batch.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops.h"

namespace lf {
namespace ops {

// The decoding matmul: out[N,O] = x[N,I] W[O,I]^T (nn.Linear) where N is a handful of new
// tokens. Unlike matmul_forward it promises that row n of out depends only on row n of x (not on
// N, the other rows, or the thread count), which is what makes a sequence's tokens the same
// alone and in any batch. fp32: cpu/matvec.cpp (W read once for all N rows); double: plain loops.
void matmul_rows_f32(float* out, const float* x, const float* W, int N, int I, int O);
template <class T>
void matmul_rows(T* out, const T* x, const T* W, int N, int I, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            T s = 0;
            for (int i = 0; i < I; i++) s += x[(int64_t)n * I + i] * W[(int64_t)o * I + i];
            out[(int64_t)n * O + o] = s;
        }
}
inline void matmul_rows(float* out, const float* x, const float* W, int N, int I, int O) {
    matmul_rows_f32(out, x, W, N, I, O);
}

// RoPE in place at explicit positions: row (b, i) is rotated by position pos[b] + i.
// cos, sin: [Tcap, hd/2], the same tables as rope_forward (which is pos[b] = 0 for every b).
template <class T>
void rope_forward_at(T* x, const float* cosT, const float* sinT, const int* pos, int B, int n, int nh, int hd) {
    const int h = hd / 2;
#pragma omp parallel for schedule(static) if ((int64_t)B * n * nh * hd >= kParallelMin)
    for (int bi = 0; bi < B * n; bi++) {
        const int t = pos[bi / n] + bi % n;
        for (int head = 0; head < nh; head++) {
            T* v = x + ((int64_t)bi * nh + head) * hd;
            for (int i = 0; i < h; i++) {
                T c = cosT[(int64_t)t * h + i], s = sinT[(int64_t)t * h + i];
                T a = v[i], b = v[i + h];
                v[i] = a * c - b * s;
                v[i + h] = b * c + a * s;
            }
        }
    }
}

// cache[b, pos[b] + i, :] = x[b, i, :] for i < n.  x: [B, n, width]; cache: [B, Tcap, width].
// The caller keeps pos[b] + n <= Tcap.
template <class T>
void kv_cache_write(T* cache, const T* x, const int* pos, int B, int n, int Tcap, int width) {
#pragma omp parallel for schedule(static) if ((int64_t)B * n * width >= kParallelMin)
    for (int bi = 0; bi < B * n; bi++) {
        const int b = bi / n, t = pos[b] + bi % n;
        const T* src = x + (int64_t)bi * width;
        T* dst = cache + ((int64_t)b * Tcap + t) * width;
        for (int i = 0; i < width; i++) dst[i] = src[i];
    }
}

// Causal GQA attention of new queries against the cache. q, out: [B, n, H, hd]; kc, vc: [B, Tcap,
// KV, hd] already holding the keys/values of positions 0 .. pos[b]+n-1. Query (b, i) at position
// p = pos[b] + i sees keys j in [attn_first_key(p, window), p], as attention_forward's mask
// does: for pos[b] = 0 this is that op's result for a sequence of length n. Scores in T, the
// softmax sum in double, the weighted sum of values in T, in key order.
template <class T>
void attention_cached(T* out, const T* q, const T* kc, const T* vc, const int* pos, int B, int n, int H, int KV,
                      int hd, int Tcap, int window) {
    const int group = H / KV;
    const T scale = (T)(1.0 / std::sqrt((double)hd));
    int64_t work = 0;
    for (int b = 0; b < B; b++) work += (int64_t)n * (pos[b] + n) * H * hd;
#pragma omp parallel if (work >= kParallelMinAttention)
    {
        std::vector<T> s(Tcap);
#pragma omp for collapse(2) schedule(static)
        for (int bi = 0; bi < B * n; bi++) {
            for (int h = 0; h < H; h++) {
                const int b = bi / n, p = pos[b] + bi % n, kvh = h / group;
                const int j0 = attn_first_key(p, window);
                const T* qv = q + ((int64_t)bi * H + h) * hd;
                const T* kb = kc + (int64_t)b * Tcap * KV * hd + kvh * hd;
                const T* vb = vc + (int64_t)b * Tcap * KV * hd + kvh * hd;
                T mx = -INFINITY;
                for (int j = j0; j <= p; j++) {
                    s[j] = dot8(qv, kb + (int64_t)j * KV * hd, hd) * scale;
                    mx = std::max(mx, s[j]);
                }
                for (int j = j0; j <= p; j++) s[j] -= mx;
                vexp(s.data() + j0, p - j0 + 1);
                const T inv = (T)(1.0 / sum8(s.data() + j0, p - j0 + 1));
                T* o = out + ((int64_t)bi * H + h) * hd;
                for (int d = 0; d < hd; d++) o[d] = 0;
                for (int j = j0; j <= p; j++) {
                    const T w = s[j] * inv;
                    const T* vr = vb + (int64_t)j * KV * hd;
                    for (int d = 0; d < hd; d++) o[d] += w * vr[d];
                }
            }
        }
    }
}

}  // namespace ops
}  // namespace lf
