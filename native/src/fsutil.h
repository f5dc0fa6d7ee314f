// Small file-system helpers: atomic writes (tmp + fsync + rename), reading whole files.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace lf {

// Writes to `path`.tmp; commit() fsyncs and renames it over `path`. Destroyed without commit,
// it removes the temporary file, so a half-written file never appears under `path`.
class AtomicFile {
public:
    explicit AtomicFile(const std::string& path);
    ~AtomicFile();
    void write(const void* data, size_t n);
    void commit();
private:
    std::string path_, tmp_;
    int fd_ = -1;
};

void write_file_atomic(const std::string& path, const std::string& contents);
// reads a whole file; throws invalid_input naming the file
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
bool is_dir(const std::string& path);
void make_dirs(const std::string& path);  // mkdir -p; throws io_error
void remove_tree(const std::string& path);
std::vector<std::string> list_dir(const std::string& path);
void fsync_dir(const std::string& path);
void rename_path(const std::string& from, const std::string& to);

}  // namespace lf
