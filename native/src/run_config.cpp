#include "run_config.h"

#include <cmath>
#include <set>

#include "error.h"
#include "fsutil.h"
#include "json.h"

namespace lf {

namespace {
struct Reader {
    const Json& obj;
    std::string prefix;  // "training."
    const std::string& fn;
    std::set<std::string> seen;

    std::string field(const char* k) const { return prefix + k; }
    const Json* get(const char* k) {
        seen.insert(k);
        return obj.find(k);
    }
    [[noreturn]] void bad(const char* k, const std::string& msg) { throw usage_error(msg, field(k), fn); }
    int64_t integer(const char* k, int64_t def, int64_t lo, int64_t hi) {
        const Json* v = get(k);
        if (!v) return def;
        int64_t x;
        if (!v->get_i64(&x)) bad(k, "expected an integer, got " + json_dump(*v));
        if (x < lo || x > hi) bad(k, strprintf("must be between %lld and %lld, got %lld", (long long)lo, (long long)hi, (long long)x));
        return x;
    }
    double real(const char* k, double def, double lo, double hi) {
        const Json* v = get(k);
        if (!v) return def;
        if (!v->is_number()) bad(k, "expected a number, got " + json_dump(*v));
        if (!(v->number >= lo && v->number <= hi)) bad(k, strprintf("must be between %g and %g, got %s", lo, hi, v->text.c_str()));
        return v->number;
    }
    bool boolean(const char* k, bool def) {
        const Json* v = get(k);
        if (!v) return def;
        if (!v->is_bool()) bad(k, "expected true or false, got " + json_dump(*v));
        return v->boolean;
    }
    std::string str(const char* k, const std::string& def, bool required = false) {
        const Json* v = get(k);
        if (!v) {
            if (required) bad(k, "missing required field");
            return def;
        }
        if (!v->is_string()) bad(k, "expected a string, got " + json_dump(*v));
        return v->text;
    }
    std::vector<std::string> strings(const char* k, bool required) {
        const Json* v = get(k);
        std::vector<std::string> out;
        if (!v) {
            if (required) bad(k, "missing required field");
            return out;
        }
        if (!v->is_array()) bad(k, "expected an array of strings");
        for (auto& x : v->items) {
            if (!x.is_string()) bad(k, "expected an array of strings, found " + json_dump(x));
            out.push_back(x.text);
        }
        return out;
    }
    const Json& object(const char* k) {
        const Json* v = get(k);
        static const Json empty = Json::object();
        if (!v) return empty;
        if (!v->is_object()) bad(k, "expected an object");
        return *v;
    }
    void no_unknown() {
        for (auto& kv : obj.fields)
            if (!seen.count(kv.first)) throw usage_error("unknown key", prefix + kv.first, fn);
    }
};

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) { h ^= c; h *= 1099511628211ull; }
    return h;
}
}  // namespace

RunConfig parse_run_config(const std::string& text, const std::string& fn) {
    Json j;
    std::string err;
    if (!json_parse(text.data(), text.size(), &j, &err)) throw usage_error("bad JSON: " + err, "", fn);
    if (!j.is_object()) throw usage_error("expected a JSON object", "", fn);
    RunConfig c;
    c.path = fn;
    Reader r{j, "", fn, {}};
    c.version = (int)r.integer("version", -1, 1, 1);
    if (c.version != 1) r.bad("version", "missing required field (must be 1)");
    c.model_dir = r.str("model_dir", "", true);
    c.train_shards = r.strings("train_shards", true);
    if (c.train_shards.empty()) r.bad("train_shards", "at least one training shard is required");
    c.val_shards = r.strings("val_shards", false);
    c.output_dir = r.str("output_dir", "", true);
    // an empty path would name the working directory (or nothing) instead of failing here (found by fuzz_run)
    if (c.model_dir.empty()) r.bad("model_dir", "must not be empty");
    if (c.output_dir.empty()) r.bad("output_dir", "must not be empty");
    for (const char* k : {"train_shards", "val_shards"})
        for (auto& p : std::string(k) == "train_shards" ? c.train_shards : c.val_shards)
            if (p.empty()) r.bad(k, "a shard path must not be empty");
    c.backend = r.str("backend", "cpu");
    c.threads = (int)r.integer("threads", 0, 0, 4096);
    c.base_model_name_or_path = r.str("base_model_name_or_path", c.model_dir);
    c.check_numerics = r.boolean("check_numerics", false);

    const Json& lj = r.object("lora");
    Reader lr{lj, "lora.", fn, {}};
    c.lora.r = (int)lr.integer("r", 8, 1, 4096);
    c.lora.alpha = lr.real("alpha", 16, 1e-9, 1e9);
    c.lora.dropout = lr.real("dropout", 0.0, 0.0, 0.99);
    std::vector<std::string> tm = lr.strings("target_modules", false);
    if (tm.empty()) tm = {"q_proj", "v_proj"};
    for (auto& name : tm) {
        int m = module_from_name(name);
        if (m < 0) lr.bad("target_modules", "unknown module '" + name + "' (supported: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)");
        c.lora.target[m] = true;
    }
    c.lora.rslora = lr.boolean("use_rslora", false);
    lr.no_unknown();

    const Json& tj = r.object("training");
    Reader tr{tj, "training.", fn, {}};
    TrainingConfig& t = c.training;
    t.epochs = (int)tr.integer("epochs", 1, 1, 1000000);
    t.max_steps = tr.integer("max_steps", 0, 0, (int64_t)1 << 40);
    t.learning_rate = tr.real("learning_rate", 3e-4, 0.0, 10.0);
    t.batch_size = (int)tr.integer("batch_size", 8, 1, 1 << 24);
    t.micro_batch_size = (int)tr.integer("micro_batch_size", t.batch_size, 1, 1 << 24);
    if (t.micro_batch_size > t.batch_size) tr.bad("micro_batch_size", "must not exceed batch_size");
    t.warmup_steps = (int)tr.integer("warmup_steps", 0, 0, 1 << 30);
    t.scheduler = tr.str("scheduler", "linear");
    if (t.scheduler != "linear" && t.scheduler != "cosine" && t.scheduler != "constant")
        tr.bad("scheduler", "must be one of linear, cosine, constant; got '" + t.scheduler + "'");
    t.weight_decay = tr.real("weight_decay", 0.0, 0.0, 10.0);
    t.adam_beta1 = tr.real("adam_beta1", 0.9, 0.0, 0.999999);
    t.adam_beta2 = tr.real("adam_beta2", 0.999, 0.0, 0.9999999);
    t.adam_epsilon = tr.real("adam_epsilon", 1e-8, 0.0, 1.0);
    t.max_grad_norm = tr.real("max_grad_norm", 1.0, 0.0, 1e9);
    t.seed = (uint64_t)tr.integer("seed", 42, 0, INT64_MAX);
    t.shuffle = tr.boolean("shuffle", true);
    t.group_by_length = tr.boolean("group_by_length", false);
    t.precision = tr.str("precision", "fp32");
    if (t.precision != "fp32" && t.precision != "fp16" && t.precision != "bf16")
        tr.bad("precision", "must be fp32, fp16 or bf16");
    if (c.backend == "cpu" && t.precision != "fp32")
        tr.bad("precision", "the cpu backend trains in fp32 only (fp16/bf16 need the cuda backend)");
    t.gradient_checkpointing = tr.boolean("gradient_checkpointing", false);
    tr.no_unknown();

    const Json& ij = r.object("intervals");
    Reader ir{ij, "intervals.", fn, {}};
    c.log_steps = (int)ir.integer("log_steps", 1, 1, 1 << 30);
    c.eval_steps = (int)ir.integer("eval_steps", 0, 0, 1 << 30);
    c.save_steps = (int)ir.integer("save_steps", 0, 0, 1 << 30);
    c.save_total_limit = (int)ir.integer("save_total_limit", 3, 1, 1 << 20);
    ir.no_unknown();
    r.no_unknown();
    if (c.backend != "cpu" && c.backend != "cuda") r.bad("backend", "must be cpu or cuda");

    // digest of everything that changes the numbers (not output_dir, threads, intervals)
    Json d = Json::object();
    d.set("model_dir", Json::of(c.model_dir));
    Json ts = Json::array();
    for (auto& s : c.train_shards) ts.push(Json::of(s));
    d.set("train_shards", ts);
    d.set("backend", Json::of(c.backend));
    d.set("lora", lj);
    d.set("training", tj);
    c.digest = strprintf("%016llx", (unsigned long long)fnv1a(json_dump(d)));
    return c;
}

RunConfig load_run_config(const std::string& path) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const Error& e) {
        throw usage_error(e.detail, "", path);
    }
    return parse_run_config(text, path);
}

double lr_lambda(const std::string& scheduler, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return (double)step / (double)std::max<int64_t>(1, warmup);
    if (scheduler == "constant") return 1.0;
    double rest = (double)std::max<int64_t>(1, total - warmup);
    if (scheduler == "cosine") {
        double progress = (double)(step - warmup) / rest;
        return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress)));
    }
    return std::max(0.0, (double)(total - step) / rest);
}

}  // namespace lf
