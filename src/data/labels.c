/* Class names read from data: a set of distinct strings with a hash index (FNV-1a, open
 * addressing with linear probing, kept at most half full so a probe ends quickly), sorted
 * once at the end so that class k is the k-th name in byte order — scikit-learn's
 * LabelEncoder numbers classes the same way (numpy.unique sorts them). */
#include "data/labels.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int64_t label_set_find(const label_set *set, const char *s)
{
    if (!set->slot_cap)
        return -1;
    uint64_t mask = (uint64_t)set->slot_cap - 1;
    for (uint64_t i = fnv1a(s) & mask;; i = (i + 1) & mask) {
        int64_t k = set->slots[i];
        if (k == 0)
            return -1;
        if (strcmp(set->names[k - 1], s) == 0)
            return k - 1;
    }
}

static void place(int64_t *slots, int64_t cap, const char *s, int64_t index)
{
    uint64_t mask = (uint64_t)cap - 1, i = fnv1a(s) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = index + 1;
}

nb_status label_set_add(label_set *set, const char *s, int64_t line, int64_t *index)
{
    int64_t k = label_set_find(set, s);
    if (k >= 0) {
        *index = k;
        return NB_OK;
    }
    if (set->count == set->cap) {
        int64_t cap = set->cap ? 2 * set->cap : 16;
        char **names = realloc(set->names, (size_t)cap * sizeof *names);
        if (!names)
            return NB_ENOMEM;
        set->names = names;
        int64_t *line_of = realloc(set->line, (size_t)cap * sizeof *line_of);
        if (!line_of)
            return NB_ENOMEM;
        set->line = line_of;
        set->cap = cap;
    }
    if (2 * (set->count + 1) > set->slot_cap) {
        int64_t cap = set->slot_cap ? 2 * set->slot_cap : 32;
        int64_t *slots = calloc((size_t)cap, sizeof *slots);
        if (!slots)
            return NB_ENOMEM;
        for (int64_t i = 0; i < set->count; i++)
            place(slots, cap, set->names[i], i);
        free(set->slots);
        set->slots = slots;
        set->slot_cap = cap;
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (!copy)
        return NB_ENOMEM;
    memcpy(copy, s, n);
    set->names[set->count] = copy;
    set->line[set->count] = line;
    place(set->slots, set->slot_cap, copy, set->count);
    *index = set->count++;
    return NB_OK;
}

void label_set_free(label_set *set)
{
    for (int64_t i = 0; i < set->count; i++)
        free(set->names[i]);
    free(set->names);
    free(set->line);
    free(set->slots);
    memset(set, 0, sizeof *set);
}

typedef struct ranked {
    char *name;
    int64_t line;
    int64_t first; /* order of first appearance */
} ranked;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const ranked *)a)->name, ((const ranked *)b)->name);
}

nb_status label_set_sort(label_set *set, int64_t *rank)
{
    int64_t n = set->count;
    ranked *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r)
        return NB_ENOMEM;
    for (int64_t i = 0; i < n; i++)
        r[i] = (ranked){set->names[i], set->line[i], i};
    qsort(r, (size_t)n, sizeof *r, by_name);
    for (int64_t i = 0; i < n; i++) {
        set->names[i] = r[i].name;
        set->line[i] = r[i].line;
        rank[r[i].first] = i;
    }
    free(r);
    /* The hash index points at the old positions: rebuild it. */
    memset(set->slots, 0, (size_t)set->slot_cap * sizeof *set->slots);
    for (int64_t i = 0; i < n; i++)
        place(set->slots, set->slot_cap, set->names[i], i);
    return NB_OK;
}

char **names_pack(const char *const *names, int64_t n)
{
    if (n <= 0)
        return NULL;
    size_t bytes = (size_t)n * sizeof(char *);
    for (int64_t i = 0; i < n; i++)
        bytes += strlen(names[i]) + 1;
    char **out = malloc(bytes);
    if (!out)
        return NULL;
    char *text = (char *)(out + n);
    for (int64_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]) + 1;
        memcpy(text, names[i], len);
        out[i] = text;
        text += len;
    }
    return out;
}
