// The build targets x86-64-v3 (AVX2, FMA). This file is compiled for plain x86-64 and runs before
// any other initializer, so a CPU without them gets a message and exit code 2 instead of SIGILL.
#if defined(__x86_64__)
#include <cstdio>
#include <cstdlib>

__attribute__((constructor(101))) static void lf_check_cpu() {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        static const char msg[] = "loraforge-core needs an x86-64 CPU with AVX2 and FMA (x86-64-v3); this one has not";
        // the error event of docs/CONTRACTS.md, on stdout, and the message for people on stderr
        std::printf("{\"event\":\"error\",\"code\":2,\"kind\":\"usage\",\"message\":\"%s\"}\n", msg);
        std::fprintf(stderr, "error: %s\n", msg);
        std::exit(2);
    }
}
#endif
