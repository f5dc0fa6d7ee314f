// Op tests (ggml test-backend-ops style).
//   test_ops [test|perf] [-o OP] [-b BACKEND] [-p fp32|fp16|bf16]   (-p: a device backend's precision)
// test: every op's backward against central finite differences of its forward, both in double
//       precision (the templated reference of ops.h); then every compiled-in backend's fp32 op
//       against the double reference with a per-op tolerance, NaN/inf checked, unsupported ops
//       reported as skipped. A new backend's kernel is done when it passes here.
// perf: times each op of each backend on a larger shape.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/kernels.h"
#include "error.h"
#include "ops.h"
#include "ops_decode.h"
#include "rng.h"
#include "safetensors.h"

using namespace lf;
using Vec = std::vector<double>;

namespace {

int g_fail = 0, g_pass = 0, g_skip = 0;
std::string g_op_filter, g_backend_filter;
BackendOptions g_options;  // -p: the precision a device backend keeps frozen tensors in
bool g_perf = false;

Vec randv(size_t n, uint64_t seed, double scale = 1.0, double mean = 0.0) {
    Rng r(seed);
    Vec v(n);
    for (auto& x : v) x = mean + scale * (2.0 * r.uniform() - 1.0);
    return v;
}
std::vector<float> tof(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }
double dot(const Vec& a, const Vec& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
    return s;
}
void result(const std::string& what, double err, double tol) {
    bool ok = err <= tol && std::isfinite(err);
    std::printf("  %-58s err %.2e  tol %.0e  %s\n", what.c_str(), err, tol, ok ? "ok" : "FAIL");
    ok ? g_pass++ : g_fail++;
}
void result_bool(const std::string& what, bool ok) {
    std::printf("  %-58s %s\n", what.c_str(), ok ? "ok" : "FAIL");
    ok ? g_pass++ : g_fail++;
}
// max |a-b| / max(1, max|b|)
double rel_err(const Vec& a, const Vec& b) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < a.size(); i++) {
        if (!std::isfinite(a[i])) return INFINITY;
        num = std::max(num, std::fabs(a[i] - b[i]));
        den = std::max(den, std::fabs(b[i]));
    }
    return num / std::max(den, 1.0);
}

// Central differences of L(inputs) = sum(forward(inputs) * R) for each differentiable input,
// against the analytic gradients of backward(inputs, R).
void fd_check(const std::string& op, std::vector<Vec> inputs, const std::vector<int>& diff, const std::vector<std::string>& names,
              std::function<Vec(const std::vector<Vec>&)> fwd, std::function<std::vector<Vec>(const std::vector<Vec>&, const Vec&)> bwd,
              double tol = 1e-6) {
    Vec out = fwd(inputs);
    Vec R = randv(out.size(), 99, 1.0);
    std::vector<Vec> grads = bwd(inputs, R);
    for (size_t k = 0; k < diff.size(); k++) {
        int idx = diff[k];
        Vec num(inputs[idx].size());
        const double h = 1e-6;
        for (size_t i = 0; i < num.size(); i++) {
            double save = inputs[idx][i];
            inputs[idx][i] = save + h;
            double lp = dot(fwd(inputs), R);
            inputs[idx][i] = save - h;
            double lm = dot(fwd(inputs), R);
            inputs[idx][i] = save;
            num[i] = (lp - lm) / (2 * h);
        }
        result(op + " backward d" + names[k] + " vs finite differences (f64)", rel_err(grads[k], num), tol);
    }
}

bool want_op(Op op) { return g_op_filter.empty() || g_op_filter == op_name(op); }

// device buffer helper
struct Buf {
    Backend& be;
    float* p;
    size_t n;
    Buf(Backend& b, size_t n_) : be(b), p(b.alloc(n_)), n(n_) {}
    Buf(Backend& b, const Vec& v) : be(b), p(b.alloc(v.size())), n(v.size()) {
        auto f = tof(v);
        be.upload(p, f.data(), n);
    }
    ~Buf() { be.free(p); }
    Vec get() const {
        std::vector<float> f(n);
        be.download(f.data(), p, n);
        return Vec(f.begin(), f.end());
    }
};

// A compiled-in backend, or null (counted as skipped, with the reason) when this machine lacks
// its device: a CUDA build runs the CPU half of these tests on a machine without a GPU.
std::unique_ptr<Backend> open_backend(const std::string& name) {
    for (const BackendInfo& b : probe_backends())
        if (b.name == name && !b.device) {
            static std::set<std::string> said;
            if (said.insert(name).second) std::printf("  backend %s skipped: %s\n", name.c_str(), b.detail.c_str());
            g_skip++;
            return nullptr;
        }
    return make_backend(name, g_options);
}
bool reads_frozen(Op op) {
    return op == Op::MatmulForward || op == Op::MatmulBackwardInput || op == Op::RmsnormForward ||
           op == Op::RmsnormBackward || op == Op::Embedding || op == Op::MatmulRows;
}
// |x w| products with both rounded: 2 u relative per product, and a sum's error stays within
// that bound relative to the sum of |products|; 4 u leaves room for the reference's own rounding
double frozen_tol() {
    const double u = g_options.precision == "fp16" ? std::ldexp(1.0, -11) : g_options.precision == "bf16" ? std::ldexp(1.0, -8) : 0;
    return 4 * u;
}

// Runs `run` on every selected backend and compares its outputs with the f64 reference.
void backend_check(Op op, double tol, const std::vector<Vec>& ref, std::function<std::vector<Vec>(Backend&)> run) {
    for (auto& name : backend_names()) {
        if (!g_backend_filter.empty() && name != g_backend_filter) continue;
        auto be = open_backend(name);
        if (!be) continue;
        if (!be->supports_op(op, DType::F32)) {
            std::printf("  %-58s skipped (not supported)\n", (std::string(op_name(op)) + " [" + name + "]").c_str());
            g_skip++;
            continue;
        }
        std::vector<Vec> got = run(*be);
        double err = 0;
        for (size_t i = 0; i < ref.size(); i++) err = std::max(err, rel_err(got[i], ref[i]));
        // ops reading a frozen tensor (uploaded with weights()) see it rounded to the backend's
        // precision: a relative error of up to 2^-11 (fp16) or 2^-8 (bf16) per operand
        const double t = name != "cpu" && reads_frozen(op) ? std::max(tol, frozen_tol()) : tol;
        result(std::string(op_name(op)) + " [" + name + " " + (name == "cpu" ? "fp32" : g_options.precision) +
                   "] vs f64 reference",
               err, t);
    }
}

template <class F>
void perf(Op op, const char* shape, double flops, F run) {
    for (auto& name : backend_names()) {
        if (!g_backend_filter.empty() && name != g_backend_filter) continue;
        auto be = open_backend(name);
        if (!be || !be->supports_op(op, DType::F32)) continue;
        run(*be);  // warm-up
        int reps = 0;
        auto t0 = std::chrono::steady_clock::now();
        double el = 0;
        do {
            run(*be);
            reps++;
            el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        } while (el < 0.3);
        std::printf("  %-22s %-6s %-28s %9.3f ms  %7.2f GFLOP/s\n", op_name(op), name.c_str(), shape, 1e3 * el / reps,
                    flops > 0 ? flops * reps / el / 1e9 : 0.0);
    }
}

// ---------------------------------------------------------------------------------------------

void test_matmul() {
    const int N = 5, I = 7, O = 6;
    const double alpha = 0.7, beta = 0.3;
    Vec x = randv(N * I, 1), W = randv(O * I, 2), o0 = randv(N * O, 3);
    auto fwd = [&](const std::vector<Vec>& in) {
        Vec out = o0;
        ops::matmul_forward(out.data(), in[0].data(), in[1].data(), N, I, O, alpha, beta);
        return out;
    };
    auto bwd = [&](const std::vector<Vec>& in, const Vec& d) {
        Vec dx(N * I, 0.0), dW(O * I, 0.0);
        ops::matmul_backward_input(dx.data(), d.data(), in[1].data(), N, I, O, alpha, 0.0);
        ops::matmul_backward_weight(dW.data(), d.data(), in[0].data(), N, I, O, alpha, 0.0);
        return std::vector<Vec>{dx, dW};
    };
    if (want_op(Op::MatmulForward) || want_op(Op::MatmulBackwardInput) || want_op(Op::MatmulBackwardWeight)) {
        std::printf("matmul\n");
        fd_check("matmul", {x, W}, {0, 1}, {"x", "W"}, fwd, bwd);
        Vec ref = fwd({x, W});
        Vec R = randv(N * O, 5);
        auto g = bwd({x, W}, R);
        // W as the model passes a base weight: a frozen tensor from weights()
        const std::vector<float> Wf = tof(W);
        backend_check(Op::MatmulForward, 1e-6, {ref}, [&](Backend& be) {
            Buf bx(be, x), bo(be, o0);
            const float* w = be.weights(Wf.data(), Wf.size());
            be.matmul_forward(bo.p, bx.p, w, N, I, O, (float)alpha, (float)beta);
            Vec out = bo.get();
            be.release_weights(Wf.data());
            return std::vector<Vec>{out};
        });
        backend_check(Op::MatmulBackwardInput, 1e-6, {g[0]}, [&](Backend& be) {
            Buf bR(be, R), bx(be, N * I);
            const float* w = be.weights(Wf.data(), Wf.size());
            be.matmul_backward_input(bx.p, bR.p, w, N, I, O, (float)alpha, 0.0f);
            Vec out = bx.get();
            be.release_weights(Wf.data());
            return std::vector<Vec>{out};
        });
        backend_check(Op::MatmulBackwardWeight, 1e-6, {g[1]}, [&](Backend& be) {
            Buf bR(be, R), bx(be, x), bW(be, O * I);
            be.matmul_backward_weight(bW.p, bR.p, bx.p, N, I, O, (float)alpha, 0.0f);
            return std::vector<Vec>{bW.get()};
        });
    }
}

// The CPU backend runs small products through its own kernel (6 x 16 tiles, row and column tails)
// and keeps packed copies of frozen weights: shapes with every kind of tail, through both the
// scratch and the kept path, and a released weight whose memory then holds new values.
void test_matmul_tiles() {
    if (!want_op(Op::MatmulForward) && !want_op(Op::MatmulBackwardInput)) return;
    std::printf("matmul tiles (small-GEMM kernel, kept weight panels)\n");
    const int N = 23, I = 37, O = 35;  // 3 tiles of 6 rows + 5; panels of 16, 16 + 5 and 16, 16 + 3
    const double alpha = 1.3, beta = 1.0;
    Vec x = randv(N * I, 71), W = randv(O * I, 72), o0 = randv(N * O, 73), R = randv(N * O, 74), dx0 = randv(N * I, 75);
    Vec ref = o0, dref = dx0;
    ops::matmul_forward(ref.data(), x.data(), W.data(), N, I, O, alpha, beta);
    ops::matmul_backward_input(dref.data(), R.data(), W.data(), N, I, O, alpha, beta);
    const std::vector<float> Wf = tof(W);  // the frozen tensor: host memory, as the model has it
    for (bool frozen : {false, true}) {
        std::printf("  W %s:\n", frozen ? "a frozen tensor (kept panels, used twice)" : "a plain buffer");
        backend_check(Op::MatmulForward, 1e-6, {ref, dref}, [&](Backend& be) {
            Buf bx(be, x), bW(be, W), bo(be, o0), bR(be, R), bd(be, dx0);
            const float* w = frozen ? be.weights(Wf.data(), Wf.size()) : bW.p;
            for (int rep = 0; rep < (frozen ? 2 : 1); rep++) {
                be.upload(bo.p, tof(o0).data(), o0.size());
                be.upload(bd.p, tof(dx0).data(), dx0.size());
                be.matmul_forward(bo.p, bx.p, w, N, I, O, (float)alpha, (float)beta);
                be.matmul_backward_input(bd.p, bR.p, w, N, I, O, (float)alpha, (float)beta);
            }
            if (frozen) be.release_weights(Wf.data());
            return std::vector<Vec>{bo.get(), bd.get()};
        });
    }
    // a released tensor's memory reused with other values must not see the old panels
    {
        auto be = make_backend("cpu");
        Buf bx(*be, x), bW(*be, W), bo(*be, N * O);
        const float* w = be->weights(bW.p, W.size());  // the CPU backend's buffers are host memory
        be->matmul_forward(bo.p, bx.p, w, N, I, O, 1.0f, 0.0f);
        be->release_weights(bW.p);
        Vec W2 = randv(O * I, 76), ref2(N * O, 0.0);
        be->upload(bW.p, tof(W2).data(), W2.size());
        ops::matmul_forward(ref2.data(), x.data(), W2.data(), N, I, O, 1.0, 0.0);
        w = be->weights(bW.p, W2.size());
        be->matmul_forward(bo.p, bx.p, w, N, I, O, 1.0f, 0.0f);
        be->release_weights(bW.p);
        result("matmul after release: new weights, not the kept panels", rel_err(bo.get(), ref2), 1e-6);
    }
}

void test_rmsnorm() {
    if (!want_op(Op::RmsnormForward) && !want_op(Op::RmsnormBackward)) return;
    std::printf("rmsnorm\n");
    const int N = 4, C = 9;
    const double eps = 1e-5;
    Vec x = randv(N * C, 11), w = randv(C, 12, 0.5, 1.0);
    auto fwd = [&](const std::vector<Vec>& in) {
        Vec out(N * C), rstd(N);
        ops::rmsnorm_forward(out.data(), rstd.data(), in[0].data(), in[1].data(), N, C, eps);
        return out;
    };
    auto bwd = [&](const std::vector<Vec>& in, const Vec& d) {
        Vec out(N * C), rstd(N), dx(N * C, 0.0);
        ops::rmsnorm_forward(out.data(), rstd.data(), in[0].data(), in[1].data(), N, C, eps);
        ops::rmsnorm_backward(dx.data(), d.data(), in[0].data(), in[1].data(), rstd.data(), N, C);
        return std::vector<Vec>{dx};
    };
    fd_check("rmsnorm", {x, w}, {0}, {"x"}, fwd, bwd);
    Vec R = randv(N * C, 13);
    backend_check(Op::RmsnormForward, 1e-6, {fwd({x, w})}, [&](Backend& be) {
        Buf bx(be, x), bw(be, w), bo(be, N * C), br(be, N);
        be.rmsnorm_forward(bo.p, br.p, bx.p, bw.p, N, C, eps);
        return std::vector<Vec>{bo.get()};
    });
    backend_check(Op::RmsnormBackward, 1e-5, bwd({x, w}, R), [&](Backend& be) {
        Buf bx(be, x), bw(be, w), bo(be, N * C), br(be, N), bR(be, R), bd(be, N * C);
        be.rmsnorm_forward(bo.p, br.p, bx.p, bw.p, N, C, eps);
        be.rmsnorm_backward(bd.p, bR.p, bx.p, bw.p, br.p, N, C);
        return std::vector<Vec>{bd.get()};
    });
}

void test_rope() {
    if (!want_op(Op::RopeForward) && !want_op(Op::RopeBackward)) return;
    std::printf("rope\n");
    const int B = 2, T = 5, nh = 3, hd = 8;
    std::vector<float> cs(T * hd / 2), sn(T * hd / 2);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < hd / 2; i++) {
            double a = t * std::pow(10000.0, -2.0 * i / hd);
            cs[t * hd / 2 + i] = (float)std::cos(a);
            sn[t * hd / 2 + i] = (float)std::sin(a);
        }
    Vec x = randv(B * T * nh * hd, 21);
    auto fwd = [&](const std::vector<Vec>& in) {
        Vec o = in[0];
        ops::rope_forward(o.data(), cs.data(), sn.data(), B, T, nh, hd);
        return o;
    };
    auto bwd = [&](const std::vector<Vec>& in, const Vec& d) {
        Vec g = d;
        ops::rope_backward(g.data(), cs.data(), sn.data(), B, T, nh, hd);
        return std::vector<Vec>{g};
    };
    fd_check("rope", {x}, {0}, {"x"}, fwd, bwd);
    Vec R = randv(x.size(), 22);
    backend_check(Op::RopeForward, 1e-6, {fwd({x})}, [&](Backend& be) {
        Buf bx(be, x), bc(be, Vec(cs.begin(), cs.end())), bs(be, Vec(sn.begin(), sn.end()));
        be.rope_forward(bx.p, bc.p, bs.p, B, T, nh, hd);
        return std::vector<Vec>{bx.get()};
    });
    backend_check(Op::RopeBackward, 1e-6, bwd({x}, R), [&](Backend& be) {
        Buf bR(be, R), bc(be, Vec(cs.begin(), cs.end())), bs(be, Vec(sn.begin(), sn.end()));
        be.rope_backward(bR.p, bc.p, bs.p, B, T, nh, hd);
        return std::vector<Vec>{bR.get()};
    });
}

// hd 4 and 48 have no compiled kernel in the CPU backend (the sgemm path runs); hd 8 and 16 do
void test_attention(int window, int hd, int H = 4, int KV = 2) {
    if (!want_op(Op::AttentionForward) && !want_op(Op::AttentionBackward)) return;
    std::printf("attention (%d query heads / %d KV heads, head_dim %d, right padding%s)\n", H, KV, hd,
                window ? ", sliding window 3" : "");
    // T > the reference's query block so that blocks and the causal key limit are exercised;
    // T and the padded length are not multiples of the fast kernel's 8-key chunks
    const int B = 2, T = ops::kAttnBlock + 7;
    std::vector<int> lens = {T, T - 9};  // second row padded
    Vec q = randv(B * T * H * hd, 31), k = randv(B * T * KV * hd, 32), v = randv(B * T * KV * hd, 33);
    auto fwd = [&](const std::vector<Vec>& in) {
        Vec out(B * T * H * hd), P((size_t)B * H * T);
        ops::attention_forward(out.data(), P.data(), in[0].data(), in[1].data(), in[2].data(), lens.data(), B, T, H, KV, hd, window);
        return out;
    };
    auto bwd = [&](const std::vector<Vec>& in, const Vec& d) {
        Vec out(B * T * H * hd), P((size_t)B * H * T);
        ops::attention_forward(out.data(), P.data(), in[0].data(), in[1].data(), in[2].data(), lens.data(), B, T, H, KV, hd, window);
        Vec dq(q.size()), dk(k.size()), dv(v.size());
        ops::attention_backward(dq.data(), dk.data(), dv.data(), d.data(), P.data(), in[0].data(), in[1].data(), in[2].data(),
                                lens.data(), B, T, H, KV, hd, window);
        return std::vector<Vec>{dq, dk, dv};
    };
    // finite differences check the f64 reference once (its code does not depend on hd); the other
    // head sizes compare the backends against that reference
    if (hd == 4) fd_check("attention", {q, k, v}, {0, 1, 2}, {"q", "k", "v"}, fwd, bwd);
    // the mask: a padded query sees only real keys; a real query never sees later keys
    {
        Vec q2 = q, k2 = k, v2 = v;
        for (int d = 0; d < KV * hd; d++) v2[((size_t)1 * T + T - 1) * KV * hd + d] += 100.0;  // padding key of row 1
        for (int d = 0; d < KV * hd; d++) v2[((size_t)0 * T + T - 1) * KV * hd + d] += 100.0;  // last key of row 0
        Vec a = fwd({q, k, v}), b = fwd({q2, k2, v2});
        double leak = 0;
        for (int b_ = 0; b_ < B; b_++)
            for (int t = 0; t < T; t++) {
                if (b_ == 0 && t == T - 1) continue;  // row 0's last position does see its own key
                for (int i = 0; i < H * hd; i++) {
                    size_t idx = ((size_t)b_ * T + t) * H * hd + i;
                    leak = std::max(leak, std::fabs(a[idx] - b[idx]));
                }
            }
        result("attention mask: no causal or padding leak", leak, 0.0);
    }
    Vec R = randv(B * T * H * hd, 34);
    backend_check(Op::AttentionForward, 1e-5, {fwd({q, k, v})}, [&](Backend& be) {
        Buf bq(be, q), bk(be, k), bv(be, v), bo(be, q.size()), bP(be, (size_t)B * H * T);
        be.attention_forward(bo.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, KV, hd, window);
        return std::vector<Vec>{bo.get()};
    });
    backend_check(Op::AttentionBackward, 1e-5, bwd({q, k, v}, R), [&](Backend& be) {
        Buf bq(be, q), bk(be, k), bv(be, v), bo(be, q.size()), bP(be, (size_t)B * H * T), bR(be, R);
        Buf dq(be, q.size()), dk(be, k.size()), dv(be, v.size());
        be.attention_forward(bo.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, KV, hd, window);
        be.attention_backward(dq.p, dk.p, dv.p, bR.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, KV, hd, window);
        return std::vector<Vec>{dq.get(), dk.get(), dv.get()};
    });
    // the same with the forward's probabilities kept for backward, where a backend keeps them
    std::printf("  with kept probabilities:\n");
    backend_check(Op::AttentionBackward, 1e-5, bwd({q, k, v}, R), [&](Backend& be) {
        const size_t np = be.attention_probs_floats(B, T, H, hd);
        Buf bq(be, q), bk(be, k), bv(be, v), bo(be, q.size()), bP(be, (size_t)B * H * T), bR(be, R), bp(be, np ? np : 1);
        Buf dq(be, q.size()), dk(be, k.size()), dv(be, v.size());
        float* probs = np ? bp.p : nullptr;
        be.attention_forward(bo.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, KV, hd, window, probs);
        be.attention_backward(dq.p, dk.p, dv.p, bR.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, KV, hd, window, probs);
        return std::vector<Vec>{dq.get(), dk.get(), dv.get()};
    });
}

void test_swiglu() {
    if (!want_op(Op::SwigluForward) && !want_op(Op::SwigluBackward)) return;
    std::printf("swiglu\n");
    const int n = 43;  // five 8-wide blocks and a tail of 3
    Vec g = randv(n, 41, 4.0), u = randv(n, 42, 2.0);
    auto fwd = [&](const std::vector<Vec>& in) {
        Vec h(n);
        ops::swiglu_forward(h.data(), in[0].data(), in[1].data(), n);
        return h;
    };
    auto bwd = [&](const std::vector<Vec>& in, const Vec& d) {
        Vec dg(n), du(n);
        ops::swiglu_backward(dg.data(), du.data(), d.data(), in[0].data(), in[1].data(), n);
        return std::vector<Vec>{dg, du};
    };
    fd_check("swiglu", {g, u}, {0, 1}, {"g", "u"}, fwd, bwd);
    Vec R = randv(n, 43);
    backend_check(Op::SwigluForward, 1e-6, {fwd({g, u})}, [&](Backend& be) {
        Buf bg(be, g), bu(be, u), bh(be, n);
        be.swiglu_forward(bh.p, bg.p, bu.p, n);
        return std::vector<Vec>{bh.get()};
    });
    backend_check(Op::SwigluBackward, 1e-6, bwd({g, u}, R), [&](Backend& be) {
        Buf bg(be, g), bu(be, u), bR(be, R), dg(be, n), du(be, n);
        be.swiglu_backward(dg.p, du.p, bR.p, bg.p, bu.p, n);
        return std::vector<Vec>{dg.get(), du.get()};
    });
}

void test_cross_entropy() {
    if (!want_op(Op::CrossEntropy)) return;
    std::printf("cross_entropy\n");
    const int N = 5, V = 11;
    std::vector<int> tg = {3, -1, 0, 10, 7};
    Vec l = randv(N * V, 51, 5.0);
    std::vector<double> rl(N);
    auto fwd = [&](const std::vector<Vec>& in) {
        return Vec{ops::cross_entropy<double>(nullptr, in[0].data(), tg.data(), N, V, 1.0, rl.data())};
    };
    auto bwd = [&](const std::vector<Vec>& in, const Vec& d) {
        Vec dl(N * V);
        ops::cross_entropy<double>(dl.data(), in[0].data(), tg.data(), N, V, d[0], rl.data());
        return std::vector<Vec>{dl};
    };
    fd_check("cross_entropy", {l}, {0}, {"logits"}, fwd, bwd);
    // against the textbook definition
    double direct = 0;
    for (int n = 0; n < N; n++) {
        if (tg[n] < 0) continue;
        double s = 0;
        for (int i = 0; i < V; i++) s += std::exp(l[n * V + i]);
        direct += std::log(s) - l[n * V + tg[n]];
    }
    result("cross_entropy loss vs log(sum exp) - logit[target]", std::fabs(fwd({l})[0] - direct) / direct, 1e-12);
    backend_check(Op::CrossEntropy, 1e-5, {fwd({l}), bwd({l}, Vec{0.25})[0]}, [&](Backend& be) {
        Buf bl(be, l), bd(be, N * V);
        std::vector<double> r(N);
        double s = be.cross_entropy(nullptr, bl.p, tg.data(), N, V, 0.25, r.data());
        be.cross_entropy(bd.p, bl.p, tg.data(), N, V, 0.25, r.data());
        return std::vector<Vec>{Vec{s}, bd.get()};
    });
}

void test_dropout() {
    if (!want_op(Op::DropoutApply) && !want_op(Op::DropoutBackward)) return;
    std::printf("dropout\n");
    const int n = 20000;
    const double p = 0.25;
    Vec x = randv(n, 61, 1.0, 2.0);  // all > 0
    Vec out(n);
    ops::dropout_apply(out.data(), x.data(), n, p, 1234);
    int zeros = 0;
    double scale_err = 0;
    for (int i = 0; i < n; i++) {
        if (out[i] == 0) zeros++;
        else scale_err = std::max(scale_err, std::fabs(out[i] - x[i] / (1 - p)));
    }
    result("dropout drop fraction vs p=0.25 (20000 draws)", std::fabs((double)zeros / n - p), 0.015);
    result("dropout kept values scaled by 1/(1-p)", scale_err, 1e-12);
    Vec out2(n);
    ops::dropout_apply(out2.data(), x.data(), n, p, 1235);
    int same = 0;
    for (int i = 0; i < n; i++) same += (out[i] == 0) == (out2[i] == 0);
    result("dropout masks differ between keys", same == n ? 1.0 : 0.0, 0.0);
    auto fwd = [&](const std::vector<Vec>& in) {
        Vec o(64);
        ops::dropout_apply(o.data(), in[0].data(), 64, p, 77);
        return o;
    };
    auto bwd = [&](const std::vector<Vec>& in, const Vec& d) {
        Vec g(64, 0.0);
        ops::dropout_backward_acc(g.data(), d.data(), 64, p, 77);
        return std::vector<Vec>{g};
    };
    Vec xs(x.begin(), x.begin() + 64);
    fd_check("dropout", {xs}, {0}, {"x"}, fwd, bwd);
    Vec R = randv(64, 62);
    backend_check(Op::DropoutApply, 1e-6, {fwd({xs})}, [&](Backend& be) {
        Buf bx(be, xs), bo(be, 64);
        be.dropout_apply(bo.p, bx.p, 64, p, 77);
        return std::vector<Vec>{bo.get()};
    });
    backend_check(Op::DropoutBackward, 1e-6, bwd({xs}, R), [&](Backend& be) {
        Buf bR(be, R), bg(be, 64);
        be.dropout_backward(bg.p, bR.p, 64, p, 77);
        return std::vector<Vec>{bg.get()};
    });
}

void test_adamw() {
    if (!want_op(Op::AdamW)) return;
    std::printf("adamw\n");
    const int n = 50, steps = 5;
    const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    Vec p0 = randv(n, 71), grads[steps];
    for (int s = 0; s < steps; s++) grads[s] = randv(n, 80 + s, 0.1);
    // an independent transcription of torch.optim.AdamW's step (decoupled decay)
    Vec pr = p0, m(n, 0.0), v(n, 0.0);
    for (int s = 1; s <= steps; s++) {
        for (int i = 0; i < n; i++) {
            double g = grads[s - 1][i];
            pr[i] -= lr * wd * pr[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double mh = m[i] / (1 - std::pow(b1, s)), vh = v[i] / (1 - std::pow(b2, s));
            pr[i] -= lr * mh / (std::sqrt(vh) + eps);
        }
    }
    Vec pd = p0, md(n, 0.0), vd(n, 0.0);
    for (int s = 1; s <= steps; s++) ops::adamw_update(pd.data(), grads[s - 1].data(), md.data(), vd.data(), n, lr, b1, b2, eps, wd, s);
    result("adamw (f64) vs the textbook AdamW update", rel_err(pd, pr), 1e-12);
    backend_check(Op::AdamW, 1e-6, {pr}, [&](Backend& be) {
        Buf bp(be, p0), bm(be, n), bv(be, n);
        for (int s = 1; s <= steps; s++) {
            Buf bg(be, grads[s - 1]);
            be.adamw(bp.p, bg.p, bm.p, bv.p, n, lr, b1, b2, eps, wd, s);
        }
        return std::vector<Vec>{bp.get()};
    });
}

void test_vexp() {
    if (!g_op_filter.empty() && g_op_filter != "vexp") return;
    std::printf("vexp (fp32 exp used by softmax)\n");
    std::vector<float> x;
    for (double v = -90.0; v <= 88.0; v += 0.0137) x.push_back((float)v);
    std::vector<float> y = x;
    ops::vexp(y.data(), (int)y.size());
    double worst = 0;
    for (size_t i = 0; i < x.size(); i++) {
        double ref = std::exp((double)x[i]);
        if (x[i] < -87.0f) { worst = std::max(worst, (double)y[i] == 0.0 ? 0.0 : 1.0); continue; }
        worst = std::max(worst, std::fabs(y[i] - ref) / ref);
    }
    result("vexp vs exp (f64) over [-87, 88], relative", worst, 3e-7);
    // one element at a time takes the scalar path: it must give the same bits as the vector path
    int differ = 0;
    for (size_t i = 0; i < x.size(); i++) {
        float one = x[i];
        ops::vexp(&one, 1);
        differ += std::memcmp(&one, &y[i], 4) != 0;
    }
    result("vexp scalar path == vector path, bit for bit", differ, 0);
}

void test_embedding() {
    if (!want_op(Op::Embedding)) return;
    std::printf("embedding\n");
    const int V = 10, C = 6, N = 4;
    Vec table = randv(V * C, 91);
    std::vector<int> toks = {3, 0, 9, 3};
    Vec ref(N * C);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) ref[n * C + c] = table[toks[n] * C + c];
    backend_check(Op::Embedding, 1e-7, {ref}, [&](Backend& be) {
        Buf bt(be, table), bo(be, N * C);
        be.embedding(bo.p, toks.data(), bt.p, N, C);
        return std::vector<Vec>{bo.get()};
    });
}

// Frozen tensors stored as F16 and BF16, as a checkpoint holds them: each backend makes them
// resident in its own form (the CPU: fp32; CUDA: the run's precision, the bytes as they are when
// they match it, else converted on the device) and the ops read them. The reference uses the
// stored values decoded (exact in fp32), so the CPU and an fp32 device run match it to fp32
// rounding; a device keeping them in another 16-bit type rounds them once more (frozen_tol).
void test_frozen_dtypes() {
    if (!want_op(Op::MatmulForward) && !want_op(Op::Embedding)) return;
    const int N = 5, I = 24, O = 7, V = 7;
    Vec x = randv(N * I, 101), W = randv(O * I, 102);
    std::vector<int> toks = {6, 0, 3, 3, 5};
    for (DType d : {DType::F16, DType::BF16}) {
        std::printf("frozen tensors stored as %s\n", dtype_name(d));
        std::vector<uint16_t> bits(W.size());
        Vec Wd(W.size());
        for (size_t i = 0; i < W.size(); i++) {
            bits[i] = d == DType::F16 ? f32_to_f16((float)W[i]) : f32_to_bf16((float)W[i]);
            Wd[i] = d == DType::F16 ? f16_to_f32(bits[i]) : bf16_to_f32(bits[i]);
        }
        const FrozenTensor t{d, (int64_t)bits.size(), bits.data()};
        if (want_op(Op::MatmulForward)) {
            Vec ref(N * O, 0.0);
            ops::matmul_forward(ref.data(), x.data(), Wd.data(), N, I, O, 1.0, 0.0);
            backend_check(Op::MatmulForward, 1e-6, {ref}, [&](Backend& be) {
                Buf bx(be, x), bo(be, (size_t)N * O);
                const float* w = be.weights(t);
                be.matmul_forward(bo.p, bx.p, w, N, I, O, 1.0f, 0.0f);
                Vec out = bo.get();
                be.release_weights(t.data);
                return std::vector<Vec>{out};
            });
        }
        if (want_op(Op::Embedding)) {  // W as a [V, I] table (its first V rows)
            Vec ref((size_t)toks.size() * I);
            for (size_t n = 0; n < toks.size(); n++)
                for (int c = 0; c < I; c++) ref[n * I + c] = Wd[(size_t)toks[n] * I + c];
            const FrozenTensor table{d, (int64_t)V * I, bits.data()};
            backend_check(Op::Embedding, 0, {ref}, [&](Backend& be) {
                Buf bo(be, ref.size());
                const float* w = be.weights(table);
                be.embedding(bo.p, toks.data(), w, (int)toks.size(), I);
                Vec out = bo.get();
                be.release_weights(table.data);
                return std::vector<Vec>{out};
            });
        }
    }
}

void test_scatter_rows() {
    if (!want_op(Op::ScatterRows)) return;
    std::printf("scatter_rows\n");
    const int N = 7, C = 5, n = 3;
    Vec x = randv(n * C, 92), out0 = randv(N * C, 93);
    std::vector<int> rows = {5, 0, 3};
    Vec ref(N * C);  // a copy: exact, in the buffers' fp32 values; rows not scattered to keep theirs
    for (int i = 0; i < N * C; i++) ref[i] = (float)out0[i];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) ref[rows[i] * C + c] = (float)x[i * C + c];
    backend_check(Op::ScatterRows, 0, {ref}, [&](Backend& be) {
        Buf bx(be, x), bo(be, out0);
        be.scatter_rows(bo.p, bx.p, rows.data(), n, C);
        return std::vector<Vec>{bo.get()};
    });
}

// zero, add, scale, sum_squares, all_finite: the step's gradient sum, clipping, norm and the
// numerics check
void test_elementwise() {
    const int n = 1000;  // not a multiple of 8: the tails
    Vec x = randv(n, 94), y = randv(n, 95);
    if (want_op(Op::Zero)) {
        std::printf("zero\n");
        backend_check(Op::Zero, 0, {Vec(n, 0.0)}, [&](Backend& be) {
            Buf by(be, y);
            be.zero(by.p, n);
            return std::vector<Vec>{by.get()};
        });
    }
    if (want_op(Op::Add)) {
        std::printf("add\n");
        Vec ref(n);
        for (int i = 0; i < n; i++) ref[i] = (double)(float)y[i] + (double)(float)x[i];
        backend_check(Op::Add, 1.2e-7,  // one fp32 rounding of the exact result
                      {ref}, [&](Backend& be) {
            Buf bx(be, x), by(be, y);
            be.add(by.p, bx.p, n);
            return std::vector<Vec>{by.get()};
        });
    }
    if (want_op(Op::Scale)) {
        std::printf("scale\n");
        const float a = 0.37f;
        Vec ref(n);
        for (int i = 0; i < n; i++) ref[i] = (double)(float)y[i] * a;
        backend_check(Op::Scale, 1.2e-7, {ref}, [&](Backend& be) {
            Buf by(be, y);
            be.scale(by.p, a, n);
            return std::vector<Vec>{by.get()};
        });
    }
    if (want_op(Op::SumSquares)) {
        std::printf("sum_squares\n");
        double ref = 0;
        for (int i = 0; i < n; i++) ref += (double)(float)x[i] * (double)(float)x[i];
        backend_check(Op::SumSquares, 1e-12, {Vec{ref}}, [&](Backend& be) {
            Buf bx(be, x);
            return std::vector<Vec>{Vec{be.sum_squares(bx.p, n)}};
        });
    }
    if (want_op(Op::AllFinite)) {
        std::printf("all_finite\n");
        Vec with_nan = x, with_inf = x;
        with_nan[n - 1] = NAN;  // in the tail
        with_inf[n / 2] = INFINITY;
        backend_check(Op::AllFinite, 0, {Vec{1, 0, 0}}, [&](Backend& be) {
            Buf b0(be, x), b1(be, with_nan), b2(be, with_inf);
            return std::vector<Vec>{Vec{(double)be.all_finite(b0.p, n), (double)be.all_finite(b1.p, n),
                                        (double)be.all_finite(b2.p, n)}};
        });
    }
}

// ---------------------------------------------------------------------------------------------
// generation ops (ops_decode.h): their f64 reference against the training ops they must agree
// with, then every backend against that reference

void test_matmul_rows() {
    if (!want_op(Op::MatmulRows)) return;
    std::printf("matmul_rows (the decoder's linears: a row depends only on its x row)\n");
    // I = 300: not a multiple of 8 (the tail); O * I above small_gemm's limit (the CPU's own
    // row kernel), then a small weight (small_gemm)
    for (auto [I, O] : {std::pair<int, int>{300, 1200}, std::pair<int, int>{64, 96}}) {
        const int N = 7;
        Vec x = randv((size_t)N * I, 51), W = randv((size_t)O * I, 52);
        Vec ref((size_t)N * O);
        ops::matmul_rows(ref.data(), x.data(), W.data(), N, I, O);
        backend_check(Op::MatmulRows, 1e-5, {ref}, [&](Backend& be) {
            Buf bx(be, x), bw(be, W), bo(be, ref.size());
            be.matmul_rows(bo.p, bx.p, bw.p, N, I, O);
            return std::vector<Vec>{bo.get()};
        });
        // each row alone (N = 1), and on 1 vs 2 threads: the same bits as in the batch of 7
        const std::vector<float> Wf = tof(W);  // the frozen tensor, host memory as the model has it
        for (auto& name : backend_names()) {
            auto be = open_backend(name);
            if (!be) continue;
            Buf bx(*be, x), bo(*be, ref.size()), b1(*be, (size_t)O);
            const float* w = be->weights(Wf.data(), Wf.size());
            be->set_threads(2);
            be->matmul_rows(bo.p, bx.p, w, N, I, O);
            Vec all = bo.get();
            be->set_threads(1);
            double diff = 0;
            for (int n = 0; n < N; n++) {
                be->matmul_rows(b1.p, bx.p + (size_t)n * I, w, 1, I, O);
                Vec one = b1.get();
                for (int o = 0; o < O; o++) diff = std::max(diff, std::fabs(one[o] - all[(size_t)n * O + o]));
            }
            be->release_weights(Wf.data());
            be->set_threads(2);
            result(strprintf("matmul_rows [%s] I %d O %d: row alone on 1 thread == in a batch of 7 on 2", name.c_str(), I, O),
                   diff, 0.0);
        }
    }
}

void test_decode_ops(int window) {
    if (!want_op(Op::RopeForwardAt) && !want_op(Op::KvCacheWrite) && !want_op(Op::AttentionCached)) return;
    std::printf("generation ops (rope at positions, KV cache write, cached attention%s)\n", window ? ", window 3" : "");
    const int B = 3, T = 11, H = 4, KV = 2, hd = 8, Tcap = 16, qs = H * hd, ks = KV * hd;
    std::vector<float> cs(Tcap * hd / 2), sn(Tcap * hd / 2);
    for (int t = 0; t < Tcap; t++)
        for (int i = 0; i < hd / 2; i++) {
            double a = t * std::pow(10000.0, -2.0 * i / hd);
            cs[t * hd / 2 + i] = (float)std::cos(a);
            sn[t * hd / 2 + i] = (float)std::sin(a);
        }
    // full sequences of length T (no padding), as the training ops see them
    Vec q = randv((size_t)B * T * qs, 41), k = randv((size_t)B * T * ks, 42), v = randv((size_t)B * T * ks, 43);
    std::vector<int> lens(B, T);
    Vec qr = q, kr = k, ref((size_t)B * T * qs), lse((size_t)B * H * T);
    ops::rope_forward(qr.data(), cs.data(), sn.data(), B, T, H, hd);
    ops::rope_forward(kr.data(), cs.data(), sn.data(), B, T, KV, hd);
    ops::attention_forward(ref.data(), lse.data(), qr.data(), kr.data(), v.data(), lens.data(), B, T, H, KV, hd, window);
    // the same through the cache: a prefill of P[b] tokens at position 0, then one token at a time
    const std::vector<int> P = {4, 1, 7};
    auto slice = [&](const Vec& x, int width, const std::vector<int>& pos, int n) {
        Vec o((size_t)B * n * width);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < n; i++)
                for (int d = 0; d < width; d++) o[((size_t)b * n + i) * width + d] = x[((size_t)b * T + pos[b] + i) * width + d];
        return o;
    };
    auto decode = [&](auto&& rope_at, auto&& write, auto&& attend) {
        Vec out((size_t)B * T * qs);
        // step 0: each sequence's first P[b] tokens (the batch is padded to max P: the extra rows
        // are at positions >= P[b] and are overwritten by the following steps)
        std::vector<int> pos(B, 0);
        std::vector<int> done(P);
        int n = *std::max_element(P.begin(), P.end());
        while (true) {
            Vec qs_ = slice(q, qs, pos, n), ks_ = slice(k, ks, pos, n), vs_ = slice(v, ks, pos, n), o;
            rope_at(qs_, pos, n, H);
            rope_at(ks_, pos, n, KV);
            write(0, ks_, pos, n);
            write(1, vs_, pos, n);
            o = attend(qs_, pos, n);
            for (int b = 0; b < B; b++) {
                const int upto = pos[b] == 0 ? P[b] : pos[b] + 1;  // rows that are real
                for (int t = pos[b]; t < upto; t++)
                    for (int d = 0; d < qs; d++) out[((size_t)b * T + t) * qs + d] = o[((size_t)b * n + t - pos[b]) * qs + d];
            }
            bool more = false;
            for (int b = 0; b < B; b++) {
                pos[b] = pos[b] == 0 ? P[b] : pos[b] + 1;
                if (pos[b] >= T) pos[b] = T - 1;  // finished: recompute the last row (same result)
                more |= pos[b] < T - 1 || done[b] != T;
                done[b] = pos[b] + 1;
            }
            n = 1;
            if (!more) break;
        }
        return out;
    };
    Vec kc((size_t)B * Tcap * ks), vc((size_t)B * Tcap * ks);
    Vec got = decode(
        [&](Vec& x, const std::vector<int>& pos, int n, int nh) { ops::rope_forward_at(x.data(), cs.data(), sn.data(), pos.data(), B, n, nh, hd); },
        [&](int which, const Vec& x, const std::vector<int>& pos, int n) {
            ops::kv_cache_write((which ? vc : kc).data(), x.data(), pos.data(), B, n, Tcap, ks);
        },
        [&](const Vec& x, const std::vector<int>& pos, int n) {
            Vec o((size_t)B * n * qs);
            ops::attention_cached(o.data(), x.data(), kc.data(), vc.data(), pos.data(), B, n, H, KV, hd, Tcap, window);
            return o;
        });
    result("prefill + decode through the cache (f64) vs rope + attention_forward", rel_err(got, ref), 1e-12);
    // every backend's three ops, run the same way, against the f64 reference
    for (Op op : {Op::RopeForwardAt, Op::KvCacheWrite, Op::AttentionCached}) {
        if (!want_op(op)) continue;
        backend_check(op, 1e-5, {ref}, [&](Backend& be) {
            Buf kcb(be, kc.size()), vcb(be, vc.size()), cb(be, Vec(cs.begin(), cs.end())), sb(be, Vec(sn.begin(), sn.end()));
            Vec out = decode(
                [&](Vec& x, const std::vector<int>& pos, int n, int nh) {
                    Buf bx(be, x);
                    be.rope_forward_at(bx.p, cb.p, sb.p, pos.data(), B, n, nh, hd);
                    x = bx.get();
                },
                [&](int which, const Vec& x, const std::vector<int>& pos, int n) {
                    Buf bx(be, x);
                    be.kv_cache_write((which ? vcb : kcb).p, bx.p, pos.data(), B, n, Tcap, ks);
                },
                [&](const Vec& x, const std::vector<int>& pos, int n) {
                    Buf bx(be, x), bo(be, (size_t)B * n * qs);
                    be.attention_cached(bo.p, bx.p, kcb.p, vcb.p, pos.data(), B, n, H, KV, hd, Tcap, window);
                    return bo.get();
                });
            return std::vector<Vec>{out};
        });
    }
}

// best-of-7 wall time of f, in seconds
template <class F>
double best_time(F f) {
    f();
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

// ---------------------------------------------------------------------------------------------
// supports_op: a pass refuses at start, naming the op, a backend that lacks one it needs

// the CPU backend without one op (as a device backend may lack a kernel)
class WithoutOp : public Backend {
public:
    WithoutOp(Op missing) : be_(make_cpu_backend()), missing_(missing) {}
    std::string name() const override { return "cpu-without-" + std::string(op_name(missing_)); }
    bool supports_op(Op op, DType w) const override { return op != missing_ && be_->supports_op(op, w); }
    void set_threads(int n) override { be_->set_threads(n); }
    int threads() const override { return be_->threads(); }
    int replicas_for(int rows) const override { return be_->replicas_for(rows); }
    void run_replicas(int P, const std::function<void(int p)>& body) override { be_->run_replicas(P, body); }
    float* alloc(size_t n_floats) override { return be_->alloc(n_floats); }
    void free(float* p) override { be_->free(p); }
    const float* weights(const FrozenTensor& t) override { return be_->weights(t); }
    void release_weights(const void* data) override { be_->release_weights(data); }
    void upload(float* dst, const float* host, size_t n) override { be_->upload(dst, host, n); }
    void download(float* host, const float* src, size_t n) override { be_->download(host, src, n); }
    void zero(float* p, size_t n) override { be_->zero(p, n); }
    void add(float* y, const float* x, size_t n) override { be_->add(y, x, n); }
    void scale(float* y, float a, size_t n) override { be_->scale(y, a, n); }
    double sum_squares(const float* x, size_t n) override { return be_->sum_squares(x, n); }
    bool all_finite(const float* x, size_t n) override { return be_->all_finite(x, n); }
    void embedding(float* out, const int* tokens, const float* table, int N, int C) override { be_->embedding(out, tokens, table, N, C); }
    void scatter_rows(float* out, const float* x, const int* rows, int n, int C) override { be_->scatter_rows(out, x, rows, n, C); }
    void matmul_forward(float* out, const float* x, const float* W, int N, int I, int O, float alpha, float beta) override { be_->matmul_forward(out, x, W, N, I, O, alpha, beta); }
    void matmul_backward_input(float* dx, const float* dout, const float* W, int N, int I, int O, float alpha, float beta) override { be_->matmul_backward_input(dx, dout, W, N, I, O, alpha, beta); }
    void matmul_backward_weight(float* dW, const float* dout, const float* x, int N, int I, int O, float alpha, float beta) override { be_->matmul_backward_weight(dW, dout, x, N, I, O, alpha, beta); }
    void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int C, double eps) override { be_->rmsnorm_forward(out, rstd, x, w, N, C, eps); }
    void rmsnorm_backward(float* dx, const float* dout, const float* x, const float* w, const float* rstd, int N, int C) override { be_->rmsnorm_backward(dx, dout, x, w, rstd, N, C); }
    void rope_forward(float* x, const float* cos, const float* sin, int B, int T, int nh, int hd) override { be_->rope_forward(x, cos, sin, B, T, nh, hd); }
    void rope_backward(float* dx, const float* cos, const float* sin, int B, int T, int nh, int hd) override { be_->rope_backward(dx, cos, sin, B, T, nh, hd); }
    size_t attention_probs_floats(int B, int T, int H, int hd) const override { return be_->attention_probs_floats(B, T, H, hd); }
    void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int* lens, int B, int T, int H, int KV, int hd, int window, float* probs) override { be_->attention_forward(out, lse, q, k, v, lens, B, T, H, KV, hd, window, probs); }
    void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q, const float* k, const float* v, const int* lens, int B, int T, int H, int KV, int hd, int window, const float* probs) override { be_->attention_backward(dq, dk, dv, dout, lse, q, k, v, lens, B, T, H, KV, hd, window, probs); }
    void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override { be_->swiglu_forward(h, g, u, n); }
    void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override { be_->swiglu_backward(dg, du, dh, g, u, n); }
    double cross_entropy(float* dlogits, const float* logits, const int* targets, int N, int V, double grad_scale, double* row_loss) override { return be_->cross_entropy(dlogits, logits, targets, N, V, grad_scale, row_loss); }
    void dropout_apply(float* out, const float* x, int64_t n, double p, uint64_t key) override { be_->dropout_apply(out, x, n, p, key); }
    void dropout_backward(float* dx, const float* dout, int64_t n, double p, uint64_t key) override { be_->dropout_backward(dx, dout, n, p, key); }
    void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2, double eps, double wd, int64_t step) override { be_->adamw(p, g, m, v, n, lr, beta1, beta2, eps, wd, step); }
    void matmul_rows(float* out, const float* x, const float* W, int N, int I, int O) override { be_->matmul_rows(out, x, W, N, I, O); }
    void rope_forward_at(float* x, const float* cos, const float* sin, const int* pos, int B, int n, int nh, int hd) override { be_->rope_forward_at(x, cos, sin, pos, B, n, nh, hd); }
    void kv_cache_write(float* cache, const float* x, const int* pos, int B, int n, int Tcap, int width) override { be_->kv_cache_write(cache, x, pos, B, n, Tcap, width); }
    void attention_cached(float* out, const float* q, const float* kc, const float* vc, const int* pos, int B, int n, int H, int KV, int hd, int Tcap, int window) override { be_->attention_cached(out, q, kc, vc, pos, B, n, H, KV, hd, Tcap, window); }
private:
    std::unique_ptr<Backend> be_;
    Op missing_;
};

// the error require_ops throws, or "" when it does not throw
std::string require_error(const Backend& be, const std::vector<Op>& ops, DType w, const char* what) {
    try {
        require_ops(be, ops, w, what);
    } catch (const Error& e) {
        return e.detail;
    }
    return "";
}

void test_supports_op() {
    if (!g_op_filter.empty()) return;
    auto cpu = make_cpu_backend();
    bool ok = require_error(*cpu, training_ops(), DType::F32, "training").empty();
    result_bool("supports_op: the cpu backend runs every training op with F32 weights", ok);
    // every op a training step runs is asked for: take each away in turn
    for (Op op : training_ops()) {
        WithoutOp be(op);
        const std::string e = require_error(be, training_ops(), DType::F32, "training");
        const std::string want = std::string("has no ") + op_name(op) + " for F32 weights, which training needs";
        result_bool(std::string("supports_op: a backend without ") + op_name(op) + " is refused for training, naming it",
                    e.find(want) != std::string::npos);
    }
    for (DType d : {DType::F16, DType::BF16})
        result_bool(std::string("supports_op: the cpu backend runs every training op with ") + dtype_name(d) + " weights",
                    require_error(*cpu, training_ops(), d, "training").empty());
    const std::string e = require_error(*cpu, training_ops(), DType::I8, "training");
    result_bool("supports_op: the cpu backend refuses I8 weights (no int8 ops yet), naming the op",
                e.find("has no embedding for I8 weights, which training needs") != std::string::npos);
}


// The CPU backend's own kernels against the sgemm paths they replace, same inputs, same run:
// the measurements behind small_gemm_fits and the head sizes with an attention kernel.
void run_kernel_perf() {
    std::printf("CPU kernels vs OpenBLAS/sgemm reference (fp32, %d thread(s), best of 7)\n", omp_get_max_threads());
    struct G { const char* name; bool trans_b; int M, N, K; float beta; };
    const G shapes[] = {
        {"260K q_proj fwd", true, 2048, 64, 64, 0}, {"260K gate fwd", true, 2048, 172, 64, 0},
        {"260K down fwd", true, 2048, 64, 172, 0}, {"260K q_proj dx", false, 2048, 64, 64, 0},
        {"260K gate dx (acc)", false, 2048, 64, 172, 1}, {"260K LoRA B fwd (acc)", true, 2048, 64, 16, 1},
        {"260K lm_head fwd", true, 1600, 512, 64, 0}, {"260K lm_head dx", false, 1600, 64, 512, 0},
        {"15M q_proj fwd", true, 2048, 288, 288, 0}, {"15M gate fwd", true, 2048, 768, 288, 0},
        {"15M down dx", false, 2048, 768, 288, 0}, {"15M gate dx (acc)", false, 2048, 288, 768, 1},
    };
    for (const G& g : shapes) {
        std::vector<float> A = tof(randv((size_t)g.M * g.K, 81)), B = tof(randv((size_t)g.N * g.K, 82));
        std::vector<float> C1((size_t)g.M * g.N, 0.5f), C2 = C1, Bp(ops::small_gemm_packed_floats(g.N, g.K));
        const int ldb = g.trans_b ? g.K : g.N;
        ops::small_gemm_pack(Bp.data(), g.trans_b, g.N, g.K, B.data(), ldb);
        const double t_blas = best_time([&] {
            ops::gemm(false, g.trans_b, g.M, g.N, g.K, 1.0f, A.data(), g.K, B.data(), ldb, g.beta, C1.data(), g.N);
        });
        const double t_own = best_time([&] {
            ops::small_gemm(g.M, g.N, g.K, 1.0f, A.data(), g.K, Bp.data(), g.beta, C2.data(), g.N);
        });
        const double fl = 2.0 * g.M * g.N * g.K;
        std::printf("  gemm %-22s %s M%-5d N%-5d K%-5d sgemm %6.1f GFLOP/s   small_gemm %6.1f GFLOP/s%s\n", g.name,
                    g.trans_b ? "NT" : "NN", g.M, g.N, g.K, fl / t_blas / 1e9, fl / t_own / 1e9,
                    ops::small_gemm_fits(g.N, g.K) ? "" : "   (not taken: too large)");
    }
    struct At { int H, KV, hd; };
    for (const At& a : {At{8, 4, 8}, At{4, 4, 16}, At{6, 6, 48}}) {
        const int B = 8, T = 256;
        std::vector<float> q = tof(randv((size_t)B * T * a.H * a.hd, 83)), k = tof(randv((size_t)B * T * a.KV * a.hd, 84)),
                           v = tof(randv((size_t)B * T * a.KV * a.hd, 85)), d = tof(randv(q.size(), 86));
        std::vector<float> out(q.size()), lse((size_t)B * a.H * T), dq(q.size()), dk(k.size()), dv(v.size());
        std::vector<float> P(std::max<size_t>(1, ops::attention_fast_probs_floats(B, T, a.H, a.hd)));
        std::vector<int> lens(B, T);
        const double pairs = (double)B * a.H * T * (T + 1) / 2;
        auto ref_f = [&] { ops::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), lens.data(), B, T, a.H, a.KV, a.hd); };
        auto ref_b = [&] { ops::attention_backward(dq.data(), dk.data(), dv.data(), d.data(), lse.data(), q.data(), k.data(), v.data(), lens.data(), B, T, a.H, a.KV, a.hd); };
        const double rf = best_time(ref_f), rb = (ref_f(), best_time(ref_b));
        std::printf("  attention B8 T256 H%d/%d hd%-3d sgemm reference: fwd %6.2f ms, bwd %6.2f ms (%.1f, %.1f ns per query-key pair)\n",
                    a.H, a.KV, a.hd, rf * 1e3, rb * 1e3, rf * 1e9 / pairs, rb * 1e9 / pairs);
        for (float* probs : {(float*)nullptr, P.data()}) {
            auto f = [&] { return ops::attention_forward_fast(out.data(), lse.data(), q.data(), k.data(), v.data(), lens.data(), B, T, a.H, a.KV, a.hd, 0, probs); };
            auto b = [&] { ops::attention_backward_fast(dq.data(), dk.data(), dv.data(), d.data(), lse.data(), q.data(), k.data(), v.data(), lens.data(), B, T, a.H, a.KV, a.hd, 0, probs); };
            if (!f()) {
                std::printf("  attention B8 T256 H%d/%d hd%-3d kernel: none for this head size (the reference runs)\n", a.H, a.KV, a.hd);
                break;
            }
            const double tf = best_time(f), tb = (f(), best_time(b));
            std::printf("  attention B8 T256 H%d/%d hd%-3d kernel, %-13s fwd %6.2f ms, bwd %6.2f ms (%.1f, %.1f ns per query-key pair)\n",
                        a.H, a.KV, a.hd, probs ? "kept P:" : "recompute P:", tf * 1e3, tb * 1e3, tf * 1e9 / pairs, tb * 1e9 / pairs);
        }
    }
}

void run_perf() {
    std::printf("perf (fp32, shapes of the 15M model: N=2048 tokens, C=288, hidden=768, H=6, T=256)\n");
    const int N = 2048, C = 288, Hd = 768, B = 8, T = 256, H = 6, hd = 48;
    for (auto& name : backend_names()) (void)name;
    {
        Vec x = randv((size_t)N * C, 1), W = randv((size_t)Hd * C, 2);
        perf(Op::MatmulForward, "[2048,288]x[768,288]^T", 2.0 * N * C * Hd, [&](Backend& be) {
            static thread_local std::vector<float> o;
            Buf bx(be, x), bW(be, W), bo(be, (size_t)N * Hd);
            be.matmul_forward(bo.p, bx.p, bW.p, N, C, Hd, 1, 0);
        });
    }
    {
        Vec q = randv((size_t)N * H * hd, 3), k = randv((size_t)N * H * hd, 4), v = randv((size_t)N * H * hd, 5);
        std::vector<int> lens(B, T);
        perf(Op::AttentionForward, "B8 T256 H6 hd48 (causal)", 2.0 * B * H * T * T * hd, [&](Backend& be) {
            Buf bq(be, q), bk(be, k), bv(be, v), bo(be, q.size()), bP(be, (size_t)B * H * T);
            be.attention_forward(bo.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, H, hd, 0);
        });
        perf(Op::AttentionBackward, "B8 T256 H6 hd48 (causal)", 4.0 * B * H * T * T * hd, [&](Backend& be) {
            Buf bq(be, q), bk(be, k), bv(be, v), bo(be, q.size()), bP(be, (size_t)B * H * T), dq(be, q.size()), dk(be, q.size()), dv(be, q.size());
            be.attention_forward(bo.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, H, hd, 0);
            be.attention_backward(dq.p, dk.p, dv.p, bo.p, bP.p, bq.p, bk.p, bv.p, lens.data(), B, T, H, H, hd, 0);
        });
    }
    {
        Vec x = randv((size_t)N * C, 6), w = randv(C, 7);
        perf(Op::RmsnormForward, "[2048,288]", 3.0 * N * C, [&](Backend& be) {
            Buf bx(be, x), bw(be, w), bo(be, x.size()), br(be, N);
            be.rmsnorm_forward(bo.p, br.p, bx.p, bw.p, N, C, 1e-5);
        });
    }
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "perf") g_perf = true;
        else if (a == "test") g_perf = false;
        else if (a == "-o" && i + 1 < argc) g_op_filter = argv[++i];
        else if (a == "-b" && i + 1 < argc) g_backend_filter = argv[++i];
        else if (a == "-p" && i + 1 < argc) g_options.precision = argv[++i];
        else {
            std::fprintf(stderr, "usage: test_ops [test|perf] [-o OP] [-b BACKEND] [-p fp32|fp16|bf16]\n");
            return 2;
        }
    }
    if (g_perf) {
        run_kernel_perf();
        run_perf();
        return 0;
    }
    test_matmul();
    test_matmul_tiles();
    test_rmsnorm();
    test_rope();
    test_attention(0, 4);
    test_attention(3, 4);
    test_attention(0, 8);
    test_attention(3, 8);
    test_attention(0, 8, 4, 4);  // groups of 1 (the fast forward takes query heads in pairs)
    test_attention(3, 8, 6, 2);  // groups of 3: a pair, then one
    test_attention(0, 16);
    test_attention(3, 16);
    test_attention(0, 48);
    test_swiglu();
    test_cross_entropy();
    test_dropout();
    test_adamw();
    test_embedding();
    test_frozen_dtypes();
    test_scatter_rows();
    test_elementwise();
    test_matmul_rows();
    test_decode_ops(0);
    test_decode_ops(3);
    test_vexp();
    test_supports_op();
    std::printf("%d passed, %d failed, %d skipped\n", g_pass, g_fail, g_skip);
    return g_fail ? 1 : 0;
}
