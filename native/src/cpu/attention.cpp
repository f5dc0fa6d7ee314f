// The CPU backend's fp32 attention for head sizes known at compile time.
//
// ops::attention_forward/backward (ops.h) are the readable reference: blocks of queries against
// their keys through sgemm. With small heads (stories260K: head_dim 8) those GEMMs have K = 8,
// and packing, zeroing and call overhead cost more than the arithmetic. Here each (batch row,
// KV head) is one work item: its keys and values are gathered once into contiguous tiles (K
// also transposed), every query head of the group runs over them with register-sized loops
// that the compiler vectorizes, and the key/value gradients accumulate in the tiles in a fixed
// order (heads, then queries) before one scatter. Same masks and conventions as the reference:
// causal, right padding (query t sees keys j <= min(t, len-1)), optional sliding window, lse
// saved for backward, probabilities recomputed there. test_ops compares both against f64.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "ops.h"
#include "simd_avx2.h"

namespace lf {
namespace ops {
namespace {

constexpr int kLanes = 8;  // keys per score chunk (one AVX2 register of fp32)
inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Per-thread tiles for one (b, kv head): Kt [HD][Tp] (transposed), Kr, Vr, dK, dV [Tp][HD], Vt [HD][Tp]
struct Tiles {
    int Tp = 0;
    std::vector<float> Kt, Kr, Vt, Vr, dK, dV, s, p, dp, dS;
};

// Kept probabilities: per (b, h) the rows of queries 0..Tn-1, row t holding keys [0, round8(t+1))
// (the chunks a query can see without a window), so the causal half of a [Tn, Tn] matrix. A row
// holds exp(s - max), unnormalized; lse then holds 1/sum for it.
inline size_t probs_row(int t) {  // sum over u < t of round8(u + 1)
    const size_t full = (size_t)(t / kLanes);  // complete groups of 8 rows: group g has 8 rows of 8(g+1)
    size_t off = (size_t)kLanes * kLanes * full * (full + 1) / 2;
    off += (size_t)(t % kLanes) * kLanes * (full + 1);
    return off;
}
inline size_t probs_per_head(int Tn) { return probs_row(Tn); }

template <int HD>
void gather(Tiles& w, const float* k, const float* v, int b, int kvh, int Tn, int KV, bool transposed_v) {
    const int ks = KV * HD, Tp = w.Tp;
    std::fill(w.Kt.begin(), w.Kt.end(), 0.0f);  // keys past Tn are read by the last chunk, never used
    if (transposed_v) std::fill(w.Vt.begin(), w.Vt.end(), 0.0f);
    for (int j = 0; j < Tn; j++) {
        const float* kr = k + ((int64_t)b * Tn + j) * ks + kvh * HD;
        const float* vr = v + ((int64_t)b * Tn + j) * ks + kvh * HD;
        std::memcpy(&w.Kr[(size_t)j * HD], kr, sizeof(float) * HD);
        std::memcpy(&w.Vr[(size_t)j * HD], vr, sizeof(float) * HD);
        for (int d = 0; d < HD; d++) w.Kt[(size_t)d * Tp + j] = kr[d];
        if (transposed_v)
            for (int d = 0; d < HD; d++) w.Vt[(size_t)d * Tp + j] = vr[d];
    }
}

// x_u . M[:, jc .. jc+8) for M [HD][Tp]: the dot products of G vectors x_u with 8 consecutive keys,
// sharing the loads of M (even and odd d: two sums in flight per vector)
template <int HD, int G>
inline void dots8_g(__m256* out, const float* const* x, const float* M, int Tp, int jc) {
    __m256 a[G][2];
#pragma GCC unroll 4
    for (int u = 0; u < G; u++) a[u][0] = a[u][1] = _mm256_setzero_ps();
    for (int d = 0; d < HD; d += 2) {
        const __m256 m0 = _mm256_loadu_ps(M + (size_t)d * Tp + jc), m1 = _mm256_loadu_ps(M + (size_t)(d + 1) * Tp + jc);
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) {
            a[u][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(x[u] + d), m0, a[u][0]);
            a[u][1] = _mm256_fmadd_ps(_mm256_broadcast_ss(x[u] + d + 1), m1, a[u][1]);
        }
    }
#pragma GCC unroll 4
    for (int u = 0; u < G; u++) out[u] = _mm256_add_ps(a[u][0], a[u][1]);
}

// the same for one vector
template <int HD>
inline __m256 dots8(const float* x, const float* M, int Tp, int jc) {
    __m256 r;
    dots8_g<HD, 1>(&r, &x, M, Tp, jc);
    return r;
}

// Row accumulators for sums over keys: HD/8 vectors per set, and enough sets that at least four
// independent additions are in flight. Keys j0, j0+1, ... go to sets 0, 1, ..., kSets-1 in turn
// (for_keys unrolls that, so a set index is a constant and the sets live in registers); the sets
// are combined in a fixed order at the end.
template <int HD>
struct RowAcc {
    static constexpr int kVec = HD / kLanes;
    static constexpr int kSets = kVec >= 4 ? 1 : 4 / kVec;
    __m256 a[kSets][kVec];
    RowAcc() {
        for (int i = 0; i < kSets; i++)
            for (int c = 0; c < kVec; c++) a[i][c] = _mm256_setzero_ps();
    }
    // a[set] += *w * row[0..HD)
    inline void add(int set, const float* w, const float* row) {
        const __m256 wv = _mm256_broadcast_ss(w);
        for (int c = 0; c < kVec; c++) a[set][c] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + c * kLanes), a[set][c]);
    }
    // out[0..HD) = scale * sum of the sets
    inline void store(float* out, float scale) const {
        const __m256 sc = _mm256_set1_ps(scale);
        for (int c = 0; c < kVec; c++) {
            __m256 t = a[0][c];
            if constexpr (kSets == 2) t = _mm256_add_ps(t, a[1][c]);
            if constexpr (kSets == 4) t = _mm256_add_ps(_mm256_add_ps(t, a[1][c]), _mm256_add_ps(a[2][c], a[3][c]));
            _mm256_storeu_ps(out + c * kLanes, _mm256_mul_ps(t, sc));
        }
    }
};

// f(set, j) for j in [j0, j1], with set = (j - j0) % kSets known at compile time
template <int HD, class F>
inline void for_keys(int j0, int j1, F&& f) {
    constexpr int S = RowAcc<HD>::kSets;
    int j = j0;
    for (; j + S <= j1 + 1; j += S)
        for (int u = 0; u < S; u++) f(u, j + u);
    if constexpr (S > 1) {
        for (int u = 0; j + u <= j1; u++) f(u, j + u);
    }
}

// out_u[0..HD) = scale_u * sum_{j in [j0, j1]} w_u[j] R[j][0..HD) for G rows of weights over the
// same rows R (the G query heads of a KV group): each R row is loaded once for all G.
template <int HD, int G>
inline void weighted_rows_g(float* const* out, const float* const* w, const float* R, int j0, int j1,
                            const float* scale) {
    constexpr int kVec = HD / kLanes;
    __m256 a[G][2][kVec];  // even and odd keys
#pragma GCC unroll 4
    for (int u = 0; u < G; u++)
#pragma GCC unroll 4
        for (int c = 0; c < kVec; c++) a[u][0][c] = a[u][1][c] = _mm256_setzero_ps();
    int j = j0;
    for (; j + 2 <= j1 + 1; j += 2) {
#pragma GCC unroll 4
        for (int c = 0; c < kVec; c++) {
            const __m256 r0 = _mm256_loadu_ps(R + (size_t)j * HD + c * kLanes);
            const __m256 r1 = _mm256_loadu_ps(R + (size_t)(j + 1) * HD + c * kLanes);
#pragma GCC unroll 4
            for (int u = 0; u < G; u++) {
                a[u][0][c] = _mm256_fmadd_ps(_mm256_broadcast_ss(w[u] + j), r0, a[u][0][c]);
                a[u][1][c] = _mm256_fmadd_ps(_mm256_broadcast_ss(w[u] + j + 1), r1, a[u][1][c]);
            }
        }
    }
    if (j <= j1) {
#pragma GCC unroll 4
        for (int c = 0; c < kVec; c++) {
            const __m256 r0 = _mm256_loadu_ps(R + (size_t)j * HD + c * kLanes);
#pragma GCC unroll 4
            for (int u = 0; u < G; u++) a[u][0][c] = _mm256_fmadd_ps(_mm256_broadcast_ss(w[u] + j), r0, a[u][0][c]);
        }
    }
#pragma GCC unroll 4
    for (int u = 0; u < G; u++)
#pragma GCC unroll 4
        for (int c = 0; c < kVec; c++)
            _mm256_storeu_ps(out[u] + c * kLanes, _mm256_mul_ps(_mm256_add_ps(a[u][0][c], a[u][1][c]), _mm256_set1_ps(scale[u])));
}

// Forward of G query heads of one KV group at a time (they share t, so the same visible keys):
// the key and value loads, the masks and the loop control are paid once for the G of them.
template <int HD, int G>
void forward_heads(Tiles& w, float* out, float* lse, const float* q, int b, int h0, int len, int Tn, int H,
                   int window, float scale, float* probs) {
    const int qs = H * HD;
    for (int t = 0; t < Tn; t++) {
        const float* qt[G];
        float *ot[G], *lt[G], *s[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) {
            const int h = h0 + u;
            qt[u] = q + ((int64_t)b * Tn + t) * qs + h * HD;
            ot[u] = out + ((int64_t)b * Tn + t) * qs + h * HD;
            lt[u] = lse + ((int64_t)b * H + h) * Tn + t;
            // with probs kept, a row is built in place there (and lse receives 1/sum instead)
            s[u] = probs ? probs + ((size_t)b * H + h) * probs_per_head(Tn) + probs_row(t) : w.s.data() + (size_t)u * w.Tp;
        }
        const int j0 = attn_first_key(t, window), j1 = attn_last_key(t, len);
        if (j1 < j0) {  // no visible key (an empty row): output 0
            for (int u = 0; u < G; u++) {
                std::fill(ot[u], ot[u] + HD, 0.0f);
                *lt[u] = 0.0f;
            }
            continue;
        }
        // scores of the chunks of 8 keys that cover [j0, j1], masked lanes at -inf; their max
        const int c0 = j0 / kLanes * kLanes;
        const __m256 sc = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
        __m256 vmax[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) vmax[u] = ninf;
        for (int jc = c0; jc <= j1; jc += kLanes) {
            __m256 d[G];
            dots8_g<HD, G>(d, qt, w.Kt.data(), w.Tp, jc);
            const __m256 mask = simd::lane_mask(jc, j0, j1);
#pragma GCC unroll 4
            for (int u = 0; u < G; u++) {
                const __m256 sj = _mm256_blendv_ps(ninf, _mm256_mul_ps(d[u], sc), mask);
                _mm256_storeu_ps(s[u] + jc, sj);
                vmax[u] = _mm256_max_ps(vmax[u], sj);
            }
        }
        // e = exp(s - max) (0 in masked lanes) and its sum
        __m256 vmx[G], vsum[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) {
            vmx[u] = _mm256_set1_ps(simd::hmax8(vmax[u]));
            vsum[u] = _mm256_setzero_ps();
        }
        for (int jc = c0; jc <= j1; jc += kLanes) {
#pragma GCC unroll 4
            for (int u = 0; u < G; u++) {
                const __m256 e = simd::exp8(_mm256_sub_ps(_mm256_loadu_ps(s[u] + jc), vmx[u]));
                _mm256_storeu_ps(s[u] + jc, e);
                vsum[u] = _mm256_add_ps(vsum[u], e);
            }
        }
        float inv[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) {
            const float sum = simd::hsum8(vsum[u]);
            inv[u] = 1.0f / sum;
            *lt[u] = probs ? inv[u] : _mm256_cvtss_f32(vmx[u]) + std::log(sum);
        }
        weighted_rows_g<HD, G>(ot, s, w.Vr.data(), j0, j1, inv);  // out = sum_j p_j V_j
    }
}

template <int HD>
void forward_item(Tiles& w, float* out, float* lse, const float* q, const float* k, const float* v, int b, int kvh,
                  int len, int Tn, int H, int KV, int window, float scale, float* probs) {
    gather<HD>(w, k, v, b, kvh, Tn, KV, false);
    const int group = H / KV;
    int g = 0;
    for (; g + 2 <= group; g += 2) forward_heads<HD, 2>(w, out, lse, q, b, kvh * group + g, len, Tn, H, window, scale, probs);
    for (; g < group; g++) forward_heads<HD, 1>(w, out, lse, q, b, kvh * group + g, len, Tn, H, window, scale, probs);
}

template <int HD>
void backward_item(Tiles& w, float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                   const float* k, const float* v, int b, int kvh, int len, int Tn, int H, int KV, int window,
                   float scale) {
    gather<HD>(w, k, v, b, kvh, Tn, KV, true);
    std::fill(w.dK.begin(), w.dK.end(), 0.0f);
    std::fill(w.dV.begin(), w.dV.end(), 0.0f);
    const int group = H / KV, qs = H * HD, ks = KV * HD;
    constexpr int kVec = HD / kLanes;
    float *p = w.p.data(), *dp = w.dp.data();
    for (int g = 0; g < group; g++) {
        const int h = kvh * group + g;
        for (int t = 0; t < Tn; t++) {
            const float* qt = q + ((int64_t)b * Tn + t) * qs + h * HD;
            const float* dot = dout + ((int64_t)b * Tn + t) * qs + h * HD;
            float* dqt = dq + ((int64_t)b * Tn + t) * qs + h * HD;
            const int j0 = attn_first_key(t, window), j1 = attn_last_key(t, len);
            if (j1 < j0) {
                std::fill(dqt, dqt + HD, 0.0f);
                continue;
            }
            // P = exp(S - lse) (0 in masked lanes) ; dP = dOut V^T ; D = sum_j P dP
            __m256 vD = _mm256_setzero_ps();
            const float l = lse[((int64_t)b * H + h) * Tn + t];
            const __m256 sc = _mm256_set1_ps(scale), vl = _mm256_set1_ps(l);
            for (int jc = j0 / kLanes * kLanes; jc <= j1; jc += kLanes) {
                const __m256 sj = _mm256_mul_ps(dots8<HD>(qt, w.Kt.data(), w.Tp, jc), sc);
                const __m256 pj = _mm256_and_ps(simd::exp8(_mm256_sub_ps(sj, vl)), simd::lane_mask(jc, j0, j1));
                const __m256 dpj = dots8<HD>(dot, w.Vt.data(), w.Tp, jc);
                _mm256_storeu_ps(p + jc, pj);
                _mm256_storeu_ps(dp + jc, dpj);
                vD = _mm256_fmadd_ps(pj, dpj, vD);
            }
            // dS = P (dP - D), over whole chunks (masked lanes have P = 0)
            const __m256 vDs = _mm256_set1_ps(simd::hsum8(vD));
            for (int jc = j0 / kLanes * kLanes; jc <= j1; jc += kLanes)
                _mm256_storeu_ps(dp + jc, _mm256_mul_ps(_mm256_loadu_ps(p + jc), _mm256_sub_ps(_mm256_loadu_ps(dp + jc), vDs)));
            // dQ = scale dS K ; dK += dS^T Q (scaled once at the end) ; dV += P^T dOut
            __m256 qv[kVec], dov[kVec];
            for (int c = 0; c < kVec; c++) {
                qv[c] = _mm256_loadu_ps(qt + c * kLanes);
                dov[c] = _mm256_loadu_ps(dot + c * kLanes);
            }
            const float *Kr = w.Kr.data();
            float *dK = w.dK.data(), *dV = w.dV.data();
            RowAcc<HD> acc;
            for_keys<HD>(j0, j1, [&](int set, int j) {
                const __m256 ds = _mm256_broadcast_ss(dp + j), pj = _mm256_broadcast_ss(p + j);
                const size_t o = (size_t)j * HD;
                for (int c = 0; c < kVec; c++) {
                    const size_t oc = o + c * kLanes;
                    acc.a[set][c] = _mm256_fmadd_ps(ds, _mm256_loadu_ps(Kr + oc), acc.a[set][c]);
                    _mm256_storeu_ps(dK + oc, _mm256_fmadd_ps(ds, qv[c], _mm256_loadu_ps(dK + oc)));
                    _mm256_storeu_ps(dV + oc, _mm256_fmadd_ps(pj, dov[c], _mm256_loadu_ps(dV + oc)));
                }
            });
            acc.store(dqt, scale);
        }
    }
    for (int j = 0; j < Tn; j++) {
        float* dkj = dk + ((int64_t)b * Tn + j) * ks + kvh * HD;
        for (int d = 0; d < HD; d++) dkj[d] = scale * w.dK[(size_t)j * HD + d];
        std::memcpy(dv + ((int64_t)b * Tn + j) * ks + kvh * HD, &w.dV[(size_t)j * HD], sizeof(float) * HD);
    }
}

// Backward with the forward's probabilities kept: a query-major pass writes dS = P (dP - D) rows
// (laid out like the kept P) and dQ; a key-major pass then sums dK[j] = sum_t dS[t][j] q_t and
// dV[j] = sum_t P[t][j] dOut_t for kKeys keys at a time in registers, instead of a
// read-modify-write of dK[j] and dV[j] for every (query, key) pair.
// The query-major pass of backward_item_kept for G query heads of a KV group (sharing the loads
// of V and K): dS = P (dP - D) rows into dS[u] (laid out like the kept P) and dQ.
template <int HD, int G>
void backward_rows_kept(Tiles& w, float* dq, const float* dout, const float* lse, const float* probs, float* const* dS,
                        int b, int h0, int len, int Tn, int H, int window, float scale) {
    const int qs = H * HD;
    for (int t = 0; t < Tn; t++) {
        const float* dot[G];
        const float* e[G];  // exp(s - max); p = e / sum
        float *dqt[G], *ds[G];
        __m256 inv[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) {
            const int h = h0 + u;
            dot[u] = dout + ((int64_t)b * Tn + t) * qs + h * HD;
            dqt[u] = dq + ((int64_t)b * Tn + t) * qs + h * HD;
            e[u] = probs + ((size_t)b * H + h) * probs_per_head(Tn) + probs_row(t);
            ds[u] = dS[u] + probs_row(t);
            inv[u] = _mm256_set1_ps(lse[((int64_t)b * H + h) * Tn + t]);
        }
        const int j0 = attn_first_key(t, window), j1 = attn_last_key(t, len);
        if (j1 < j0) {
            for (int u = 0; u < G; u++) std::fill(dqt[u], dqt[u] + HD, 0.0f);
            continue;
        }
        const int c0 = j0 / kLanes * kLanes;
        __m256 vD[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) vD[u] = _mm256_setzero_ps();
        for (int jc = c0; jc <= j1; jc += kLanes) {
            __m256 dpj[G];
            dots8_g<HD, G>(dpj, dot, w.Vt.data(), w.Tp, jc);
#pragma GCC unroll 4
            for (int u = 0; u < G; u++) {
                _mm256_storeu_ps(ds[u] + jc, dpj[u]);
                vD[u] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(e[u] + jc), inv[u]), dpj[u], vD[u]);
            }
        }
        __m256 vDs[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) vDs[u] = _mm256_set1_ps(simd::hsum8(vD[u]));
        for (int jc = c0; jc <= j1; jc += kLanes)
#pragma GCC unroll 4
            for (int u = 0; u < G; u++)
                _mm256_storeu_ps(ds[u] + jc, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(e[u] + jc), inv[u]),
                                                           _mm256_sub_ps(_mm256_loadu_ps(ds[u] + jc), vDs[u])));
        float sc[G];
        const float* dsc[G];
#pragma GCC unroll 4
        for (int u = 0; u < G; u++) {
            sc[u] = scale;
            dsc[u] = ds[u];
        }
        weighted_rows_g<HD, G>(dqt, dsc, w.Kr.data(), j0, j1, sc);
    }
}

template <int HD>
void backward_item_kept(Tiles& w, float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                        const float* k, const float* v, int b, int kvh, int len, int Tn, int H, int KV, int window,
                        float scale, const float* probs) {
    constexpr int kVec = HD / kLanes, kKeys = 32 / HD;  // 8 accumulators: kKeys x kVec x (dK, dV)
    static_assert(kLanes % kKeys == 0, "a key block lies inside one 8-key chunk");
    gather<HD>(w, k, v, b, kvh, Tn, KV, true);
    std::fill(w.dK.begin(), w.dK.end(), 0.0f);
    std::fill(w.dV.begin(), w.dV.end(), 0.0f);
    const int group = H / KV, qs = H * HD, ks = KV * HD;
    for (int g0 = 0; g0 < group;) {
        // query-major for a pair of heads (or the last one), then key-major for each
        const int G = g0 + 2 <= group ? 2 : 1, h0 = kvh * group + g0;
        float* dSp[2] = {w.dS.data(), w.dS.data() + probs_per_head(Tn)};
        if (G == 2) backward_rows_kept<HD, 2>(w, dq, dout, lse, probs, dSp, b, h0, len, Tn, H, window, scale);
        else backward_rows_kept<HD, 1>(w, dq, dout, lse, probs, dSp, b, h0, len, Tn, H, window, scale);
        for (int gi = 0; gi < G; gi++, g0++) {
            const int h = h0 + gi;
            const float* P = probs + ((size_t)b * H + h) * probs_per_head(Tn);
            const float* dS = dSp[gi];
            // key-major: keys j .. j+kKeys-1 see queries t >= j (and t < j + kKeys - 1 + window with a
            // window); each such row holds the block's chunk, with 0 in the lanes its query cannot see
            for (int j = 0; j < len; j += kKeys) {
                // rows t >= len + window - 1 see no key at all (and keep nothing)
                const int t1 = window > 0 ? std::min({Tn, j + kKeys - 1 + window, len + window - 1}) : Tn;
                __m256 ak[kKeys][kVec], av[kKeys][kVec];
#pragma GCC unroll 4
                for (int u = 0; u < kKeys; u++)
#pragma GCC unroll 4
                    for (int c = 0; c < kVec; c++) ak[u][c] = av[u][c] = _mm256_setzero_ps();
                const float* qt = q + ((int64_t)b * Tn + j) * qs + h * HD;
                const float* dot = dout + ((int64_t)b * Tn + j) * qs + h * HD;
                const float* invt = lse + ((int64_t)b * H + h) * Tn + j;
                size_t row = probs_row(j);
                for (int t = j; t < t1; t++, qt += qs, dot += qs, invt++) {
                    const float* ds = dS + row + j;
                    const float* p = P + row + j;  // unnormalized: dOut is scaled by 1/sum instead
                    row += (size_t)(t / kLanes + 1) * kLanes;  // the next row starts round8(t + 1) later
                    const __m256 inv = _mm256_broadcast_ss(invt);
#pragma GCC unroll 4
                    for (int c = 0; c < kVec; c++) {
                        const __m256 qv = _mm256_loadu_ps(qt + c * kLanes);
                        const __m256 dov = _mm256_mul_ps(_mm256_loadu_ps(dot + c * kLanes), inv);
#pragma GCC unroll 4
                        for (int u = 0; u < kKeys; u++) {
                            ak[u][c] = _mm256_fmadd_ps(_mm256_broadcast_ss(ds + u), qv, ak[u][c]);
                            av[u][c] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + u), dov, av[u][c]);
                        }
                    }
                }
#pragma GCC unroll 4
                for (int u = 0; u < kKeys; u++)
#pragma GCC unroll 4
                    for (int c = 0; c < kVec; c++) {
                        float* dkr = &w.dK[(size_t)(j + u) * HD + c * kLanes];
                        float* dvr = &w.dV[(size_t)(j + u) * HD + c * kLanes];
                        _mm256_storeu_ps(dkr, _mm256_add_ps(_mm256_loadu_ps(dkr), ak[u][c]));
                        _mm256_storeu_ps(dvr, _mm256_add_ps(_mm256_loadu_ps(dvr), av[u][c]));
                    }
            }
        }
    }
    for (int j = 0; j < Tn; j++) {
        float* dkj = dk + ((int64_t)b * Tn + j) * ks + kvh * HD;
        for (int d = 0; d < HD; d++) dkj[d] = scale * w.dK[(size_t)j * HD + d];
        std::memcpy(dv + ((int64_t)b * Tn + j) * ks + kvh * HD, &w.dV[(size_t)j * HD], sizeof(float) * HD);
    }
}

void size_tiles(Tiles& w, int Tn, int HD) {
    w.Tp = round_up(Tn, kLanes);
    const size_t n = (size_t)w.Tp * HD;
    for (auto* t : {&w.Kt, &w.Kr, &w.Vt, &w.Vr, &w.dK, &w.dV}) t->assign(n, 0.0f);
    w.s.assign((size_t)2 * w.Tp, 0.0f);  // one row per head of a pair
    for (auto* t : {&w.p, &w.dp}) t->assign(w.Tp, 0.0f);
}

template <int HD>
void forward_all(float* out, float* lse, const float* q, const float* k, const float* v, const int* lens, int B,
                 int Tn, int H, int KV, int window, float* probs) {
    const float scale = (float)(1.0 / std::sqrt((double)HD));
#pragma omp parallel if ((int64_t)B * H * Tn * Tn * HD >= kParallelMinAttention)
    {
        Tiles w;
        size_tiles(w, Tn, HD);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int kvh = 0; kvh < KV; kvh++)
                forward_item<HD>(w, out, lse, q, k, v, b, kvh, lens[b], Tn, H, KV, window, scale, probs);
    }
}

template <int HD>
void backward_all(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q, const float* k,
                  const float* v, const int* lens, int B, int Tn, int H, int KV, int window, const float* probs) {
    const float scale = (float)(1.0 / std::sqrt((double)HD));
#pragma omp parallel if ((int64_t)B * H * Tn * Tn * HD >= kParallelMinAttention)
    {
        Tiles w;
        size_tiles(w, Tn, HD);
        if (probs) w.dS.assign(2 * probs_per_head(Tn), 0.0f);  // a pair of heads
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int kvh = 0; kvh < KV; kvh++)
                if (probs)
                    backward_item_kept<HD>(w, dq, dk, dv, dout, lse, q, k, v, b, kvh, lens[b], Tn, H, KV, window, scale, probs);
                else
                    backward_item<HD>(w, dq, dk, dv, dout, lse, q, k, v, b, kvh, lens[b], Tn, H, KV, window, scale);
    }
}

}  // namespace

// Head sizes with a compiled kernel; others take the sgemm reference path.
// Measured on Zen 3 (test_ops perf, docs/BENCHMARKS.md): from head_dim 16 up, sgemm's blocked
// products are as fast or faster, so only the small heads get their own kernel.
#define LF_ATTN_HEADS(X) X(8) X(16)

size_t attention_fast_probs_floats(int B, int Tn, int H, int hd) {
    switch (hd) {
#define LF_CASE(n) case n:
        LF_ATTN_HEADS(LF_CASE)
#undef LF_CASE
        return (size_t)B * H * probs_per_head(Tn);
        default: return 0;
    }
}

bool attention_forward_fast(float* out, float* lse, const float* q, const float* k, const float* v, const int* lens,
                            int B, int Tn, int H, int KV, int hd, int window, float* probs) {
    switch (hd) {
#define LF_CASE(n) \
    case n: forward_all<n>(out, lse, q, k, v, lens, B, Tn, H, KV, window, probs); return true;
        LF_ATTN_HEADS(LF_CASE)
#undef LF_CASE
        default: return false;
    }
}

bool attention_backward_fast(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                             const float* k, const float* v, const int* lens, int B, int Tn, int H, int KV, int hd,
                             int window, const float* probs) {
    switch (hd) {
#define LF_CASE(n) \
    case n: backward_all<n>(dq, dk, dv, dout, lse, q, k, v, lens, B, Tn, H, KV, window, probs); return true;
        LF_ATTN_HEADS(LF_CASE)
#undef LF_CASE
        default: return false;
    }
}

}  // namespace ops
}  // namespace lf
