// Token shards (.lfs version 1, docs/CONTRACTS.md §3): records of token ids plus a per-token
// loss mask. The whole file is validated (magic, version, offsets, token ids, CRC-32) on load.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lf {

struct Shard {
    std::string filename;
    uint32_t vocab_size = 0;
    std::vector<uint64_t> offsets;  // n_records + 1
    std::vector<int32_t> tokens;
    std::vector<uint8_t> mask;
    size_t n_records() const { return offsets.size() - 1; }
    size_t record_len(size_t i) const { return (size_t)(offsets[i + 1] - offsets[i]); }
};

uint32_t crc32_ieee(const uint8_t* data, size_t n, uint32_t crc = 0);

// Parses and validates; `model_vocab` > 0 additionally requires every token id < model_vocab.
// Throws lf::Error (exit 3) naming the file and the field or record.
Shard parse_shard(const uint8_t* data, size_t size, const std::string& filename, uint32_t model_vocab);
Shard load_shard(const std::string& path, uint32_t model_vocab);

// Serializes records into the .lfs format (used by tests and tools).
std::string encode_shard(uint32_t vocab_size, const std::vector<std::vector<int32_t>>& tokens,
                         const std::vector<std::vector<uint8_t>>& masks);

}  // namespace lf
