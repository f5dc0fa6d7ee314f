// The Llama forward and backward pass with LoRA (the readable reference, llm.c style).
// The base model is frozen; gradients flow through every op but only the LoRA A/B tensors
// accumulate them.
//
// One micro-batch: tokens [B, T] right-padded, lens[B] real lengths, targets[B*T] where
// targets[b*T+t] is the token predicted at position t (-1 = no loss there).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "lora.h"
#include "model_dir.h"
#include "resident.h"

namespace lf {

struct MicroBatch {
    int B = 0, T = 0;
    std::vector<int> tokens;   // [B*T]
    std::vector<int> targets;  // [B*T]
    std::vector<int> lens;     // [B]
};

struct PassResult {
    double loss_sum = 0;  // sum of token losses over targets >= 0
    int64_t n_targets = 0;
};

class Model {
public:
    Model(Backend& be, const LlamaWeights& w, Lora* lora);  // lora may be null (base model)
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const LlamaConfig& cfg() const { return w_.cfg; }
    const LlamaWeights& weights() const { return w_; }
    // allocate activations for micro-batches up to B x T (idempotent when they already fit)
    void reserve(int B, int T);

    // Forward, and when `backward` also backward: accumulates d(grad_scale * loss_sum)/d(lora)
    // into lora->grads(). `dropout_key` seeds the LoRA dropout masks (only when backward, i.e.
    // training). `logits_out` (host [B*T, V]) receives all logits when non-null.
    // With check_numerics each op's output is checked and the first non-finite one throws
    // lf::Error(EXIT_NUMERICS) naming the layer and the HF tensor.
    PassResult run(const MicroBatch& mb, bool backward, double grad_scale, uint64_t dropout_key,
                   float* logits_out = nullptr);
    bool check_numerics = false;
    // where backward accumulates the LoRA gradients (default: lora->grads()); replicas that run
    // parts of a micro-batch in parallel each get their own buffer
    void set_grad_target(float* g) { grad_target_ = g; }

private:
    struct LayerActs {
        float *res_in, *rstd1, *xn1, *q, *k, *v, *lse, *att, *res_mid, *rstd2, *xn2, *g, *u, *h;
        float* probs = nullptr;  // softmax probabilities kept for backward (when they fit kProbsBudget)
    };
    // bytes of attention probabilities kept over all layers; above it backward recomputes them
    static constexpr size_t kProbsBudget = size_t(512) << 20;
    struct SlotActs {
        float *xd = nullptr, *z = nullptr;
    };
    float* buf(size_t n);
    void ensure_rope(int T);
    void linear_forward(int layer, int m, const float* x, const float* W, float* y, int N, int in, int out,
                        uint64_t key, bool train);
    void lora_forward(int layer, int m, const float* x, float* y, int N, uint64_t key, bool train);
    void lora_backward(int layer, int m, const float* x, const float* dy, float* dx, int N, uint64_t key, bool train);
    void check(const float* p, size_t n, int layer, const std::string& tensor, const char* what);

    Backend& be_;
    const LlamaWeights& w_;
    Lora* lora_;
    float* grad_target_ = nullptr;
    ResidentWeights rw_;  // frozen weights as the backend sees them
    // activations
    int capB_ = 0, capT_ = 0;
    std::vector<float*> allocs_;
    std::vector<LayerActs> acts_;
    std::vector<SlotActs> slot_acts_;
    float *res_final_ = nullptr, *rstdf_ = nullptr, *xnf_ = nullptr;
    float *dres_ = nullptr, *dxn_ = nullptr, *dq_ = nullptr, *dk_ = nullptr, *dv_ = nullptr, *datt_ = nullptr;
    float *dg_ = nullptr, *du_ = nullptr, *dh_ = nullptr, *dz_ = nullptr, *dxd_ = nullptr;
    float *head_x_ = nullptr, *head_logits_ = nullptr, *head_dx_ = nullptr;
    int head_rows_ = 0;
    std::vector<double> row_loss_;
    std::vector<float> cos_, sin_;
    int rope_T_ = 0;
    const float *cos_dev_ = nullptr, *sin_dev_ = nullptr;
};

// fp32 RoPE tables [T, head_dim/2] computed as transformers does (default or llama3 scaling)
void rope_tables(const LlamaConfig& c, int T, std::vector<float>* cos, std::vector<float>* sin);

}  // namespace lf
