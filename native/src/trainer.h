// The training loop: data order, micro-batches and gradient accumulation, AdamW, schedules,
// clipping, validation, checkpoints and resume, the final adapter and its self-check.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "lora.h"
#include "model.h"
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

// AdamW state for the flat LoRA buffer
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

struct StepStats {
    double loss = 0;       // sum of token losses / unmasked tokens of the whole batch
    double grad_norm = 0;  // before clipping
    int64_t n_targets = 0;
    int64_t n_tokens = 0;  // all tokens of the batch
    bool stopped = false;  // a stop signal came between micro-batches: nothing applied, the step is to be redone
};

// One optimizer step over `batch` in micro-batches of `micro_bs` consecutive records. The
// loss and its gradient are normalized by the unmasked tokens of the whole batch
// (transformers' num_items_in_batch). `step` is 0-based: lr = learning_rate * lr_lambda(step).
// Returns with the update applied unless the loss or the gradient norm is not finite, or a stop
// signal arrived: that is checked after every micro-batch but the last, and a stopped step returns at once with
// `stopped` set and the LoRA parameters and optimizer state those of the previous step (only the
// gradient buffer, zeroed at the start of every step, holds the discarded partial sum).
StepStats train_step(Backend& be, Model& model, Lora& lora, AdamW& opt, const std::vector<RecordRef>& batch,
                     int micro_bs, double lr, const TrainingConfig& t, uint64_t dropout_key);

// Data parallelism inside a micro-batch: P model replicas (sharing the LoRA parameters, each
// with its own activations and gradient buffer) run contiguous slices of the micro-batch's
// rows on P threads, one coarse parallel region per micro-batch instead of one per op; the
// gradients are summed in replica order. Same P -> same bits; P = 1 is train_step above.
class Replicas {
public:
    Replicas(Backend& be, const LlamaWeights& w, Lora& lora, Model& primary, int P, int micro_bs, int max_len,
             bool check_numerics);
    ~Replicas();
    int size() const { return (int)models_.size(); }
    StepStats step(AdamW& opt, const std::vector<RecordRef>& batch, int micro_bs, double lr, const TrainingConfig& t,
                   uint64_t dropout_key);
    double evaluate(const std::vector<RecordRef>& recs, int micro_bs, int64_t* n_targets);
private:
    Backend& be_;
    Lora& lora_;
    std::vector<Model*> models_;
    std::vector<std::unique_ptr<Model>> owned_;
    std::vector<float*> grads_;
};

// mean loss over unmasked tokens of `recs`, no dropout
double evaluate(Model& model, const std::vector<RecordRef>& recs, int micro_bs, int64_t* n_targets);

extern std::atomic<int> g_stop_signal;  // set by SIGINT/SIGTERM
// after each micro-batch: true when a stop was asked for. Test hook: with
// LORAFORGE_TEST_SIGTERM_AFTER_MICRO_BATCH=k the process raises SIGTERM on itself once its k-th
// micro-batch (counted over the run, from 1) is done, so a test can stop a step exactly mid-way.
bool micro_batch_done_stop();

struct TrainOptions {
    bool no_resume = false;
    bool check_numerics = false;
    int64_t bench_steps = -1;  // >= 0: the bench verb (no output written, one JSON line)
};
// the `train` and `bench` verbs; returns the exit code (events already emitted)
int run_train(const RunConfig& cfg, const TrainOptions& opt);

}  // namespace lf
