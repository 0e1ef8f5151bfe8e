/* Writing a file atomically: the bytes go to a temporary file beside the destination
 * (mkstemp in the same directory, so that rename stays within one file system), which
 * replaces it only when complete — write, fsync, rename, fsync of the directory. Until the
 * rename the previous file is untouched; a failure at any step removes the temporary file
 * and leaves it so. A full disk (ENOSPC) or an I/O error (EIO) may show at any of these
 * calls, and each is checked. */
#include "nabla.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUFFER_BYTES 65536

struct nb_atomic_file {
    char *path, *tmp;
    int fd;
    size_t used;
    unsigned char buf[BUFFER_BYTES]; /* small writes (CSV lines) are gathered here */
};

/* Sets the error for a failed step and removes the temporary file; af stays allocated. */
static nb_status failed(nb_atomic_file *af, const char *step, int e, nb_error *err)
{
    nb_error_set(err, e == ENOMEM ? NB_ENOMEM : NB_EIO,
                 "%s: %s the temporary file %s failed: %s; the previous file, if any, is "
                 "unchanged", af->path, step, af->tmp, e ? strerror(e) : "short write");
    if (af->fd >= 0)
        close(af->fd);
    af->fd = -1;
    unlink(af->tmp);
    return err ? err->code : NB_EIO;
}

nb_atomic_file *nb_atomic_open(const char *path, nb_error *err)
{
    if (!path || !path[0]) {
        nb_error_set(err, NB_EINVAL, "no file name given to write to");
        return NULL;
    }
    mode_t mode = 0644;
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            nb_error_set(err, NB_EIO, "%s: is a directory; expected a file path", path);
            return NULL;
        }
        if (S_ISREG(sb.st_mode))
            mode = sb.st_mode & 0777; /* replacing a file keeps its permissions */
    }
    size_t plen = strlen(path);
    nb_atomic_file *af = malloc(sizeof *af);
    if (!af || !(af->path = malloc(plen + 1)) || !(af->tmp = malloc(plen + sizeof ".tmp.XXXXXX"))) {
        if (af)
            free(af->path);
        free(af);
        nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    memcpy(af->path, path, plen + 1);
    memcpy(af->tmp, path, plen);
    memcpy(af->tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    af->used = 0;
    if ((af->fd = mkstemp(af->tmp)) < 0) {
        nb_error_set(err, NB_EIO, "%s: cannot create a temporary file beside it: %s", path,
                     strerror(errno));
        free(af->tmp);
        free(af->path);
        free(af);
        return NULL;
    }
    if (fchmod(af->fd, mode) != 0) {
        failed(af, "setting permissions on", errno, err);
        nb_atomic_abort(af);
        return NULL;
    }
    return af;
}

static int flush(nb_atomic_file *af)
{
    for (size_t done = 0; done < af->used;) {
        ssize_t n = write(af->fd, af->buf + done, af->used - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = 0; /* a short write with no error: reported as such */
            return 0;
        }
        done += (size_t)n;
    }
    af->used = 0;
    return 1;
}

nb_status nb_atomic_write(nb_atomic_file *af, const void *data, size_t n, nb_error *err)
{
    if (af->fd < 0)
        return nb_error_set(err, NB_EIO, "%s: written after a failure", af->path);
    const unsigned char *p = data;
    while (n > 0) {
        size_t room = BUFFER_BYTES - af->used, m = n < room ? n : room;
        memcpy(af->buf + af->used, p, m);
        af->used += m;
        p += m;
        n -= m;
        if (af->used == BUFFER_BYTES && !flush(af))
            return failed(af, "writing", errno, err);
    }
    return NB_OK;
}

/* After rename, the new directory entry is durable only once the directory is synced. */
static nb_status sync_dir(const char *path, nb_error *err)
{
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (!dir)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    if (!slash)
        dir[0] = '.';
    else
        memcpy(dir, path, len);
    dir[len] = '\0';
    nb_status status = NB_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    /* EINVAL: the file system cannot sync directories, so there is nothing more to do. */
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        status = nb_error_set(err, NB_EIO,
                              "%s: written, but syncing its directory %s failed: %s", path, dir,
                              strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return status;
}

nb_status nb_atomic_commit(nb_atomic_file *af, nb_error *err)
{
    nb_status s = NB_OK;
    if (af->fd < 0)
        s = nb_error_set(err, NB_EIO, "%s: committed after a failure", af->path);
    else if (!flush(af))
        s = failed(af, "writing", errno, err);
    else if (fsync(af->fd) != 0)
        s = failed(af, "syncing", errno, err);
    else {
        int fd = af->fd;
        af->fd = -1;
        if (close(fd) != 0) /* NFS reports a failed write-back here */
            s = failed(af, "closing", errno, err);
        else if (rename(af->tmp, af->path) != 0)
            s = failed(af, "renaming", errno, err);
        else
            s = sync_dir(af->path, err);
    }
    free(af->tmp);
    free(af->path);
    free(af);
    return s;
}

void nb_atomic_abort(nb_atomic_file *af)
{
    if (!af)
        return;
    if (af->fd >= 0) {
        close(af->fd);
        unlink(af->tmp);
    }
    free(af->tmp);
    free(af->path);
    free(af);
}
