/* Internal: the description parser with a budget, for model files, and the MLP shorthand
 * (shorthand.c). Not part of the public API. */
#ifndef NB_DESCRIBE_H
#define NB_DESCRIBE_H

#include "nabla.h"

/* Parameter floats a model file's description may need beyond what the file's tensors hold.
 * A missing or misshapen tensor is then still reported by name when the weights are matched
 * (nb_model_take_weights), while a hostile description cannot make the loader allocate more
 * than 2 × 64 MiB (parameters and gradients) beyond the size of the file. */
#define NB_DESCRIBE_SLACK ((int64_t)1 << 24)

/* nb_describe, refusing (NB_EFORMAT, before the graph allocates) any linear, nearest or param
 * that would bring the graph's parameters past file_floats + NB_DESCRIBE_SLACK floats;
 * file_floats < 0 means no limit. A model file holds its weights, so its description can need
 * no more than the file's tensors hold: without the budget a 40-byte file saying
 * "65536-65536" would make the loader allocate 32 GiB before it could see that the weights
 * are missing. */
nb_status nb_describe_budget(nb_graph *g, const char *text, const char *source,
                             int64_t file_floats, int *input, int *output, nb_error *err);

/* Expands the MLP shorthand `text` ("784-256-10[:act]", nb_is_shorthand) into description
 * text in out (size bytes). Errors (NB_EFORMAT) name the source and the text. */
nb_status nb_shorthand_expand(const char *text, const char *source, char *out, size_t size,
                              nb_error *err);

#endif
