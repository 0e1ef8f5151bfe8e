/* What the drawing files share (plot.c, plot_axes.c, plot_lines.c, plot_regions.c): text,
 * colours, the axes of a chart and a picture's start and finish. Internal to the tool. */
#ifndef NB_CLI_PLOT_DRAW_H
#define NB_CLI_PLOT_DRAW_H

#include "plot.h"

#include <math.h>
#include <stddef.h>

#define MAX_TICKS 64

typedef struct plot_tick {
    double at;      /* where: the value, or its log10 on a log axis */
    char label[32]; /* "" for a minor tick */
} plot_tick;

/* The ticks of an axis over [lo, hi] (log10 of the data on a log axis), about `want` of them
 * labelled: nice steps (1, 2 or 5 × 10^k) on a linear axis; on a log axis decades, their
 * multiples or, within less than a decade, nice steps of the values. Returns the count (at
 * most MAX_TICKS). */
int plot_axis_ticks(double lo, double hi, int log_axis, int want, plot_tick *ticks);
/* The same for an axis whose values are whole numbers (epochs): never a step below 1. */
int plot_whole_ticks(double lo, double hi, int want, plot_tick *ticks);

#ifdef NB_HAVE_CAIRO
#include <cairo.h>

#define FONT "DejaVu Sans"
#define TICK_FONT 11.0
#define LABEL_FONT 12.5
#define TITLE_FONT 14.0
#define PI 3.14159265358979323846

typedef struct axes {
    double px, py, pw, ph; /* the plot rectangle */
    double x0, x1, y0, y1; /* data range; log10 of it on a log y axis */
    int log_y;
    int x_whole;           /* every x is a whole number: x ticks at whole numbers only */
} axes;

static inline double ax_x(const axes *a, double v) { return a->px + (v - a->x0) / (a->x1 - a->x0) * a->pw; }
static inline double ax_y(const axes *a, double v)
{
    if (a->log_y)
        v = log10(v);
    return a->py + a->ph - (v - a->y0) / (a->y1 - a->y0) * a->ph;
}

void plot_set_rgb(cairo_t *cr, uint32_t rgb);
void plot_font(cairo_t *cr, double size, int bold);
double plot_text_width(cairo_t *cr, const char *s);
/* Draws s with its anchor at (x, y): ax = 0, ½, 1 for left, centre, right; ay likewise for
 * top, middle, bottom of the font's ascent/descent box. */
void plot_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay);
/* plot_text within max_width pixels: the font shrinks down to 9 pt, then the middle of the
 * text gives way to "…" (a title naming two long paths keeps both ends readable). */
void plot_text_fit(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                   double max_width);
/* Frame, ticks, tick labels, axis labels and title around a's rectangle; grid lines at the
 * ticks when `grid`. */
void plot_draw_axes(cairo_t *cr, const axes *a, const char *title, const char *xlabel,
                    const char *ylabel, int grid);
/* A white width × height picture (NB_EINVAL for sizes outside 64..16384). */
nb_status plot_start(int width, int height, cairo_surface_t **surface, cairo_t **cr,
                     nb_error *err);
/* Writes the picture to path as PNG and frees it (and cairo's caches) whatever happens. */
nb_status plot_finish(cairo_surface_t *surface, cairo_t *cr, const char *path, nb_error *err);

#endif /* NB_HAVE_CAIRO */
#endif
