#include "events.h"

#include <sys/time.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace lf {

std::string rfc3339_now() {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    return buf;
}

void emit_event(const std::string& name, Json fields) {
    Json j = Json::object();
    j.set("event", Json::of(name));
    j.set("time", Json::of(rfc3339_now()));
    for (auto& kv : fields.fields) j.set(kv.first, std::move(kv.second));
    std::string line = json_dump(j) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

void log_info(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fputs("[loraforge-core] ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
}

}  // namespace lf
