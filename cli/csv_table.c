/* CSV tables of numbers for the tool's pictures (see csv_table.h). */
#include "csv_table.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void csv_table_free(csv_table *t)
{
    for (int i = 0; i < t->cols; i++) {
        free(t->names[i]);
        if (t->bad_text)
            free(t->bad_text[i]);
    }
    for (int64_t r = 0; t->text && r < t->rows; r++)
        free(t->text[r]);
    free(t->text);
    free(t->names);
    free(t->v);
    free(t->bad_row);
    free(t->bad_text);
    memset(t, 0, sizeof *t);
}

/* Splits a CSV line in place into at most `cap` fields (quotes stripped, "" → ", spaces
 * around a field trimmed). Returns the number of fields. */
static int split_fields(char *line, char **fields, int cap)
{
    int n = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        char *start = s, *out = s;
        if (*s == '"') {
            start = out = ++s;
            while (*s && !(*s == '"' && s[1] != '"')) {
                if (*s == '"')
                    s++;
                *out++ = *s++;
            }
            if (*s == '"')
                s++;
            while (*s && *s != ',')
                s++;
        } else {
            while (*s && *s != ',')
                s++;
            out = s;
            while (out > start && (out[-1] == ' ' || out[-1] == '\t'))
                out--;
        }
        char sep = *s;
        *out = 0;
        if (n < cap)
            fields[n] = start;
        n++;
        if (sep != ',')
            break;
        s++;
    }
    return n < cap ? n : cap;
}

/* A column by name, else by 0-based index; -1 with err set (listing the columns) when absent. */
static int column_index(const csv_table *t, const char *path, const char *name, nb_error *err)
{
    for (int i = 0; i < t->cols; i++)
        if (strcmp(t->names[i], name) == 0)
            return i;
    char *end;
    long k = strtol(name, &end, 10);
    if (*name && !*end && k >= 0 && k < t->cols)
        return (int)k;
    char list[1024] = "";
    size_t used = 0;
    for (int i = 0; i < t->cols && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 t->names[i]);
    nb_error_set(err, NB_EINVAL, "%s: no column '%s' (columns: %s)", path, name, list);
    return -1;
}

nb_status csv_table_read(const char *path, const char *keep, csv_table *t, nb_error *err)
{
    memset(t, 0, sizeof *t);
    t->keep = -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return nb_error_set(err, NB_EIO, "%s: %s", path, strerror(errno));
    enum { MAX_COLS = 4096 };
    char *line = NULL, **fields = malloc(MAX_COLS * sizeof *fields);
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0;
    nb_status s = fields ? NB_OK : nb_error_set(err, NB_ENOMEM, "out of memory");
    while (!s && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *text = line;
        if (lineno == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)
            text += 3; /* UTF-8 byte-order mark */
        if (!*text)
            continue;
        int n = split_fields(text, fields, MAX_COLS);
        if (!t->names) {
            t->cols = n;
            t->names = calloc((size_t)n, sizeof *t->names);
            t->bad_row = calloc((size_t)n, sizeof *t->bad_row);
            t->bad_text = calloc((size_t)n, sizeof *t->bad_text);
            if (!t->names || !t->bad_row || !t->bad_text) {
                s = nb_error_set(err, NB_ENOMEM, "out of memory");
                break;
            }
            for (int i = 0; i < n && !s; i++)
                if (!(t->names[i] = strdup(fields[i])))
                    s = nb_error_set(err, NB_ENOMEM, "out of memory");
            if (!s && keep && (t->keep = column_index(t, path, keep, err)) < 0)
                s = NB_EINVAL;
            continue;
        }
        if (n != t->cols) {
            s = nb_error_set(err, NB_EFORMAT, "%s:%lld: %d fields, the header has %d", path,
                             (long long)lineno, n, t->cols);
            break;
        }
        if (t->rows == t->cap) {
            int64_t c2 = t->cap ? 2 * t->cap : 256;
            double *v = realloc(t->v, (size_t)(c2 * t->cols) * sizeof *v);
            if (!v) {
                s = nb_error_set(err, NB_ENOMEM, "out of memory reading %s", path);
                break;
            }
            t->v = v;
            if (t->keep >= 0) {
                char **text = realloc(t->text, (size_t)c2 * sizeof *text);
                if (!text) {
                    s = nb_error_set(err, NB_ENOMEM, "out of memory reading %s", path);
                    break;
                }
                t->text = text;
            }
            t->cap = c2;
        }
        if (t->keep >= 0 && !(t->text[t->rows] = strdup(fields[t->keep]))) {
            s = nb_error_set(err, NB_ENOMEM, "out of memory reading %s", path);
            break;
        }
        for (int i = 0; i < n; i++) {
            char *end;
            double v = NAN;
            if (*fields[i]) {
                v = strtod(fields[i], &end);
                if (*end || end == fields[i]) {
                    v = NAN;
                    if (!t->bad_row[i]) {
                        t->bad_row[i] = lineno;
                        t->bad_text[i] = strdup(fields[i]);
                    }
                }
            }
            t->v[t->rows * t->cols + i] = v;
        }
        t->rows++;
    }
    if (!s && ferror(f))
        s = nb_error_set(err, NB_EIO, "%s: read error", path);
    if (!s && !t->names)
        s = nb_error_set(err, NB_EFORMAT, "%s: empty file (expected a header row)", path);
    free(line);
    free(fields);
    fclose(f);
    if (s)
        csv_table_free(t);
    return s;
}

int csv_table_column(const csv_table *t, const char *path, const char *name, nb_error *err)
{
    int col = column_index(t, path, name, err);
    if (col >= 0 && t->bad_row[col]) {
        nb_error_set(err, NB_EFORMAT, "%s:%lld: column '%s': '%s' is not a number", path,
                     (long long)t->bad_row[col], t->names[col], t->bad_text[col]);
        return -1;
    }
    return col;
}
