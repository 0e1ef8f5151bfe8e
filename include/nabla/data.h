/*
 * nabla/data.h — data sets, splits, normalisation, minibatch order (src/data/).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Data (§5.4, §5.5, §6). A data set keeps images as bytes when its source is bytes (IDX) and
 * converts per batch; other sources store floats. Labels are int32 class indices.
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_dtype { NB_U8 = 0, NB_F32 = 1 } nb_dtype;

typedef struct nb_dataset {
    int64_t count;             /* samples */
    int ndim;                  /* per-sample dims, e.g. 1 × [784] or 2 × [28, 28] */
    int64_t dims[NB_MAX_DIMS];
    int64_t features;          /* product of dims */
    nb_dtype dtype;            /* storage of the features */
    uint8_t *u8;               /* count × features when dtype == NB_U8, else NULL */
    float *f32;                /* count × features when dtype == NB_F32, else NULL */
    int32_t *labels;           /* count, or NULL when unlabelled */
    int classes;               /* 1 + the largest label, or 0 */
    /* Regression targets: count × target_count floats (row-major), or NULL. */
    float *targets;
    int64_t target_count;
    /* Names, each list one allocation (pointers then strings), or NULL: the `classes` class
     * names when labels were read as text (sorted byte-wise, as scikit-learn's LabelEncoder
     * sorts them), and the target_count target column names. */
    char **class_names;
    char **target_names;
} nb_dataset;

/* Loads an IDX image file (idx3 ubyte, or idx2) and its idx1 labels file (may be NULL),
 * gzipped or plain. ds is filled; free its contents with nb_dataset_free. */
nb_status nb_idx_load(nb_dataset *ds, const char *images_path, const char *labels_path,
                      nb_error *err);
/* Loads a CSV file with a header row. label_column is a column name or a 0-based index as
 * text, or NULL for none; it holds class labels (as nb_csv_options' NB_TARGET_CLASSES). */
nb_status nb_csv_load(nb_dataset *ds, const char *path, const char *label_column,
                      nb_error *err);

/* What the target columns of a CSV hold. */
typedef enum nb_target_kind {
    /* One column of class labels: either every field a number, each an integer 0 ≤ k < 2^20
     * (the class index), or text, each distinct field a class name; classes are then
     * numbered in the names' sorted order, as scikit-learn's LabelEncoder does. */
    NB_TARGET_CLASSES = 0,
    /* One or more columns of numbers (regression targets), into ds->targets. */
    NB_TARGET_VALUES
} nb_target_kind;

typedef struct nb_csv_options {
    /* The target column(s): a column name or a 0-based index, or several of them separated
     * by commas (a name that contains commas is matched whole first); NULL for none. */
    const char *targets;
    nb_target_kind kind;
    /* NB_TARGET_CLASSES: when class_count > 0, labels are mapped through these names (a
     * trained model's): a field equal to names[k] is class k, a number k < class_count is
     * class k, anything else is an error naming the line and the field. */
    const char *const *class_names;
    int64_t class_count;
} nb_csv_options;

/* nb_csv_load with options (NULL: no target columns). */
nb_status nb_csv_load_with(nb_dataset *ds, const char *path, const nb_csv_options *opt,
                           nb_error *err);
/* The practicum's K interleaved 2-D spirals: `per_class` points per class, Gaussian noise of
 * standard deviation `noise`. */
nb_status nb_spirals(nb_dataset *ds, int64_t per_class, int classes, float noise,
                     uint64_t seed, nb_error *err);
/* Frees the contents (not ds itself) and zeroes it. */
void nb_dataset_free(nb_dataset *ds);
/* Moves a random fraction of src (stratified by class when labelled) into val, the rest
 * into train. src is left empty. */
nb_status nb_dataset_split(nb_dataset *src, double val_fraction, uint64_t seed,
                           nb_dataset *train, nb_dataset *val, nb_error *err);

/* Normalisation b' = (b − m) / max(σ, ε), statistics from the training set only (§5.5). */
typedef enum nb_norm_mode { NB_NORM_NONE = 0, NB_NORM_FEATURE, NB_NORM_CHANNEL, NB_NORM_GLOBAL } nb_norm_mode;

typedef struct nb_norm {
    nb_norm_mode mode;
    int64_t size;  /* number of (mean, std) pairs: features, channels (dims[0]) or 1 */
    int64_t features;
    float eps;
    float *mean;   /* owned */
    float *std;    /* owned */
} nb_norm;

nb_status nb_norm_fit(nb_norm *norm, const nb_dataset *train, nb_norm_mode mode, float eps,
                      nb_error *err);
void nb_norm_free(nb_norm *norm);

/* Gathers samples idx[0..n) of ds into x (n × features floats), applying norm (may be NULL),
 * and their labels into y (may be NULL). Allocates nothing. */
void nb_dataset_gather(const nb_dataset *ds, const int64_t *idx, int64_t n,
                       const nb_norm *norm, float *x, int32_t *y);

/* Standardisation of regression targets, t' = (t − m) / σ per target column, fitted on the
 * training targets (a constant column gets σ = 1): the statistics are kept with the model and
 * predictions are mapped back, ȳ = ȳ'·σ + m. NB_NORM_NONE (identity) when mode is none. */
nb_status nb_norm_fit_targets(nb_norm *norm, const nb_dataset *train, nb_norm_mode mode,
                              nb_error *err);
/* Gathers the targets of samples idx[0..n) into t (n × target_count), applying norm (may be
 * NULL). Allocates nothing. */
void nb_dataset_gather_targets(const nb_dataset *ds, const int64_t *idx, int64_t n,
                               const nb_norm *norm, float *t);

/* Minibatch order for one epoch (§5.4): sequential, shuffled, or stratified so that every
 * class appears in every minibatch. */
typedef enum nb_order { NB_ORDER_SEQUENTIAL = 0, NB_ORDER_SHUFFLE, NB_ORDER_STRATIFIED } nb_order;
/* Fills order[0..ds->count) with a permutation of sample indices. scratch needs
 * ds->count int64s for NB_ORDER_STRATIFIED (may be NULL otherwise). */
void nb_dataset_order(const nb_dataset *ds, nb_order kind, int64_t batch, nb_rng *rng,
                      int64_t *order, int64_t *scratch);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_DATA_H */
