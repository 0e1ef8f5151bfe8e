/*
 * nabla/eval.h — a model run over a data set: loss, accuracy and the other metrics (src/eval/).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_EVAL_H
#define NABLA_EVAL_H

#include "model.h"
#include "data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loss and accuracy of m on ds (labelled, or with targets for a regression model), in
 * evaluation mode; a regression model's accuracy is NAN. confusion (classes² counts, row =
 * true class, column = predicted; may be NULL; classifiers only) is filled. */
nb_status nb_evaluate(nb_model *m, const nb_dataset *ds, double *loss, double *accuracy,
                      int64_t *confusion, nb_error *err);

/* Everything eval reports (src/eval/metrics.c), with scikit-learn's definitions.
 *
 * Classification: accuracy; top-k accuracy (the true class among the k highest scores, ties
 * counted against it); per class c, precision = TP/(TP+FP), recall = TP/(TP+FN),
 * F1 = 2PR/(P+R), each 0 when its denominator is (scikit-learn's zero_division=0); macro
 * averages over the classes that occur in the data or the predictions (as
 * classification_report), weighted averages by support.
 *
 * Regression, per target j in its own units (the target standardisation undone), with e the
 * error ȳ − y over the P samples: MSE = Σe²/P, RMSE = √MSE, MAE = Σ|e|/P,
 * R² = 1 − Σe² / Σ(y − mean y)² (1 for a constant target predicted exactly, else 0 there);
 * the overall figures are the plain means over targets (multioutput='uniform_average'). */
typedef struct nb_metrics {
    int64_t samples;
    double loss;          /* the model's training loss (regression: on standardised targets) */
    /* classification: classes > 0 */
    int64_t classes;
    double accuracy;
    int top_k;            /* 0: not computed */
    double top_k_accuracy;
    int64_t *confusion;   /* classes², row = true class, column = predicted */
    int64_t *support;     /* samples of each true class */
    double *precision, *recall, *f1;   /* per class */
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
    /* regression: targets > 0 */
    int64_t targets;
    double *mse, *rmse, *mae, *r2;     /* per target */
    double mse_mean, rmse_mean, mae_mean, r2_mean;
} nb_metrics;

/* Computes the metrics of m on ds (top_k ≥ 0; 0 skips top-k). out's arrays are owned by out:
 * free them with nb_metrics_free. */
nb_status nb_metrics_compute(nb_model *m, const nb_dataset *ds, int top_k, nb_metrics *out,
                             nb_error *err);
void nb_metrics_free(nb_metrics *mt);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_EVAL_H */
