/* Leaves of the graph: observed inputs, class labels and parameters (docs/lecture.md §1: "observed
 * inputs" and the parameters w that frameworks keep implicit inside modules). Leaves compute
 * nothing; their storage is filled by the caller (inputs, labels) or the optimiser
 * (parameters). Their dims are set by the builder functions in graph.c. */
#include "core/graph.h"

static nb_status batched_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    (void)g, (void)err;
    n->batched = 1;
    return NB_OK;
}

static nb_status param_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    (void)g, (void)err;
    n->batched = 0;
    return NB_OK;
}

const nb_op_def nb_op_input_def = {.name = "input", .role = NB_ROLE_LEAF, .shape = batched_shape,
                                   .formula = "observed input"};
const nb_op_def nb_op_labels_def = {.name = "labels", .role = NB_ROLE_LEAF, .shape = batched_shape,
                                    .formula = "observed labels"};
const nb_op_def nb_op_param_def = {.name = "param", .role = NB_ROLE_LEAF, .shape = param_shape,
                                   .formula = "parameter"};
/* A buffer: state that a module keeps between calls and that is saved with the parameters, but
 * is not trained (batch norm's running statistics, as PyTorch's register_buffer). */
const nb_op_def nb_op_buffer_def = {.name = "buffer", .role = NB_ROLE_LEAF, .shape = param_shape,
                                    .formula = "buffer (running statistic, not trained)"};
