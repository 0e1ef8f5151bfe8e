/* Pictures with cairo (see plot.h): the colours, the training history, and what every picture
 * shares — text, a white surface to draw on, and writing it as PNG. cairo draws, and
 * cairo_surface_write_to_png encodes; nabla writes no image format of its own. The axes are in
 * plot_axes.c, line charts in plot_lines.c, decision regions in plot_regions.c. */
#include "csv_table.h"
#include "plot_draw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_CAIRO
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

nb_status plot_history_read_log(plot_history *h, const char *path, int upto, nb_error *err)
{
    csv_table t;
    nb_status s = csv_table_read(path, NULL, &t, err);
    if (s)
        return s;
    int epoch = -1, col[7];
    static const char *const names[7] = {"step", "lr", "train_loss", "train_accuracy",
                                         "val_loss", "val_accuracy", "seconds"};
    for (int i = 0; i < t.cols; i++)
        if (strcmp(t.names[i], "epoch") == 0)
            epoch = i;
    for (int k = 0; k < 7; k++) {
        col[k] = -1;
        for (int i = 0; i < t.cols; i++)
            if (strcmp(t.names[i], names[k]) == 0)
                col[k] = i;
    }
    if (epoch < 0)
        s = nb_error_set(err, NB_EFORMAT, "%s: not a training log (no column 'epoch')", path);
    for (int e = 1; !s && e <= upto; e++) {
        int64_t row = -1;
        for (int64_t r = 0; r < t.rows; r++)
            if (t.v[r * t.cols + epoch] == e)
                row = r;
        if (row < 0)
            continue; /* not logged: a gap in the curves */
        double v[7];
        for (int k = 0; k < 7; k++)
            v[k] = col[k] >= 0 ? t.v[row * t.cols + col[k]] : NAN;
        nb_epoch_stats st = {.epoch = e, .step = isfinite(v[0]) ? (int64_t)v[0] : 0, .lr = v[1],
                             .train_loss = v[2], .train_accuracy = v[3], .val_loss = v[4],
                             .val_accuracy = v[5], .seconds = v[6], .samples_per_second = NAN};
        s = plot_history_add(h, &st, err);
    }
    csv_table_free(&t);
    return s;
}

void plot_history_free(plot_history *h)
{
    free(h->stats);
    memset(h, 0, sizeof *h);
}

#ifndef NB_HAVE_CAIRO

nb_status plot_check(nb_error *err) { return nb_error_set(err, NB_ENOTSUP, "%s", PLOT_UNAVAILABLE); }

#else /* NB_HAVE_CAIRO */

nb_status plot_check(nb_error *err)
{
    (void)err;
    return NB_OK;
}

void plot_set_rgb(cairo_t *cr, uint32_t rgb)
{
    cairo_set_source_rgb(cr, (rgb >> 16 & 0xFF) / 255.0, (rgb >> 8 & 0xFF) / 255.0,
                         (rgb & 0xFF) / 255.0);
}

void plot_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double plot_text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

void plot_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double h = fe.ascent + fe.descent;
    cairo_move_to(cr, x - ax * plot_text_width(cr, s), y - ay * h + fe.ascent);
    cairo_show_text(cr, s);
}

void plot_text_fit(cairo_t *cr, double x, double y, const char *s, double ax, double ay,
                   double max_width)
{
    cairo_matrix_t m;
    cairo_get_font_matrix(cr, &m);
    double size = m.yy, min = 9; /* the size plot_font set */
    while (plot_text_width(cr, s) > max_width && size > min) {
        size = fmax(min, size - 0.5);
        cairo_set_font_size(cr, size);
    }
    if (plot_text_width(cr, s) <= max_width) {
        plot_text(cr, x, y, s, ax, ay);
        return;
    }
    /* still too wide: keep the start and the end, "…" between, cut at characters (UTF-8) */
    size_t len = strlen(s), keep = len;
    char buf[1024];
    while (keep > 2) {
        keep = keep * 9 / 10;
        size_t head = keep / 2, tail = keep - head;
        while (head > 0 && ((unsigned char)s[head] & 0xC0) == 0x80)
            head--;
        while (tail > 0 && ((unsigned char)s[len - tail] & 0xC0) == 0x80)
            tail--;
        snprintf(buf, sizeof buf, "%.*s…%s", (int)head, s, s + len - tail);
        if (plot_text_width(cr, buf) <= max_width)
            break;
    }
    plot_text(cr, x, y, keep > 2 ? buf : "…", ax, ay);
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

/* cairo's PNG encoder hands its output here, into the atomic file (nb_atomic_open) */
typedef struct png_sink {
    nb_atomic_file *af;
    nb_error *err;
    nb_status status;
} png_sink;

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int length)
{
    png_sink *sink = closure;
    if (!sink->status)
        sink->status = nb_atomic_write(sink->af, data, length, sink->err);
    return sink->status ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

nb_status plot_finish(cairo_surface_t *surface, cairo_t *cr, const char *path, nb_error *err)
{
    nb_status s = NB_OK;
    cairo_status_t cs = cairo_status(cr);
    if (cs == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(surface);
        /* written beside PATH and renamed over it when complete: a failed write leaves the
         * previous picture */
        png_sink sink = {.af = nb_atomic_open(path, err), .err = err};
        if (!sink.af)
            s = NB_EIO;
        else {
            cs = cairo_surface_write_to_png_stream(surface, png_write, &sink);
            if (sink.status || cs != CAIRO_STATUS_SUCCESS) {
                s = sink.status;
                nb_atomic_abort(sink.af);
            } else
                s = nb_atomic_commit(sink.af, err);
        }
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

nb_status plot_start(int width, int height, cairo_surface_t **surface, cairo_t **cr,
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

#endif /* NB_HAVE_CAIRO */
