// Runs a fuzz target over files (a corpus) without libFuzzer: lets every compiler build the
// targets and replay the seed corpus and any crash reproducer in the normal test suite.
//   replay FILE_OR_DIR...
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int run_file(const std::string& p) {
    FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) return 0;
    std::vector<uint8_t> b;
    int c;
    while ((c = std::fgetc(f)) != EOF) b.push_back((uint8_t)c);
    std::fclose(f);
    LLVMFuzzerTestOneInput(b.data(), b.size());
    // every prefix too: truncation is the most common corruption
    for (size_t n = 0; n < b.size(); n += 1 + b.size() / 64) LLVMFuzzerTestOneInput(b.data(), n);
    return 1;
}

int main(int argc, char** argv) {
    int n = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            DIR* d = opendir(argv[i]);
            while (struct dirent* e = readdir(d))
                if (e->d_name[0] != '.') n += run_file(std::string(argv[i]) + "/" + e->d_name);
            closedir(d);
        } else {
            n += run_file(argv[i]);
        }
    }
    std::printf("replayed %d inputs (and their prefixes) without a crash\n", n);
    return n > 0 ? 0 : 1;
}
