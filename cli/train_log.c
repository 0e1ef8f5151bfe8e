/* nabla train --log FILE: the per-epoch CSV log.
 *
 * A new run starts a fresh log: the header goes to a temporary file that replaces FILE at
 * once (nb_atomic_*), so an earlier run's rows never mix with this run's, and if even that
 * cannot be written the old log is kept. A resumed run keeps the rows of the epochs its
 * checkpoint holds and drops the later ones — a run killed between logging an epoch and
 * checkpointing it, or resumed from an older checkpoint, would otherwise log those epochs
 * twice — again by writing the kept rows to a temporary file that replaces FILE. Training
 * then appends one row per epoch. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char header[] = "epoch,step,lr,train_loss,train_accuracy,val_loss,val_accuracy,"
                             "seconds,samples_per_second\n";

/* The epoch a row starts with; -1 if the row does not start with one. */
static long row_epoch(const char *line)
{
    char *end;
    errno = 0;
    long e = strtol(line, &end, 10);
    return end == line || *end != ',' || errno ? -1 : e;
}

/* Copies the header and the complete rows of epochs 1..upto of the log at PATH into af.
 * A log that is missing is fine (nothing to keep); one that is not a nabla log is refused,
 * rather than replaced with rows it never had. */
static nb_status keep_rows(const char *path, int upto, nb_atomic_file *af, nb_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return NB_OK;
        return nb_error_set(err, NB_EIO, "--log %s: cannot read it to continue it: %s", path,
                            strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    nb_status s = NB_OK;
    int first = 1;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (first) {
            first = 0;
            if (strcmp(line, header) != 0) {
                s = nb_error_set(err, NB_EFORMAT, "--log %s: not a training log of nabla "
                                 "(its first line is not the header 'epoch,step,lr,…'); "
                                 "give another --log file, or remove this one", path);
                break;
            }
            continue;
        }
        long e = row_epoch(line);
        if (line[n - 1] != '\n' || e < 1 || e > upto)
            continue; /* a row cut short by a crash, or an epoch the checkpoint does not hold */
        if ((s = nb_atomic_write(af, line, (size_t)n, err)) != NB_OK)
            break;
    }
    if (s == NB_OK && ferror(f))
        s = nb_error_set(err, NB_EIO, "--log %s: reading it failed: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return s;
}

FILE *train_log_open(const char *path, int resume_epoch, nb_error *err)
{
    nb_atomic_file *af = nb_atomic_open(path, err);
    if (!af)
        return NULL;
    if (nb_atomic_write(af, header, sizeof header - 1, err) != NB_OK ||
        (resume_epoch >= 0 && keep_rows(path, resume_epoch, af, err) != NB_OK)) {
        nb_atomic_abort(af);
        return NULL;
    }
    if (nb_atomic_commit(af, err) != NB_OK) /* frees af */
        return NULL;
    FILE *f = fopen(path, "a");
    if (!f)
        nb_error_set(err, NB_EIO, "--log %s: cannot open it to append: %s", path,
                     strerror(errno));
    return f;
}
