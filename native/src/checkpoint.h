// Checkpoints of a training run (output_dir/checkpoints/checkpoint-<step>): the adapter, the
// optimizer state and trainer_state.json (step, data position, shuffle state, losses, config
// digest), written to a .tmp directory and renamed; the newest save_total_limit are kept.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "lora.h"
#include "model_dir.h"
#include "optimizer.h"
#include "rng.h"
#include "run_config.h"

namespace lf {

// what a checkpoint keeps of the loop besides the tensors
struct TrainState {
    int64_t step = 0;
    int64_t opt_step = 0;
    double loss_sum_all = 0;
    int64_t loss_count_all = 0;
    double loss_sum_since = 0;
    int64_t loss_count_since = 0;
    bool has_val = false;
    double val_loss = 0;
};

std::string checkpoint_root(const RunConfig& c);
std::string checkpoint_dir(const RunConfig& c, int64_t step);
std::vector<int64_t> list_checkpoints(const std::string& root);  // steps, ascending

// `be` holds the optimizer state (copied to the host to be written)
void save_checkpoint(Backend& be, const RunConfig& c, const LlamaConfig& mc, Lora& lora, AdamW& opt,
                     const TrainState& st, int64_t total_steps, int64_t steps_per_epoch, const Rng& shuffle_rng);
// on the save_steps schedule (a checkpoint written at a stop between saves is not)
bool scheduled_checkpoint(const RunConfig& c, int64_t step);
// keeps the newest save_total_limit scheduled checkpoints and the newest stop checkpoint while it
// is the newest of all (it is for resuming); `finished`: the run is done, no stop checkpoint stays
void prune_checkpoints(const RunConfig& c, bool finished);
// loads the newest checkpoint into lora, opt and *st; false when there is none
bool load_checkpoint(Backend& be, const RunConfig& c, Lora& lora, AdamW& opt, TrainState* st, std::string* path_out);

}  // namespace lf
