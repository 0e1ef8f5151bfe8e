/* Pictures with cairo: line charts and decision regions (see plot.h). cairo draws, and
 * cairo_surface_write_to_png encodes; nabla writes no image format of its own.
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
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_CAIRO
#include <cairo.h>
#include <dlfcn.h>
#endif

/* Tableau 10: distinguishable, and readable by most colour-blind viewers. */
static const uint32_t palette[10] = {0x4E79A7, 0xF28E2B, 0xE15759, 0x76B7B2, 0x59A14F,
                                     0xEDC948, 0xB07AA1, 0xFF9DA7, 0x9C755F, 0xBAB0AC};

uint32_t plot_class_base(int k)
{
    if (k >= 0 && k < 10)
        return palette[k];
    /* beyond ten classes: hues spread by the golden angle, mid saturation and value */
    double h = fmod(k * 137.508, 360.0) / 60.0, s = 0.55, v = 0.80, c = v * s;
    double x = c * (1 - fabs(fmod(h, 2.0) - 1)), m = v - c, rgb[3];
    int sector = (int)h;
    double table[6][3] = {{c, x, 0}, {x, c, 0}, {0, c, x}, {0, x, c}, {x, 0, c}, {c, 0, x}};
    for (int i = 0; i < 3; i++)
        rgb[i] = table[sector % 6][i] + m;
    return (uint32_t)(rgb[0] * 255 + 0.5) << 16 | (uint32_t)(rgb[1] * 255 + 0.5) << 8 |
           (uint32_t)(rgb[2] * 255 + 0.5);
}

/* Integer arithmetic, so that a test can recompute the exact colours. */
static uint32_t map_channels(uint32_t rgb, int num, int den, int towards)
{
    uint32_t out = 0;
    for (int shift = 16; shift >= 0; shift -= 8) {
        int c = (int)(rgb >> shift & 0xFF);
        c += (towards - c) * num / den;
        out |= (uint32_t)c << shift;
    }
    return out;
}
uint32_t plot_class_region(int k) { return map_channels(plot_class_base(k), 11, 20, 255); }
uint32_t plot_class_point(int k) { return map_channels(plot_class_base(k), 1, 4, 0); }

nb_status plot_history_add(plot_history *h, const nb_epoch_stats *s, nb_error *err)
{
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        nb_epoch_stats *p = realloc(h->stats, (size_t)cap * sizeof *p);
        if (!p)
            return nb_error_set(err, NB_ENOMEM, "out of memory for the training curves");
        h->stats = p;
        h->cap = cap;
    }
    h->stats[h->n++] = *s;
    return NB_OK;
}

void plot_history_free(plot_history *h)
{
    free(h->stats);
    memset(h, 0, sizeof *h);
}

#ifndef NB_HAVE_CAIRO

nb_status plot_check(nb_error *err) { return nb_error_set(err, NB_ENOTSUP, "%s", PLOT_UNAVAILABLE); }

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

nb_status plot_regions(const char *path, nb_model *m, const nb_dataset *ds,
                       const plot_regions_options *opt, nb_error *err)
{
    (void)path, (void)m, (void)ds, (void)opt;
    return plot_check(err);
}

#else /* NB_HAVE_CAIRO */

nb_status plot_check(nb_error *err)
{
    (void)err;
    return NB_OK;
}

#define FONT "DejaVu Sans"
#define TICK_FONT 11.0
#define LABEL_FONT 12.5
#define TITLE_FONT 14.0
#define MAX_TICKS 64
#define PI 3.14159265358979323846

static void set_rgb(cairo_t *cr, uint32_t rgb)
{
    cairo_set_source_rgb(cr, (rgb >> 16 & 0xFF) / 255.0, (rgb >> 8 & 0xFF) / 255.0,
                         (rgb & 0xFF) / 255.0);
}

static void font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Draws s with its anchor at (x, y): ax = 0, ½, 1 for left, centre, right; ay likewise for
 * top, middle, bottom of the font's ascent/descent box. */
static void text(cairo_t *cr, double x, double y, const char *s, double ax, double ay)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double h = fe.ascent + fe.descent;
    cairo_move_to(cr, x - ax * text_width(cr, s), y - ay * h + fe.ascent);
    cairo_show_text(cr, s);
}

/* ---- axes ---------------------------------------------------------------------------------- */

typedef struct axes {
    double px, py, pw, ph; /* the plot rectangle */
    double x0, x1, y0, y1; /* data range; log10 of it on a log y axis */
    int log_y;
} axes;

static double ax_x(const axes *a, double v) { return a->px + (v - a->x0) / (a->x1 - a->x0) * a->pw; }
static double ax_y(const axes *a, double v)
{
    if (a->log_y)
        v = log10(v);
    return a->py + a->ph - (v - a->y0) / (a->y1 - a->y0) * a->ph;
}

/* Ticks at multiples of a "nice" step (1, 2 or 5 × 10^k) within [lo, hi], about `want` of
 * them. Returns the count; *step receives the step. */
static int nice_ticks(double lo, double hi, int want, double *ticks, double *step)
{
    double rough = (hi - lo) / want, mag = pow(10, floor(log10(rough))), norm = rough / mag;
    *step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    int n = 0;
    for (double k = ceil(lo / *step - 1e-9); n < MAX_TICKS && k * *step <= hi + 1e-9 * *step; k++)
        ticks[n++] = k * *step;
    return n;
}

static void tick_label(char *buf, size_t size, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0; /* not "-0.0" nor "2.8e-17" */
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6 || fabs(v) >= 1e6)
        snprintf(buf, size, "%g", v);
    else
        snprintf(buf, size, "%.*f", decimals, v);
}

/* Log axis ticks: every decade, and 2× and 5× when the range spans few decades. */
static int log_ticks(double lo, double hi, double *ticks, int *minor)
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

static void log_label(char *buf, size_t size, double t)
{
    double v = pow(10, t);
    int k = (int)floor(t + 1e-9);
    if (k >= -4 && k <= 5)
        snprintf(buf, size, "%g", v);
    else
        snprintf(buf, size, "%.0fe%d", v / pow(10, k), k);
}

/* Frame, ticks, tick labels, axis labels and title around a's rectangle; grid lines at the
 * ticks when `grid`. */
static void draw_axes(cairo_t *cr, const axes *a, const char *title, const char *xlabel,
                      const char *ylabel, int grid)
{
    double xt[MAX_TICKS], yt[MAX_TICKS], xstep, ystep = 0;
    int yminor[MAX_TICKS] = {0};
    int nx = nice_ticks(a->x0, a->x1, a->pw > 360 ? 8 : 5, xt, &xstep);
    int ny = a->log_y ? log_ticks(a->y0, a->y1, yt, yminor)
                      : nice_ticks(a->y0, a->y1, a->ph > 300 ? 7 : 5, yt, &ystep);
    char buf[64];
    cairo_save(cr);
    cairo_set_line_width(cr, 1);
    if (grid) {
        set_rgb(cr, 0xE6E6E6);
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
    set_rgb(cr, 0x333333);
    cairo_rectangle(cr, floor(a->px) + 0.5, floor(a->py) + 0.5, floor(a->pw), floor(a->ph));
    cairo_stroke(cr);
    font(cr, TICK_FONT, 0);
    double ylabel_room = 0;
    for (int i = 0; i < nx; i++) {
        double x = floor(ax_x(a, xt[i])) + 0.5, y = a->py + a->ph;
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x, y + 4);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, xt[i], xstep);
        text(cr, x, y + 6, buf, 0.5, 0);
    }
    for (int i = 0; i < ny; i++) {
        double y = floor(a->py + a->ph - (yt[i] - a->y0) / (a->y1 - a->y0) * a->ph) + 0.5;
        cairo_move_to(cr, a->px - (yminor[i] ? 2 : 4), y);
        cairo_line_to(cr, a->px, y);
        cairo_stroke(cr);
        if (a->log_y && yminor[i] && ny > 6)
            continue; /* label 2× and 5× only when there is room */
        if (a->log_y)
            log_label(buf, sizeof buf, yt[i]);
        else
            tick_label(buf, sizeof buf, yt[i], ystep);
        text(cr, a->px - 6, y, buf, 1, 0.5);
        double w = text_width(cr, buf);
        ylabel_room = w > ylabel_room ? w : ylabel_room;
    }
    font(cr, LABEL_FONT, 0);
    if (xlabel)
        text(cr, a->px + a->pw / 2, a->py + a->ph + 24, xlabel, 0.5, 0);
    if (ylabel) {
        cairo_save(cr);
        cairo_translate(cr, a->px - ylabel_room - 12, a->py + a->ph / 2);
        cairo_rotate(cr, -PI / 2);
        text(cr, 0, 0, ylabel, 0.5, 1);
        cairo_restore(cr);
    }
    if (title) {
        font(cr, TITLE_FONT - 1, 1);
        text(cr, a->px + a->pw / 2, a->py - 8, title, 0.5, 1);
    }
    cairo_restore(cr);
}

/* cairo finds fonts through fontconfig, which keeps its configuration until FcFini; cairo
 * never calls that, and nabla does not link fontconfig itself, so it is looked up in the
 * already loaded library. Without this a leak checker reports fontconfig's memory at exit. */
static void release_fontconfig(void)
{
    void *lib = dlopen("libfontconfig.so.1", RTLD_LAZY);
    if (!lib)
        return;
    void (*fini)(void);
    *(void **)&fini = dlsym(lib, "FcFini"); /* the POSIX idiom for a function pointer */
    if (fini)
        fini();
    dlclose(lib);
}

static nb_status finish(cairo_surface_t *surface, cairo_t *cr, const char *path, nb_error *err)
{
    nb_status s = NB_OK;
    cairo_status_t cs = cairo_status(cr);
    if (cs == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(surface);
        errno = 0;
        cs = cairo_surface_write_to_png(surface, path);
        if (cs == CAIRO_STATUS_WRITE_ERROR)
            s = nb_error_set(err, NB_EIO, "%s: cannot write the picture: %s", path,
                             errno ? strerror(errno) : cairo_status_to_string(cs));
    }
    if (cs != CAIRO_STATUS_SUCCESS && !s)
        s = nb_error_set(err, cs == CAIRO_STATUS_NO_MEMORY ? NB_ENOMEM : NB_EIO,
                         "%s: cairo: %s", path, cairo_status_to_string(cs));
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    /* frees cairo's font and pattern caches, so leak checkers see a clean exit */
    cairo_debug_reset_static_data();
    release_fontconfig();
    return s;
}

static nb_status start(int width, int height, cairo_surface_t **surface, cairo_t **cr,
                       nb_error *err)
{
    if (width < 64 || height < 64 || width > 16384 || height > 16384)
        return nb_error_set(err, NB_EINVAL, "picture size %d×%d: expected 64 to 16384 pixels "
                            "a side", width, height);
    *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    *cr = cairo_create(*surface);
    if (cairo_status(*cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(*cr);
        cairo_surface_destroy(*surface);
        return nb_error_set(err, NB_ENOMEM, "cairo: cannot create a %d×%d picture", width, height);
    }
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return NB_OK;
}

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
    font(cr, TICK_FONT, 0);
    double left = 62 + (p->ylabel ? 8 : 0), right = 18, top = p->title ? 30 : 14, bottom = 48;
    a.px = x + left, a.py = y + top, a.pw = w - left - right, a.ph = h - top - bottom;
    if (a.pw < 20 || a.ph < 20)
        return;
    if (!panel_range(p, &a)) {
        a.x0 = 0, a.x1 = 1, a.y0 = 0, a.y1 = 1, a.log_y = 0;
        draw_axes(cr, &a, p->title, p->xlabel, p->ylabel, 1);
        font(cr, LABEL_FONT, 0);
        set_rgb(cr, 0x777777);
        text(cr, a.px + a.pw / 2, a.py + a.ph / 2, "no data", 0.5, 0.5);
        return;
    }
    draw_axes(cr, &a, p->title, p->xlabel, p->ylabel, 1);

    cairo_save(cr);
    cairo_rectangle(cr, a.px, a.py, a.pw, a.ph);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (int s = 0; s < p->count; s++) {
        const plot_series *ser = &p->series[s];
        int64_t used = 0;
        set_rgb(cr, plot_class_base(s));
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
    font(cr, TICK_FONT + 0.5, 0);
    double lw = 0, row = 17, sample = 24;
    int shown = 0;
    for (int s = 0; s < p->count; s++)
        if (p->series[s].label) {
            lw = fmax(lw, text_width(cr, p->series[s].label));
            shown++;
        }
    if (!shown)
        return;
    double bw = lw + sample + 22, bh = shown * row + 8, lx = a.px, ly = a.py;
    legend_corner(&a, p, bw, bh, &lx, &ly);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_rectangle(cr, lx, ly, bw, bh);
    cairo_fill_preserve(cr);
    set_rgb(cr, 0xBBBBBB);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int s = 0, r = 0; s < p->count; s++) {
        if (!p->series[s].label)
            continue;
        double yy = ly + 4 + r++ * row + row / 2;
        set_rgb(cr, plot_class_base(s));
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, lx + 7, yy);
        cairo_line_to(cr, lx + 7 + sample, yy);
        cairo_stroke(cr);
        set_rgb(cr, 0x222222);
        text(cr, lx + sample + 13, yy, p->series[s].label, 0, 0.5);
    }
}

nb_status plot_lines(const char *path, const char *title, const plot_panel *panels, int count,
                     int width, int height, nb_error *err)
{
    if (count < 1)
        return nb_error_set(err, NB_EINVAL, "%s: nothing to plot", path);
    cairo_surface_t *surface;
    cairo_t *cr;
    nb_status s = start(width, height, &surface, &cr, err);
    if (s)
        return s;
    double top = 0;
    if (title) {
        font(cr, TITLE_FONT + 1, 1);
        set_rgb(cr, 0x111111);
        text(cr, width / 2.0, 10, title, 0.5, 0);
        top = 34;
    }
    double w = (double)width / count;
    for (int i = 0; i < count; i++)
        draw_panel(cr, &panels[i], i * w, top, w, height - top);
    return finish(surface, cr, path, err);
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

/* ---- decision regions ---------------------------------------------------------------------- */

/* The plane coordinates of pixel i's centre along one axis of S pixels over [lo, hi]. One
 * function for the grid and the pixel map, so both give the same float. */
static float pixel_centre(double lo, double hi, int S, int i)
{
    return (float)(lo + (hi - lo) * (i + 0.5) / S);
}

static void plane_extent(const nb_dataset *ds, const plot_regions_options *opt, double e[4])
{
    if (opt->have_extent) {
        memcpy(e, opt->extent, 4 * sizeof *e);
        return;
    }
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int64_t i = 0; ds && i < ds->count; i++)
        for (int k = 0; k < 2; k++) {
            double v = ds->f32 ? ds->f32[2 * i + k] : ds->u8[2 * i + k];
            if (isfinite(v))
                lo[k] = fmin(lo[k], v), hi[k] = fmax(hi[k], v);
        }
    if (!(lo[0] <= hi[0])) {
        lo[0] = lo[1] = -1, hi[0] = hi[1] = 1;
    }
    /* equal scales on both axes (a circle stays round), 8 % margin around the points */
    double half = 0.5 * fmax(fmax(hi[0] - lo[0], hi[1] - lo[1]), 1e-6) * 1.16;
    for (int k = 0; k < 2; k++) {
        double c = 0.5 * (lo[k] + hi[k]);
        e[2 * k] = c - half;
        e[2 * k + 1] = c + half;
    }
}

/* Class names from the model ("a,b,c"), or "class k". */
static void class_name(const char *names, int k, char *buf, size_t size)
{
    for (int i = 0; names && *names; i++) {
        const char *end = strchr(names, ',');
        size_t len = end ? (size_t)(end - names) : strlen(names);
        if (i == k) {
            snprintf(buf, size, "%.*s", (int)(len < size - 1 ? len : size - 1), names);
            return;
        }
        if (!end)
            break;
        names = end + 1;
    }
    snprintf(buf, size, "class %d", k);
}

static nb_status write_pixel_map(const char *path, const nb_dataset *ds, const double e[4],
                                 const axes *a, int S, nb_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return nb_error_set(err, NB_EIO, "%s: %s", path, strerror(errno));
    fprintf(f, "x0,x1,label,px,py,cx0,cx1\n");
    for (int64_t i = 0; i < ds->count; i++) {
        double x = ds->f32 ? ds->f32[2 * i] : ds->u8[2 * i];
        double y = ds->f32 ? ds->f32[2 * i + 1] : ds->u8[2 * i + 1];
        double fx = (x - e[0]) / (e[1] - e[0]) * S, fy = (e[3] - y) / (e[3] - e[2]) * S;
        if (!(fx >= 0 && fx < S && fy >= 0 && fy < S))
            continue;
        int col = (int)fx, row = (int)fy;
        fprintf(f, "%.9g,%.9g,%d,%d,%d,%.9g,%.9g\n", x, y, ds->labels ? ds->labels[i] : -1,
                (int)a->px + col, (int)a->py + row, (double)pixel_centre(e[0], e[1], S, col),
                (double)pixel_centre(e[3], e[2], S, row));
    }
    if (fclose(f) != 0)
        return nb_error_set(err, NB_EIO, "%s: write error", path);
    return NB_OK;
}

nb_status plot_regions(const char *path, nb_model *m, const nb_dataset *ds,
                       const plot_regions_options *opt, nb_error *err)
{
    int S = opt->size;
    int64_t K = nb_model_classes(m);
    if (nb_model_features(m) != 2)
        return nb_error_set(err, NB_ESHAPE, "decision regions need a model with 2 input "
                            "features (a point of the plane); this one takes %lld",
                            (long long)nb_model_features(m));
    if (K < 2)
        return nb_error_set(err, NB_EINVAL, "decision regions need a classifier with at least "
                            "2 classes; this model has %lld outputs", (long long)K);
    if (S < 16 || S > 4096)
        return nb_error_set(err, NB_EINVAL, "region size %d: expected 16 to 4096 pixels", S);
    if (ds && ds->features != 2)
        return nb_error_set(err, NB_ESHAPE, "the points have %lld features, expected 2",
                            (long long)ds->features);
    double e[4];
    plane_extent(ds, opt, e);
    if (!(e[1] > e[0] && e[3] > e[2]))
        return nb_error_set(err, NB_EINVAL, "empty plane [%g, %g] × [%g, %g]", e[0], e[1], e[2],
                            e[3]);

    /* The grid: one sample per pixel centre, row 0 at the top (largest x1). */
    nb_dataset grid = {.count = (int64_t)S * S, .ndim = 1, .dims = {2}, .features = 2,
                       .dtype = NB_F32};
    grid.f32 = malloc((size_t)S * S * 2 * sizeof *grid.f32);
    int32_t *cls = malloc((size_t)S * S * sizeof *cls);
    int32_t *point_cls = ds ? malloc((size_t)ds->count * sizeof *point_cls) : NULL;
    nb_status s = NB_OK;
    if (!grid.f32 || !cls || (ds && !point_cls)) {
        s = nb_error_set(err, NB_ENOMEM, "out of memory for a %d×%d grid", S, S);
        goto done;
    }
    for (int row = 0; row < S; row++)
        for (int col = 0; col < S; col++) {
            float *p = grid.f32 + 2 * ((int64_t)row * S + col);
            p[0] = pixel_centre(e[0], e[1], S, col);
            p[1] = pixel_centre(e[3], e[2], S, row);
        }
    if ((s = nb_model_predict(m, &grid, NULL, grid.count, NULL, cls, err)))
        goto done;
    int64_t correct = 0, labelled = 0;
    if (ds && ds->labels) {
        nb_dataset unlabelled = *ds; /* labels beyond the classes are no error here */
        unlabelled.labels = NULL;
        if ((s = nb_model_predict(m, &unlabelled, NULL, ds->count, NULL, point_cls, err)))
            goto done;
        for (int64_t i = 0; i < ds->count; i++) {
            labelled++;
            correct += point_cls[i] == ds->labels[i];
        }
    }

    /* Layout: plot rectangle S × S; legend column on the right. */
    const char *names = nb_model_classes_text(m);
    char name[128];
    cairo_surface_t *measure = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *mc = cairo_create(measure);
    font(mc, LABEL_FONT, 0);
    double legend_w = 0;
    for (int k = 0; k < K; k++) {
        class_name(names, k, name, sizeof name);
        legend_w = fmax(legend_w, text_width(mc, name));
    }
    char score[64] = "";
    if (labelled) {
        snprintf(score, sizeof score, "%.1f %% of the points right",
                 100.0 * (double)correct / (double)labelled);
        legend_w = fmax(legend_w, text_width(mc, score) - 26);
    }
    cairo_destroy(mc);
    cairo_surface_destroy(measure);
    axes a = {.px = 70, .py = opt->title ? 44 : 16, .pw = S, .ph = S, .x0 = e[0], .x1 = e[1],
              .y0 = e[2], .y1 = e[3]};
    int width = (int)(a.px + S + 24 + 26 + legend_w + 16), height = (int)(a.py + S + 52);
    cairo_surface_t *surface;
    cairo_t *cr;
    if ((s = start(width, height, &surface, &cr, err)))
        goto done;

    /* every pixel of the plane, written directly: exact class colours, no antialiasing */
    cairo_surface_flush(surface);
    unsigned char *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    uint32_t region[1024];
    int64_t ncol = K < 1024 ? K : 1024;
    for (int k = 0; k < ncol; k++)
        region[k] = plot_class_region(k);
    for (int row = 0; row < S; row++) {
        uint32_t *line = (uint32_t *)(void *)(data + (size_t)(a.py + row) * stride) + (int)a.px;
        for (int col = 0; col < S; col++) {
            int32_t c = cls[(int64_t)row * S + col];
            line[col] = c < ncol ? region[c] : 0x808080;
        }
    }
    cairo_surface_mark_dirty(surface);

    draw_axes(cr, &a, NULL, "x[0]", "x[1]", 0);

    if (ds && opt->points) {
        double r = S >= 400 ? 3.5 : 2.8;
        cairo_save(cr);
        cairo_rectangle(cr, a.px, a.py, a.pw, a.ph);
        cairo_clip(cr);
        cairo_set_line_width(cr, 1.2);
        for (int64_t i = 0; i < ds->count; i++) {
            double x = ds->f32 ? ds->f32[2 * i] : ds->u8[2 * i];
            double y = ds->f32 ? ds->f32[2 * i + 1] : ds->u8[2 * i + 1];
            int k = ds->labels ? ds->labels[i] : -1;
            cairo_arc(cr, a.px + (x - e[0]) / (e[1] - e[0]) * S,
                      a.py + (e[3] - y) / (e[3] - e[2]) * S, r, 0, 2 * PI);
            set_rgb(cr, 0xFFFFFF);
            cairo_stroke_preserve(cr);
            set_rgb(cr, k >= 0 ? plot_class_point(k) : 0x222222);
            cairo_fill(cr);
        }
        cairo_restore(cr);
    }

    /* legend: region swatch with a point marker, and the class name */
    double lx = a.px + S + 24, ly = a.py + 4;
    font(cr, LABEL_FONT, 0);
    for (int k = 0; k < K && ly + 22 < a.py + S; k++, ly += 22) {
        cairo_rectangle(cr, lx, ly, 18, 16);
        set_rgb(cr, plot_class_region(k));
        cairo_fill_preserve(cr);
        set_rgb(cr, 0x999999);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        cairo_arc(cr, lx + 9, ly + 8, 3.5, 0, 2 * PI);
        set_rgb(cr, 0xFFFFFF);
        cairo_stroke_preserve(cr);
        set_rgb(cr, plot_class_point(k));
        cairo_fill(cr);
        set_rgb(cr, 0x222222);
        class_name(names, k, name, sizeof name);
        text(cr, lx + 26, ly + 8, name, 0, 0.5);
    }
    if (labelled) {
        font(cr, TICK_FONT, 0);
        set_rgb(cr, 0x444444);
        text(cr, lx, ly + 10, score, 0, 0.5);
    }
    if (opt->title) {
        font(cr, TITLE_FONT, 1);
        set_rgb(cr, 0x111111);
        text(cr, width / 2.0, 12, opt->title, 0.5, 0);
    }
    s = finish(surface, cr, path, err);
    if (!s && opt->pixels && ds)
        s = write_pixel_map(opt->pixels, ds, e, &a, S, err);
done:
    free(grid.f32);
    free(cls);
    free(point_cls);
    return s;
}

#endif /* NB_HAVE_CAIRO */
