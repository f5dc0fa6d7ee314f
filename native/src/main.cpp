// loraforge-core: the command line (docs/CONTRACTS.md §2).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "error.h"
#include "events.h"
#include "fsutil.h"
#include "generate.h"
#include "lora.h"
#include "merge.h"
#include "model.h"
#include "model_dir.h"
#include "run_config.h"
#include "safetensors.h"
#include "trainer.h"

using namespace lf;

static const char* kUsage =
    "usage:\n"
    "  loraforge-core train  --config run.json [--no-resume] [--check-numerics]\n"
    "  loraforge-core logits --model DIR [--adapter DIR] --tokens 1,2,3 [--out logits.safetensors]\n"
    "  loraforge-core merge  --model DIR --adapter DIR --out DIR\n"
    "  loraforge-core bench  --config run.json --steps N\n"
    "  loraforge-core generate --model DIR [--adapter DIR] --prompts FILE.jsonl [--variants base,adapter]\n"
    "                 [--max-new-tokens 64] [--batch-size 8] [--threads N] [--temperature 0] [--top-k 0]\n"
    "                 [--top-p 1.0] [--repetition-penalty 1.0] [--seed 0] [--stop-tokens 2,1] [--stream]\n"
    "  loraforge-core score  --model DIR [--adapter DIR] --examples FILE.jsonl [--variants base,adapter]\n"
    "                 [--batch-size 8] [--threads N]\n"
    "  loraforge-core backends   (JSON: each backend, compiled in or not, and whether its device is present)\n"
    "  loraforge-core --version\n";

namespace {
struct Args {
    std::string verb;
    std::vector<std::pair<std::string, std::string>> opts;
    std::vector<std::string> flags;
    bool has_flag(const char* f) const {
        for (auto& x : flags) if (x == f) return true;
        return false;
    }
    std::string get(const char* k, bool required) const {
        for (auto& kv : opts) if (kv.first == k) return kv.second;
        if (required) throw usage_error(std::string("missing ") + k + "\n" + kUsage);
        return "";
    }
};

Args parse_args(int argc, char** argv, const std::vector<std::string>& value_opts, const std::vector<std::string>& flag_opts) {
    Args a;
    a.verb = argv[1];
    for (int i = 2; i < argc; i++) {
        std::string s = argv[i];
        bool is_val = false, is_flag = false;
        for (auto& v : value_opts) is_val |= s == v;
        for (auto& f : flag_opts) is_flag |= s == f;
        if (is_val) {
            if (i + 1 >= argc) throw usage_error(s + " needs a value\n" + kUsage);
            a.opts.emplace_back(s, argv[++i]);
        } else if (is_flag) {
            a.flags.push_back(s);
        } else {
            throw usage_error("unknown argument '" + s + "' for " + a.verb + "\n" + kUsage);
        }
    }
    return a;
}

std::vector<int> parse_tokens(const std::string& s, int vocab) {
    std::vector<int> out;
    size_t i = 0;
    while (i <= s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string::npos) j = s.size();
        std::string part = s.substr(i, j - i);
        if (part.empty() || part.size() > 10 || part.find_first_not_of("0123456789") != std::string::npos)
            throw usage_error("token " + std::to_string(out.size()) + " ('" + part + "') is not a non-negative integer", "tokens");
        long long v = std::stoll(part);
        if (v >= vocab)
            throw usage_error(strprintf("token %zu: id %lld >= vocab_size %d", out.size(), v, vocab), "tokens");
        out.push_back((int)v);
        i = j + 1;
    }
    if (out.empty()) throw usage_error("no tokens given", "tokens");
    return out;
}

int cmd_logits(const Args& a) {
    auto be = make_cpu_backend();
    auto w = load_llama(a.get("--model", true));
    std::vector<int> toks = parse_tokens(a.get("--tokens", true), w->cfg.vocab);
    std::unique_ptr<Lora> lora;
    std::string ad = a.get("--adapter", false);
    if (!ad.empty()) {
        LoraConfig lc = read_adapter_config(ad);
        lora = std::make_unique<Lora>(*be, w->cfg, lc);
        load_adapter_weights(ad + "/adapter_model.safetensors", *lora);
    }
    Model model(*be, *w, lora.get());
    int T = (int)toks.size(), V = w->cfg.vocab;
    MicroBatch mb;
    mb.B = 1;
    mb.T = T;
    mb.tokens = toks;
    mb.targets.assign(T, -1);
    for (int t = 0; t + 1 < T; t++) mb.targets[t] = toks[t + 1];
    mb.lens = {T};
    std::vector<float> logits((size_t)T * V);
    PassResult r = model.run(mb, false, 0, 0, logits.data());
    double loss = r.n_targets ? r.loss_sum / r.n_targets : 0.0;
    Json j = Json::object();
    j.set("n_tokens", Json::of(T));
    j.set("vocab_size", Json::of(V));
    j.set("loss", r.n_targets ? Json::of(loss) : Json::null());
    Json am = Json::array();
    for (int t = 0; t < T; t++) {
        const float* l = logits.data() + (size_t)t * V;
        am.push(Json::of((int)(std::max_element(l, l + V) - l)));
    }
    j.set("argmax", am);
    std::string out = a.get("--out", false);
    if (!out.empty()) {
        std::vector<int64_t> ids(toks.begin(), toks.end());
        float lossf = (float)loss;
        save_safetensors(out, {{"logits", DType::F32, {T, V}, logits.data()},
                               {"loss", DType::F32, {}, &lossf},
                               {"input_ids", DType::I64, {T}, ids.data()}});
        j.set("out", Json::of(out));
    }
    std::printf("%s\n", json_dump(j).c_str());
    return EXIT_OK;
}

void report(const Error& e) {
    Json j = Json::object();
    j.set("code", Json::of(e.code));
    j.set("kind", Json::of(exit_kind(e.code)));
    j.set("message", Json::of(std::string(e.what())));
    if (!e.file.empty()) j.set("file", Json::of(e.file));
    if (!e.tensor.empty()) j.set("tensor", Json::of(e.tensor));
    if (!e.field.empty()) j.set("field", Json::of(e.field));
    if (!e.layer.empty()) j.set("layer", Json::of(e.layer));
    emit_event("error", j);
    std::fprintf(stderr, "loraforge-core: error (%s): %s\n", exit_kind(e.code), e.what());
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return EXIT_USAGE;
    }
    std::string verb = argv[1];
    try {
        if (verb == "--version" || verb == "version") {
            std::printf("loraforge-core %s (backends:", LORAFORGE_VERSION);
            for (auto& b : backend_names()) std::printf(" %s", b.c_str());
            std::printf(")\n");
            return EXIT_OK;
        }
        if (verb == "backends") {
            parse_args(argc, argv, {}, {});
            Json list = Json::array();
            for (const BackendInfo& b : probe_backends()) {
                Json j = Json::object();
                j.set("name", Json::of(b.name));
                j.set("compiled", Json::of(b.compiled));
                j.set("device", Json::of(b.device));
                j.set("detail", Json::of(b.detail));
                list.push(j);
            }
            Json out = Json::object();
            out.set("version", Json::of(std::string(LORAFORGE_VERSION)));
            out.set("backends", list);
            std::printf("%s\n", json_dump(out).c_str());
            return EXIT_OK;
        }
        if (verb == "--help" || verb == "-h" || verb == "help") {
            std::fputs(kUsage, stdout);
            return EXIT_OK;
        }
        if (verb == "train") {
            Args a = parse_args(argc, argv, {"--config"}, {"--no-resume", "--check-numerics"});
            RunConfig cfg = load_run_config(a.get("--config", true));
            TrainOptions o;
            o.no_resume = a.has_flag("--no-resume");
            o.check_numerics = a.has_flag("--check-numerics");
            return run_train(cfg, o);
        }
        if (verb == "bench") {
            Args a = parse_args(argc, argv, {"--config", "--steps"}, {});
            RunConfig cfg = load_run_config(a.get("--config", true));
            std::string steps = a.get("--steps", true);
            if (steps.empty() || steps.size() > 9 || steps.find_first_not_of("0123456789") != std::string::npos || std::stoi(steps) < 1)
                throw usage_error("--steps must be a positive integer", "steps");
            return run_bench(cfg, std::stoi(steps));
        }
        if (verb == "logits") {
            Args a = parse_args(argc, argv, {"--model", "--adapter", "--tokens", "--out"}, {});
            return cmd_logits(a);
        }
        if (verb == "generate" || verb == "score") {
            const bool gen = verb == "generate";
            Args a = parse_args(argc, argv, gen ? generate_value_options() : score_value_options(),
                                gen ? std::vector<std::string>{"--stream"} : std::vector<std::string>{});
            InferenceOptions o = parse_inference_options(gen, a.opts, a.has_flag("--stream"));
            return gen ? run_generate(o) : run_score(o);
        }
        if (verb == "merge") {
            Args a = parse_args(argc, argv, {"--model", "--adapter", "--out"}, {});
            merge_adapter(a.get("--model", true), a.get("--adapter", true), a.get("--out", true));
            return EXIT_OK;
        }
        throw usage_error("unknown verb '" + verb + "'\n" + kUsage);
    } catch (const Error& e) {
        report(e);
        return e.code;
    } catch (const std::bad_alloc&) {
        report(Error(EXIT_INTERNAL, "out of memory"));
        return EXIT_INTERNAL;
    } catch (const std::exception& e) {
        report(Error(EXIT_INTERNAL, std::string("unexpected: ") + e.what()));
        return EXIT_INTERNAL;
    }
}
