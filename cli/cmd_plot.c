/* nabla plot-regions: the decision regions of a trained 2-input classifier (docs/lecture.md §6:
 * "plotting the decision regions shows it"), and nabla plot-csv: line charts of any CSV
 * columns (training logs, the examples' saturation and GD-vs-SGD numbers). Drawing is in
 * plot.c. */
#include "cli.h"
#include "csv_table.h"
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
    cli_outputs claimed = {0};
    cli_data_source src;
    cli_data_files(data ? data : "", &src);
    const char *outs[] = {output, opt.pixels}, *out_names[] = {"-o", "--pixels"};
    const char *ins[] = {model_path, src.path[0][0] ? src.path[0] : NULL,
                         src.path[1][0] ? src.path[1] : NULL};
    if (plot_check(&err) || cli_outputs_claim(&claimed, outs, out_names, 2, ins, 3, &err))
        goto done;
    if (!(gemm = cli_gemm(gemm_name, (int)threads, &err)) ||
        !(m = nb_model_load(model_path, 1, gemm, &err)))
        goto done;
    if (data && cli_load_data_for(data, &ds, &ignored, m, &err)) /* labels as the model numbers them */
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
    cli_outputs_release(&claimed);
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
           "and 'nan' are gaps). Each --y makes a panel; panels sit side by side. A column with\n"
           "no number at all draws nothing and gets no legend entry.\n\n"
           "Options:\n"
           "  --x COLUMN           the x axis (a name, or a 0-based index)\n"
           "  --y COL[=LABEL],…    one panel with these columns, LABEL naming them in the legend\n"
           "  --group COLUMN       long format: one line per distinct value of COLUMN (text or\n"
           "                       numbers), in the order they first appear, for each --y column\n"
           "  -o, --output FILE    the picture (PNG; default FILE with .png for .csv)\n"
           "  --title TEXT         above all panels (default: what is drawn against what, and\n"
           "                       the file; --title '' for none)\n"
           "  --panel-title TEXT   the next panel's title (repeat, in --y order)\n"
           "  --xlabel TEXT        x axis label (default: the column name)\n"
           "  --ylabel TEXT        the next panel's y axis label (repeat, in --y order; default:\n"
           "                       what its columns' names end in, e.g. 'loss' for train_loss and\n"
           "                       val_loss, else their labels if short)\n"
           "  --log-y[=N,…]        logarithmic y axis for all panels, or panels N,… (1-based)\n"
           "  --size WxH           picture size in pixels (default 560 wide per panel × 440)\n"
           "  -h, --help           this help\n\n"
           "Examples:\n"
           "  nabla plot-csv log.csv --x epoch --y train_loss,val_loss \\\n"
           "      --y train_accuracy,val_accuracy -o curves.png          (nabla train --log)\n"
           "  nabla plot-csv paths.csv --x samples_seen --y loss --group method --log-y \\\n"
           "      -o paths.png                                           (examples/regression --log)\n");
}

enum { MAX_PANELS = 8, MAX_GROUPS = 64, MAX_COLUMNS = 64 /* in one panel */ };

/* The rows of a long-format table grouped by the text of its kept column: the distinct values
 * in order of first appearance, and the row order that puts each group's rows together
 * (stable, so each line keeps the file's order). */
typedef struct grouping {
    int count;
    const char *name[MAX_GROUPS]; /* borrowed from the table */
    int64_t start[MAX_GROUPS + 1];
    int64_t *order;               /* rows */
} grouping;

static nb_status group_rows(const csv_table *t, const char *path, grouping *g, nb_error *err)
{
    int *id = malloc((size_t)(t->rows ? t->rows : 1) * sizeof *id);
    g->order = malloc((size_t)(t->rows ? t->rows : 1) * sizeof *g->order);
    if (!id || !g->order) {
        free(id);
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    }
    g->count = 0;
    for (int64_t r = 0; r < t->rows; r++) {
        int k = 0;
        while (k < g->count && strcmp(g->name[k], t->text[r]) != 0)
            k++;
        if (k == g->count) {
            if (g->count == MAX_GROUPS) {
                free(id);
                return nb_error_set(err, NB_EINVAL, "%s: --group %s: more than %d groups (a "
                                    "legend cannot tell that many lines apart)", path,
                                    t->names[t->keep], MAX_GROUPS);
            }
            g->name[g->count++] = t->text[r];
        }
        id[r] = k;
    }
    int64_t at = 0;
    for (int k = 0; k < g->count; k++) {
        g->start[k] = at;
        for (int64_t r = 0; r < t->rows; r++)
            if (id[r] == k)
                g->order[at++] = r;
    }
    g->start[g->count] = at;
    free(id);
    return NB_OK;
}

/* What a panel's columns are called together: the word after the last '_' that all their
 * names share (train_loss, val_loss → "loss"; the shared thing measured), else their labels
 * joined, if that stays short enough to read along an axis. */
static void shared_label(char *const *names, char *const *labels, int n, char *buf, size_t size)
{
    if (n == 1) {
        snprintf(buf, size, "%s", labels[0]);
        return;
    }
    const char *cut = strrchr(names[0], '_');
    size_t len = cut ? strlen(cut + 1) : 0;
    int all = len > 0;
    for (int i = 1; i < n && all; i++) {
        size_t li = strlen(names[i]);
        all = li > len && names[i][li - len - 1] == '_' && strcmp(names[i] + li - len, cut + 1) == 0;
    }
    if (all) {
        snprintf(buf, size, "%s", cut + 1);
        return;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", labels[i]);
    if (used > 30)
        buf[0] = '\0'; /* too long to read along an axis: the legend says it */
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int cmd_plot_csv(int argc, char **argv)
{
    enum { O_X = 256, O_Y, O_TITLE, O_PANEL_TITLE, O_XLABEL, O_YLABEL, O_LOG_Y, O_SIZE, O_GROUP };
    static const struct option options[] = {
        {"x", required_argument, 0, O_X}, {"y", required_argument, 0, O_Y},
        {"output", required_argument, 0, 'o'}, {"title", required_argument, 0, O_TITLE},
        {"panel-title", required_argument, 0, O_PANEL_TITLE},
        {"xlabel", required_argument, 0, O_XLABEL}, {"ylabel", required_argument, 0, O_YLABEL},
        {"log-y", optional_argument, 0, O_LOG_Y}, {"size", required_argument, 0, O_SIZE},
        {"group", required_argument, 0, O_GROUP}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *xcol = NULL, *output = NULL, *title = NULL, *xlabel = NULL, *group = NULL;
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
        case O_GROUP: group = optarg; break;
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
    csv_table t = {0};
    grouping g = {.count = 1};
    int status = 1, count = 0;
    char *specs[MAX_PANELS] = {0}, *series_labels = NULL;
    char ylabel_text[MAX_PANELS][128], title_text[1024];
    plot_series *series = NULL;
    double *cols = NULL;
    plot_panel panels[MAX_PANELS];
    if (plot_check(&err) || csv_table_read(path, group, &t, &err))
        goto done;
    int x = csv_table_column(&t, path, xcol, &err);
    if (x < 0)
        goto done;
    if (group && group_rows(&t, path, &g, &err))
        goto done;
    if (!group) {
        g.start[0] = 0, g.start[1] = t.rows;
    }
    /* at most t.cols series per panel, each split into g.count lines, each with a label */
    size_t per_panel = (size_t)t.cols * (size_t)g.count, label_size = 160;
    if (!(series = calloc(per_panel * MAX_PANELS, sizeof *series)) ||
        !(series_labels = malloc(per_panel * MAX_PANELS * label_size)) ||
        !(cols = malloc((size_t)t.cols * (size_t)(t.rows ? t.rows : 1) * sizeof *cols))) {
        nb_error_set(&err, NB_ENOMEM, "out of memory");
        goto done;
    }
    /* column-major, rows in group order: a line is a contiguous run of x and y values */
    for (int k = 0; k < t.cols; k++)
        for (int64_t r = 0; r < t.rows; r++)
            cols[k * t.rows + r] = t.v[(group ? g.order[r] : r) * t.cols + k];
    for (int p = 0; p < ny; p++) {
        plot_series *ps = series + per_panel * (size_t)p;
        char *names[MAX_COLUMNS], *labels[MAX_COLUMNS];
        int ns = 0, ncols = 0;
        if (!(specs[p] = strdup(ys[p]))) {
            nb_error_set(&err, NB_ENOMEM, "out of memory");
            goto done;
        }
        for (char *item = strtok(specs[p], ","); item; item = strtok(NULL, ",")) {
            char *label = strchr(item, '=');
            if (label)
                *label++ = 0;
            int col = csv_table_column(&t, path, item, &err);
            if (col < 0)
                goto done;
            if (ncols == t.cols || ncols == MAX_COLUMNS) {
                nb_error_set(&err, NB_EINVAL, "--y %s: more series than the %d columns of %s "
                             "(or above %d)", ys[p], t.cols, path, MAX_COLUMNS);
                goto done;
            }
            names[ncols] = t.names[col];
            labels[ncols++] = label ? label : t.names[col];
            for (int k = 0; k < g.count; k++) {
                char *text = series_labels + (per_panel * (size_t)p + (size_t)ns) * label_size;
                if (!group)
                    snprintf(text, label_size, "%s", labels[ncols - 1]);
                else if (strchr(ys[p], ','))
                    snprintf(text, label_size, "%s: %s", g.name[k], labels[ncols - 1]);
                else
                    snprintf(text, label_size, "%s", g.name[k]);
                int64_t from = g.start[k], n = g.start[k + 1] - from;
                ps[ns++] = (plot_series){text, cols + (int64_t)x * t.rows + from,
                                         cols + (int64_t)col * t.rows + from, n};
            }
        }
        if (!ncols) {
            nb_error_set(&err, NB_EINVAL, "--y '%s': no column named", ys[p]);
            goto done;
        }
        const char *ylabel = ylabels[p];
        if (!ylabel) {
            shared_label(names, labels, ncols, ylabel_text[p], sizeof ylabel_text[p]);
            ylabel = ylabel_text[p][0] ? ylabel_text[p] : NULL;
        }
        panels[count++] = (plot_panel){ptitles[p], xlabel ? xlabel : t.names[x], ylabel, ps, ns,
                                       log_all || log_panel[p + 1]};
    }
    if (!title) { /* "loss, accuracy against epoch, one line per method (log.csv)" */
        size_t used = 0;
        for (int p = 0; p < count && used < sizeof title_text; p++)
            if (panels[p].ylabel)
                used += (size_t)snprintf(title_text + used, sizeof title_text - used, "%s%s",
                                         used ? ", " : "", panels[p].ylabel);
        if (used && used < sizeof title_text)
            snprintf(title_text + used, sizeof title_text - used, " against %s%s%s (%s)",
                     panels[0].xlabel, group ? ", one line per " : "",
                     group ? t.names[t.keep] : "", base_of(path));
        else if (!used)
            snprintf(title_text, sizeof title_text, "%s%s%s", base_of(path),
                     group ? ", one line per " : "", group ? t.names[t.keep] : "");
        title = title_text;
    }
    if (plot_lines(output, *title ? title : NULL, panels, count, width, height, &err))
        goto done;
    status = 0;
done:
    if (status)
        cli_fail("plot-csv", &err);
    for (int p = 0; p < ny; p++)
        free(specs[p]);
    free(series);
    free(series_labels);
    free(cols);
    free(g.order);
    csv_table_free(&t);
    return status;
}
