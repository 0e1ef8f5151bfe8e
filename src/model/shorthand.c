/* The one-line MLP shorthand: "784-256-128-10[:act]" (two or more layer widths, then
 * optionally the non-linearity between layers: relu, the default, tanh or sigmoid) expands
 * into the description
 *     x = input(784)
 *     fc1 = linear(x, 256)
 *     relu1 = relu(fc1)
 *     fc2 = linear(relu1, 128)
 *     relu2 = relu(fc2)
 *     fc3 = linear(relu2, 10)
 * which describe.c then parses like any other. */
#include "model/describe.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nb_is_shorthand(const char *text)
{
    const char *s = text;
    int layers = 0;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
        layers++;
        if (*s == '-')
            s++;
        else if (*s == ':' || *s == 0)
            break;
        else
            return 0;
    }
    return layers >= 2 && (*s == 0 || *s == ':');
}

nb_status nb_shorthand_expand(const char *text, const char *source, char *out, size_t size,
                              nb_error *err)
{
    char who[512]; /* the CLI passes the shorthand itself as the source: say it once */
    if (strcmp(source, text) == 0)
        snprintf(who, sizeof who, "%s", text);
    else
        snprintf(who, sizeof who, "%s: '%s'", source, text);
    const char *act = strchr(text, ':');
    const char *fn = "relu";
    if (act) {
        fn = act + 1;
        if (strcmp(fn, "relu") && strcmp(fn, "tanh") && strcmp(fn, "sigmoid"))
            return nb_error_set(err, NB_EFORMAT, "%s: unknown non-linearity '%s' "
                                "(relu, tanh or sigmoid)", who, fn);
    }
    int64_t widths[64] = {0};
    int n = 0;
    for (const char *s = text; *s && *s != ':'; n++) {
        char *end;
        if (n == 64)
            return nb_error_set(err, NB_EFORMAT, "%s: more than 64 layers", who);
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 1 || v > (1 << 30))
            return nb_error_set(err, NB_EFORMAT, "%s: layer %d: width out of range (1 to 2^30)",
                                who, n + 1);
        widths[n] = v;
        s = *end == '-' ? end + 1 : end;
    }
    size_t used = (size_t)snprintf(out, size, "x = input(%lld)\n", (long long)widths[0]);
    const char *prev = "x";
    char prevbuf[NB_NAME_MAX];
    for (int i = 1; i < n && used < size; i++) {
        used += (size_t)snprintf(out + used, size - used, "fc%d = linear(%s, %lld)\n", i, prev,
                                 (long long)widths[i]);
        if (i + 1 < n && used < size) {
            used += (size_t)snprintf(out + used, size - used, "%s%d = %s(fc%d)\n", fn, i, fn, i);
            snprintf(prevbuf, sizeof prevbuf, "%s%d", fn, i);
        } else {
            snprintf(prevbuf, sizeof prevbuf, "fc%d", i);
        }
        prev = prevbuf;
    }
    if (used >= size)
        return nb_error_set(err, NB_EFORMAT, "%s: description too long", who);
    return NB_OK;
}
