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

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int e = opens_for_writing(flags) ? hit("open", path) : 0;
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(open)(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int e = opens_for_writing(flags) ? hit("open", path) : 0;
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(open64)(path, flags, mode);
}

FILE *fopen(const char *path, const char *mode)
{
    int e = strpbrk(mode, "wa+") ? hit("fopen", path) : 0;
    if (e) {
        errno = e;
        return NULL;
    }
    return REAL(fopen)(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    int e = strpbrk(mode, "wa+") ? hit("fopen", path) : 0;
    if (e) {
        errno = e;
        return NULL;
    }
    return REAL(fopen64)(path, mode);
}

int mkstemp(char *tmpl)
{
    int e = hit("mkstemp", tmpl);
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(mkstemp)(tmpl);
}

int mkstemp64(char *tmpl)
{
    int e = hit("mkstemp", tmpl);
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(mkstemp64)(tmpl);
}

int fchmod(int fd, mode_t mode)
{
    int e = regular_fd(fd) ? hit_fd("fchmod", fd) : 0;
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(fchmod)(fd, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    int e = regular_fd(fd) ? hit_fd("write", fd) : 0;
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(write)(fd, buf, n);
}

size_t fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
    int e = regular_fd(fileno(f)) ? hit_fd("fwrite", fileno(f)) : 0;
    if (e) {
        errno = e;
        return 0;
    }
    return REAL(fwrite)(buf, size, n, f);
}

int fputs(const char *text, FILE *f)
{
    int e = regular_fd(fileno(f)) ? hit_fd("fputs", fileno(f)) : 0;
    if (e) {
        errno = e;
        return EOF;
    }
    return REAL(fputs)(text, f);
}

int fflush(FILE *f)
{
    int e = f && regular_fd(fileno(f)) && writable_fd(fileno(f)) ? hit_fd("fflush", fileno(f)) : 0;
    if (e) {
        errno = e;
        return EOF;
    }
    return REAL(fflush)(f);
}

int fsync(int fd)
{
    int e = hit_fd("fsync", fd);
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    int e = hit_fd("fdatasync", fd);
    if (e) {
        errno = e;
        return -1;
    }
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
    int rc = REAL(close)(fd);
    if (e) {
        errno = e;
        return -1;
    }
    return rc;
}

int rename(const char *from, const char *to)
{
    int e = hit("rename", to);
    if (e) {
        errno = e;
        return -1;
    }
    return REAL(rename)(from, to);
}
