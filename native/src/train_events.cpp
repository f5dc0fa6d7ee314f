#include "train_events.h"

#include <cstdio>

#include "events.h"
#include "json.h"

namespace lf {

void emit(const StartEvent& e) {
    Json s = Json::object();
    s.set("version", Json::of(std::string(LORAFORGE_VERSION)));
    s.set("backend", Json::of(e.backend));
    s.set("threads", Json::of(e.threads));
    Json m = Json::object();
    m.set("n_layers", Json::of(e.n_layers));
    m.set("dim", Json::of(e.dim));
    m.set("n_heads", Json::of(e.n_heads));
    m.set("n_kv_heads", Json::of(e.n_kv_heads));
    m.set("vocab_size", Json::of(e.vocab_size));
    m.set("n_params", Json::of(e.n_params));
    s.set("model", m);
    s.set("trainable_params", Json::of(e.trainable_params));
    s.set("train_examples", Json::of(e.train_examples));
    s.set("val_examples", Json::of(e.val_examples));
    s.set("total_steps", Json::of(e.total_steps));
    s.set("resumed_from_step", Json::of(e.resumed_from_step));
    emit_event("start", s);
}

void emit(const StepEvent& e) {
    Json j = Json::object();
    j.set("step", Json::of(e.step));
    j.set("total_steps", Json::of(e.total_steps));
    j.set("epoch", Json::of(e.epoch));
    j.set("loss", Json::of(e.loss));
    j.set("lr", Json::of(e.lr));
    j.set("grad_norm", Json::of(e.grad_norm));
    j.set("tokens", Json::of(e.tokens));
    j.set("tokens_per_s", Json::of(e.tokens_per_s));
    j.set("elapsed_s", Json::of(e.elapsed_s));
    j.set("eta_s", Json::of(e.eta_s));
    emit_event("step", j);
}

void emit(const EvalEvent& e) {
    Json j = Json::object();
    j.set("step", Json::of(e.step));
    j.set("val_loss", Json::of(e.val_loss));
    j.set("val_tokens", Json::of(e.val_tokens));
    emit_event("eval", j);
}

void emit(const CheckpointEvent& e) {
    Json j = Json::object();
    j.set("step", Json::of(e.step));
    j.set("path", Json::of(e.path));
    j.set("train_loss", Json::of(e.train_loss));
    j.set("val_loss", e.has_val ? Json::of(e.val_loss) : Json::null());
    emit_event("checkpoint", j);
}

void emit(const DoneEvent& e) {
    Json d = Json::object();
    d.set("step", Json::of(e.step));
    d.set("adapter_dir", Json::of(e.adapter_dir));
    d.set("train_loss", Json::of(e.train_loss));
    d.set("val_loss", e.has_val ? Json::of(e.val_loss) : Json::null());
    d.set("elapsed_s", Json::of(e.elapsed_s));
    emit_event("done", d);
}

void print(const BenchResult& r) {
    Json j = Json::object();
    j.set("backend", Json::of(r.backend));
    j.set("threads", Json::of(r.threads));
    j.set("warmup_steps", Json::of(r.warmup_steps));
    j.set("timed_steps", Json::of(r.timed_steps));
    j.set("tokens", Json::of(r.tokens));
    j.set("seconds", Json::of(r.seconds));
    j.set("tokens_per_s", Json::of(r.seconds > 0 ? r.tokens / r.seconds : 0.0));
    j.set("peak_rss_mb", Json::of(r.peak_rss_mb));
    j.set("trainable_params", Json::of(r.trainable_params));
    j.set("first_loss", Json::of(r.first_loss));
    j.set("last_loss", Json::of(r.last_loss));
    std::printf("%s\n", json_dump(j).c_str());
    std::fflush(stdout);
}

}  // namespace lf
