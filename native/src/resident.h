// The frozen base weights as one backend sees them: each tensor taken with Backend::weights()
// once, and given back with release_weights() when this goes. The training pass (model.h) and
// the inference pass (decoder.h) each hold one.
#pragma once
#include <vector>

#include "backend.h"
#include "model_dir.h"

namespace lf {

using ResidentLayer = LayerOf<const float*>;

class ResidentWeights {
public:
    ResidentWeights(Backend& be, const LlamaWeights& w);
    ~ResidentWeights();
    ResidentWeights(const ResidentWeights&) = delete;
    ResidentWeights& operator=(const ResidentWeights&) = delete;

    const float *embed = nullptr, *final_norm = nullptr, *lm_head = nullptr;  // lm_head == embed when tied
    std::vector<ResidentLayer> layers;

private:
    const float* hold(const FrozenTensor& t);
    Backend& be_;
    std::vector<const void*> held_;  // every tensor taken with weights(), for release_weights()
};

}  // namespace lf
