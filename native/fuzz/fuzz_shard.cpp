// libFuzzer target: the .lfs token-shard parser must reject any byte string with lf::Error and
// never crash or read out of bounds. Half of the inputs get a valid CRC appended so that the
// fuzzer reaches the checks behind the CRC (offsets, token ids, mask bytes).
#include <cstdint>
#include <cstring>
#include <vector>

#include "error.h"
#include "shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    std::vector<uint8_t> buf(data + 1, data + size);
    if (data[0] & 1) {  // fix up the CRC
        uint32_t crc = lf::crc32_ieee(buf.data(), buf.size());
        buf.resize(buf.size() + 4);
        std::memcpy(buf.data() + buf.size() - 4, &crc, 4);
    }
    try {
        lf::Shard s = lf::parse_shard(buf.data(), buf.size(), "fuzz.lfs", (data[0] & 2) ? 64 : 0);
        (void)s;
    } catch (const lf::Error&) {
    }
    return 0;
}
