// Whole-model checks on a small random Llama (written by lf-devtool):
//  1. LoRA gradients of the full forward/backward (all 7 target modules, dropout 0.2, GQA,
//     padding, prompt masks) against central finite differences of the loss with the same
//     dropout masks: checks that forward and backward agree end to end, dropout included.
//  2. merge: logits of the merged model == logits of base + adapter.
//   test_model [--backend NAME] MODEL_DIR WORK_DIR MERGE_TOL   (NAME: a compiled-in backend, default cpu)
// (the merged weights keep the model's dtype: a BF16 model's merge is exact only to BF16 rounding)
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "backend.h"
#include "error.h"
#include "fsutil.h"
#include "lora.h"
#include "merge.h"
#include "model.h"
#include "model_dir.h"
#include "rng.h"
#include "train_step.h"

using namespace lf;

int main(int argc, char** argv) {
    std::string backend = "cpu";
    if (argc > 2 && std::string(argv[1]) == "--backend") {
        backend = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc < 4) {
        std::fprintf(stderr, "usage: test_model [--backend NAME] MODEL_DIR WORK_DIR MERGE_TOL\n");
        return 2;
    }
    int fails = 0;
    std::unique_ptr<Backend> be;
    try {
        be = make_backend(backend);
    } catch (const Error& e) {  // compiled in, but this machine lacks its device
        std::fprintf(stderr, "test_model: --backend %s: %s\n", backend.c_str(), e.what());
        return 2;
    }
    if (!be) {
        std::fprintf(stderr, "test_model: --backend %s is not compiled in (have:", backend.c_str());
        for (auto& n : backend_names()) std::fprintf(stderr, " %s", n.c_str());
        std::fprintf(stderr, ")\n");
        return 2;
    }
    std::printf("backend %s\n", be->name().c_str());
    auto w = load_llama(argv[1]);
    const LlamaConfig& mc = w->cfg;
    LoraConfig lc;
    lc.r = 4;
    lc.alpha = 8;
    lc.dropout = 0.2;
    for (int m = 0; m < N_MODULES; m++) lc.target[m] = true;
    Lora lora(*be, mc, lc);
    lora.init_peft(5);
    {  // B random so that every path carries gradient
        std::vector<float> p = lora.params_host();
        Rng r(6);
        for (auto& s : lora.slots())
            for (size_t i = 0; i < (size_t)s.out * lc.r; i++) p[s.b_off + i] = (float)(0.05 * r.normal());
        lora.set_params_host(p);
    }
    Model model(*be, *w, &lora);
    // two records of different lengths with prompt masks
    Rng r(7);
    std::vector<std::vector<int32_t>> toks(3);
    std::vector<std::vector<uint8_t>> masks(3);
    int lens[3] = {12, 7, 10};
    for (int b = 0; b < 3; b++) {
        for (int t = 0; t < lens[b]; t++) {
            toks[b].push_back((int32_t)r.below(mc.vocab));
            masks[b].push_back(t >= 3);
        }
    }
    std::vector<RecordRef> recs;
    for (int b = 0; b < 3; b++) recs.push_back({toks[b].data(), masks[b].data(), lens[b]});
    MicroBatch mb = make_micro_batch(recs);
    const int64_t count = count_targets(recs);
    const uint64_t key = 42;
    auto loss_at = [&]() { return model.run(mb, true, 0.0, key).loss_sum / count; };  // backward with scale 0: same dropout path
    lora.zero_grads();
    model.run(mb, true, 1.0 / count, key);
    std::vector<float> g = lora.grads_host();
    std::vector<float> p0 = lora.params_host();
    // finite differences in fp32 on a sample of parameters from every slot
    double worst = 0;
    int checked = 0;
    for (auto& s : lora.slots()) {
        for (int isb = 0; isb < 2; isb++) {
            size_t n = isb ? (size_t)s.out * lc.r : (size_t)lc.r * s.in;
            size_t off = isb ? s.b_off : s.a_off;
            for (int k = 0; k < 3; k++) {
                size_t i = off + r.below(n);
                const double h = 1e-2;
                std::vector<float> p = p0;
                p[i] = p0[i] + (float)h;
                lora.set_params_host(p);
                double lp = loss_at();
                p[i] = p0[i] - (float)h;
                lora.set_params_host(p);
                double lm = loss_at();
                double num = (lp - lm) / (2 * h);
                double err = std::fabs(num - g[i]) / std::max(1e-2, std::fabs(num) + std::fabs(g[i]));
                worst = std::max(worst, err);
                checked++;
            }
        }
    }
    lora.set_params_host(p0);
    bool ok = worst < 2e-2;
    fails += !ok;
    std::printf("model LoRA gradients (7 modules, dropout 0.2) vs fp32 finite differences: %d params, worst rel err %.2e (tol 2e-2) %s\n",
                checked, worst, ok ? "ok" : "FAIL");

    // data-parallel replicas (2 threads, each half a micro-batch) == one model over the micro-batch
    {
        LoraConfig lc1 = lc;
        lc1.dropout = 0;  // dropout masks are keyed per replica, so compare without dropout
        Lora la(*be, mc, lc1), lb(*be, mc, lc1);
        la.set_params_host(p0);
        lb.set_params_host(p0);
        AdamW oa(*be, la.size()), ob(*be, lb.size());
        Model ma(*be, *w, &la), mbm(*be, *w, &lb);
        DataParallel reps(*be, *w, lb, mbm, 2, 3, 16);
        TrainingConfig tc;
        tc.learning_rate = 1e-2;
        tc.max_grad_norm = 0.5;
        double worst_p = 0, dl = 0, dg = 0;
        for (int step = 0; step < 3; step++) {
            StepStats sa = train_step(*be, ma, la, oa, recs, 3, 1e-2, tc, 9);
            StepStats sb = train_step(*be, reps, lb, ob, recs, 3, 1e-2, tc, 9);
            dl = std::max(dl, std::fabs(sa.loss - sb.loss) / sa.loss);
            if (step == 0) {  // the (clipped) gradients of the first step
                std::vector<float> ga = la.grads_host(), gb = lb.grads_host();
                double m = 0;
                for (size_t i = 0; i < ga.size(); i++) {
                    dg = std::max(dg, (double)std::fabs(ga[i] - gb[i]));
                    m = std::max(m, (double)std::fabs(ga[i]));
                }
                dg /= m;
            }
        }
        // gradients differ by summation order only. Adam divides each gradient by its own running
        // scale, so for an element whose gradient is ~0 that difference becomes a difference of
        // up to lr per step: the params are compared as the size of their difference against the
        // size of the update (L2), not element by element.
        std::vector<float> pa = la.params_host(), pb = lb.params_host();
        double diff2 = 0, upd2 = 0;
        for (size_t i = 0; i < pa.size(); i++) {
            diff2 += ((double)pa[i] - pb[i]) * ((double)pa[i] - pb[i]);
            upd2 += ((double)pa[i] - p0[i]) * ((double)pa[i] - p0[i]);
        }
        worst_p = std::sqrt(diff2 / upd2);
        ok = dg < 1e-5 && worst_p < 1e-4 && dl < 1e-6;
        fails += !ok;
        std::printf("replicas (P=2) vs one model: step-1 grads max rel diff %.2e (tol 1e-5); after 3 AdamW steps "
                    "|params a - b| / |update| %.2e (tol 1e-4), losses %.2e (tol 1e-6): %s\n", dg, worst_p, dl,
                    ok ? "ok" : "FAIL");
    }

    // merge: base+adapter logits == merged-model logits
    std::string work = argv[2];
    remove_tree(work);
    LoraConfig lc0 = lc;
    lc0.dropout = 0;
    Lora lora0(*be, mc, lc0);
    lora0.set_params_host(p0);
    save_adapter(work + "/adapter", lora0, mc.n_layers, "test");
    merge_adapter(argv[1], work + "/adapter", work + "/merged");
    auto wm = load_llama(work + "/merged");
    MicroBatch one = make_micro_batch({recs[0]});
    std::vector<float> la((size_t)one.T * mc.vocab), lb(la.size()), lbase(la.size());
    {
        Model m(*be, *w, &lora0);
        m.run(one, false, 0, 0, la.data());
    }
    {
        Model m(*be, *wm, nullptr);
        m.run(one, false, 0, 0, lb.data());
    }
    {
        Model m(*be, *w, nullptr);
        m.run(one, false, 0, 0, lbase.data());
    }
    double d = 0, mx = 0, change = 0;
    for (size_t i = 0; i < la.size(); i++) {
        d = std::max(d, (double)std::fabs(la[i] - lb[i]));
        mx = std::max(mx, (double)std::fabs(la[i]));
        change = std::max(change, (double)std::fabs(la[i] - lbase[i]));
    }
    const double tol = std::atof(argv[3]);
    ok = d / mx < tol && change / mx > 1e-3;
    fails += !ok;
    std::printf("merge: max|adapter - merged| / max|logit| = %.2e (tol %.0e), adapter changes logits by %.2e: %s\n", d / mx, tol,
                change / mx, ok ? "ok" : "FAIL");
    return fails ? 1 : 0;
}
