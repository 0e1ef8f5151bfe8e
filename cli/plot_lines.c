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
#include <stdio.h>
#include <stdlib.h>

#ifndef NB_HAVE_CAIRO

nb_status plot_lines(const char *path, const char *title, const plot_panel *panels, int count,
                     int width, int height, nb_error *err)
{
    (void)path, (void)title, (void)panels, (void)count, (void)width, (void)height;
    return plot_check(err);
}

nb_status plot_training_curves(const char *path, const char *title, const plot_history *h,
                               double test_loss, double test_accuracy, nb_error *err)
{
    (void)path, (void)title, (void)h, (void)test_loss, (void)test_accuracy;
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
    a->x_whole = 1;
    for (int s = 0; s < p->count; s++)
        for (int64_t i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!usable(a, x, y))
                continue;
            if (a->log_y)
                y = log10(y);
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
            a->x_whole &= x == floor(x); /* epochs, steps: no tick at 2.5 */
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

/* Points of a series that can be drawn; a series with none has no legend entry either. */
static int64_t usable_points(const axes *a, const plot_series *ser)
{
    int64_t n = 0;
    for (int64_t i = 0; i < ser->n; i++)
        n += usable(a, ser->x[i], ser->y[i]);
    return n;
}

/* Does the segment (x0, y0)–(x1, y1) meet the rectangle [rx0, rx1] × [ry0, ry1]?
 * Liang–Barsky: clip the parameter t ∈ [0, 1] of x0 + t·dx against each of the four sides. */
static int segment_meets(double x0, double y0, double x1, double y1, double rx0, double ry0,
                         double rx1, double ry1)
{
    double dx = x1 - x0, dy = y1 - y0, lo = 0, hi = 1;
    const double p[4] = {-dx, dx, -dy, dy}, q[4] = {x0 - rx0, rx1 - x0, y0 - ry0, ry1 - y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0; /* parallel to this side and outside it */
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0)
            lo = fmax(lo, t);
        else
            hi = fmin(hi, t);
        if (lo > hi)
            return 0;
    }
    return 1;
}

/* How many segments and markers of the panel's lines a box at (bx, by) of w × h would touch,
 * with a clearance for the lines' width and the markers' radius. */
static int64_t legend_overlap(const axes *a, const plot_panel *p, double bx, double by, double w,
                              double h)
{
    const double clear = 4;
    double rx0 = bx - clear, ry0 = by - clear, rx1 = bx + w + clear, ry1 = by + h + clear;
    int64_t hits = 0;
    for (int s = 0; s < p->count; s++) {
        const plot_series *ser = &p->series[s];
        int have_prev = 0;
        double px = 0, py = 0;
        for (int64_t i = 0; i < ser->n; i++) {
            if (!usable(a, ser->x[i], ser->y[i]))
                continue; /* the line joins its neighbours across a gap, as drawn */
            double x = ax_x(a, ser->x[i]), y = ax_y(a, ser->y[i]);
            hits += have_prev ? segment_meets(px, py, x, y, rx0, ry0, rx1, ry1)
                              : x >= rx0 && x <= rx1 && y >= ry0 && y <= ry1;
            px = x, py = y, have_prev = 1;
        }
    }
    return hits;
}

/* Where a legend of w × h goes: the first place inside the plot rectangle where it touches no
 * line — the four corners first (upper right, upper left, lower right, lower left), then the
 * positions of a 9 × 9 grid, those nearest an edge first. Returns 1 with (*lx, *ly) set, or 0
 * when every place covers a line. */
static int legend_inside(const axes *a, const plot_panel *p, double w, double h, double *lx,
                         double *ly)
{
    const double m = 8;
    const int steps = 8;
    double free_w = a->pw - w - 2 * m, free_h = a->ph - h - 2 * m;
    if (free_w < 0 || free_h < 0)
        return 0;
    /* grid (i, j): i = 0 at the right, j = 0 at the top; "depth" = steps from the nearest edges */
    for (int depth = 0; depth <= steps; depth++)
        for (int j = 0; j <= steps; j++)
            for (int i = 0; i <= steps; i++) {
                int di = i < steps - i ? i : steps - i, dj = j < steps - j ? j : steps - j;
                int corner = (i == 0 || i == steps) && (j == 0 || j == steps);
                if (depth == 0 ? !corner : corner || di + dj != depth)
                    continue;
                double x = a->px + m + free_w * (steps - i) / steps;
                double y = a->py + m + free_h * j / steps;
                if (legend_overlap(a, p, x, y, w, h) == 0) {
                    *lx = x, *ly = y;
                    return 1;
                }
            }
    return 0;
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

    /* The legend: a line sample and the label per series that has something to draw, on a
     * white box placed where it covers no line; when no such place exists inside the plot
     * rectangle, the rectangle gives up room on its right and the legend sits there. */
    plot_font(cr, TICK_FONT + 0.5, 0);
    double lw = 0, row = 17, sample = 24;
    int shown = 0;
    for (int s = 0; s < p->count; s++)
        if (p->series[s].label && usable_points(&a, &p->series[s])) {
            lw = fmax(lw, plot_text_width(cr, p->series[s].label));
            shown++;
        }
    double bw = ceil(lw + sample + 22), bh = shown * row + 8, lx = 0, ly = 0;
    if (shown && !legend_inside(&a, p, bw, bh, &lx, &ly)) {
        double gap = 10, room = a.pw - bw - gap;
        if (room >= 0.45 * a.pw) {
            a.pw = room;
            lx = a.px + a.pw + gap, ly = a.py;
        } else { /* too narrow to give up room: the upper right, over the lines */
            lx = a.px + a.pw - bw - 8, ly = a.py + 8;
        }
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
        if (used <= 40) /* few points: mark each, so that a single epoch still shows; a lone
                         * point (e.g. the test result) larger */
            for (int64_t i = 0; i < ser->n; i++)
                if (usable(&a, ser->x[i], ser->y[i])) {
                    cairo_arc(cr, ax_x(&a, ser->x[i]), ax_y(&a, ser->y[i]), used == 1 ? 5 : 3, 0,
                              2 * PI);
                    cairo_fill(cr);
                }
    }
    cairo_restore(cr);

    if (!shown)
        return;
    lx = floor(lx) + 0.5, ly = floor(ly) + 0.5; /* a crisp one-pixel border */
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_rectangle(cr, lx, ly, bw, bh);
    cairo_fill_preserve(cr);
    plot_set_rgb(cr, 0xBBBBBB);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int s = 0, r = 0; s < p->count; s++) {
        if (!p->series[s].label || !usable_points(&a, &p->series[s]))
            continue;
        double yy = ly + 4 + r++ * row + row / 2;
        plot_set_rgb(cr, plot_class_base(s));
        if (usable_points(&a, &p->series[s]) == 1) { /* a point, not a line */
            cairo_arc(cr, lx + 7 + sample / 2, yy, 4, 0, 2 * PI);
            cairo_fill(cr);
        } else {
            cairo_set_line_width(cr, 2);
            cairo_move_to(cr, lx + 7, yy);
            cairo_line_to(cr, lx + 7 + sample, yy);
            cairo_stroke(cr);
        }
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
        plot_text_fit(cr, width / 2.0, 10, title, 0.5, 0, width - 20);
        top = 34;
    }
    double w = (double)width / count;
    for (int i = 0; i < count; i++)
        draw_panel(cr, &panels[i], i * w, top, w, height - top);
    return plot_finish(surface, cr, path, err);
}

nb_status plot_training_curves(const char *path, const char *title, const plot_history *h,
                               double test_loss, double test_accuracy, nb_error *err)
{
    int n = h->n; /* 0 (a resumed run that had nothing left to do): empty axes */
    double *buf = malloc((size_t)(n ? n : 1) * 5 * sizeof *buf);
    if (!buf)
        return nb_error_set(err, NB_ENOMEM, "out of memory for the training curves");
    double *epoch = buf, *tl = buf + n, *ta = buf + 2 * n, *vl = buf + 3 * n, *va = buf + 4 * n;
    int have_acc = n == 0; /* a regression has no accuracy: one panel */
    for (int i = 0; i < n; i++) {
        const nb_epoch_stats *e = &h->stats[i];
        epoch[i] = e->epoch;
        tl[i] = e->train_loss;
        ta[i] = 100 * e->train_accuracy;
        vl[i] = e->val_loss;
        va[i] = 100 * e->val_accuracy;
        have_acc |= !isnan(e->train_accuracy);
    }
    /* the test set, evaluated once after the last epoch: one marked point there, its value in
     * the legend (a series without a number — no --test, no validation — has no entry) */
    double last = n ? epoch[n - 1] : 0, test_pct = 100 * test_accuracy;
    char loss_label[64], acc_label[64];
    snprintf(loss_label, sizeof loss_label, "test: %.4f", test_loss);
    snprintf(acc_label, sizeof acc_label, "test: %.2f %%", test_pct);
    plot_series loss[3] = {{"training", epoch, tl, n}, {"validation", epoch, vl, n},
                           {loss_label, &last, &test_loss, n ? 1 : 0}};
    plot_series acc[3] = {{"training", epoch, ta, n}, {"validation", epoch, va, n},
                          {acc_label, &last, &test_pct, n ? 1 : 0}};
    plot_panel panels[2] = {
        {have_acc ? "loss (cross-entropy)" : "loss (mean squared error)", "epoch", "loss", loss,
         3, 0},
        {"accuracy", "epoch", "accuracy (%)", acc, 3, 0},
    };
    nb_status s = plot_lines(path, title, panels, have_acc ? 2 : 1, have_acc ? 1100 : 600, 440,
                             err);
    free(buf);
    return s;
}

#endif /* NB_HAVE_CAIRO */
