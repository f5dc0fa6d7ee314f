// The CUDA ops, one launcher per op (shapes and semantics as in ../ops.h and ../ops_decode.h,
// which the op tests compare these against). Pointers are device memory; `W` arguments typed
// `const void*` are frozen tensors of type `wt` (F32, F16 or BF16). All run on ctx.stream.
#pragma once
#include "common.cuh"

namespace lf {
namespace cuda {

// gemm.cu. Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, all fp32 (cuBLAS, fp32
// compute: the fp32 path matches the CPU reference to rounding)
void gemm_f32(Context& c, bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
              int ldb, float beta, float* C, int ldc);
// nn.Linear with a frozen weight: out[N,O] = alpha x[N,I] W[O,I]^T + beta out, and
// dx[N,I] = alpha dout[N,O] W[O,I] + beta dx. W in fp16/bf16: the fp32 operand is rounded to W's
// type and the product runs on tensor cores with fp32 accumulation and fp32 output.
void linear_forward(Context& c, float* out, const float* x, const void* W, DType wt, int N, int I, int O, float alpha,
                    float beta);
void linear_backward_input(Context& c, float* dx, const float* dout, const void* W, DType wt, int N, int I, int O,
                           float alpha, float beta);

// decoding: out[N,O] = x W^T with row n depending only on x's row n (warp per output, fixed order)
void matmul_rows(Context& c, float* out, const float* x, const void* W, DType wt, int N, int I, int O);

// elementwise.cu
// dst[0..n) = src's elements (type st) rounded to type dt; F32, F16 and BF16 each way
void convert(Context& c, void* dst, DType dt, const void* src, DType st, int64_t n);
void convert_from_f32(Context& c, void* dst, DType t, const float* src, int64_t n);
void fill_zero(Context& c, float* p, int64_t n);
void add_inplace(Context& c, float* y, const float* x, int64_t n);
void scale_inplace(Context& c, float* y, float a, int64_t n);
// sum of squares (double) and the count of non-finite elements, reduced on the device into d_out[0..1]
void sum_squares_nonfinite(Context& c, double* d_out, const float* x, int64_t n);
void embedding(Context& c, float* out, const int* d_tokens, const void* table, DType wt, int N, int C);
// out[d_rows[i], :] = x[i, :] for i < n (rows distinct); other rows of out untouched
void scatter_rows(Context& c, float* out, const float* x, const int* d_rows, int n, int C);
void rmsnorm_forward(Context& c, float* out, float* rstd, const float* x, const void* w, DType wt, int N, int C,
                     double eps);
void rmsnorm_backward(Context& c, float* dx, const float* dout, const float* x, const void* w, DType wt,
                      const float* rstd, int N, int C);
// positions: null → position t of [B, T] rows; else d_pos[b] + i (generation, n = T)
void rope(Context& c, float* x, const float* cosT, const float* sinT, const int* d_pos, int B, int T, int nh, int hd,
          bool backward);
void swiglu_forward(Context& c, float* h, const float* g, const float* u, int64_t n);
void swiglu_backward(Context& c, float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n);
void dropout(Context& c, float* out, const float* x, int64_t n, double p, uint64_t key, bool accumulate);
void adamw(Context& c, float* p, const float* g, float* m, float* v, int64_t n, float step_size, float bc2_sqrt,
           float decay, float beta1, float beta2, float eps);
void kv_cache_write(Context& c, float* cache, const float* x, const int* d_pos, int B, int n, int Tcap, int width);

// cross_entropy.cu: one pass of online softmax per row (running max and sum, merged across the
// block), a second pass writing the gradient; d_row_loss: [N] device
void cross_entropy(Context& c, float* dlogits, const float* logits, const int* d_targets, int N, int V,
                   float grad_scale, double* d_row_loss);

// attention.cu: causal GQA with right padding, memory-efficient (no [T, T] matrix is stored):
// forward keeps lse [B, H, T]; backward recomputes the probabilities from it.
void attention_forward(Context& c, float* out, float* lse, const float* q, const float* k, const float* v,
                       const int* d_lens, int B, int T, int H, int KV, int hd, int window);
void attention_backward(Context& c, float* dq, float* dk, float* dv, const float* dout, const float* lse,
                        const float* q, const float* k, const float* v, const int* d_lens, int B, int T, int H, int KV,
                        int hd, int window);
// the plain version (one thread block per query row, scores in shared memory): the reference
// the tiled kernels are checked against on the device, and the fallback for head sizes the tiled
// kernels do not take (hd > 256)
void attention_forward_simple(Context& c, float* out, float* lse, const float* q, const float* k, const float* v,
                              const int* d_lens, int B, int T, int H, int KV, int hd, int window);
void attention_cached(Context& c, float* out, const float* q, const float* kc, const float* vc, const int* d_pos,
                      int B, int n, int H, int KV, int hd, int Tcap, int window);

}  // namespace cuda
}  // namespace lf
