// Cross-entropy over rows of logits [N, V] (targets -1: ignored), as ../ops.h cross_entropy,
// without ever holding a softmax of the vocabulary: one block per row reads the row once keeping
// a running (max, sum of exp(l - max)) per thread (online softmax), merges those pairs across
// the block, then writes grad_scale * (softmax - onehot) over the row in a second pass, which
// may overwrite the logits themselves (dlogits may alias logits).
#include <cfloat>

#include "ops.cuh"

namespace lf {
namespace cuda {

constexpr int kCeThreads = 512;

// (m, s) ⊕ (m2, s2): the pair with the larger max rescales the other's sum
__device__ __forceinline__ void softmax_merge(float& m, float& s, float m2, float s2) {
    const float mx = fmaxf(m, m2);
    if (mx == -INFINITY) return;  // both empty
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

__global__ void cross_entropy_kernel(float* dlogits, const float* logits, const int* targets, int V, float grad_scale,
                                     double* row_loss) {
    __shared__ float sm[32], ss[32];
    __shared__ float row_max, row_sum, target_logit;
    const int64_t row = blockIdx.x;
    const float* l = logits + row * V;
    const int t = targets[row];
    if (t < 0) {  // ignored row: loss 0, gradient 0
        if (dlogits)
            for (int i = threadIdx.x; i < V; i += blockDim.x) dlogits[row * V + i] = 0.0f;
        if (threadIdx.x == 0) row_loss[row] = 0.0;
        return;
    }
    float m = -INFINITY, s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = l[i];
        if (x > m) {
            s = s * expf(m - x) + 1.0f;
            m = x;
        } else {
            s += expf(x - m);
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        softmax_merge(m, s, m2, s2);
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        sm[warp] = m;
        ss[warp] = s;
    }
    if (threadIdx.x == 0) target_logit = l[t];  // read before the second pass may overwrite it
    __syncthreads();
    if (warp == 0) {
        const int nw = blockDim.x >> 5;
        m = lane < nw ? sm[lane] : -INFINITY;
        s = lane < nw ? ss[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
            softmax_merge(m, s, m2, s2);
        }
        if (lane == 0) {
            row_max = m;
            row_sum = s;
            row_loss[row] = (double)m + log((double)s) - (double)target_logit;
        }
    }
    __syncthreads();
    if (!dlogits) return;
    const float mx = row_max, k = grad_scale / row_sum;
    float* d = dlogits + row * V;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float g = expf(l[i] - mx) * k;
        if (i == t) g -= grad_scale;
        d[i] = g;
    }
}

void cross_entropy(Context& c, float* dlogits, const float* logits, const int* d_targets, int N, int V,
                   float grad_scale, double* d_row_loss) {
    if (N == 0) return;
    cross_entropy_kernel<<<N, kCeThreads, 0, c.stream>>>(dlogits, logits, d_targets, V, grad_scale, d_row_loss);
    LF_CUDA_LAUNCHED();
}

}  // namespace cuda
}  // namespace lf
