/* Shared by the safetensors tests (test_safetensors.c: reading; test_safetensors_write.c:
 * writing): the files made in their scratch folder (scratch_dir.h). Include after check.h. */
#ifndef NB_SAFETENSORS_UTIL_H
#define NB_SAFETENSORS_UTIL_H

#include "check.h"
#include "scratch_dir.h"

#include <stdio.h>

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(bytes, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

#endif /* NB_SAFETENSORS_UTIL_H */
