// GEMMs through cuBLAS. Row-major C = A B is column-major C^T = B^T A^T, so each row-major call
// swaps its operands (and M with N) on the way into cuBLAS.
#include "ops.cuh"

namespace lf {
namespace cuda {

static cudaDataType_t cuda_type(DType t) {
    switch (t) {
        case DType::F16: return CUDA_R_16F;
        case DType::BF16: return CUDA_R_16BF;
        default: return CUDA_R_32F;
    }
}
static size_t dtype_bytes(DType t) { return t == DType::F32 ? 4 : 2; }

// row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C with A, B of type `ab`, C fp32
static void gemm_ex(Context& c, bool ta, bool tb, int M, int N, int K, float alpha, const void* A, int lda,
                    const void* B, int ldb, DType ab, float beta, float* C, int ldc) {
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    LF_CUBLAS_CHECK(cublasGemmEx(c.cublas, opb, opa, N, M, K, &alpha, B, cuda_type(ab), ldb, A, cuda_type(ab), lda,
                                 &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm_f32(Context& c, bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
              int ldb, float beta, float* C, int ldc) {
    gemm_ex(c, ta, tb, M, N, K, alpha, A, lda, B, ldb, DType::F32, beta, C, ldc);
}

// the fp32 activation rounded to the weight's type, in the backend's scratch
static const void* lowered(Context& c, const float* x, int64_t n, DType wt) {
    if (wt == DType::F32) return x;
    void* s = c.scratch_at_least((size_t)n * dtype_bytes(wt));
    convert_from_f32(c, s, wt, x, n);
    return s;
}

void linear_forward(Context& c, float* out, const float* x, const void* W, DType wt, int N, int I, int O, float alpha,
                    float beta) {
    // out[N,O] = x[N,I] W[O,I]^T
    gemm_ex(c, false, true, N, O, I, alpha, lowered(c, x, (int64_t)N * I, wt), I, W, I, wt, beta, out, O);
}

void linear_backward_input(Context& c, float* dx, const float* dout, const void* W, DType wt, int N, int I, int O,
                           float alpha, float beta) {
    // dx[N,I] = dout[N,O] W[O,I]
    gemm_ex(c, false, false, N, I, O, alpha, lowered(c, dout, (int64_t)N * O, wt), O, W, I, wt, beta, dx, I);
}

// out[N,O] = x[N,I] W[O,I]^T with each output a warp's dot product in a fixed order (lane
// strides, then the shuffle tree): row n's result depends on nothing but row n of x, so a
// sequence decodes to the same bits alone and in any batch (ops_decode.h matmul_rows)
template <class W>
__global__ void matmul_rows_kernel(float* out, const float* x, const W* w, int N, int I, int O) {
    const int lane = threadIdx.x & 31;
    const int64_t o = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (o >= O) return;
    const W* wr = w + o * I;
    for (int n = 0; n < N; n++) {
        const float* xr = x + (int64_t)n * I;
        float s = 0;
        for (int i = lane; i < I; i += 32) s += xr[i] * to_f32(wr[i]);
        s = warp_sum(s);
        if (lane == 0) out[(int64_t)n * O + o] = s;
    }
}
void matmul_rows(Context& c, float* out, const float* x, const void* W, DType wt, int N, int I, int O) {
    if ((int64_t)N * O == 0) return;
    const int warps = 8, grid = blocks_for(O, warps);
    if (wt == DType::F16) matmul_rows_kernel<<<grid, warps * 32, 0, c.stream>>>(out, x, (const __half*)W, N, I, O);
    else if (wt == DType::BF16) matmul_rows_kernel<<<grid, warps * 32, 0, c.stream>>>(out, x, (const __nv_bfloat16*)W, N, I, O);
    else matmul_rows_kernel<<<grid, warps * 32, 0, c.stream>>>(out, x, (const float*)W, N, I, O);
    LF_CUDA_LAUNCHED();
}

}  // namespace cuda
}  // namespace lf
