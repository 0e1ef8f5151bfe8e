/* CSV files: a header row of column names, then one sample per line.
 *
 * Fields are separated by commas. A field may be quoted ("a","b"), with "" standing for a
 * quote inside; quoted fields cannot span lines. Spaces and tabs around a field are ignored,
 * CRLF line ends are accepted, blank lines are skipped, a UTF-8 byte-order mark before the
 * header is dropped. Lines are read with getline, so there is no line-length limit.
 *
 * Every feature and regression target must be a finite number representable as a float
 * (strtod in the C locale; the library never calls setlocale). A class label column holds
 * either numbers, each an integer 0 <= k < 2^20, or names (any text; the classes are then the
 * distinct names in sorted order). A first line made only of numbers is taken for a missing
 * header and refused rather than silently losing the first sample.
 */
#include "data/csv_targets.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_ELEMENTS ((int64_t)1 << 31) /* rows × features, as for IDX files */

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

/* realloc that keeps the block when it fails, clearing *ok then. */
static void *resized(void *block, size_t bytes, int *ok)
{
    void *q = realloc(block, bytes);
    if (!q)
        *ok = 0;
    return q ? q : block;
}

/* A field as a float: 0, or an error naming it. */
static nb_status field_number(const csv_reader *r, size_t c, const char *column, const char *s,
                              const char *what, float *out, nb_error *err)
{
    double v;
    int bad = csv_parse_double(s, &v);
    if (bad)
        return nb_error_set(err, NB_EFORMAT, "%s: line %lld, field %zu (\"%.60s\"): expected %s, "
                            "found %s%.40s%s", r->path, (long long)r->lineno, c + 1, column,
                            what, bad == -1 ? "an empty field" : "\"", s, bad == -1 ? "" : "\"");
    if (!isfinite(v))
        return nb_error_set(err, NB_EFORMAT, "%s: line %lld, field %zu (\"%.60s\"): expected a "
                            "finite number, found \"%.40s\"", r->path, (long long)r->lineno,
                            c + 1, column, s);
    if (fabs(v) > FLT_MAX)
        return nb_error_set(err, NB_EFORMAT, "%s: line %lld, field %zu (\"%.60s\"): %.40s is out "
                            "of float range (|x| <= 3.4e38)", r->path, (long long)r->lineno,
                            c + 1, column, s);
    *out = (float)v;
    return NB_OK;
}

nb_status nb_csv_load(nb_dataset *ds, const char *path, const char *label_column,
                      nb_error *err)
{
    nb_csv_options opt = {.targets = label_column, .kind = NB_TARGET_CLASSES};
    return nb_csv_load_with(ds, path, &opt, err);
}

nb_status nb_csv_load_with(nb_dataset *ds, const char *path, const nb_csv_options *opt,
                           nb_error *err)
{
    if (!ds)
        return nb_error_set(err, NB_EINVAL, "reading a CSV file: no data set to fill");
    memset(ds, 0, sizeof *ds);
    if (!path)
        return nb_error_set(err, NB_EINVAL, "reading a CSV file: no file name given");
    nb_csv_options none = {0};
    if (!opt)
        opt = &none;
    if (opt->targets && !*opt->targets)
        return nb_error_set(err, NB_EINVAL, "%s: the label column name is empty", path);
    if (opt->kind != NB_TARGET_CLASSES && opt->kind != NB_TARGET_VALUES)
        return nb_error_set(err, NB_EINVAL, "reading a CSV file: unknown target kind %d", (int)opt->kind);
    if (opt->class_count < 0 || opt->class_count > CSV_MAX_LABEL ||
        (opt->class_count > 0 && !opt->class_names))
        return nb_error_set(err, NB_EINVAL, "reading a CSV file: %lld class names, expected 0 to 2^20 "
                            "and the names", (long long)opt->class_count);

    csv_reader r = {.path = path};
    char *header = NULL;   /* the header line, kept for column names */
    char **names = NULL;   /* ncols pointers into header */
    size_t ncols = 0;
    int64_t *role = NULL;  /* per column: target position, or -1 for a feature */
    float *x = NULL, *t = NULL;
    int32_t *y = NULL;
    char **class_names = NULL, **target_names = NULL;
    label_set seen = {0}, known = {0};
    int64_t rows = 0, rows_cap = 0, T = 0;
    int classes = 0;
    nb_status st = NB_OK;
    int have;

    for (int64_t k = 0; k < opt->class_count; k++) {
        int64_t index;
        if (label_set_add(&known, opt->class_names[k], 0, &index))
            return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    }
    errno = 0;
    r.fp = fopen(path, "rb");
    if (!r.fp) {
        label_set_free(&known);
        return nb_error_set(err, errno == ENOMEM ? NB_ENOMEM : NB_EIO, "%s: cannot open: %s",
                            path, strerror(errno));
    }

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
        all_numeric = csv_parse_double(names[c], &v) == 0;
    }
    if (all_numeric) {
        st = nb_error_set(err, NB_EFORMAT,
                          "%s: line %lld: expected a header row of column names, found only "
                          "numbers (\"%.40s\", ...): the file seems to have no header",
                          path, (long long)header_line, names[0]);
        goto done;
    }

    if (!(role = malloc(ncols * sizeof *role))) {
        st = nb_error_set(err, NB_ENOMEM, "%s: out of memory for %zu columns", path, ncols);
        goto done;
    }
    if ((st = csv_find_targets(path, header_line, names, ncols, opt->targets, role, &T, err)))
        goto done;
    size_t label_col = 0; /* NB_TARGET_CLASSES: the one label column */
    for (size_t c = 0; c < ncols; c++)
        if (role[c] == 0)
            label_col = c;
    int labelled = T > 0 && opt->kind == NB_TARGET_CLASSES;
    if (labelled && T > 1) {
        st = nb_error_set(err, NB_EFORMAT, "%s: \"%s\" names %lld columns; class labels come from "
                          "one column (for regression on several targets, end the model in "
                          "mse(...) or train with --loss mse)", path, opt->targets, (long long)T);
        goto done;
    }
    int64_t features = (int64_t)ncols - T;
    if (features == 0) {
        st = nb_error_set(err, NB_EFORMAT,
                          "%s: line %lld: no feature columns besides the %s column%s \"%s\"",
                          path, (long long)header_line, labelled ? "label" : "target",
                          T > 1 ? "s" : "", opt->targets);
        goto done;
    }
    if (T > 0 && !labelled) {
        const char **tn = malloc((size_t)T * sizeof *tn);
        for (size_t c = 0; tn && c < ncols; c++)
            if (role[c] >= 0)
                tn[role[c]] = names[c];
        if (!tn || !(target_names = names_pack(tn, T))) {
            free(tn);
            st = nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
            goto done;
        }
        free(tn);
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
            if (cap > CSV_MAX_ELEMENTS / (int64_t)ncols)
                cap = CSV_MAX_ELEMENTS / (int64_t)ncols;
            if (cap <= rows) {
                st = nb_error_set(err, NB_EFORMAT,
                                  "%s: line %lld: data set too large: more than 2^31 values",
                                  path, (long long)r.lineno);
                goto done;
            }
            /* the rows' features, and their labels or targets */
            int ok = 1;
            x = resized(x, (size_t)(cap * features) * sizeof *x, &ok);
            if (ok && labelled)
                y = resized(y, (size_t)cap * sizeof *y, &ok);
            else if (ok && T > 0)
                t = resized(t, (size_t)(cap * T) * sizeof *t, &ok);
            if (!ok) {
                st = nb_error_set(err, NB_ENOMEM, "%s: line %lld: out of memory for %lld rows",
                                  path, (long long)r.lineno, (long long)cap);
                goto done;
            }
            rows_cap = cap;
        }
        float *row = x + rows * features;
        for (size_t c = 0; c < ncols; c++) {
            const char *s = r.fields[c];
            if (role[c] < 0) {
                if ((st = field_number(&r, c, names[c], s, "a number", row++, err)))
                    goto done;
            } else if (!labelled) {
                if ((st = field_number(&r, c, names[c], s, "a number (a regression target)",
                                       t + rows * T + role[c], err)))
                    goto done;
            } else if (opt->class_count > 0) {
                if ((st = csv_map_label(path, r.lineno, c, names[c], s, &known, opt->class_count,
                                    opt->class_names, y + rows, err)))
                    goto done;
            } else {
                /* Remember the text; whether the column holds numbers or names is known only
                 * after the last row (finish_labels). */
                int64_t k;
                if (label_set_add(&seen, s, r.lineno, &k)) {
                    st = nb_error_set(err, NB_ENOMEM, "%s: line %lld: out of memory for class "
                                      "names", path, (long long)r.lineno);
                    goto done;
                }
                if (seen.count > CSV_MAX_LABEL) {
                    st = nb_error_set(err, NB_EFORMAT, "%s: line %lld, field %zu (\"%.60s\"): "
                                      "more than %lld distinct class labels%s", path,
                                      (long long)r.lineno, c + 1, names[c],
                                      (long long)CSV_MAX_LABEL, CSV_REGRESSION_HINT);
                    goto done;
                }
                y[rows] = (int32_t)k;
            }
        }
        rows++;
    }
    if (rows == 0) {
        st = nb_error_set(err, NB_EFORMAT, "%s: no data rows after the header (line %lld)", path,
                          (long long)header_line);
        goto done;
    }
    if (labelled && opt->class_count > 0)
        classes = (int)opt->class_count;
    else if (labelled && (st = csv_finish_labels(path, names[label_col], label_col + 1, &seen, y,
                                             rows, &classes, &class_names, err)))
        goto done;

    /* Give back the unused tail of the geometric growth. */
    if (rows < rows_cap) { /* a failed shrink keeps the larger block */
        int ok = 1;
        x = resized(x, (size_t)(rows * features) * sizeof *x, &ok);
        if (y)
            y = resized(y, (size_t)rows * sizeof *y, &ok);
        if (t)
            t = resized(t, (size_t)(rows * T) * sizeof *t, &ok);
    }
    ds->count = rows;
    ds->ndim = 1;
    ds->dims[0] = features;
    ds->features = features;
    ds->dtype = NB_F32;
    ds->f32 = x;
    ds->labels = y;
    ds->classes = classes;
    ds->class_names = class_names;
    ds->targets = t;
    ds->target_count = labelled ? 0 : T;
    ds->target_names = target_names;
    x = NULL;
    y = NULL;
    t = NULL;
    class_names = NULL;
    target_names = NULL;
done:
    fclose(r.fp);
    free(r.line);
    free(r.fields);
    free(header);
    free(names);
    free(role);
    free(x);
    free(y);
    free(t);
    free(class_names);
    free(target_names);
    label_set_free(&seen);
    label_set_free(&known);
    return st;
}
