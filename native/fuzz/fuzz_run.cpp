// libFuzzer target: the run.json parser must reject any byte string with lf::Error and never
// crash, and whatever it accepts must satisfy what the trainer relies on (micro-batch within the
// batch, a known scheduler whose learning-rate multiplier is finite and within [0, 1]).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "error.h"
#include "run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        lf::RunConfig c = lf::parse_run_config(std::string((const char*)data, size), "fuzz/run.json");
        const lf::TrainingConfig& t = c.training;
        for (auto& p : c.train_shards) if (p.empty()) std::abort();
        for (auto& p : c.val_shards) if (p.empty()) std::abort();
        if (c.version != 1 || c.model_dir.empty() || c.output_dir.empty() || c.train_shards.empty() || t.micro_batch_size < 1 ||
            t.micro_batch_size > t.batch_size || c.lora.r < 1 || c.log_steps < 1 || c.save_total_limit < 1)
            std::abort();
        const int64_t total = t.max_steps > 0 ? t.max_steps : 1000;
        for (int64_t step : {(int64_t)0, (int64_t)t.warmup_steps, total / 2, total - 1, total}) {
            double m = lf::lr_lambda(t.scheduler, step, t.warmup_steps, total);
            if (!std::isfinite(m) || m < 0.0 || m > 1.0) std::abort();
        }
    } catch (const lf::Error&) {
    }
    return 0;
}
