/* Fault injection for tests (LD_PRELOAD=failio.so nabla ...): counts the calls by which a
 * process writes files — opening a file for writing, mkstemp, fchmod, write and fwrite to a
 * regular file, fputs, fflush, fsync, fdatasync, close of a file open for writing that holds
 * data, rename — and makes
 * the k-th of them fail as a full or broken disk would. Reads, and writes to the terminal,
 * pipes and sockets, are not counted: they are not what a save consists of.
 *
 *   NABLA_FAILIO_AT=k        the call to fail (1-based; 0 or unset: none, only count)
 *   NABLA_FAILIO_ERRNO=name  ENOSPC (default), EIO or EDQUOT
 *   NABLA_FAILIO_TRACE=file  appends "k call target" per counted call (target: the path, or
 *                            for a descriptor the path it is open on), "FAIL" on the failed one
 *
 * A failed close still closes (as NFS does when a write-back fails); a failed write writes
 * nothing. tests/cli_failures.sh drives it. Built as a shared object (Makefile). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long calls;

/* The next definition of a function (libc's), looked up once: REAL(write)(fd, buf, n). The
 * address is kept as an object pointer and read back through the function's own pointer
 * type, the POSIX idiom for dlsym's result. */
static void **lookup(void **slot, const char *name)
{
    if (!*slot)
        *slot = dlsym(RTLD_NEXT, name);
    return slot;
}
#define REAL(name) (*(__typeof__(&name) *)lookup(&real_##name, #name))
static void *real_open, *real_open64, *real_fopen, *real_fopen64, *real_fclose, *real_mkstemp,
    *real_mkstemp64, *real_fchmod, *real_write, *real_fwrite, *real_fputs, *real_fflush, *real_fsync,
    *real_fdatasync, *real_close, *real_rename;

/* The path a descriptor is open on, for the trace. */
static void fd_path(int fd, char *buf, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, size - 1);
    buf[n > 0 ? n : 0] = 0;
}

static int regular_fd(int fd)
{
    struct stat st;
    return fd > 2 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static int writable_fd(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_ACCMODE) != O_RDONLY;
}

/* Counts one call; returns the errno to fail it with, or 0 to let it through. */
static int hit(const char *call, const char *target)
{
    long k = ++calls;
    const char *at = getenv("NABLA_FAILIO_AT");
    int fail = at && atol(at) == k;
    const char *trace = getenv("NABLA_FAILIO_TRACE");
    if (trace) {
        int saved = errno;
        FILE *f = REAL(fopen)(trace, "a");
        if (f) {
            fprintf(f, "%ld %s %s%s\n", k, call, target, fail ? " FAIL" : "");
            REAL(fclose)(f);
        }
        errno = saved;
    }
    if (!fail)
        return 0;
    const char *name = getenv("NABLA_FAILIO_ERRNO");
    return name && strcmp(name, "EIO") == 0 ? EIO : name && strcmp(name, "EDQUOT") == 0 ? EDQUOT
                                                                                       : ENOSPC;
}

static int hit_fd(const char *call, int fd)
{
    char path[PATH_MAX];
    fd_path(fd, path, sizeof path);
    return hit(call, path);
}

static int opens_for_writing(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) || (flags & O_DIRECTORY);
}

/* Fails the call: errno e, and the value the function returns on failure. */
#define FAIL_IF(e, failed)                                                                     \
    do {                                                                                       \
        int e_ = (e); /* once: each evaluation counts a call */                                \
        if (e_) {                                                                              \
            errno = e_;                                                                        \
            return failed;                                                                     \
        }                                                                                      \
    } while (0)

/* open and open64, fopen and fopen64, mkstemp and mkstemp64: the same shim for each name */
#define SHIM_OPEN(name)                                                                        \
    int name(const char *path, int flags, ...)                                                 \
    {                                                                                          \
        mode_t mode = 0;                                                                       \
        if (flags & (O_CREAT | O_TMPFILE)) {                                                   \
            va_list ap;                                                                        \
            va_start(ap, flags);                                                               \
            mode = va_arg(ap, mode_t);                                                         \
            va_end(ap);                                                                        \
        }                                                                                      \
        FAIL_IF(opens_for_writing(flags) ? hit("open", path) : 0, -1);                         \
        return REAL(name)(path, flags, mode);                                                  \
    }
#define SHIM_FOPEN(name)                                                                       \
    FILE *name(const char *path, const char *mode)                                             \
    {                                                                                          \
        FAIL_IF(strpbrk(mode, "wa+") ? hit("fopen", path) : 0, NULL);                          \
        return REAL(name)(path, mode);                                                         \
    }
#define SHIM_MKSTEMP(name)                                                                     \
    int name(char *tmpl)                                                                       \
    {                                                                                          \
        FAIL_IF(hit("mkstemp", tmpl), -1);                                                     \
        return REAL(name)(tmpl);                                                               \
    }
SHIM_OPEN(open)
SHIM_OPEN(open64)
SHIM_FOPEN(fopen)
SHIM_FOPEN(fopen64)
SHIM_MKSTEMP(mkstemp)
SHIM_MKSTEMP(mkstemp64)

int fchmod(int fd, mode_t mode)
{
    FAIL_IF(regular_fd(fd) ? hit_fd("fchmod", fd) : 0, -1);
    return REAL(fchmod)(fd, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    FAIL_IF(regular_fd(fd) ? hit_fd("write", fd) : 0, -1);
    return REAL(write)(fd, buf, n);
}

size_t fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
    FAIL_IF(regular_fd(fileno(f)) ? hit_fd("fwrite", fileno(f)) : 0, 0);
    return REAL(fwrite)(buf, size, n, f);
}

int fputs(const char *text, FILE *f)
{
    FAIL_IF(regular_fd(fileno(f)) ? hit_fd("fputs", fileno(f)) : 0, EOF);
    return REAL(fputs)(text, f);
}

int fflush(FILE *f)
{
    FAIL_IF(f && regular_fd(fileno(f)) && writable_fd(fileno(f)) ? hit_fd("fflush", fileno(f)) : 0,
            EOF);
    return REAL(fflush)(f);
}

int fsync(int fd)
{
    FAIL_IF(hit_fd("fsync", fd), -1);
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    FAIL_IF(hit_fd("fdatasync", fd), -1);
    return REAL(fdatasync)(fd);
}

/* Only a file that holds data can fail to write it back at close (an empty lock file or
 * probe cannot). */
static int holds_data(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_size > 0;
}

int close(int fd)
{
    int e = regular_fd(fd) && writable_fd(fd) && holds_data(fd) ? hit_fd("close", fd) : 0;
    int rc = REAL(close)(fd); /* closed even when failed, as NFS does */
    FAIL_IF(e, -1);
    return rc;
}

int rename(const char *from, const char *to)
{
    FAIL_IF(hit("rename", to), -1);
    return REAL(rename)(from, to);
}
