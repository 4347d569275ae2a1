#include "io/atomic_write.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void release(fb_atomic_file *af) {
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

void fb_atomic_abort(fb_atomic_file *af) {
    if (!af) return;
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    release(af);
}

fb_status fb_mkdir_p(const char *dir) {
    if (!dir || !*dir) return fb_fail(FB_ERR_INVALID_ARG, "mkdir: empty path");
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p) return fb_fail(FB_ERR_OOM, "%s: out of memory", dir);
    memcpy(p, dir, n + 1);
    fb_status s = FB_OK;
    /* walk the components left to right; each prefix ends at a '/' or the end */
    for (size_t i = 1; i <= n && s == FB_OK; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        if (p[i - 1] == '/') continue;   /* "a//b" */
        char c = p[i];
        p[i] = '\0';
        struct stat st;
        if (mkdir(p, 0755) != 0) {
            int e = errno;
            if (stat(p, &st) != 0) s = fb_fail(FB_ERR_IO, "cannot create folder %s: %s: %s", dir, p, strerror(e));
            else if (!S_ISDIR(st.st_mode)) s = fb_fail(FB_ERR_IO, "cannot create folder %s: %s is a file, not a folder", dir, p);
        }
        p[i] = c;
    }
    free(p);
    return s;
}

fb_status fb_mkdir_parents(const char *path) {
    if (!path) return fb_fail(FB_ERR_INVALID_ARG, "mkdir: NULL path");
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return FB_OK;   /* the current folder, or "/" */
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return fb_fail(FB_ERR_OOM, "%s: out of memory", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    fb_status s = fb_mkdir_p(dir);
    free(dir);
    return s;
}

fb_status fb_atomic_open(fb_atomic_file *af, const char *path) {
    if (!af || !path || !*path) return fb_fail(FB_ERR_INVALID_ARG, "fb_atomic_open: empty path");
    memset(af, 0, sizeof *af);
    FB_TRY(fb_mkdir_parents(path));
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp_path = malloc(n + 12);
    if (!af->path || !af->tmp_path) { release(af); return fb_fail(FB_ERR_OOM, "%s: out of memory", path); }
    memcpy(af->path, path, n + 1);
    memcpy(af->tmp_path, path, n);
    memcpy(af->tmp_path + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        int e = errno;
        release(af);
        return fb_fail(FB_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    struct stat st;
    mode_t mode = 0644;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) mode = st.st_mode & 07777;
    (void)fchmod(fd, mode);
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        release(af);
        return fb_fail(FB_ERR_IO, "%s: fdopen: %s", path, strerror(e));
    }
    return FB_OK;
}

fb_status fb_atomic_write(fb_atomic_file *af, const void *data, size_t n) {
    if (!af || !af->fp) return fb_fail(FB_ERR_IO, "atomic write on a closed file");
    if (n == 0) return FB_OK;
    if (fwrite(data, 1, n, af->fp) != n) {
        int e = errno;
        char path[512];
        snprintf(path, sizeof path, "%s", af->path);
        fb_atomic_abort(af);
        return fb_fail(FB_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    af->written += n;
    return FB_OK;
}

fb_status fb_atomic_write_zeros(fb_atomic_file *af, size_t n) {
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        FB_TRY(fb_atomic_write(af, zeros, k));
        n -= k;
    }
    return FB_OK;
}

fb_status fb_atomic_commit(fb_atomic_file *af) {
    if (!af || !af->fp) return fb_fail(FB_ERR_IO, "atomic commit on a closed file");
    char path[512];
    snprintf(path, sizeof path, "%s", af->path);
    int e = 0;
    const char *step = NULL;
    if (fflush(af->fp) != 0) { e = errno; step = "flush"; }
    else if (fsync(fileno(af->fp)) != 0) { e = errno; step = "fsync"; }
    if (step) { fb_atomic_abort(af); return fb_fail(FB_ERR_IO, "%s: %s failed: %s", path, step, strerror(e)); }
    FILE *fp = af->fp;
    af->fp = NULL;
    if (fclose(fp) != 0) { e = errno; fb_atomic_abort(af); return fb_fail(FB_ERR_IO, "%s: close failed: %s", path, strerror(e)); }
    if (rename(af->tmp_path, af->path) != 0) {
        e = errno;
        fb_atomic_abort(af);
        return fb_fail(FB_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    /* fsync the directory so the rename itself is durable */
    char *slash = strrchr(af->path, '/');
    const char *dir = ".";
    if (slash == af->path) dir = "/";
    else if (slash) { *slash = '\0'; dir = af->path; }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: some file systems refuse fsync on directories */
        close(dfd);
    }
    release(af);
    return FB_OK;
}

fb_status fb_atomic_write_file(const char *path, const void *data, size_t n) {
    fb_atomic_file af;
    FB_TRY(fb_atomic_open(&af, path));
    FB_TRY(fb_atomic_write(&af, data, n));
    return fb_atomic_commit(&af);
}
