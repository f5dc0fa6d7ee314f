#include "trainer.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "backend.h"
#include "checkpoint.h"
#include "error.h"
#include "events.h"
#include "fsutil.h"
#include "lora.h"
#include "model.h"
#include "optimizer.h"
#include "train_data.h"
#include "train_events.h"
#include "train_step.h"

namespace lf {
namespace {

double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void on_signal(int sig) { g_stop_signal.store(sig); }
void install_stop_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

// ---------------------------------------------------------------------------------------------
// a run's parts, set up the same way for train and bench

struct Run {
    const RunConfig& cfg;
    const TrainingConfig& t;
    std::unique_ptr<Backend> be;
    std::unique_ptr<LlamaWeights> w;
    Dataset train, val;
    int64_t total = 0;  // optimizer steps
    std::unique_ptr<Lora> lora;
    std::unique_ptr<AdamW> opt;
    std::unique_ptr<Model> model;
    std::unique_ptr<DataParallel> models;
    std::unique_ptr<EpochBatches> batches;

    explicit Run(const RunConfig& c) : cfg(c), t(c.training) {}
    // step s (0-based): its batch, learning rate and dropout key
    StepStats step(int64_t s) {
        std::vector<RecordRef> batch = batches->batch(s);
        const double lr = t.learning_rate * lr_lambda(t.scheduler, s, t.warmup_steps, total);
        const uint64_t dkey = hash_combine(hash_combine(t.seed, 0xD50F0Dull), (uint64_t)s);
        last_lr = lr;
        return train_step(*be, *models, *lora, *opt, batch, t.micro_batch_size, lr, t, dkey);
    }
    double last_lr = 0;
};

// bench_steps >= 0: the bench (one untimed warm-up step, then bench_steps timed ones)
std::unique_ptr<Run> setup_run(const RunConfig& cfg, bool check_numerics, int64_t bench_steps) {
    auto r = std::make_unique<Run>(cfg);
    const TrainingConfig& t = cfg.training;
    BackendOptions bo;
    bo.precision = t.precision;
    r->be = make_backend(cfg.backend, bo);
    if (!r->be) throw usage_error("backend '" + cfg.backend + "' is not compiled into this binary", "backend", cfg.path);
    r->be->set_threads(cfg.threads);

    r->w = load_llama(cfg.model_dir);
    for (DType d : r->w->dtypes) require_ops(*r->be, training_ops(), d, "training");
    const LlamaConfig& mc = r->w->cfg;
    r->train = load_dataset(cfg.train_shards, mc);
    r->val = load_dataset(cfg.val_shards, mc);
    if (r->train.records.empty()) throw invalid_input(cfg.train_shards[0], "no training records");
    const int max_len = std::max(r->train.max_len, r->val.max_len);
    if (mc.sliding_window > 0 && max_len > mc.sliding_window)
        log_info("records are longer than sliding_window %d: the sliding-window mask is applied", mc.sliding_window);
    if (t.gradient_checkpointing)
        log_info("gradient_checkpointing has no effect on the %s backend yet (all activations are kept)", r->be->name().c_str());

    r->batches = std::make_unique<EpochBatches>(r->train, t);
    r->total = bench_steps >= 0 ? bench_steps + 1 : (t.max_steps > 0 ? t.max_steps : r->batches->steps_per_epoch() * t.epochs);

    r->lora = std::make_unique<Lora>(*r->be, mc, cfg.lora);
    r->lora->init_peft(hash_combine(t.seed, 0x10A1A17ull));
    r->opt = std::make_unique<AdamW>(*r->be, r->lora->size());
    r->model = std::make_unique<Model>(*r->be, *r->w, r->lora.get());
    r->model->check_numerics = check_numerics;
    r->model->reserve(t.micro_batch_size, max_len);
    // data parallel inside micro-batches when the backend runs replicas (the CPU: one per thread;
    // a device backend runs the whole micro-batch on its one stream: one)
    r->models = std::make_unique<DataParallel>(*r->be, *r->w, *r->lora, *r->model, r->be->replicas_for(t.micro_batch_size),
                                               t.micro_batch_size, max_len);
    return r;
}

Error numerics_error(int64_t step, const StepStats& s) {
    std::string what = !std::isfinite(s.loss) ? strprintf("loss is %s", std::isnan(s.loss) ? "NaN" : "inf")
                                               : strprintf("gradient norm is %s", std::isnan(s.grad_norm) ? "NaN" : "inf");
    return Error(EXIT_NUMERICS, what + strprintf(" at step %lld; no adapter written (rerun with --check-numerics to find the first bad layer)",
                                                 (long long)step + 1));
}

// VmHWM of this process image; ru_maxrss would include the parent's RSS at fork time (Linux
// keeps the high-water mark across execve)
double peak_rss_mb() {
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
    return peak_mb;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the adapter self-check: re-read, non-empty, finite (checked by the loader), identical to the
// trained tensors, and it changes the logits of a probe batch

namespace {
void adapter_self_check(Backend& be, const LlamaWeights& w, const Lora& trained, const std::string& dir,
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
}  // namespace

// ---------------------------------------------------------------------------------------------
// train

int run_train(const RunConfig& cfg, const TrainOptions& topt) {
    const double t_start = now_s();
    std::unique_ptr<Run> run = setup_run(cfg, topt.check_numerics || cfg.check_numerics, -1);
    Run& r = *run;
    Backend& be = *r.be;
    const LlamaConfig& mc = r.w->cfg;
    const int64_t total = r.total, spe = r.batches->steps_per_epoch();

    TrainState st;
    std::string resumed_from;
    if (!topt.no_resume) load_checkpoint(be, cfg, *r.lora, *r.opt, &st, &resumed_from);
    if (!resumed_from.empty()) log_info("resuming from %s (step %lld)", resumed_from.c_str(), (long long)st.step);

    StartEvent se;
    se.backend = be.name();
    se.threads = be.threads();
    se.n_layers = mc.n_layers;
    se.dim = mc.dim;
    se.n_heads = mc.n_heads;
    se.n_kv_heads = mc.n_kv_heads;
    se.vocab_size = mc.vocab;
    se.n_params = r.w->n_params;
    se.trainable_params = (int64_t)r.lora->size();
    se.train_examples = (int64_t)r.train.records.size();
    se.val_examples = (int64_t)r.val.records.size();
    se.total_steps = total;
    se.resumed_from_step = st.step;
    emit(se);
    make_dirs(cfg.output_dir);
    install_stop_handlers();

    auto run_eval = [&](int64_t step) {
        if (r.val.records.empty()) return;
        int64_t nt = 0;
        const double vl = evaluate(*r.models, r.val.records, r.t.micro_batch_size, &nt);
        if (g_stop_signal.load() != 0) return;  // cut short by a stop: not a validation loss
        st.has_val = true;
        st.val_loss = vl;
        emit(EvalEvent{step, vl, nt});
    };
    int64_t last_saved = resumed_from.empty() ? -1 : st.step;
    Rng shuffle_rng_at_step = r.batches->shuffle_rng();  // as it was after the last completed step
    // A scheduled checkpoint closes its train-loss window; a stop checkpoint keeps the window open
    // in its saved state, so the resumed run's next checkpoint reports the whole window.
    auto checkpoint = [&](bool scheduled) {
        TrainState saved = st;
        if (scheduled) {
            saved.loss_sum_since = 0;
            saved.loss_count_since = 0;
        }
        save_checkpoint(be, cfg, mc, *r.lora, *r.opt, saved, total, spe, shuffle_rng_at_step);
        last_saved = st.step;
        emit(CheckpointEvent{st.step, checkpoint_dir(cfg, st.step),
                             st.loss_count_since ? st.loss_sum_since / st.loss_count_since : 0.0, st.has_val, st.val_loss});
        if (scheduled) {
            st.loss_sum_since = 0;
            st.loss_count_since = 0;
        }
    };
    // SIGTERM/SIGINT: the state to keep is the one after the last completed optimizer step (a step
    // stopped between micro-batches applied nothing); save it unless just saved, exit 130
    auto stopped = [&]() {
        if (last_saved != st.step) checkpoint(scheduled_checkpoint(cfg, st.step));
        return Error(EXIT_INTERRUPTED, strprintf("stopped by signal %d after saving checkpoint-%lld", g_stop_signal.load(),
                                                 (long long)st.step));
    };

    run_eval(st.step);
    const double t_loop = now_s();
    const int64_t first_step = st.step;
    for (int64_t s = st.step; s < total; s++) {
        if (g_stop_signal.load() != 0) throw stopped();  // came between steps or during an evaluation
        const double t0 = now_s();
        const StepStats ss = r.step(s);
        if (ss.stopped) throw stopped();
        const double dt = now_s() - t0;
        if (!std::isfinite(ss.loss) || !std::isfinite(ss.grad_norm)) throw numerics_error(s, ss);
        st.step = s + 1;
        shuffle_rng_at_step = r.batches->shuffle_rng();
        st.loss_sum_all += ss.loss;
        st.loss_count_all++;
        st.loss_sum_since += ss.loss;
        st.loss_count_since++;
        if (st.step % cfg.log_steps == 0 || st.step == total) {
            const double per_step = (now_s() - t_loop) / (double)std::max<int64_t>(1, st.step - first_step);
            emit(StepEvent{st.step, total, (double)st.step / (double)spe, ss.loss, r.last_lr, ss.grad_norm, ss.n_tokens,
                           dt > 0 ? ss.n_tokens / dt : 0.0, now_s() - t_start, per_step * (double)(total - st.step)});
        }
        if (cfg.eval_steps > 0 && st.step % cfg.eval_steps == 0 && st.step != total) run_eval(st.step);
        if (scheduled_checkpoint(cfg, st.step)) checkpoint(true);
        if (g_stop_signal.load() != 0) throw stopped();
    }
    run_eval(st.step);

    // the final adapter: written to final.tmp, checked, then renamed
    std::string fin = cfg.output_dir + "/final", tmp = fin + ".tmp";
    remove_tree(tmp);
    save_adapter(tmp, *r.lora, mc.n_layers, cfg.base_model_name_or_path);
    const RecordRef& probe = r.val.records.empty() ? r.train.records[0] : r.val.records[0];
    try {
        adapter_self_check(be, *r.w, *r.lora, tmp, probe);
    } catch (...) {
        remove_tree(tmp);
        throw;
    }
    remove_tree(fin);
    rename_path(tmp, fin);
    fsync_dir(cfg.output_dir);
    prune_checkpoints(cfg, true);  // a stop checkpoint of an interrupted, resumed run
    emit(DoneEvent{st.step, fin, st.loss_count_all ? st.loss_sum_all / st.loss_count_all : 0.0, st.has_val, st.val_loss,
                   now_s() - t_start});
    return EXIT_OK;
}

// ---------------------------------------------------------------------------------------------
// bench

int run_bench(const RunConfig& cfg, int64_t steps) {
    std::unique_ptr<Run> run = setup_run(cfg, cfg.check_numerics, steps);
    Run& r = *run;
    install_stop_handlers();
    BenchResult b;
    b.first_loss = NAN;
    b.last_loss = NAN;
    double t0 = now_s();
    for (int64_t s = 0; s < r.total; s++) {
        if (g_stop_signal.load() != 0) throw Error(EXIT_INTERRUPTED, strprintf("stopped by signal %d", g_stop_signal.load()));
        const StepStats ss = r.step(s);
        if (ss.stopped) throw Error(EXIT_INTERRUPTED, strprintf("stopped by signal %d", g_stop_signal.load()));
        if (!std::isfinite(ss.loss) || !std::isfinite(ss.grad_norm)) throw numerics_error(s, ss);
        if (s == 0 && r.total > 1) {  // the warm-up step
            t0 = now_s();
            b.tokens = 0;
        } else {
            b.tokens += ss.n_tokens;
        }
        if (s == 0) b.first_loss = ss.loss;
        b.last_loss = ss.loss;
    }
    b.seconds = now_s() - t0;
    b.backend = r.be->name();
    b.threads = r.be->threads();
    b.warmup_steps = 1;
    b.timed_steps = r.total - 1;
    b.peak_rss_mb = peak_rss_mb();
    b.trainable_params = (int64_t)r.lora->size();
    print(b);
    return EXIT_OK;
}

}  // namespace lf
