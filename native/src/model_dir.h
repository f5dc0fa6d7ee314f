// A Hugging Face Llama/Mistral model directory: config.json and *.safetensors (single file or
// sharded through model.safetensors.index.json). Weights stay as stored (F32, F16 or BF16, in
// the memory map): each backend makes them resident in its own form (backend.h weights()).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "safetensors.h"

namespace lf {

struct LlamaConfig {
    std::string model_type = "llama";
    int dim = 0;          // hidden_size
    int hidden = 0;       // intermediate_size
    int n_layers = 0;     // num_hidden_layers
    int n_heads = 0;      // num_attention_heads
    int n_kv_heads = 0;   // num_key_value_heads
    int head_dim = 0;     // head_dim (default hidden_size / num_attention_heads)
    int vocab = 0;        // vocab_size
    int max_pos = 2048;   // max_position_embeddings
    double eps = 1e-6;    // rms_norm_eps
    double rope_theta = 10000.0;
    bool tied = false;    // tie_word_embeddings
    int sliding_window = 0;  // Mistral; 0 = none
    // rope_scaling {"rope_type": "llama3", ...}
    bool rope_llama3 = false;
    double rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
    int rope_original_max_pos = 8192;

    int q_dim() const { return n_heads * head_dim; }
    int kv_dim() const { return n_kv_heads * head_dim; }
};

LlamaConfig parse_llama_config(const std::string& text, const std::string& filename);

// one decoder layer's frozen tensors: FrozenTensor as stored, const float* as a backend holds them
template <class W>
struct LayerOf {
    W in_norm, wq, wk, wv, wo, post_norm, wg, wu, wd;
};
using LayerWeights = LayerOf<FrozenTensor>;

struct LlamaWeights {
    LlamaConfig cfg;
    std::string dir;
    FrozenTensor embed;       // [vocab, dim]
    FrozenTensor final_norm;  // [dim]
    FrozenTensor lm_head;     // [vocab, dim] (= embed when tied)
    std::vector<LayerWeights> layers;
    int64_t n_params = 0;
    std::vector<DType> dtypes;  // the distinct types of the tensors above (what supports_op is asked for)
    // storage: the memory maps the tensors point into
    std::vector<std::shared_ptr<SafetensorsFile>> files;
};

// Loads and checks every tensor (presence, dtype, shape vs config). Throws lf::Error (exit 3).
std::unique_ptr<LlamaWeights> load_llama(const std::string& dir);

}  // namespace lf
