// The CUDA backend: the Backend table of ../backend.h on one GPU. Activations, gradients, LoRA
// parameters and optimizer state are fp32 device buffers (the interface's float*); frozen
// tensors handed to weights() are stored in the run's precision (fp32, fp16 or bf16): copied as
// they are when stored in it (a bf16 checkpoint in a bf16 run: no conversion anywhere), else
// converted once on the device. Every op that reads one looks up its type, so a 7B model's base
// weights take 2 bytes a parameter. One model replica (replicas_for's default): the whole
// micro-batch runs on the backend's one stream.
// GEMMs with a frozen operand run on tensor cores with fp32 accumulation (gemm.cu); the rest
// are the kernels of elementwise.cu, cross_entropy.cu and attention.cu.
//
// Host arrays of the interface (tokens, targets, lens, pos, row_loss) are staged through a
// device int buffer / a pinned buffer on the backend's one stream. All state is per backend
// object: two backends in one process do not share a stream, handle or scratch.
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "../backend.h"
#include "../error.h"
#include "ops.cuh"

namespace lf {
namespace cuda {

[[noreturn]] void fail_cuda(cudaError_t e, const char* call, const char* file, int line) {
    const char* hint = "";
    if (e == cudaErrorMemoryAllocation)
        hint = " (out of GPU memory: lower microBatchSize or cutoffLen, or turn on gradientCheckpointing)";
    else if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
        hint = " (no usable GPU: is the NVIDIA driver installed and the device visible in this container?)";
    else if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorUnsupportedPtxVersion)
        hint = " (this binary was not compiled for this GPU's architecture: see CMAKE_CUDA_ARCHITECTURES)";
    throw Error(EXIT_INTERNAL, strprintf("CUDA error %s (%s) in %s at %s:%d%s", cudaGetErrorName(e),
                                         cudaGetErrorString(e), call, file, line, hint));
}

[[noreturn]] void fail_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
    const char* hint = s == CUBLAS_STATUS_ALLOC_FAILED ? " (out of GPU memory)"
                       : s == CUBLAS_STATUS_ARCH_MISMATCH ? " (this GPU lacks the feature: bf16 needs compute capability 8.0)"
                       : s == CUBLAS_STATUS_NOT_SUPPORTED ? " (unsupported type or shape combination)"
                                                          : "";
    throw Error(EXIT_INTERNAL, strprintf("cuBLAS error %d in %s at %s:%d%s", (int)s, call, file, line, hint));
}

void* Context::scratch_at_least(size_t bytes) {
    if (bytes > scratch_bytes) {
        if (scratch) LF_CUDA_CHECK(cudaFreeAsync(scratch, stream));
        scratch = nullptr;
        LF_CUDA_CHECK(cudaMallocAsync(&scratch, bytes, stream));
        scratch_bytes = bytes;
    }
    return scratch;
}

double* Context::pinned_at_least(size_t n) {
    if (n > host_pinned_n) {
        if (host_pinned) LF_CUDA_CHECK(cudaFreeHost(host_pinned));
        host_pinned = nullptr;
        LF_CUDA_CHECK(cudaMallocHost((void**)&host_pinned, n * sizeof(double)));
        host_pinned_n = n;
    }
    return host_pinned;
}

namespace {

DType parse_precision(const std::string& p) {
    if (p == "fp32") return DType::F32;
    if (p == "fp16") return DType::F16;
    if (p == "bf16") return DType::BF16;
    throw usage_error("precision '" + p + "' is not one of fp32, fp16, bf16", "training.precision");
}

class CudaBackend : public Backend {
public:
    explicit CudaBackend(const BackendOptions& o) {
        int n = 0;
        const cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess || n == 0)
            throw usage_error(strprintf("backend cuda: no usable GPU (%s)", e != cudaSuccess ? cudaGetErrorString(e)
                                                                                              : "0 devices"),
                              "backend");
        if (o.device < 0 || o.device >= n)
            throw usage_error(strprintf("backend cuda: device %d does not exist (%d visible)", o.device, n), "backend");
        device_ = o.device;
        LF_CUDA_CHECK(cudaSetDevice(device_));
        cudaDeviceProp prop;
        LF_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
        device_name_ = prop.name;
        c_.cc_major = prop.major;
        c_.cc_minor = prop.minor;
        c_.compute = parse_precision(o.precision);
        if (c_.compute == DType::BF16 && prop.major < 8)
            throw usage_error(strprintf("precision bf16 needs a GPU of compute capability 8.0 or newer; %s is %d.%d "
                                        "(use fp16: it trains with dynamic loss scaling)",
                                        prop.name, prop.major, prop.minor),
                              "training.precision");
        LF_CUDA_CHECK(cudaStreamCreateWithFlags(&c_.stream, cudaStreamNonBlocking));
        LF_CUBLAS_CHECK(cublasCreate(&c_.cublas));
        LF_CUBLAS_CHECK(cublasSetStream(c_.cublas, c_.stream));
        // fp32 GEMMs stay IEEE fp32 (no TF32): the fp32 precision is the one checked bit-close
        // against the CPU reference
        LF_CUBLAS_CHECK(cublasSetMathMode(c_.cublas, CUBLAS_DEFAULT_MATH));
        LF_CUDA_CHECK(cudaMalloc((void**)&d_sums_, 2 * sizeof(double)));
    }
    ~CudaBackend() override {
        cudaStreamSynchronize(c_.stream);
        for (auto& kv : frozen_) cudaFree(kv.second.dev);
        if (c_.scratch) cudaFree(c_.scratch);
        if (d_ints_) cudaFree(d_ints_);
        if (d_rowloss_) cudaFree(d_rowloss_);
        if (d_sums_) cudaFree(d_sums_);
        if (c_.host_pinned) cudaFreeHost(c_.host_pinned);
        cublasDestroy(c_.cublas);
        cudaStreamDestroy(c_.stream);
    }

    std::string name() const override { return "cuda"; }
    // every op, with frozen weights stored as F32, F16 or BF16 (weights() brings them to the
    // run's precision); not int8/nf4 yet
    bool supports_op(Op, DType weights) const override {
        return weights == DType::F32 || weights == DType::F16 || weights == DType::BF16;
    }
    void set_threads(int) override {}

    // ---------------------------------------------------------------- memory
    float* alloc(size_t n) override {
        void* p = nullptr;
        const size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
        const cudaError_t e = cudaMalloc(&p, bytes);
        if (e != cudaSuccess)
            throw Error(EXIT_INTERNAL, strprintf("out of GPU memory allocating %zu bytes on %s (%s): lower microBatchSize "
                                                 "or cutoffLen, or turn on gradientCheckpointing",
                                                 bytes, device_name_.c_str(), cudaGetErrorString(e)));
        LF_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, c_.stream));
        return (float*)p;
    }
    void free(float* p) override {
        if (p) LF_CUDA_CHECK(cudaFree(p));
    }
    // the frozen tensor (host memory, t.data), uploaded once per tensor in the run's precision:
    // its bytes as they are when it is stored in that type, else through a device staging copy
    // converted there (F16/BF16 -> F32 is exact; F32 -> F16/BF16 rounds to nearest)
    const float* weights(const FrozenTensor& t) override {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = by_data_.find(t.data);
        if (it != by_data_.end()) {
            frozen_[it->second].refs++;
            return (const float*)it->second;
        }
        if (!supports_op(Op::MatmulForward, t.dtype))
            throw Error(EXIT_INTERNAL, std::string("cuda backend: frozen tensor of unsupported dtype ") + lf::dtype_name(t.dtype));
        const DType keep = c_.compute;
        const size_t n = (size_t)t.numel;
        void* dev = nullptr;
        LF_CUDA_CHECK(cudaMalloc(&dev, std::max<size_t>(n, 1) * dtype_size(keep)));
        if (t.dtype == keep) {
            if (n) LF_CUDA_CHECK(cudaMemcpyAsync(dev, t.data, n * dtype_size(keep), cudaMemcpyHostToDevice, c_.stream));
            LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));  // the copy from pageable memory is done
        } else {
            void* staging = nullptr;
            LF_CUDA_CHECK(cudaMalloc(&staging, std::max<size_t>(n, 1) * dtype_size(t.dtype)));
            if (n) LF_CUDA_CHECK(cudaMemcpyAsync(staging, t.data, n * dtype_size(t.dtype), cudaMemcpyHostToDevice, c_.stream));
            convert(c_, dev, keep, staging, t.dtype, (int64_t)n);
            LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
            LF_CUDA_CHECK(cudaFree(staging));
        }
        frozen_[dev] = Frozen{dev, keep, n, 1};
        by_data_[t.data] = dev;
        return (const float*)dev;
    }
    void release_weights(const void* data) override {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = by_data_.find(data);
        if (it == by_data_.end()) return;
        auto f = frozen_.find(it->second);
        if (--f->second.refs > 0) return;
        LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
        LF_CUDA_CHECK(cudaFree(f->second.dev));
        frozen_.erase(f);
        by_data_.erase(it);
    }
    void upload(float* dst, const float* host, size_t n) override {
        LF_CUDA_CHECK(cudaMemcpyAsync(dst, host, n * 4, cudaMemcpyHostToDevice, c_.stream));
        LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));  // the caller may free `host` next
    }
    void download(float* host, const float* src, size_t n) override {
        LF_CUDA_CHECK(cudaMemcpyAsync(host, src, n * 4, cudaMemcpyDeviceToHost, c_.stream));
        LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
    }
    void zero(float* p, size_t n) override { fill_zero(c_, p, (int64_t)n); }
    void add(float* y, const float* x, size_t n) override { add_inplace(c_, y, x, (int64_t)n); }
    void scale(float* y, float a, size_t n) override { scale_inplace(c_, y, a, (int64_t)n); }
    double sum_squares(const float* x, size_t n) override { return sums(x, n)[0]; }
    bool all_finite(const float* x, size_t n) override { return sums(x, n)[1] == 0.0; }

    // ---------------------------------------------------------------- ops
    void embedding(float* out, const int* tokens, const float* table, int N, int C) override {
        const Frozen f = lookup(table);
        cuda::embedding(c_, out, ints(tokens, N), f.dev, f.type, N, C);
    }
    void scatter_rows(float* out, const float* x, const int* rows, int n, int C) override {
        cuda::scatter_rows(c_, out, x, ints(rows, n), n, C);
    }
    void matmul_forward(float* out, const float* x, const float* W, int N, int I, int O, float a, float b) override {
        const Frozen f = lookup(W);
        linear_forward(c_, out, x, f.dev, f.type, N, I, O, a, b);
    }
    void matmul_backward_input(float* dx, const float* dout, const float* W, int N, int I, int O, float a,
                               float b) override {
        const Frozen f = lookup(W);
        linear_backward_input(c_, dx, dout, f.dev, f.type, N, I, O, a, b);
    }
    // dW[O,I] = a dout[N,O]^T x[N,I] + b dW: only trainable (fp32) weights have gradients
    void matmul_backward_weight(float* dW, const float* dout, const float* x, int N, int I, int O, float a,
                                float b) override {
        gemm_f32(c_, true, false, O, I, N, a, dout, O, x, I, b, dW, I);
    }
    void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int C, double eps) override {
        const Frozen f = lookup(w);
        cuda::rmsnorm_forward(c_, out, rstd, x, f.dev, f.type, N, C, eps);
    }
    void rmsnorm_backward(float* dx, const float* dout, const float* x, const float* w, const float* rstd, int N,
                          int C) override {
        const Frozen f = lookup(w);
        cuda::rmsnorm_backward(c_, dx, dout, x, f.dev, f.type, rstd, N, C);
    }
    void rope_forward(float* x, const float* c, const float* s, int B, int T, int nh, int hd) override {
        rope(c_, x, c, s, nullptr, B, T, nh, hd, false);
    }
    void rope_backward(float* dx, const float* c, const float* s, int B, int T, int nh, int hd) override {
        rope(c_, dx, c, s, nullptr, B, T, nh, hd, true);
    }
    void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int* lens,
                           int B, int T, int H, int KV, int hd, int window, float* probs) override {
        cuda::attention_forward(c_, out, lse, q, k, v, ints(lens, B), B, T, H, KV, hd, window);
    }
    void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                            const float* k, const float* v, const int* lens, int B, int T, int H, int KV, int hd,
                            int window, const float* probs) override {
        cuda::attention_backward(c_, dq, dk, dv, dout, lse, q, k, v, ints(lens, B), B, T, H, KV, hd, window);
    }
    void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override {
        cuda::swiglu_forward(c_, h, g, u, n);
    }
    void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override {
        cuda::swiglu_backward(c_, dg, du, dh, g, u, n);
    }
    double cross_entropy(float* dl, const float* l, const int* t, int N, int V, double gs, double* row_loss) override {
        if (N == 0) return 0.0;
        if ((size_t)N > rowloss_n_) {
            if (d_rowloss_) LF_CUDA_CHECK(cudaFree(d_rowloss_));
            LF_CUDA_CHECK(cudaMalloc((void**)&d_rowloss_, (size_t)N * sizeof(double)));
            rowloss_n_ = N;
        }
        cuda::cross_entropy(c_, dl, l, ints(t, N), N, V, (float)gs, d_rowloss_);
        double* h = c_.pinned_at_least(N);
        LF_CUDA_CHECK(cudaMemcpyAsync(h, d_rowloss_, (size_t)N * sizeof(double), cudaMemcpyDeviceToHost, c_.stream));
        LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
        double s = 0;
        for (int n = 0; n < N; n++) {
            row_loss[n] = h[n];
            s += h[n];
        }
        return s;
    }
    void dropout_apply(float* out, const float* x, int64_t n, double p, uint64_t key) override {
        dropout(c_, out, x, n, p, key, false);
    }
    void dropout_backward(float* dx, const float* dout, int64_t n, double p, uint64_t key) override {
        dropout(c_, dx, dout, n, p, key, true);
    }
    void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double b1, double b2, double eps,
               double wd, int64_t step) override {
        const double bc1 = 1.0 - std::pow(b1, (double)step), bc2 = 1.0 - std::pow(b2, (double)step);
        cuda::adamw(c_, p, g, m, v, n, (float)(lr / bc1), (float)std::sqrt(bc2), (float)(1.0 - lr * wd), (float)b1,
                    (float)b2, (float)eps);
    }
    void matmul_rows(float* out, const float* x, const float* W, int N, int I, int O) override {
        const Frozen f = lookup(W);
        cuda::matmul_rows(c_, out, x, f.dev, f.type, N, I, O);
    }
    void rope_forward_at(float* x, const float* c, const float* s, const int* pos, int B, int n, int nh,
                         int hd) override {
        rope(c_, x, c, s, ints(pos, B), B, n, nh, hd, false);
    }
    void kv_cache_write(float* cache, const float* x, const int* pos, int B, int n, int Tcap, int width) override {
        cuda::kv_cache_write(c_, cache, x, ints(pos, B), B, n, Tcap, width);
    }
    void attention_cached(float* out, const float* q, const float* kc, const float* vc, const int* pos, int B, int n,
                          int H, int KV, int hd, int Tcap, int window) override {
        cuda::attention_cached(c_, out, q, kc, vc, ints(pos, B), B, n, H, KV, hd, Tcap, window);
    }

private:
    struct Frozen {
        void* dev = nullptr;
        DType type = DType::F32;
        size_t n = 0;
        int refs = 0;
    };
    // a frozen tensor's device copy and type; any other pointer is an fp32 buffer from alloc()
    Frozen lookup(const float* p) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = frozen_.find((void*)p);
        if (it != frozen_.end()) return it->second;
        return Frozen{(void*)p, DType::F32, 0, 0};
    }
    // a host int array copied to the device (the stream orders it before the op that reads it
    // and the next copy after that op)
    const int* ints(const int* host, int n) {
        if ((size_t)n > ints_n_) {
            if (d_ints_) {
                LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
                LF_CUDA_CHECK(cudaFree(d_ints_));
            }
            LF_CUDA_CHECK(cudaMalloc((void**)&d_ints_, (size_t)n * sizeof(int)));
            ints_n_ = n;
        }
        LF_CUDA_CHECK(cudaMemcpyAsync(d_ints_, host, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c_.stream));
        return d_ints_;
    }
    // {sum of squares, count of non-finite}, one synchronisation
    const double* sums(const float* x, size_t n) {
        sum_squares_nonfinite(c_, d_sums_, x, (int64_t)n);
        double* h = c_.pinned_at_least(2);
        LF_CUDA_CHECK(cudaMemcpyAsync(h, d_sums_, 2 * sizeof(double), cudaMemcpyDeviceToHost, c_.stream));
        LF_CUDA_CHECK(cudaStreamSynchronize(c_.stream));
        return h;
    }

    Context c_;
    int device_ = 0;
    std::string device_name_;
    std::mutex mu_;
    std::map<void*, Frozen> frozen_;            // by device pointer
    std::map<const void*, void*> by_data_;      // the tensor's host data (FrozenTensor::data) → device pointer
    int* d_ints_ = nullptr;
    size_t ints_n_ = 0;
    double* d_rowloss_ = nullptr;
    size_t rowloss_n_ = 0;
    double* d_sums_ = nullptr;
};

}  // namespace
}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& o) { return std::make_unique<cuda::CudaBackend>(o); }

// whether this machine has a GPU the binary can use, without creating a context's state
BackendInfo probe_cuda_backend() {
    BackendInfo info{"cuda", true, false, ""};
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        info.detail = std::string("no usable GPU: ") + cudaGetErrorString(e) +
                      (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                           ? " (no NVIDIA driver, or none new enough, is visible to this process)"
                           : "");
        return info;
    }
    if (n == 0) {
        info.detail = "no GPU visible";
        return info;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        info.detail = "cannot read GPU 0's properties";
        return info;
    }
    int driver = 0;
    cudaDriverGetVersion(&driver);
    info.device = true;
    info.detail = strprintf("%d GPU(s); GPU 0: %s, compute capability %d.%d, %.1f GiB, driver CUDA %d.%d%s", n,
                            prop.name, prop.major, prop.minor, prop.totalGlobalMem / 1073741824.0, driver / 1000,
                            (driver % 1000) / 10, prop.major >= 8 ? "; bf16 yes" : "; bf16 no (fp16 only)");
    return info;
}

}  // namespace lf
