/* Driven by tests/torch_safetensors.py: reads a safetensors file with nabla, lists its
 * tensors, and (given an output path) writes them back out with nabla.
 *
 *     tool_safetensors IN [OUT [KEY=VALUE | KEY] ...]
 *
 * KEY=VALUE adds a metadata entry; a bare KEY copies that entry from IN (there is no way to
 * enumerate metadata through the API, so the caller names what to keep). Exit status 0 on
 * success, 1 with the library's message on stderr otherwise. */
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s IN [OUT [KEY=VALUE | KEY] ...]\n", argv[0]);
        return 2;
    }
    nb_error err = {0};
    nb_safetensors *st = NULL;
    if (nb_safetensors_read(argv[1], &st, &err) != NB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    int n = nb_safetensors_count(st);
    for (int i = 0; i < n; i++) {
        const nb_tensor_ref *t = nb_safetensors_at(st, i);
        printf("%s [", t->name);
        for (int d = 0; d < t->ndim; d++)
            printf("%s%lld", d ? "," : "", (long long)t->dims[d]);
        printf("]\n");
    }
    if (argc < 3) {
        nb_safetensors_free(st);
        return 0;
    }

    int meta_n = argc - 3, status = 0;
    nb_tensor_ref *ts = malloc(((size_t)n + 1) * sizeof *ts);
    const char **keys = malloc(((size_t)meta_n + 1) * sizeof *keys);
    const char **values = malloc(((size_t)meta_n + 1) * sizeof *values);
    char **owned = calloc((size_t)meta_n + 1, sizeof *owned);
    if (!ts || !keys || !values || !owned) {
        fprintf(stderr, "error: out of memory\n");
        status = 1;
        goto done;
    }
    for (int i = 0; i < n; i++)
        ts[i] = *nb_safetensors_at(st, i);
    for (int i = 0; i < meta_n; i++) {
        const char *arg = argv[3 + i], *eq = strchr(arg, '=');
        if (eq) {
            owned[i] = malloc((size_t)(eq - arg) + 1);
            if (!owned[i]) {
                fprintf(stderr, "error: out of memory\n");
                status = 1;
                goto done;
            }
            memcpy(owned[i], arg, (size_t)(eq - arg));
            owned[i][eq - arg] = '\0';
            keys[i] = owned[i];
            values[i] = eq + 1;
        } else if ((values[i] = nb_safetensors_meta(st, arg))) {
            keys[i] = arg;
        } else {
            fprintf(stderr, "error: %s has no metadata '%s'\n", argv[1], arg);
            status = 1;
            goto done;
        }
    }
    if (nb_safetensors_write(argv[2], ts, n, keys, values, meta_n, &err) != NB_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        status = 1;
    }
done:
    for (int i = 0; owned && i < meta_n; i++)
        free(owned[i]);
    free(owned);
    free(ts);
    free(keys);
    free(values);
    nb_safetensors_free(st);
    return status;
}
