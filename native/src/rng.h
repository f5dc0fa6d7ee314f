// Random numbers: xoshiro256** (state serializable, used for shuffling and LoRA init) and a
// counter-based hash (used for dropout masks, so they do not depend on thread timing).
#pragma once
#include <cmath>
#include <cstdint>

namespace lf {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
// Dropout masks: element i of the mask keyed by `key` is kept when dropout_bits(key, i) >=
// dropout_threshold(p), i.e. with probability 1 - p (to 2^-32). Two rounds of a 32-bit integer
// finalizer (lowbias32) over the index, each mixed with half of the 64-bit key: cheap, and 8-wide
// in AVX2 integer code, where a 64-bit multiply is not. Indexes must be below 2^32.
inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}
inline uint32_t dropout_bits(uint64_t key, uint32_t index) {
    return mix32(mix32(index ^ (uint32_t)key) + (uint32_t)(key >> 32));
}
inline uint32_t dropout_threshold(double p) {
    const double t = std::ceil(p * 4294967296.0);
    return t >= 4294967295.0 ? 0xFFFFFFFFu : (uint32_t)t;
}
inline uint64_t hash_combine(uint64_t a, uint64_t b) { return splitmix64(a ^ (b + 0x632BE59BD9B4E019ull + (a << 6))); }

struct Rng {
    uint64_t s[4];
    explicit Rng(uint64_t seed = 0) { reseed(seed); }
    void reseed(uint64_t seed) {
        uint64_t x = seed;
        for (int i = 0; i < 4; i++) { x += 0x9E3779B97F4A7C15ull; s[i] = splitmix64(x); }
    }
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t next() {
        uint64_t r = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return r;
    }
    double uniform() { return (double)(next() >> 11) * (1.0 / 9007199254740992.0); }
    // unbiased integer in [0, n)
    uint64_t below(uint64_t n) {
        uint64_t lim = UINT64_MAX - UINT64_MAX % n;
        uint64_t x;
        do { x = next(); } while (x >= lim);
        return x % n;
    }
    double normal() {
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

}  // namespace lf
