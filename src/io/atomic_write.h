/* Atomic file replacement: data goes to PATH.tmp.XXXXXX in the same
 * directory; commit = fflush + fsync + rename over PATH + fsync of the
 * directory. On any failure (or abort) the temp file is removed and whatever
 * was at PATH before is left untouched. */
#ifndef FB_IO_ATOMIC_WRITE_H
#define FB_IO_ATOMIC_WRITE_H
#include "flashblock.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct fb_atomic_file {
    FILE *fp;
    char *path;       /* final name */
    char *tmp_path;   /* temp name while open */
    uint64_t written; /* bytes written so far */
    int failed;       /* a write failed: commit will refuse */
} fb_atomic_file;

/* Creates the folder DIR and any missing parents, as `mkdir -p` does (0755).
 * Fails, naming the folder that could not be made and why, when a part of
 * the path exists and is not a folder or cannot be created. */
fb_status fb_mkdir_p(const char *dir);
/* fb_mkdir_p of the folder that holds the file PATH (nothing for a bare name). */
fb_status fb_mkdir_parents(const char *path);

/* Creates the temp file (mode: that of an existing PATH, else 0644), making
 * missing parent folders first. */
fb_status fb_atomic_open(fb_atomic_file *af, const char *path);
/* Appends n bytes. On failure the file is aborted (temp removed) and later
 * calls fail too; callers may still call abort/commit safely. */
fb_status fb_atomic_write(fb_atomic_file *af, const void *data, size_t n);
fb_status fb_atomic_write_zeros(fb_atomic_file *af, size_t n);
/* Flush, fsync, close, rename, fsync directory. Always releases af; on
 * failure the temp file is gone and PATH unchanged. */
fb_status fb_atomic_commit(fb_atomic_file *af);
/* Close and remove the temp file; no-op on a released struct. */
void fb_atomic_abort(fb_atomic_file *af);

/* Whole-buffer convenience. */
fb_status fb_atomic_write_file(const char *path, const void *data, size_t n);
#endif
