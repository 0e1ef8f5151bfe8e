/* Decision regions of a 2-input classifier (see plot.h): every pixel coloured by the class
 * predicted at its centre, the points on top, a legend of the classes beside the plane. */
#include "plot_draw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NB_HAVE_CAIRO

nb_status plot_regions(const char *path, nb_model *m, const nb_dataset *ds,
                       const plot_regions_options *opt, nb_error *err)
{
    (void)path, (void)m, (void)ds, (void)opt;
    return plot_check(err);
}

#else /* NB_HAVE_CAIRO */

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
    nb_atomic_file *f = nb_atomic_open(path, err);
    if (!f)
        return NB_EIO;
    static const char head[] = "x0,x1,label,px,py,cx0,cx1\n";
    nb_status s = nb_atomic_write(f, head, sizeof head - 1, err);
    for (int64_t i = 0; i < ds->count && !s; i++) {
        double x = ds->f32 ? ds->f32[2 * i] : ds->u8[2 * i];
        double y = ds->f32 ? ds->f32[2 * i + 1] : ds->u8[2 * i + 1];
        double fx = (x - e[0]) / (e[1] - e[0]) * S, fy = (e[3] - y) / (e[3] - e[2]) * S;
        if (!(fx >= 0 && fx < S && fy >= 0 && fy < S))
            continue;
        int col = (int)fx, row = (int)fy;
        char line[256];
        int n = snprintf(line, sizeof line, "%.9g,%.9g,%d,%d,%d,%.9g,%.9g\n", x, y,
                         ds->labels ? ds->labels[i] : -1, (int)a->px + col, (int)a->py + row,
                         (double)pixel_centre(e[0], e[1], S, col),
                         (double)pixel_centre(e[3], e[2], S, row));
        s = nb_atomic_write(f, line, (size_t)n, err);
    }
    if (s) {
        nb_atomic_abort(f);
        return s;
    }
    return nb_atomic_commit(f, err);
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
    plot_font(mc, LABEL_FONT, 0);
    double legend_w = 0;
    for (int k = 0; k < K; k++) {
        class_name(names, k, name, sizeof name);
        legend_w = fmax(legend_w, plot_text_width(mc, name));
    }
    char score[64] = "";
    if (labelled) {
        snprintf(score, sizeof score, "%.1f %% of the points right",
                 100.0 * (double)correct / (double)labelled);
        legend_w = fmax(legend_w, plot_text_width(mc, score) - 26);
    }
    cairo_destroy(mc);
    cairo_surface_destroy(measure);
    axes a = {.px = 70, .py = opt->title ? 44 : 16, .pw = S, .ph = S, .x0 = e[0], .x1 = e[1],
              .y0 = e[2], .y1 = e[3]};
    int width = (int)(a.px + S + 24 + 26 + legend_w + 16), height = (int)(a.py + S + 52);
    cairo_surface_t *surface;
    cairo_t *cr;
    if ((s = plot_start(width, height, &surface, &cr, err)))
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

    plot_draw_axes(cr, &a, NULL, "x[0]", "x[1]", 0);

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
            plot_set_rgb(cr, 0xFFFFFF);
            cairo_stroke_preserve(cr);
            plot_set_rgb(cr, k >= 0 ? plot_class_point(k) : 0x222222);
            cairo_fill(cr);
        }
        cairo_restore(cr);
    }

    /* legend: region swatch with a point marker, and the class name */
    double lx = a.px + S + 24, ly = a.py + 4;
    plot_font(cr, LABEL_FONT, 0);
    for (int k = 0; k < K && ly + 22 < a.py + S; k++, ly += 22) {
        cairo_rectangle(cr, lx, ly, 18, 16);
        plot_set_rgb(cr, plot_class_region(k));
        cairo_fill_preserve(cr);
        plot_set_rgb(cr, 0x999999);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        cairo_arc(cr, lx + 9, ly + 8, 3.5, 0, 2 * PI);
        plot_set_rgb(cr, 0xFFFFFF);
        cairo_stroke_preserve(cr);
        plot_set_rgb(cr, plot_class_point(k));
        cairo_fill(cr);
        plot_set_rgb(cr, 0x222222);
        class_name(names, k, name, sizeof name);
        plot_text(cr, lx + 26, ly + 8, name, 0, 0.5);
    }
    if (labelled) {
        plot_font(cr, TICK_FONT, 0);
        plot_set_rgb(cr, 0x444444);
        plot_text(cr, lx, ly + 10, score, 0, 0.5);
    }
    if (opt->title) {
        plot_font(cr, TITLE_FONT, 1);
        plot_set_rgb(cr, 0x111111);
        plot_text_fit(cr, width / 2.0, 12, opt->title, 0.5, 0, width - 20);
    }
    s = plot_finish(surface, cr, path, err);
    if (!s && opt->pixels && ds)
        s = write_pixel_map(opt->pixels, ds, e, &a, S, err);
done:
    free(grid.f32);
    free(cls);
    free(point_cls);
    return s;
}

#endif /* NB_HAVE_CAIRO */
