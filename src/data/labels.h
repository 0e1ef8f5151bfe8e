/* Internal to data/: a set of distinct strings (class names as read from a CSV column), name
 * lists packed into one allocation (nb_dataset's class_names and target_names), and the
 * check that a data set holds samples. */
#ifndef NB_DATA_LABELS_H
#define NB_DATA_LABELS_H

#include "nabla.h"

/* Distinct strings in order of first appearance, with a hash index for lookups. */
typedef struct label_set {
    char **names;     /* count, owned */
    int64_t *line;    /* the line each name first appeared on */
    int64_t count, cap;
    int64_t *slots;   /* open addressing: 1 + index into names, 0 = empty */
    int64_t slot_cap; /* a power of two, at least twice count */
} label_set;

/* The index of s, or -1. */
int64_t label_set_find(const label_set *set, const char *s);
/* Adds s (copied) if absent; *index receives its index. NB_ENOMEM on failure. */
nb_status label_set_add(label_set *set, const char *s, int64_t line, int64_t *index);
void label_set_free(label_set *set);

/* Sorts the names byte-wise (strcmp: UTF-8 text in code-point order, as numpy.unique sorts
 * strings) and fills rank[i] with the sorted position of the name first added i-th. rank
 * holds count entries. */
nb_status label_set_sort(label_set *set, int64_t *rank);

/* One allocation holding n pointers and the n strings they point to; NULL when out of
 * memory or n == 0. free() releases it. */
char **names_pack(const char *const *names, int64_t n);

/* Whether ds holds samples to compute with: some rows and features, and their storage
 * (dataset.c). */
int nb_dataset_valid(const nb_dataset *ds);

#endif
