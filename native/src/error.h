// Errors of the core: bad input returns an Error with an exit code and the place it was found;
// bugs abort through LF_ASSERT (exit code 1 "internal").
#pragma once
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace lf {

enum ExitCode {
    EXIT_OK = 0,
    EXIT_INTERNAL = 1,
    EXIT_USAGE = 2,
    EXIT_INVALID_INPUT = 3,
    EXIT_NUMERICS = 4,
    EXIT_ADAPTER_CHECK = 5,
    EXIT_IO = 6,
    EXIT_INTERRUPTED = 130,
};

const char* exit_kind(int code);

// One error, with where it was found. `what()` is the full human message.
struct Error : std::runtime_error {
    int code;
    std::string file, tensor, field, layer;
    std::string detail;  // the message without the location prefix
    Error(int code_, std::string detail_, std::string file_ = "", std::string tensor_ = "",
          std::string field_ = "", std::string layer_ = "");
};

Error invalid_input(const std::string& file, const std::string& msg, const std::string& tensor = "",
                    const std::string& field = "");
Error usage_error(const std::string& msg, const std::string& field = "", const std::string& file = "");
Error io_error(const std::string& file, const std::string& msg);

std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lf

#define LF_ASSERT(cond)                                                                      \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            std::fprintf(stderr, "internal error: %s:%d: assertion failed: %s\n", __FILE__, \
                         __LINE__, #cond);                                                   \
            std::exit(1);                                                                    \
        }                                                                                    \
    } while (0)
