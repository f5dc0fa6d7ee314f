#include "merge.h"

#include <cstring>
#include <map>

#include "backend.h"
#include "error.h"
#include "events.h"
#include "fsutil.h"
#include "json.h"
#include "lora.h"
#include "model_dir.h"
#include "safetensors.h"

namespace lf {

void merge_adapter(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir) {
    auto be = make_cpu_backend();
    auto w = load_llama(model_dir);  // validates every tensor
    LoraConfig lc = read_adapter_config(adapter_dir);
    Lora lora(*be, w->cfg, lc);
    load_adapter_weights(adapter_dir + "/adapter_model.safetensors", lora);
    std::vector<float> p = lora.params_host();
    const double sc = lc.scaling();

    // the merged deltas, by HF tensor name
    std::map<std::string, const LoraSlot*> slot_of;
    for (auto& s : lora.slots()) slot_of[module_hf_path(s.layer, s.module) + ".weight"] = &s;

    std::vector<std::vector<uint8_t>> storage;
    std::vector<TensorOut> outs;
    for (auto& f : w->files) {
        for (auto& t : f->tensors()) {
            auto it = slot_of.find(t.name);
            if (it == slot_of.end()) {
                outs.push_back({t.name, t.dtype, t.shape, t.data});
                continue;
            }
            const LoraSlot& s = *it->second;
            std::vector<float> W((size_t)t.numel());
            tensor_to_f32(t, f->filename(), W.data());
            const float* A = p.data() + s.a_off;  // [r, in]
            const float* B = p.data() + s.b_off;  // [out, r]
            for (int o = 0; o < s.out; o++)
                for (int i = 0; i < s.in; i++) {
                    double acc = 0;
                    for (int k = 0; k < lc.r; k++) acc += (double)B[(size_t)o * lc.r + k] * A[(size_t)k * s.in + i];
                    W[(size_t)o * s.in + i] += (float)(sc * acc);
                }
            storage.emplace_back(W.size() * dtype_size(t.dtype));
            uint8_t* dst = storage.back().data();
            for (size_t i = 0; i < W.size(); i++) {
                if (t.dtype == DType::F32) std::memcpy(dst + 4 * i, &W[i], 4);
                else {
                    uint16_t h = t.dtype == DType::BF16 ? f32_to_bf16(W[i]) : f32_to_f16(W[i]);
                    std::memcpy(dst + 2 * i, &h, 2);
                }
            }
            outs.push_back({t.name, t.dtype, t.shape, dst});
            slot_of.erase(it);
        }
    }
    if (!slot_of.empty()) throw invalid_input(model_dir, "adapter targets a tensor the model does not have", slot_of.begin()->first);
    make_dirs(out_dir);
    save_safetensors(out_dir + "/model.safetensors", outs, {{"format", "pt"}});
    // config and tokenizer files travel with the weights
    for (auto& name : list_dir(model_dir)) {
        bool weights = name.find(".safetensors") != std::string::npos;
        if (weights || is_dir(model_dir + "/" + name)) continue;
        write_file_atomic(out_dir + "/" + name, read_file(model_dir + "/" + name));
    }
    log_info("merged %zu LoRA tensors into %s/model.safetensors", lora.slots().size(), out_dir.c_str());
}

}  // namespace lf
