/*
 * nabla/loss.h — costs: MSE, NLL, cross-entropy (src/loss/; lecture §1, §5.2).
 * Each call appends a scalar node to a graph (core.h).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_LOSS_H
#define NABLA_LOSS_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Losses: scalar (unbatched [1]) nodes. The batch loss is the average loss of §1 with
 * NB_REDUCE_MEAN. */
int nb_mse(nb_graph *g, const char *name, int prediction, int target, nb_reduction reduction);
int nb_nll(nb_graph *g, const char *name, int log_probs, int labels);
int nb_cross_entropy(nb_graph *g, const char *name, int logits, int labels);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_LOSS_H */
