// Choosing the next token from one row of logits, as transformers' generate does:
// repetition penalty, then (sampling only) temperature, top-k, top-p, then a draw from the
// softmax; temperature 0 is greedy (argmax after the repetition penalty). The random draw comes
// from a counter-based hash of (seed, sequence, step), so a sequence's tokens do not depend on
// the batch it runs in or on the thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace lf {

struct SamplingParams {
    double temperature = 0;          // 0: greedy
    int top_k = 0;                   // 0: off
    double top_p = 1.0;              // 1: off
    double repetition_penalty = 1.0; // 1: off
    uint64_t seed = 0;
};

// logits [V] are modified in place. `context`: the prompt and the tokens generated so far (what
// the repetition penalty looks at). `sequence` identifies the sequence (its index in the input
// file), `step` the index of the token being chosen.
// the logits processors alone, in place: repetition penalty, then (temperature > 0) temperature,
// top-k and top-p; removed tokens become -inf (what transformers' processors leave in `scores`)
void process_logits(float* logits, int V, const std::vector<int>& context, const SamplingParams& p);
int choose_token(float* logits, int V, const std::vector<int>& context, const SamplingParams& p, uint64_t sequence,
                 int step);

}  // namespace lf
