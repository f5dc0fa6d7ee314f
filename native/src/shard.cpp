#include "shard.h"

#include <cstring>

#include "error.h"
#include "fsutil.h"

namespace lf {

uint32_t crc32_ieee(const uint8_t* data, size_t n, uint32_t crc) {
    static uint32_t table[256];
    static bool init = false;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = true;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static uint32_t rd32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

Shard parse_shard(const uint8_t* data, size_t size, const std::string& fn, uint32_t model_vocab) {
    if (size < 32 + 8 + 4) throw invalid_input(fn, strprintf("truncated: %zu bytes, smaller than the smallest shard", size));
    if (std::memcmp(data, "LFSHARD1", 8) != 0) throw invalid_input(fn, "bad magic: not a LoraForge token shard (expected 'LFSHARD1')", "", "magic");
    Shard s;
    s.filename = fn;
    uint32_t version = rd32(data + 8);
    if (version != 1) throw invalid_input(fn, strprintf("unsupported version %u (expected 1)", version), "", "version");
    s.vocab_size = rd32(data + 12);
    uint64_t n_records = rd64(data + 16);
    uint64_t n_tokens = rd64(data + 24);
    if (s.vocab_size == 0) throw invalid_input(fn, "vocab_size is 0", "", "vocab_size");
    // sizes: 32 + 8(n_records+1) + 5 n_tokens + 4, checked without overflow
    if (n_records > size / 8 || n_tokens > size / 5)
        throw invalid_input(fn, strprintf("n_records %llu / n_tokens %llu do not fit in a file of %zu bytes",
                                          (unsigned long long)n_records, (unsigned long long)n_tokens, size), "", "n_records");
    uint64_t want = 32 + 8 * (n_records + 1) + 5 * n_tokens + 4;
    if (want != size)
        throw invalid_input(fn, strprintf("size mismatch: header says %llu records and %llu tokens (%llu bytes) but the file has %zu bytes%s",
                                          (unsigned long long)n_records, (unsigned long long)n_tokens,
                                          (unsigned long long)want, size, size < want ? " (truncated?)" : ""), "", "n_tokens");
    uint32_t crc_stored = rd32(data + size - 4);
    uint32_t crc = crc32_ieee(data, size - 4);
    if (crc != crc_stored)
        throw invalid_input(fn, strprintf("CRC mismatch: stored %08x, computed %08x (file corrupt)", crc_stored, crc), "", "crc32");
    if (model_vocab > 0 && s.vocab_size > model_vocab)
        throw invalid_input(fn, strprintf("shard vocab_size %u is larger than the model's vocab_size %u (tokenized for another model?)",
                                          s.vocab_size, model_vocab), "", "vocab_size");
    const uint8_t* po = data + 32;
    s.offsets.resize(n_records + 1);
    for (uint64_t i = 0; i <= n_records; i++) s.offsets[i] = rd64(po + 8 * i);
    if (s.offsets[0] != 0) throw invalid_input(fn, "offsets[0] must be 0", "", "offsets");
    for (uint64_t i = 0; i < n_records; i++) {
        if (s.offsets[i + 1] < s.offsets[i] || s.offsets[i + 1] > n_tokens)
            throw invalid_input(fn, strprintf("record %llu: offsets out of range or decreasing (%llu .. %llu, n_tokens %llu)",
                                              (unsigned long long)i, (unsigned long long)s.offsets[i],
                                              (unsigned long long)s.offsets[i + 1], (unsigned long long)n_tokens), "", "offsets");
    }
    if (s.offsets[n_records] != n_tokens)
        throw invalid_input(fn, strprintf("last offset %llu != n_tokens %llu", (unsigned long long)s.offsets[n_records],
                                          (unsigned long long)n_tokens), "", "offsets");
    const uint8_t* pt = po + 8 * (n_records + 1);
    const uint8_t* pm = pt + 4 * n_tokens;
    s.tokens.resize(n_tokens);
    s.mask.resize(n_tokens);
    uint32_t limit = model_vocab > 0 ? model_vocab : s.vocab_size;
    uint64_t rec = 0;
    for (uint64_t i = 0; i < n_tokens; i++) {
        uint32_t t = rd32(pt + 4 * i);
        if (t >= limit || t >= s.vocab_size) {
            while (rec + 1 < s.offsets.size() && s.offsets[rec + 1] <= i) rec++;
            throw invalid_input(fn, strprintf("record %llu, token %llu: id %u >= vocab_size %u", (unsigned long long)rec,
                                              (unsigned long long)(i - s.offsets[rec]), t, t >= s.vocab_size ? s.vocab_size : limit), "", "tokens");
        }
        s.tokens[i] = (int32_t)t;
        uint8_t m = pm[i];
        if (m > 1) throw invalid_input(fn, strprintf("loss mask byte %llu is %u (must be 0 or 1)", (unsigned long long)i, m), "", "mask");
        s.mask[i] = m;
    }
    return s;
}

Shard load_shard(const std::string& path, uint32_t model_vocab) {
    std::string bytes = read_file(path);
    return parse_shard((const uint8_t*)bytes.data(), bytes.size(), path, model_vocab);
}

std::string encode_shard(uint32_t vocab_size, const std::vector<std::vector<int32_t>>& tokens,
                         const std::vector<std::vector<uint8_t>>& masks) {
    std::string b = "LFSHARD1";
    auto put32 = [&](uint32_t v) { b.append((const char*)&v, 4); };
    auto put64 = [&](uint64_t v) { b.append((const char*)&v, 8); };
    uint64_t n = 0;
    for (auto& t : tokens) n += t.size();
    put32(1);
    put32(vocab_size);
    put64(tokens.size());
    put64(n);
    uint64_t off = 0;
    put64(0);
    for (auto& t : tokens) { off += t.size(); put64(off); }
    for (auto& t : tokens) for (int32_t x : t) put32((uint32_t)x);
    for (auto& m : masks) for (uint8_t x : m) b += (char)x;
    put32(crc32_ieee((const uint8_t*)b.data(), b.size()));
    return b;
}

}  // namespace lf
