// Golden test: the core against Hugging Face transformers + PEFT (tests/golden/FORMAT.md).
// For every config directory given (tests/golden/v1/<config>): logits and loss of a forward
// pass, every LoRA gradient, 10 optimizer steps (losses, grad norms, learning rates) and the
// final adapter. Each check prints its measure and bound; any failure makes the exit code 1.
//
//   test_golden [--backend NAME] DIR...   (NAME: a compiled-in backend, default cpu)
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "error.h"
#include "fsutil.h"
#include "json.h"
#include "lora.h"
#include "model.h"
#include "model_dir.h"
#include "run_config.h"
#include "safetensors.h"
#include "train_step.h"

using namespace lf;

namespace {

int g_failures = 0;

// bounds from the issue: logits & loss 1e-5, gradients 1e-4, step losses 1e-4 (relative)
const double kLogitsBound = 1e-5, kGradBound = 1e-4, kStepLossBound = 1e-4, kGradNormBound = 1e-4, kLrBound = 1e-6;
// The final adapter after 10 AdamW steps has no bound in the issue. Adam divides each element's
// update by sqrt(v): elements whose gradient is small relative to its noise (e.g. lora_A right
// after B leaves 0) turn fp32 summation-order noise into update differences. Measured on
// stories260k: ours vs ours with 1 vs 2 threads (only the sgemm summation order differs) gives
// the same spread as ours vs PEFT (7.5e-5 and 1.0e-4), so the bound is set at 3e-4, above that
// floor; a real bug (wrong lr, bias correction, clipping) moves it by >1e-2.
const double kFinalAdapterBound = 3e-4;

void report(const std::string& cfg, const std::string& what, double measure, double bound) {
    bool ok = measure <= bound && std::isfinite(measure);
    if (!ok) g_failures++;
    std::printf("%-16s %-72s %.3e  (bound %.0e) %s\n", cfg.c_str(), what.c_str(), measure, bound, ok ? "ok" : "FAIL");
}

std::vector<double> as_f64(const TensorView& t) {
    std::vector<double> v((size_t)t.numel());
    for (size_t i = 0; i < v.size(); i++) {
        switch (t.dtype) {
            case DType::F32: { float f; std::memcpy(&f, t.data + 4 * i, 4); v[i] = f; break; }
            case DType::I64: { int64_t x; std::memcpy(&x, t.data + 8 * i, 8); v[i] = (double)x; break; }
            case DType::I32: { int32_t x; std::memcpy(&x, t.data + 4 * i, 4); v[i] = x; break; }
            case DType::U8: v[i] = t.data[i]; break;
            default: throw Error(EXIT_INTERNAL, std::string("unexpected dtype ") + dtype_name(t.dtype), "", t.name);
        }
    }
    return v;
}

const TensorView& need(const SafetensorsFile& f, const std::string& name) {
    const TensorView* t = f.find(name);
    if (!t) throw invalid_input(f.filename(), "missing golden tensor", name);
    return *t;
}

// max |ours - ref| / max |ref|
double rel_max(const float* ours, const std::vector<double>& ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        num = std::max(num, std::fabs((double)ours[i] - ref[i]));
        den = std::max(den, std::fabs(ref[i]));
    }
    return den > 0 ? num / den : num;
}

void set_adapter(Lora& lora, const SafetensorsFile& g, const std::string& prefix) {
    std::vector<float> h(lora.size());
    for (auto& s : lora.slots()) {
        for (int isb = 0; isb < 2; isb++) {
            const TensorView& t = need(g, prefix + peft_key(s.layer, s.module, isb));
            std::vector<double> v = as_f64(t);
            size_t off = isb ? s.b_off : s.a_off;
            size_t n = isb ? (size_t)s.out * lora.cfg().r : (size_t)lora.cfg().r * s.in;
            if (v.size() != n) throw invalid_input(g.filename(), "wrong size", t.name);
            for (size_t i = 0; i < n; i++) h[off + i] = (float)v[i];
        }
    }
    lora.set_params_host(h);
}

double json_num(const Json& j, const char* k) {
    const Json* v = j.find(k);
    if (!v || !v->is_number()) throw Error(EXIT_INVALID_INPUT, std::string("golden.json: missing number ") + k);
    return v->number;
}

void check_config(Backend& backend, const std::string& dir) {
    std::string name = dir.substr(dir.find_last_of('/') + 1);
    std::string gj_text = read_file(dir + "/golden.json");
    Json gj;
    std::string err;
    if (!json_parse(gj_text.data(), gj_text.size(), &gj, &err)) throw invalid_input(dir + "/golden.json", err);
    const Json* lj = gj.find("lora");
    const Json* tj = gj.find("train");
    if (!lj || !tj) throw invalid_input(dir + "/golden.json", "missing lora/train");
    LoraConfig lc;
    lc.r = (int)json_num(*lj, "r");
    lc.alpha = json_num(*lj, "alpha");
    lc.dropout = json_num(*lj, "dropout");
    lc.rslora = lj->find("use_rslora") && lj->find("use_rslora")->boolean;
    for (auto& m : lj->find("target_modules")->items) lc.target[module_from_name(m.text)] = true;

    auto w = load_llama(dir + "/model");
    auto g = SafetensorsFile::open(dir + "/golden.safetensors");
    Backend* be = &backend;
    const LlamaConfig& mc = w->cfg;

    // ---------------------------------------------------------------- forward + gradients
    {
        Lora lora(*be, mc, lc);
        set_adapter(lora, *g, "init.");
        Model model(*be, *w, &lora);
        const TensorView& ids = need(*g, "fwd.input_ids");
        std::vector<double> vid = as_f64(ids), vam = as_f64(need(*g, "fwd.attention_mask")), vlab = as_f64(need(*g, "fwd.labels"));
        int B = (int)ids.shape[0], T = (int)ids.shape[1];
        MicroBatch mb;
        mb.B = B;
        mb.T = T;
        mb.tokens.resize((size_t)B * T);
        mb.targets.assign((size_t)B * T, -1);
        mb.lens.assign(B, 0);
        int64_t count = 0;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                mb.tokens[b * T + t] = (int)vid[b * T + t];
                mb.lens[b] += vam[b * T + t] > 0;
                if (t + 1 < T && vlab[b * T + t + 1] != -100) { mb.targets[b * T + t] = (int)vlab[b * T + t + 1]; count++; }
            }
        }
        std::vector<float> logits((size_t)B * T * mc.vocab);
        lora.zero_grads();
        PassResult r = model.run(mb, true, 1.0 / (double)count, 0, logits.data());
        std::vector<double> ref_logits = as_f64(need(*g, "fwd.logits"));
        // all positions, padding included: the attention mask is the same as HF's
        report(name, "fwd.logits (all positions)", rel_max(logits.data(), ref_logits), kLogitsBound);
        double ref_loss = as_f64(need(*g, "fwd.loss"))[0];
        float loss = (float)(r.loss_sum / (double)count);
        report(name, "fwd.loss", std::fabs(loss - ref_loss) / std::fabs(ref_loss), kLogitsBound);
        std::vector<float> grads = lora.grads_host();
        double worst = 0;
        std::string worst_name;
        for (auto& s : lora.slots()) {
            for (int isb = 0; isb < 2; isb++) {
                std::string key = peft_key(s.layer, s.module, isb);
                std::vector<double> ref = as_f64(need(*g, "grad." + key));
                double m = rel_max(grads.data() + (isb ? s.b_off : s.a_off), ref);
                if (m > worst || worst_name.empty()) { worst = m; worst_name = key; }
                if (m > kGradBound) report(name, "grad." + key, m, kGradBound);
            }
        }
        report(name, "grad.* (worst: " + worst_name.substr(17) + ")", worst, kGradBound);
    }

    // ---------------------------------------------------------------- 10 optimizer steps
    {
        TrainingConfig t;
        t.learning_rate = json_num(*tj, "learning_rate");
        t.batch_size = (int)json_num(*tj, "batch_size");
        t.micro_batch_size = (int)json_num(*tj, "micro_batch_size");
        t.warmup_steps = (int)json_num(*tj, "warmup_steps");
        t.scheduler = tj->find("scheduler")->text;
        t.max_grad_norm = json_num(*tj, "max_grad_norm");
        t.weight_decay = json_num(*tj, "weight_decay");
        t.adam_beta1 = json_num(*tj, "adam_beta1");
        t.adam_beta2 = json_num(*tj, "adam_beta2");
        t.adam_epsilon = json_num(*tj, "adam_epsilon");
        int steps = (int)json_num(*tj, "steps");
        std::vector<double> toks = as_f64(need(*g, "train.tokens")), mask = as_f64(need(*g, "train.mask")),
                            offs = as_f64(need(*g, "train.offsets"));
        std::vector<int32_t> tok32(toks.begin(), toks.end());
        std::vector<uint8_t> mask8(mask.begin(), mask.end());
        std::vector<RecordRef> recs;
        for (size_t i = 0; i + 1 < offs.size(); i++)
            recs.push_back({tok32.data() + (size_t)offs[i], mask8.data() + (size_t)offs[i], (int)(offs[i + 1] - offs[i])});
        Lora lora(*be, mc, lc);
        set_adapter(lora, *g, "train.init.");
        AdamW opt(*be, lora.size());
        Model model(*be, *w, &lora);
        std::vector<double> ref_loss = as_f64(need(*g, "train.step_losses")), ref_gn = as_f64(need(*g, "train.grad_norms")),
                            ref_lr = as_f64(need(*g, "train.lrs"));
        double worst_loss = 0, worst_gn = 0, worst_lr = 0;
        for (int s = 0; s < steps; s++) {
            std::vector<RecordRef> batch(recs.begin() + (size_t)s * t.batch_size, recs.begin() + (size_t)(s + 1) * t.batch_size);
            double lr = t.learning_rate * lr_lambda(t.scheduler, s, t.warmup_steps, steps);
            StepStats st = train_step(*be, model, lora, opt, batch, t.micro_batch_size, lr, t, 0);
            worst_loss = std::max(worst_loss, std::fabs(st.loss - ref_loss[s]) / std::fabs(ref_loss[s]));
            worst_gn = std::max(worst_gn, std::fabs(st.grad_norm - ref_gn[s]) / std::fabs(ref_gn[s]));
            worst_lr = std::max(worst_lr, std::fabs(lr - ref_lr[s]) / std::max(1e-12, std::fabs(ref_lr[s])));
            std::printf("%-16s   step %2d  loss %.7f (ref %.7f)  grad_norm %.6f (ref %.6f)  lr %.6g (ref %.6g)\n", name.c_str(), s + 1,
                        st.loss, ref_loss[s], st.grad_norm, ref_gn[s], lr, ref_lr[s]);
        }
        report(name, "train.step_losses (worst step, relative)", worst_loss, kStepLossBound);
        report(name, "train.grad_norms (worst step, relative)", worst_gn, kGradNormBound);
        report(name, "train.lrs (worst step, relative)", worst_lr, kLrBound);
        std::vector<float> p = lora.params_host();
        double worst = 0;
        std::string worst_name;
        for (auto& s : lora.slots()) {
            for (int isb = 0; isb < 2; isb++) {
                std::string key = peft_key(s.layer, s.module, isb);
                double m = rel_max(p.data() + (isb ? s.b_off : s.a_off), as_f64(need(*g, "train.final." + key)));
                if (m > worst || worst_name.empty()) { worst = m; worst_name = key; }
            }
        }
        report(name, "train.final.* adapter (worst: " + worst_name.substr(17) + ")", worst, kFinalAdapterBound);
    }
}

}  // namespace

int main(int argc, char** argv) {
    int first = 1;
    std::string backend = "cpu";
    if (argc > 2 && std::string(argv[1]) == "--backend") {
        backend = argv[2];
        first = 3;
    }
    if (argc <= first) {
        std::fprintf(stderr, "usage: test_golden [--backend NAME] CONFIG_DIR...\n");
        return 2;
    }
    std::unique_ptr<Backend> be;
    try {
        be = make_backend(backend);  // fp32, as the goldens are
    } catch (const Error& e) {  // compiled in, but this machine lacks its device
        std::fprintf(stderr, "test_golden: --backend %s: %s\n", backend.c_str(), e.what());
        return 2;
    }
    if (!be) {
        std::fprintf(stderr, "test_golden: --backend %s is not compiled in (have:", backend.c_str());
        for (auto& n : backend_names()) std::fprintf(stderr, " %s", n.c_str());
        std::fprintf(stderr, ")\n");
        return 2;
    }
    std::printf("backend %s\n", be->name().c_str());
    int configs = 0;
    for (int i = first; i < argc; i++) {
        try {
            check_config(*be, argv[i]);
            configs++;
        } catch (const Error& e) {
            std::printf("%s: ERROR %s\n", argv[i], e.what());
            g_failures++;
        }
    }
    std::printf("%d config(s), %d failure(s)\n", configs, g_failures);
    return g_failures ? 1 : 0;
}
