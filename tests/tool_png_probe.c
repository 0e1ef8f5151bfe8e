/* tool_png_probe: reads a PNG with cairo (the decoder nabla's pictures are written with) and
 * prints what tests/cli_pictures.sh checks.
 *
 *   tool_png_probe FILE.png [X Y]...   "WIDTH HEIGHT", then "R G B" (decimal) per pixel (X, Y)
 *   tool_png_probe --stats FILE.png    "WIDTH HEIGHT COLOURS NONWHITE": the number of distinct
 *                                      colours and the fraction of pixels that are not white
 *   tool_png_probe --count FILE.png RRGGBB...   per colour (hex), how many pixels have exactly it
 *   tool_png_probe --legends FILE.png  a line "X0 Y0 X1 Y1 TINTED" per legend box (a rectangle
 *                                      framed in #BBBBBB, as cli/plot_lines.c draws legends):
 *                                      TINTED counts the pixels inside it, right of the line
 *                                      samples (34 px), that are not grey — a curve showing
 *                                      through the box's 90 % white
 *   tool_png_probe --nonwhite FILE.png X0 Y0 X1 Y1   non-white pixels in [X0, X1) × [Y0, Y1)
 *   tool_png_probe --diff A.png B.png  "DIFFERENT": pixels where a channel differs by more than
 *                                      8 (antialiasing of sub-pixel shifts differs by less)
 *
 * Exit status 1 on a file cairo cannot read or a pixel outside the picture, 2 on usage, 3 when
 * built without cairo. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_CAIRO
#include <cairo.h>

/* The pixel as 0xRRGGBB; premultiplied alpha undone (nabla's pictures are opaque). */
static uint32_t pixel(cairo_surface_t *s, int x, int y)
{
    const unsigned char *data = cairo_image_surface_get_data(s);
    size_t at = (size_t)y * (size_t)cairo_image_surface_get_stride(s) + 4 * (size_t)x;
    uint32_t v = *(const uint32_t *)(const void *)(data + at);
    if (cairo_image_surface_get_format(s) == CAIRO_FORMAT_ARGB32) {
        uint32_t a = v >> 24, out = 0;
        if (a == 0)
            return 0xFFFFFF; /* fully transparent reads as the white page */
        for (int shift = 16; shift >= 0; shift -= 8)
            out |= ((v >> shift & 0xFF) * 255 + a / 2) / a << shift;
        return out;
    }
    return v & 0xFFFFFF;
}

static int compare(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Not grey: the channels differ by more than antialiasing of grey text on white gives. */
static int tinted(uint32_t v)
{
    int r = v >> 16 & 0xFF, g = v >> 8 & 0xFF, b = v & 0xFF;
    int hi = r > g ? (r > b ? r : b) : (g > b ? g : b), lo = r < g ? (r < b ? r : b) : (g < b ? g : b);
    return hi - lo > 3;
}

/* Rectangles framed by FRAME: from each top-left corner, along the top and left edges, then
 * the bottom and right edges checked. */
static void legends(cairo_surface_t *s, int w, int h)
{
    const uint32_t frame = 0xBBBBBB;
    for (int y = 1; y < h; y++)
        for (int x = 1; x < w; x++) {
            if (pixel(s, x, y) != frame || pixel(s, x - 1, y) == frame || pixel(s, x, y - 1) == frame)
                continue;
            int x1 = x, y1 = y;
            while (x1 + 1 < w && pixel(s, x1 + 1, y) == frame)
                x1++;
            while (y1 + 1 < h && pixel(s, x, y1 + 1) == frame)
                y1++;
            if (x1 - x < 40 || y1 - y < 12)
                continue;
            int closed = 1;
            for (int i = x; i <= x1 && closed; i++)
                closed = pixel(s, i, y1) == frame;
            for (int j = y; j <= y1 && closed; j++)
                closed = pixel(s, x1, j) == frame;
            if (!closed)
                continue;
            long count = 0;
            for (int j = y + 1; j < y1; j++)
                for (int i = x + 34; i < x1; i++)
                    count += tinted(pixel(s, i, j));
            printf("%d %d %d %d %ld\n", x, y, x1, y1, count);
        }
}

int main(int argc, char **argv)
{
    int stats = argc > 1 && strcmp(argv[1], "--stats") == 0;
    int count = argc > 1 && strcmp(argv[1], "--count") == 0;
    int boxes = argc > 1 && strcmp(argv[1], "--legends") == 0;
    int region = argc > 1 && strcmp(argv[1], "--nonwhite") == 0;
    int diff = argc > 1 && strcmp(argv[1], "--diff") == 0;
    int mode = stats || count || boxes || region || diff;
    if (argc < 2 + mode || (!mode && (argc - 2) % 2 != 0) || ((stats || boxes) && argc != 3) ||
        (region && argc != 7) || (diff && argc != 4)) {
        fprintf(stderr, "usage: %s FILE.png [X Y]... | --stats FILE.png | --count FILE.png "
                "RRGGBB... | --legends FILE.png | --nonwhite FILE.png X0 Y0 X1 Y1 | --diff "
                "A.png B.png\n", argv[0]);
        return 2;
    }
    const char *path = argv[1 + mode];
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "%s: %s\n", path, cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return 1;
    }
    cairo_surface_flush(s);
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s), status = 0;
    if (boxes) {
        legends(s, w, h);
    } else if (region) {
        int x0 = atoi(argv[3]), y0 = atoi(argv[4]), x1 = atoi(argv[5]), y1 = atoi(argv[6]);
        long n = 0;
        for (int y = y0 < 0 ? 0 : y0; y < y1 && y < h; y++)
            for (int x = x0 < 0 ? 0 : x0; x < x1 && x < w; x++)
                n += pixel(s, x, y) != 0xFFFFFF;
        printf("%ld\n", n);
    } else if (diff) {
        cairo_surface_t *b = cairo_image_surface_create_from_png(argv[3]);
        if (cairo_surface_status(b) != CAIRO_STATUS_SUCCESS ||
            cairo_image_surface_get_width(b) != w || cairo_image_surface_get_height(b) != h) {
            fprintf(stderr, "%s: unreadable or not %d×%d\n", argv[3], w, h);
            status = 1;
        } else {
            cairo_surface_flush(b);
            long n = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    uint32_t u = pixel(s, x, y), v = pixel(b, x, y);
                    int far = 0;
                    for (int shift = 16; shift >= 0; shift -= 8) {
                        int d = (int)(u >> shift & 0xFF) - (int)(v >> shift & 0xFF);
                        far |= d > 8 || d < -8;
                    }
                    n += far;
                }
            printf("%ld\n", n);
        }
        cairo_surface_destroy(b);
    } else if (count) {
        for (int i = 3; i < argc; i++) {
            char *end;
            unsigned long want = strtoul(argv[i], &end, 16);
            if (*end || end == argv[i] || want > 0xFFFFFF) {
                fprintf(stderr, "%s: expected a colour RRGGBB, got '%s'\n", argv[0], argv[i]);
                status = 2;
                break;
            }
            long n = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    n += pixel(s, x, y) == want;
            printf("%ld\n", n);
        }
    } else if (stats) {
        uint32_t *all = malloc((size_t)w * h * sizeof *all);
        if (!all) {
            fprintf(stderr, "out of memory\n");
            cairo_surface_destroy(s);
            return 1;
        }
        size_t n = 0, nonwhite = 0, distinct = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                all[n] = pixel(s, x, y);
                nonwhite += all[n++] != 0xFFFFFF;
            }
        qsort(all, n, sizeof *all, compare);
        for (size_t i = 0; i < n; i++)
            distinct += i == 0 || all[i] != all[i - 1];
        printf("%d %d %zu %.6f\n", w, h, distinct, n ? (double)nonwhite / (double)n : 0.0);
        free(all);
    } else {
        printf("%d %d\n", w, h);
        for (int i = 2; i + 1 < argc; i += 2) {
            int x = atoi(argv[i]), y = atoi(argv[i + 1]);
            if (x < 0 || y < 0 || x >= w || y >= h) {
                fprintf(stderr, "%s: pixel (%d, %d) outside the %d×%d picture\n", path, x, y, w, h);
                status = 1;
                break;
            }
            uint32_t v = pixel(s, x, y);
            printf("%u %u %u\n", v >> 16 & 0xFF, v >> 8 & 0xFF, v & 0xFF);
        }
    }
    cairo_surface_destroy(s);
    cairo_debug_reset_static_data();
    return status;
}

#else

int main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "%s: built without cairo (install libcairo2-dev and rebuild)\n", argv[0]);
    return 3;
}

#endif
