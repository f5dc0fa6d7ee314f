// run.json (docs/CONTRACTS.md §2, version 1): parsed strictly, unknown keys are an error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lora.h"

namespace lf {

struct TrainingConfig {
    int epochs = 1;
    int64_t max_steps = 0;
    double learning_rate = 3e-4;
    int batch_size = 8;
    int micro_batch_size = 8;
    int warmup_steps = 0;
    std::string scheduler = "linear";  // linear | cosine | constant
    double weight_decay = 0.0, adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
    double max_grad_norm = 1.0;  // <= 0 disables clipping
    uint64_t seed = 42;
    bool shuffle = true, group_by_length = false;
    std::string precision = "fp32";
    bool gradient_checkpointing = false;
};

struct RunConfig {
    std::string path;  // where it was read from
    int version = 1;
    std::string model_dir;
    std::vector<std::string> train_shards, val_shards;
    std::string output_dir;
    std::string backend = "cpu";
    int threads = 0;
    std::string base_model_name_or_path;
    LoraConfig lora;
    TrainingConfig training;
    int log_steps = 1, eval_steps = 0, save_steps = 0, save_total_limit = 3;
    bool check_numerics = false;
    std::string digest;  // of everything that changes the numbers of a run
};

RunConfig parse_run_config(const std::string& text, const std::string& filename);
RunConfig load_run_config(const std::string& path);

// learning-rate multiplier of HF's schedulers (get_linear_schedule_with_warmup, ...) for the
// 0-based optimizer step
double lr_lambda(const std::string& scheduler, int64_t step, int64_t warmup, int64_t total);

}  // namespace lf
