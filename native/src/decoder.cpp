#include "decoder.h"

#include <algorithm>

#include "error.h"
#include "model.h"

namespace lf {

// the backend, once it has said it can run every op generation needs
static Backend& with_generation_ops(Backend& be, const LlamaWeights& w) {
    for (DType d : w.dtypes)
        require_ops(be, {Op::Embedding, Op::RmsnormForward, Op::MatmulForward, Op::MatmulRows, Op::RopeForwardAt,
                         Op::KvCacheWrite, Op::AttentionCached, Op::SwigluForward, Op::CrossEntropy},
                    d, "generation");
    return be;
}

Decoder::Decoder(Backend& be, const LlamaWeights& w) : be_(with_generation_ops(be, w)), w_(w), rw_(be, w) {}

Decoder::~Decoder() {
    for (float* p : allocs_) be_.free(p);
}

float* Decoder::buf(size_t n) {
    float* p = be_.alloc(n);
    allocs_.push_back(p);
    return p;
}

void Decoder::reset(int B, int Tcap, int n_max) {
    const LlamaConfig& c = w_.cfg;
    LF_ASSERT(B > 0 && Tcap > 0 && n_max > 0 && n_max <= Tcap && Tcap <= c.max_pos);
    if (B <= capB_ && Tcap <= capT_ && n_max <= capN_) return;  // stale cache rows are never read
    B = std::max(B, capB_);
    Tcap = std::max(Tcap, capT_);
    n_max = std::max(n_max, capN_);
    for (float* p : allocs_) be_.free(p);
    allocs_.clear();
    const size_t N = (size_t)B * n_max, C = c.dim, Q = c.q_dim(), KVd = c.kv_dim(), Hd = c.hidden;
    kc_.assign(c.n_layers, nullptr);
    vc_.assign(c.n_layers, nullptr);
    for (int l = 0; l < c.n_layers; l++) {
        kc_[l] = buf((size_t)B * Tcap * KVd);
        vc_[l] = buf((size_t)B * Tcap * KVd);
    }
    x_ = buf(N * C);
    xn_ = buf(N * C);
    rstd_ = buf(N);
    q_ = buf(N * Q);
    k_ = buf(N * KVd);
    v_ = buf(N * KVd);
    att_ = buf(N * Q);
    tmp_ = buf(N * C);
    g_ = buf(N * Hd);
    u_ = buf(N * Hd);
    h_ = buf(N * Hd);
    // the LoRA branch's x A^T: r <= min(in, out) <= the widest input
    z_ = buf(N * std::max<size_t>(std::max<size_t>(C, Q), Hd));
    lora_y_ = buf(N * std::max<size_t>(std::max<size_t>(C, Q), Hd));
    head_rows_ = (int)std::max<size_t>(16, std::min<size_t>(N, (size_t)(8u << 20) / (size_t)c.vocab));
    head_x_ = buf((size_t)head_rows_ * C);
    head_logits_ = buf((size_t)head_rows_ * c.vocab);
    std::vector<float> cs, sn;
    rope_tables(c, Tcap, &cs, &sn);
    float* cd = buf(cs.size());
    float* sd = buf(sn.size());
    be_.upload(cd, cs.data(), cs.size());
    be_.upload(sd, sn.data(), sn.size());
    cos_ = cd;
    sin_ = sd;
    capB_ = B;
    capT_ = Tcap;
    capN_ = n_max;
}

// y[N,out] = x W^T (+ s (x A^T) B^T when the adapter targets this module)
void Decoder::linear(int layer, int m, const float* x, const float* W, float* y, int N, int in, int out) {
    be_.matmul_rows(y, x, W, N, in, out);
    const int si = lora_ ? lora_->slot_index(layer, m) : -1;
    if (si < 0) return;
    const LoraSlot& s = lora_->slots()[si];
    const LoraConfig& lc = lora_->cfg();
    // as PEFT: y + (x A^T B^T) * s, each row on its own (matmul_rows)
    be_.matmul_rows(z_, x, lora_->params() + s.a_off, N, in, lc.r);
    be_.matmul_rows(lora_y_, z_, lora_->params() + s.b_off, N, lc.r, out);
    be_.scale(lora_y_, (float)lc.scaling(), (size_t)N * out);
    be_.add(y, lora_y_, (size_t)N * out);
}

void Decoder::forward(const int* tokens, const int* pos, int B, int n, const std::vector<int>& rows, float* logits_out,
                      const int* targets, double* row_loss) {
    const LlamaConfig& c = w_.cfg;
    const int N = B * n, C = c.dim, Q = c.q_dim(), KVd = c.kv_dim(), Hd = c.hidden, V = c.vocab;
    const int H = c.n_heads, KV = c.n_kv_heads, hd = c.head_dim;
    LF_ASSERT(B <= capB_ && n <= capN_);
    for (int b = 0; b < B; b++) LF_ASSERT(pos[b] >= 0 && pos[b] + n <= capT_);
    LF_ASSERT(!lora_ || lora_->cfg().r <= std::max(std::max(C, Q), Hd));

    // x: [B, n, C], the residual stream, updated in place
    be_.embedding(x_, tokens, rw_.embed, N, C);
    for (int l = 0; l < c.n_layers; l++) {
        const ResidentLayer& L = rw_.layers[l];
        // attention block: x += o_proj(attention(rope(q), cache(rope(k), v)))
        be_.rmsnorm_forward(xn_, rstd_, x_, L.in_norm, N, C, c.eps);
        linear(l, MOD_Q, xn_, L.wq, q_, N, C, Q);
        linear(l, MOD_K, xn_, L.wk, k_, N, C, KVd);
        linear(l, MOD_V, xn_, L.wv, v_, N, C, KVd);
        be_.rope_forward_at(q_, cos_, sin_, pos, B, n, H, hd);
        be_.rope_forward_at(k_, cos_, sin_, pos, B, n, KV, hd);
        be_.kv_cache_write(kc_[l], k_, pos, B, n, capT_, KVd);
        be_.kv_cache_write(vc_[l], v_, pos, B, n, capT_, KVd);
        be_.attention_cached(att_, q_, kc_[l], vc_[l], pos, B, n, H, KV, hd, capT_, c.sliding_window);
        linear(l, MOD_O, att_, L.wo, tmp_, N, Q, C);
        be_.add(x_, tmp_, (size_t)N * C);
        // MLP block: x += down(silu(gate(xn)) * up(xn))
        be_.rmsnorm_forward(xn_, rstd_, x_, L.post_norm, N, C, c.eps);
        linear(l, MOD_GATE, xn_, L.wg, g_, N, C, Hd);
        linear(l, MOD_UP, xn_, L.wu, u_, N, C, Hd);
        be_.swiglu_forward(h_, g_, u_, (int64_t)N * Hd);
        linear(l, MOD_DOWN, h_, L.wd, tmp_, N, Hd, C);
        be_.add(x_, tmp_, (size_t)N * C);
    }
    be_.rmsnorm_forward(xn_, rstd_, x_, rw_.final_norm, N, C, c.eps);

    // LM head over the asked rows, in chunks: the row gather is the embedding op over xn
    for (size_t r0 = 0; r0 < rows.size(); r0 += head_rows_) {
        const int nr = (int)std::min<size_t>(head_rows_, rows.size() - r0);
        for (int i = 0; i < nr; i++) LF_ASSERT(rows[r0 + i] >= 0 && rows[r0 + i] < N);
        be_.embedding(head_x_, rows.data() + r0, xn_, nr, C);
        be_.matmul_rows(head_logits_, head_x_, rw_.lm_head, nr, C, V);
        if (logits_out) be_.download(logits_out + r0 * V, head_logits_, (size_t)nr * V);
        if (row_loss) be_.cross_entropy(nullptr, head_logits_, targets + r0, nr, V, 0.0, row_loss + r0);
    }
}

}  // namespace lf
