/* What the target columns of a CSV hold (src/data/data_csv.c reads the file): resolving the
 * column references of csv:FILE:COLUMN[,COLUMN...] against the header, and class labels —
 * numbers that are class indices, or names numbered in sorted order, or names mapped through
 * a trained model's. */
#include "data/csv_targets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strtod over the whole field: 0 on success, -1 when empty, -2 when not a number. */
int csv_parse_double(const char *s, double *v)
{
    if (!*s)
        return -1;
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0' ? 0 : -2;
}

/* "\"a\", \"b\", ..." for messages, at most size − 1 characters. */
static void list_names(char *buf, size_t size, const char *const *names, int64_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int64_t c = 0; c < n && used < size - 1; c++) {
        int k = snprintf(buf + used, size - used, "%s\"%s\"", c ? ", " : "", names[c]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    if (used >= size - 1 && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

/* One column reference, a name first, else a 0-based index written as digits. */
static nb_status find_column(const char *path, int64_t line, char *const *names, size_t ncols,
                             const char *ref, int64_t *col, nb_error *err)
{
    *col = -1;
    for (size_t c = 0; c < ncols; c++) {
        if (strcmp(names[c], ref) != 0)
            continue;
        if (*col >= 0)
            return nb_error_set(err, NB_EFORMAT, "%s: line %lld: the column name \"%s\" is "
                                "ambiguous: fields %lld and %zu", path, (long long)line, ref,
                                (long long)*col + 1, c + 1);
        *col = (int64_t)c;
    }
    if (*col >= 0)
        return NB_OK;
    size_t n = strlen(ref);
    if (n >= 1 && n <= 9 && strspn(ref, "0123456789") == n) {
        *col = strtol(ref, NULL, 10);
        if (*col >= (int64_t)ncols)
            return nb_error_set(err, NB_EFORMAT, "%s: line %lld: column index %s is out of "
                                "range: the header has %zu columns (0-based indices 0-%zu)",
                                path, (long long)line, ref, ncols, ncols - 1);
        return NB_OK;
    }
    char list[200];
    list_names(list, sizeof list, (const char *const *)names, (int64_t)ncols);
    return nb_error_set(err, NB_EFORMAT, "%s: line %lld: no column named \"%s\" in the header "
                        "(columns: %s)", path, (long long)line, ref, list);
}

/* role[c] = the target position of column c, or -1 for a feature; *count targets. The
 * reference list is a whole column name, or names and indices separated by commas. */
nb_status csv_find_targets(const char *path, int64_t line, char *const *names, size_t ncols,
                              const char *refs, int64_t *role, int64_t *count, nb_error *err)
{
    for (size_t c = 0; c < ncols; c++)
        role[c] = -1;
    *count = 0;
    if (!refs)
        return NB_OK;
    for (size_t c = 0; c < ncols; c++)
        if (strcmp(names[c], refs) == 0 && strchr(refs, ',')) {
            role[c] = 0; /* a name with commas, matched whole */
            *count = 1;
            return NB_OK;
        }
    size_t len = strlen(refs);
    char *copy = malloc(len + 1);
    if (!copy)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    memcpy(copy, refs, len + 1);
    nb_status st = NB_OK;
    for (char *ref = copy; !st;) {
        char *comma = strchr(ref, ',');
        if (comma)
            *comma = '\0';
        int64_t col;
        if (!*ref)
            st = nb_error_set(err, NB_EFORMAT, "%s: the target column list \"%s\" has an empty "
                              "entry; expected names or 0-based indices separated by commas",
                              path, refs);
        else if (!(st = find_column(path, line, names, ncols, ref, &col, err))) {
            if (role[col] >= 0)
                st = nb_error_set(err, NB_EFORMAT, "%s: column \"%s\" is named twice in the "
                                  "target list \"%s\"", path, names[col], refs);
            else
                role[col] = (*count)++;
        }
        if (!comma)
            break;
        ref = comma + 1;
    }
    free(copy);
    return st;
}

const char CSV_REGRESSION_HINT[] =
    " (for regression on this column, end the model in mse(...) or train with --loss mse)";

/* A class label through a trained model's names: the name, else its index as a number. */
nb_status csv_map_label(const char *path, int64_t line, size_t c, const char *column, const char *s,
                           const label_set *known, int64_t count, const char *const *names,
                           int32_t *out, nb_error *err)
{
    int64_t k = label_set_find(known, s);
    double v;
    if (k < 0 && csv_parse_double(s, &v) == 0 && v >= 0 && v < (double)count && v == floor(v))
        k = (int64_t)v;
    if (k >= 0) {
        *out = (int32_t)k;
        return NB_OK;
    }
    char list[200];
    list_names(list, sizeof list, names, count);
    return nb_error_set(err, NB_EFORMAT, "%s: line %lld, field %zu (\"%.60s\"): class \"%.40s\" "
                        "is not one of the model's %lld classes (%s) nor a class index below %lld",
                        path, (long long)line, c + 1, column, s, (long long)count, list,
                        (long long)count);
}

/* After the last row: labels[i] holds the index in `seen` of row i's text. Numbers when every
 * distinct text is one (each must be a class index), else names in sorted order. */
nb_status csv_finish_labels(const char *path, const char *column, size_t field,
                               label_set *seen, int32_t *labels, int64_t rows, int *classes,
                               char ***class_names, nb_error *err)
{
    int numeric = 1;
    for (int64_t k = 0; k < seen->count && numeric; k++) {
        double v;
        numeric = csv_parse_double(seen->names[k], &v) == 0;
    }
    int64_t *value = malloc((size_t)seen->count * sizeof *value);
    if (!value)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory for %lld class names", path,
                            (long long)seen->count);
    nb_status st = NB_OK;
    if (numeric) {
        /* Names are in order of first appearance: the first bad one is on the earliest line. */
        for (int64_t k = 0; k < seen->count && !st; k++) {
            double v = strtod(seen->names[k], NULL);
            if (!(v >= 0 && v < (double)CSV_MAX_LABEL) || v != floor(v))
                st = nb_error_set(err, NB_EFORMAT, "%s: line %lld, field %zu (\"%.60s\"): expected "
                                  "a class label, an integer 0 <= k < %lld or a class name, found "
                                  "\"%.40s\"%s", path, (long long)seen->line[k], field, column,
                                  (long long)CSV_MAX_LABEL, seen->names[k], CSV_REGRESSION_HINT);
            else
                value[k] = (int64_t)v;
        }
        *classes = 0;
        for (int64_t k = 0; k < seen->count && !st; k++)
            *classes = value[k] + 1 > *classes ? (int)value[k] + 1 : *classes;
    } else {
        for (int64_t k = 0; k < seen->count && !st; k++) {
            if (!seen->names[k][0] || strchr(seen->names[k], ','))
                st = nb_error_set(err, NB_EFORMAT, "%s: line %lld, field %zu (\"%.60s\"): "
                                  "expected a class name, found %s%.40s%s", path,
                                  (long long)seen->line[k], field, column,
                                  seen->names[k][0] ? "\"" : "an empty field", seen->names[k],
                                  seen->names[k][0] ? "\" (class names may not contain commas: "
                                  "model files list them comma-separated)" : "");
        }
        if (!st && label_set_sort(seen, value))
            st = nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
        if (!st && !(*class_names = names_pack((const char *const *)seen->names, seen->count)))
            st = nb_error_set(err, NB_ENOMEM, "%s: out of memory for %lld class names", path,
                              (long long)seen->count);
        *classes = (int)seen->count;
    }
    for (int64_t i = 0; i < rows && !st; i++)
        labels[i] = (int32_t)value[labels[i]];
    free(value);
    return st;
}
