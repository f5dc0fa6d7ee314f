// JSON Lines events on stdout (contract 2); human logs go to stderr.
#pragma once
#include <string>

#include "json.h"

namespace lf {

std::string rfc3339_now();
// writes {"event": name, "time": now, ...fields} as one line to stdout and flushes
void emit_event(const std::string& name, Json fields);
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lf
