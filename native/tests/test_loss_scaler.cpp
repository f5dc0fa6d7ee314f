// The fp16 loss scaler's policy (src/cuda/loss_scaler.h) on the CPU backend: growth after
// growth_interval finite steps, back-off and skip on inf/NaN naming the first bad tensor, the
// floor at min_scale becoming an error, and the overflow event's fields.
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "backend.h"
#include "cuda/loss_scaler.h"
#include "json.h"

using namespace lf;

static int failures = 0;
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

int main() {
    auto be = make_cpu_backend();
    const size_t n = 64;
    float* g = be->alloc(n);
    std::vector<float> h(n, 1.0f);
    be->upload(g, h.data(), n);
    const std::vector<GradSlice> slices = {{"model.layers.0", "self_attn.q_proj.lora_A.weight", 0, 16},
                                           {"model.layers.0", "self_attn.q_proj.lora_B.weight", 16, 16},
                                           {"model.layers.1", "self_attn.v_proj.lora_A.weight", 32, 16},
                                           {"model.layers.1", "self_attn.v_proj.lora_B.weight", 48, 16}};
    LossScaleConfig c;
    c.init_scale = 1024;
    c.growth_interval = 3;
    c.min_scale = 256;
    LossScaler s(c);

    // finite steps: unscale is 1/scale; the scale doubles after 3 in a row
    for (int i = 0; i < 2; i++) {
        ScaleStep r = s.update(*be, g, n, slices);
        CHECK(!r.skip && r.scale == 1024 && r.next_scale == 1024 && r.unscale == 1.0 / 1024);
    }
    ScaleStep r = s.update(*be, g, n, slices);
    CHECK(!r.skip && r.scale == 1024 && r.next_scale == 2048);

    // an inf in layer 1's v_proj lora_B (and a NaN after it): skip, halve, name the first one
    h[50] = std::numeric_limits<float>::infinity();
    h[60] = std::numeric_limits<float>::quiet_NaN();
    be->upload(g, h.data(), n);
    r = s.update(*be, g, n, slices);
    CHECK(r.skip && r.scale == 2048 && r.next_scale == 1024 && s.skipped() == 1);
    CHECK(r.layer == "model.layers.1" && r.tensor == "self_attn.v_proj.lora_B.weight");
    Json ev = LossScaler::overflow_event(r, 7);
    const std::string js = json_dump(ev);
    CHECK(js.find("\"loss_scale\":2048") != std::string::npos);
    CHECK(js.find("\"tensor\":\"self_attn.v_proj.lora_B.weight\"") != std::string::npos);
    CHECK(js.find("\"layer\":\"model.layers.1\"") != std::string::npos);

    // an overflow resets the growth count: 2 finite steps do not grow
    h[50] = h[60] = 1.0f;
    be->upload(g, h.data(), n);
    s.update(*be, g, n, slices);
    r = s.update(*be, g, n, slices);
    CHECK(!r.skip && r.next_scale == 1024);

    // backing off to the floor, then overflowing at the floor: an EXIT_NUMERICS error naming it
    h[3] = std::numeric_limits<float>::quiet_NaN();
    be->upload(g, h.data(), n);
    r = s.update(*be, g, n, slices);  // 1024 -> 512
    CHECK(r.skip && r.next_scale == 512 && r.tensor == "self_attn.q_proj.lora_A.weight");
    r = s.update(*be, g, n, slices);  // 512 -> 256 (the floor)
    CHECK(r.skip && r.next_scale == 256);
    bool threw = false;
    try {
        s.update(*be, g, n, slices);
    } catch (const Error& e) {
        threw = e.code == EXIT_NUMERICS && e.layer == "model.layers.0" && e.tensor == "self_attn.q_proj.lora_A.weight";
    }
    CHECK(threw);

    // bad settings are refused with the field named
    bool refused = false;
    try {
        LossScaleConfig bad;
        bad.backoff_factor = 1.5;
        LossScaler x(bad);
    } catch (const Error& e) {
        refused = e.field == "training.lossScale";
    }
    CHECK(refused);
    be->free(g);
    if (failures) return 1;
    std::printf("loss scaler: ok\n");
    return 0;
}
