// What every backend shares: op names, the start-up check of the ops a pass needs, and the
// table of compiled-in backends.
#include "backend.h"

#include <string>

#include "error.h"

namespace lf {

const char* op_name(Op op) {
    static const char* names[] = {"matmul_forward", "matmul_backward_input", "matmul_backward_weight",
                                  "rmsnorm_forward", "rmsnorm_backward", "rope_forward", "rope_backward",
                                  "attention_forward", "attention_backward", "swiglu_forward", "swiglu_backward",
                                  "cross_entropy", "dropout_apply", "dropout_backward", "adamw", "embedding", "scatter_rows",
                                  "zero", "add", "scale", "sum_squares", "all_finite",
                                  "rope_forward_at", "kv_cache_write", "attention_cached", "matmul_rows"};
    static_assert(sizeof(names) / sizeof(names[0]) == (size_t)Op::Count, "op names");
    return names[(int)op];
}

void require_ops(const Backend& be, const std::vector<Op>& ops, DType weights, const char* what) {
    for (Op op : ops)
        if (!be.supports_op(op, weights))
            throw usage_error(std::string("the ") + be.name() + " backend has no " + op_name(op) + " for " +
                                  dtype_name(weights) + " weights, which " + what + " needs",
                              "backend");
}

const std::vector<Op>& training_ops() {
    static const std::vector<Op> ops = {
        Op::Embedding,         Op::RmsnormForward,   Op::RmsnormBackward, Op::MatmulForward,  Op::MatmulBackwardInput,
        Op::MatmulBackwardWeight, Op::RopeForward,   Op::RopeBackward,    Op::AttentionForward, Op::AttentionBackward,
        Op::SwigluForward,     Op::SwigluBackward,   Op::CrossEntropy,    Op::DropoutApply,   Op::DropoutBackward,
        Op::AdamW,             Op::ScatterRows,      Op::Zero,            Op::Add,            Op::Scale,
        Op::SumSquares};
    return ops;
}

BackendInfo probe_cpu_backend();  // cpu/backend.cpp
#ifdef LORAFORGE_CUDA
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& o);  // cuda/backend_cuda.cu
BackendInfo probe_cuda_backend();
#endif

std::vector<std::string> backend_names() {
    std::vector<std::string> v{"cpu"};
#ifdef LORAFORGE_CUDA
    v.push_back("cuda");
#endif
    return v;
}
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& o) {
    if (name == "cpu") return make_cpu_backend();
#ifdef LORAFORGE_CUDA
    if (name == "cuda") return make_cuda_backend(o);
#endif
    return nullptr;
}
std::vector<BackendInfo> probe_backends() {
    std::vector<BackendInfo> v{probe_cpu_backend()};
#ifdef LORAFORGE_CUDA
    v.push_back(probe_cuda_backend());
#else
    v.push_back({"cuda", false, false, "not compiled in (build with -DLORAFORGE_CUDA=ON)"});
#endif
    return v;
}

}  // namespace lf
