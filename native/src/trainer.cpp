#include "trainer.h"

#include "cpu/kernels.h"  // blas_threads_for: the replicas run one BLAS thread each
#include "ops.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "error.h"
#include "events.h"
#include "fsutil.h"
#include "json.h"
#include "safetensors.h"

namespace lf {

std::atomic<int> g_stop_signal{0};

bool micro_batch_done_stop() {
    static const int64_t raise_after = [] {
        const char* v = std::getenv("LORAFORGE_TEST_SIGTERM_AFTER_MICRO_BATCH");
        return v ? std::atoll(v) : (int64_t)0;
    }();
    static int64_t done = 0;
    if (++done == raise_after) std::raise(SIGTERM);
    return g_stop_signal.load() != 0;
}

static double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------------------------
// batches

MicroBatch make_micro_batch(const std::vector<RecordRef>& recs) {
    MicroBatch mb;
    mb.B = (int)recs.size();
    mb.T = 1;
    for (auto& r : recs) mb.T = std::max(mb.T, r.len);
    mb.tokens.assign((size_t)mb.B * mb.T, 0);
    mb.targets.assign((size_t)mb.B * mb.T, -1);
    mb.lens.resize(mb.B);
    for (int b = 0; b < mb.B; b++) {
        const RecordRef& r = recs[b];
        mb.lens[b] = std::max(1, r.len);
        for (int t = 0; t < r.len; t++) mb.tokens[(size_t)b * mb.T + t] = r.tokens[t];
        // position t predicts token t+1, which is a target when its mask byte is 1
        for (int t = 0; t + 1 < r.len; t++)
            if (r.mask[t + 1]) mb.targets[(size_t)b * mb.T + t] = r.tokens[t + 1];
    }
    return mb;
}

// The denominator of a training step: every mask byte that is 1, the first token's included.
// Nothing predicts token 0, but transformers' Trainer counts labels != -100 before the shift
// (num_items_in_batch), so a record whose first token is a target (trainOnInputs with BOS)
// adds one to the denominator and nothing to the sum. We follow the pinned version exactly.
int64_t count_targets(const std::vector<RecordRef>& recs) {
    int64_t n = 0;
    for (auto& r : recs) for (int t = 0; t < r.len; t++) n += r.mask[t];
    return n;
}

// ---------------------------------------------------------------------------------------------
// AdamW

AdamW::AdamW(Backend& be, size_t n) : be_(be), n_(n) {
    m_ = be_.alloc(n);
    v_ = be_.alloc(n);
}
AdamW::~AdamW() {
    be_.free(m_);
    be_.free(v_);
}
void AdamW::update(float* params, const float* grads, double lr, const TrainingConfig& t) {
    step++;
    be_.adamw(params, grads, m_, v_, (int64_t)n_, lr, t.adam_beta1, t.adam_beta2, t.adam_epsilon, t.weight_decay, step);
}

// ---------------------------------------------------------------------------------------------
// one optimizer step

StepStats train_step(Backend& be, Model& model, Lora& lora, AdamW& opt, const std::vector<RecordRef>& batch,
                     int micro_bs, double lr, const TrainingConfig& t, uint64_t dropout_key) {
    StepStats st;
    st.n_targets = count_targets(batch);
    for (auto& r : batch) st.n_tokens += r.len;
    const double grad_scale = st.n_targets > 0 ? 1.0 / (double)st.n_targets : 0.0;
    lora.zero_grads();
    double loss_sum = 0;
    for (size_t i = 0, k = 0; i < batch.size(); i += micro_bs, k++) {
        std::vector<RecordRef> part(batch.begin() + i, batch.begin() + std::min(batch.size(), i + micro_bs));
        MicroBatch mb = make_micro_batch(part);
        PassResult r = model.run(mb, true, grad_scale, hash_combine(dropout_key, k));
        loss_sum += r.loss_sum;
        // after the last micro-batch the update costs next to nothing: finish the step instead
        if (micro_batch_done_stop() && i + micro_bs < batch.size()) {
            st.stopped = true;
            return st;
        }
    }
    st.loss = st.n_targets > 0 ? loss_sum / (double)st.n_targets : 0.0;
    // global grad norm: the norm of the per-tensor norms, as torch.nn.utils.clip_grad_norm_
    double total = 0;
    for (auto& s : lora.slots()) {
        total += be.sum_squares(lora.grads() + s.a_off, (size_t)lora.cfg().r * s.in);
        total += be.sum_squares(lora.grads() + s.b_off, (size_t)s.out * lora.cfg().r);
    }
    st.grad_norm = std::sqrt(total);
    if (!std::isfinite(st.loss) || !std::isfinite(st.grad_norm)) return st;
    if (t.max_grad_norm > 0) {
        float coef = (float)t.max_grad_norm / ((float)st.grad_norm + 1e-6f);
        if (coef < 1.0f) be.scale(lora.grads(), coef, lora.size());
    }
    opt.update(lora.params(), lora.grads(), lr, t);
    return st;
}

// ---------------------------------------------------------------------------------------------
// replicas

Replicas::Replicas(Backend& be, const LlamaWeights& w, Lora& lora, Model& primary, int P, int micro_bs, int max_len,
                   bool check_numerics)
    : be_(be), lora_(lora) {
    const int rows = (micro_bs + P - 1) / P;
    for (int p = 0; p < P; p++) {
        if (p == 0) {
            models_.push_back(&primary);
        } else {
            owned_.push_back(std::make_unique<Model>(be, w, &lora));
            models_.push_back(owned_.back().get());
        }
        models_.back()->check_numerics = check_numerics;
        models_.back()->reserve(rows, max_len);
        grads_.push_back(be.alloc(lora.size()));
        models_.back()->set_grad_target(grads_.back());
    }
}
Replicas::~Replicas() {
    models_[0]->set_grad_target(nullptr);
    for (float* g : grads_) be_.free(g);
}

StepStats Replicas::step(AdamW& opt, const std::vector<RecordRef>& batch, int micro_bs, double lr, const TrainingConfig& t,
                         uint64_t dropout_key) {
    StepStats st;
    st.n_targets = count_targets(batch);
    for (auto& r : batch) st.n_tokens += r.len;
    const double grad_scale = st.n_targets > 0 ? 1.0 / (double)st.n_targets : 0.0;
    const int P = size();
    for (float* g : grads_) be_.zero(g, lora_.size());
    std::vector<double> loss(P, 0.0);
    std::vector<std::unique_ptr<Error>> errors(P);  // the first one (by replica) is rethrown whole
    ops::blas_threads_for(0);  // one BLAS thread per replica (the pthreads OpenBLAS would not know)
    for (size_t i = 0, k = 0; i < batch.size(); i += micro_bs, k++) {
        const size_t n = std::min(batch.size(), i + micro_bs) - i;
#pragma omp parallel num_threads(P)
        {
            const int p = omp_get_thread_num();
            const size_t r0 = i + n * p / P, r1 = i + n * (p + 1) / P;
            if (r1 > r0) {
                try {
                    std::vector<RecordRef> part(batch.begin() + r0, batch.begin() + r1);
                    PassResult r = models_[p]->run(make_micro_batch(part), true, grad_scale,
                                                   hash_combine(hash_combine(dropout_key, k), (uint64_t)p));
                    loss[p] += r.loss_sum;
                } catch (const Error& e) {  // an exception must not leave the parallel region
                    errors[p] = std::make_unique<Error>(e);
                }
            }
        }
        for (int p = 0; p < P; p++)
            if (errors[p]) throw Error(*errors[p]);
        if (micro_batch_done_stop() && i + micro_bs < batch.size()) {  // the last one: finish the step
            st.stopped = true;
            return st;
        }
    }
    double loss_sum = 0;
    for (int p = 0; p < P; p++) loss_sum += loss[p];
    st.loss = st.n_targets > 0 ? loss_sum / (double)st.n_targets : 0.0;
    // sum the replicas' gradients in a fixed order
    be_.zero(lora_.grads(), lora_.size());
    for (int p = 0; p < P; p++) be_.add(lora_.grads(), grads_[p], lora_.size());
    double total = 0;
    for (auto& s : lora_.slots()) {
        total += be_.sum_squares(lora_.grads() + s.a_off, (size_t)lora_.cfg().r * s.in);
        total += be_.sum_squares(lora_.grads() + s.b_off, (size_t)s.out * lora_.cfg().r);
    }
    st.grad_norm = std::sqrt(total);
    if (!std::isfinite(st.loss) || !std::isfinite(st.grad_norm)) return st;
    if (t.max_grad_norm > 0) {
        float coef = (float)t.max_grad_norm / ((float)st.grad_norm + 1e-6f);
        if (coef < 1.0f) be_.scale(lora_.grads(), coef, lora_.size());
    }
    opt.update(lora_.params(), lora_.grads(), lr, t);
    return st;
}

double Replicas::evaluate(const std::vector<RecordRef>& recs, int micro_bs, int64_t* n_targets) {
    const int P = size();
    std::vector<double> loss(P, 0.0);
    std::vector<int64_t> count(P, 0);
    std::vector<std::unique_ptr<Error>> errors(P);  // the first one (by replica) is rethrown whole
    ops::blas_threads_for(0);
    for (size_t i = 0; i < recs.size(); i += micro_bs) {
        const size_t n = std::min(recs.size(), i + micro_bs) - i;
#pragma omp parallel num_threads(P)
        {
            const int p = omp_get_thread_num();
            const size_t r0 = i + n * p / P, r1 = i + n * (p + 1) / P;
            if (r1 > r0) {
                try {
                    std::vector<RecordRef> part(recs.begin() + r0, recs.begin() + r1);
                    PassResult r = models_[p]->run(make_micro_batch(part), false, 0.0, 0);
                    loss[p] += r.loss_sum;
                    count[p] += r.n_targets;
                } catch (const Error& e) {
                    errors[p] = std::make_unique<Error>(e);
                }
            }
        }
        for (int p = 0; p < P; p++)
            if (errors[p]) throw Error(*errors[p]);
        if (g_stop_signal.load() != 0) break;  // the caller discards a cut-short evaluation
    }
    double sum = 0;
    int64_t nt = 0;
    for (int p = 0; p < P; p++) { sum += loss[p]; nt += count[p]; }
    if (n_targets) *n_targets = nt;
    return nt > 0 ? sum / (double)nt : 0.0;
}

double evaluate(Model& model, const std::vector<RecordRef>& recs, int micro_bs, int64_t* n_targets) {
    double sum = 0;
    int64_t n = 0;
    for (size_t i = 0; i < recs.size(); i += micro_bs) {
        std::vector<RecordRef> part(recs.begin() + i, recs.begin() + std::min(recs.size(), i + micro_bs));
        PassResult r = model.run(make_micro_batch(part), false, 0.0, 0);
        sum += r.loss_sum;
        n += r.n_targets;
        if (g_stop_signal.load() != 0) break;  // the caller discards a cut-short evaluation
    }
    if (n_targets) *n_targets = n;
    return n > 0 ? sum / (double)n : 0.0;
}

// ---------------------------------------------------------------------------------------------
// data

namespace {

struct Dataset {
    std::vector<Shard> shards;
    std::vector<RecordRef> records;
    int max_len = 1;
};

Dataset load_dataset(const std::vector<std::string>& paths, const LlamaConfig& mc) {
    Dataset d;
    d.shards.reserve(paths.size());
    for (auto& p : paths) d.shards.push_back(load_shard(p, (uint32_t)mc.vocab));
    for (auto& s : d.shards) {
        for (size_t i = 0; i < s.n_records(); i++) {
            int len = (int)s.record_len(i);
            if (len == 0) throw invalid_input(s.filename, strprintf("record %zu is empty", i), "", "offsets");
            if (len > mc.max_pos)
                throw invalid_input(s.filename, strprintf("record %zu has %d tokens, more than max_position_embeddings %d", i, len, mc.max_pos), "", "offsets");
            d.records.push_back({s.tokens.data() + s.offsets[i], s.mask.data() + s.offsets[i], len});
            d.max_len = std::max(d.max_len, len);
        }
    }
    return d;
}

// the order of the records in epoch `e`: seeded Fisher-Yates, then (group_by_length) HF's
// LengthGroupedSampler idea: megabatches of 50 batches sorted by length, longest first
std::vector<int> epoch_order(const std::vector<RecordRef>& recs, const TrainingConfig& t, int64_t e, Rng* rng_out) {
    std::vector<int> order(recs.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = (int)i;
    Rng rng(hash_combine(t.seed, 0x5AFF1E00ull + (uint64_t)e));
    if (t.shuffle) {
        for (size_t i = order.size(); i > 1; i--) std::swap(order[i - 1], order[rng.below(i)]);
    }
    if (t.group_by_length) {
        size_t mega = (size_t)t.batch_size * 50;
        for (size_t i = 0; i < order.size(); i += mega) {
            auto end = order.begin() + std::min(order.size(), i + mega);
            std::stable_sort(order.begin() + i, end, [&](int a, int b) { return recs[a].len > recs[b].len; });
        }
    }
    if (rng_out) *rng_out = rng;
    return order;
}

std::string rng_hex(const Rng& r, int i) { return strprintf("%016llx", (unsigned long long)r.s[i]); }

// ---------------------------------------------------------------------------------------------
// checkpoints

Backend* g_backend = nullptr;
void download_floats(float* host, const float* src, size_t n) { g_backend->download(host, src, n); }
void upload_floats(float* dst, const float* host, size_t n) { g_backend->upload(dst, host, n); }

struct TrainState {
    int64_t step = 0;
    int64_t opt_step = 0;
    double loss_sum_all = 0;
    int64_t loss_count_all = 0;
    double loss_sum_since = 0;
    int64_t loss_count_since = 0;
    bool has_val = false;
    double val_loss = 0;
};

std::string ckpt_root(const RunConfig& c) { return c.output_dir + "/checkpoints"; }

std::vector<int64_t> list_checkpoints(const std::string& root) {
    std::vector<int64_t> steps;
    for (auto& n : list_dir(root)) {
        if (n.rfind("checkpoint-", 0) != 0) continue;
        std::string num = n.substr(11);
        if (num.empty() || num.size() > 15 || num.find_first_not_of("0123456789") != std::string::npos) continue;
        steps.push_back(std::stoll(num));
    }
    std::sort(steps.begin(), steps.end());
    return steps;
}

void save_checkpoint(const RunConfig& c, const LlamaConfig& mc, Lora& lora, AdamW& opt, const TrainState& st,
                     int64_t total_steps, int64_t spe, const Rng& shuffle_rng) {
    std::string root = ckpt_root(c);
    std::string dir = root + "/checkpoint-" + std::to_string(st.step);
    std::string tmp = dir + ".tmp";
    make_dirs(root);
    remove_tree(tmp);
    make_dirs(tmp);
    save_adapter(tmp, lora, mc.n_layers, c.base_model_name_or_path);
    std::vector<float> m(opt.size()), v(opt.size());
    // the backend owns m/v; a host copy for writing
    {
        std::vector<TensorOut> ts;
        download_floats(m.data(), opt.m(), m.size());
        download_floats(v.data(), opt.v(), v.size());
        int r = lora.cfg().r;
        for (auto& s : lora.slots()) {
            for (int isb = 0; isb < 2; isb++) {
                std::string key = peft_key(s.layer, s.module, isb);
                std::vector<int64_t> shape = isb ? std::vector<int64_t>{s.out, r} : std::vector<int64_t>{r, s.in};
                size_t off = isb ? s.b_off : s.a_off;
                ts.push_back({"exp_avg." + key, DType::F32, shape, m.data() + off});
                ts.push_back({"exp_avg_sq." + key, DType::F32, shape, v.data() + off});
            }
        }
        save_safetensors(tmp + "/optimizer.safetensors", ts, {{"step", std::to_string(opt.step)}});
    }
    Json j = Json::object();
    j.set("version", Json::of(1));
    j.set("step", Json::of(st.step));
    j.set("total_steps", Json::of(total_steps));
    j.set("epoch", Json::of((double)st.step / (double)spe));
    Json data = Json::object();
    data.set("epoch", Json::of(st.step / spe));
    data.set("batch_in_epoch", Json::of(st.step % spe));
    j.set("data", data);
    Json rng = Json::object();
    rng.set("seed", Json::of(c.training.seed));
    Json words = Json::array();
    for (int i = 0; i < 4; i++) words.push(Json::of(rng_hex(shuffle_rng, i)));
    rng.set("shuffle_state_after_epoch_permutation", words);
    j.set("rng", rng);
    j.set("optimizer_step", Json::of(opt.step));
    Json losses = Json::object();
    losses.set("sum", Json::of(st.loss_sum_all));
    losses.set("count", Json::of(st.loss_count_all));
    j.set("losses", losses);
    j.set("val_loss", st.has_val ? Json::of(st.val_loss) : Json::null());
    j.set("config_digest", Json::of(c.digest));
    write_file_atomic(tmp + "/trainer_state.json", json_dump(j) + "\n");
    fsync_dir(tmp);
    remove_tree(dir);
    rename_path(tmp, dir);
    fsync_dir(root);
    // keep the newest save_total_limit
    std::vector<int64_t> all = list_checkpoints(root);
    for (size_t i = 0; i + (size_t)c.save_total_limit < all.size(); i++)
        remove_tree(root + "/checkpoint-" + std::to_string(all[i]));
}

bool load_checkpoint(const RunConfig& c, Lora& lora, AdamW& opt, TrainState* st, std::string* path_out) {
    std::string root = ckpt_root(c);
    std::vector<int64_t> all = list_checkpoints(root);
    if (all.empty()) return false;
    std::string dir = root + "/checkpoint-" + std::to_string(all.back());
    std::string sp = dir + "/trainer_state.json";
    std::string text = read_file(sp);
    Json j;
    std::string err;
    if (!json_parse(text.data(), text.size(), &j, &err)) throw invalid_input(sp, "bad JSON: " + err);
    const Json* dg = j.find("config_digest");
    if (!dg || !dg->is_string() || dg->text != c.digest)
        throw usage_error("checkpoint was made with a different run.json (config digest " +
                              (dg && dg->is_string() ? dg->text : std::string("?")) + " != " + c.digest +
                              "); use --no-resume or another output_dir", "config_digest", sp);
    auto geti = [&](const Json* v, const char* name) {
        int64_t x;
        if (!v || !v->get_i64(&x) || x < 0) throw invalid_input(sp, "missing or invalid", "", name);
        return x;
    };
    st->step = geti(j.find("step"), "step");
    opt.step = geti(j.find("optimizer_step"), "optimizer_step");
    const Json* losses = j.find("losses");
    if (!losses || !losses->is_object()) throw invalid_input(sp, "missing", "", "losses");
    const Json* ls = losses->find("sum");
    if (!ls || !ls->is_number()) throw invalid_input(sp, "missing", "", "losses.sum");
    st->loss_sum_all = ls->number;
    st->loss_count_all = geti(losses->find("count"), "losses.count");
    const Json* vl = j.find("val_loss");
    st->has_val = vl && vl->is_number();
    if (st->has_val) st->val_loss = vl->number;
    load_adapter_weights(dir + "/adapter_model.safetensors", lora);
    std::string op = dir + "/optimizer.safetensors";
    auto f = SafetensorsFile::open(op);
    std::vector<float> m(opt.size()), v(opt.size());
    int r = lora.cfg().r;
    for (auto& s : lora.slots()) {
        for (int isb = 0; isb < 2; isb++) {
            std::string key = peft_key(s.layer, s.module, isb);
            size_t off = isb ? s.b_off : s.a_off;
            size_t n = isb ? (size_t)s.out * r : (size_t)r * s.in;
            for (int which = 0; which < 2; which++) {
                std::string name = (which ? "exp_avg_sq." : "exp_avg.") + key;
                const TensorView* t = f->find(name);
                if (!t) throw invalid_input(op, "missing optimizer tensor", name);
                if (t->dtype != DType::F32 || (size_t)t->numel() != n) throw invalid_input(op, "wrong dtype or size", name);
                std::memcpy((which ? v.data() : m.data()) + off, t->data, n * 4);
            }
        }
    }
    upload_floats(opt.m(), m.data(), m.size());
    upload_floats(opt.v(), v.data(), v.size());
    *path_out = dir;
    return true;
}

void on_signal(int sig) { g_stop_signal.store(sig); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// the adapter self-check: re-read, non-empty, finite (checked by the loader), identical to the
// trained tensors, and it changes the logits of a probe batch

static void adapter_self_check(Backend& be, const LlamaWeights& w, const Lora& trained, const std::string& dir,
                               const RecordRef& probe) {
    Lora reread(be, w.cfg, trained.cfg());
    try {
        load_adapter_weights(dir + "/adapter_model.safetensors", reread);
    } catch (const Error& e) {
        throw Error(EXIT_ADAPTER_CHECK, "re-reading the saved adapter failed: " + e.detail, e.file, e.tensor);
    }
    if (reread.size() == 0) throw Error(EXIT_ADAPTER_CHECK, "the saved adapter is empty", dir);
    std::vector<float> a = trained.params_host(), b = reread.params_host();
    if (std::memcmp(a.data(), b.data(), a.size() * 4) != 0)
        throw Error(EXIT_ADAPTER_CHECK, "the re-read adapter differs from the trained tensors", dir + "/adapter_model.safetensors");
    RecordRef pr = probe;
    pr.len = std::min(pr.len, 64);
    MicroBatch mb = make_micro_batch({pr});
    std::vector<float> base((size_t)mb.T * w.cfg.vocab), with((size_t)mb.T * w.cfg.vocab);
    {
        Model m0(be, w, nullptr);
        m0.run(mb, false, 0, 0, base.data());
    }
    {
        Model m1(be, w, &reread);
        m1.run(mb, false, 0, 0, with.data());
    }
    double diff = 0;
    for (size_t i = 0; i < base.size(); i++) {
        if (!std::isfinite(with[i])) throw Error(EXIT_ADAPTER_CHECK, "the adapter makes the probe logits non-finite", dir);
        diff = std::max(diff, (double)std::fabs(with[i] - base[i]));
    }
    if (!(diff > 0))
        throw Error(EXIT_ADAPTER_CHECK, "the adapter does not change the logits of the probe batch (all lora_B zero? learning_rate 0?)", dir);
    log_info("adapter self-check passed: max |logit change| on the probe batch = %.3g", diff);
}

// ---------------------------------------------------------------------------------------------

int run_train(const RunConfig& cfg, const TrainOptions& topt) {
    const bool bench = topt.bench_steps >= 0;
    auto be = make_backend(cfg.backend);
    if (!be) throw usage_error("backend '" + cfg.backend + "' is not compiled into this binary", "backend", cfg.path);
    g_backend = be.get();
    be->set_threads(cfg.threads);
    const int threads = cfg.threads > 0 ? cfg.threads : omp_get_max_threads();
    const TrainingConfig& t = cfg.training;
    double t_start = now_s();

    auto w = load_llama(cfg.model_dir);
    const LlamaConfig& mc = w->cfg;
    Dataset train = load_dataset(cfg.train_shards, mc);
    Dataset val = load_dataset(cfg.val_shards, mc);
    if (train.records.empty()) throw invalid_input(cfg.train_shards[0], "no training records");
    if (mc.sliding_window > 0 && std::max(train.max_len, val.max_len) > mc.sliding_window)
        log_info("records are longer than sliding_window %d: the sliding-window mask is applied", mc.sliding_window);
    if (t.gradient_checkpointing) log_info("gradient_checkpointing has no effect on the cpu backend (all activations are kept)");

    const int64_t n = (int64_t)train.records.size();
    const int64_t spe = (n + t.batch_size - 1) / t.batch_size;
    // bench: one untimed warm-up step, then bench_steps timed ones
    const int64_t total = bench ? topt.bench_steps + 1 : (t.max_steps > 0 ? t.max_steps : spe * t.epochs);

    Lora lora(*be, mc, cfg.lora);
    lora.init_peft(hash_combine(t.seed, 0x10A1A17ull));
    AdamW opt(*be, lora.size());
    Model model(*be, *w, &lora);
    model.check_numerics = topt.check_numerics || cfg.check_numerics;
    model.reserve(t.micro_batch_size, std::max(train.max_len, val.max_len));

    // data parallel inside micro-batches when there are threads to use and rows to split
    const int P = std::max(1, std::min(threads, t.micro_batch_size));
    std::unique_ptr<Replicas> replicas;
    if (P > 1)
        replicas = std::make_unique<Replicas>(*be, *w, lora, model, P, t.micro_batch_size, std::max(train.max_len, val.max_len),
                                              model.check_numerics);

    TrainState st;
    std::string resumed_from;
    if (!bench && !topt.no_resume) load_checkpoint(cfg, lora, opt, &st, &resumed_from);
    if (!resumed_from.empty()) log_info("resuming from %s (step %lld)", resumed_from.c_str(), (long long)st.step);

    if (!bench) {
        Json s = Json::object();
        s.set("version", Json::of(std::string(LORAFORGE_VERSION)));
        s.set("backend", Json::of(be->name()));
        s.set("threads", Json::of(threads));
        Json m = Json::object();
        m.set("n_layers", Json::of(mc.n_layers));
        m.set("dim", Json::of(mc.dim));
        m.set("n_heads", Json::of(mc.n_heads));
        m.set("n_kv_heads", Json::of(mc.n_kv_heads));
        m.set("vocab_size", Json::of(mc.vocab));
        m.set("n_params", Json::of(w->n_params));
        s.set("model", m);
        s.set("trainable_params", Json::of((int64_t)lora.size()));
        s.set("train_examples", Json::of(n));
        s.set("val_examples", Json::of((int64_t)val.records.size()));
        s.set("total_steps", Json::of(total));
        s.set("resumed_from_step", Json::of(st.step));
        emit_event("start", s);
        make_dirs(cfg.output_dir);
    }
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    auto run_eval = [&](int64_t step) {
        if (val.records.empty() || bench) return;
        int64_t nt = 0;
        double vl = replicas ? replicas->evaluate(val.records, t.micro_batch_size, &nt)
                             : evaluate(model, val.records, t.micro_batch_size, &nt);
        if (g_stop_signal.load() != 0) return;  // cut short by a stop: not a validation loss
        st.has_val = true;
        st.val_loss = vl;
        Json e = Json::object();
        e.set("step", Json::of(step));
        e.set("val_loss", Json::of(vl));
        e.set("val_tokens", Json::of(nt));
        emit_event("eval", e);
    };
    auto numerics_error = [&](int64_t step, const StepStats& s) {
        std::string what = !std::isfinite(s.loss) ? strprintf("loss is %s", std::isnan(s.loss) ? "NaN" : "inf")
                                                   : strprintf("gradient norm is %s", std::isnan(s.grad_norm) ? "NaN" : "inf");
        return Error(EXIT_NUMERICS, what + strprintf(" at step %lld; no adapter written (rerun with --check-numerics to find the first bad layer)",
                                                     (long long)step + 1));
    };

    run_eval(st.step);
    int64_t cur_epoch = -1;
    std::vector<int> order;
    Rng shuffle_rng;
    double t_loop = now_s(), bench_t0 = now_s();
    int64_t bench_tokens = 0;
    double first_loss = NAN, last_loss = NAN;
    int64_t last_saved = resumed_from.empty() ? -1 : st.step;
    Rng shuffle_rng_at_step = shuffle_rng;  // as it was after the last completed step
    auto checkpoint = [&]() {
        save_checkpoint(cfg, mc, lora, opt, st, total, spe, shuffle_rng_at_step);
        last_saved = st.step;
        Json j = Json::object();
        j.set("step", Json::of(st.step));
        j.set("path", Json::of(ckpt_root(cfg) + "/checkpoint-" + std::to_string(st.step)));
        j.set("train_loss", Json::of(st.loss_count_since ? st.loss_sum_since / st.loss_count_since : 0.0));
        j.set("val_loss", st.has_val ? Json::of(st.val_loss) : Json::null());
        emit_event("checkpoint", j);
        st.loss_sum_since = 0;
        st.loss_count_since = 0;
    };
    // SIGTERM/SIGINT: the state to keep is the one after the last completed optimizer step (a step
    // stopped between micro-batches applied nothing); save it unless just saved, exit 130
    auto stopped = [&]() {
        if (!bench && last_saved != st.step) checkpoint();
        return Error(EXIT_INTERRUPTED, strprintf("stopped by signal %d after saving checkpoint-%lld", g_stop_signal.load(),
                                                 (long long)st.step));
    };
    const int64_t first_step = st.step;
    for (int64_t s = st.step; s < total; s++) {
        if (g_stop_signal.load() != 0) throw stopped();  // came between steps or during an evaluation
        int64_t e = s / spe, pos = s % spe;
        if (e != cur_epoch) {
            order = epoch_order(train.records, t, e, &shuffle_rng);
            cur_epoch = e;
        }
        std::vector<RecordRef> batch;
        for (int64_t i = pos * t.batch_size; i < std::min<int64_t>(n, (pos + 1) * t.batch_size); i++)
            batch.push_back(train.records[order[i]]);
        double lr = t.learning_rate * lr_lambda(t.scheduler, s, t.warmup_steps, total);
        double t0 = now_s();
        const uint64_t dkey = hash_combine(hash_combine(t.seed, 0xD50F0Dull), (uint64_t)s);
        StepStats ss = replicas ? replicas->step(opt, batch, t.micro_batch_size, lr, t, dkey)
                                : train_step(*be, model, lora, opt, batch, t.micro_batch_size, lr, t, dkey);
        if (ss.stopped) throw stopped();
        double dt = now_s() - t0;
        if (!std::isfinite(ss.loss) || !std::isfinite(ss.grad_norm)) throw numerics_error(s, ss);
        if (bench && s == 0 && total > 1) { bench_t0 = now_s(); bench_tokens = 0; }
        else bench_tokens += ss.n_tokens;
        if (s == first_step) first_loss = ss.loss;
        last_loss = ss.loss;
        st.step = s + 1;
        shuffle_rng_at_step = shuffle_rng;
        st.loss_sum_all += ss.loss;
        st.loss_count_all++;
        st.loss_sum_since += ss.loss;
        st.loss_count_since++;
        if (bench) continue;
        if (st.step % cfg.log_steps == 0 || st.step == total) {
            double elapsed = now_s() - t_loop;
            Json j = Json::object();
            j.set("step", Json::of(st.step));
            j.set("total_steps", Json::of(total));
            j.set("epoch", Json::of((double)st.step / (double)spe));
            j.set("loss", Json::of(ss.loss));
            j.set("lr", Json::of(lr));
            j.set("grad_norm", Json::of(ss.grad_norm));
            j.set("tokens", Json::of(ss.n_tokens));
            j.set("tokens_per_s", Json::of(dt > 0 ? ss.n_tokens / dt : 0.0));
            j.set("elapsed_s", Json::of(now_s() - t_start));
            double per_step = elapsed / (double)std::max<int64_t>(1, st.step - first_step);
            j.set("eta_s", Json::of(per_step * (double)(total - st.step)));
            emit_event("step", j);
        }
        if (cfg.eval_steps > 0 && st.step % cfg.eval_steps == 0 && st.step != total) run_eval(st.step);
        if (cfg.save_steps > 0 && st.step % cfg.save_steps == 0) checkpoint();
        if (g_stop_signal.load() != 0) throw stopped();
    }
    (void)last_saved;
    if (bench) {
        double secs = now_s() - bench_t0;
        // VmHWM of this process image; ru_maxrss would include the parent's RSS at fork time
        // (Linux keeps the high-water mark across execve)
        double peak_mb = -1;
        if (FILE* f = std::fopen("/proc/self/status", "r")) {
            char line[256];
            while (std::fgets(line, sizeof line, f))
                if (std::strncmp(line, "VmHWM:", 6) == 0) peak_mb = std::atof(line + 6) / 1024.0;
            std::fclose(f);
        }
        if (peak_mb < 0) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            peak_mb = (double)ru.ru_maxrss / 1024.0;
        }
        Json j = Json::object();
        j.set("backend", Json::of(be->name()));
        j.set("threads", Json::of(threads));
        j.set("warmup_steps", Json::of((int64_t)1));
        j.set("timed_steps", Json::of(total - 1));
        j.set("tokens", Json::of(bench_tokens));
        j.set("seconds", Json::of(secs));
        j.set("tokens_per_s", Json::of(secs > 0 ? bench_tokens / secs : 0.0));
        j.set("peak_rss_mb", Json::of(peak_mb));
        j.set("trainable_params", Json::of((int64_t)lora.size()));
        j.set("first_loss", Json::of(first_loss));
        j.set("last_loss", Json::of(last_loss));
        std::printf("%s\n", json_dump(j).c_str());
        std::fflush(stdout);
        return EXIT_OK;
    }
    run_eval(st.step);

    // the final adapter: written to final.tmp, checked, then renamed
    std::string fin = cfg.output_dir + "/final", tmp = fin + ".tmp";
    remove_tree(tmp);
    save_adapter(tmp, lora, mc.n_layers, cfg.base_model_name_or_path);
    const RecordRef& probe = val.records.empty() ? train.records[0] : val.records[0];
    try {
        adapter_self_check(*be, *w, lora, tmp, probe);
    } catch (...) {
        remove_tree(tmp);
        throw;
    }
    remove_tree(fin);
    rename_path(tmp, fin);
    fsync_dir(cfg.output_dir);
    Json d = Json::object();
    d.set("step", Json::of(st.step));
    d.set("adapter_dir", Json::of(fin));
    d.set("train_loss", Json::of(st.loss_count_all ? st.loss_sum_all / st.loss_count_all : 0.0));
    d.set("val_loss", st.has_val ? Json::of(st.val_loss) : Json::null());
    d.set("elapsed_s", Json::of(now_s() - t_start));
    emit_event("done", d);
    return EXIT_OK;
}

}  // namespace lf
