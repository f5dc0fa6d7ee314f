#include "resident.h"

namespace lf {

ResidentWeights::ResidentWeights(Backend& be, const LlamaWeights& w) : be_(be) {
    const LlamaConfig& c = w.cfg;
    embed = hold(w.embed);
    final_norm = hold(w.final_norm);
    lm_head = c.tied ? embed : hold(w.lm_head);
    for (auto& L : w.layers) {
        ResidentLayer d;
        d.in_norm = hold(L.in_norm);
        d.post_norm = hold(L.post_norm);
        d.wq = hold(L.wq);
        d.wk = hold(L.wk);
        d.wv = hold(L.wv);
        d.wo = hold(L.wo);
        d.wg = hold(L.wg);
        d.wu = hold(L.wu);
        d.wd = hold(L.wd);
        layers.push_back(d);
    }
}

ResidentWeights::~ResidentWeights() {
    for (const void* t : held_) be_.release_weights(t);
}

const float* ResidentWeights::hold(const FrozenTensor& t) {
    held_.push_back(t.data);
    return be_.weights(t);
}

}  // namespace lf
