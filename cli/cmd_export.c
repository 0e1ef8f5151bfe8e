/* nabla export MODEL --format onnx|c -o FILE: a trained model for inference engines (ONNX)
 * or as one dependency-free C file with its header (the library's src/export/). */
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("Usage: nabla export MODEL.safetensors --format onnx|c -o FILE [OPTIONS]\n\n"
           "Writes a trained model for use without nabla. The input normalisation stored with\n"
           "the model comes first, so the exported model takes the raw inputs that 'nabla\n"
           "predict' takes, and gives the same probabilities.\n\n"
           "  --format onnx   an ONNX model (opset 13 by default) for ONNX Runtime, OpenCV's DNN,\n"
           "                  TensorRT, OpenVINO: Linear (Gemm), relu/tanh/sigmoid, add/max/mul,\n"
           "                  scale, sum/mean, softmax/log_softmax, dropout (identity),\n"
           "                  flatten/reshape, conv2d (Conv), max/avg_pool2d, global_avg_pool,\n"
           "                  batch_norm, leaky_relu (LeakyRelu), gelu (its Erf form),\n"
           "                  layer_norm (LayerNormalization at opset 17, else its formula).\n"
           "                  Outputs the model's output and, for a classifier,\n"
           "                  'probabilities'. Class names in its metadata. Not: nearest.\n"
           "  --format c      FILE.c and FILE.h: one self-contained C99 file (weights as static\n"
           "                  const arrays; no allocation, no global state, only <math.h>) with\n"
           "                  NAME_predict(input, probabilities), NAME_predict_batch, NAME_forward\n"
           "                  (a regression model: NAME_regress(input, values), in the targets'\n"
           "                  units, and NAME_regress_batch). Every module nabla has.\n"
           "  A regression model's ONNX file has an output 'values' in the targets' units.\n\n"
           "Options:\n"
           "  -o, --output FILE   the file to write (for c: FILE.c; FILE.h is written beside it)\n"
           "  --name NAME         c: prefix of the generated functions (default: FILE's base name)\n"
           "  --quantize int8     c: Linear weights as int8 with one float scale per output row\n"
           "                      (symmetric, per channel; about 4x smaller). Alone, activations\n"
           "                      (and conv2d weights) stay float: no calibration data needed\n"
           "  --calibrate DATA    with --quantize int8: run the model over DATA (a data spec as\n"
           "                      for train and eval, e.g. fashion-mnist) to fix each Linear\n"
           "                      input's range (the clipping of least squared error); the Linear\n"
           "                      layers then take 8-bit inputs and sum products in int32\n"
           "  --opset N           onnx: the operator set, 13 to 17 (default 13)\n"
           "  -h, --help          this help\n");
}

/* The default C name: the output's base name without ".c", other characters as '_'. */
static void default_name(const char *path, char *name, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base) - 2, k = 0; /* path ends in ".c" */
    if (n == 0 || isdigit((unsigned char)base[0]))
        name[k++] = 'm';
    for (size_t i = 0; i < n && k + 1 < size; i++)
        name[k++] = isalnum((unsigned char)base[i]) ? base[i] : '_';
    name[k] = '\0';
}

int cmd_export(int argc, char **argv)
{
    static const struct option options[] = {
        {"format", required_argument, 0, 'f'}, {"output", required_argument, 0, 'o'},
        {"name", required_argument, 0, 'n'}, {"quantize", required_argument, 0, 'q'},
        {"opset", required_argument, 0, 's'}, {"calibrate", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *format = NULL, *output = NULL, *name = NULL, *calibrate = NULL;
    int int8 = 0;
    long long opset = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", options, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "onnx") && strcmp(optarg, "c"))
                return cli_usage_error("export", "--format: expected onnx or c, got '%s'", optarg);
            format = optarg;
            break;
        case 'o': output = optarg; break;
        case 'c': calibrate = optarg; break;
        case 'n': name = optarg; break;
        case 'q':
            if (strcmp(optarg, "int8"))
                return cli_usage_error("export", "--quantize: expected int8, got '%s'", optarg);
            int8 = 1;
            break;
        case 's':
            if (!cli_int("export", "--opset", optarg, 13, 17, &opset))
                return 2;
            break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("export", "option '%s' requires an argument", argv[optind - 1]);
        default: return cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("export", "expected one MODEL file argument");
    if (!format)
        return cli_usage_error("export", "--format onnx or --format c is required");
    if (!output)
        return cli_usage_error("export", "-o FILE is required");
    int to_c = strcmp(format, "c") == 0;
    size_t len = strlen(output);
    if (to_c && (len < 3 || strcmp(output + len - 2, ".c") != 0))
        return cli_usage_error("export", "-o '%s': the C export writes FILE.c (and FILE.h beside "
                               "it); name a file ending in .c", output);
    if (!to_c && (name || int8 || calibrate))
        return cli_usage_error("export", "%s applies to --format c only",
                               name ? "--name" : int8 ? "--quantize" : "--calibrate");
    if (calibrate && !int8)
        return cli_usage_error("export", "--calibrate applies to --quantize int8 only");
    if (to_c && opset)
        return cli_usage_error("export", "--opset applies to --format onnx only");
    const char *model = argv[optind];
    nb_error err = {0};
    if (!to_c && !nb_export_onnx_available()) {
        nb_error_set(&err, NB_ENOTSUP, "ONNX export is not built in: nabla was built without "
                     "libprotobuf-c and protoc-c (apt-get install libprotobuf-c-dev "
                     "protobuf-c-compiler, then rebuild); --format c works without them");
        return cli_fail("export", &err);
    }
    if (!cli_is_model_file(model))
        return cli_usage_error("export", "'%s': expected a trained model file (.safetensors)", model);
    nb_gemm *gemm = nb_gemm_new(NB_GEMM_PORTABLE, 1, &err);
    nb_model *m = gemm ? nb_model_load(model, 1, gemm, &err) : NULL;
    nb_status s = m ? NB_OK : NB_EIO;
    nb_dataset calibration = {0};
    const char *ignored;
    if (m && calibrate && cli_load_data_for(calibrate, &calibration, &ignored,
                                            nb_model_targets(m) >= 0 ? m : NULL, &err))
        s = err.code ? err.code : NB_EIO;
    if (m && to_c && !s) {
        char cname[64], *header = malloc(len + 1);
        if (!header) {
            s = nb_error_set(&err, NB_ENOMEM, "out of memory");
        } else {
            memcpy(header, output, len + 1);
            header[len - 1] = 'h';
            default_name(output, cname, sizeof cname);
            nb_export_c_options opt = {.name = name ? name : cname,
                                       .quantize = int8 ? NB_QUANT_INT8 : NB_QUANT_NONE,
                                       .calibration = calibrate ? &calibration : NULL,
                                       .source = model};
            s = nb_export_c(m, output, header, &opt, &err);
            if (!s)
                fprintf(stderr, "nabla export: wrote %s and %s (%s_%s)\n", output, header,
                        opt.name, nb_model_targets(m) >= 0 ? "regress" : "predict");
            free(header);
        }
    } else if (m && !s) {
        s = nb_export_onnx(m, output, (int)opset, &err);
        if (!s)
            fprintf(stderr, "nabla export: wrote %s\n", output);
    }
    nb_dataset_free(&calibration);
    nb_model_free(m);
    nb_gemm_free(gemm);
    return s ? cli_fail("export", &err) : 0;
}
