/* Internal: the description parser with a budget, for model files. Not part of the public API. */
#ifndef NB_DESCRIBE_H
#define NB_DESCRIBE_H

#include "nabla.h"

/* nb_describe, refusing (NB_EFORMAT, before allocating) any linear, nearest or param that
 * would bring the graph's parameters past max_params floats; max_params < 0 means no limit.
 * A model file holds its weights, so its description can need no more floats than the file's
 * tensors hold: without the budget a 40-byte file saying "65536-65536" would make the loader
 * allocate 32 GiB before it could see that the weights are missing. */
nb_status nb_describe_budget(nb_graph *g, const char *text, const char *source,
                             int64_t max_params, int *input, int *output, nb_error *err);

#endif
