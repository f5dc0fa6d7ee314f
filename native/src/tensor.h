// Element types and frozen tensors: what safetensors files hold (safetensors.h) and what a
// backend is handed to make resident (backend.h weights()). Type names as safetensors spells
// them ("F32", "BF16", ...).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lf {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, Unknown };
const char* dtype_name(DType d);  // defined in safetensors.cpp
DType dtype_from_name(const std::string& s);
size_t dtype_size(DType d);

// A frozen (base model) tensor as stored: numel elements of dtype at data (host memory, e.g. a
// memory-mapped file, kept alive by its owner). Backends decide how they hold it.
struct FrozenTensor {
    DType dtype = DType::F32;
    int64_t numel = 0;
    const void* data = nullptr;
};
// out[0..numel) = t's elements as fp32; false when t's dtype is not F32, F16 or BF16
bool frozen_to_f32(const FrozenTensor& t, float* out);  // defined in safetensors.cpp

}  // namespace lf
