#include "json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lf {

Json Json::of(double d) {
    Json j;
    j.type = Number;
    j.number = d;
    char buf[40];
    if (!std::isfinite(d)) { j.type = Null; return j; }  // JSON has no NaN/inf
    if (d == std::floor(d) && std::fabs(d) < 9.0e15) std::snprintf(buf, sizeof buf, "%.0f", d);
    else {
        // shortest text that reads back as the same double
        for (int prec = 15; prec <= 17; prec++) {
            std::snprintf(buf, sizeof buf, "%.*g", prec, d);
            if (std::strtod(buf, nullptr) == d) break;
        }
    }
    j.text = buf;
    return j;
}
Json Json::of(int64_t i) {
    Json j;
    j.type = Number;
    j.number = (double)i;
    j.text = std::to_string(i);
    return j;
}
Json Json::of(uint64_t u) {
    Json j;
    j.type = Number;
    j.number = (double)u;
    j.text = std::to_string(u);
    return j;
}

bool Json::get_u64(uint64_t* out) const {
    if (type != Number || text.empty()) return false;
    for (char c : text) if (c < '0' || c > '9') return false;
    if (text.size() > 20) return false;
    errno = 0;
    unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
    if (errno == ERANGE) return false;
    *out = v;
    return true;
}
bool Json::get_i64(int64_t* out) const {
    if (type != Number || text.empty()) return false;
    size_t k = text[0] == '-' ? 1 : 0;
    if (k == text.size()) return false;
    for (size_t i = k; i < text.size(); i++) if (text[i] < '0' || text[i] > '9') return false;
    errno = 0;
    long long v = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) return false;
    *out = v;
    return true;
}

const Json* Json::find(const std::string& key) const {
    if (type != Object) return nullptr;
    for (auto& kv : fields) if (kv.first == key) return &kv.second;
    return nullptr;
}
Json& Json::set(const std::string& key, Json v) {
    type = Object;
    for (auto& kv : fields) if (kv.first == key) { kv.second = std::move(v); return *this; }
    fields.emplace_back(key, std::move(v));
    return *this;
}

// ---------------------------------------------------------------------------------------------
// parser: recursive descent with a depth limit so hostile input cannot exhaust the stack

namespace {
struct Parser {
    const char* p;
    const char* begin;
    const char* end;
    std::string err;
    int depth = 0;

    bool fail(const char* what) {
        if (err.empty()) {
            size_t line = 1, col = 1;
            for (const char* q = begin; q < p && q < end; q++) {
                if (*q == '\n') { line++; col = 1; } else col++;
            }
            char buf[64];
            std::snprintf(buf, sizeof buf, "line %zu, column %zu: ", line, col);
            err = std::string(buf) + what;
        }
        return false;
    }
    void ws() { while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++; }
    bool lit(const char* s) {
        size_t n = std::strlen(s);
        if ((size_t)(end - p) < n || std::memcmp(p, s, n) != 0) return fail("invalid literal");
        p += n;
        return true;
    }
    static void put_utf8(std::string& s, uint32_t cp) {
        if (cp < 0x80) s += (char)cp;
        else if (cp < 0x800) { s += (char)(0xC0 | (cp >> 6)); s += (char)(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
            s += (char)(0xE0 | (cp >> 12)); s += (char)(0x80 | ((cp >> 6) & 0x3F)); s += (char)(0x80 | (cp & 0x3F));
        } else {
            s += (char)(0xF0 | (cp >> 18)); s += (char)(0x80 | ((cp >> 12) & 0x3F));
            s += (char)(0x80 | ((cp >> 6) & 0x3F)); s += (char)(0x80 | (cp & 0x3F));
        }
    }
    bool hex4(uint32_t* v) {
        if (end - p < 4) return fail("truncated \\u escape");
        uint32_t x = 0;
        for (int i = 0; i < 4; i++) {
            char c = *p++;
            x <<= 4;
            if (c >= '0' && c <= '9') x |= c - '0';
            else if (c >= 'a' && c <= 'f') x |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') x |= c - 'A' + 10;
            else return fail("bad \\u escape");
        }
        *v = x;
        return true;
    }
    bool string(std::string* out) {
        p++;  // opening quote
        while (true) {
            if (p >= end) return fail("unterminated string");
            unsigned char c = (unsigned char)*p;
            if (c == '"') { p++; return true; }
            if (c < 0x20) return fail("control character in string");
            if (c == '\\') {
                p++;
                if (p >= end) return fail("unterminated string");
                char e = *p++;
                switch (e) {
                    case '"': *out += '"'; break;
                    case '\\': *out += '\\'; break;
                    case '/': *out += '/'; break;
                    case 'b': *out += '\b'; break;
                    case 'f': *out += '\f'; break;
                    case 'n': *out += '\n'; break;
                    case 'r': *out += '\r'; break;
                    case 't': *out += '\t'; break;
                    case 'u': {
                        uint32_t cp = 0;
                        if (!hex4(&cp)) return false;
                        if (cp >= 0xD800 && cp < 0xDC00) {
                            uint32_t lo = 0;
                            if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return fail("unpaired surrogate");
                            p += 2;
                            if (!hex4(&lo)) return false;
                            if (lo < 0xDC00 || lo >= 0xE000) return fail("unpaired surrogate");
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else if (cp >= 0xDC00 && cp < 0xE000) return fail("unpaired surrogate");
                        put_utf8(*out, cp);
                        break;
                    }
                    default: return fail("bad escape in string");
                }
            } else {
                *out += (char)c;
                p++;
            }
        }
    }
    bool number(Json* out) {
        const char* s = p;
        if (p < end && *p == '-') p++;
        if (p >= end) return fail("bad number");
        if (*p == '0') p++;
        else if (*p >= '1' && *p <= '9') while (p < end && *p >= '0' && *p <= '9') p++;
        else return fail("bad number");
        if (p < end && *p == '.') {
            p++;
            if (p >= end || *p < '0' || *p > '9') return fail("bad number");
            while (p < end && *p >= '0' && *p <= '9') p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < end && (*p == '+' || *p == '-')) p++;
            if (p >= end || *p < '0' || *p > '9') return fail("bad number");
            while (p < end && *p >= '0' && *p <= '9') p++;
        }
        out->type = Json::Number;
        out->text.assign(s, p - s);
        out->number = std::strtod(out->text.c_str(), nullptr);
        return true;
    }
    bool value(Json* out) {
        ws();
        if (p >= end) return fail("unexpected end of input");
        if (++depth > 200) return fail("nesting too deep");
        bool ok;
        char c = *p;
        if (c == '{') ok = object(out);
        else if (c == '[') ok = array(out);
        else if (c == '"') { out->type = Json::String; ok = string(&out->text); }
        else if (c == 't') { ok = lit("true"); *out = Json::of(true); }
        else if (c == 'f') { ok = lit("false"); *out = Json::of(false); }
        else if (c == 'n') { ok = lit("null"); *out = Json(); }
        else if (c == '-' || (c >= '0' && c <= '9')) ok = number(out);
        else ok = fail("unexpected character");
        depth--;
        return ok;
    }
    bool object(Json* out) {
        out->type = Json::Object;
        p++;
        ws();
        if (p < end && *p == '}') { p++; return true; }
        while (true) {
            ws();
            if (p >= end || *p != '"') return fail("expected a string key");
            std::string key;
            if (!string(&key)) return false;
            ws();
            if (p >= end || *p != ':') return fail("expected ':'");
            p++;
            out->fields.emplace_back(std::move(key), Json());
            if (!value(&out->fields.back().second)) return false;
            ws();
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == '}') { p++; return true; }
            return fail("expected ',' or '}'");
        }
    }
    bool array(Json* out) {
        out->type = Json::Array;
        p++;
        ws();
        if (p < end && *p == ']') { p++; return true; }
        while (true) {
            out->items.emplace_back();
            if (!value(&out->items.back())) return false;
            ws();
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == ']') { p++; return true; }
            return fail("expected ',' or ']'");
        }
    }
};
}  // namespace

bool json_parse(const char* data, size_t n, Json* out, std::string* err) {
    Parser ps{data, data, data + n, {}};
    *out = Json();
    if (!ps.value(out)) { *err = ps.err; return false; }
    ps.ws();
    if (ps.p != ps.end) { ps.fail("trailing characters after the JSON value"); *err = ps.err; return false; }
    return true;
}

// ---------------------------------------------------------------------------------------------
// writer

std::string json_quote(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
                else o += (char)c;
        }
    }
    return o + "\"";
}

static void dump(const Json& j, std::string& o) {
    switch (j.type) {
        case Json::Null: o += "null"; break;
        case Json::Bool: o += j.boolean ? "true" : "false"; break;
        case Json::Number: o += j.text.empty() ? "0" : j.text; break;
        case Json::String: o += json_quote(j.text); break;
        case Json::Array:
            o += '[';
            for (size_t i = 0; i < j.items.size(); i++) { if (i) o += ','; dump(j.items[i], o); }
            o += ']';
            break;
        case Json::Object:
            o += '{';
            for (size_t i = 0; i < j.fields.size(); i++) {
                if (i) o += ',';
                o += json_quote(j.fields[i].first);
                o += ':';
                dump(j.fields[i].second, o);
            }
            o += '}';
            break;
    }
}
std::string json_dump(const Json& j) { std::string o; dump(j, o); return o; }

std::string json_type_name(const Json& j) {
    switch (j.type) {
        case Json::Null: return "null";
        case Json::Bool: return "a boolean";
        case Json::Number: return "a number";
        case Json::String: return "a string";
        case Json::Array: return "an array";
        case Json::Object: return "an object";
    }
    return "?";
}

}  // namespace lf
