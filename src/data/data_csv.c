/* CSV files: a header row of column names, then one sample per line.
 *
 * Fields are separated by commas. A field may be quoted ("a","b"), with "" standing for a
 * quote inside; quoted fields cannot span lines. Spaces and tabs around a field are ignored,
 * CRLF line ends are accepted, blank lines are skipped, a UTF-8 byte-order mark before the
 * header is dropped. Lines are read with getline, so there is no line-length limit.
 *
 * Every feature must be a finite number representable as a float (strtod in the C locale;
 * the library never calls setlocale), every label a non-negative integer below 2^20. A
 * first line made only of numbers is taken for a missing header and refused rather than
 * silently losing the first sample.
 */
#include "nabla.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_ELEMENTS ((int64_t)1 << 31) /* rows × features, as for IDX files */
#define CSV_MAX_LABEL ((int64_t)1 << 20)

typedef struct csv_reader {
    FILE *fp;
    const char *path;
    int64_t lineno;  /* 1-based number of the line in `line` */
    char *line;      /* getline's buffer, NUL-terminated */
    size_t line_cap;
    size_t len;      /* length without the line end */
    char **fields;   /* pointers into `line` after csv_split */
    size_t nfields;
    size_t fields_cap;
} csv_reader;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Reads the next non-blank line; returns 0 at the end of the file. Strips "\n" or "\r\n". */
static nb_status csv_next_line(csv_reader *r, int *have, nb_error *err)
{
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->line_cap, r->fp);
        if (n < 0) {
            if (ferror(r->fp))
                return nb_error_set(err, errno == ENOMEM ? NB_ENOMEM : NB_EIO,
                                    "%s: line %lld: read error: %s", r->path,
                                    (long long)r->lineno + 1, strerror(errno));
            *have = 0;
            return NB_OK;
        }
        r->lineno++;
        size_t len = (size_t)n;
        if (len && r->line[len - 1] == '\n')
            len--;
        if (len && r->line[len - 1] == '\r')
            len--;
        r->line[len] = '\0';
        r->len = len;
        if (memchr(r->line, '\0', len))
            return nb_error_set(err, NB_EFORMAT,
                                "%s: line %lld: contains a NUL byte, expected text", r->path,
                                (long long)r->lineno);
        size_t i = 0;
        while (i < len && is_blank(r->line[i]))
            i++;
        if (i < len) {
            *have = 1;
            return NB_OK;
        }
    }
}

/* Splits the current line in place into NUL-terminated fields. Quoted fields are unescaped
 * in place; the unescaped text is never longer than the quoted one, so it fits. */
static nb_status csv_split(csv_reader *r, nb_error *err)
{
    char *s = r->line;
    size_t i = 0, len = r->len;
    r->nfields = 0;
    for (;;) {
        while (i < len && is_blank(s[i]))
            i++;
        char *start = s + i, *out = s + i;
        if (i < len && s[i] == '"') {
            size_t open = i++;
            for (;;) {
                if (i >= len)
                    return nb_error_set(err, NB_EFORMAT,
                                        "%s: line %lld, field %zu: unterminated quote (opened "
                                        "at character %zu)",
                                        r->path, (long long)r->lineno, r->nfields + 1, open + 1);
                if (s[i] == '"') {
                    if (i + 1 < len && s[i + 1] == '"') {
                        *out++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *out++ = s[i++];
            }
            while (i < len && is_blank(s[i]))
                i++;
            if (i < len && s[i] != ',')
                return nb_error_set(err, NB_EFORMAT,
                                    "%s: line %lld, field %zu: expected a comma after the "
                                    "closing quote, found '%c'",
                                    r->path, (long long)r->lineno, r->nfields + 1, s[i]);
        } else {
            while (i < len && s[i] != ',')
                i++;
            out = s + i;
            while (out > start && is_blank(out[-1]))
                out--;
        }
        if (r->nfields == r->fields_cap) {
            size_t cap = r->fields_cap ? 2 * r->fields_cap : 64;
            char **f = realloc(r->fields, cap * sizeof *f);
            if (!f)
                return nb_error_set(err, NB_ENOMEM, "%s: line %lld: out of memory", r->path,
                                    (long long)r->lineno);
            r->fields = f;
            r->fields_cap = cap;
        }
        r->fields[r->nfields++] = start;
        /* out ≤ s + i, and s[len] exists (getline's terminator), so this is in bounds. */
        int more = i < len;
        *out = '\0';
        if (!more)
            return NB_OK;
        i++; /* past the comma */
    }
}

/* strtod over the whole field: 0 on success, -1 when empty, -2 when not a number. */
static int parse_double(const char *s, double *v)
{
    if (!*s)
        return -1;
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0' ? 0 : -2;
}

nb_status nb_csv_load(nb_dataset *ds, const char *path, const char *label_column,
                      nb_error *err)
{
    if (!ds)
        return nb_error_set(err, NB_EINVAL, "reading a CSV file: no data set to fill");
    memset(ds, 0, sizeof *ds);
    if (!path)
        return nb_error_set(err, NB_EINVAL, "reading a CSV file: no file name given");
    if (label_column && !*label_column)
        return nb_error_set(err, NB_EINVAL, "%s: the label column name is empty", path);

    csv_reader r = {.path = path};
    char *header = NULL;   /* the header line, kept for column names */
    char **names = NULL;   /* ncols pointers into header */
    size_t ncols = 0;
    float *x = NULL;
    int32_t *y = NULL;
    int64_t rows = 0, rows_cap = 0;
    int classes = 0;
    nb_status st = NB_OK;
    int have;

    errno = 0;
    r.fp = fopen(path, "rb");
    if (!r.fp)
        return nb_error_set(err, errno == ENOMEM ? NB_ENOMEM : NB_EIO, "%s: cannot open: %s",
                            path, strerror(errno));

    /* ---- header ---- */
    if ((st = csv_next_line(&r, &have, err)))
        goto done;
    if (!have) {
        st = nb_error_set(err, NB_EFORMAT, "%s: empty file, expected a header row of column "
                                           "names", path);
        goto done;
    }
    if (r.len >= 3 && memcmp(r.line, "\xEF\xBB\xBF", 3) == 0) {
        memmove(r.line, r.line + 3, r.len - 3 + 1);
        r.len -= 3;
    }
    if ((st = csv_split(&r, err)))
        goto done;
    int64_t header_line = r.lineno;
    ncols = r.nfields;
    /* Keep the header's buffer and its field pointers; getline allocates anew. */
    header = r.line;
    names = r.fields;
    r.line = NULL;
    r.line_cap = 0;
    r.fields = NULL;
    r.fields_cap = 0;

    int all_numeric = 1;
    for (size_t c = 0; c < ncols && all_numeric; c++) {
        double v;
        all_numeric = parse_double(names[c], &v) == 0;
    }
    if (all_numeric) {
        st = nb_error_set(err, NB_EFORMAT,
                          "%s: line %lld: expected a header row of column names, found only "
                          "numbers (\"%.40s\", ...): the file seems to have no header",
                          path, (long long)header_line, names[0]);
        goto done;
    }

    /* The label column: a name first, else a 0-based index written as digits. */
    int64_t label = -1;
    if (label_column) {
        for (size_t c = 0; c < ncols; c++) {
            if (strcmp(names[c], label_column) != 0)
                continue;
            if (label >= 0) {
                st = nb_error_set(err, NB_EFORMAT,
                                  "%s: line %lld: the label column name \"%s\" is ambiguous: "
                                  "fields %lld and %zu",
                                  path, (long long)header_line, label_column,
                                  (long long)label + 1, c + 1);
                goto done;
            }
            label = (int64_t)c;
        }
        if (label < 0) {
            size_t n = strlen(label_column);
            if (n <= 9 && strspn(label_column, "0123456789") == n) {
                label = strtol(label_column, NULL, 10);
                if (label >= (int64_t)ncols) {
                    st = nb_error_set(err, NB_EFORMAT,
                                      "%s: line %lld: label column index %s is out of range: "
                                      "the header has %zu columns (0-based indices 0-%zu)",
                                      path, (long long)header_line, label_column, ncols,
                                      ncols - 1);
                    goto done;
                }
            } else {
                char list[200];
                size_t used = 0;
                list[0] = '\0';
                for (size_t c = 0; c < ncols && used < sizeof list - 1; c++) {
                    int k = snprintf(list + used, sizeof list - used, "%s\"%s\"",
                                     c ? ", " : "", names[c]);
                    if (k < 0)
                        break;
                    used += (size_t)k;
                }
                st = nb_error_set(err, NB_EFORMAT,
                                  "%s: line %lld: no column named \"%s\" in the header "
                                  "(columns: %s)",
                                  path, (long long)header_line, label_column, list);
                goto done;
            }
        }
    }
    int64_t features = (int64_t)ncols - (label >= 0);
    if (features == 0) {
        st = nb_error_set(err, NB_EFORMAT,
                          "%s: line %lld: no feature columns besides the label column \"%s\"",
                          path, (long long)header_line, names[label]);
        goto done;
    }

    /* ---- rows ---- */
    for (;;) {
        if ((st = csv_next_line(&r, &have, err)))
            goto done;
        if (!have)
            break;
        if ((st = csv_split(&r, err)))
            goto done;
        if (r.nfields != ncols) {
            st = nb_error_set(err, NB_EFORMAT,
                              "%s: line %lld: expected %zu fields (as in the header), found %zu",
                              path, (long long)r.lineno, ncols, r.nfields);
            goto done;
        }
        if (rows == rows_cap) {
            /* Grow geometrically: memory stays proportional to the rows actually read. */
            int64_t cap = rows_cap ? 2 * rows_cap : 256;
            if (cap > CSV_MAX_ELEMENTS / features)
                cap = CSV_MAX_ELEMENTS / features;
            if (cap <= rows) {
                st = nb_error_set(err, NB_EFORMAT,
                                  "%s: line %lld: data set too large: more than 2^31 values",
                                  path, (long long)r.lineno);
                goto done;
            }
            float *nx = realloc(x, (size_t)(cap * features) * sizeof *nx);
            if (!nx) {
                st = nb_error_set(err, NB_ENOMEM, "%s: line %lld: out of memory for %lld rows",
                                  path, (long long)r.lineno, (long long)cap);
                goto done;
            }
            x = nx;
            if (label >= 0) {
                int32_t *ny = realloc(y, (size_t)cap * sizeof *ny);
                if (!ny) {
                    st = nb_error_set(err, NB_ENOMEM,
                                      "%s: line %lld: out of memory for %lld labels", path,
                                      (long long)r.lineno, (long long)cap);
                    goto done;
                }
                y = ny;
            }
            rows_cap = cap;
        }
        float *row = x + rows * features;
        for (size_t c = 0; c < ncols; c++) {
            const char *s = r.fields[c];
            double v;
            int bad = parse_double(s, &v);
            if ((int64_t)c == label) {
                /* Labels are class indices 0..K-1 (§6); 2^20 bounds K sensibly. */
                if (bad || !(v >= 0 && v < (double)CSV_MAX_LABEL) || v != floor(v)) {
                    st = nb_error_set(err, NB_EFORMAT,
                                      "%s: line %lld, field %zu (\"%.60s\"): expected a class "
                                      "label, an integer 0 <= k < %lld, found \"%.40s\"",
                                      path, (long long)r.lineno, c + 1,
                                      names[c], (long long)CSV_MAX_LABEL, s);
                    goto done;
                }
                y[rows] = (int32_t)v;
                if (y[rows] >= classes)
                    classes = y[rows] + 1;
                continue;
            }
            if (bad) {
                st = nb_error_set(err, NB_EFORMAT,
                                  "%s: line %lld, field %zu (\"%.60s\"): expected a number, found "
                                  "%s%.40s%s",
                                  path, (long long)r.lineno, c + 1, names[c],
                                  bad == -1 ? "an empty field" : "\"", s, bad == -1 ? "" : "\"");
                goto done;
            }
            if (!isfinite(v)) {
                st = nb_error_set(err, NB_EFORMAT,
                                  "%s: line %lld, field %zu (\"%.60s\"): expected a finite number, "
                                  "found \"%.40s\"",
                                  path, (long long)r.lineno, c + 1, names[c], s);
                goto done;
            }
            if (fabs(v) > FLT_MAX) {
                st = nb_error_set(err, NB_EFORMAT,
                                  "%s: line %lld, field %zu (\"%.60s\"): %.40s is out of float range "
                                  "(|x| <= 3.4e38)",
                                  path, (long long)r.lineno, c + 1, names[c], s);
                goto done;
            }
            *row++ = (float)v;
        }
        rows++;
    }
    if (rows == 0) {
        st = nb_error_set(err, NB_EFORMAT, "%s: no data rows after the header (line %lld)", path,
                          (long long)header_line);
        goto done;
    }

    /* Give back the unused tail of the geometric growth. */
    if (rows < rows_cap) {
        float *nx = realloc(x, (size_t)(rows * features) * sizeof *nx);
        if (nx)
            x = nx;
        if (y) {
            int32_t *ny = realloc(y, (size_t)rows * sizeof *ny);
            if (ny)
                y = ny;
        }
    }
    ds->count = rows;
    ds->ndim = 1;
    ds->dims[0] = features;
    ds->features = features;
    ds->dtype = NB_F32;
    ds->f32 = x;
    ds->labels = y;
    ds->classes = classes;
    x = NULL;
    y = NULL;
done:
    fclose(r.fp);
    free(r.line);
    free(r.fields);
    free(header);
    free(names);
    free(x);
    free(y);
    return st;
}
