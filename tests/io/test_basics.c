/* Cursor bounds, mapped files, atomic writes (incl. a failing write), fp16/bf16
 * conversions and Q8_0 blocks. */
#include "core/error.h"
#include "io/atomic_write.h"
#include "core/half.h"
#include "core/q8_0.h"
#include "io/mapped_file.h"
#include "io_test_common.h"
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

static int count_tmp_files(void) {
    DIR *d = opendir(io_tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_reader(void) {
    uint8_t buf[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    fb_reader r;
    fb_reader_init(&r, buf, sizeof buf, "buf");
    uint32_t u32; uint64_t u64; uint8_t u8;
    FB_CHECK(fb_reader_u32(&r, &u32, "a") == FB_OK && u32 == 0x04030201u, "u32");
    FB_CHECK(fb_reader_u64(&r, &u64, "b") == FB_OK && u64 == 0x0c0b0a0908070605ull, "u64");
    FB_CHECK(fb_reader_remaining(&r) == 8, "remaining");
    const char *s; uint64_t len;
    /* length 2^64-1: must fail without reading, cursor unchanged */
    FB_CHECK(fb_reader_string_u64(&r, UINT64_MAX, &s, &len, "name") == FB_ERR_FORMAT && r.pos == 12, "huge string");
    FB_CHECK(strstr(fb_last_error(), "buf: offset 12") != NULL, "message: %s", fb_last_error());
    FB_CHECK(fb_reader_string_u64(&r, 10, &s, &len, "name") == FB_ERR_FORMAT && strstr(fb_last_error(), "limit"), "limit");
    FB_CHECK(fb_reader_skip(&r, UINT64_MAX, "x") == FB_ERR_FORMAT && r.pos == 12, "skip overflow");
    FB_CHECK(fb_reader_seek(&r, 21, "x") == FB_ERR_FORMAT, "seek past end");
    FB_CHECK(fb_reader_seek(&r, 20, "x") == FB_OK && fb_reader_u8(&r, &u8, "x") == FB_ERR_FORMAT, "read at end");
    fb_reader_init(&r, NULL, 0, NULL);
    FB_CHECK(fb_reader_u8(&r, &u8, NULL) == FB_ERR_FORMAT, "empty");
    uint64_t o;
    FB_CHECK(fb_mul_overflow_u64(1ull << 32, 1ull << 32, &o), "mul overflow");
    FB_CHECK(fb_align_up_u64(UINT64_MAX - 3, 32, &o), "align overflow");
    FB_CHECK(!fb_align_up_u64(33, 32, &o) && o == 64, "align");
}

static void test_mapped(void) {
    const char *p = io_tmp_path("m.bin");
    io_write_file(p, "hello", 5);
    fb_mapped_file mf;
    FB_CHECK(fb_mapped_file_open(&mf, p) == FB_OK && mf.size == 5 && memcmp(mf.data, "hello", 5) == 0, "map");
    fb_mapped_file_close(&mf);
    fb_mapped_file_close(&mf); /* twice is fine */
    io_write_file(p, "", 0);
    FB_CHECK(fb_mapped_file_open(&mf, p) == FB_OK && mf.size == 0 && mf.data == NULL, "empty map");
    fb_mapped_file_close(&mf);
    FB_CHECK(fb_mapped_file_open(&mf, io_tmpdir) == FB_ERR_IO, "directory");
    FB_CHECK(fb_mapped_file_open(&mf, io_tmp_path("nope")) == FB_ERR_IO && strstr(fb_last_error(), "nope"), "missing");
}

static void test_atomic(void) {
    const char *p = io_tmp_path("a.txt");
    FB_CHECK(fb_atomic_write_file(p, "old contents", 12) == FB_OK, "first write: %s", fb_last_error());
    chmod(p, 0640);
    size_t n;
    uint8_t *b;
    /* abort leaves the old file */
    fb_atomic_file af;
    FB_CHECK(fb_atomic_open(&af, p) == FB_OK, "open");
    FB_CHECK(fb_atomic_write(&af, "new", 3) == FB_OK, "write");
    FB_CHECK(count_tmp_files() == 1, "temp exists while open");
    fb_atomic_abort(&af);
    FB_CHECK(count_tmp_files() == 0, "temp removed on abort");
    b = io_read_file(p, &n);
    FB_CHECK(n == 12 && memcmp(b, "old contents", 12) == 0, "old intact after abort");
    free(b);
    /* commit replaces, keeps the mode */
    FB_CHECK(fb_atomic_write_file(p, "new!", 4) == FB_OK, "replace");
    b = io_read_file(p, &n);
    FB_CHECK(n == 4 && memcmp(b, "new!", 4) == 0, "replaced");
    free(b);
    struct stat st;
    stat(p, &st);
    FB_CHECK((st.st_mode & 0777) == 0640, "mode kept: %o", st.st_mode & 0777);
    /* a write that fails (file size limit): error, temp removed, old intact */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 1 << 16;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        size_t big = 1 << 20;
        uint8_t *data = calloc(big, 1);
        fb_status s = fb_atomic_write_file(p, data, big);
        setrlimit(RLIMIT_FSIZE, &old);
        FB_CHECK(s == FB_ERR_IO, "over-limit write must fail (%s)", fb_status_string(s));
        FB_CHECK(strstr(fb_last_error(), "a.txt") != NULL, "message names the file: %s", fb_last_error());
        FB_CHECK(count_tmp_files() == 0, "temp removed after failed write");
        b = io_read_file(p, &n);
        FB_CHECK(n == 4 && memcmp(b, "new!", 4) == 0, "old intact after failed write");
        free(b);
        free(data);
    }
    /* folders that do not exist are made, as mkdir -p would */
    FB_CHECK(fb_atomic_write_file(io_tmp_path("no/such/dir.bin"), "x", 1) == FB_OK, "missing folders: %s", fb_last_error());
    b = io_read_file(io_tmp_path("no/such/dir.bin"), &n);
    FB_CHECK(b && n == 1 && b[0] == 'x', "file in made folders");
    free(b);
    unlink(io_tmp_path("no/such/dir.bin"));
    rmdir(io_tmp_path("no/such"));
    rmdir(io_tmp_path("no"));
    /* a folder that cannot be made (a file stands in its place) fails, naming it */
    FB_CHECK(fb_atomic_write_file(io_tmp_path("a.txt/sub/f.bin"), "x", 1) == FB_ERR_IO, "folder under a file");
    FB_CHECK(strstr(fb_last_error(), "a.txt") != NULL && strstr(fb_last_error(), "not a folder") != NULL,
             "message names the folder: %s", fb_last_error());
}

static void test_half(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fb_f16_to_f32((uint16_t)h);
        uint16_t back = fb_f32_to_f16(f);
        if (isnan(f)) { if ((back & 0x7c00) != 0x7c00 || !(back & 0x3ff)) bad++; }
        else if (back != h) bad++;
    }
    FB_CHECK(bad == 0, "f16 round trip: %d mismatches", bad);
    FB_CHECK(fb_f16_to_f32(0x3c00) == 1.0f && fb_f16_to_f32(0xc000) == -2.0f && fb_f16_to_f32(0x0001) == ldexpf(1, -24), "f16 values");
    FB_CHECK(fb_f32_to_f16(65520.0f) == 0x7c00 && fb_f32_to_f16(65519.0f) == 0x7bff, "f16 overflow rounding");
    FB_CHECK(fb_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00, "ties to even (down)");
    FB_CHECK(fb_f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02, "ties to even (up)");
    FB_CHECK(fb_f32_to_f16(ldexpf(1, -25)) == 0 && fb_f32_to_f16(ldexpf(1.5f, -25)) == 1, "subnormal rounding");
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fb_bf16_to_f32((uint16_t)h);
        if (!isnan(f) && fb_f32_to_bf16(f) != h) bad++;
    }
    FB_CHECK(bad == 0, "bf16 round trip: %d", bad);
    FB_CHECK(fb_f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80 && fb_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)) == 0x3f82, "bf16 rne");
    float x[32], y[32];
    uint8_t blk[34];
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) * 0.1f;
    fb_q8_0_quantize_row(blk, x, 32);
    fb_q8_0_dequantize_row(y, blk, 32);
    float d = fb_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
    FB_CHECK(fabsf(d - 1.6f / 127) < 1e-4f && (int8_t)blk[2] == -127, "q8_0 scale");
    double e = 0;
    for (int i = 0; i < 32; i++) e = fmax(e, fabs(x[i] - y[i]));
    FB_CHECK(e <= d * 0.51, "q8_0 error %g", e);
    memset(x, 0, sizeof x);
    fb_q8_0_quantize_row(blk, x, 32);
    fb_q8_0_dequantize_row(y, blk, 32);
    FB_CHECK(y[5] == 0.0f, "q8_0 zeros");
}

int main(void) {
    io_tmp_init();
    test_reader();
    test_mapped();
    test_atomic();
    test_half();
    io_tmp_cleanup();
    return fb_test_finish("io_basics");
}
