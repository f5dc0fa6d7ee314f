// The trainer's data: token shards as records, the seeded order of each epoch, the batch of an
// optimizer step, and micro-batches right-padded with the targets of contract 3.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model.h"
#include "model_dir.h"
#include "rng.h"
#include "run_config.h"
#include "shard.h"

namespace lf {

struct RecordRef {
    const int32_t* tokens;
    const uint8_t* mask;
    int len;
};

// right-pads records to their longest; targets follow contract 3 (mask per token; mask[0] counts only in the step's denominator)
MicroBatch make_micro_batch(const std::vector<RecordRef>& recs);
int64_t count_targets(const std::vector<RecordRef>& recs);

// the records of some shards, checked against the model (non-empty, within max_position_embeddings)
struct Dataset {
    std::vector<Shard> shards;
    std::vector<RecordRef> records;
    int max_len = 1;
};
Dataset load_dataset(const std::vector<std::string>& paths, const LlamaConfig& mc);

// the order of the records in epoch `e`: seeded Fisher-Yates, then (group_by_length) HF's
// LengthGroupedSampler idea. *rng_out receives the shuffle generator's state after it.
std::vector<int> epoch_order(const std::vector<RecordRef>& recs, const TrainingConfig& t, int64_t e, Rng* rng_out);

// The batches of a run: step s is batch s % steps_per_epoch of epoch s / steps_per_epoch.
class EpochBatches {
public:
    EpochBatches(const Dataset& d, const TrainingConfig& t);
    int64_t steps_per_epoch() const { return spe_; }
    std::vector<RecordRef> batch(int64_t step);  // computes the epoch's order when the epoch changes
    // the shuffle generator as it was after the last epoch permutation (saved in checkpoints)
    const Rng& shuffle_rng() const { return rng_; }
private:
    const Dataset& d_;
    const TrainingConfig& t_;
    int64_t spe_;
    int64_t epoch_ = -1;
    std::vector<int> order_;
    Rng rng_;
};

}  // namespace lf
