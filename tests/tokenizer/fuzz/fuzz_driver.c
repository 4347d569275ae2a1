/* Runs a fuzz target without libFuzzer (any compiler): over the files given
 * on the command line, then N pseudo-random inputs (CTest smoke test). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
    long iters = 2000;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-runs=", 6) == 0) { iters = atol(argv[i] + 6); continue; }
        FILE *f = fopen(argv[i], "rb");
        if (!f) { perror(argv[i]); return 1; }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    uint64_t s = 0x9E3779B97F4A7C15ull;
    static const char *dict[] = { "'s", " ", "  ", "\n", "a", "Z", "1", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80",
                                  "\xe2\x80\x8d", "<|endoftext|>", "\xff", "\x80", "\xe2\x82", "\t", "<0x41>", "\xc2\xa0", "{", "\"", "\x00" };
    uint8_t buf[4096];
    for (long it = 0; it < iters; it++) {
        size_t n = 0;
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        size_t target = (size_t)(s % 600);
        buf[n++] = (uint8_t)(s >> 32);
        while (n < target) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            if (s & 1) buf[n++] = (uint8_t)(s >> 40);
            else {
                const char *w = dict[(s >> 8) % (sizeof dict / sizeof dict[0])];
                size_t wl = w[0] ? strlen(w) : 1;
                if (n + wl > sizeof buf) break;
                memcpy(buf + n, w, wl);
                n += wl;
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("%ld generated inputs passed\n", iters);
    return 0;
}
