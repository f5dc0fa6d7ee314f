#include "checkpoint.h"

#include <algorithm>
#include <cstring>

#include "error.h"
#include "fsutil.h"
#include "json.h"
#include "safetensors.h"

namespace lf {

std::string checkpoint_root(const RunConfig& c) { return c.output_dir + "/checkpoints"; }
std::string checkpoint_dir(const RunConfig& c, int64_t step) {
    return checkpoint_root(c) + "/checkpoint-" + std::to_string(step);
}

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

static std::string rng_hex(const Rng& r, int i) { return strprintf("%016llx", (unsigned long long)r.s[i]); }

void save_checkpoint(Backend& be, const RunConfig& c, const LlamaConfig& mc, Lora& lora, AdamW& opt,
                     const TrainState& st, int64_t total_steps, int64_t spe, const Rng& shuffle_rng) {
    std::string root = checkpoint_root(c);
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
        be.download(m.data(), opt.m(), m.size());
        be.download(v.data(), opt.v(), v.size());
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
    // the window of the next scheduled checkpoint so far (a stop checkpoint's partial window):
    // a resumed run reports that checkpoint's train loss as an uninterrupted run does
    losses.set("since_sum", Json::of(st.loss_sum_since));
    losses.set("since_count", Json::of(st.loss_count_since));
    j.set("losses", losses);
    j.set("val_loss", st.has_val ? Json::of(st.val_loss) : Json::null());
    j.set("config_digest", Json::of(c.digest));
    write_file_atomic(tmp + "/trainer_state.json", json_dump(j) + "\n");
    fsync_dir(tmp);
    remove_tree(dir);
    rename_path(tmp, dir);
    fsync_dir(root);
    prune_checkpoints(c, false);
}

bool scheduled_checkpoint(const RunConfig& c, int64_t step) { return c.save_steps > 0 && step % c.save_steps == 0; }

void prune_checkpoints(const RunConfig& c, bool finished) {
    const std::string root = checkpoint_root(c);
    std::vector<int64_t> all = list_checkpoints(root);
    // A stop checkpoint (SIGTERM between saves, off the save_steps schedule) exists only to resume
    // from: it goes once a newer checkpoint exists or the run has finished, and it never counts
    // against save_total_limit, so an interrupted run keeps the same checkpoints as an
    // uninterrupted one.
    std::vector<int64_t> scheduled;
    for (int64_t s : all) {
        if (scheduled_checkpoint(c, s)) scheduled.push_back(s);
        else if (finished || s != all.back()) remove_tree(root + "/checkpoint-" + std::to_string(s));
    }
    // keep the newest save_total_limit
    for (size_t i = 0; i + (size_t)c.save_total_limit < scheduled.size(); i++)
        remove_tree(root + "/checkpoint-" + std::to_string(scheduled[i]));
}

bool load_checkpoint(Backend& be, const RunConfig& c, Lora& lora, AdamW& opt, TrainState* st, std::string* path_out) {
    std::string root = checkpoint_root(c);
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
    // absent in checkpoints written before the field existed: the window starts empty
    const Json* ss = losses->find("since_sum");
    st->loss_sum_since = ss && ss->is_number() ? ss->number : 0.0;
    st->loss_count_since = losses->find("since_count") ? geti(losses->find("since_count"), "losses.since_count") : 0;
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
    be.upload(opt.m(), m.data(), m.size());
    be.upload(opt.v(), v.data(), v.size());
    *path_out = dir;
    return true;
}

}  // namespace lf
