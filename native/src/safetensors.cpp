#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"
#include "fsutil.h"

namespace lf {

const char* dtype_name(DType d) {
    switch (d) {
        case DType::F32: return "F32";
        case DType::F16: return "F16";
        case DType::BF16: return "BF16";
        case DType::F64: return "F64";
        case DType::I64: return "I64";
        case DType::I32: return "I32";
        case DType::I16: return "I16";
        case DType::I8: return "I8";
        case DType::U8: return "U8";
        case DType::BOOL: return "BOOL";
        default: return "?";
    }
}
DType dtype_from_name(const std::string& s) {
    static const std::pair<const char*, DType> names[] = {
        {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
        {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16},   {"I8", DType::I8},
        {"U8", DType::U8},   {"BOOL", DType::BOOL}};
    for (auto& n : names) if (s == n.first) return n.second;
    return DType::Unknown;
}
size_t dtype_size(DType d) {
    switch (d) {
        case DType::F64: case DType::I64: return 8;
        case DType::F32: case DType::I32: return 4;
        case DType::F16: case DType::BF16: case DType::I16: return 2;
        case DType::I8: case DType::U8: case DType::BOOL: return 1;
        default: return 0;
    }
}

int64_t TensorView::numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
}
std::string TensorView::shape_str() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) { if (i) s += ", "; s += std::to_string(shape[i]); }
    return s + "]";
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw invalid_input(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw invalid_input(path, "not a regular file");
    }
    std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->filename_ = path;
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        ::close(fd);
        throw invalid_input(path, strprintf("truncated: the file has %zu bytes, fewer than the 8-byte header length", size));
    }
    void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED) throw invalid_input(path, std::string("mmap failed: ") + std::strerror(errno));
    f->map_ = m;
    f->map_size_ = size;
    f->validate((const uint8_t*)m, size);
    return f;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& filename) {
    std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->filename_ = filename;
    if (size < 8) throw invalid_input(filename, strprintf("truncated: the file has %zu bytes, fewer than the 8-byte header length", size));
    f->validate(data, size);
    return f;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) munmap(map_, map_size_);
}

void SafetensorsFile::validate(const uint8_t* data, size_t size) {
    const std::string& fn = filename_;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)data[i] << (8 * i);
    if (hlen > size - 8)
        throw invalid_input(fn, strprintf("truncated or corrupt: header length %llu exceeds the %zu bytes after it",
                                          (unsigned long long)hlen, size - 8));
    if (hlen > (100u << 20)) throw invalid_input(fn, "corrupt: header longer than 100 MB");
    Json h;
    std::string err;
    if (!json_parse((const char*)data + 8, (size_t)hlen, &h, &err))
        throw invalid_input(fn, "corrupt header JSON: " + err);
    if (!h.is_object()) throw invalid_input(fn, "corrupt header: not a JSON object");
    const uint8_t* base = data + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    for (auto& kv : h.fields) {
        const std::string& name = kv.first;
        const Json& t = kv.second;
        if (name == "__metadata__") {
            if (!t.is_object()) throw invalid_input(fn, "__metadata__ is not an object");
            metadata_ = t;
            continue;
        }
        if (!t.is_object()) throw invalid_input(fn, "header entry is " + json_type_name(t) + ", not an object", name);
        const Json* jd = t.find("dtype");
        const Json* js = t.find("shape");
        const Json* jo = t.find("data_offsets");
        if (!jd || !jd->is_string()) throw invalid_input(fn, "missing or non-string 'dtype'", name, "dtype");
        if (!js || !js->is_array()) throw invalid_input(fn, "missing or non-array 'shape'", name, "shape");
        if (!jo || !jo->is_array() || jo->items.size() != 2)
            throw invalid_input(fn, "'data_offsets' must be an array of two integers", name, "data_offsets");
        TensorView v;
        v.name = name;
        v.dtype = dtype_from_name(jd->text);
        if (v.dtype == DType::Unknown) throw invalid_input(fn, "unknown dtype '" + jd->text + "'", name, "dtype");
        // numel with overflow check
        unsigned __int128 numel = 1;
        for (auto& d : js->items) {
            uint64_t x;
            if (!d.get_u64(&x)) throw invalid_input(fn, "shape entries must be non-negative integers", name, "shape");
            numel *= x;
            if (numel > ((unsigned __int128)1 << 62)) throw invalid_input(fn, "shape is absurdly large", name, "shape");
            v.shape.push_back((int64_t)x);
        }
        uint64_t b, e;
        if (!jo->items[0].get_u64(&b) || !jo->items[1].get_u64(&e))
            throw invalid_input(fn, "data_offsets must be non-negative integers", name, "data_offsets");
        if (b > e) throw invalid_input(fn, strprintf("header offsets lie: begin %llu > end %llu", (unsigned long long)b, (unsigned long long)e), name, "data_offsets");
        if (e > data_size)
            throw invalid_input(fn, strprintf("header offsets lie or file truncated: data_offsets end %llu is past the %llu data bytes in the file",
                                              (unsigned long long)e, (unsigned long long)data_size), name, "data_offsets");
        unsigned __int128 want = numel * dtype_size(v.dtype);
        if (want != (unsigned __int128)(e - b))
            throw invalid_input(fn, strprintf("header offsets lie: data_offsets span %llu bytes but shape %s of %s needs %llu",
                                              (unsigned long long)(e - b), v.shape_str().c_str(), dtype_name(v.dtype),
                                              (unsigned long long)want), name, "data_offsets");
        v.data = base + b;
        v.nbytes = e - b;
        if (index_.count(name)) throw invalid_input(fn, "duplicate tensor name", name);
        index_[name] = tensors_.size();
        tensors_.push_back(std::move(v));
    }
    check_coverage(base, data_size);
}

// The tensors must tile the data region exactly, as the Python safetensors library requires:
// in the order of their data_offsets each one begins where the previous one ends, the first at 0
// and the last at the end of the file. So no two tensors share bytes (an alias would let a write
// through one change the other) and no byte lies between or after them unclaimed.
void SafetensorsFile::check_coverage(const uint8_t* base, uint64_t data_size) const {
    const std::string& fn = filename_;
    std::vector<const TensorView*> order;
    for (auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [&](const TensorView* a, const TensorView* b) {
        if (a->data != b->data) return a->data < b->data;
        if (a->nbytes != b->nbytes) return a->nbytes < b->nbytes;
        return a->name < b->name;
    });
    auto range = [&](const TensorView* t) {
        uint64_t b = (uint64_t)(t->data - base);
        return strprintf("[%llu, %llu]", (unsigned long long)b, (unsigned long long)(b + t->nbytes));
    };
    uint64_t at = 0;
    const TensorView* prev = nullptr;
    for (const TensorView* t : order) {
        uint64_t b = (uint64_t)(t->data - base);
        if (b < at)
            throw invalid_input(fn, "data_offsets " + range(t) + " overlap those of tensor '" + prev->name + "' " + range(prev) +
                                    ": two tensors would share bytes", t->name, "data_offsets");
        if (b > at)
            throw invalid_input(fn, "data_offsets " + range(t) +
                                    strprintf(" leave bytes [%llu, %llu) of the data unclaimed ", (unsigned long long)at,
                                              (unsigned long long)b) +
                                    (prev ? "after tensor '" + prev->name + "' " + range(prev) : std::string("before it")) +
                                    ": tensors must cover the data region without gaps", t->name, "data_offsets");
        at = b + t->nbytes;
        prev = t;
    }
    if (at != data_size)
        throw invalid_input(fn, strprintf("the tensors cover %llu of the %llu data bytes: the last %llu bytes",
                                          (unsigned long long)at, (unsigned long long)data_size,
                                          (unsigned long long)(data_size - at)) +
                                    (prev ? " after tensor '" + prev->name + "' " + range(prev) : std::string("")) +
                                    " belong to no tensor (file not fully covered)");
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------------------------------------
// dtype conversion

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {  // subnormal: normalize
            int e = -1;
            do { mant <<= 1; e++; } while (!(mant & 0x400));
            mant &= 0x3FF;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 31) bits = sign | 0x7F800000u | (mant << 13);
    else bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
uint16_t f32_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((x >> 16) | 0x40);  // NaN stays NaN
    x += 0x7FFF + ((x >> 16) & 1);  // round to nearest even
    return (uint16_t)(x >> 16);
}
uint16_t f32_to_f16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xFF) - 127 + 15;
    uint32_t mant = x & 0x7FFFFF;
    if (((x >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7C00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

bool frozen_to_f32(const FrozenTensor& t, float* out) {
    const int64_t n = t.numel;
    const uint8_t* d = (const uint8_t*)t.data;
    switch (t.dtype) {
        case DType::F32: std::memcpy(out, d, (size_t)n * 4); return true;
        case DType::F16:
            for (int64_t i = 0; i < n; i++) { uint16_t h; std::memcpy(&h, d + 2 * i, 2); out[i] = f16_to_f32(h); }
            return true;
        case DType::BF16:
            for (int64_t i = 0; i < n; i++) { uint16_t h; std::memcpy(&h, d + 2 * i, 2); out[i] = bf16_to_f32(h); }
            return true;
        default: return false;
    }
}

void tensor_to_f32(const TensorView& t, const std::string& file, float* out) {
    if (!frozen_to_f32(FrozenTensor{t.dtype, t.numel(), t.data}, out))
        throw invalid_input(file, std::string("unsupported dtype ") + dtype_name(t.dtype) + " (supported: F32, F16, BF16)", t.name, "dtype");
}

// ---------------------------------------------------------------------------------------------
// writer

void save_safetensors(const std::string& path, const std::vector<TensorOut>& tensors,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].name < tensors[b].name; });
    Json h = Json::object();
    if (!metadata.empty()) {
        Json m = Json::object();
        for (auto& kv : metadata) m.set(kv.first, Json::of(kv.second));
        h.set("__metadata__", m);
    }
    uint64_t off = 0;
    std::vector<uint64_t> nbytes(tensors.size());
    for (size_t k : order) {
        const TensorOut& t = tensors[k];
        int64_t n = 1;
        Json sh = Json::array();
        for (auto d : t.shape) { n *= d; sh.push(Json::of((int64_t)d)); }
        nbytes[k] = (uint64_t)n * dtype_size(t.dtype);
        Json e = Json::object();
        e.set("dtype", Json::of(dtype_name(t.dtype)));
        e.set("shape", sh);
        Json o = Json::array();
        o.push(Json::of(off)).push(Json::of(off + nbytes[k]));
        e.set("data_offsets", o);
        h.set(t.name, e);
        off += nbytes[k];
    }
    std::string header = json_dump(h);
    while ((header.size() + 8) % 8) header += ' ';
    std::string bytes;
    uint64_t hl = header.size();
    for (int i = 0; i < 8; i++) bytes += (char)((hl >> (8 * i)) & 0xFF);
    bytes += header;
    AtomicFile f(path);
    f.write(bytes.data(), bytes.size());
    for (size_t k : order) f.write(tensors[k].data, nbytes[k]);
    f.commit();
}

}  // namespace lf
