// The trainer's JSONL events (contract 2, docs/CONTRACTS.md), one typed emitter each, so the
// loop says what it reports and the field names live in one place.
#pragma once
#include <cstdint>
#include <string>

namespace lf {

struct StartEvent {
    std::string backend;
    int threads = 0;
    int n_layers = 0, dim = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0;
    int64_t n_params = 0, trainable_params = 0, train_examples = 0, val_examples = 0, total_steps = 0;
    int64_t resumed_from_step = 0;
};
struct StepEvent {
    int64_t step = 0, total_steps = 0;
    double epoch = 0, loss = 0, lr = 0, grad_norm = 0;
    int64_t tokens = 0;
    double tokens_per_s = 0, elapsed_s = 0, eta_s = 0;
};
struct EvalEvent {
    int64_t step = 0;
    double val_loss = 0;
    int64_t val_tokens = 0;
};
struct CheckpointEvent {
    int64_t step = 0;
    std::string path;
    double train_loss = 0;
    bool has_val = false;
    double val_loss = 0;
};
struct DoneEvent {
    int64_t step = 0;
    std::string adapter_dir;
    double train_loss = 0;
    bool has_val = false;
    double val_loss = 0;
    double elapsed_s = 0;
};
// the bench verb's one line (not an event: no "event"/"time" fields)
struct BenchResult {
    std::string backend;
    int threads = 0;
    int64_t warmup_steps = 0, timed_steps = 0, tokens = 0;
    double seconds = 0, peak_rss_mb = 0;
    int64_t trainable_params = 0;
    double first_loss = 0, last_loss = 0;
};

void emit(const StartEvent& e);
void emit(const StepEvent& e);
void emit(const EvalEvent& e);
void emit(const CheckpointEvent& e);
void emit(const DoneEvent& e);
void print(const BenchResult& r);

}  // namespace lf
