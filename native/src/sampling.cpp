#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "rng.h"

namespace lf {

namespace {
// transformers' RepetitionPenaltyLogitsProcessor: each token already in the context (once,
// however often it occurs) has its logit divided by the penalty when positive, multiplied when
// negative; fp32 arithmetic like the torch op on fp32 logits
void repetition_penalty(float* l, int V, const std::vector<int>& context, float penalty) {
    std::vector<char> seen(V, 0);
    for (int t : context) {
        if (t < 0 || t >= V || seen[t]) continue;
        seen[t] = 1;
        l[t] = l[t] < 0 ? l[t] * penalty : l[t] / penalty;
    }
}

// TopKLogitsWarper: tokens below the k-th largest logit are removed (ties with it stay)
void top_k_filter(float* l, int V, int k) {
    if (k <= 0 || k >= V) return;
    std::vector<float> s(l, l + V);
    std::nth_element(s.begin(), s.begin() + (k - 1), s.end(), std::greater<float>());
    const float kth = s[k - 1];
    for (int i = 0; i < V; i++) if (l[i] < kth) l[i] = -INFINITY;
}

// TopPLogitsWarper: sort ascending, remove the tokens whose cumulative probability (from the
// least likely up) is <= 1 - top_p; the most likely token always stays
void top_p_filter(float* l, int V, double top_p) {
    if (top_p >= 1.0) return;
    std::vector<int> idx(V);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return l[a] < l[b]; });
    const float mx = l[idx[V - 1]];
    double sum = 0;
    for (int i = 0; i < V; i++) sum += std::isinf(l[i]) ? 0.0 : std::exp((double)l[i] - mx);
    double cum = 0;
    for (int r = 0; r < V - 1; r++) {
        const int i = idx[r];
        cum += std::isinf(l[i]) ? 0.0 : std::exp((double)l[i] - mx) / sum;
        if (cum <= 1.0 - top_p) l[i] = -INFINITY;
        else break;  // cumulative sums only grow
    }
}
}  // namespace

void process_logits(float* l, int V, const std::vector<int>& context, const SamplingParams& p) {
    if (p.repetition_penalty != 1.0) repetition_penalty(l, V, context, (float)p.repetition_penalty);
    if (p.temperature <= 0) return;
    const float temp = (float)p.temperature;
    for (int i = 0; i < V; i++) l[i] = l[i] / temp;
    top_k_filter(l, V, p.top_k);
    top_p_filter(l, V, p.top_p);
}

int choose_token(float* l, int V, const std::vector<int>& context, const SamplingParams& p, uint64_t sequence, int step) {
    process_logits(l, V, context, p);
    if (p.temperature <= 0) return (int)(std::max_element(l, l + V) - l);  // first maximum, as torch.argmax
    // inverse CDF of the softmax, in token order, with a uniform draw in [0, 1)
    const float mx = *std::max_element(l, l + V);
    std::vector<double> e(V);
    double sum = 0;
    for (int i = 0; i < V; i++) sum += e[i] = std::isinf(l[i]) ? 0.0 : std::exp((double)l[i] - mx);
    const uint64_t bits = splitmix64(hash_combine(hash_combine(p.seed, sequence), (uint64_t)step));
    const double u = (double)(bits >> 11) * (1.0 / 9007199254740992.0) * sum;
    double cum = 0;
    int last = 0;
    for (int i = 0; i < V; i++) {
        if (e[i] == 0) continue;
        cum += e[i];
        last = i;
        if (u < cum) return i;
    }
    return last;  // rounding at the top end
}

}  // namespace lf
