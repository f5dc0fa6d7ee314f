#include "train_step.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>

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

// ---------------------------------------------------------------------------------------------
// the models of a step

DataParallel::DataParallel(Backend& be, const LlamaWeights& w, Lora& lora, Model& primary, int P, int micro_bs,
                           int max_len)
    : be_(be), lora_(lora) {
    models_.push_back(&primary);
    if (P <= 1) return;  // primary alone, into lora.grads()
    const int rows = (micro_bs + P - 1) / P;
    for (int p = 0; p < P; p++) {
        if (p > 0) {
            owned_.push_back(std::make_unique<Model>(be, w, &lora));
            owned_.back()->check_numerics = primary.check_numerics;
            models_.push_back(owned_.back().get());
        }
        models_.back()->reserve(rows, max_len);
        grads_.push_back(be.alloc(lora.size()));
        models_.back()->set_grad_target(grads_.back());
    }
}
DataParallel::~DataParallel() {
    if (!grads_.empty()) models_[0]->set_grad_target(nullptr);
    for (float* g : grads_) be_.free(g);
}

void DataParallel::zero_grads() {
    if (grads_.empty()) lora_.zero_grads();
    for (float* g : grads_) be_.zero(g, lora_.size());
}

PassResult DataParallel::run(const std::vector<RecordRef>& part, bool backward, double grad_scale,
                             uint64_t dropout_key, uint64_t k) {
    const int P = size();
    if (P == 1) return models_[0]->run(make_micro_batch(part), backward, grad_scale, hash_combine(dropout_key, k));
    std::vector<PassResult> res(P);
    const size_t n = part.size();
    be_.run_replicas(P, [&](int p) {
        const size_t r0 = n * p / P, r1 = n * (p + 1) / P;
        if (r1 <= r0) return;
        std::vector<RecordRef> rows(part.begin() + r0, part.begin() + r1);
        res[p] = models_[p]->run(make_micro_batch(rows), backward, grad_scale,
                                 hash_combine(hash_combine(dropout_key, k), (uint64_t)p));
    });
    PassResult sum;
    for (int p = 0; p < P; p++) {
        sum.loss_sum += res[p].loss_sum;
        sum.n_targets += res[p].n_targets;
    }
    return sum;
}

void DataParallel::reduce_grads() {
    if (grads_.empty()) return;
    // in a fixed order
    be_.zero(lora_.grads(), lora_.size());
    for (float* g : grads_) be_.add(lora_.grads(), g, lora_.size());
}

// ---------------------------------------------------------------------------------------------
// one optimizer step

StepStats train_step(Backend& be, DataParallel& models, Lora& lora, AdamW& opt, const std::vector<RecordRef>& batch,
                     int micro_bs, double lr, const TrainingConfig& t, uint64_t dropout_key) {
    StepStats st;
    st.n_targets = count_targets(batch);
    for (auto& r : batch) st.n_tokens += r.len;
    const double grad_scale = st.n_targets > 0 ? 1.0 / (double)st.n_targets : 0.0;
    models.zero_grads();
    double loss_sum = 0;
    for (size_t i = 0, k = 0; i < batch.size(); i += micro_bs, k++) {
        std::vector<RecordRef> part(batch.begin() + i, batch.begin() + std::min(batch.size(), i + micro_bs));
        loss_sum += models.run(part, true, grad_scale, dropout_key, k).loss_sum;
        // after the last micro-batch the update costs next to nothing: finish the step instead
        if (micro_batch_done_stop() && i + micro_bs < batch.size()) {
            st.stopped = true;
            return st;
        }
    }
    st.loss = st.n_targets > 0 ? loss_sum / (double)st.n_targets : 0.0;
    models.reduce_grads();
    st.grad_norm = apply_update(be, lora, opt, st.loss, lr, t);
    return st;
}

StepStats train_step(Backend& be, Model& model, Lora& lora, AdamW& opt, const std::vector<RecordRef>& batch,
                     int micro_bs, double lr, const TrainingConfig& t, uint64_t dropout_key) {
    DataParallel one(be, model.weights(), lora, model, 1, micro_bs, 1);
    return train_step(be, one, lora, opt, batch, micro_bs, lr, t, dropout_key);
}

double evaluate(DataParallel& models, const std::vector<RecordRef>& recs, int micro_bs, int64_t* n_targets) {
    double sum = 0;
    int64_t n = 0;
    for (size_t i = 0, k = 0; i < recs.size(); i += micro_bs, k++) {
        std::vector<RecordRef> part(recs.begin() + i, recs.begin() + std::min(recs.size(), i + micro_bs));
        PassResult r = models.run(part, false, 0.0, 0, k);
        sum += r.loss_sum;
        n += r.n_targets;
        if (g_stop_signal.load() != 0) break;  // the caller discards a cut-short evaluation
    }
    if (n_targets) *n_targets = n;
    return n > 0 ? sum / (double)n : 0.0;
}

}  // namespace lf
