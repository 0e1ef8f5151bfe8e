/* The axes of a chart: where the ticks go on linear and logarithmic axes, how they are labelled,
 * and drawing the frame, grid, ticks and labels around a plot rectangle (plot_draw.h). The tick
 * arithmetic needs no cairo. */
#include "plot_draw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Multiples of a "nice" step (1, 2 or 5 × 10^k) within [lo, hi], about `want` of them.
 * Returns the count; *step receives the step. */
static int nice_ticks(double lo, double hi, int want, double *at, double *step)
{
    double rough = (hi - lo) / want, mag = pow(10, floor(log10(rough))), norm = rough / mag;
    *step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    int n = 0;
    for (double k = ceil(lo / *step - 1e-9); n < MAX_TICKS && k * *step <= hi + 1e-9 * *step; k++)
        at[n++] = k * *step;
    return n;
}

/* A linear tick: as many decimals as the step needs, never "-0.0" nor "2.8e-17". */
static void linear_label(char *buf, size_t size, double v, double step)
{
    if (fabs(v) < step * 1e-6)
        v = 0;
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6 || fabs(v) >= 1e6)
        snprintf(buf, size, "%g", v);
    else
        snprintf(buf, size, "%.*f", decimals, v);
}

/* m·10^k on a log axis: plain decimals ("0.002", "5000") when the whole axis stays within
 * 0.001 to 10000 (plain), else "10⁻⁶" or "2×10⁻⁶" on every tick — never "2e-06" nor a row of
 * zeros, and one style per axis. */
static void log_label(char *buf, size_t size, int m, int k, int plain)
{
    if (plain) {
        snprintf(buf, size, "%.*f", k < 0 ? -k : 0, m * pow(10, k));
        return;
    }
    static const char *const sup[10] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
    char exp[16] = "", digits[16]; /* a double's exponents have at most 3 digits: ≤ 12 bytes */
    snprintf(digits, sizeof digits, "%d", k < 0 ? -k : k);
    if (k < 0)
        strcat(exp, "⁻");
    for (const char *d = digits; *d && strlen(exp) + 3 < sizeof exp; d++)
        strcat(exp, sup[*d - '0']);
    if (m == 1)
        snprintf(buf, size, "10%s", exp);
    else
        snprintf(buf, size, "%d×10%s", m, exp);
}

/* Log axis, [lo, hi] in decades (log10 of the data). Over many decades: a tick per decade,
 * labelled every d-th so that about `want` labels fit, with unlabelled ticks at 2…9 while the
 * decades are few enough to show them. Over a decade or two: 1, 2 and 5 in each decade, or all
 * of 1…9. Within less than that, where fewer than three such ticks fall: plain nice steps of
 * the values themselves (0.35, 0.4, 0.45), so a narrow range still reads. */
static int log_ticks(double lo, double hi, int want, plot_tick *t)
{
    double decades = hi - lo;
    int every = decades > want ? (int)ceil(decades / want) : 1, n = 0;
    const int *labelled, all[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, some[3] = {1, 2, 5}, one[1] = {1};
    int nlabelled;
    if (decades * 3 <= want)
        labelled = some, nlabelled = 3;
    else
        labelled = one, nlabelled = 1;
    int plain = floor(lo + 1e-9) >= -3 && ceil(hi - 1e-9) <= 4;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (int k = (int)floor(lo); k <= (int)ceil(hi) && n < MAX_TICKS; k++)
            for (int m = 1; m <= 9 && n < MAX_TICKS; m++) {
                double at = k + log10(m);
                if (at < lo - 1e-9 || at > hi + 1e-9)
                    continue;
                int label = 0;
                for (int i = 0; i < nlabelled; i++)
                    label |= labelled[i] == m;
                label &= m > 1 || (k % every + every) % every == 0;
                if (!label && decades > 4)
                    continue; /* many decades: no minor ticks, they would blur */
                t[n].at = at;
                if (label)
                    log_label(t[n].label, sizeof t[n].label, m, k, plain);
                else
                    t[n].label[0] = '\0';
                n++;
            }
        int shown = 0;
        for (int i = 0; i < n; i++)
            shown += t[i].label[0] != '\0';
        if (shown >= 3 || labelled == all)
            break;
        labelled = all, nlabelled = 9; /* a decade or less: try every multiple */
    }
    int shown = 0;
    for (int i = 0; i < n; i++)
        shown += t[i].label[0] != '\0';
    if (shown >= 3)
        return n;
    /* less than a decade: nice steps of the values */
    double at[MAX_TICKS], step;
    int m = nice_ticks(pow(10, lo), pow(10, hi), want > 5 ? want * 2 / 3 : want, at, &step);
    n = 0;
    for (int i = 0; i < m; i++)
        if (at[i] > 0) {
            t[n].at = log10(at[i]);
            linear_label(t[n].label, sizeof t[n].label, at[i], step);
            n++;
        }
    return n;
}

int plot_axis_ticks(double lo, double hi, int log_axis, int want, plot_tick *ticks)
{
    if (log_axis)
        return log_ticks(lo, hi, want, ticks);
    double at[MAX_TICKS], step;
    int n = nice_ticks(lo, hi, want, at, &step);
    for (int i = 0; i < n; i++) {
        ticks[i].at = at[i];
        linear_label(ticks[i].label, sizeof ticks[i].label, at[i], step);
    }
    return n;
}

int plot_whole_ticks(double lo, double hi, int want, plot_tick *ticks)
{
    double at[MAX_TICKS], step;
    int n = nice_ticks(lo, hi, want, at, &step);
    if (step < 1) { /* 1, 2, 3, … */
        n = 0;
        for (double v = ceil(lo - 1e-9); v <= hi + 1e-9 && n < MAX_TICKS; v++)
            at[n++] = v;
        step = 1;
    }
    for (int i = 0; i < n; i++) {
        ticks[i].at = at[i];
        linear_label(ticks[i].label, sizeof ticks[i].label, at[i], step);
    }
    return n;
}

#ifdef NB_HAVE_CAIRO

void plot_draw_axes(cairo_t *cr, const axes *a, const char *title, const char *xlabel,
                    const char *ylabel, int grid)
{
    plot_tick xt[MAX_TICKS], yt[MAX_TICKS];
    int want_x = a->pw > 360 ? 8 : 5;
    int nx = a->x_whole ? plot_whole_ticks(a->x0, a->x1, want_x, xt)
                        : plot_axis_ticks(a->x0, a->x1, 0, want_x, xt);
    int want_y = a->log_y ? (int)fmax(3, a->ph / 40) : a->ph > 300 ? 7 : 5;
    int ny = plot_axis_ticks(a->y0, a->y1, a->log_y, want_y, yt);
    cairo_save(cr);
    cairo_set_line_width(cr, 1);
    if (grid) { /* at the labelled ticks */
        plot_set_rgb(cr, 0xE6E6E6);
        for (int i = 0; i < nx; i++) {
            double x = floor(ax_x(a, xt[i].at)) + 0.5;
            cairo_move_to(cr, x, a->py);
            cairo_line_to(cr, x, a->py + a->ph);
        }
        for (int i = 0; i < ny; i++) {
            if (!yt[i].label[0])
                continue;
            double y = floor(a->py + a->ph - (yt[i].at - a->y0) / (a->y1 - a->y0) * a->ph) + 0.5;
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
        double x = floor(ax_x(a, xt[i].at)) + 0.5, y = a->py + a->ph;
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x, y + 4);
        cairo_stroke(cr);
        plot_text(cr, x, y + 6, xt[i].label, 0.5, 0);
    }
    for (int i = 0; i < ny; i++) {
        double y = floor(a->py + a->ph - (yt[i].at - a->y0) / (a->y1 - a->y0) * a->ph) + 0.5;
        cairo_move_to(cr, a->px - (yt[i].label[0] ? 4 : 2), y);
        cairo_line_to(cr, a->px, y);
        cairo_stroke(cr);
        if (!yt[i].label[0])
            continue;
        plot_text(cr, a->px - 6, y, yt[i].label, 1, 0.5);
        ylabel_room = fmax(ylabel_room, plot_text_width(cr, yt[i].label));
    }
    plot_font(cr, LABEL_FONT, 0);
    if (xlabel)
        plot_text_fit(cr, a->px + a->pw / 2, a->py + a->ph + 24, xlabel, 0.5, 0, a->pw);
    if (ylabel) {
        cairo_save(cr);
        cairo_translate(cr, a->px - ylabel_room - 12, a->py + a->ph / 2);
        cairo_rotate(cr, -PI / 2);
        plot_text_fit(cr, 0, 0, ylabel, 0.5, 1, a->ph);
        cairo_restore(cr);
    }
    if (title) {
        plot_font(cr, TITLE_FONT - 1, 1);
        plot_text_fit(cr, a->px + a->pw / 2, a->py - 8, title, 0.5, 1, a->pw + 40);
    }
    cairo_restore(cr);
}

#endif /* NB_HAVE_CAIRO */
