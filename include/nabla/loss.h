/*
 * nabla/loss.h — costs: MSE, NLL, cross-entropy (src/loss/; lecture §1, §5.2).
 * Each call appends a scalar node to a graph (core.h); cross-entropy may smooth its labels.
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
/* Cross-entropy with label smoothing ε ∈ [0, 1), PyTorch's F.cross_entropy(z, y,
 * label_smoothing=ε): the target is (1 − ε)·onehot(y) + ε/K over the K classes. Like Dropout,
 * smoothing acts only in training mode (nb_graph_set_training); in evaluation the node is the
 * plain cross-entropy, the loss that validation and test report. ε = 0 is nb_cross_entropy,
 * bit for bit. ε outside [0, 1) fails the node (sticky graph error). */
int nb_cross_entropy_smoothed(nb_graph *g, const char *name, int logits, int labels,
                              float label_smoothing);
/* Sets the smoothing ε of an existing cross-entropy node (NB_EINVAL when node is not one, or
 * ε is outside [0, 1)); the next forward uses it. */
nb_status nb_cross_entropy_set_smoothing(nb_graph *g, int node, float label_smoothing,
                                         nb_error *err);
/* Its ε (0 for any other node). */
float nb_cross_entropy_smoothing(const nb_graph *g, int node);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_LOSS_H */
