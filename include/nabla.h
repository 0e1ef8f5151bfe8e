/*
 * nabla (∇) — neural networks with reverse-mode automatic differentiation, in C11.
 *
 * One umbrella header: programs write #include <nabla.h>. The library is organised in layers,
 * and each layer's declarations are in its own header under nabla/ (mirroring src/'s folders),
 * included below from the bottom up:
 *
 *   nabla/base.h     version, limits, errors, random numbers
 *   nabla/backend.h  matrix products          nabla/core.h  the graph, precision, gradcheck
 *   nabla/ops.h      modules                  nabla/loss.h  losses
 *   nabla/formats.h  safetensors              nabla/data.h  data sets
 *   nabla/model.h    init, descriptions, model files
 *   nabla/eval.h     evaluation and metrics   nabla/export.h  ONNX and C export
 *   nabla/dist.h     MPI                      nabla/train.h  optimisers, the trainer
 *
 * What the layers hold:
 *
 *   errors      status codes and messages (the library never prints, never exits)
 *   rng         a seeded generator owned by the caller (no global state)
 *   graph       a DAG of named nodes: inputs, parameters, modules and losses;
 *               forward in topological order, backward (vector–Jacobian products)
 *               in reverse order — docs/lecture.md §3
 *   modules     Linear, ReLU, tanh, sigmoid, Add, Max, Mul, Scale, Sum/Mean, Softmax,
 *               LogSoftmax, Dropout, Flatten/Reshape, nearest neighbour — §4
 *   losses      MSE, NLL, cross-entropy — §1, §5.2
 *   description the text model format and the MLP shorthand
 *   init        Kaiming, Xavier, PyTorch's Linear default — §5.8
 *   gemm        the matrix-product backend (oneDNN, OpenBLAS or portable C)
 *   data        IDX, CSV, spirals; normalisation, splits, minibatch order — §5.4, §5.5, §6
 *   optim       SGD, momentum, Nesterov, Adam, AdamW, L1/L2, schedules, clipping — §2, §5
 *   files       safetensors model files and checkpoints
 *   export      ONNX, and a model compiled to one dependency-free C file
 *
 * Conventions: float32 tensors, row-major, batch dimension first, PyTorch's layouts
 * (a Linear weight is [out, in] and Y = X Wᵀ + b). Every function that returns memory says
 * who owns it; every nb_*_free(NULL) is a no-op.
 */
#ifndef NABLA_H
#define NABLA_H

#include "nabla/base.h"
#include "nabla/backend.h"
#include "nabla/core.h"
#include "nabla/ops.h"
#include "nabla/loss.h"
#include "nabla/formats.h"
#include "nabla/data.h"
#include "nabla/model.h"
#include "nabla/eval.h"
#include "nabla/export.h"
#include "nabla/dist.h"
#include "nabla/train.h"

#endif /* NABLA_H */
