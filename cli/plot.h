/* Pictures drawn by the tool with cairo, written as PNG by cairo_surface_write_to_png:
 * line charts (training curves, any CSV), and the decision regions of a 2-input classifier
 * (docs/lecture.md §6). The library draws nothing; this is the tool's business.
 *
 * Built without cairo (no -DNB_HAVE_CAIRO), every entry point returns NB_ENOTSUP with the
 * message PLOT_UNAVAILABLE. */
#ifndef NB_CLI_PLOT_H
#define NB_CLI_PLOT_H

#include "nabla.h"

#define PLOT_UNAVAILABLE                                                                    \
    "nabla was built without cairo: plotting is unavailable (install libcairo2-dev and "   \
    "rebuild)"

/* NB_OK when pictures can be drawn, else NB_ENOTSUP with PLOT_UNAVAILABLE in err (so that a
 * command can refuse before it spends time on work whose picture it cannot draw). */
nb_status plot_check(nb_error *err);

/* One line of a chart: n points (x[i], y[i]); points whose x or y is NaN (or, on a log
 * axis, ≤ 0) are left out and the line joins their neighbours. Arrays owned by the caller. */
typedef struct plot_series {
    const char *label;
    const double *x, *y;
    int64_t n;
} plot_series;

/* One chart: axes with ticks and labels, a title and a legend. */
typedef struct plot_panel {
    const char *title, *xlabel, *ylabel; /* each may be NULL */
    const plot_series *series;
    int count;
    int log_y;                           /* logarithmic y axis */
} plot_panel;

/* Draws `count` panels side by side in a width × height picture, under an optional title,
 * and writes it to path (PNG). */
nb_status plot_lines(const char *path, const char *title, const plot_panel *panels, int count,
                     int width, int height, nb_error *err);

/* The epochs of a training run, collected by train's epoch_end callback. */
typedef struct plot_history {
    nb_epoch_stats *stats; /* owned; n of cap */
    int n, cap;
} plot_history;

/* Appends a copy of *s; NB_ENOMEM when out of memory. */
nb_status plot_history_add(plot_history *h, const nb_epoch_stats *s, nb_error *err);
void plot_history_free(plot_history *h);

/* The epochs 1..upto of a training log written by train --log, appended to h: what a resumed
 * run did before it stopped. A later row for the same epoch wins (an epoch redone because the
 * run stopped between its log line and its checkpoint); columns other than epoch may be
 * missing (NaN). Errors name the file: unreadable, or no column 'epoch'. */
nb_status plot_history_read_log(plot_history *h, const char *path, int upto, nb_error *err);

/* Training curves: loss and accuracy per epoch, training vs validation (when the run had a
 * validation set), in two panels; the test set's loss and accuracy (NaN: none) as a marked
 * point after the last epoch, their values in the legend. */
nb_status plot_training_curves(const char *path, const char *title, const plot_history *h,
                               double test_loss, double test_accuracy, nb_error *err);

typedef struct plot_regions_options {
    int size;              /* side of the square region in pixels (axes and legend add) */
    int points;            /* draw the data points on top */
    const char *title;     /* may be NULL */
    int have_extent;       /* use extent instead of the data's bounding box */
    double extent[4];      /* x0 min, x0 max, x1 min, x1 max */
    const char *pixels;    /* if not NULL: CSV of each point's pixel (see plot_regions) */
} plot_regions_options;

/* Decision regions of a trained model with 2 input features (§6): every pixel of the plane
 * coloured by the class nb_model_predict gives its centre (the model's own normalisation
 * applies), and the points of ds (may be NULL) drawn on top in a darker shade of their class
 * colour with a white outline. The plane is the bounding box of ds with a margin, equal
 * scales on both axes, unless opt->extent is given.
 *
 * opt->pixels names a CSV written with one row per point inside the plane:
 *   x0,x1,label,px,py,cx0,cx1
 * (px, py) is the pixel holding the point's centre, (cx0, cx1) the plane coordinates of that
 * pixel's centre — exactly the input its colour was predicted from. */
nb_status plot_regions(const char *path, nb_model *m, const nb_dataset *ds,
                       const plot_regions_options *opt, nb_error *err);

/* Region and point colours of class k, as 0xRRGGBB (the region colour is the base colour
 * mixed 55 % with white, the point colour the base darkened to 3/4). */
uint32_t plot_class_base(int k);
uint32_t plot_class_region(int k);
uint32_t plot_class_point(int k);

#endif
