// One optimizer step over a batch (micro-batches, gradient accumulation, the update), and the
// validation loss. The models a step runs are a DataParallel group: one model, or as many
// replicas as the backend runs at once (Backend::replicas_for: the CPU backend's data
// parallelism, one replica per thread), each over a contiguous slice of every micro-batch.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "lora.h"
#include "model.h"
#include "optimizer.h"
#include "run_config.h"
#include "train_data.h"

namespace lf {

// P models sharing the LoRA parameters. Replica 0 is `primary`; with P > 1 each replica has its
// own activations and gradient buffer, runs rows [n p / P, n (p+1) / P) of a micro-batch of n
// rows on the backend's replica p, and the gradients are summed in replica order after the
// batch. Same P -> same bits; P = 1 runs `primary` alone into lora.grads().
class DataParallel {
public:
    DataParallel(Backend& be, const LlamaWeights& w, Lora& lora, Model& primary, int P, int micro_bs, int max_len);
    ~DataParallel();
    DataParallel(const DataParallel&) = delete;
    DataParallel& operator=(const DataParallel&) = delete;
    int size() const { return (int)models_.size(); }
    // zero the gradient buffers a step accumulates into
    void zero_grads();
    // forward (+ backward) of one micro-batch over the replicas; k numbers it within the step
    PassResult run(const std::vector<RecordRef>& part, bool backward, double grad_scale, uint64_t dropout_key, uint64_t k);
    // lora.grads() = the sum of the replicas' gradients (nothing to do for P = 1)
    void reduce_grads();
private:
    Backend& be_;
    Lora& lora_;
    std::vector<Model*> models_;
    std::vector<std::unique_ptr<Model>> owned_;
    std::vector<float*> grads_;
};

struct StepStats {
    double loss = 0;       // sum of token losses / unmasked tokens of the whole batch
    double grad_norm = 0;  // before clipping
    int64_t n_targets = 0;
    int64_t n_tokens = 0;  // all tokens of the batch
    bool stopped = false;  // a stop signal came between micro-batches: nothing applied, the step is to be redone
};

// One optimizer step over `batch` in micro-batches of `micro_bs` consecutive records. The
// loss and its gradient are normalized by the unmasked tokens of the whole batch
// (transformers' num_items_in_batch). lr is this step's learning rate.
// Returns with the update applied unless the loss or the gradient norm is not finite, or a stop
// signal arrived: that is checked after every micro-batch but the last, and a stopped step returns at once with
// `stopped` set and the LoRA parameters and optimizer state those of the previous step (only the
// gradient buffers, zeroed at the start of every step, hold the discarded partial sum).
StepStats train_step(Backend& be, DataParallel& models, Lora& lora, AdamW& opt, const std::vector<RecordRef>& batch,
                     int micro_bs, double lr, const TrainingConfig& t, uint64_t dropout_key);
// the same with one model
StepStats train_step(Backend& be, Model& model, Lora& lora, AdamW& opt, const std::vector<RecordRef>& batch,
                     int micro_bs, double lr, const TrainingConfig& t, uint64_t dropout_key);

// mean loss over unmasked tokens of `recs`, no dropout
double evaluate(DataParallel& models, const std::vector<RecordRef>& recs, int micro_bs, int64_t* n_targets);

extern std::atomic<int> g_stop_signal;  // set by SIGINT/SIGTERM
// after each micro-batch: true when a stop was asked for. Test hook: with
// LORAFORGE_TEST_SIGTERM_AFTER_MICRO_BATCH=k the process raises SIGTERM on itself once its k-th
// micro-batch (counted over the run, from 1) is done, so a test can stop a step exactly mid-way.
bool micro_batch_done_stop();

}  // namespace lf
