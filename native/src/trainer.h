// The `train` and `bench` verbs: set up a run (backend, model, data, LoRA, optimizer), then the
// loop over optimizer steps with its evaluations, checkpoints, stop handling and the final
// adapter. The parts are in their own files: train_data.h (data and epoch order),
// train_step.h (one optimizer step, data-parallel replicas), optimizer.h (AdamW and the update),
// checkpoint.h, train_events.h (the events it emits).
#pragma once
#include <cstdint>

#include "run_config.h"

namespace lf {

struct TrainOptions {
    bool no_resume = false;
    bool check_numerics = false;
};
// the `train` verb; returns the exit code (events already emitted)
int run_train(const RunConfig& cfg, const TrainOptions& opt);
// the `bench` verb: one untimed warm-up step, then `steps` timed ones; no output written, one JSON line
int run_bench(const RunConfig& cfg, int64_t steps);

}  // namespace lf
