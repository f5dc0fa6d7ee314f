// The Llama forward pass for inference, with a KV cache (generate and score). model.h is the
// training pass; this one keeps each layer's keys and values so that a decoding step feeds only
// the new token of each sequence. Everything runs through backend ops (backend.h): the host
// sees token ids, positions and the logits (or per-row losses) it asks for.
//
// The LoRA adapter is applied unmerged, y = W x + s B (A x), and can be switched per call, so
// one load of the base weights serves the base model and base + adapter.
#pragma once
#include <vector>

#include "backend.h"
#include "lora.h"
#include "model_dir.h"
#include "resident.h"

namespace lf {

class Decoder {
public:
    Decoder(Backend& be, const LlamaWeights& w);
    ~Decoder();
    Decoder(const Decoder&) = delete;
    Decoder& operator=(const Decoder&) = delete;

    const LlamaConfig& cfg() const { return w_.cfg; }
    // the adapter of the following calls (null: the base model)
    void set_lora(const Lora* lora) { lora_ = lora; }
    // a cache for B sequences of up to Tcap positions and activations for up to n_max new
    // tokens per sequence; the cache's previous contents are forgotten
    void reset(int B, int Tcap, int n_max);

    // Feeds tokens [B, n] (row-major): sequence b's tokens go to positions pos[b] .. pos[b]+n-1,
    // their keys and values into the cache (positions below pos[b] must hold that sequence's
    // earlier ones). Then for each row index r = b*n + i in `rows`:
    //   logits_out (host [rows.size(), V]) gets the logits of row r, when non-null;
    //   row_loss (host [rows.size()]) gets -log softmax(logits)[targets[k]] of row r, when non-null.
    void forward(const int* tokens, const int* pos, int B, int n, const std::vector<int>& rows, float* logits_out,
                 const int* targets = nullptr, double* row_loss = nullptr);

private:
    float* buf(size_t n);
    void linear(int layer, int m, const float* x, const float* W, float* y, int N, int in, int out);

    Backend& be_;
    const LlamaWeights& w_;
    const Lora* lora_ = nullptr;
    ResidentWeights rw_;  // frozen weights as the backend sees them
    // cache and activations (reset)
    int capB_ = 0, capT_ = 0, capN_ = 0;
    std::vector<float*> allocs_;
    std::vector<float*> kc_, vc_;  // per layer [B, Tcap, KV, hd]
    float *x_ = nullptr, *xn_ = nullptr, *rstd_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr;
    float *att_ = nullptr, *tmp_ = nullptr, *g_ = nullptr, *u_ = nullptr, *h_ = nullptr, *z_ = nullptr, *lora_y_ = nullptr;
    float *head_x_ = nullptr, *head_logits_ = nullptr;
    int head_rows_ = 0;
    const float *cos_ = nullptr, *sin_ = nullptr;
};

}  // namespace lf
