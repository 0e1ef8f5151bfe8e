/* nabla plot-regions: the decision regions of a trained 2-input classifier (docs/lecture.md §6:
 * "plotting the decision regions shows it"), and nabla plot-csv: line charts of any CSV
 * columns (training logs, the examples' saturation and GD-vs-SGD numbers). Drawing is in
 * plot.c. */
#include "cli.h"
#include "plot.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- plot-regions -------------------------------------------------------------------------- */

static void regions_help(void)
{
    printf("Usage: nabla plot-regions MODEL.safetensors --data SPEC -o FILE.png [OPTIONS]\n\n"
           "Colours every pixel of the plane by the class the model predicts there (in\n"
           "evaluation mode, with the model's own input normalisation), and draws the points\n"
           "of SPEC on top in a darker shade of their class colour. The model must take 2\n"
           "input features, e.g. one trained with 'nabla train 2-64-3 --data spirals'.\n\n"
           "Options:\n"
           "  --data SPEC          points to draw; their bounding box (with a margin, equal\n"
           "                       scales) is the plane shown\n"
           "  -o, --output FILE    the picture (PNG; default regions.png)\n"
           "  --size N             side of the square region in pixels (default 600)\n"
           "  --extent X0,X1,Y0,Y1 show this part of the plane instead\n"
           "  --no-points          only the regions\n"
           "  --title TEXT         the picture's title (default: model, data and accuracy)\n"
           "  --pixels FILE.csv    write each point's pixel and the plane coordinates of that\n"
           "                       pixel's centre: x0,x1,label,px,py,cx0,cx1\n"
           "  --threads N, --gemm NAME   as for train\n"
           "  -q, --quiet          no message\n"
           "  -h, --help           this help\n\n" DATA_HELP);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int cmd_plot_regions(int argc, char **argv)
{
    enum { O_DATA = 256, O_SIZE, O_EXTENT, O_NO_POINTS, O_TITLE, O_PIXELS, O_THREADS, O_GEMM };
    static const struct option options[] = {
        {"data", required_argument, 0, O_DATA}, {"output", required_argument, 0, 'o'},
        {"size", required_argument, 0, O_SIZE}, {"extent", required_argument, 0, O_EXTENT},
        {"no-points", no_argument, 0, O_NO_POINTS}, {"title", required_argument, 0, O_TITLE},
        {"pixels", required_argument, 0, O_PIXELS}, {"threads", required_argument, 0, O_THREADS},
        {"gemm", required_argument, 0, O_GEMM}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *data = NULL, *output = "regions.png", *gemm_name = NULL;
    plot_regions_options opt = {.size = 600, .points = 1};
    long long n, threads = 0;
    int quiet = 0, c;
    while ((c = getopt_long(argc, argv, "o:qh", options, NULL)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case 'o': output = optarg; break;
        case O_SIZE:
            if (!cli_int("plot-regions", "--size", optarg, 16, 4096, &n))
                return 2;
            opt.size = (int)n;
            break;
        case O_EXTENT: {
            double *e = opt.extent;
            char tail;
            if (sscanf(optarg, "%lf,%lf,%lf,%lf%c", &e[0], &e[1], &e[2], &e[3], &tail) != 4 ||
                !(e[1] > e[0] && e[3] > e[2]) || !isfinite(e[1] - e[0]) || !isfinite(e[3] - e[2]))
                return cli_usage_error("plot-regions", "--extent: expected X0,X1,Y0,Y1 with "
                                       "X0 < X1 and Y0 < Y1, got '%s'", optarg);
            opt.have_extent = 1;
            break;
        }
        case O_NO_POINTS: opt.points = 0; break;
        case O_TITLE: opt.title = optarg; break;
        case O_PIXELS: opt.pixels = optarg; break;
        case O_THREADS:
            if (!cli_int("plot-regions", "--threads", optarg, 0, 1024, &threads))
                return 2;
            break;
        case O_GEMM: gemm_name = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': regions_help(); return 0;
        default: return cli_usage_error("plot-regions", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("plot-regions", "expected one MODEL.safetensors argument");
    const char *model_path = argv[optind];
    if (!cli_is_model_file(model_path))
        return cli_usage_error("plot-regions", "%s: expected a trained model file (.safetensors); "
                               "train one with 'nabla train 2-64-3 --data spirals -o "
                               "spirals.safetensors'", model_path);
    if (!data && !opt.have_extent)
        return cli_usage_error("plot-regions", "expected --data SPEC (the points to draw) or "
                               "--extent X0,X1,Y0,Y1");

    nb_error err = {0};
    nb_dataset ds = {0};
    nb_gemm *gemm = NULL;
    nb_model *m = NULL;
    const char *ignored;
    char title[512];
    int status = 1;
    if (plot_check(&err))
        goto done;
    if (!(gemm = cli_gemm(gemm_name, (int)threads, &err)) ||
        !(m = nb_model_load(model_path, 1, gemm, &err)))
        goto done;
    if (data && cli_load_data(data, &ds, &ignored, &err))
        goto done;
    if (!opt.title) {
        snprintf(title, sizeof title, "decision regions of %s%s%s", base_name(model_path),
                 data ? " on " : "", data ? data : "");
        opt.title = title;
    }
    if (plot_regions(output, m, data ? &ds : NULL, &opt, &err))
        goto done;
    if (!quiet)
        fprintf(stderr, "wrote %s: decision regions of %s, %d×%d pixels%s%s\n", output,
                model_path, opt.size, opt.size, opt.pixels ? "; pixel map " : "",
                opt.pixels ? opt.pixels : "");
    status = 0;
done:
    if (status)
        cli_fail("plot-regions", &err);
    nb_dataset_free(&ds);
    nb_model_free(m);
    nb_gemm_free(gemm);
    return status;
}

/* ---- plot-csv ------------------------------------------------------------------------------ */

static void csv_help(void)
{
    printf("Usage: nabla plot-csv FILE.csv -o FILE.png --x COLUMN --y COL[=LABEL],… [OPTIONS]\n\n"
           "Draws line charts of CSV columns (a header row of names, then numbers; empty cells\n"
           "and 'nan' are gaps). Each --y makes a panel; panels sit side by side.\n\n"
           "Options:\n"
           "  --x COLUMN           the x axis (a name, or a 0-based index)\n"
           "  --y COL[=LABEL],…    one panel with these columns, LABEL naming them in the legend\n"
           "  -o, --output FILE    the picture (PNG; default FILE with .png for .csv)\n"
           "  --title TEXT         above all panels\n"
           "  --panel-title TEXT   the next panel's title (repeat, in --y order)\n"
           "  --xlabel TEXT        x axis label (default: the column name)\n"
           "  --ylabel TEXT        the next panel's y axis label (repeat, in --y order)\n"
           "  --log-y[=N,…]        logarithmic y axis for all panels, or panels N,… (1-based)\n"
           "  --size WxH           picture size in pixels (default 560 wide per panel × 440)\n"
           "  -h, --help           this help\n\n"
           "Example (nabla train --log):\n"
           "  nabla plot-csv log.csv --x epoch --y train_loss,val_loss \\\n"
           "      --y train_accuracy,val_accuracy -o curves.png\n");
}

typedef struct table {
    int cols;
    char **names;
    int64_t rows, cap;
    double *v;         /* rows × cols */
    int64_t *bad_row;  /* per column: first line (1-based) with a non-number, or 0 */
    char **bad_text;   /* per column: that cell */
} table;

static void table_free(table *t)
{
    for (int i = 0; i < t->cols; i++) {
        free(t->names[i]);
        if (t->bad_text)
            free(t->bad_text[i]);
    }
    free(t->names);
    free(t->v);
    free(t->bad_row);
    free(t->bad_text);
    memset(t, 0, sizeof *t);
}

/* Splits a CSV line in place into at most `cap` fields (quotes stripped, "" → ", spaces
 * around a field trimmed). Returns the number of fields. */
static int split_fields(char *line, char **fields, int cap)
{
    int n = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        char *start = s, *out = s;
        if (*s == '"') {
            start = out = ++s;
            while (*s && !(*s == '"' && s[1] != '"')) {
                if (*s == '"')
                    s++;
                *out++ = *s++;
            }
            if (*s == '"')
                s++;
            while (*s && *s != ',')
                s++;
        } else {
            while (*s && *s != ',')
                s++;
            out = s;
            while (out > start && (out[-1] == ' ' || out[-1] == '\t'))
                out--;
        }
        char sep = *s;
        *out = 0;
        if (n < cap)
            fields[n] = start;
        n++;
        if (sep != ',')
            break;
        s++;
    }
    return n < cap ? n : cap;
}

static nb_status read_table(const char *path, table *t, nb_error *err)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f)
        return nb_error_set(err, NB_EIO, "%s: %s", path, strerror(errno));
    enum { MAX_COLS = 4096 };
    char *line = NULL, **fields = malloc(MAX_COLS * sizeof *fields);
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0;
    nb_status s = fields ? NB_OK : nb_error_set(err, NB_ENOMEM, "out of memory");
    while (!s && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *text = line;
        if (lineno == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)
            text += 3; /* UTF-8 byte-order mark */
        if (!*text)
            continue;
        int n = split_fields(text, fields, MAX_COLS);
        if (!t->names) {
            t->cols = n;
            t->names = calloc((size_t)n, sizeof *t->names);
            t->bad_row = calloc((size_t)n, sizeof *t->bad_row);
            t->bad_text = calloc((size_t)n, sizeof *t->bad_text);
            if (!t->names || !t->bad_row || !t->bad_text) {
                s = nb_error_set(err, NB_ENOMEM, "out of memory");
                break;
            }
            for (int i = 0; i < n && !s; i++)
                if (!(t->names[i] = strdup(fields[i])))
                    s = nb_error_set(err, NB_ENOMEM, "out of memory");
            continue;
        }
        if (n != t->cols) {
            s = nb_error_set(err, NB_EFORMAT, "%s:%lld: %d fields, the header has %d", path,
                             (long long)lineno, n, t->cols);
            break;
        }
        if (t->rows == t->cap) {
            int64_t c2 = t->cap ? 2 * t->cap : 256;
            double *v = realloc(t->v, (size_t)(c2 * t->cols) * sizeof *v);
            if (!v) {
                s = nb_error_set(err, NB_ENOMEM, "out of memory reading %s", path);
                break;
            }
            t->v = v;
            t->cap = c2;
        }
        for (int i = 0; i < n; i++) {
            char *end;
            double v = NAN;
            if (*fields[i]) {
                v = strtod(fields[i], &end);
                if (*end || end == fields[i]) {
                    v = NAN;
                    if (!t->bad_row[i]) {
                        t->bad_row[i] = lineno;
                        t->bad_text[i] = strdup(fields[i]);
                    }
                }
            }
            t->v[t->rows * t->cols + i] = v;
        }
        t->rows++;
    }
    if (!s && ferror(f))
        s = nb_error_set(err, NB_EIO, "%s: read error", path);
    if (!s && !t->names)
        s = nb_error_set(err, NB_EFORMAT, "%s: empty file (expected a header row)", path);
    free(line);
    free(fields);
    fclose(f);
    if (s)
        table_free(t);
    return s;
}

/* A column by name, else by 0-based index; -1 with err set when absent or not numeric. */
static int find_column(const table *t, const char *path, const char *name, nb_error *err)
{
    int col = -1;
    for (int i = 0; i < t->cols && col < 0; i++)
        if (strcmp(t->names[i], name) == 0)
            col = i;
    if (col < 0) {
        char *end;
        long k = strtol(name, &end, 10);
        if (*name && !*end && k >= 0 && k < t->cols)
            col = (int)k;
    }
    if (col < 0) {
        char list[1024] = "";
        size_t used = 0;
        for (int i = 0; i < t->cols && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                     t->names[i]);
        nb_error_set(err, NB_EINVAL, "%s: no column '%s' (columns: %s)", path, name, list);
        return -1;
    }
    if (t->bad_row[col]) {
        nb_error_set(err, NB_EFORMAT, "%s:%lld: column '%s': '%s' is not a number", path,
                     (long long)t->bad_row[col], t->names[col], t->bad_text[col]);
        return -1;
    }
    return col;
}

int cmd_plot_csv(int argc, char **argv)
{
    enum { O_X = 256, O_Y, O_TITLE, O_PANEL_TITLE, O_XLABEL, O_YLABEL, O_LOG_Y, O_SIZE, MAX_PANELS = 8 };
    static const struct option options[] = {
        {"x", required_argument, 0, O_X}, {"y", required_argument, 0, O_Y},
        {"output", required_argument, 0, 'o'}, {"title", required_argument, 0, O_TITLE},
        {"panel-title", required_argument, 0, O_PANEL_TITLE},
        {"xlabel", required_argument, 0, O_XLABEL}, {"ylabel", required_argument, 0, O_YLABEL},
        {"log-y", optional_argument, 0, O_LOG_Y}, {"size", required_argument, 0, O_SIZE},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *xcol = NULL, *output = NULL, *title = NULL, *xlabel = NULL;
    const char *ys[MAX_PANELS], *ptitles[MAX_PANELS] = {0}, *ylabels[MAX_PANELS] = {0};
    int ny = 0, nptitles = 0, nylabels = 0, log_all = 0, log_panel[MAX_PANELS + 1] = {0};
    int width = 0, height = 440, c;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case O_X: xcol = optarg; break;
        case O_Y:
            if (ny == MAX_PANELS)
                return cli_usage_error("plot-csv", "at most %d panels (--y)", MAX_PANELS);
            ys[ny++] = optarg;
            break;
        case 'o': output = optarg; break;
        case O_TITLE: title = optarg; break;
        case O_PANEL_TITLE:
            if (nptitles < MAX_PANELS)
                ptitles[nptitles++] = optarg;
            break;
        case O_XLABEL: xlabel = optarg; break;
        case O_YLABEL:
            if (nylabels < MAX_PANELS)
                ylabels[nylabels++] = optarg;
            break;
        case O_LOG_Y:
            if (!optarg) {
                log_all = 1;
                break;
            }
            for (const char *p = optarg; *p;) {
                char *end;
                long k = strtol(p, &end, 10);
                if (end == p || k < 1 || k > MAX_PANELS || (*end && *end != ','))
                    return cli_usage_error("plot-csv", "--log-y=N,…: expected panel numbers "
                                           "from 1 to %d, got '%s'", MAX_PANELS, optarg);
                log_panel[k] = 1;
                p = *end ? end + 1 : end;
            }
            break;
        case O_SIZE: {
            char tail;
            if (sscanf(optarg, "%dx%d%c", &width, &height, &tail) != 2 || width < 64 ||
                height < 64 || width > 16384 || height > 16384)
                return cli_usage_error("plot-csv", "--size: expected WxH, 64 to 16384 pixels, "
                                       "got '%s'", optarg);
            break;
        }
        case 'h': csv_help(); return 0;
        default: return cli_usage_error("plot-csv", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("plot-csv", "expected one FILE.csv argument");
    if (!xcol || !ny)
        return cli_usage_error("plot-csv", "expected --x COLUMN and at least one --y COL,…");
    const char *path = argv[optind];
    char out_default[4200];
    if (!output) {
        size_t len = strlen(path);
        int csv = len > 4 && strcmp(path + len - 4, ".csv") == 0;
        snprintf(out_default, sizeof out_default, "%.*s.png", (int)(csv ? len - 4 : len), path);
        output = out_default;
    }
    if (!width)
        width = ny == 1 ? 640 : 560 * ny > 1800 ? 1800 : 560 * ny;

    nb_error err = {0};
    table t = {0};
    int status = 1, count = 0;
    char *specs[MAX_PANELS] = {0};
    plot_series *series = NULL;
    double *xs = NULL;
    plot_panel panels[MAX_PANELS];
    if (plot_check(&err) || read_table(path, &t, &err))
        goto done;
    int x = find_column(&t, path, xcol, &err);
    if (x < 0)
        goto done;
    if (!(series = calloc((size_t)t.cols * MAX_PANELS, sizeof *series)) ||
        !(xs = malloc((size_t)(t.cols * (t.rows ? t.rows : 1)) * sizeof *xs))) {
        nb_error_set(&err, NB_ENOMEM, "out of memory");
        goto done;
    }
    /* columns one after another (a series needs contiguous y values) */
    for (int k = 0; k < t.cols; k++)
        for (int64_t r = 0; r < t.rows; r++)
            xs[k * t.rows + r] = t.v[r * t.cols + k];
    for (int p = 0; p < ny; p++) {
        plot_series *ps = series + (size_t)p * t.cols;
        int ns = 0;
        if (!(specs[p] = strdup(ys[p]))) {
            nb_error_set(&err, NB_ENOMEM, "out of memory");
            goto done;
        }
        for (char *item = strtok(specs[p], ","); item; item = strtok(NULL, ",")) {
            char *label = strchr(item, '=');
            if (label)
                *label++ = 0;
            int col = find_column(&t, path, item, &err);
            if (col < 0)
                goto done;
            if (ns == t.cols) {
                nb_error_set(&err, NB_EINVAL, "--y %s: more series than columns", ys[p]);
                goto done;
            }
            ps[ns++] = (plot_series){label ? label : t.names[col], xs + (int64_t)x * t.rows,
                                     xs + (int64_t)col * t.rows, t.rows};
        }
        if (!ns) {
            nb_error_set(&err, NB_EINVAL, "--y '%s': no column named", ys[p]);
            goto done;
        }
        panels[count++] = (plot_panel){ptitles[p], xlabel ? xlabel : t.names[x], ylabels[p], ps,
                                       ns, log_all || log_panel[p + 1]};
    }
    if (plot_lines(output, title, panels, count, width, height, &err))
        goto done;
    status = 0;
done:
    if (status)
        cli_fail("plot-csv", &err);
    for (int p = 0; p < ny; p++)
        free(specs[p]);
    free(series);
    free(xs);
    table_free(&t);
    return status;
}
