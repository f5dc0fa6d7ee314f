// AdamW over the flat LoRA buffer, and the one update every optimizer step ends with.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend.h"
#include "lora.h"
#include "run_config.h"

namespace lf {

// AdamW state for the flat LoRA buffer (backend memory)
class AdamW {
public:
    AdamW(Backend& be, size_t n);
    ~AdamW();
    AdamW(const AdamW&) = delete;
    AdamW& operator=(const AdamW&) = delete;
    float* m() { return m_; }
    float* v() { return v_; }
    int64_t step = 0;  // number of updates done
    void update(float* params, const float* grads, double lr, const TrainingConfig& t);
    size_t size() const { return n_; }
private:
    Backend& be_;
    size_t n_;
    float *m_, *v_;
};

// The end of an optimizer step, once lora.grads() holds the batch's gradient: the global grad
// norm (the norm of the per-tensor norms, as torch.nn.utils.clip_grad_norm_), then, when the
// loss and the norm are finite, clipping to t.max_grad_norm and the AdamW update. Returns the
// norm before clipping; nothing is applied when it or `loss` is not finite.
double apply_update(Backend& be, Lora& lora, AdamW& opt, double loss, double lr, const TrainingConfig& t);

}  // namespace lf
