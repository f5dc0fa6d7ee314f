#include "optimizer.h"

#include <cmath>

namespace lf {

AdamW::AdamW(Backend& be, size_t n) : be_(be), n_(n) {
    m_ = be_.alloc(n);
    v_ = be_.alloc(n);
}
AdamW::~AdamW() {
    be_.free(m_);
    be_.free(v_);
}
void AdamW::update(float* params, const float* grads, double lr, const TrainingConfig& t) {
    step++;
    be_.adamw(params, grads, m_, v_, (int64_t)n_, lr, t.adam_beta1, t.adam_beta2, t.adam_epsilon, t.weight_decay, step);
}

double apply_update(Backend& be, Lora& lora, AdamW& opt, double loss, double lr, const TrainingConfig& t) {
    double total = 0;
    for (auto& s : lora.slots()) {
        total += be.sum_squares(lora.grads() + s.a_off, (size_t)lora.cfg().r * s.in);
        total += be.sum_squares(lora.grads() + s.b_off, (size_t)s.out * lora.cfg().r);
    }
    const double norm = std::sqrt(total);
    if (!std::isfinite(loss) || !std::isfinite(norm)) return norm;
    if (t.max_grad_norm > 0) {
        float coef = (float)t.max_grad_norm / ((float)norm + 1e-6f);
        if (coef < 1.0f) be.scale(lora.grads(), coef, lora.size());
    }
    opt.update(lora.params(), lora.grads(), lr, t);
    return norm;
}

}  // namespace lf
