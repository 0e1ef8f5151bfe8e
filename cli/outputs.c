/* The files a command writes: checked against each other and against its inputs, and
 * claimed with an advisory lock so that two nabla processes never write the same file (the
 * last writer would silently win). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The absolute form of a path whose last component may not exist yet: the real path of its
 * directory, then its name. Empty if the directory cannot be resolved. */
static void canonical(const char *path, char *out, size_t size)
{
    char dir[4096], *real;
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path + (slash == path)) : 1,
             slash ? path : ".");
    if (!(real = realpath(dir, NULL))) {
        out[0] = 0;
        return;
    }
    snprintf(out, size, "%s/%s", strcmp(real, "/") ? real : "", name);
    free(real);
}

/* Whether two paths name the same file: the same device and inode when both exist, else
 * the same canonical path. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ca[8192], cb[8192];
    canonical(a, ca, sizeof ca);
    canonical(b, cb, sizeof cb);
    return ca[0] && strcmp(ca, cb) == 0;
}

/* A write lock (fcntl, which also works over NFS) on PATH.lock. The lock file is removed when released; a process that opened it just
 * before could then lock a file no longer in the directory, so after locking the file's
 * identity is checked against the name, and the claim retried if they differ. */
static nb_status lock_output(cli_outputs *out, const char *path, const char *name, nb_error *err)
{
    size_t len = strlen(path) + sizeof ".lock";
    char *lock = malloc(len);
    if (!lock)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    snprintf(lock, len, "%s.lock", path);
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            nb_error_set(err, NB_EIO, "%s %s: cannot create its lock file %s: %s", name, path,
                         lock, strerror(errno));
            free(lock);
            return NB_EIO;
        }
        struct flock whole = {.l_type = F_WRLCK, .l_whence = SEEK_SET}; /* l_len 0: all */
        if (fcntl(fd, F_SETLK, &whole) != 0) {
            int e = errno;
            close(fd);
            if (e == EACCES || e == EAGAIN)
                nb_error_set(err, NB_EINVAL, "%s %s: another nabla process is writing it (it "
                             "holds %s); wait for it to finish or choose another file", name,
                             path, lock);
            else
                nb_error_set(err, NB_EIO, "%s %s: cannot lock %s: %s", name, path, lock,
                             strerror(e));
            free(lock);
            return err ? err->code : NB_EIO;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(lock, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino) {
            out->fd[out->count] = fd;
            out->lock[out->count++] = lock;
            return NB_OK;
        }
        close(fd); /* the file was removed by its previous holder: claim the new one */
    }
    free(lock);
    return nb_error_set(err, NB_EIO, "%s %s: could not claim its lock file", name, path);
}

nb_status cli_outputs_claim(cli_outputs *out, const char *const *paths, const char *const *names,
                            int n, const char *const *inputs, int n_inputs, nb_error *err)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        if (!paths[i])
            continue;
        if (!paths[i][0])
            return nb_error_set(err, NB_EINVAL, "%s: expected a file name", names[i]);
        for (int j = 0; j < i; j++)
            if (paths[j] && same_file(paths[i], paths[j]))
                return nb_error_set(err, NB_EINVAL, "%s %s and %s %s are the same file; each "
                                    "output needs its own", names[j], paths[j], names[i],
                                    paths[i]);
        for (int j = 0; j < n_inputs; j++)
            if (inputs[j] && same_file(paths[i], inputs[j]))
                return nb_error_set(err, NB_EINVAL, "%s %s is also an input of this run (%s); "
                                    "writing it would replace what is being read: choose "
                                    "another file", names[i], paths[i], inputs[j]);
    }
    for (int i = 0; i < n; i++) {
        if (!paths[i])
            continue;
        if (out->count == (int)(sizeof out->fd / sizeof out->fd[0]))
            return nb_error_set(err, NB_EINVAL, "too many outputs");
        nb_status s = lock_output(out, paths[i], names[i], err);
        if (s) {
            cli_outputs_release(out);
            return s;
        }
    }
    return NB_OK;
}

void cli_outputs_release(cli_outputs *out)
{
    for (int i = 0; i < out->count; i++) {
        unlink(out->lock[i]); /* while still holding it: see lock_output */
        close(out->fd[i]);
        free(out->lock[i]);
    }
    out->count = 0;
}
