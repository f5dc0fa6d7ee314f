// A small JSON reader and writer (RFC 8259), enough for config.json, run.json, safetensors
// headers and the events. Objects keep their key order. Numbers keep their source text so
// that 64-bit integers (safetensors offsets) are read exactly.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lf {

struct Json {
    enum Type { Null, Bool, Number, String, Array, Object };
    Type type = Null;
    bool boolean = false;
    double number = 0.0;
    std::string text;  // String: the value; Number: the source text
    std::vector<Json> items;                          // Array
    std::vector<std::pair<std::string, Json>> fields; // Object

    Json() = default;
    static Json null() { return Json(); }
    static Json of(bool b) { Json j; j.type = Bool; j.boolean = b; return j; }
    static Json of(double d);
    static Json of(int64_t i);
    static Json of(int i) { return of((int64_t)i); }
    static Json of(uint64_t u);
    static Json of(const std::string& s) { Json j; j.type = String; j.text = s; return j; }
    static Json of(const char* s) { return of(std::string(s)); }
    static Json array() { Json j; j.type = Array; return j; }
    static Json object() { Json j; j.type = Object; return j; }

    bool is_null() const { return type == Null; }
    bool is_object() const { return type == Object; }
    bool is_array() const { return type == Array; }
    bool is_string() const { return type == String; }
    bool is_number() const { return type == Number; }
    bool is_bool() const { return type == Bool; }
    // true and sets *out when this is a number written as an integer that fits
    bool get_u64(uint64_t* out) const;
    bool get_i64(int64_t* out) const;

    const Json* find(const std::string& key) const;
    Json& set(const std::string& key, Json v);  // add or replace
    Json& push(Json v) { items.push_back(std::move(v)); return *this; }
};

// Parses `n` bytes. On failure returns false and sets `err` to "line L, column C: what".
bool json_parse(const char* data, size_t n, Json* out, std::string* err);
std::string json_dump(const Json& j);  // compact, one line
std::string json_quote(const std::string& s);
std::string json_type_name(const Json& j);

}  // namespace lf
