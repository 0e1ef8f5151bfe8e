/* Internal: what conv2d (op_conv.c) and pooling (op_pool.c) share — the window settings kept in
 * a node's ints[], their validation, and the output shape they give. */
#ifndef NB_OPS_WINDOW_H
#define NB_OPS_WINDOW_H

#include "backend/conv.h"
#include "core/graph.h"

/* n->ints of a conv2d or pooling node: kernel, stride, padding top/left/bottom/right,
 * dilation, groups; and pooling's count_include_pad */
enum { CONV_KH, CONV_KW, CONV_SH, CONV_SW, CONV_PT, CONV_PL, CONV_PB, CONV_PR, CONV_DH, CONV_DW,
       CONV_GROUPS, POOL_INCLUDE_PAD };

/* Per-sample sizes and settings are limited to 2^30, so that products of two stay in int64. */
#define NB_WINDOW_LIMIT ((int64_t)1 << 30)

/* Checks the settings, and sets n's per-sample dims [channels, P, Q] from its input's
 * [C, H, W]: P = ⌊(H + pt + pb − dh(kh − 1) − 1)/sh⌋ + 1, Q likewise. Errors name the node. */
nb_status nb_window_output(nb_graph *g, nb_node *n, int64_t channels, nb_error *err);

/* The backend's view of node n for N samples (output channels n->dims[0]). */
nb_conv_shape nb_window_shape(nb_graph *g, const nb_node *n, int64_t N);

/* A sticky building error for a builder that cannot even create its node (the message takes
 * the node name, then two numbers). Returns -1. */
int nb_window_build_error(nb_graph *g, nb_status code, const char *fmt, const char *name,
                          long long a, long long b);

#endif
