// safetensors: https://github.com/huggingface/safetensors format (8-byte little-endian header
// length, a JSON header, then the raw tensor bytes). Files are memory-mapped; every offset in
// the header is checked against the file before a byte is read.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor.h"
#include "json.h"

namespace lf {

struct TensorView {
    std::string name;
    DType dtype = DType::Unknown;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;
    uint64_t nbytes = 0;
    int64_t numel() const;
    std::string shape_str() const;
};

// A parsed safetensors buffer. `filename` is used in every error message.
class SafetensorsFile {
public:
    // memory-maps `path` and validates it; throws lf::Error (exit code 3) naming the file and tensor
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);
    // validates an in-memory buffer (does not copy it; the caller keeps it alive)
    static std::shared_ptr<SafetensorsFile> parse(const uint8_t* data, size_t size, const std::string& filename);
    ~SafetensorsFile();

    const std::string& filename() const { return filename_; }
    const TensorView* find(const std::string& name) const;
    const std::vector<TensorView>& tensors() const { return tensors_; }
    const Json& metadata() const { return metadata_; }

private:
    SafetensorsFile() = default;
    void validate(const uint8_t* data, size_t size);
    void check_coverage(const uint8_t* base, uint64_t data_size) const;
    std::string filename_;
    void* map_ = nullptr;
    size_t map_size_ = 0;
    std::vector<TensorView> tensors_;
    std::map<std::string, size_t> index_;
    Json metadata_;
};

// converts F32/F16/BF16 data to fp32; throws naming file+tensor for other dtypes
void tensor_to_f32(const TensorView& t, const std::string& file, float* out);
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
uint16_t f32_to_f16(float f);

struct TensorOut {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;  // numel * dtype_size bytes
};
// Writes a safetensors file: to `path`.tmp, fsync, then rename. Tensors are stored in the given
// order; the header lists them sorted by name (as the Python library does).
void save_safetensors(const std::string& path, const std::vector<TensorOut>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace lf
