/* A scratch folder for tests that write files (test_faults.c, the safetensors tests): made
 * under $TMPDIR (or /tmp), emptied and removed at the end, each removal checked. Include after
 * check.h. */
#ifndef NB_SCRATCH_DIR_H
#define NB_SCRATCH_DIR_H

#include "check.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* dir/name, in one of a few rotating buffers (so two can be used in one call). */
static const char *in_dir(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            CHECK_MSG(unlink(in_dir(e->d_name)) == 0, "cannot remove %s", e->d_name);
    if (d)
        closedir(d);
    CHECK(rmdir(dir) == 0);
}

/* Creates the scratch folder TMPDIR/PREFIX_XXXXXX (or under /tmp); 0 on success. */
static int make_dir(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/%s_XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp", prefix);
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    return 0;
}

#endif /* NB_SCRATCH_DIR_H */
