// Element types: of safetensors tensors (safetensors.h) and of the frozen weights a backend op
// reads (backend.h supports_op). Names as safetensors spells them ("F32", "BF16", ...).
#pragma once
#include <cstddef>
#include <string>

namespace lf {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, Unknown };
const char* dtype_name(DType d);  // defined in safetensors.cpp
DType dtype_from_name(const std::string& s);
size_t dtype_size(DType d);

}  // namespace lf
