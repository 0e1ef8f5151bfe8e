/* Line charts: series on axes, the legend where it covers no line, and the training curves.
 *
 * Layout of a chart panel, in pixels of the picture:
 *
 *     +------------------- panel ---------------------+
 *     |            title                              |
 *     |  y ticks  +--------- plot rectangle -------+   |
 *     |  y label  |  grid, lines, legend (corner)  |   |
 *     |           +--------------------------------+   |
 *     |             x ticks, x label                   |
 *     +------------------------------------------------+
 *
 * Data map to the plot rectangle linearly (log10 first on a log axis), y growing upwards. */
#include "plot_draw.h"

#include <math.h>
#include <stdlib.h>

#ifndef NB_HAVE_CAIRO

nb_status plot_lines(const char *path, const char *title, const plot_panel *panels, int count,
                     int width, int height, nb_error *err)
{
    (void)path, (void)title, (void)panels, (void)count, (void)width, (void)height;
    return plot_check(err);
}

nb_status plot_training_curves(const char *path, const char *title, const plot_history *h,
                               nb_error *err)
{
    (void)path, (void)title, (void)h;
    return plot_check(err);
}

#else /* NB_HAVE_CAIRO */

/* ---- line charts --------------------------------------------------------------------------- */

static int usable(const axes *a, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!a->log_y || y > 0);
}

/* Data ranges of a panel: x with a 2 % margin, y 5 %; a flat range is widened. */
static int panel_range(const plot_panel *p, axes *a)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < p->count; s++)
        for (int64_t i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!usable(a, x, y))
                continue;
            if (a->log_y)
                y = log10(y);
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    if (!(x0 <= x1))
        return 0;
    if (x1 - x0 < 1e-12 * fmax(1, fabs(x0)))
        x0 -= 0.5, x1 += 0.5;
    if (y1 - y0 < 1e-12 * fmax(1, fabs(y0))) {
        double d = a->log_y ? 0.5 : fmax(0.5, fabs(y0) * 0.1);
        y0 -= d, y1 += d;
    }
    double pad = 0.05 * (y1 - y0), xpad = 0.02 * (x1 - x0); /* room for end markers */
    a->x0 = x0 - xpad, a->x1 = x1 + xpad, a->y0 = y0 - pad, a->y1 = y1 + pad;
    return 1;
}

/* Picks the corner of the plot rectangle where a legend of w × h covers the fewest data
 * points (and segment midpoints), preferring the upper right. */
static void legend_corner(const axes *a, const plot_panel *p, double w, double h, double *lx,
                          double *ly)
{
    const double m = 8;
    double cx[4] = {a->px + a->pw - w - m, a->px + m, a->px + a->pw - w - m, a->px + m};
    double cy[4] = {a->py + m, a->py + m, a->py + a->ph - h - m, a->py + a->ph - h - m};
    int64_t best = -1;
    for (int c = 0; c < 4; c++) {
        int64_t covered = 0;
        for (int s = 0; s < p->count; s++) {
            const plot_series *ser = &p->series[s];
            double prevx = NAN, prevy = NAN;
            for (int64_t i = 0; i < ser->n; i++) {
                if (!usable(a, ser->x[i], ser->y[i]))
                    continue;
                double x = ax_x(a, ser->x[i]), y = ax_y(a, ser->y[i]);
                for (int k = 0; k < (isnan(prevx) ? 1 : 8); k++) {
                    double t = k / 8.0, sx = isnan(prevx) ? x : prevx + t * (x - prevx),
                           sy = isnan(prevx) ? y : prevy + t * (y - prevy);
                    covered += sx >= cx[c] - 4 && sx <= cx[c] + w + 4 && sy >= cy[c] - 4 &&
                               sy <= cy[c] + h + 4;
                }
                prevx = x, prevy = y;
            }
        }
        if (best < 0 || covered < best) {
            best = covered;
            *lx = cx[c];
            *ly = cy[c];
        }
    }
}

static void draw_panel(cairo_t *cr, const plot_panel *p, double x, double y, double w, double h)
{
    axes a = {.log_y = p->log_y};
    plot_font(cr, TICK_FONT, 0);
    double left = 62 + (p->ylabel ? 8 : 0), right = 18, top = p->title ? 30 : 14, bottom = 48;
    a.px = x + left, a.py = y + top, a.pw = w - left - right, a.ph = h - top - bottom;
    if (a.pw < 20 || a.ph < 20)
        return;
    if (!panel_range(p, &a)) {
        a.x0 = 0, a.x1 = 1, a.y0 = 0, a.y1 = 1, a.log_y = 0;
        plot_draw_axes(cr, &a, p->title, p->xlabel, p->ylabel, 1);
        plot_font(cr, LABEL_FONT, 0);
        plot_set_rgb(cr, 0x777777);
        plot_text(cr, a.px + a.pw / 2, a.py + a.ph / 2, "no data", 0.5, 0.5);
        return;
    }
    plot_draw_axes(cr, &a, p->title, p->xlabel, p->ylabel, 1);

    cairo_save(cr);
    cairo_rectangle(cr, a.px, a.py, a.pw, a.ph);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (int s = 0; s < p->count; s++) {
        const plot_series *ser = &p->series[s];
        int64_t used = 0;
        plot_set_rgb(cr, plot_class_base(s));
        cairo_set_line_width(cr, 2);
        cairo_new_path(cr);
        for (int64_t i = 0; i < ser->n; i++) {
            if (!usable(&a, ser->x[i], ser->y[i]))
                continue;
            double px = ax_x(&a, ser->x[i]), py = ax_y(&a, ser->y[i]);
            if (used++)
                cairo_line_to(cr, px, py);
            else
                cairo_move_to(cr, px, py);
        }
        cairo_stroke(cr);
        if (used <= 40) /* few points: mark each, so that a single epoch still shows */
            for (int64_t i = 0; i < ser->n; i++)
                if (usable(&a, ser->x[i], ser->y[i])) {
                    cairo_arc(cr, ax_x(&a, ser->x[i]), ax_y(&a, ser->y[i]), 3, 0, 2 * PI);
                    cairo_fill(cr);
                }
    }
    cairo_restore(cr);

    /* legend: a line sample and the label per series, on a white box */
    plot_font(cr, TICK_FONT + 0.5, 0);
    double lw = 0, row = 17, sample = 24;
    int shown = 0;
    for (int s = 0; s < p->count; s++)
        if (p->series[s].label) {
            lw = fmax(lw, plot_text_width(cr, p->series[s].label));
            shown++;
        }
    if (!shown)
        return;
    double bw = lw + sample + 22, bh = shown * row + 8, lx = a.px, ly = a.py;
    legend_corner(&a, p, bw, bh, &lx, &ly);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_rectangle(cr, lx, ly, bw, bh);
    cairo_fill_preserve(cr);
    plot_set_rgb(cr, 0xBBBBBB);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int s = 0, r = 0; s < p->count; s++) {
        if (!p->series[s].label)
            continue;
        double yy = ly + 4 + r++ * row + row / 2;
        plot_set_rgb(cr, plot_class_base(s));
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, lx + 7, yy);
        cairo_line_to(cr, lx + 7 + sample, yy);
        cairo_stroke(cr);
        plot_set_rgb(cr, 0x222222);
        plot_text(cr, lx + sample + 13, yy, p->series[s].label, 0, 0.5);
    }
}

nb_status plot_lines(const char *path, const char *title, const plot_panel *panels, int count,
                     int width, int height, nb_error *err)
{
    if (count < 1)
        return nb_error_set(err, NB_EINVAL, "%s: nothing to plot", path);
    cairo_surface_t *surface;
    cairo_t *cr;
    nb_status s = plot_start(width, height, &surface, &cr, err);
    if (s)
        return s;
    double top = 0;
    if (title) {
        plot_font(cr, TITLE_FONT + 1, 1);
        plot_set_rgb(cr, 0x111111);
        plot_text(cr, width / 2.0, 10, title, 0.5, 0);
        top = 34;
    }
    double w = (double)width / count;
    for (int i = 0; i < count; i++)
        draw_panel(cr, &panels[i], i * w, top, w, height - top);
    return plot_finish(surface, cr, path, err);
}

nb_status plot_training_curves(const char *path, const char *title, const plot_history *h,
                               nb_error *err)
{
    int n = h->n; /* 0 (a resumed run that had nothing left to do): empty axes */
    double *buf = malloc((size_t)(n ? n : 1) * 5 * sizeof *buf);
    if (!buf)
        return nb_error_set(err, NB_ENOMEM, "out of memory for the training curves");
    double *epoch = buf, *tl = buf + n, *ta = buf + 2 * n, *vl = buf + 3 * n, *va = buf + 4 * n;
    int have_val = 0;
    for (int i = 0; i < n; i++) {
        const nb_epoch_stats *e = &h->stats[i];
        epoch[i] = e->epoch;
        tl[i] = e->train_loss;
        ta[i] = 100 * e->train_accuracy;
        vl[i] = e->val_loss;
        va[i] = 100 * e->val_accuracy;
        have_val |= !isnan(e->val_loss);
    }
    plot_series loss[2] = {{"training", epoch, tl, n}, {"validation", epoch, vl, n}};
    plot_series acc[2] = {{"training", epoch, ta, n}, {"validation", epoch, va, n}};
    plot_panel panels[2] = {
        {"loss (cross-entropy)", "epoch", "loss", loss, 1 + have_val, 0},
        {"accuracy", "epoch", "accuracy (%)", acc, 1 + have_val, 0},
    };
    nb_status s = plot_lines(path, title, panels, 2, 1100, 440, err);
    free(buf);
    return s;
}

#endif /* NB_HAVE_CAIRO */
