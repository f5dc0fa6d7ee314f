#include "train_data.h"

#include <algorithm>

#include "error.h"

namespace lf {

MicroBatch make_micro_batch(const std::vector<RecordRef>& recs) {
    MicroBatch mb;
    mb.B = (int)recs.size();
    mb.T = 1;
    for (auto& r : recs) mb.T = std::max(mb.T, r.len);
    mb.tokens.assign((size_t)mb.B * mb.T, 0);
    mb.targets.assign((size_t)mb.B * mb.T, -1);
    mb.lens.resize(mb.B);
    for (int b = 0; b < mb.B; b++) {
        const RecordRef& r = recs[b];
        mb.lens[b] = std::max(1, r.len);
        for (int t = 0; t < r.len; t++) mb.tokens[(size_t)b * mb.T + t] = r.tokens[t];
        // position t predicts token t+1, which is a target when its mask byte is 1
        for (int t = 0; t + 1 < r.len; t++)
            if (r.mask[t + 1]) mb.targets[(size_t)b * mb.T + t] = r.tokens[t + 1];
    }
    return mb;
}

// The denominator of a training step: every mask byte that is 1, the first token's included.
// Nothing predicts token 0, but transformers' Trainer counts labels != -100 before the shift
// (num_items_in_batch), so a record whose first token is a target (trainOnInputs with BOS)
// adds one to the denominator and nothing to the sum. We follow the pinned version exactly.
int64_t count_targets(const std::vector<RecordRef>& recs) {
    int64_t n = 0;
    for (auto& r : recs) for (int t = 0; t < r.len; t++) n += r.mask[t];
    return n;
}

Dataset load_dataset(const std::vector<std::string>& paths, const LlamaConfig& mc) {
    Dataset d;
    d.shards.reserve(paths.size());
    for (auto& p : paths) d.shards.push_back(load_shard(p, (uint32_t)mc.vocab));
    for (auto& s : d.shards) {
        for (size_t i = 0; i < s.n_records(); i++) {
            int len = (int)s.record_len(i);
            if (len == 0) throw invalid_input(s.filename, strprintf("record %zu is empty", i), "", "offsets");
            if (len > mc.max_pos)
                throw invalid_input(s.filename, strprintf("record %zu has %d tokens, more than max_position_embeddings %d", i, len, mc.max_pos), "", "offsets");
            d.records.push_back({s.tokens.data() + s.offsets[i], s.mask.data() + s.offsets[i], len});
            d.max_len = std::max(d.max_len, len);
        }
    }
    return d;
}

// group_by_length: megabatches of 50 batches sorted by length, longest first
std::vector<int> epoch_order(const std::vector<RecordRef>& recs, const TrainingConfig& t, int64_t e, Rng* rng_out) {
    std::vector<int> order(recs.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = (int)i;
    Rng rng(hash_combine(t.seed, 0x5AFF1E00ull + (uint64_t)e));
    if (t.shuffle) {
        for (size_t i = order.size(); i > 1; i--) std::swap(order[i - 1], order[rng.below(i)]);
    }
    if (t.group_by_length) {
        size_t mega = (size_t)t.batch_size * 50;
        for (size_t i = 0; i < order.size(); i += mega) {
            auto end = order.begin() + std::min(order.size(), i + mega);
            std::stable_sort(order.begin() + i, end, [&](int a, int b) { return recs[a].len > recs[b].len; });
        }
    }
    if (rng_out) *rng_out = rng;
    return order;
}

EpochBatches::EpochBatches(const Dataset& d, const TrainingConfig& t)
    : d_(d), t_(t), spe_(((int64_t)d.records.size() + t.batch_size - 1) / t.batch_size) {}

std::vector<RecordRef> EpochBatches::batch(int64_t step) {
    const int64_t e = step / spe_, pos = step % spe_, n = (int64_t)d_.records.size();
    if (e != epoch_) {
        order_ = epoch_order(d_.records, t_, e, &rng_);
        epoch_ = e;
    }
    std::vector<RecordRef> b;
    for (int64_t i = pos * t_.batch_size; i < std::min<int64_t>(n, (pos + 1) * t_.batch_size); i++)
        b.push_back(d_.records[order_[i]]);
    return b;
}

}  // namespace lf
