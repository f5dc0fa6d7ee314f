#include "lora.h"

#include <cmath>
#include <cstring>

#include "error.h"
#include "fsutil.h"
#include "json.h"
#include "safetensors.h"

namespace lf {

static const char* kModuleNames[N_MODULES] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

const char* module_name(int m) { return kModuleNames[m]; }
int module_from_name(const std::string& s) {
    for (int m = 0; m < N_MODULES; m++) if (s == kModuleNames[m]) return m;
    return -1;
}
std::string module_hf_path(int layer, int m) {
    return "model.layers." + std::to_string(layer) + (m <= MOD_O ? ".self_attn." : ".mlp.") + kModuleNames[m];
}
std::string peft_key(int layer, int m, bool is_b) {
    return "base_model.model." + module_hf_path(layer, m) + (is_b ? ".lora_B.weight" : ".lora_A.weight");
}
void module_dims(const LlamaConfig& c, int m, int* in, int* out) {
    switch (m) {
        case MOD_Q: *in = c.dim; *out = c.q_dim(); break;
        case MOD_K: case MOD_V: *in = c.dim; *out = c.kv_dim(); break;
        case MOD_O: *in = c.q_dim(); *out = c.dim; break;
        case MOD_GATE: case MOD_UP: *in = c.dim; *out = c.hidden; break;
        default: *in = c.hidden; *out = c.dim; break;
    }
}

double LoraConfig::scaling() const { return rslora ? alpha / std::sqrt((double)r) : alpha / r; }
std::vector<std::string> LoraConfig::target_names() const {
    std::vector<std::string> v;
    for (int m = 0; m < N_MODULES; m++) if (target[m]) v.push_back(kModuleNames[m]);
    return v;
}

Lora::Lora(Backend& be, const LlamaConfig& mc, const LoraConfig& cfg) : be_(be), cfg_(cfg) {
    index_.assign((size_t)mc.n_layers * N_MODULES, -1);
    for (int l = 0; l < mc.n_layers; l++) {
        for (int m = 0; m < N_MODULES; m++) {
            if (!cfg.target[m]) continue;
            LoraSlot s;
            s.layer = l;
            s.module = m;
            module_dims(mc, m, &s.in, &s.out);
            s.a_off = n_;
            n_ += (size_t)cfg.r * s.in;
            s.b_off = n_;
            n_ += (size_t)s.out * cfg.r;
            index_[l * N_MODULES + m] = (int)slots_.size();
            slots_.push_back(s);
        }
    }
    params_ = be_.alloc(n_);
    grads_ = be_.alloc(n_);
}
Lora::~Lora() {
    be_.free(params_);
    be_.free(grads_);
}

void Lora::init_peft(uint64_t seed) {
    std::vector<float> h(n_, 0.0f);
    Rng rng(seed);
    for (auto& s : slots_) {
        double bound = 1.0 / std::sqrt((double)s.in);
        for (size_t i = 0; i < (size_t)cfg_.r * s.in; i++) h[s.a_off + i] = (float)((2.0 * rng.uniform() - 1.0) * bound);
    }
    be_.upload(params_, h.data(), n_);
}
void Lora::zero_grads() { be_.zero(grads_, n_); }
std::vector<float> Lora::params_host() const {
    std::vector<float> h(n_);
    be_.download(h.data(), params_, n_);
    return h;
}
std::vector<float> Lora::grads_host() const {
    std::vector<float> h(n_);
    be_.download(h.data(), grads_, n_);
    return h;
}
void Lora::set_params_host(const std::vector<float>& v) {
    LF_ASSERT(v.size() == n_);
    be_.upload(params_, v.data(), n_);
}

// ---------------------------------------------------------------------------------------------
// PEFT adapter I/O

void save_adapter(const std::string& dir, const Lora& lora, int n_layers, const std::string& base_model_name) {
    (void)n_layers;
    make_dirs(dir);
    std::vector<float> h = lora.params_host();
    std::vector<TensorOut> ts;
    int r = lora.cfg().r;
    for (auto& s : lora.slots()) {
        ts.push_back({peft_key(s.layer, s.module, false), DType::F32, {r, s.in}, h.data() + s.a_off});
        ts.push_back({peft_key(s.layer, s.module, true), DType::F32, {s.out, r}, h.data() + s.b_off});
    }
    save_safetensors(dir + "/adapter_model.safetensors", ts, {{"format", "pt"}});
    const LoraConfig& c = lora.cfg();
    Json j = Json::object();
    j.set("peft_type", Json::of("LORA"));
    j.set("task_type", Json::of("CAUSAL_LM"));
    j.set("base_model_name_or_path", Json::of(base_model_name));
    j.set("r", Json::of(c.r));
    j.set("lora_alpha", Json::of(c.alpha));
    j.set("lora_dropout", Json::of(c.dropout));
    Json tm = Json::array();
    for (auto& n : c.target_names()) tm.push(Json::of(n));
    j.set("target_modules", tm);
    j.set("use_rslora", Json::of(c.rslora));
    j.set("bias", Json::of("none"));
    j.set("fan_in_fan_out", Json::of(false));
    j.set("inference_mode", Json::of(true));
    j.set("init_lora_weights", Json::of(true));
    j.set("modules_to_save", Json::null());
    write_file_atomic(dir + "/adapter_config.json", json_dump(j) + "\n");
}

void load_adapter_weights(const std::string& file, Lora& lora) {
    auto f = SafetensorsFile::open(file);
    std::vector<float> h(lora.size());
    int r = lora.cfg().r;
    size_t expected = 0;
    for (auto& s : lora.slots()) {
        for (int isb = 0; isb < 2; isb++) {
            std::string key = peft_key(s.layer, s.module, isb);
            const TensorView* t = f->find(key);
            if (!t) {
                // PEFT also writes keys without the ".default" adapter name; accept only the exact layout
                throw invalid_input(file, "missing adapter tensor", key);
            }
            std::vector<int64_t> want = isb ? std::vector<int64_t>{s.out, r} : std::vector<int64_t>{r, s.in};
            if (t->shape != want) {
                TensorView w;
                w.shape = want;
                throw invalid_input(file, "shape " + t->shape_str() + " != expected " + w.shape_str(), key, "shape");
            }
            float* dst = h.data() + (isb ? s.b_off : s.a_off);
            tensor_to_f32(*t, file, dst);
            for (int64_t i = 0; i < t->numel(); i++)
                if (!std::isfinite(dst[i])) throw invalid_input(file, "non-finite value in adapter tensor", key);
            expected++;
        }
    }
    if (f->tensors().size() != expected)
        throw invalid_input(file, strprintf("adapter has %zu tensors, expected %zu for the configured target modules",
                                            f->tensors().size(), expected));
    lora.set_params_host(h);
}

LoraConfig read_adapter_config(const std::string& dir) {
    std::string fn = dir + "/adapter_config.json";
    std::string text = read_file(fn);
    Json j;
    std::string err;
    if (!json_parse(text.data(), text.size(), &j, &err)) throw invalid_input(fn, "bad JSON: " + err);
    LoraConfig c;
    const Json* r = j.find("r");
    int64_t ri;
    if (!r || !r->get_i64(&ri) || ri <= 0) throw invalid_input(fn, "missing or invalid", "", "r");
    c.r = (int)ri;
    const Json* a = j.find("lora_alpha");
    if (!a || !a->is_number()) throw invalid_input(fn, "missing or invalid", "", "lora_alpha");
    c.alpha = a->number;
    const Json* rs = j.find("use_rslora");
    c.rslora = rs && rs->is_bool() && rs->boolean;
    const Json* tm = j.find("target_modules");
    if (!tm || !tm->is_array()) throw invalid_input(fn, "missing or not a list", "", "target_modules");
    for (auto& x : tm->items) {
        int m = x.is_string() ? module_from_name(x.text) : -1;
        if (m < 0) throw invalid_input(fn, "unsupported target module " + json_dump(x), "", "target_modules");
        c.target[m] = true;
    }
    const Json* ffo = j.find("fan_in_fan_out");
    if (ffo && ffo->is_bool() && ffo->boolean) throw invalid_input(fn, "fan_in_fan_out=true is not supported", "", "fan_in_fan_out");
    return c;
}

}  // namespace lf
