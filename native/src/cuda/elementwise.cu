// Elementwise and per-row ops: conversions, reductions, embedding, RMSNorm, RoPE, SwiGLU,
// dropout, AdamW, the KV-cache write. Each mirrors the CPU op of the same name in ../ops.h.
#include "../error.h"
#include "../rng.h"
#include "ops.cuh"

namespace lf {
namespace cuda {

constexpr int kThreads = 256;
static int grid_for(int64_t n) { return (int)std::min<int64_t>(blocks_for(n, kThreads), kGridCap); }
#define LF_GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result
__device__ float block_sum(float v) {
    __shared__ float part[32];
    __shared__ float total;
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < (int)(blockDim.x >> 5) ? part[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    const float r = total;
    __syncthreads();  // part/total may be reused by the next call
    return r;
}

// ------------------------------------------------------------------------------ conversions

// through fp32, which holds every F16 and BF16 value exactly: one rounding, to D
template <class D, class S>
__global__ void convert_kernel(D* dst, const S* src, int64_t n) {
    LF_GRID_STRIDE(i, n) dst[i] = from_f32<D>(to_f32(src[i]));
}
template <class D>
static void convert_to(Context& c, D* dst, const void* src, DType st, int64_t n) {
    if (st == DType::F16) convert_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(dst, (const __half*)src, n);
    else if (st == DType::BF16) convert_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(dst, (const __nv_bfloat16*)src, n);
    else convert_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(dst, (const float*)src, n);
}
void convert(Context& c, void* dst, DType dt, const void* src, DType st, int64_t n) {
    if (n == 0) return;
    if (dt == st) {
        LF_CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * dtype_size(dt), cudaMemcpyDeviceToDevice, c.stream));
        return;
    }
    if (dt == DType::F16) convert_to(c, (__half*)dst, src, st, n);
    else if (dt == DType::BF16) convert_to(c, (__nv_bfloat16*)dst, src, st, n);
    else convert_to(c, (float*)dst, src, st, n);
    LF_CUDA_LAUNCHED();
}
void convert_from_f32(Context& c, void* dst, DType t, const float* src, int64_t n) { convert(c, dst, t, src, DType::F32, n); }

void fill_zero(Context& c, float* p, int64_t n) {
    if (n > 0) LF_CUDA_CHECK(cudaMemsetAsync(p, 0, n * 4, c.stream));
}

__global__ void add_kernel(float* y, const float* x, int64_t n) { LF_GRID_STRIDE(i, n) y[i] += x[i]; }
__global__ void scale_kernel(float* y, float a, int64_t n) { LF_GRID_STRIDE(i, n) y[i] *= a; }
void add_inplace(Context& c, float* y, const float* x, int64_t n) {
    if (n == 0) return;
    add_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(y, x, n);
    LF_CUDA_LAUNCHED();
}
void scale_inplace(Context& c, float* y, float a, int64_t n) {
    if (n == 0) return;
    scale_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(y, a, n);
    LF_CUDA_LAUNCHED();
}

// out[0] += sum of squares, out[1] += count of inf/NaN (each block adds its part: one atomic per
// block in double, so the order of the additions, not the value, may vary between runs)
__global__ void sumsq_kernel(double* out, const float* x, int64_t n) {
    float s = 0, bad = 0;
    LF_GRID_STRIDE(i, n) {
        const float v = x[i];
        if (isfinite(v)) s += v * v;
        else bad += 1;
    }
    s = block_sum(s);
    bad = block_sum(bad);
    if (threadIdx.x == 0) {
        atomicAdd(out, (double)s);
        atomicAdd(out + 1, (double)bad);
    }
}
void sum_squares_nonfinite(Context& c, double* d_out, const float* x, int64_t n) {
    LF_CUDA_CHECK(cudaMemsetAsync(d_out, 0, 2 * sizeof(double), c.stream));
    if (n == 0) return;
    sumsq_kernel<<<std::min(grid_for(n), 1024), kThreads, 0, c.stream>>>(d_out, x, n);
    LF_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------------------ embedding

template <class W>
__global__ void embedding_kernel(float* out, const int* tokens, const W* table, int N, int C) {
    LF_GRID_STRIDE(i, (int64_t)N * C) {
        const int64_t n = i / C, col = i % C;
        out[i] = to_f32(table[(int64_t)tokens[n] * C + col]);
    }
}
void embedding(Context& c, float* out, const int* d_tokens, const void* table, DType wt, int N, int C) {
    const int64_t n = (int64_t)N * C;
    if (n == 0) return;
    if (wt == DType::F16) embedding_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(out, d_tokens, (const __half*)table, N, C);
    else if (wt == DType::BF16) embedding_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(out, d_tokens, (const __nv_bfloat16*)table, N, C);
    else embedding_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(out, d_tokens, (const float*)table, N, C);
    LF_CUDA_LAUNCHED();
}

// the LM head's input gradient back into the rows its input was gathered from (embedding)
__global__ void scatter_rows_kernel(float* out, const float* x, const int* rows, int n, int C) {
    LF_GRID_STRIDE(i, (int64_t)n * C) {
        const int64_t r = i / C, col = i % C;
        out[(int64_t)rows[r] * C + col] = x[i];
    }
}
void scatter_rows(Context& c, float* out, const float* x, const int* d_rows, int n, int C) {
    const int64_t total = (int64_t)n * C;
    if (total == 0) return;
    scatter_rows_kernel<<<grid_for(total), kThreads, 0, c.stream>>>(out, x, d_rows, n, C);
    LF_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------------------ RMSNorm
// one block per row. x, out, dx, dout: [N, C]; w: [C]; rstd: [N]

template <class W>
__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* x, const W* w, int C, float eps) {
    const float* xr = x + (int64_t)blockIdx.x * C;
    float ss = 0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss);
    const float r = rsqrtf(ss / C + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    float* o = out + (int64_t)blockIdx.x * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = to_f32(w[i]) * (xr[i] * r);
}
template <class W>
__global__ void rmsnorm_backward_kernel(float* dx, const float* dout, const float* x, const W* w, const float* rstd,
                                        int C) {
    const int64_t row = (int64_t)blockIdx.x * C;
    const float* xr = x + row;
    const float* dr = dout + row;
    float dot = 0;  // sum_i dout_i w_i x_i
    for (int i = threadIdx.x; i < C; i += blockDim.x) dot += dr[i] * to_f32(w[i]) * xr[i];
    dot = block_sum(dot);
    const float r = rstd[blockIdx.x];
    const float k = dot * r * r * r / C;
    float* o = dx + row;
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] += dr[i] * to_f32(w[i]) * r - xr[i] * k;
}
void rmsnorm_forward(Context& c, float* out, float* rstd, const float* x, const void* w, DType wt, int N, int C,
                     double eps) {
    if (N == 0) return;
    if (wt == DType::F16) rmsnorm_forward_kernel<<<N, kThreads, 0, c.stream>>>(out, rstd, x, (const __half*)w, C, (float)eps);
    else if (wt == DType::BF16) rmsnorm_forward_kernel<<<N, kThreads, 0, c.stream>>>(out, rstd, x, (const __nv_bfloat16*)w, C, (float)eps);
    else rmsnorm_forward_kernel<<<N, kThreads, 0, c.stream>>>(out, rstd, x, (const float*)w, C, (float)eps);
    LF_CUDA_LAUNCHED();
}
void rmsnorm_backward(Context& c, float* dx, const float* dout, const float* x, const void* w, DType wt,
                      const float* rstd, int N, int C) {
    if (N == 0) return;
    if (wt == DType::F16) rmsnorm_backward_kernel<<<N, kThreads, 0, c.stream>>>(dx, dout, x, (const __half*)w, rstd, C);
    else if (wt == DType::BF16) rmsnorm_backward_kernel<<<N, kThreads, 0, c.stream>>>(dx, dout, x, (const __nv_bfloat16*)w, rstd, C);
    else rmsnorm_backward_kernel<<<N, kThreads, 0, c.stream>>>(dx, dout, x, (const float*)w, rstd, C);
    LF_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------------------ RoPE
// HF rotate_half, in place; one thread per (row, head, i < hd/2). x: [B, T, nh, hd]; cos, sin: [*, hd/2]

__global__ void rope_kernel(float* x, const float* cosT, const float* sinT, const int* pos, int T, int nh, int hd,
                            int64_t n, float sign) {
    const int h = hd / 2;
    LF_GRID_STRIDE(idx, n) {
        const int i = (int)(idx % h);
        const int64_t rowhead = idx / h;           // (b*T + t)*nh + head
        const int64_t bt = rowhead / nh;
        const int t = pos ? pos[bt / T] + (int)(bt % T) : (int)(bt % T);
        const float cs = cosT[(int64_t)t * h + i], sn = sign * sinT[(int64_t)t * h + i];
        float* v = x + rowhead * hd;
        const float a = v[i], b = v[i + h];
        v[i] = a * cs - b * sn;
        v[i + h] = b * cs + a * sn;
    }
}
void rope(Context& c, float* x, const float* cosT, const float* sinT, const int* d_pos, int B, int T, int nh, int hd,
          bool backward) {
    const int64_t n = (int64_t)B * T * nh * (hd / 2);
    if (n == 0) return;
    // the backward pass rotates by -angle: sin → -sin
    rope_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(x, cosT, sinT, d_pos, T, nh, hd, n, backward ? -1.0f : 1.0f);
    LF_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------------------ SwiGLU

__global__ void swiglu_forward_kernel(float* h, const float* g, const float* u, int64_t n) {
    LF_GRID_STRIDE(i, n) {
        const float sg = 1.0f / (1.0f + expf(-g[i]));
        h[i] = g[i] * sg * u[i];
    }
}
__global__ void swiglu_backward_kernel(float* dg, float* du, const float* dh, const float* g, const float* u,
                                       int64_t n) {
    LF_GRID_STRIDE(i, n) {
        const float gi = g[i], sg = 1.0f / (1.0f + expf(-gi)), d = dh[i];
        du[i] = d * gi * sg;
        dg[i] = d * u[i] * sg * (1.0f + gi * (1.0f - sg));
    }
}
void swiglu_forward(Context& c, float* h, const float* g, const float* u, int64_t n) {
    if (n == 0) return;
    swiglu_forward_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(h, g, u, n);
    LF_CUDA_LAUNCHED();
}
void swiglu_backward(Context& c, float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) {
    if (n == 0) return;
    swiglu_backward_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(dg, du, dh, g, u, n);
    LF_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------------------ dropout
// the mask of ../rng.h (dropout_bits), so the CUDA and CPU backends drop the same elements

__device__ __forceinline__ uint32_t mix32_d(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}
__global__ void dropout_kernel(float* out, const float* x, int64_t n, uint32_t thr, float scale, uint32_t key_lo,
                               uint32_t key_hi, bool accumulate) {
    LF_GRID_STRIDE(i, n) {
        const uint32_t bits = mix32_d(mix32_d((uint32_t)i ^ key_lo) + key_hi);
        const float k = bits >= thr ? scale : 0.0f;
        if (accumulate) out[i] += x[i] * k;
        else out[i] = x[i] * k;
    }
}
void dropout(Context& c, float* out, const float* x, int64_t n, double p, uint64_t key, bool accumulate) {
    if (n == 0) return;
    if (n >= ((int64_t)1 << 32)) throw Error(EXIT_INTERNAL, "dropout: tensor of 2^32 elements or more");
    dropout_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(out, x, n, dropout_threshold(p), (float)(1.0 / (1.0 - p)),
                                                           (uint32_t)key, (uint32_t)(key >> 32), accumulate);
    LF_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------------------ AdamW
// torch.optim.AdamW: bias corrections computed on the host in double (see Backend::adamw)

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, float step_size, float bc2_sqrt,
                             float decay, float w1, float b2, float w2, float eps) {
    LF_GRID_STRIDE(i, n) {
        const float gi = g[i];
        float pi = p[i] * decay;
        const float mi = m[i] + w1 * (gi - m[i]);
        const float vi = v[i] * b2 + w2 * gi * gi;
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        pi -= step_size * (mi / denom);
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}
void adamw(Context& c, float* p, const float* g, float* m, float* v, int64_t n, float step_size, float bc2_sqrt,
           float decay, float beta1, float beta2, float eps) {
    if (n == 0) return;
    adamw_kernel<<<grid_for(n), kThreads, 0, c.stream>>>(p, g, m, v, n, step_size, bc2_sqrt, decay, 1.0f - beta1, beta2,
                                                         1.0f - beta2, eps);
    LF_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------------------ KV cache

__global__ void kv_cache_write_kernel(float* cache, const float* x, const int* pos, int n, int Tcap, int width,
                                      int64_t total) {
    LF_GRID_STRIDE(idx, total) {
        const int64_t bi = idx / width;
        const int col = (int)(idx % width);
        const int b = (int)(bi / n), t = pos[b] + (int)(bi % n);
        cache[((int64_t)b * Tcap + t) * width + col] = x[idx];
    }
}
void kv_cache_write(Context& c, float* cache, const float* x, const int* d_pos, int B, int n, int Tcap, int width) {
    const int64_t total = (int64_t)B * n * width;
    if (total == 0) return;
    kv_cache_write_kernel<<<grid_for(total), kThreads, 0, c.stream>>>(cache, x, d_pos, n, Tcap, width, total);
    LF_CUDA_LAUNCHED();
}

}  // namespace cuda
}  // namespace lf
