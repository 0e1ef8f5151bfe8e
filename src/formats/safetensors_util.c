/* Byte order, UTF-8 and message helpers shared by the safetensors reader and writer. */
#include "formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers --------------------------------------------------------------------- */

int st_host_is_little(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

void st_swap_floats(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t = b[0];
        b[0] = b[3], b[3] = t;
        t = b[1], b[1] = b[2], b[2] = t;
    }
}

uint64_t st_load_le64(const unsigned char b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

void st_store_le64(unsigned char b[8], uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. Rejects overlong
 * forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF (RFC 3629). */
size_t st_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

int st_utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0, len; i < n; i += len)
        if (!(len = st_utf8_seq(u + i, n - i)))
            return 0;
    return 1;
}


shown st_show(const char *name)
{
    shown out;
    size_t n = 0;
    for (; name[n] && n < 60; n++) {
        unsigned char c = (unsigned char)name[n];
        out.s[n] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
    }
    if (name[n]) {
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--; /* do not end inside a multi-byte character */
        memcpy(out.s + n, "...", 3);
        n += 3;
    }
    out.s[n] = '\0';
    return out;
}

void st_dims_str(const int64_t *dims, int ndim, char *buf, size_t size)
{
    size_t at = 0;
    buf[at++] = '[';
    for (int i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (at < size - 1) {
        buf[at++] = ']';
        buf[at] = '\0';
    } else
        buf[size - 1] = '\0';
}

/* What a JSON value is, for "expected X, found Y" messages. */
const char *st_json_kind(const cJSON *item, char *buf, size_t size)
{
    if (cJSON_IsNumber(item))
        snprintf(buf, size, "%.17g", item->valuedouble);
    else if (cJSON_IsString(item))
        snprintf(buf, size, "the string \"%s\"", st_show(item->valuestring).s);
    else if (cJSON_IsArray(item))
        snprintf(buf, size, "an array");
    else if (cJSON_IsObject(item))
        snprintf(buf, size, "an object");
    else if (cJSON_IsBool(item))
        snprintf(buf, size, "%s", cJSON_IsTrue(item) ? "true" : "false");
    else
        snprintf(buf, size, "null");
    return buf;
}

/* An exact integer in [0, 2^53) — the only numbers a safetensors header holds. */
int st_json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double v = item->valuedouble;
    if (!(v >= 0) || signbit(v) || v >= EXACT_LIMIT || v != floor(v))
        return 0;
    *out = (uint64_t)v;
    return 1;
}


int st_name_ref_cmp(const void *pa, const void *pb)
{
    const name_ref *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* Sorts refs by name; returns the position of the first of two equal names, or -1. */
int st_sort_find_duplicate(name_ref *refs, int n)
{
    if (n > 1)
        qsort(refs, (size_t)n, sizeof *refs, st_name_ref_cmp);
    for (int i = 1; i < n; i++)
        if (strcmp(refs[i - 1].name, refs[i].name) == 0)
            return i - 1;
    return -1;
}
