#include "model_dir.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "error.h"
#include "fsutil.h"
#include "json.h"

namespace lf {

namespace {
struct ConfigReader {
    const Json& j;
    const std::string& fn;
    const Json* get(const char* k) const {
        const Json* v = j.find(k);
        return (v && !v->is_null()) ? v : nullptr;
    }
    // a positive integer <= max (every size field has one: see the limits in parse_llama_config)
    int integer(const char* k, int def, bool required, int64_t max) const {
        const Json* v = get(k);
        if (!v) {
            if (required) throw invalid_input(fn, "missing required field", "", k);
            return def;
        }
        int64_t x;
        if (!v->get_i64(&x) || x <= 0) throw invalid_input(fn, "expected a positive integer, got " + json_dump(*v), "", k);
        if (x > max)
            throw invalid_input(fn, strprintf("%lld is larger than the supported maximum %lld", (long long)x, (long long)max), "", k);
        return (int)x;
    }
    double real(const char* k, double def) const {
        const Json* v = get(k);
        if (!v) return def;
        if (!v->is_number() || !std::isfinite(v->number)) throw invalid_input(fn, "expected a number, got " + json_dump(*v), "", k);
        return v->number;
    }
    bool boolean(const char* k, bool def) const {
        const Json* v = get(k);
        if (!v) return def;
        if (!v->is_bool()) throw invalid_input(fn, "expected true or false, got " + json_dump(*v), "", k);
        return v->boolean;
    }
};
}  // namespace

LlamaConfig parse_llama_config(const std::string& text, const std::string& fn) {
    Json j;
    std::string err;
    if (!json_parse(text.data(), text.size(), &j, &err)) throw invalid_input(fn, "bad JSON: " + err);
    if (!j.is_object()) throw invalid_input(fn, "bad JSON: expected an object at the top level");
    ConfigReader r{j, fn};
    LlamaConfig c;
    if (const Json* mt = r.get("model_type")) {
        if (!mt->is_string()) throw invalid_input(fn, "expected a string", "", "model_type");
        if (mt->text != "llama" && mt->text != "mistral")
            throw invalid_input(fn, "unsupported model_type '" + mt->text + "' (supported: llama, mistral)", "", "model_type");
        c.model_type = mt->text;
    }
    // Size limits: tens of times the largest Llama (hidden 16384, intermediate 53248, 126 layers,
    // 128 heads of 128, vocab 128256), yet small enough that every size the core derives from
    // them (heads x head_dim, rows x columns of a weight, B x T x width) fits its integer type;
    // without them heads x head_dim could wrap an int to the width of a small file's tensors and
    // the forward pass would read far past them.
    constexpr int64_t kMaxWidth = 1 << 18;         // hidden_size, heads x head_dim
    constexpr int64_t kMaxIntermediate = 1 << 20;  // intermediate_size
    constexpr int64_t kMaxLayers = 1 << 12;
    constexpr int64_t kMaxHeads = 1 << 14;
    constexpr int64_t kMaxHeadDim = 1 << 12;
    constexpr int64_t kMaxVocab = 1 << 24;
    constexpr int64_t kMaxPositions = 1 << 26;
    c.dim = r.integer("hidden_size", 0, true, kMaxWidth);
    c.hidden = r.integer("intermediate_size", 0, true, kMaxIntermediate);
    c.n_layers = r.integer("num_hidden_layers", 0, true, kMaxLayers);
    c.n_heads = r.integer("num_attention_heads", 0, true, kMaxHeads);
    c.n_kv_heads = r.integer("num_key_value_heads", c.n_heads, false, kMaxHeads);
    c.vocab = r.integer("vocab_size", 0, true, kMaxVocab);
    c.max_pos = r.integer("max_position_embeddings", 2048, false, kMaxPositions);
    if (c.dim % c.n_heads != 0 && !r.get("head_dim"))
        throw invalid_input(fn, "hidden_size is not a multiple of num_attention_heads and head_dim is not given", "", "hidden_size");
    c.head_dim = r.integer("head_dim", c.dim / c.n_heads, false, kMaxHeadDim);
    if (c.head_dim % 2) throw invalid_input(fn, "head_dim must be even for RoPE", "", "head_dim");
    const int64_t q_width = (int64_t)c.n_heads * c.head_dim;
    if (q_width > kMaxWidth)
        throw invalid_input(fn, strprintf("num_attention_heads x head_dim = %d x %d = %lld is larger than the supported maximum %lld",
                                          c.n_heads, c.head_dim, (long long)q_width, (long long)kMaxWidth), "", "num_attention_heads");
    if (c.n_heads % c.n_kv_heads)
        throw invalid_input(fn, "num_attention_heads must be a multiple of num_key_value_heads", "", "num_key_value_heads");
    c.eps = r.real("rms_norm_eps", 1e-6);
    c.rope_theta = r.real("rope_theta", 10000.0);
    if (c.rope_theta <= 0) throw invalid_input(fn, "must be positive", "", "rope_theta");
    c.tied = r.boolean("tie_word_embeddings", c.model_type == "llama" ? false : false);
    if (r.boolean("attention_bias", false)) throw invalid_input(fn, "attention_bias=true is not supported", "", "attention_bias");
    if (r.boolean("mlp_bias", false)) throw invalid_input(fn, "mlp_bias=true is not supported", "", "mlp_bias");
    if (const Json* act = r.get("hidden_act")) {
        if (!act->is_string() || act->text != "silu")
            throw invalid_input(fn, "unsupported activation " + json_dump(*act) + " (supported: \"silu\")", "", "hidden_act");
    }
    if (const Json* sw = r.get("sliding_window")) {
        int64_t x;
        if (!sw->get_i64(&x) || x <= 0) throw invalid_input(fn, "expected a positive integer or null", "", "sliding_window");
        c.sliding_window = (int)std::min<int64_t>(x, 1 << 30);
    }
    if (const Json* rs = r.get("rope_scaling")) {
        if (!rs->is_object()) throw invalid_input(fn, "expected an object or null", "", "rope_scaling");
        const Json* t = rs->find("rope_type");
        if (!t) t = rs->find("type");
        if (!t || !t->is_string()) throw invalid_input(fn, "missing rope_type", "", "rope_scaling.rope_type");
        if (t->text == "llama3") {
            ConfigReader rr{*rs, fn};
            c.rope_llama3 = true;
            c.rope_factor = rr.real("factor", 8.0);
            c.rope_low_freq_factor = rr.real("low_freq_factor", 1.0);
            c.rope_high_freq_factor = rr.real("high_freq_factor", 4.0);
            c.rope_original_max_pos = rr.integer("original_max_position_embeddings", 8192, true, kMaxPositions);
            if (c.rope_high_freq_factor <= c.rope_low_freq_factor)
                throw invalid_input(fn, "high_freq_factor must be larger than low_freq_factor", "", "rope_scaling.high_freq_factor");
        } else if (t->text != "default") {
            throw invalid_input(fn, "unsupported rope_type '" + t->text + "' (supported: default, llama3)", "", "rope_scaling.rope_type");
        }
    }
    return c;
}

// ---------------------------------------------------------------------------------------------

std::unique_ptr<LlamaWeights> load_llama(const std::string& dir) {
    auto w = std::make_unique<LlamaWeights>();
    w->dir = dir;
    std::string cfg_path = dir + "/config.json";
    if (!is_dir(dir)) throw invalid_input(dir, "model directory does not exist");
    if (!file_exists(cfg_path)) throw invalid_input(cfg_path, "missing config.json in the model directory");
    w->cfg = parse_llama_config(read_file(cfg_path), cfg_path);
    const LlamaConfig& c = w->cfg;

    // which file holds which tensor
    std::map<std::string, std::shared_ptr<SafetensorsFile>> where;
    std::string index_path = dir + "/model.safetensors.index.json";
    if (file_exists(index_path)) {
        std::string text = read_file(index_path);
        Json j;
        std::string err;
        if (!json_parse(text.data(), text.size(), &j, &err)) throw invalid_input(index_path, "bad JSON: " + err);
        const Json* wm = j.find("weight_map");
        if (!wm || !wm->is_object()) throw invalid_input(index_path, "missing 'weight_map' object", "", "weight_map");
        std::map<std::string, std::shared_ptr<SafetensorsFile>> opened;
        for (auto& kv : wm->fields) {
            if (!kv.second.is_string() || kv.second.text.find('/') != std::string::npos || kv.second.text.empty())
                throw invalid_input(index_path, "weight_map value must be a file name in the directory", kv.first, "weight_map");
            auto& f = opened[kv.second.text];
            if (!f) { f = SafetensorsFile::open(dir + "/" + kv.second.text); w->files.push_back(f); }
            if (!f->find(kv.first))
                throw invalid_input(f->filename(), "listed in model.safetensors.index.json but missing from the file", kv.first);
            where[kv.first] = f;
        }
    } else {
        std::string single = dir + "/model.safetensors";
        if (!file_exists(single)) throw invalid_input(dir, "no model.safetensors or model.safetensors.index.json in the model directory");
        auto f = SafetensorsFile::open(single);
        w->files.push_back(f);
        for (auto& t : f->tensors()) where[t.name] = f;
    }

    auto get = [&](const std::string& name, std::vector<int64_t> shape) -> FrozenTensor {
        auto it = where.find(name);
        if (it == where.end()) {
            std::string file = w->files.size() == 1 ? w->files[0]->filename() : index_path;
            throw invalid_input(file, "missing tensor (required by config.json)", name);
        }
        const TensorView* t = it->second->find(name);
        const std::string& fn = it->second->filename();
        if (t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
            throw invalid_input(fn, std::string("unsupported dtype ") + dtype_name(t->dtype) + " (supported: F32, F16, BF16)", name, "dtype");
        if (t->shape != shape) {
            TensorView want;
            want.shape = shape;
            throw invalid_input(fn, "shape " + t->shape_str() + " does not match config.json (expected " + want.shape_str() + ")", name, "shape");
        }
        w->n_params += t->numel();
        if (std::find(w->dtypes.begin(), w->dtypes.end(), t->dtype) == w->dtypes.end()) w->dtypes.push_back(t->dtype);
        return FrozenTensor{t->dtype, t->numel(), t->data};
    };
    int64_t C = c.dim, H = c.hidden;
    w->embed = get("model.embed_tokens.weight", {c.vocab, C});
    w->final_norm = get("model.norm.weight", {C});
    if (c.tied) {
        w->lm_head = w->embed;
    } else {
        w->lm_head = get("lm_head.weight", {c.vocab, C});
    }
    for (int l = 0; l < c.n_layers; l++) {
        std::string p = "model.layers." + std::to_string(l) + ".";
        LayerWeights L;
        L.in_norm = get(p + "input_layernorm.weight", {C});
        L.wq = get(p + "self_attn.q_proj.weight", {c.q_dim(), C});
        L.wk = get(p + "self_attn.k_proj.weight", {c.kv_dim(), C});
        L.wv = get(p + "self_attn.v_proj.weight", {c.kv_dim(), C});
        L.wo = get(p + "self_attn.o_proj.weight", {C, c.q_dim()});
        L.post_norm = get(p + "post_attention_layernorm.weight", {C});
        L.wg = get(p + "mlp.gate_proj.weight", {H, C});
        L.wu = get(p + "mlp.up_proj.weight", {H, C});
        L.wd = get(p + "mlp.down_proj.weight", {C, H});
        w->layers.push_back(L);
    }
    return w;
}

}  // namespace lf
