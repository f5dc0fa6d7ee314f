// libFuzzer target: the config.json parser must reject any byte string with lf::Error and never
// crash, and whatever it accepts must keep the sizes the core derives from it in range (the
// products are what overflowed an int before: heads x head_dim, rows x columns of a weight).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "error.h"
#include "model_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        lf::LlamaConfig c = lf::parse_llama_config(std::string((const char*)data, size), "fuzz/config.json");
        const int64_t q = (int64_t)c.n_heads * c.head_dim, kv = (int64_t)c.n_kv_heads * c.head_dim;
        if (c.dim <= 0 || c.hidden <= 0 || c.n_layers <= 0 || c.vocab <= 0 || c.head_dim <= 0 || c.head_dim % 2 ||
            c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads || q != c.q_dim() || kv != c.kv_dim() || q > (1 << 18) ||
            (int64_t)c.vocab * c.dim > ((int64_t)1 << 42) || (int64_t)c.hidden * c.dim > ((int64_t)1 << 38) ||
            c.max_pos <= 0 || c.sliding_window < 0)
            std::abort();  // accepted, but a size the model code derives would be out of range
    } catch (const lf::Error&) {
    }
    return 0;
}
