/* The axes of a chart: where the ticks go on linear and logarithmic axes, how they are labelled,
 * and drawing the frame, grid, ticks and labels around a plot rectangle (plot_draw.h). The tick
 * arithmetic needs no cairo. */
#include "plot_draw.h"

#include <math.h>
#include <stdio.h>

int plot_nice_ticks(double lo, double hi, int want, double *ticks, double *step)
{
    double rough = (hi - lo) / want, mag = pow(10, floor(log10(rough))), norm = rough / mag;
    *step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    int n = 0;
    for (double k = ceil(lo / *step - 1e-9); n < MAX_TICKS && k * *step <= hi + 1e-9 * *step; k++)
        ticks[n++] = k * *step;
    return n;
}

void plot_tick_label(char *buf, size_t size, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0; /* not "-0.0" nor "2.8e-17" */
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6 || fabs(v) >= 1e6)
        snprintf(buf, size, "%g", v);
    else
        snprintf(buf, size, "%.*f", decimals, v);
}

int plot_log_ticks(double lo, double hi, double *ticks, int *minor)
{
    int n = 0, few = hi - lo < 2.5;
    for (double k = floor(lo); k <= ceil(hi) && n < MAX_TICKS - 3; k++) {
        static const double mult[3] = {1, 2, 5};
        for (int i = 0; i < (few ? 3 : 1); i++) {
            double t = k + log10(mult[i]);
            if (t >= lo - 1e-9 && t <= hi + 1e-9) {
                minor[n] = i > 0;
                ticks[n++] = t;
            }
        }
    }
    return n;
}

void plot_log_label(char *buf, size_t size, double t)
{
    double v = pow(10, t);
    int k = (int)floor(t + 1e-9);
    if (k >= -4 && k <= 5)
        snprintf(buf, size, "%g", v);
    else
        snprintf(buf, size, "%.0fe%d", v / pow(10, k), k);
}

#ifdef NB_HAVE_CAIRO

void plot_draw_axes(cairo_t *cr, const axes *a, const char *title, const char *xlabel,
                      const char *ylabel, int grid)
{
    double xt[MAX_TICKS], yt[MAX_TICKS], xstep, ystep = 0;
    int yminor[MAX_TICKS] = {0};
    int nx = plot_nice_ticks(a->x0, a->x1, a->pw > 360 ? 8 : 5, xt, &xstep);
    int ny = a->log_y ? plot_log_ticks(a->y0, a->y1, yt, yminor)
                      : plot_nice_ticks(a->y0, a->y1, a->ph > 300 ? 7 : 5, yt, &ystep);
    char buf[64];
    cairo_save(cr);
    cairo_set_line_width(cr, 1);
    if (grid) {
        plot_set_rgb(cr, 0xE6E6E6);
        for (int i = 0; i < nx; i++) {
            double x = floor(ax_x(a, xt[i])) + 0.5;
            cairo_move_to(cr, x, a->py);
            cairo_line_to(cr, x, a->py + a->ph);
        }
        for (int i = 0; i < ny; i++) {
            double y = floor(a->py + a->ph - (yt[i] - a->y0) / (a->y1 - a->y0) * a->ph) + 0.5;
            cairo_move_to(cr, a->px, y);
            cairo_line_to(cr, a->px + a->pw, y);
        }
        cairo_stroke(cr);
    }
    plot_set_rgb(cr, 0x333333);
    cairo_rectangle(cr, floor(a->px) + 0.5, floor(a->py) + 0.5, floor(a->pw), floor(a->ph));
    cairo_stroke(cr);
    plot_font(cr, TICK_FONT, 0);
    double ylabel_room = 0;
    for (int i = 0; i < nx; i++) {
        double x = floor(ax_x(a, xt[i])) + 0.5, y = a->py + a->ph;
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x, y + 4);
        cairo_stroke(cr);
        plot_tick_label(buf, sizeof buf, xt[i], xstep);
        plot_text(cr, x, y + 6, buf, 0.5, 0);
    }
    for (int i = 0; i < ny; i++) {
        double y = floor(a->py + a->ph - (yt[i] - a->y0) / (a->y1 - a->y0) * a->ph) + 0.5;
        cairo_move_to(cr, a->px - (yminor[i] ? 2 : 4), y);
        cairo_line_to(cr, a->px, y);
        cairo_stroke(cr);
        if (a->log_y && yminor[i] && ny > 6)
            continue; /* label 2× and 5× only when there is room */
        if (a->log_y)
            plot_log_label(buf, sizeof buf, yt[i]);
        else
            plot_tick_label(buf, sizeof buf, yt[i], ystep);
        plot_text(cr, a->px - 6, y, buf, 1, 0.5);
        double w = plot_text_width(cr, buf);
        ylabel_room = w > ylabel_room ? w : ylabel_room;
    }
    plot_font(cr, LABEL_FONT, 0);
    if (xlabel)
        plot_text(cr, a->px + a->pw / 2, a->py + a->ph + 24, xlabel, 0.5, 0);
    if (ylabel) {
        cairo_save(cr);
        cairo_translate(cr, a->px - ylabel_room - 12, a->py + a->ph / 2);
        cairo_rotate(cr, -PI / 2);
        plot_text(cr, 0, 0, ylabel, 0.5, 1);
        cairo_restore(cr);
    }
    if (title) {
        plot_font(cr, TITLE_FONT - 1, 1);
        plot_text(cr, a->px + a->pw / 2, a->py - 8, title, 0.5, 1);
    }
    cairo_restore(cr);
}

#endif /* NB_HAVE_CAIRO */
