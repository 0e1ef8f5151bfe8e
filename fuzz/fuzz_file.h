/* Shared by the libFuzzer harnesses: the loaders take paths, so every input is first written
 * to a file.
 *
 * The file is a memfd (memfd_create), created once per process and rewritten for each input,
 * and handed to the loader as /proc/self/fd/N. Why not a fresh file per input, or one under
 * /tmp:
 *   - the fuzzer runs thousands of inputs a second; creating and unlinking a file each time
 *     costs more than most loads, and a memfd never touches a disk;
 *   - several fuzzer processes (-jobs, or two harnesses side by side) each get their own file,
 *     with no name to collide on;
 *   - nothing is left behind when libFuzzer kills the process on a crash, a timeout or the
 *     RSS limit (a /tmp file would be, since atexit does not run then);
 *   - opening /proc/self/fd/N makes a new open file description, so every fopen/gzopen in the
 *     loaders starts at offset 0 and sees a regular file (the safetensors reader insists on
 *     S_ISREG), exactly as with a real file.
 * If memfd_create is unavailable (an old kernel), a file under /tmp is created once, unlinked
 * at exit, and rewritten the same way.
 *
 * A harness binary replays files given as arguments (./fuzz_idx crash-1234), which is how
 * scripts/fuzz.sh runs tests/fuzz-regressions/. */
#ifndef NB_FUZZ_FILE_H
#define NB_FUZZ_FILE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nabla.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef struct fuzz_file {
    int fd;
    char path[64];
} fuzz_file;

#define FUZZ_MAX_FILES 4
static char fuzz_tmp_paths[FUZZ_MAX_FILES][64];
static int fuzz_tmp_count;

static inline void fuzz_die(const char *what)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
    abort();
}

static inline void fuzz_unlink_tmp(void)
{
    for (int i = 0; i < fuzz_tmp_count; i++)
        unlink(fuzz_tmp_paths[i]);
}

static inline void fuzz_file_open(fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd >= 0) {
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
        return;
    }
    if (fuzz_tmp_count == FUZZ_MAX_FILES)
        fuzz_die("too many temporary files");
    snprintf(f->path, sizeof f->path, "/tmp/nabla-fuzz-%s-XXXXXX", name);
    f->fd = mkstemp(f->path);
    if (f->fd < 0)
        fuzz_die("mkstemp");
    if (fuzz_tmp_count == 0)
        atexit(fuzz_unlink_tmp);
    memcpy(fuzz_tmp_paths[fuzz_tmp_count++], f->path, sizeof f->path);
}

/* Replaces the file's contents with data[0..size). */
static inline void fuzz_file_write(fuzz_file *f, const void *data, size_t size)
{
    if (ftruncate(f->fd, 0) != 0)
        fuzz_die("ftruncate");
    const unsigned char *p = data;
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(f->fd, p + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fuzz_die("pwrite");
        done += (size_t)n;
    }
}

/* Replaces the file's contents with the gzip compression of data[0..size), written by zlib's
 * own gz* writer (the counterpart of the gzread the IDX loader uses). */
static inline void fuzz_file_write_gz(fuzz_file *f, const void *data, size_t size)
{
    if (ftruncate(f->fd, 0) != 0 || lseek(f->fd, 0, SEEK_SET) != 0)
        fuzz_die("ftruncate");
    int fd = dup(f->fd);
    if (fd < 0)
        fuzz_die("dup");
    gzFile gz = gzdopen(fd, "wb");
    if (!gz) {
        close(fd);
        fuzz_die("gzdopen");
    }
    if (size && gzwrite(gz, data, (unsigned)size) != (int)size)
        fuzz_die("gzwrite");
    if (gzclose(gz) != Z_OK)
        fuzz_die("gzclose");
}

/* A directory for a write round trip (the writers need a real directory for their temporary
 * file and the rename), made under /dev/shm (or /tmp) for each trip and removed after it, so
 * that a crash anywhere else leaves nothing behind. Returns the path of `file` in it. */
static char fuzz_out_dir[64], fuzz_out_path[128];

static inline const char *fuzz_out_begin(const char *file)
{
    struct stat sb;
    snprintf(fuzz_out_dir, sizeof fuzz_out_dir, "%s/nabla-fuzz-XXXXXX",
             stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp");
    if (!mkdtemp(fuzz_out_dir))
        fuzz_die("mkdtemp");
    snprintf(fuzz_out_path, sizeof fuzz_out_path, "%s/%s", fuzz_out_dir, file);
    return fuzz_out_path;
}

static inline void fuzz_out_end(void)
{
    unlink(fuzz_out_path);
    rmdir(fuzz_out_dir);
}

/* A NUL-terminated copy of the input, for the text loaders. Caller frees. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        fuzz_die("malloc");
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* An invariant of a loader's result failed: report and abort, so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond, ...)                                                            \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Labels of a loaded data set lie in [0, classes) and classes is 1 + the largest. */
static inline void fuzz_check_labels(const nb_dataset *ds)
{
    int32_t largest = -1;
    for (int64_t i = 0; ds->labels && i < ds->count; i++) {
        FUZZ_ASSERT(ds->labels[i] >= 0 && ds->labels[i] < ds->classes, "label %d of %d classes",
                    ds->labels[i], ds->classes);
        largest = ds->labels[i] > largest ? ds->labels[i] : largest;
    }
    FUZZ_ASSERT(ds->classes == largest + 1, "classes %d, largest label %d", ds->classes, largest);
}

#endif
