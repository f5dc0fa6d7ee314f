// One interface, several backends (ggml style). The model code calls these ops; a backend
// decides how. The CPU backend (cpu/backend.cpp) is the reference: it runs the templated ops of
// ops.h in fp32. A CUDA backend (LORAFORGE_CUDA) implements the same table on device memory,
// and tests/test_ops.cpp compares every backend op by op against the CPU one.
//
// Buffers: every float pointer passed to an op comes from alloc() of the same backend (or, for
// frozen weights, from weights()). On the CPU backend these are host pointers. The int arrays
// (tokens, targets, lens) and cross_entropy's row_loss are host memory on every backend; a device
// backend copies them. Ops are called from one thread at a time per Model, but several Models
// (train_step.h DataParallel, through run_replicas) may call the same backend from different threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor.h"

namespace lf {

enum class Op {
    MatmulForward, MatmulBackwardInput, MatmulBackwardWeight,
    RmsnormForward, RmsnormBackward,
    RopeForward, RopeBackward,
    AttentionForward, AttentionBackward,
    SwigluForward, SwigluBackward,
    CrossEntropy,
    DropoutApply, DropoutBackward,
    AdamW,
    Embedding, ScatterRows,
    Zero, Add, Scale, SumSquares, AllFinite,  // elementwise helpers (memory section below)
    RopeForwardAt, KvCacheWrite, AttentionCached, MatmulRows,  // generation (ops_decode.h)
    Count
};
const char* op_name(Op op);

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    // whether this backend runs `op` when the frozen weights it reads are of type `weights`
    // (ops that read none: any type). Asked once at start for every op a pass needs (require_ops).
    virtual bool supports_op(Op op, DType weights) const = 0;
    virtual void set_threads(int n) = 0;  // host threads (0: the default)
    virtual int threads() const { return 1; }  // host threads it uses (reported in events)

    // Data parallelism over the rows of a micro-batch (train_step.h DataParallel): how many model
    // replicas this backend runs at once for micro-batches of `rows` rows (1: none), and running
    // body(p) for every replica p in [0, P). A backend that runs them concurrently (the CPU: one
    // OpenMP thread each) rethrows the first lf::Error, by replica, after all have finished.
    virtual int replicas_for(int rows) const { return 1; }
    virtual void run_replicas(int P, const std::function<void(int p)>& body) {
        for (int p = 0; p < P; p++) body(p);
    }

    // memory
    virtual float* alloc(size_t n_floats) = 0;  // zero-initialized
    virtual void free(float* p) = 0;
    // A frozen tensor made resident in the form this backend's ops read it (the CPU: fp32, F16
    // and BF16 converted once and shared by every holder of the same tensor); the result is what
    // ops take as a weight. Only for dtypes supports_op accepts.
    virtual const float* weights(const FrozenTensor& t) = 0;
    // the caller is done with the tensor whose t.data it passed to weights() (one call per weights() call)
    virtual void release_weights(const void* data) {}
    // an fp32 tensor (the op tests' frozen weights)
    const float* weights(const float* host, size_t n) { return weights(FrozenTensor{DType::F32, (int64_t)n, host}); }
    virtual void upload(float* dst, const float* host, size_t n) = 0;
    virtual void download(float* host, const float* src, size_t n) = 0;
    virtual void zero(float* p, size_t n) = 0;
    virtual void add(float* y, const float* x, size_t n) = 0;  // y += x
    virtual void scale(float* y, float a, size_t n) = 0;       // y *= a
    virtual double sum_squares(const float* x, size_t n) = 0;
    virtual bool all_finite(const float* x, size_t n) = 0;

    // ops: see ops.h for the shapes and semantics of each
    // out[n, :] = table[tokens[n], :]: also the row gather of the LM head (tokens = row indices)
    virtual void embedding(float* out, const int* tokens, const float* table, int N, int C) = 0;
    // out[rows[i], :] = x[i, :] for i < n (rows: host int [n], distinct): the LM head's input
    // gradient back into the rows it was gathered from. Other rows of out are left as they are.
    virtual void scatter_rows(float* out, const float* x, const int* rows, int n, int C) = 0;
    virtual void matmul_forward(float* out, const float* x, const float* W, int N, int I, int O, float alpha, float beta) = 0;
    virtual void matmul_backward_input(float* dx, const float* dout, const float* W, int N, int I, int O, float alpha, float beta) = 0;
    virtual void matmul_backward_weight(float* dW, const float* dout, const float* x, int N, int I, int O, float alpha, float beta) = 0;
    virtual void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int C, double eps) = 0;
    virtual void rmsnorm_backward(float* dx, const float* dout, const float* x, const float* w, const float* rstd, int N, int C) = 0;
    virtual void rope_forward(float* x, const float* cos, const float* sin, int B, int T, int nh, int hd) = 0;
    virtual void rope_backward(float* dx, const float* cos, const float* sin, int B, int T, int nh, int hd) = 0;
    // Attention may keep the softmax probabilities of the forward pass for the backward pass:
    // attention_probs_floats says how many floats a `probs` buffer needs (0: this backend always
    // recomputes them); forward fills it when given, backward reads it when given. With probs the
    // lse buffer carries whatever that backend's backward needs to go with them (CPU: 1/sum).
    virtual size_t attention_probs_floats(int B, int T, int H, int hd) const { return 0; }
    virtual void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int* lens,
                                   int B, int T, int H, int KV, int hd, int window, float* probs = nullptr) = 0;
    virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                                    const float* k, const float* v, const int* lens, int B, int T, int H, int KV, int hd,
                                    int window, const float* probs = nullptr) = 0;
    virtual void swiglu_forward(float* h, const float* g, const float* u, int64_t n) = 0;
    virtual void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) = 0;
    // returns the sum of the losses of rows with target >= 0; row_loss is host memory [N]
    virtual double cross_entropy(float* dlogits, const float* logits, const int* targets, int N, int V, double grad_scale,
                                 double* row_loss) = 0;
    virtual void dropout_apply(float* out, const float* x, int64_t n, double p, uint64_t key) = 0;
    virtual void dropout_backward(float* dx, const float* dout, int64_t n, double p, uint64_t key) = 0;
    virtual void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                       double eps, double wd, int64_t step) = 0;

    // generation with a KV cache: see ops_decode.h. pos is host memory [B].
    // matmul_rows: out[N,O] = x W^T where row n depends only on x's row n (the decoder's linears)
    virtual void matmul_rows(float* out, const float* x, const float* W, int N, int I, int O) = 0;
    virtual void rope_forward_at(float* x, const float* cos, const float* sin, const int* pos, int B, int n, int nh,
                                 int hd) = 0;
    virtual void kv_cache_write(float* cache, const float* x, const int* pos, int B, int n, int Tcap, int width) = 0;
    virtual void attention_cached(float* out, const float* q, const float* kc, const float* vc, const int* pos, int B,
                                  int n, int H, int KV, int hd, int Tcap, int window) = 0;
};

// Throws lf::Error (usage, field "backend") naming the first of `ops` that `be` does not run with
// frozen weights of type `weights`, and `what` needs it ("training", "generation").
void require_ops(const Backend& be, const std::vector<Op>& ops, DType weights, const char* what);
// every op a training step runs (the forward and backward pass, the optimizer)
const std::vector<Op>& training_ops();

// What a backend is created for. precision: the type frozen weights are kept in and GEMMs with
// them run in ("fp32", "fp16", "bf16"; the CPU backend holds and multiplies them in fp32 whatever
// it is); device: the GPU index.
struct BackendOptions {
    std::string precision = "fp32";
    int device = 0;
};
// A compiled-in backend and whether this machine can run it (the `backends` verb prints these).
struct BackendInfo {
    std::string name;
    bool compiled = false;
    bool device = false;  // the hardware it needs is present
    std::string detail;   // the device found, or why none was
};

std::unique_ptr<Backend> make_cpu_backend();
// every backend compiled in, CPU first ("cpu", then "cuda" when built with LORAFORGE_CUDA)
std::vector<std::string> backend_names();
// nullptr if not compiled in; a usage error when the machine lacks what the backend needs
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& o = {});
// every backend this build knows, compiled in or not, with whether its device is present
std::vector<BackendInfo> probe_backends();

}  // namespace lf
