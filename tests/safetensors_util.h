/* Shared by the safetensors tests (test_safetensors.c: reading; test_safetensors_write.c:
 * writing): a scratch folder and the files made in it. Include after check.h. */
#ifndef NB_SAFETENSORS_UTIL_H
#define NB_SAFETENSORS_UTIL_H

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

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(bytes, 1, n, f) == n);
    CHECK(fclose(f) == 0);
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

/* Creates the scratch folder under $TMPDIR (or /tmp); 0 on success. */
static int make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/nb_safetensors_XXXXXX",
             tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    return 0;
}

#endif /* NB_SAFETENSORS_UTIL_H */
