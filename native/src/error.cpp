#include "error.h"

#include <cstdarg>
#include <vector>

namespace lf {

const char* exit_kind(int code) {
    switch (code) {
        case EXIT_INTERNAL: return "internal";
        case EXIT_USAGE: return "usage";
        case EXIT_INVALID_INPUT: return "invalid_input";
        case EXIT_NUMERICS: return "numerics";
        case EXIT_ADAPTER_CHECK: return "adapter_check";
        case EXIT_IO: return "io";
        case EXIT_INTERRUPTED: return "interrupted";
        default: return "internal";
    }
}

static std::string compose(const std::string& detail, const std::string& file, const std::string& tensor,
                           const std::string& field) {
    std::string s;
    if (!file.empty()) s += file + ": ";
    if (!tensor.empty()) s += "tensor '" + tensor + "': ";
    if (!field.empty()) s += "field '" + field + "': ";
    return s + detail;
}

Error::Error(int code_, std::string detail_, std::string file_, std::string tensor_, std::string field_,
             std::string layer_)
    : std::runtime_error(compose(detail_, file_, tensor_, field_)),
      code(code_), file(std::move(file_)), tensor(std::move(tensor_)), field(std::move(field_)),
      layer(std::move(layer_)), detail(std::move(detail_)) {}

Error invalid_input(const std::string& file, const std::string& msg, const std::string& tensor,
                    const std::string& field) {
    return Error(EXIT_INVALID_INPUT, msg, file, tensor, field);
}
Error usage_error(const std::string& msg, const std::string& field, const std::string& file) {
    return Error(EXIT_USAGE, msg, file, "", field);
}
Error io_error(const std::string& file, const std::string& msg) { return Error(EXIT_IO, msg, file); }

std::string strprintf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    std::vector<char> buf(n + 1);
    std::vsnprintf(buf.data(), buf.size(), fmt, ap2);
    va_end(ap2);
    return std::string(buf.data(), n);
}

}  // namespace lf
