// Causal GQA attention with right padding (../ops.h attention_forward/backward; the decode form
// is ../ops_decode.h attention_cached). Query t of row b sees keys j in
// [attn_first_key(t, window), min(t, len[b] - 1)]; query head h reads KV head h / (H / KV).
//
// Two versions:
//  - simple: one thread block per (query, head, row), that query's scores in shared memory, a
//    block-wide max and sum. Easy to check; the reference for the tiled kernels on the device,
//    the decode path (a few queries against a long cache) and the fallback for hd > 256.
//  - tiled, memory-efficient (the FlashAttention recurrence in fp32 CUDA cores, so it runs on
//    sm_70, which FlashAttention-2 does not): a warp per query, a block of kWarps consecutive
//    queries of one head sharing tiles of K and V staged in shared memory, an online softmax
//    (running max, running sum, rescaled accumulator) in registers; nothing of size [T, T] is
//    stored. The backward pass recomputes the probabilities from the saved lse: one kernel per
//    query for dq (and D_i = sum_j P_ij dP_ij, which it also stores), one per key for dk and dv
//    (looping over the group's query heads in a fixed order: no atomics, same bits every run).
#include <cfloat>

#include "../error.h"
#include "ops.cuh"

namespace lf {
namespace cuda {

constexpr int kWarps = 8;         // queries (or keys) per block in the tiled kernels
constexpr int kMaxPerLane = 8;    // hd <= 32 * 8 in the tiled kernels
__device__ __forceinline__ int first_key(int t, int window) { return window > 0 ? max(0, t - window + 1) : 0; }
static int tile_rows(int hd) { return hd <= 128 ? 32 : 16; }  // 2 tiles of [rows, hd] fp32 <= 32 KB

// ============================================================================ simple version
// q, out: [B, n, H, hd]; kc, vc: [B, Tk, KV, hd]; query (b, i) sits at position
// p = (pos ? pos[b] : 0) + i and sees keys first_key(p) .. min(p, len - 1) (len = Tk without lens)
__global__ void attention_simple_kernel(float* out, float* lse, const float* q, const float* kc, const float* vc,
                                        const int* pos, const int* lens, int n, int H, int KV, int hd, int Tk,
                                        int window, float scale) {
    extern __shared__ float s[];  // [Tk] scores
    __shared__ float red[32];
    const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kvh = h / (H / KV);
    const int p = (pos ? pos[b] : 0) + i;
    const int len = lens ? lens[b] : Tk;
    const int j0 = first_key(p, window), j1 = min(p, len - 1);
    const float* qv = q + (((int64_t)b * n + i) * H + h) * hd;
    const float* kb = kc + (int64_t)b * Tk * KV * hd + kvh * hd;
    const float* vb = vc + (int64_t)b * Tk * KV * hd + kvh * hd;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    // scores: a warp per key
    for (int j = j0 + warp; j <= j1; j += nw) {
        float d = 0;
        for (int e = lane; e < hd; e += 32) d += qv[e] * kb[(int64_t)j * KV * hd + e];
        d = warp_sum(d);
        if (lane == 0) s[j] = d * scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = j0 + threadIdx.x; j <= j1; j += blockDim.x) mx = fmaxf(mx, s[j]);
    mx = warp_max(mx);
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < nw; w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0;
    for (int j = j0 + threadIdx.x; j <= j1; j += blockDim.x) {
        const float e = expf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    sum = warp_sum(sum);
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0;
    for (int w = 0; w < nw; w++) sum += red[w];
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
    float* o = out + (((int64_t)b * n + i) * H + h) * hd;
    for (int e = threadIdx.x; e < hd; e += blockDim.x) {
        float acc = 0;
        for (int j = j0; j <= j1; j++) acc += s[j] * vb[(int64_t)j * KV * hd + e];
        o[e] = acc * inv;
    }
    if (lse && threadIdx.x == 0) lse[((int64_t)b * H + h) * n + i] = mx + logf(sum);
}

static void attention_simple(Context& c, float* out, float* lse, const float* q, const float* kc, const float* vc,
                             const int* d_pos, const int* d_lens, int B, int n, int H, int KV, int hd, int Tk,
                             int window) {
    if ((int64_t)B * n * H == 0) return;
    const size_t shm = (size_t)Tk * sizeof(float);
    if (shm > 48 * 1024)
        LF_CUDA_CHECK(cudaFuncSetAttribute(attention_simple_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm));
    dim3 grid(n, H, B);
    attention_simple_kernel<<<grid, 128, shm, c.stream>>>(out, lse, q, kc, vc, d_pos, d_lens, n, H, KV, hd, Tk, window,
                                                          1.0f / sqrtf((float)hd));
    LF_CUDA_LAUNCHED();
}

void attention_forward_simple(Context& c, float* out, float* lse, const float* q, const float* k, const float* v,
                              const int* d_lens, int B, int T, int H, int KV, int hd, int window) {
    attention_simple(c, out, lse, q, k, v, nullptr, d_lens, B, T, H, KV, hd, T, window);
}

void attention_cached(Context& c, float* out, const float* q, const float* kc, const float* vc, const int* d_pos,
                      int B, int n, int H, int KV, int hd, int Tcap, int window) {
    attention_simple(c, out, nullptr, q, kc, vc, d_pos, nullptr, B, n, H, KV, hd, Tcap, window);
}

// ============================================================================ tiled version
// Per lane: dims lane, lane + 32, ... (< hd) of its warp's row.

// rows r0 .. r0+rows-1 of a [T, stride] tensor (at column col, hd wide) into tile [rows, hd];
// rows past T are not read
__device__ void load_tile(float* tile, const float* src, int64_t stride, int r0, int rows, int T, int hd) {
    for (int idx = threadIdx.x; idx < rows * hd; idx += blockDim.x) {
        const int r = idx / hd, e = idx % hd;
        tile[idx] = r0 + r < T ? src[(int64_t)(r0 + r) * stride + e] : 0.0f;
    }
}

__global__ void attention_forward_tiled(float* out, float* lse, const float* q, const float* k, const float* v,
                                        const int* lens, int T, int H, int KV, int hd, int window, float scale,
                                        int KT) {
    extern __shared__ float shm[];
    float* Ks = shm;            // [KT, hd]
    float* Vs = shm + KT * hd;  // [KT, hd]
    const int h = blockIdx.y, b = blockIdx.z, kvh = h / (H / KV), len = lens[b];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tq0 = blockIdx.x * kWarps, t = tq0 + warp;
    const int ks = KV * hd, qs = H * hd;
    const bool active = t < T;
    const int j0 = active ? first_key(t, window) : 0, j1 = active ? min(t, len - 1) : -1;
    // keys any query of this block sees
    const int bj0 = first_key(tq0, window), bj1 = min(min(tq0 + kWarps - 1, T - 1), len - 1);
    float qr[kMaxPerLane], acc[kMaxPerLane];
    const float* qv = q + ((int64_t)b * T + (active ? t : 0)) * qs + h * hd;
#pragma unroll
    for (int d = 0; d < kMaxPerLane; d++) {
        const int e = lane + 32 * d;
        qr[d] = active && e < hd ? qv[e] * scale : 0.0f;
        acc[d] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const float* kb = k + (int64_t)b * T * ks + kvh * hd;
    const float* vb = v + (int64_t)b * T * ks + kvh * hd;
    for (int kt0 = bj0; kt0 <= bj1; kt0 += KT) {
        const int rows = min(KT, bj1 - kt0 + 1);
        __syncthreads();
        load_tile(Ks, kb, ks, kt0, rows, T, hd);
        load_tile(Vs, vb, ks, kt0, rows, T, hd);
        __syncthreads();
        const int ja = max(j0, kt0), jb = min(j1, kt0 + rows - 1);
        for (int j = ja; j <= jb; j++) {
            const float* kr = Ks + (j - kt0) * hd;
            float sdot = 0;
#pragma unroll
            for (int d = 0; d < kMaxPerLane; d++) {
                const int e = lane + 32 * d;
                if (e < hd) sdot += qr[d] * kr[e];
            }
            sdot = warp_sum(sdot);
            const float mn = fmaxf(m, sdot), corr = expf(m - mn), pj = expf(sdot - mn);
            l = l * corr + pj;
            const float* vr = Vs + (j - kt0) * hd;
#pragma unroll
            for (int d = 0; d < kMaxPerLane; d++) {
                const int e = lane + 32 * d;
                if (e < hd) acc[d] = acc[d] * corr + pj * vr[e];
            }
            m = mn;
        }
    }
    if (!active) return;
    const float inv = l > 0 ? 1.0f / l : 0.0f;
    float* o = out + ((int64_t)b * T + t) * qs + h * hd;
#pragma unroll
    for (int d = 0; d < kMaxPerLane; d++) {
        const int e = lane + 32 * d;
        if (e < hd) o[e] = acc[d] * inv;
    }
    if (lane == 0) lse[((int64_t)b * H + h) * T + t] = m + logf(l);
}

// dq_t = scale * sum_j P_tj (dP_tj - D_t) k_j with dP_tj = dout_t . v_j and D_t = sum_j P_tj dP_tj:
// one pass accumulates sum_j P dP k, sum_j P k and D, then dq = scale (A - D Bk).
__global__ void attention_backward_dq_tiled(float* dq, float* Dout, const float* dout, const float* lse,
                                            const float* q, const float* k, const float* v, const int* lens, int T,
                                            int H, int KV, int hd, int window, float scale, int KT) {
    extern __shared__ float shm[];
    float* Ks = shm;
    float* Vs = shm + KT * hd;
    const int h = blockIdx.y, b = blockIdx.z, kvh = h / (H / KV), len = lens[b];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tq0 = blockIdx.x * kWarps, t = tq0 + warp;
    const int ks = KV * hd, qs = H * hd;
    const bool active = t < T;
    const int j0 = active ? first_key(t, window) : 0, j1 = active ? min(t, len - 1) : -1;
    const int bj0 = first_key(tq0, window), bj1 = min(min(tq0 + kWarps - 1, T - 1), len - 1);
    float qr[kMaxPerLane], dor[kMaxPerLane], A[kMaxPerLane], Bk[kMaxPerLane];
    const int64_t qoff = ((int64_t)b * T + (active ? t : 0)) * qs + h * hd;
#pragma unroll
    for (int d = 0; d < kMaxPerLane; d++) {
        const int e = lane + 32 * d;
        qr[d] = active && e < hd ? q[qoff + e] * scale : 0.0f;
        dor[d] = active && e < hd ? dout[qoff + e] : 0.0f;
        A[d] = Bk[d] = 0.0f;
    }
    const float L = active ? lse[((int64_t)b * H + h) * T + t] : 0.0f;
    float D = 0.0f;
    const float* kb = k + (int64_t)b * T * ks + kvh * hd;
    const float* vb = v + (int64_t)b * T * ks + kvh * hd;
    for (int kt0 = bj0; kt0 <= bj1; kt0 += KT) {
        const int rows = min(KT, bj1 - kt0 + 1);
        __syncthreads();
        load_tile(Ks, kb, ks, kt0, rows, T, hd);
        load_tile(Vs, vb, ks, kt0, rows, T, hd);
        __syncthreads();
        const int ja = max(j0, kt0), jb = min(j1, kt0 + rows - 1);
        for (int j = ja; j <= jb; j++) {
            const float* kr = Ks + (j - kt0) * hd;
            const float* vr = Vs + (j - kt0) * hd;
            float sdot = 0, dp = 0;
#pragma unroll
            for (int d = 0; d < kMaxPerLane; d++) {
                const int e = lane + 32 * d;
                if (e < hd) {
                    sdot += qr[d] * kr[e];
                    dp += dor[d] * vr[e];
                }
            }
            sdot = warp_sum(sdot);
            dp = warp_sum(dp);
            const float p = expf(sdot - L);
            D += p * dp;
#pragma unroll
            for (int d = 0; d < kMaxPerLane; d++) {
                const int e = lane + 32 * d;
                if (e < hd) {
                    A[d] += p * dp * kr[e];
                    Bk[d] += p * kr[e];
                }
            }
        }
    }
    if (!active) return;
    float* o = dq + ((int64_t)b * T + t) * qs + h * hd;
#pragma unroll
    for (int d = 0; d < kMaxPerLane; d++) {
        const int e = lane + 32 * d;
        if (e < hd) o[e] = scale * (A[d] - D * Bk[d]);
    }
    if (lane == 0) Dout[((int64_t)b * H + h) * T + t] = D;
}

// dv_j = sum_{h in group, i sees j} P_ij dout_i ; dk_j = scale sum P_ij (dP_ij - D_i) q_i
__global__ void attention_backward_dkv_tiled(float* dk, float* dv, const float* Din, const float* dout,
                                             const float* lse, const float* q, const float* k, const float* v,
                                             const int* lens, int T, int H, int KV, int hd, int window, float scale,
                                             int KT) {
    extern __shared__ float shm[];
    float* Qs = shm;              // [KT, hd]
    float* Os = shm + KT * hd;    // [KT, hd] dout
    float* Ls = shm + 2 * KT * hd;  // [KT] lse
    float* Ds = Ls + KT;            // [KT] D
    const int kvh = blockIdx.y, b = blockIdx.z, len = lens[b], group = H / KV;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int jk0 = blockIdx.x * kWarps, j = jk0 + warp;
    const int ks = KV * hd, qs = H * hd;
    const bool active = j < T && j < len;  // keys at or past len are seen by no query
    float kr[kMaxPerLane], vr[kMaxPerLane], dK[kMaxPerLane], dV[kMaxPerLane];
    const int64_t koff = ((int64_t)b * T + min(j, T - 1)) * ks + kvh * hd;
#pragma unroll
    for (int d = 0; d < kMaxPerLane; d++) {
        const int e = lane + 32 * d;
        kr[d] = active && e < hd ? k[koff + e] : 0.0f;
        vr[d] = active && e < hd ? v[koff + e] : 0.0f;
        dK[d] = dV[d] = 0.0f;
    }
    // queries that see key j: i >= j, and i < j + window with a window
    const int ia = active ? j : T, ib = active ? (window > 0 ? min(T - 1, j + window - 1) : T - 1) : -1;
    const int jlast = min(min(jk0 + kWarps - 1, T - 1), len - 1);
    const int bi0 = jk0, bi1 = jlast < jk0 ? -1 : (window > 0 ? min(T - 1, jlast + window - 1) : T - 1);
    for (int g = 0; g < group; g++) {
        const int h = kvh * group + g;
        const float* qb = q + (int64_t)b * T * qs + h * hd;
        const float* ob = dout + (int64_t)b * T * qs + h * hd;
        for (int it0 = bi0; it0 <= bi1; it0 += KT) {
            const int rows = min(KT, bi1 - it0 + 1);
            __syncthreads();
            load_tile(Qs, qb, qs, it0, rows, T, hd);
            load_tile(Os, ob, qs, it0, rows, T, hd);
            for (int r = threadIdx.x; r < rows; r += blockDim.x) {
                Ls[r] = lse[((int64_t)b * H + h) * T + it0 + r];
                Ds[r] = Din[((int64_t)b * H + h) * T + it0 + r];
            }
            __syncthreads();
            const int i0 = max(ia, it0), i1 = min(ib, it0 + rows - 1);
            for (int i = i0; i <= i1; i++) {
                const float* qi = Qs + (i - it0) * hd;
                const float* oi = Os + (i - it0) * hd;
                float sdot = 0, dp = 0;
#pragma unroll
                for (int d = 0; d < kMaxPerLane; d++) {
                    const int e = lane + 32 * d;
                    if (e < hd) {
                        sdot += qi[e] * kr[d];
                        dp += oi[e] * vr[d];
                    }
                }
                sdot = warp_sum(sdot) * scale;
                dp = warp_sum(dp);
                const float p = expf(sdot - Ls[i - it0]);
                const float ds = p * (dp - Ds[i - it0]) * scale;
#pragma unroll
                for (int d = 0; d < kMaxPerLane; d++) {
                    const int e = lane + 32 * d;
                    if (e < hd) {
                        dV[d] += p * oi[e];
                        dK[d] += ds * qi[e];
                    }
                }
            }
        }
    }
    if (j >= T) return;
    const int64_t off = ((int64_t)b * T + j) * ks + kvh * hd;
#pragma unroll
    for (int d = 0; d < kMaxPerLane; d++) {
        const int e = lane + 32 * d;
        if (e < hd) {
            dk[off + e] = dK[d];
            dv[off + e] = dV[d];
        }
    }
}

static bool tiled_fits(int hd) { return hd <= 32 * kMaxPerLane; }

void attention_forward(Context& c, float* out, float* lse, const float* q, const float* k, const float* v,
                       const int* d_lens, int B, int T, int H, int KV, int hd, int window) {
    if ((int64_t)B * T * H == 0) return;
    if (!tiled_fits(hd)) return attention_forward_simple(c, out, lse, q, k, v, d_lens, B, T, H, KV, hd, window);
    const int KT = tile_rows(hd);
    dim3 grid(blocks_for(T, kWarps), H, B);
    attention_forward_tiled<<<grid, kWarps * 32, 2 * KT * hd * sizeof(float), c.stream>>>(
        out, lse, q, k, v, d_lens, T, H, KV, hd, window, 1.0f / sqrtf((float)hd), KT);
    LF_CUDA_LAUNCHED();
}

void attention_backward(Context& c, float* dq, float* dk, float* dv, const float* dout, const float* lse,
                        const float* q, const float* k, const float* v, const int* d_lens, int B, int T, int H, int KV,
                        int hd, int window) {
    if ((int64_t)B * T * H == 0) return;
    if (!tiled_fits(hd))
        throw Error(EXIT_INTERNAL, "cuda attention_backward: head size > 256 is not supported (hd " + std::to_string(hd) + ")");
    const int KT = tile_rows(hd);
    const float scale = 1.0f / sqrtf((float)hd);
    float* D = (float*)c.scratch_at_least((size_t)B * H * T * sizeof(float));
    dim3 gq(blocks_for(T, kWarps), H, B);
    attention_backward_dq_tiled<<<gq, kWarps * 32, 2 * KT * hd * sizeof(float), c.stream>>>(
        dq, D, dout, lse, q, k, v, d_lens, T, H, KV, hd, window, scale, KT);
    LF_CUDA_LAUNCHED();
    dim3 gk(blocks_for(T, kWarps), KV, B);
    attention_backward_dkv_tiled<<<gk, kWarps * 32, (2 * KT * hd + 2 * KT) * sizeof(float), c.stream>>>(
        dk, dv, D, dout, lse, q, k, v, d_lens, T, H, KV, hd, window, scale, KT);
    LF_CUDA_LAUNCHED();
}

}  // namespace cuda
}  // namespace lf
