#include "resident.h"

namespace lf {

ResidentWeights::ResidentWeights(Backend& be, const LlamaWeights& w) : be_(be) {
    const LlamaConfig& c = w.cfg;
    embed = hold(w.embed, (size_t)c.vocab * c.dim);
    final_norm = hold(w.final_norm, c.dim);
    lm_head = c.tied ? embed : hold(w.lm_head, (size_t)c.vocab * c.dim);
    for (auto& L : w.layers) {
        LayerWeights d;
        d.in_norm = hold(L.in_norm, c.dim);
        d.post_norm = hold(L.post_norm, c.dim);
        d.wq = hold(L.wq, (size_t)c.q_dim() * c.dim);
        d.wk = hold(L.wk, (size_t)c.kv_dim() * c.dim);
        d.wv = hold(L.wv, (size_t)c.kv_dim() * c.dim);
        d.wo = hold(L.wo, (size_t)c.dim * c.q_dim());
        d.wg = hold(L.wg, (size_t)c.hidden * c.dim);
        d.wu = hold(L.wu, (size_t)c.hidden * c.dim);
        d.wd = hold(L.wd, (size_t)c.dim * c.hidden);
        layers.push_back(d);
    }
}

ResidentWeights::~ResidentWeights() {
    for (const float* t : held_) be_.release_weights(t);
}

const float* ResidentWeights::hold(const float* host, size_t n) {
    held_.push_back(host);
    return be_.weights(host, n);
}

}  // namespace lf
