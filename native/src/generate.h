// The `generate` and `score` verbs (docs/CONTRACTS.md §2): token ids in (JSONL), JSONL events
// out. The cli tokenizes; the core never sees text.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "decoder.h"
#include "sampling.h"

namespace lf {

struct GenerateSettings {
    int max_new_tokens = 64;
    SamplingParams sampling;
    std::vector<int> stop_tokens;
};

struct GeneratedSequence {
    std::vector<int> tokens;  // generated, the stop token not included
    int stop_token = -1;      // -1: stopped at max_new_tokens (or at the end of the context)
    int chosen = 0;           // tokens chosen: tokens.size(), +1 when a stop token ended it
};

// callbacks of generate_batch, each optional; b is the index of the prompt in the batch
struct GenerateObserver {
    std::function<void(int b, int step, const float* logits)> on_logits;  // raw logits [V] of each step
    std::function<void(int b, int index, int token)> on_token;
    std::function<void(int b, const GeneratedSequence&)> on_sequence;     // as soon as b is finished
};

// Generates for a batch of prompts (each 1 <= length < max_position_embeddings) with the
// decoder's current adapter: one prefill of the right-padded prompts, then one decoding step per
// token for all unfinished sequences. Sequence b draws with the counter (seed, first_index + b,
// step). A sequence stops at a stop token, after max_new_tokens, or when the context is full.
std::vector<GeneratedSequence> generate_batch(Decoder& dec, const std::vector<const std::vector<int>*>& prompts,
                                              const GenerateSettings& g, uint64_t first_index,
                                              const GenerateObserver& obs = {});
// sum over the target of -log p(target[i] | prompt, target[<i]) for each (prompt, target)
std::vector<double> score_batch(Decoder& dec,
                                const std::vector<std::pair<const std::vector<int>*, const std::vector<int>*>>& ex);

struct InferenceOptions {
    std::string model_dir, adapter_dir;
    std::string input;                  // --prompts (generate) or --examples (score)
    std::vector<std::string> variants;  // "base" and/or "adapter"
    int batch_size = 8;
    int threads = 0;
    // generate only
    GenerateSettings gen;
    bool stop_tokens_given = false;  // else gen.stop_tokens = config.json eos_token_id
    bool stream = false;
};

// option names with a value, and flags, of each verb (for the argument parser)
const std::vector<std::string>& generate_value_options();
const std::vector<std::string>& score_value_options();
// builds the options from parsed (name, value) pairs; throws a usage error naming the option
InferenceOptions parse_inference_options(bool generate, const std::vector<std::pair<std::string, std::string>>& opts,
                                         bool stream);

int run_generate(const InferenceOptions& o);
int run_score(const InferenceOptions& o);

}  // namespace lf
