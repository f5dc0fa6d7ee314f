#include "generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>

#include "decoder.h"
#include "error.h"
#include "events.h"
#include "fsutil.h"
#include "json.h"
#include "lora.h"
#include "model_dir.h"

namespace lf {

// ---------------------------------------------------------------------------------------------
// options

const std::vector<std::string>& generate_value_options() {
    static const std::vector<std::string> v = {"--model", "--adapter", "--prompts", "--variants", "--max-new-tokens",
                                               "--batch-size", "--threads", "--temperature", "--top-k", "--top-p",
                                               "--repetition-penalty", "--seed", "--stop-tokens"};
    return v;
}
const std::vector<std::string>& score_value_options() {
    static const std::vector<std::string> v = {"--model", "--adapter", "--examples", "--variants", "--batch-size",
                                               "--threads"};
    return v;
}

namespace {
std::string opt_field(const std::string& name) { return name.substr(2); }

int64_t parse_int(const std::string& name, const std::string& s, int64_t lo, int64_t hi) {
    char* end = nullptr;
    errno = 0;
    long long v = s.empty() ? 0 : std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
        throw usage_error(strprintf("%s must be an integer in [%lld, %lld], got '%s'", name.c_str(), (long long)lo,
                                    (long long)hi, s.c_str()),
                          opt_field(name));
    return v;
}
double parse_real(const std::string& name, const std::string& s, double lo, double hi, bool lo_open = false) {
    char* end = nullptr;
    double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v) || v < lo || (lo_open && v == lo) || v > hi)
        throw usage_error(strprintf("%s must be a number in %c%g, %g], got '%s'", name.c_str(), lo_open ? '(' : '[',
                                    lo, hi, s.c_str()),
                          opt_field(name));
    return v;
}
std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t i = 0;
    while (true) {
        size_t j = s.find(sep, i);
        out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
        if (j == std::string::npos) return out;
        i = j + 1;
    }
}
}  // namespace

InferenceOptions parse_inference_options(bool generate, const std::vector<std::pair<std::string, std::string>>& opts,
                                         bool stream) {
    InferenceOptions o;
    std::string variants;
    for (auto& kv : opts) {
        const std::string& k = kv.first;
        const std::string& v = kv.second;
        if (k == "--model") o.model_dir = v;
        else if (k == "--adapter") o.adapter_dir = v;
        else if (k == "--prompts" || k == "--examples") o.input = v;
        else if (k == "--variants") variants = v;
        else if (k == "--batch-size") o.batch_size = (int)parse_int(k, v, 1, 4096);
        else if (k == "--threads") o.threads = (int)parse_int(k, v, 0, 4096);
        else if (k == "--max-new-tokens") o.gen.max_new_tokens = (int)parse_int(k, v, 1, 1 << 20);
        else if (k == "--temperature") o.gen.sampling.temperature = parse_real(k, v, 0, 1e6);
        else if (k == "--top-k") o.gen.sampling.top_k = (int)parse_int(k, v, 0, 1 << 30);
        else if (k == "--top-p") o.gen.sampling.top_p = parse_real(k, v, 0, 1, true);
        else if (k == "--repetition-penalty") o.gen.sampling.repetition_penalty = parse_real(k, v, 0, 1e6, true);
        else if (k == "--seed") o.gen.sampling.seed = (uint64_t)parse_int(k, v, 0, INT64_MAX);
        else if (k == "--stop-tokens") {
            o.stop_tokens_given = true;
            if (!v.empty())
                for (auto& part : split(v, ',')) o.gen.stop_tokens.push_back((int)parse_int(k, part, 0, INT32_MAX));
        }
    }
    const char* input_opt = generate ? "--prompts" : "--examples";
    if (o.model_dir.empty()) throw usage_error("missing --model", "model");
    if (o.input.empty()) throw usage_error(std::string("missing ") + input_opt, opt_field(input_opt));
    if (variants.empty()) variants = o.adapter_dir.empty() ? "base" : "adapter";
    for (auto& name : split(variants, ',')) {
        if (name != "base" && name != "adapter")
            throw usage_error("--variants: unknown variant '" + name + "' (base, adapter)", "variants");
        if (std::find(o.variants.begin(), o.variants.end(), name) != o.variants.end())
            throw usage_error("--variants: '" + name + "' given twice", "variants");
        if (name == "adapter" && o.adapter_dir.empty())
            throw usage_error("--variants adapter needs --adapter DIR", "variants");
        o.variants.push_back(name);
    }
    o.stream = stream;
    return o;
}

// ---------------------------------------------------------------------------------------------
// input

namespace {

struct Example {
    std::string id;
    int line = 0;
    std::vector<int> prompt, target;  // target: score only
};

std::vector<int> read_ids(const std::string& file, int line, const Json& obj, const char* key, int vocab) {
    const Json* a = obj.find(key);
    auto bad = [&](const std::string& msg) {
        return invalid_input(file, strprintf("line %d: field '%s': %s", line, key, msg.c_str()));
    };
    if (!a) throw bad("missing");
    if (!a->is_array()) throw bad("expected an array of token ids, got " + json_type_name(*a));
    if (a->items.empty()) throw bad("empty: at least one token is needed");
    std::vector<int> ids;
    for (size_t i = 0; i < a->items.size(); i++) {
        int64_t v = -1;
        if (!a->items[i].get_i64(&v) || v < 0)
            throw bad(strprintf("token %zu: expected a non-negative integer, got %s", i,
                                json_dump(a->items[i]).c_str()));
        if (v >= vocab) throw bad(strprintf("token %zu: id %lld >= vocab_size %d", i, (long long)v, vocab));
        ids.push_back((int)v);
    }
    return ids;
}

// One JSON object per line; blank lines are skipped. Every error names the file and the line.
std::vector<Example> read_examples(const std::string& file, bool generate, const LlamaConfig& c) {
    const std::string text = read_file(file);
    std::vector<Example> out;
    std::map<std::string, int> seen;
    int line = 0;
    size_t i = 0;
    while (i < text.size()) {
        size_t j = text.find('\n', i);
        if (j == std::string::npos) j = text.size();
        line++;
        std::string s = text.substr(i, j - i);
        i = j + 1;
        if (s.find_first_not_of(" \t\r") == std::string::npos) continue;
        Json obj;
        std::string err;
        if (!json_parse(s.data(), s.size(), &obj, &err))
            throw invalid_input(file, strprintf("line %d: bad JSON: %s", line,
                                                err.rfind("line 1, ", 0) == 0 ? err.c_str() + 8 : err.c_str()));
        if (!obj.is_object())
            throw invalid_input(file, strprintf("line %d: expected a JSON object, got %s", line, json_type_name(obj).c_str()));
        Example ex;
        ex.line = line;
        const Json* id = obj.find("id");
        if (!id || !id->is_string())
            throw invalid_input(file, strprintf("line %d: field 'id': expected a string", line));
        ex.id = id->text;
        auto dup = seen.find(ex.id);
        if (dup != seen.end())
            throw invalid_input(file, strprintf("line %d: field 'id': '%s' already used on line %d", line,
                                                ex.id.c_str(), dup->second));
        seen[ex.id] = line;
        for (auto& kv : obj.fields) {
            const bool known = kv.first == "id" || (generate ? kv.first == "tokens" : (kv.first == "prompt" || kv.first == "target"));
            if (!known) throw invalid_input(file, strprintf("line %d: unknown key '%s'", line, kv.first.c_str()));
        }
        if (generate) {
            ex.prompt = read_ids(file, line, obj, "tokens", c.vocab);
            if ((int)ex.prompt.size() >= c.max_pos)
                throw invalid_input(file, strprintf("line %d: field 'tokens': the prompt has %zu tokens, which leaves no "
                                                    "room to generate in the context of %d (max_position_embeddings)",
                                                    line, ex.prompt.size(), c.max_pos));
        } else {
            ex.prompt = read_ids(file, line, obj, "prompt", c.vocab);
            ex.target = read_ids(file, line, obj, "target", c.vocab);
            if ((int)(ex.prompt.size() + ex.target.size()) > c.max_pos)
                throw invalid_input(file, strprintf("line %d: prompt + target are %zu tokens, longer than the context "
                                                    "of %d (max_position_embeddings)",
                                                    line, ex.prompt.size() + ex.target.size(), c.max_pos));
        }
        out.push_back(std::move(ex));
    }
    if (out.empty()) throw invalid_input(file, "no examples (the file has no JSON lines)");
    return out;
}

// eos_token_id of config.json: an integer, a list of them, or absent/null (no stop token)
std::vector<int> config_eos(const std::string& model_dir, int vocab) {
    const std::string file = model_dir + "/config.json";
    const std::string text = read_file(file);
    Json j;
    std::string err;
    if (!json_parse(text.data(), text.size(), &j, &err)) throw invalid_input(file, "bad JSON: " + err);
    const Json* e = j.find("eos_token_id");
    std::vector<int> out;
    if (!e || e->is_null()) return out;
    std::vector<Json> items = e->is_array() ? e->items : std::vector<Json>{*e};
    for (auto& it : items) {
        int64_t v = -1;
        if (!it.get_i64(&v) || v < 0 || v >= vocab)
            throw invalid_input(file, strprintf("expected token ids below vocab_size %d, got %s", vocab,
                                                json_dump(*e).c_str()), "", "eos_token_id");
        out.push_back((int)v);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// the run: one model load, the adapter (if any) loaded once, variants switched per batch

struct Session {
    std::unique_ptr<Backend> be;
    std::unique_ptr<LlamaWeights> w;
    std::unique_ptr<Lora> lora;
    std::unique_ptr<Decoder> dec;
    std::chrono::steady_clock::time_point t0;

    explicit Session(const InferenceOptions& o) {
        be = make_cpu_backend();
        be->set_threads(o.threads);
        w = load_llama(o.model_dir);
        if (!o.adapter_dir.empty()) {
            LoraConfig lc = read_adapter_config(o.adapter_dir);
            lora = std::make_unique<Lora>(*be, w->cfg, lc);
            load_adapter_weights(o.adapter_dir + "/adapter_model.safetensors", *lora);
        }
        dec = std::make_unique<Decoder>(*be, *w);
    }
    void use(const std::string& variant) { dec->set_lora(variant == "adapter" ? lora.get() : nullptr); }
    void start(const char* verb, const InferenceOptions& o, size_t n, Json extra) {
        Json j = Json::object();
        j.set("verb", Json::of(verb));
        Json vs = Json::array();
        for (auto& v : o.variants) vs.push(Json::of(v));
        j.set("variants", vs);
        j.set("n", Json::of((int64_t)n));
        j.set("backend", Json::of(be->name()));
        j.set("batch_size", Json::of(o.batch_size));
        const LlamaConfig& c = w->cfg;
        Json m = Json::object();
        m.set("n_layers", Json::of(c.n_layers));
        m.set("dim", Json::of(c.dim));
        m.set("n_heads", Json::of(c.n_heads));
        m.set("n_kv_heads", Json::of(c.n_kv_heads));
        m.set("vocab_size", Json::of(c.vocab));
        m.set("max_position_embeddings", Json::of(c.max_pos));
        j.set("model", m);
        for (auto& kv : extra.fields) j.set(kv.first, std::move(kv.second));
        emit_event("start", j);
        t0 = std::chrono::steady_clock::now();
    }
    void done(const char* verb, int64_t tokens) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        Json j = Json::object();
        j.set("verb", Json::of(verb));
        j.set("elapsed_s", Json::of(el));
        j.set("tokens", Json::of(tokens));
        j.set("tokens_per_s", Json::of(el > 0 ? tokens / el : 0.0));
        emit_event("done", j);
    }
};

}  // namespace

std::vector<GeneratedSequence> generate_batch(Decoder& dec, const std::vector<const std::vector<int>*>& prompts,
                                              const GenerateSettings& g, uint64_t first_index,
                                              const GenerateObserver& obs) {
    const LlamaConfig& c = dec.cfg();
    const int V = c.vocab, B = (int)prompts.size();
    std::vector<int> len(B), limit(B);
    int Tmax = 0, Tcap = 0;
    for (int b = 0; b < B; b++) {
        len[b] = (int)prompts[b]->size();
        LF_ASSERT(len[b] >= 1 && len[b] < c.max_pos);
        limit[b] = std::min(g.max_new_tokens, c.max_pos - len[b]);  // every fed position < max_pos
        Tmax = std::max(Tmax, len[b]);
        Tcap = std::max(Tcap, len[b] + limit[b] - 1);  // the last chosen token is never fed
    }
    Tcap = std::max(Tcap, Tmax);
    dec.reset(B, Tcap, Tmax);

    // prefill: the prompts right-padded to Tmax (padding rows are computed, never read: the cache
    // positions they fill are past the sequence's length and overwritten before any query sees them)
    std::vector<int> tokens((size_t)B * Tmax, 0), pos(B, 0), rows(B);
    for (int b = 0; b < B; b++) {
        std::copy(prompts[b]->begin(), prompts[b]->end(), tokens.begin() + (size_t)b * Tmax);
        rows[b] = b * Tmax + len[b] - 1;
    }
    std::vector<float> logits((size_t)B * V);
    dec.forward(tokens.data(), pos.data(), B, Tmax, rows, logits.data());

    std::vector<GeneratedSequence> out(B);
    std::vector<std::vector<int>> context(B);
    std::vector<bool> active(B, true);
    for (int b = 0; b < B; b++) context[b] = *prompts[b];
    for (int b = 0; b < B; b++) rows[b] = b;
    for (int step = 0;; step++) {
        int n_active = 0;
        for (int b = 0; b < B; b++) {
            if (!active[b]) continue;
            float* l = logits.data() + (size_t)b * V;
            if (obs.on_logits) obs.on_logits(b, step, l);
            const int t = choose_token(l, V, context[b], g.sampling, first_index + b, step);
            GeneratedSequence& sq = out[b];
            sq.chosen++;
            const bool is_stop = std::find(g.stop_tokens.begin(), g.stop_tokens.end(), t) != g.stop_tokens.end();
            if (!is_stop) {
                sq.tokens.push_back(t);
                context[b].push_back(t);
                if (obs.on_token) obs.on_token(b, (int)sq.tokens.size() - 1, t);
            }
            if (is_stop || (int)sq.tokens.size() >= limit[b]) {
                active[b] = false;
                sq.stop_token = is_stop ? t : -1;
                if (obs.on_sequence) obs.on_sequence(b, sq);
                continue;
            }
            n_active++;
        }
        if (n_active == 0) break;
        // one decoding step: each active sequence feeds its newest token at its next position;
        // finished ones feed token 0 at position 0 of their own cache (computed, never read)
        for (int b = 0; b < B; b++) {
            tokens[b] = active[b] ? out[b].tokens.back() : 0;
            pos[b] = active[b] ? len[b] + (int)out[b].tokens.size() - 1 : 0;
        }
        dec.forward(tokens.data(), pos.data(), B, 1, rows, logits.data());
    }
    return out;
}

std::vector<double> score_batch(Decoder& dec, const std::vector<std::pair<const std::vector<int>*, const std::vector<int>*>>& ex) {
    const int B = (int)ex.size();
    int Tmax = 0;
    for (int b = 0; b < B; b++) Tmax = std::max(Tmax, (int)(ex[b].first->size() + ex[b].second->size()));
    dec.reset(B, Tmax, Tmax);
    std::vector<int> tokens((size_t)B * Tmax, 0), pos(B, 0), rows, targets, owner;
    for (int b = 0; b < B; b++) {
        const std::vector<int>& prompt = *ex[b].first;
        const std::vector<int>& target = *ex[b].second;
        const int P = (int)prompt.size(), Tg = (int)target.size();
        LF_ASSERT(P >= 1 && Tg >= 1);
        int* row = tokens.data() + (size_t)b * Tmax;
        std::copy(prompt.begin(), prompt.end(), row);
        std::copy(target.begin(), target.end(), row + P);
        for (int i = 0; i < Tg; i++) {  // position P-1+i predicts target[i]
            rows.push_back(b * Tmax + P - 1 + i);
            targets.push_back(target[i]);
            owner.push_back(b);
        }
    }
    std::vector<double> loss(rows.size()), sum(B, 0.0);
    dec.forward(tokens.data(), pos.data(), B, Tmax, rows, nullptr, targets.data(), loss.data());
    for (size_t i = 0; i < rows.size(); i++) sum[owner[i]] += loss[i];
    return sum;
}

namespace {

Json int_array(const std::vector<int>& v) {
    Json a = Json::array();
    for (int t : v) a.push(Json::of(t));
    return a;
}

// one batch of the verb: events per token (with --stream) and per finished sequence
int64_t generate_events(Session& s, const InferenceOptions& o, const std::string& variant, const Example* ex, int B,
                        size_t first_index) {
    std::vector<const std::vector<int>*> prompts;
    for (int b = 0; b < B; b++) prompts.push_back(&ex[b].prompt);
    GenerateObserver obs;
    if (o.stream)
        obs.on_token = [&](int b, int index, int t) {
            Json j = Json::object();
            j.set("variant", Json::of(variant));
            j.set("id", Json::of(ex[b].id));
            j.set("index", Json::of(index));
            j.set("token", Json::of(t));
            emit_event("token", j);
        };
    obs.on_sequence = [&](int b, const GeneratedSequence& sq) {
        Json j = Json::object();
        j.set("variant", Json::of(variant));
        j.set("id", Json::of(ex[b].id));
        j.set("prompt_tokens", Json::of((int)ex[b].prompt.size()));
        j.set("tokens", int_array(sq.tokens));
        j.set("stop", Json::of(sq.stop_token >= 0 ? "stop_token" : "max_new_tokens"));
        j.set("stop_token", sq.stop_token >= 0 ? Json::of(sq.stop_token) : Json::null());
        emit_event("sequence", j);
    };
    int64_t chosen = 0;
    for (auto& sq : generate_batch(*s.dec, prompts, o.gen, first_index, obs)) chosen += sq.chosen;
    return chosen;
}

// one batch of the verb: a score event per example
int64_t score_events(Session& s, const std::string& variant, const Example* ex, int B) {
    std::vector<std::pair<const std::vector<int>*, const std::vector<int>*>> batch;
    int64_t n_tokens = 0;
    for (int b = 0; b < B; b++) {
        batch.emplace_back(&ex[b].prompt, &ex[b].target);
        n_tokens += ex[b].prompt.size() + ex[b].target.size();
    }
    std::vector<double> sum = score_batch(*s.dec, batch);
    for (int b = 0; b < B; b++) {
        const int n = (int)ex[b].target.size();
        const double mean = sum[b] / n;
        Json j = Json::object();
        j.set("variant", Json::of(variant));
        j.set("id", Json::of(ex[b].id));
        j.set("target_tokens", Json::of(n));
        j.set("loss_sum", Json::of(sum[b]));
        j.set("mean_loss", Json::of(mean));
        j.set("perplexity", Json::of(std::exp(mean)));
        emit_event("score", j);
    }
    return n_tokens;
}

}  // namespace

int run_generate(const InferenceOptions& opts) {
    InferenceOptions o = opts;
    Session s(o);
    const LlamaConfig& c = s.w->cfg;
    if (!o.stop_tokens_given) o.gen.stop_tokens = config_eos(o.model_dir, c.vocab);
    for (int t : o.gen.stop_tokens)
        if (t >= c.vocab) throw usage_error(strprintf("--stop-tokens: id %d >= vocab_size %d", t, c.vocab), "stop-tokens");
    std::vector<Example> ex = read_examples(o.input, true, c);
    Json extra = Json::object();
    extra.set("max_new_tokens", Json::of(o.gen.max_new_tokens));
    extra.set("temperature", Json::of(o.gen.sampling.temperature));
    extra.set("top_k", Json::of(o.gen.sampling.top_k));
    extra.set("top_p", Json::of(o.gen.sampling.top_p));
    extra.set("repetition_penalty", Json::of(o.gen.sampling.repetition_penalty));
    extra.set("seed", Json::of(o.gen.sampling.seed));
    extra.set("stop_tokens", int_array(o.gen.stop_tokens));
    s.start("generate", o, ex.size(), extra);
    int64_t tokens = 0;
    for (size_t i = 0; i < ex.size(); i += o.batch_size) {
        const int B = (int)std::min<size_t>(o.batch_size, ex.size() - i);
        for (auto& v : o.variants) {
            s.use(v);
            tokens += generate_events(s, o, v, ex.data() + i, B, i);
        }
    }
    s.done("generate", tokens);
    return EXIT_OK;
}

int run_score(const InferenceOptions& o) {
    Session s(o);
    std::vector<Example> ex = read_examples(o.input, false, s.w->cfg);
    s.start("score", o, ex.size(), Json::object());
    int64_t tokens = 0;
    for (size_t i = 0; i < ex.size(); i += o.batch_size) {
        const int B = (int)std::min<size_t>(o.batch_size, ex.size() - i);
        for (auto& v : o.variants) {
            s.use(v);
            tokens += score_events(s, v, ex.data() + i, B);
        }
    }
    s.done("score", tokens);
    return EXIT_OK;
}

}  // namespace lf
