/* Internal: the state of one C export (c_source.c) shared with the files that write parts of
 * it — the public functions (c_api.c) and the int8 weights and their calibration
 * (c_source_int8.c). Not part of the public API. */
#ifndef NB_EXPORT_C_FILE_H
#define NB_EXPORT_C_FILE_H

#include "export/plan.h"

#define NAME_LIMIT 40

typedef struct c_file {
    const nb_export_plan *plan;
    const nb_export_c_options *opt;
    const char *name;          /* symbol prefix, lower case as given */
    char upper[NAME_LIMIT + 1];/* macro prefix */
    const char *header;        /* the header's file name, as the .c file includes it */
    int *root;                 /* per plan node: the node whose storage it uses */
    long *offset;              /* per root: offset into the scratch buffer */
    long scratch;              /* floats */
    char (*ident)[NB_NAME_MAX + 8]; /* per plan node: a C identifier for its arrays */
    unsigned kernels;
    int uses_log, uses_tanh, uses_erf, uses_sqrt;
    /* int8 with calibration (NULL: weight-only int8 or fp32), per plan node that is a Linear:
     * the clipping threshold T of its inputs, and whether they were never negative (then
     * quantised to [0, 255] in steps of T / 255, else to [−127, 127] in steps of T / 127);
     * the largest Linear's input count. */
    float *q8_clip;
    unsigned char *q8_unsigned;
    long q8_max_in;
} c_file;

/* The shortest text that reads back as the same float, as a C float literal. */
void nb_c_put_float(FILE *f, float v);
/* static const TYPE IDENT_SUFFIX[n] = {…}; eight to a line. */
void nb_c_put_floats(FILE *f, const char *type_name, const char *ident, const char *suffix,
                     const float *v, int64_t n);

/* c_api.c: the header's declarations, and the definitions of NAME_predict, NAME_predict_batch
 * and NAME_class_name (a classifier) or NAME_regress, NAME_regress_batch and
 * NAME_target_name (a regression model). */
void nb_c_api_declare(FILE *f, const c_file *c);
void nb_c_api_define(FILE *f, const c_file *c);
/* The targets' standardisation for NAME_regress (nothing without one); non-zero when out of
 * memory. */
int nb_c_api_data(FILE *f, const c_file *c);

/* c_source_int8.c: plan node i's Linear weight as int8 with per-row scales (and, calibrated,
 * the input's scale). */
void nb_c_int8_put_weights(FILE *f, const c_file *c, int i);
/* Runs the model over ds (raw inputs, normalised with the model's statistics) and fills
 * c->q8_clip, c->q8_unsigned and c->q8_max_in (the caller frees the arrays). */
nb_status nb_c_int8_calibrate(nb_model *m, c_file *c, const nb_dataset *ds, nb_error *err);

#endif
