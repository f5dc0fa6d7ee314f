// libFuzzer target: the safetensors parser must reject any byte string with lf::Error and
// never crash, read out of bounds or hang. Accepted files are read end to end.
#include <cstdint>
#include <vector>

#include "error.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto f = lf::SafetensorsFile::parse(data, size, "fuzz.safetensors");
        for (auto& t : f->tensors()) {
            if (t.numel() > (1 << 20)) continue;
            std::vector<float> out((size_t)t.numel());
            try {
                lf::tensor_to_f32(t, "fuzz.safetensors", out.data());
            } catch (const lf::Error&) {
            }
        }
    } catch (const lf::Error&) {
    }
    return 0;
}
