#include "model.h"

#include <cmath>
#include <cstring>

#include "error.h"

namespace lf {

// ---------------------------------------------------------------------------------------------
// RoPE tables, fp32 like transformers' LlamaRotaryEmbedding

void rope_tables(const LlamaConfig& c, int T, std::vector<float>* cosv, std::vector<float>* sinv) {
    const int half = c.head_dim / 2;
    std::vector<float> inv(half);
    const float base = (float)c.rope_theta;
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)c.head_dim;
        inv[i] = 1.0f / std::pow(base, e);
    }
    if (c.rope_llama3) {
        const double old = c.rope_original_max_pos;
        const double low_wl = old / c.rope_low_freq_factor, high_wl = old / c.rope_high_freq_factor;
        const float factor = (float)c.rope_factor;
        for (int i = 0; i < half; i++) {
            float f = inv[i];
            float wavelen = (1.0f / f) * (float)(2.0 * M_PI);
            float fl = wavelen > low_wl ? f / factor : f;
            float smooth = ((float)old / wavelen - (float)c.rope_low_freq_factor) /
                           (float)(c.rope_high_freq_factor - c.rope_low_freq_factor);
            float smoothed = (1.0f - smooth) * fl / factor + smooth * fl;
            bool medium = !(wavelen < high_wl) && !(wavelen > low_wl);
            inv[i] = medium ? smoothed : fl;
        }
    }
    cosv->resize((size_t)T * half);
    sinv->resize((size_t)T * half);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            float a = (float)t * inv[i];
            (*cosv)[(size_t)t * half + i] = (float)std::cos((double)a);
            (*sinv)[(size_t)t * half + i] = (float)std::sin((double)a);
        }
    }
}

// ---------------------------------------------------------------------------------------------

Model::Model(Backend& be, const LlamaWeights& w, Lora* lora) : be_(be), w_(w), lora_(lora), rw_(be, w) {}

Model::~Model() {
    for (float* p : allocs_) be_.free(p);
}

float* Model::buf(size_t n) {
    float* p = be_.alloc(n);
    allocs_.push_back(p);
    return p;
}

void Model::reserve(int B, int T) {
    if (B <= capB_ && T <= capT_) return;
    // sizes depend on B*T and on B*T*T; grow to the max of what is asked and what exists
    B = std::max(B, capB_);
    T = std::max(T, capT_);
    for (float* p : allocs_) be_.free(p);
    allocs_.clear();
    const LlamaConfig& c = w_.cfg;
    const size_t N = (size_t)B * T, C = c.dim, Q = c.q_dim(), KVd = c.kv_dim(), Hd = c.hidden;
    acts_.resize(c.n_layers);
    const size_t probs = be_.attention_probs_floats(B, T, c.n_heads, c.head_dim);
    const bool keep_probs = probs > 0 && probs * sizeof(float) * c.n_layers <= kProbsBudget;
    for (auto& a : acts_) {
        a.probs = keep_probs ? buf(probs) : nullptr;
        a.res_in = buf(N * C);
        a.rstd1 = buf(N);
        a.xn1 = buf(N * C);
        a.q = buf(N * Q);
        a.k = buf(N * KVd);
        a.v = buf(N * KVd);
        a.lse = buf((size_t)B * c.n_heads * T);
        a.att = buf(N * Q);
        a.res_mid = buf(N * C);
        a.rstd2 = buf(N);
        a.xn2 = buf(N * C);
        a.g = buf(N * Hd);
        a.u = buf(N * Hd);
        a.h = buf(N * Hd);
    }
    size_t max_in = std::max<size_t>(std::max<size_t>(C, Q), Hd);
    if (lora_) {
        slot_acts_.assign(lora_->slots().size(), SlotActs());
        int r = lora_->cfg().r;
        for (size_t i = 0; i < lora_->slots().size(); i++) {
            const LoraSlot& s = lora_->slots()[i];
            if (lora_->cfg().dropout > 0) slot_acts_[i].xd = buf(N * s.in);
            slot_acts_[i].z = buf(N * r);
        }
        dz_ = buf(N * r);
        dxd_ = buf(N * max_in);
    }
    res_final_ = buf(N * C);
    rstdf_ = buf(N);
    xnf_ = buf(N * C);
    dres_ = buf(N * C);
    dxn_ = buf(N * C);
    dq_ = buf(N * Q);
    dk_ = buf(N * KVd);
    dv_ = buf(N * KVd);
    datt_ = buf(N * Q);
    dg_ = buf(N * Hd);
    du_ = buf(N * Hd);
    dh_ = buf(N * Hd);
    // the LM head runs over chunks of rows so that [N, V] logits never exist at once
    head_rows_ = (int)std::max<size_t>(16, std::min<size_t>(N, (size_t)(8u << 20) / (size_t)c.vocab));
    head_x_ = buf((size_t)head_rows_ * C);
    head_logits_ = buf((size_t)head_rows_ * c.vocab);
    head_dx_ = buf((size_t)head_rows_ * C);
    row_loss_.assign(head_rows_, 0.0);
    capB_ = B;
    capT_ = T;
    rope_T_ = 0;  // the tables were freed with the other buffers
    ensure_rope(T);
}

void Model::ensure_rope(int T) {
    if (T <= rope_T_) return;
    rope_tables(w_.cfg, T, &cos_, &sin_);
    float* c = buf(cos_.size());
    float* s = buf(sin_.size());
    be_.upload(c, cos_.data(), cos_.size());
    be_.upload(s, sin_.data(), sin_.size());
    cos_dev_ = c;
    sin_dev_ = s;
    rope_T_ = T;
}

void Model::check(const float* p, size_t n, int layer, const std::string& tensor, const char* what) {
    if (!check_numerics || be_.all_finite(p, n)) return;
    std::string msg = std::string("non-finite values (inf/NaN) in the ") + what + " of " + tensor;
    throw Error(EXIT_NUMERICS, msg, "", tensor, "", layer >= 0 ? std::to_string(layer) : "");
}

// y[N,out] = x W^T + LoRA(x), checked for inf/NaN under the module's HF name
void Model::linear_forward(int layer, int m, const float* x, const float* W, float* y, int N, int in, int out,
                           uint64_t key, bool train) {
    be_.matmul_forward(y, x, W, N, in, out, 1.0f, 0.0f);
    lora_forward(layer, m, x, y, N, key, train);
    check(y, (size_t)N * out, layer, module_hf_path(layer, m), "output");
}

// y[N,out] += s * (dropout(x) A^T) B^T
void Model::lora_forward(int layer, int m, const float* x, float* y, int N, uint64_t key, bool train) {
    int si = lora_ ? lora_->slot_index(layer, m) : -1;
    if (si < 0) return;
    const LoraSlot& s = lora_->slots()[si];
    const LoraConfig& lc = lora_->cfg();
    const float* A = lora_->params() + s.a_off;
    const float* Bm = lora_->params() + s.b_off;
    const float* xin = x;
    if (lc.dropout > 0 && train) {
        be_.dropout_apply(slot_acts_[si].xd, x, (int64_t)N * s.in, lc.dropout, hash_combine(key, (uint64_t)si));
        xin = slot_acts_[si].xd;
    }  // eval (no backward): dropout is the identity
    be_.matmul_forward(slot_acts_[si].z, xin, A, N, s.in, lc.r, 1.0f, 0.0f);
    be_.matmul_forward(y, slot_acts_[si].z, Bm, N, lc.r, s.out, (float)lc.scaling(), 1.0f);
}

// given dy[N,out]: dB += s dy^T z ; dz = s dy B ; dA += dz^T xd ; dx += dropout'(dz A)
void Model::lora_backward(int layer, int m, const float* x, const float* dy, float* dx, int N, uint64_t key, bool train) {
    int si = lora_ ? lora_->slot_index(layer, m) : -1;
    if (si < 0) return;
    const LoraSlot& s = lora_->slots()[si];
    const LoraConfig& lc = lora_->cfg();
    const float* A = lora_->params() + s.a_off;
    const float* Bm = lora_->params() + s.b_off;
    float* grads = grad_target_ ? grad_target_ : lora_->grads();
    float* gA = grads + s.a_off;
    float* gB = grads + s.b_off;
    const float sc = (float)lc.scaling();
    const float* xin = lc.dropout > 0 && train ? slot_acts_[si].xd : x;
    be_.matmul_backward_weight(gB, dy, slot_acts_[si].z, N, lc.r, s.out, sc, 1.0f);
    be_.matmul_backward_input(dz_, dy, Bm, N, lc.r, s.out, sc, 0.0f);
    be_.matmul_backward_weight(gA, dz_, xin, N, s.in, lc.r, 1.0f, 1.0f);
    if (dx) {
        if (lc.dropout > 0 && train) {
            be_.matmul_backward_input(dxd_, dz_, A, N, s.in, lc.r, 1.0f, 0.0f);
            be_.dropout_backward(dx, dxd_, (int64_t)N * s.in, lc.dropout, hash_combine(key, (uint64_t)si));
        } else {
            be_.matmul_backward_input(dx, dz_, A, N, s.in, lc.r, 1.0f, 1.0f);
        }
    }
    if (check_numerics) {
        check(gA, (size_t)lc.r * s.in, layer, peft_key(layer, m, false), "gradient");
        check(gB, (size_t)s.out * lc.r, layer, peft_key(layer, m, true), "gradient");
    }
}

PassResult Model::run(const MicroBatch& mb, bool backward, double grad_scale, uint64_t key, float* logits_out) {
    const LlamaConfig& c = w_.cfg;
    const int B = mb.B, T = mb.T, N = B * T;
    const int C = c.dim, Q = c.q_dim(), KVd = c.kv_dim(), Hd = c.hidden, V = c.vocab;
    const int H = c.n_heads, KV = c.n_kv_heads, hd = c.head_dim;
    LF_ASSERT((int)mb.tokens.size() == N && (int)mb.targets.size() == N && (int)mb.lens.size() == B);
    reserve(B, T);
    const bool train = backward;
    const int window = c.sliding_window;
    const std::string emb_name = "model.embed_tokens";

    // ------------------------------------------------------------------ forward
    float* x = acts_.empty() ? res_final_ : acts_[0].res_in;  // x: [B, T, C]
    be_.embedding(x, mb.tokens.data(), rw_.embed, N, C);
    for (int l = 0; l < c.n_layers; l++) {
        const ResidentLayer& L = rw_.layers[l];
        LayerActs& a = acts_[l];
        float* next = l + 1 < c.n_layers ? acts_[l + 1].res_in : res_final_;
        const std::string p = "model.layers." + std::to_string(l);
        // attention block
        be_.rmsnorm_forward(a.xn1, a.rstd1, a.res_in, L.in_norm, N, C, c.eps);
        check(a.xn1, (size_t)N * C, l, p + ".input_layernorm", "output");
        linear_forward(l, MOD_Q, a.xn1, L.wq, a.q, N, C, Q, key, train);
        linear_forward(l, MOD_K, a.xn1, L.wk, a.k, N, C, KVd, key, train);
        linear_forward(l, MOD_V, a.xn1, L.wv, a.v, N, C, KVd, key, train);
        be_.rope_forward(a.q, cos_dev_, sin_dev_, B, T, H, hd);
        be_.rope_forward(a.k, cos_dev_, sin_dev_, B, T, KV, hd);
        be_.attention_forward(a.att, a.lse, a.q, a.k, a.v, mb.lens.data(), B, T, H, KV, hd, window,
                              backward ? a.probs : nullptr);
        check(a.att, (size_t)N * Q, l, p + ".self_attn", "output");
        // res_mid = res_in + o_proj(att)
        linear_forward(l, MOD_O, a.att, L.wo, a.res_mid, N, Q, C, key, train);
        be_.add(a.res_mid, a.res_in, (size_t)N * C);
        // MLP block
        be_.rmsnorm_forward(a.xn2, a.rstd2, a.res_mid, L.post_norm, N, C, c.eps);
        check(a.xn2, (size_t)N * C, l, p + ".post_attention_layernorm", "output");
        linear_forward(l, MOD_GATE, a.xn2, L.wg, a.g, N, C, Hd, key, train);
        linear_forward(l, MOD_UP, a.xn2, L.wu, a.u, N, C, Hd, key, train);
        be_.swiglu_forward(a.h, a.g, a.u, (int64_t)N * Hd);
        check(a.h, (size_t)N * Hd, l, p + ".mlp.act_fn", "output");
        linear_forward(l, MOD_DOWN, a.h, L.wd, next, N, Hd, C, key, train);
        be_.add(next, a.res_mid, (size_t)N * C);
    }
    be_.rmsnorm_forward(xnf_, rstdf_, res_final_, rw_.final_norm, N, C, c.eps);
    check(xnf_, (size_t)N * C, -1, "model.norm", "output");

    // ------------------------------------------------------------------ LM head + loss
    // rows that need logits: all of them when logits are asked for, else only rows with a target
    std::vector<int> rows;
    rows.reserve(N);
    for (int i = 0; i < N; i++) if (logits_out || mb.targets[i] >= 0) rows.push_back(i);
    PassResult res;
    if (backward) be_.zero(dxn_, (size_t)N * C);
    std::vector<int> tg(head_rows_);
    for (size_t r0 = 0; r0 < rows.size(); r0 += head_rows_) {
        int nr = (int)std::min<size_t>(head_rows_, rows.size() - r0);
        be_.embedding(head_x_, rows.data() + r0, xnf_, nr, C);  // the row gather
        for (int i = 0; i < nr; i++) tg[i] = mb.targets[rows[r0 + i]];
        be_.matmul_forward(head_logits_, head_x_, rw_.lm_head, nr, C, V, 1.0f, 0.0f);
        check(head_logits_, (size_t)nr * V, -1, "lm_head", "output");
        if (logits_out) {
            for (int i = 0; i < nr; i++)
                be_.download(logits_out + (size_t)rows[r0 + i] * V, head_logits_ + (size_t)i * V, V);
        }
        res.loss_sum += be_.cross_entropy(backward ? head_logits_ : nullptr, head_logits_, tg.data(), nr, V, grad_scale,
                                          row_loss_.data());
        for (int i = 0; i < nr; i++) res.n_targets += tg[i] >= 0;
        if (backward) {
            be_.matmul_backward_input(head_dx_, head_logits_, rw_.lm_head, nr, C, V, 1.0f, 0.0f);
            be_.scatter_rows(dxn_, head_dx_, rows.data() + r0, nr, C);
        }
    }
    if (!backward) return res;

    // ------------------------------------------------------------------ backward
    check(dxn_, (size_t)N * C, -1, "lm_head", "input gradient");
    be_.zero(dres_, (size_t)N * C);
    be_.rmsnorm_backward(dres_, dxn_, res_final_, rw_.final_norm, rstdf_, N, C);
    for (int l = c.n_layers - 1; l >= 0; l--) {
        const ResidentLayer& L = rw_.layers[l];
        LayerActs& a = acts_[l];
        const std::string p = "model.layers." + std::to_string(l);
        // dres_ is d(next). MLP: next = res_mid + down(h)
        be_.matmul_backward_input(dh_, dres_, L.wd, N, Hd, C, 1.0f, 0.0f);
        lora_backward(l, MOD_DOWN, a.h, dres_, dh_, N, key, train);
        be_.swiglu_backward(dg_, du_, dh_, a.g, a.u, (int64_t)N * Hd);
        be_.matmul_backward_input(dxn_, dg_, L.wg, N, C, Hd, 1.0f, 0.0f);
        be_.matmul_backward_input(dxn_, du_, L.wu, N, C, Hd, 1.0f, 1.0f);
        lora_backward(l, MOD_GATE, a.xn2, dg_, dxn_, N, key, train);
        lora_backward(l, MOD_UP, a.xn2, du_, dxn_, N, key, train);
        be_.rmsnorm_backward(dres_, dxn_, a.res_mid, L.post_norm, a.rstd2, N, C);  // dres_ = d(res_mid)
        check(dres_, (size_t)N * C, l, p + ".post_attention_layernorm", "input gradient");
        // attention: res_mid = res_in + o(att)
        be_.matmul_backward_input(datt_, dres_, L.wo, N, Q, C, 1.0f, 0.0f);
        lora_backward(l, MOD_O, a.att, dres_, datt_, N, key, train);
        be_.attention_backward(dq_, dk_, dv_, datt_, a.lse, a.q, a.k, a.v, mb.lens.data(), B, T, H, KV, hd, window,
                               a.probs);
        check(dq_, (size_t)N * Q, l, p + ".self_attn", "query gradient");
        be_.rope_backward(dq_, cos_dev_, sin_dev_, B, T, H, hd);
        be_.rope_backward(dk_, cos_dev_, sin_dev_, B, T, KV, hd);
        // layer 0 needs no input gradient (the embedding is frozen): only the LoRA grads
        bool need_dx = l > 0;
        float* dx = need_dx ? dxn_ : nullptr;
        if (need_dx) {
            be_.matmul_backward_input(dxn_, dq_, L.wq, N, C, Q, 1.0f, 0.0f);
            be_.matmul_backward_input(dxn_, dk_, L.wk, N, C, KVd, 1.0f, 1.0f);
            be_.matmul_backward_input(dxn_, dv_, L.wv, N, C, KVd, 1.0f, 1.0f);
        }
        lora_backward(l, MOD_Q, a.xn1, dq_, dx, N, key, train);
        lora_backward(l, MOD_K, a.xn1, dk_, dx, N, key, train);
        lora_backward(l, MOD_V, a.xn1, dv_, dx, N, key, train);
        if (need_dx) {
            be_.rmsnorm_backward(dres_, dxn_, a.res_in, L.in_norm, a.rstd1, N, C);  // dres_ = d(res_in)
            check(dres_, (size_t)N * C, l, p + ".input_layernorm", "input gradient");
        }
    }
    return res;
}

}  // namespace lf
