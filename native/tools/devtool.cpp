// lf-devtool: makes the inputs the tests and benchmarks need, without Python:
//   random-model    a random Llama model directory (config.json + model.safetensors)
//   shard           a random token shard (.lfs)
//   convert-llama2c a llama2.c checkpoint (stories260K.bin) -> HF model directory
//   bad-inputs      a directory of broken models, configs and shards (one per bad-input test)
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "error.h"
#include "fsutil.h"
#include "json.h"
#include "rng.h"
#include "safetensors.h"
#include "shard.h"

using namespace lf;

namespace {

std::map<std::string, std::string> opts(int argc, char** argv) {
    std::map<std::string, std::string> m;
    for (int i = 2; i < argc; i++) {
        std::string k = argv[i];
        if (k.rfind("--", 0) != 0) throw usage_error("unexpected argument " + k);
        if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) m[k.substr(2)] = argv[++i];
        else m[k.substr(2)] = "1";
    }
    return m;
}
int geti(std::map<std::string, std::string>& m, const char* k, int def) { return m.count(k) ? std::stoi(m[k]) : def; }

struct ModelSpec {
    int dim = 32, hidden = 48, layers = 2, heads = 4, kv_heads = 2, vocab = 64, max_pos = 256;
    bool tied = true, llama3 = false;
    std::string dtype = "F32";
    uint64_t seed = 1;
};

Json config_json(const ModelSpec& s) {
    Json c = Json::object();
    c.set("architectures", Json::array().push(Json::of("LlamaForCausalLM")));
    c.set("model_type", Json::of("llama"));
    c.set("hidden_size", Json::of(s.dim));
    c.set("intermediate_size", Json::of(s.hidden));
    c.set("num_hidden_layers", Json::of(s.layers));
    c.set("num_attention_heads", Json::of(s.heads));
    c.set("num_key_value_heads", Json::of(s.kv_heads));
    c.set("vocab_size", Json::of(s.vocab));
    c.set("max_position_embeddings", Json::of(s.max_pos));
    c.set("rms_norm_eps", Json::of(1e-5));
    c.set("rope_theta", Json::of(10000.0));
    c.set("tie_word_embeddings", Json::of(s.tied));
    c.set("hidden_act", Json::of("silu"));
    c.set("bos_token_id", Json::of(1));
    c.set("eos_token_id", Json::of(2));
    c.set("torch_dtype", Json::of("float32"));
    if (s.llama3) {
        Json r = Json::object();
        r.set("rope_type", Json::of("llama3"));
        r.set("factor", Json::of(8.0));
        r.set("low_freq_factor", Json::of(1.0));
        r.set("high_freq_factor", Json::of(4.0));
        r.set("original_max_position_embeddings", Json::of(64));
        c.set("rope_scaling", r);
    }
    return c;
}

// name -> (shape, values)
using Tensors = std::vector<std::pair<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>>;

Tensors random_tensors(const ModelSpec& s) {
    Rng rng(s.seed);
    Tensors ts;
    int hd = s.dim / s.heads;
    auto add = [&](const std::string& n, std::vector<int64_t> shape, double stdv, double mean = 0) {
        int64_t k = 1;
        for (auto d : shape) k *= d;
        std::vector<float> v((size_t)k);
        for (auto& x : v) x = (float)(mean + stdv * rng.normal());
        ts.push_back({n, {shape, v}});
    };
    add("model.embed_tokens.weight", {s.vocab, s.dim}, 0.5);
    for (int l = 0; l < s.layers; l++) {
        std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", {s.dim}, 0.1, 1.0);
        add(p + "self_attn.q_proj.weight", {s.heads * hd, s.dim}, 0.5 / std::sqrt(s.dim));
        add(p + "self_attn.k_proj.weight", {s.kv_heads * hd, s.dim}, 0.5 / std::sqrt(s.dim));
        add(p + "self_attn.v_proj.weight", {s.kv_heads * hd, s.dim}, 1.0 / std::sqrt(s.dim));
        add(p + "self_attn.o_proj.weight", {s.dim, s.heads * hd}, 1.0 / std::sqrt(s.dim));
        add(p + "post_attention_layernorm.weight", {s.dim}, 0.1, 1.0);
        add(p + "mlp.gate_proj.weight", {s.hidden, s.dim}, 1.0 / std::sqrt(s.dim));
        add(p + "mlp.up_proj.weight", {s.hidden, s.dim}, 1.0 / std::sqrt(s.dim));
        add(p + "mlp.down_proj.weight", {s.dim, s.hidden}, 1.0 / std::sqrt(s.hidden));
    }
    add("model.norm.weight", {s.dim}, 0.1, 1.0);
    if (!s.tied) add("lm_head.weight", {s.vocab, s.dim}, 1.0 / std::sqrt(s.dim));
    return ts;
}

void write_model(const std::string& dir, const Json& cfg, const Tensors& ts, const std::string& dtype) {
    make_dirs(dir);
    write_file_atomic(dir + "/config.json", json_dump(cfg) + "\n");
    DType dt = dtype_from_name(dtype);
    std::vector<std::vector<uint16_t>> half;
    std::vector<TensorOut> outs;
    for (auto& t : ts) {
        if (dt == DType::F32) {
            outs.push_back({t.first, DType::F32, t.second.first, t.second.second.data()});
        } else {
            half.emplace_back(t.second.second.size());
            for (size_t i = 0; i < half.back().size(); i++)
                half.back()[i] = dt == DType::BF16 ? f32_to_bf16(t.second.second[i]) : f32_to_f16(t.second.second[i]);
            outs.push_back({t.first, dt, t.second.first, half.back().data()});
        }
    }
    save_safetensors(dir + "/model.safetensors", outs, {{"format", "pt"}});
}

ModelSpec spec_from(std::map<std::string, std::string>& o) {
    ModelSpec s;
    s.dim = geti(o, "dim", s.dim);
    s.hidden = geti(o, "hidden", s.hidden);
    s.layers = geti(o, "layers", s.layers);
    s.heads = geti(o, "heads", s.heads);
    s.kv_heads = geti(o, "kv-heads", s.heads);
    s.vocab = geti(o, "vocab", s.vocab);
    s.max_pos = geti(o, "max-pos", s.max_pos);
    s.tied = !o.count("untied");
    s.llama3 = o.count("llama3");
    s.seed = (uint64_t)geti(o, "seed", 1);
    if (o.count("dtype")) s.dtype = o["dtype"];
    return s;
}

void random_shard(const std::string& path, int vocab, int n, int min_len, int max_len, uint64_t seed, bool prompt_mask) {
    Rng rng(seed);
    std::vector<std::vector<int32_t>> toks;
    std::vector<std::vector<uint8_t>> masks;
    for (int i = 0; i < n; i++) {
        int len = min_len + (int)rng.below((uint64_t)(max_len - min_len + 1));
        std::vector<int32_t> t(len);
        std::vector<uint8_t> m(len, 1);
        for (auto& x : t) x = (int32_t)rng.below((uint64_t)vocab);
        if (prompt_mask) {
            int p = (int)rng.below((uint64_t)len / 2 + 1);
            for (int k = 0; k < p; k++) m[k] = 0;
        }
        toks.push_back(t);
        masks.push_back(m);
    }
    write_file_atomic(path, encode_shard((uint32_t)vocab, toks, masks));
}

// ------------------------------------------------------------------------------ llama2.c
void convert_llama2c(const std::string& bin, const std::string& out) {
    std::string b = read_file(bin);
    if (b.size() < 28) throw invalid_input(bin, "too small for a llama2.c header");
    int32_t h[7];
    std::memcpy(h, b.data(), 28);
    int dim = h[0], hidden = h[1], L = h[2], H = h[3], KV = h[4], vocab = std::abs(h[5]), seq = h[6];
    bool shared = h[5] > 0;
    int hd = dim / H;
    const float* p = (const float*)(b.data() + 28);
    size_t need = (size_t)vocab * dim + (size_t)L * dim * 2 + (size_t)L * dim * dim * 2 + (size_t)L * KV * hd * dim * 2 +
                  (size_t)L * hidden * dim * 3 + dim + (size_t)seq * hd;
    if (!shared) need += (size_t)vocab * dim;
    if ((b.size() - 28) / 4 < need) throw invalid_input(bin, "truncated llama2.c checkpoint");
    auto take = [&](size_t n) { std::vector<float> v(p, p + n); p += n; return v; };
    auto emb = take((size_t)vocab * dim);
    auto rms_att = take((size_t)L * dim);
    auto wq = take((size_t)L * dim * dim);
    auto wk = take((size_t)L * KV * hd * dim);
    auto wv = take((size_t)L * KV * hd * dim);
    auto wo = take((size_t)L * dim * dim);
    auto rms_ffn = take((size_t)L * dim);
    auto w1 = take((size_t)L * hidden * dim);
    auto w2 = take((size_t)L * dim * hidden);
    auto w3 = take((size_t)L * hidden * dim);
    auto rms_f = take(dim);
    take((size_t)seq * hd);  // legacy freq_cis tables
    std::vector<float> wcls;
    if (!shared) wcls = take((size_t)vocab * dim);
    // interleaved RoPE pairs -> HF rotate_half: rows [n, hd/2, 2] -> [n, 2, hd/2]
    auto permute = [&](const float* w, int nh) {
        std::vector<float> o((size_t)nh * hd * dim);
        for (int n = 0; n < nh; n++)
            for (int i = 0; i < hd / 2; i++)
                for (int two = 0; two < 2; two++)
                    std::memcpy(&o[((size_t)n * hd + two * (hd / 2) + i) * dim], &w[((size_t)n * hd + 2 * i + two) * dim], dim * 4);
        return o;
    };
    Tensors ts;
    ts.push_back({"model.embed_tokens.weight", {{vocab, dim}, emb}});
    for (int l = 0; l < L; l++) {
        std::string pre = "model.layers." + std::to_string(l) + ".";
        auto slice = [&](const std::vector<float>& v, size_t n) { return std::vector<float>(v.begin() + l * n, v.begin() + (l + 1) * n); };
        ts.push_back({pre + "input_layernorm.weight", {{dim}, slice(rms_att, dim)}});
        ts.push_back({pre + "self_attn.q_proj.weight", {{dim, dim}, permute(&wq[(size_t)l * dim * dim], H)}});
        ts.push_back({pre + "self_attn.k_proj.weight", {{KV * hd, dim}, permute(&wk[(size_t)l * KV * hd * dim], KV)}});
        ts.push_back({pre + "self_attn.v_proj.weight", {{KV * hd, dim}, slice(wv, (size_t)KV * hd * dim)}});
        ts.push_back({pre + "self_attn.o_proj.weight", {{dim, dim}, slice(wo, (size_t)dim * dim)}});
        ts.push_back({pre + "post_attention_layernorm.weight", {{dim}, slice(rms_ffn, dim)}});
        ts.push_back({pre + "mlp.gate_proj.weight", {{hidden, dim}, slice(w1, (size_t)hidden * dim)}});
        ts.push_back({pre + "mlp.down_proj.weight", {{dim, hidden}, slice(w2, (size_t)dim * hidden)}});
        ts.push_back({pre + "mlp.up_proj.weight", {{hidden, dim}, slice(w3, (size_t)hidden * dim)}});
    }
    ts.push_back({"model.norm.weight", {{dim}, rms_f}});
    if (!shared) ts.push_back({"lm_head.weight", {{vocab, dim}, wcls}});
    ModelSpec s;
    s.dim = dim; s.hidden = hidden; s.layers = L; s.heads = H; s.kv_heads = KV; s.vocab = vocab; s.max_pos = seq; s.tied = shared;
    write_model(out, config_json(s), ts, "F32");
}

// ------------------------------------------------------------------------------ bad inputs
void put_file(const std::string& path, const std::string& bytes) { write_file_atomic(path, bytes); }

std::string st_bytes(const std::string& header, const std::string& data) {
    std::string b;
    uint64_t n = header.size();
    for (int i = 0; i < 8; i++) b += (char)((n >> (8 * i)) & 0xFF);
    return b + header + data;
}

void bad_inputs(const std::string& out) {
    ModelSpec s;
    s.layers = 1;
    Json cfg = config_json(s);
    Tensors good = random_tensors(s);
    make_dirs(out);
    write_model(out + "/good", cfg, good, "F32");
    std::string model_bytes = read_file(out + "/good/model.safetensors");
    auto model_dir = [&](const std::string& name, const std::string& st, const std::string& config) {
        make_dirs(out + "/" + name);
        put_file(out + "/" + name + "/config.json", config);
        if (!st.empty()) put_file(out + "/" + name + "/model.safetensors", st);
    };
    std::string cfgs = json_dump(cfg);
    // truncated file: cut in the middle of the data
    model_dir("truncated", model_bytes.substr(0, model_bytes.size() / 2), cfgs);
    // header length larger than the file
    {
        std::string b = model_bytes;
        uint64_t huge = (uint64_t)b.size() * 4;
        std::memcpy(&b[0], &huge, 8);
        model_dir("header_len", b, cfgs);
    }
    model_dir("tiny", std::string("\x05\x00", 2), cfgs);
    // corrupt header JSON
    model_dir("bad_header_json", st_bytes("{\"a\": [1, 2", ""), cfgs);
    // offsets that lie: span does not match the shape
    {
        std::vector<float> d(s.dim, 1.0f);
        std::string data((const char*)d.data(), d.size() * 4);
        model_dir("offsets_lie", st_bytes("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[0,64]}}", data), cfgs);
        model_dir("offsets_past_end", st_bytes("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[64,192]}}", data), cfgs);
        // the tensors must tile the data exactly (as Python safetensors requires): overlaps, an alias,
        // gaps and bytes after the last tensor are refused
        auto two = [&](const std::string& name, uint64_t b1, uint64_t b2, size_t nbytes) {
            std::string h = strprintf("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[%llu,%llu]},"
                                      "\"model.layers.0.input_layernorm.weight\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[%llu,%llu]}}",
                                      (unsigned long long)b1, (unsigned long long)b1 + 128, (unsigned long long)b2, (unsigned long long)b2 + 128);
            model_dir(name, st_bytes(h, std::string(nbytes, '\0')), cfgs);
        };
        two("offsets_overlap", 64, 0, 192);
        two("offsets_alias", 0, 0, 128);
        two("offsets_gap", 192, 0, 320);
        two("offsets_trailing", 128, 0, 260);
        model_dir("offsets_leading_gap", st_bytes("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[8,136]}}", std::string(136, '\0')), cfgs);
    }
    // unsupported dtype: rewrite model.norm.weight as I32 bytes
    {
        Tensors t = good;
        std::vector<TensorOut> outs;
        std::vector<int32_t> ints(s.dim, 1);
        for (auto& x : t) {
            if (x.first == "model.norm.weight") outs.push_back({x.first, DType::I32, x.second.first, ints.data()});
            else outs.push_back({x.first, DType::F32, x.second.first, x.second.second.data()});
        }
        make_dirs(out + "/bad_dtype");
        put_file(out + "/bad_dtype/config.json", cfgs);
        save_safetensors(out + "/bad_dtype/model.safetensors", outs);
    }
    // shape != config, missing tensor
    {
        Tensors t = good;
        for (auto& x : t)
            if (x.first == "model.layers.0.self_attn.k_proj.weight") { x.second.first = {8, 64}; }
        write_model(out + "/bad_shape", cfg, t, "F32");
        Tensors m;
        for (auto& x : good) if (x.first != "model.layers.0.mlp.up_proj.weight") m.push_back(x);
        write_model(out + "/missing_tensor", cfg, m, "F32");
    }
    // config.json problems
    model_dir("bad_config_json", model_bytes, "{\"hidden_size\": 32,, }");
    {
        Json c = cfg;
        c.set("num_attention_heads", Json::of("four"));
        model_dir("bad_config_field", model_bytes, json_dump(c));
        Json c2 = cfg;
        Json rs = Json::object();
        rs.set("rope_type", Json::of("yarn"));
        c2.set("rope_scaling", rs);
        model_dir("bad_rope", model_bytes, json_dump(c2));
        // heads x head_dim = (2^29 + 4) x 8 = 2^32 + 32: wraps a 32-bit int to the 32 rows this
        // model's q_proj has, so only a 64-bit product refuses it
        Json c3 = cfg;
        c3.set("num_attention_heads", Json::of((int64_t)(1 << 29) + 4));
        c3.set("head_dim", Json::of((int64_t)8));
        model_dir("config_heads_wrap", model_bytes, json_dump(c3));
        Json c5 = cfg;  // each field within its limit, the product not
        c5.set("num_attention_heads", Json::of((int64_t)1024));
        c5.set("num_key_value_heads", Json::of((int64_t)1024));
        c5.set("head_dim", Json::of((int64_t)1024));
        model_dir("config_q_width", model_bytes, json_dump(c5));
        Json c4 = cfg;
        c4.set("vocab_size", Json::of((int64_t)1 << 30));
        model_dir("config_huge_vocab", model_bytes, json_dump(c4));
    }
    // sharded index pointing at a tensor the shard lacks
    {
        make_dirs(out + "/bad_index");
        put_file(out + "/bad_index/config.json", cfgs);
        put_file(out + "/bad_index/model-00001-of-00001.safetensors", model_bytes);
        Json idx = Json::object();
        Json wm = Json::object();
        for (auto& x : good) wm.set(x.first, Json::of("model-00001-of-00001.safetensors"));
        wm.set("model.layers.0.self_attn.z_proj.weight", Json::of("model-00001-of-00001.safetensors"));
        idx.set("weight_map", wm);
        put_file(out + "/bad_index/model.safetensors.index.json", json_dump(idx));
    }
    // shards
    std::vector<std::vector<int32_t>> toks = {{1, 5, 9, 3}, {1, 7, 7, 2, 4}};
    std::vector<std::vector<uint8_t>> masks = {{0, 1, 1, 1}, {0, 0, 1, 1, 1}};
    std::string sh = encode_shard((uint32_t)s.vocab, toks, masks);
    put_file(out + "/good.lfs", sh);
    {
        std::string b = sh;
        b[0] = 'X';
        put_file(out + "/bad_magic.lfs", b);
        b = sh;
        b[32 + 8 * 3 + 2] ^= 0x40;  // flip a bit in the tokens: CRC no longer matches
        put_file(out + "/bad_crc.lfs", b);
        put_file(out + "/truncated.lfs", sh.substr(0, sh.size() - 7));
        // offsets out of range, with a valid CRC
        std::vector<std::vector<int32_t>> t2 = toks;
        std::string c = encode_shard((uint32_t)s.vocab, t2, masks);
        uint64_t big = 1000;
        std::memcpy(&c[32 + 8], &big, 8);
        uint32_t crc = crc32_ieee((const uint8_t*)c.data(), c.size() - 4);
        std::memcpy(&c[c.size() - 4], &crc, 4);
        put_file(out + "/bad_offsets.lfs", c);
        // a token id >= the model's vocab (the shard claims a larger vocab)
        std::vector<std::vector<int32_t>> t3 = toks;
        t3[1][3] = s.vocab + 5;
        put_file(out + "/bad_token.lfs", encode_shard((uint32_t)s.vocab, t3, masks));
        put_file(out + "/bad_vocab.lfs", encode_shard((uint32_t)s.vocab + 100, toks, masks));
    }
    // run.json files: one per bad shard, plus bad run.json themselves
    auto run_json = [&](const std::string& name, const std::string& model, const std::string& shard, const std::string& extra) {
        std::string j = "{\"version\":1,\"model_dir\":\"" + out + "/" + model + "\",\"train_shards\":[\"" + out + "/" + shard +
                        "\"],\"output_dir\":\"" + out + "/out-" + name + "\",\"threads\":1,"
                        "\"lora\":{\"r\":2,\"alpha\":4,\"target_modules\":[\"q_proj\",\"v_proj\"]},"
                        "\"training\":{\"epochs\":1,\"batch_size\":2,\"micro_batch_size\":1,\"learning_rate\":0.01}" + extra + "}";
        put_file(out + "/run-" + name + ".json", j);
    };
    for (const char* n : {"bad_magic", "bad_crc", "truncated", "bad_offsets", "bad_token", "bad_vocab"})
        run_json(n, "good", std::string(n) + ".lfs", "");
    run_json("good", "good", "good.lfs", "");
    run_json("unknown_key", "good", "good.lfs", ",\"intervals\":{\"eval_step\":3}");
    run_json("bad_type", "good", "good.lfs", ",\"check_numerics\":\"yes\"");
    put_file(out + "/run-bad_json.json", "{\"version\": 1, \"model_dir\": }");
    // found by fuzz_run: an empty model_dir / shard path was accepted
    put_file(out + "/run-empty_model_dir.json", "{\"version\":1,\"model_dir\":\"\",\"train_shards\":[\"" + out +
             "/good.lfs\"],\"output_dir\":\"" + out + "/out-empty\"}");
    put_file(out + "/run-empty_shard.json", "{\"version\":1,\"model_dir\":\"" + out + "/good\",\"train_shards\":[\"\"],\"output_dir\":\"" +
             out + "/out-empty\"}");
    // a model whose layer 1 up_proj weight holds a NaN: the numerics tests
    {
        ModelSpec s2 = s;
        s2.layers = 2;
        Tensors t = random_tensors(s2);
        for (auto& x : t)
            if (x.first == "model.layers.1.mlp.up_proj.weight") x.second.second[5] = NAN;
        write_model(out + "/nan_model", config_json(s2), t, "F32");
        run_json("nan", "nan_model", "good.lfs", "");
        // the same on 2 replicas (threads 2, micro-batch 2): the error must keep its tensor and layer
        std::string j = read_file(out + "/run-nan.json");
        auto rep = [&](const std::string& a, const std::string& b) { j.replace(j.find(a), a.size(), b); };
        rep("\"threads\":1", "\"threads\":2");
        rep("\"micro_batch_size\":1", "\"micro_batch_size\":2");
        rep("out-nan", "out-nan-replicas");
        put_file(out + "/run-nan_replicas.json", j);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: lf-devtool random-model|shard|convert-llama2c|bad-inputs --out PATH [options]\n");
        return 2;
    }
    try {
        std::string cmd = argv[1];
        auto o = opts(argc, argv);
        if (!o.count("out")) throw usage_error("--out is required");
        if (cmd == "random-model") {
            ModelSpec s = spec_from(o);
            write_model(o["out"], config_json(s), random_tensors(s), s.dtype);
        } else if (cmd == "shard") {
            random_shard(o["out"], geti(o, "vocab", 64), geti(o, "records", 16), geti(o, "min-len", 4), geti(o, "max-len", 16),
                         (uint64_t)geti(o, "seed", 1), o.count("prompt-mask") > 0);
        } else if (cmd == "convert-llama2c") {
            convert_llama2c(o["bin"], o["out"]);
        } else if (cmd == "bad-inputs") {
            bad_inputs(o["out"]);
        } else {
            throw usage_error("unknown command " + cmd);
        }
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "lf-devtool: %s\n", e.what());
        return e.code;
    }
}
