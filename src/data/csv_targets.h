/* Internal to data/: the target columns of a CSV (src/data/csv_targets.c). */
#ifndef NB_DATA_CSV_TARGETS_H
#define NB_DATA_CSV_TARGETS_H

#include "data/labels.h"

#define CSV_MAX_LABEL ((int64_t)1 << 20) /* class indices and distinct class names */

/* " (for regression on this column, ...)": appended where numbers are not class labels. */
extern const char CSV_REGRESSION_HINT[];

/* strtod over the whole field: 0 on success, -1 when empty, -2 when not a number. */
int csv_parse_double(const char *s, double *v);

/* role[c] = the target position of column c, or -1 for a feature; *count targets. refs is a
 * whole column name, or names and 0-based indices separated by commas (NULL: none). Errors
 * name the file and the header's line. */
nb_status csv_find_targets(const char *path, int64_t line, char *const *names, size_t ncols,
                           const char *refs, int64_t *role, int64_t *count, nb_error *err);

/* A class label through a trained model's names (known, count names): the name, else its
 * index as a number below count; otherwise an error naming the file, line, field and value. */
nb_status csv_map_label(const char *path, int64_t line, size_t c, const char *column,
                        const char *s, const label_set *known, int64_t count,
                        const char *const *names, int32_t *out, nb_error *err);

/* After the last row: labels[i] holds the index in `seen` of row i's text. Numbers when every
 * distinct text is one (each must be a class index), else names in sorted order, returned in
 * *class_names (one allocation). field is the column's 1-based position, for messages. */
nb_status csv_finish_labels(const char *path, const char *column, size_t field, label_set *seen,
                            int32_t *labels, int64_t rows, int *classes, char ***class_names,
                            nb_error *err);

#endif
