// LoRA adapters in PEFT's layout: for each targeted Linear, A [r, in] and B [out, r];
// y = W x + scaling * B A dropout(x), scaling = alpha / r (alpha / sqrt(r) with rsLoRA).
// All A/B tensors live in one flat buffer (and the gradients in a second one of the same
// layout), layer-major, modules in the order q,k,v,o,gate,up,down, A before B.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "model_dir.h"
#include "rng.h"

namespace lf {

enum Module { MOD_Q, MOD_K, MOD_V, MOD_O, MOD_GATE, MOD_UP, MOD_DOWN, N_MODULES };
const char* module_name(int m);          // "q_proj"
int module_from_name(const std::string& s);  // -1 if unknown
std::string module_hf_path(int layer, int m);  // "model.layers.3.self_attn.q_proj"
std::string peft_key(int layer, int m, bool is_b);  // "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
void module_dims(const LlamaConfig& c, int m, int* in, int* out);

struct LoraConfig {
    int r = 8;
    double alpha = 16;
    double dropout = 0;
    bool target[N_MODULES] = {};
    bool rslora = false;
    double scaling() const;
    std::vector<std::string> target_names() const;
};

struct LoraSlot {
    int layer, module, in, out;
    size_t a_off, b_off;  // A [r, in] at a_off, B [out, r] at b_off (in floats)
};

class Lora {
public:
    Lora(Backend& be, const LlamaConfig& mc, const LoraConfig& cfg);
    ~Lora();
    Lora(const Lora&) = delete;
    Lora& operator=(const Lora&) = delete;

    const LoraConfig& cfg() const { return cfg_; }
    const std::vector<LoraSlot>& slots() const { return slots_; }
    const LoraSlot* slot(int layer, int m) const {
        int i = index_[layer * N_MODULES + m];
        return i < 0 ? nullptr : &slots_[i];
    }
    int slot_index(int layer, int m) const { return index_[layer * N_MODULES + m]; }
    size_t size() const { return n_; }  // number of trainable parameters
    float* params() { return params_; }
    float* grads() { return grads_; }
    const float* params() const { return params_; }

    // PEFT init: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0
    void init_peft(uint64_t seed);
    void zero_grads();
    // host copies
    std::vector<float> params_host() const;
    std::vector<float> grads_host() const;
    void set_params_host(const std::vector<float>& v);

private:
    Backend& be_;
    LoraConfig cfg_;
    std::vector<LoraSlot> slots_;
    std::vector<int> index_;
    size_t n_ = 0;
    float* params_ = nullptr;
    float* grads_ = nullptr;
};

// PEFT adapter directory (contract 4)
void save_adapter(const std::string& dir, const Lora& lora, int n_layers, const std::string& base_model_name);
// reads adapter_model.safetensors into `lora` (which must have the same config); checks keys,
// shapes, dtype, finiteness; throws lf::Error naming the file and tensor
void load_adapter_weights(const std::string& file, Lora& lora);
// reads adapter_config.json into a LoraConfig
LoraConfig read_adapter_config(const std::string& dir);

}  // namespace lf
