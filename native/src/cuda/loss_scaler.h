// Dynamic loss scaling for fp16 training (torch.cuda.amp.GradScaler's policy): the loss gradient
// is multiplied by `scale` so small fp16 gradients do not flush to zero; after the backward pass
// the LoRA gradients are checked once, on the device, for inf/NaN. A finite step is unscaled
// and taken, and after `growth_interval` finite steps in a row the scale grows; a step with an
// inf/NaN gradient is skipped and the scale backs off, and the report names the first layer and
// tensor that overflowed (the seed's DebugUnderflowOverflow question: "where did it blow up?")
// for the `overflow` event. A scale that has fallen to min_scale and still overflows is not
// an fp16 range problem any more: that is an error (EXIT_NUMERICS) naming the tensor.
//
// Backend-generic host code (it only calls Backend::all_finite); it lives beside the CUDA
// backend because fp16 exists only there. The trainer calls it once per optimizer step.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../backend.h"
#include "../error.h"
#include "../json.h"

namespace lf {

struct LossScaleConfig {
    double init_scale = 65536.0;  // 2^16, GradScaler's default
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    int growth_interval = 2000;
    double min_scale = 1.0;
    double max_scale = 16777216.0;  // 2^24: beyond it fp32 master gradients gain nothing
};

// one gradient tensor of the flat gradient buffer, for naming an overflow
struct GradSlice {
    std::string layer;   // "model.layers.31"
    std::string tensor;  // "self_attn.v_proj.lora_B.weight"
    size_t offset = 0;   // floats into the flat buffer
    size_t n = 0;
};

struct ScaleStep {
    bool skip = false;          // inf/NaN gradients: do not apply this step
    double scale = 0;           // the scale the step's gradients were computed with
    double next_scale = 0;      // the scale of the next step
    double unscale = 1;         // multiply the gradients by this before clipping and AdamW
    std::string layer, tensor;  // the first overflowing slice (when skip)
};

class LossScaler {
public:
    explicit LossScaler(LossScaleConfig c = {}) : c_(c), scale_(c.init_scale) {
        if (!(c.init_scale >= c.min_scale && c.min_scale > 0 && c.growth_factor >= 1 && c.backoff_factor > 0 &&
              c.backoff_factor < 1 && c.growth_interval > 0 && c.max_scale >= c.init_scale))
            throw usage_error("loss scaling: need 0 < min_scale <= init_scale <= max_scale, growth_factor >= 1, "
                              "0 < backoff_factor < 1, growth_interval > 0",
                              "training.lossScale");
    }
    double scale() const { return scale_; }
    int64_t skipped() const { return skipped_; }

    // After the backward pass of one optimizer step: grads is the flat gradient buffer (n
    // floats, scaled by scale()), slices its named parts in model order. One device check when
    // the step is finite; a walk over the slices only when it is not.
    ScaleStep update(Backend& be, const float* grads, size_t n, const std::vector<GradSlice>& slices) {
        ScaleStep s;
        s.scale = scale_;
        if (be.all_finite(grads, n)) {
            s.unscale = 1.0 / scale_;
            if (++good_ >= c_.growth_interval) {
                scale_ = std::min(scale_ * c_.growth_factor, c_.max_scale);
                good_ = 0;
            }
            s.next_scale = scale_;
            return s;
        }
        s.skip = true;
        skipped_++;
        good_ = 0;
        for (const GradSlice& g : slices) {
            if (g.offset + g.n > n) throw Error(EXIT_INTERNAL, "loss scaler: gradient slice " + g.tensor + " past the buffer");
            if (!be.all_finite(grads + g.offset, g.n)) {
                s.layer = g.layer;
                s.tensor = g.tensor;
                break;
            }
        }
        if (scale_ <= c_.min_scale)
            throw Error(EXIT_NUMERICS,
                        strprintf("fp16 gradients overflow even at the minimum loss scale %g: inf/NaN in %s %s is not a "
                                  "range problem (check the data and the learning rate, or train in bf16/fp32)",
                                  c_.min_scale, s.layer.c_str(), s.tensor.c_str()),
                        "", s.tensor, "", s.layer);
        scale_ = std::max(scale_ * c_.backoff_factor, c_.min_scale);
        s.next_scale = scale_;
        return s;
    }

    // the `overflow` event's fields (docs/CONTRACTS.md §2)
    static Json overflow_event(const ScaleStep& s, int64_t step) {
        Json j = Json::object();
        j.set("step", Json::of(step));
        j.set("loss_scale", Json::of(s.scale));
        j.set("next_loss_scale", Json::of(s.next_scale));
        j.set("layer", s.layer.empty() ? Json::null() : Json::of(s.layer));
        j.set("tensor", s.tensor.empty() ? Json::null() : Json::of(s.tensor));
        j.set("skipped", Json::of(true));
        return j;
    }

private:
    LossScaleConfig c_;
    double scale_;
    int good_ = 0;
    int64_t skipped_ = 0;
};

}  // namespace lf
