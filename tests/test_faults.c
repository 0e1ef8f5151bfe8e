/* Faults a user meets: data that does not fit the model (wrong feature count, labels out of
 * range, an empty set), a disk that fills up while a model or checkpoint is saved, and model
 * files whose tensors do not match their description. Each must be refused with a status and
 * a message that names what is wrong — before any training, and without damaging the file
 * already on disk. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setrlimit */
#include "check.h"
#include "nabla.h"
#include "scratch_dir.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* The status and that the message holds every one of the NULL-terminated strings. */
#define CHECK_ERR(status, code, err, ...)                                                   \
    do {                                                                                  \
        const char *want_[] = {__VA_ARGS__, NULL};                                        \
        CHECK_MSG((status) == (code), "%s, expected %s: %s", nb_status_name(status),      \
                  nb_status_name(code), (err)->msg);                                      \
        for (int k_ = 0; want_[k_]; k_++)                                                 \
            CHECK_MSG(strstr((err)->msg, want_[k_]), "message '%s' lacks '%s'",           \
                      (err)->msg, want_[k_]);                                             \
        printf("  %-10s %s\n", nb_status_name(status), (err)->msg);                       \
    } while (0)

static nb_model *model(const char *desc, uint64_t seed)
{
    nb_error err = {0};
    nb_model *m = nb_model_new(desc, "test", seed, NULL, &err);
    CHECK_MSG(m != NULL, "%s: %s", desc, err.msg);
    if (m) {
        nb_rng rng;
        nb_rng_seed(&rng, seed);
        nb_graph_init_params(nb_model_graph(m), NB_INIT_KAIMING_UNIFORM, &rng);
    }
    return m;
}

static nb_train_config config(void)
{
    nb_train_config cfg;
    nb_train_config_default(&cfg);
    cfg.epochs = 1;
    cfg.batch = 16;
    return cfg;
}

/* (a) A model whose input size does not match the data. */
static void test_feature_mismatch(void)
{
    printf("feature count mismatch:\n");
    nb_dataset ds;
    nb_error err = {0};
    CHECK_OK(nb_spirals(&ds, 10, 3, 0.1f, 1, &err), &err); /* 2 features */
    nb_model *m = model("4-8-3", 1);
    if (!m)
        return;
    nb_status s = nb_model_check_data(m, &ds, "training data", &err);
    CHECK_ERR(s, NB_ESHAPE, &err, "training data", "2 features", "'x'", "expects 4");

    nb_train_config cfg = config();
    memset(&err, 0, sizeof err);
    nb_trainer *t = nb_trainer_new(m, &ds, NULL, &cfg, &err);
    CHECK(t == NULL);
    CHECK_ERR(err.code, NB_ESHAPE, &err, "2 features", "expects 4");
    nb_trainer_free(t);

    /* A validation set of another width, beside a training set that fits. */
    nb_model *m2 = model("2-8-3", 1);
    nb_dataset wide = {.count = 3, .ndim = 1, .dims = {5}, .features = 5, .dtype = NB_F32};
    float x[15] = {0};
    int32_t y[3] = {0, 1, 2};
    wide.f32 = x;
    wide.labels = y;
    wide.classes = 3;
    memset(&err, 0, sizeof err);
    t = m2 ? nb_trainer_new(m2, &ds, &wide, &cfg, &err) : NULL;
    CHECK(t == NULL);
    CHECK_ERR(err.code, NB_ESHAPE, &err, "validation data", "5 features", "expects 2");
    nb_trainer_free(t);

    /* Prediction and evaluation check the same way. */
    float probs[9];
    memset(&err, 0, sizeof err);
    s = nb_model_predict(m, &ds, NULL, 3, probs, NULL, &err);
    CHECK_ERR(s, NB_ESHAPE, &err, "2 features", "expects 4");
    memset(&err, 0, sizeof err);
    s = nb_evaluate(m, &ds, NULL, NULL, NULL, &err);
    CHECK_ERR(s, NB_ESHAPE, &err, "2 features", "expects 4");
    nb_model_free(m2);
    nb_model_free(m);
    nb_dataset_free(&ds);
}

/* (b) An empty data set, in memory and from files. */
static void test_empty(void)
{
    printf("empty data sets:\n");
    nb_model *m = model("2-8-3", 1);
    if (!m)
        return;
    nb_dataset empty = {.count = 0, .ndim = 1, .dims = {2}, .features = 2, .dtype = NB_F32};
    nb_error err = {0};
    nb_status s = nb_model_check_data(m, &empty, "training data", &err);
    CHECK_ERR(s, NB_EINVAL, &err, "training data", "empty");
    nb_train_config cfg = config();
    memset(&err, 0, sizeof err);
    nb_trainer *t = nb_trainer_new(m, &empty, NULL, &cfg, &err);
    CHECK(t == NULL);
    CHECK_ERR(err.code, NB_EINVAL, &err, "empty");
    nb_trainer_free(t);
    memset(&err, 0, sizeof err);
    s = nb_evaluate(m, &empty, NULL, NULL, NULL, &err);
    CHECK_ERR(s, NB_EINVAL, &err, "empty");

    /* The loaders refuse an empty set before it reaches a model. */
    const char *csv = in_dir("header-only.csv");
    FILE *f = fopen(csv, "w");
    CHECK(f && fputs("a,b,label\n\n", f) >= 0 && fclose(f) == 0);
    nb_dataset ds;
    memset(&err, 0, sizeof err);
    s = nb_csv_load(&ds, csv, "label", &err);
    CHECK_ERR(s, NB_EFORMAT, &err, csv, "no data rows");
    CHECK(ds.count == 0 && !ds.f32 && !ds.labels);

    const char *idx = in_dir("zero-images.idx3");
    const unsigned char header[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};
    f = fopen(idx, "wb");
    CHECK(f && fwrite(header, 1, sizeof header, f) == sizeof header && fclose(f) == 0);
    memset(&err, 0, sizeof err);
    s = nb_idx_load(&ds, idx, NULL, &err);
    CHECK_ERR(s, NB_EFORMAT, &err, idx, "zero samples");
    CHECK(ds.count == 0 && !ds.u8);
    nb_model_free(m);
}

/* Weights of m equal to those of the model file at path. */
static int same_weights(nb_model *m, const char *path)
{
    nb_error err = {0};
    nb_model *back = nb_model_load(path, 1, NULL, &err);
    CHECK_MSG(back != NULL, "%s does not load after the failed save: %s", path, err.msg);
    if (!back)
        return 0;
    nb_graph *a = nb_model_graph(m), *b = nb_model_graph(back);
    size_t n = nb_graph_param_floats(a);
    int same = nb_graph_param_floats(b) == n &&
               memcmp(nb_graph_params(a), nb_graph_params(b), n * sizeof(float)) == 0;
    nb_model_free(back);
    return same;
}

static int count_temp_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* In a child process whose files may not grow past `limit` bytes (the disk is "full";
 * SIGXFSZ ignored so that write fails with EFBIG instead of killing it), saves m — or, with
 * a trainer, a checkpoint — to path. The child's exit status: 0 when the save failed with
 * NB_EIO and a message saying the previous file is unchanged, 1 if it succeeded, 2 if it
 * failed otherwise. */
static int save_on_full_disk(nb_model *m, nb_trainer *t, const char *path, rlim_t limit)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl;
        if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(3);
        rl.rlim_cur = limit;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(3);
        nb_error err = {0};
        nb_status s = t ? nb_trainer_save_checkpoint(t, path, &err) : nb_model_save(m, path, &err);
        printf("  %-10s %s\n", nb_status_name(s), err.msg);
        fflush(stdout);
        _exit(s == NB_OK ? 1
              : s == NB_EIO && strstr(err.msg, path) && strstr(err.msg, "File too large") &&
                      strstr(err.msg, "previous file, if any, is unchanged")
                  ? 0
                  : 2);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* (c) A full disk while saving leaves the previous file intact and loadable. */
static void test_full_disk(void)
{
    printf("full disk while saving:\n");
    const char *path = in_dir("model.safetensors");
    nb_model *m = model("16-64-10", 1); /* 1738 floats: about 7 kB */
    if (!m)
        return;
    nb_error err = {0};
    CHECK_OK(nb_model_save(m, path, &err), &err);
    CHECK(same_weights(m, path));

    /* New weights, saved on a disk with room for 4 kB: the write fails part-way. */
    nb_model *m2 = model("16-64-10", 2);
    if (!m2)
        return;
    CHECK(!same_weights(m2, path));
    CHECK_MSG(save_on_full_disk(m2, NULL, path, 4096) == 0, "model save on a full disk");
    CHECK_MSG(same_weights(m, path), "the previous model file changed");
    CHECK(count_temp_files() == 0);
    /* With room again, the same save succeeds. */
    CHECK_OK(nb_model_save(m2, path, &err), &err);
    CHECK(same_weights(m2, path));

    /* A checkpoint: the same guarantee. */
    nb_dataset ds;
    CHECK_OK(nb_spirals(&ds, 20, 10, 0.1f, 1, &err), &err);
    nb_model *c = model("2-256-10", 3); /* with momentum: about 12 kB */
    nb_train_config cfg = config();
    nb_trainer *t = c ? nb_trainer_new(c, &ds, NULL, &cfg, &err) : NULL;
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        const char *ckpt = in_dir("run.ckpt");
        CHECK_OK(nb_trainer_save_checkpoint(t, ckpt, &err), &err);
        CHECK_OK(nb_trainer_run(t, NULL, &err), &err);
        CHECK_MSG(save_on_full_disk(c, t, ckpt, 8192) == 0, "checkpoint save on a full disk");
        CHECK(count_temp_files() == 0);
        /* The old checkpoint resumes: epoch 0, so the run trains again. */
        nb_trainer *t2 = nb_trainer_new(c, &ds, NULL, &cfg, &err);
        CHECK(t2 != NULL);
        if (t2) {
            CHECK_OK(nb_trainer_resume(t2, ckpt, &err), &err);
            CHECK(nb_trainer_epoch(t2) == 0);
        }
        nb_trainer_free(t2);
    }
    nb_trainer_free(t);
    nb_model_free(c);
    nb_dataset_free(&ds);
    nb_model_free(m2);
    nb_model_free(m);
}

/* A model file for "2-8-3" (fc1.weight [8,2], fc1.bias [8], fc2.weight [3,8], fc2.bias [3]),
 * with the listed changes. */
typedef struct tensor_edit {
    const char *drop;       /* tensor left out */
    const char *reshape;    /* tensor given `dims` instead */
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    const char *extra;      /* a tensor added, of 4 floats */
} tensor_edit;

static void write_model(const char *path, const char *description, tensor_edit e)
{
    static float zeros[64];
    nb_tensor_ref ts[6] = {
        {"fc1.weight", 2, {8, 2}, zeros}, {"fc1.bias", 1, {8}, zeros},
        {"fc2.weight", 2, {3, 8}, zeros}, {"fc2.bias", 1, {3}, zeros},
    };
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if (e.drop && strcmp(ts[i].name, e.drop) == 0)
            continue;
        ts[n] = ts[i];
        if (e.reshape && strcmp(ts[n].name, e.reshape) == 0) {
            ts[n].ndim = e.ndim;
            memcpy(ts[n].dims, e.dims, sizeof e.dims);
        }
        n++;
    }
    if (e.extra)
        ts[n++] = (nb_tensor_ref){e.extra, 1, {4}, zeros};
    const char *keys[] = {"nabla.description"}, *values[] = {description};
    nb_error err = {0};
    CHECK_OK(nb_safetensors_write(path, ts, n, keys, values, 1, &err), &err);
}

static void expect_load_error(const char *name, const char *description, tensor_edit e,
                              nb_status code, const char *want1, const char *want2)
{
    const char *path = in_dir(name);
    write_model(path, description, e);
    nb_error err = {0};
    nb_model *m = nb_model_load(path, 1, NULL, &err);
    CHECK_MSG(m == NULL, "%s loaded", name);
    nb_model_free(m);
    CHECK_ERR(err.code, code, &err, path, want1, want2);
}

/* (d) Tensors that do not match the description. */
static void test_mismatched_tensors(void)
{
    printf("model files whose tensors do not match the description:\n");
    const char *ok = in_dir("ok.safetensors");
    write_model(ok, "2-8-3", (tensor_edit){0});
    nb_error err = {0};
    nb_model *m = nb_model_load(ok, 1, NULL, &err);
    CHECK_MSG(m != NULL, "the unedited file does not load: %s", err.msg);
    nb_model_free(m);

    expect_load_error("missing.safetensors", "2-8-3", (tensor_edit){.drop = "fc2.bias"},
                      NB_EFORMAT, "'fc2.bias'", "missing");
    expect_load_error("missing-weight.safetensors", "2-8-3",
                      (tensor_edit){.drop = "fc1.weight", .extra = "unused"}, NB_EFORMAT,
                      "'fc1.weight'", "missing");
    /* Wrong shapes: the message shows both whole shapes. */
    expect_load_error("transposed.safetensors", "2-8-3",
                      (tensor_edit){.reshape = "fc1.weight", .ndim = 2, .dims = {2, 8}},
                      NB_ESHAPE, "'fc1.weight' has shape [2,8]", "expects [8,2]");
    expect_load_error("bias-2d.safetensors", "2-8-3",
                      (tensor_edit){.reshape = "fc2.bias", .ndim = 2, .dims = {3, 1}}, NB_ESHAPE,
                      "'fc2.bias' has shape [3,1]", "expects [3]");
    expect_load_error("scalar.safetensors", "2-8-3",
                      (tensor_edit){.reshape = "fc2.bias", .ndim = 0}, NB_ESHAPE,
                      "'fc2.bias' has shape []", "expects [3]");
    expect_load_error("extra.safetensors", "2-8-3", (tensor_edit){.extra = "fc3.weight"},
                      NB_EFORMAT, "'fc3.weight'", "not a parameter or buffer of the model");
    /* A description of another model. */
    expect_load_error("other-model.safetensors", "64-64-3", (tensor_edit){0}, NB_ESHAPE,
                      "'fc1.weight' has shape [8,2]", "expects [64,64]");
    /* One whose parameters could not possibly be in the file is refused before they are
     * allocated (2 x 64 GiB here). */
    expect_load_error("huge-model.safetensors", "2-131072-131072-3", (tensor_edit){0},
                      NB_EFORMAT, "linear 'fc2' needs 17180000256 parameter floats",
                      "far more than the 51 that the file's tensors hold");
    expect_load_error("other-widths.safetensors", "2-3-8", (tensor_edit){0}, NB_ESHAPE,
                      "'fc1.weight' has shape [8,2]", "expects [3,2]");
}

/* (e) Labels out of range are refused before training, naming the sample and the label. */
static void test_labels_out_of_range(void)
{
    printf("labels out of range:\n");
    nb_dataset ds;
    nb_error err = {0};
    CHECK_OK(nb_spirals(&ds, 10, 3, 0.1f, 1, &err), &err); /* labels 0, 1, 2 */
    nb_model *m = model("2-8-2", 1);                           /* two classes */
    if (!m)
        return;
    int64_t first = -1;
    for (int64_t i = 0; i < ds.count && first < 0; i++)
        if (ds.labels[i] == 2)
            first = i;
    char sample[64];
    snprintf(sample, sizeof sample, "sample %lld has label 2", (long long)first);

    size_t n = nb_graph_param_floats(nb_model_graph(m));
    float *before = malloc(n * sizeof *before);
    if (before)
        memcpy(before, nb_graph_params(nb_model_graph(m)), n * sizeof *before);
    nb_train_config cfg = config();
    nb_trainer *t = nb_trainer_new(m, &ds, NULL, &cfg, &err);
    CHECK(t == NULL);
    CHECK_ERR(err.code, NB_EINVAL, &err, "training data", sample, "2 classes (0 to 1)");
    nb_trainer_free(t);
    CHECK(before && memcmp(before, nb_graph_params(nb_model_graph(m)), n * sizeof *before) == 0);
    free(before);

    /* A negative label, in a set built by hand, and in a validation set. */
    nb_model *m3 = model("2-8-3", 1);
    float x[6] = {0};
    int32_t y[3] = {0, -1, 1};
    nb_dataset bad = {.count = 3, .ndim = 1, .dims = {2}, .features = 2, .dtype = NB_F32,
                      .f32 = x, .labels = y, .classes = 2};
    memset(&err, 0, sizeof err);
    nb_status s = m3 ? nb_model_check_data(m3, &bad, "training data", &err) : NB_EINVAL;
    CHECK_ERR(s, NB_EINVAL, &err, "sample 1 has label -1", "3 classes");
    memset(&err, 0, sizeof err);
    t = m3 ? nb_trainer_new(m3, &ds, &bad, &cfg, &err) : NULL;
    CHECK(t == NULL);
    CHECK_ERR(err.code, NB_EINVAL, &err, "validation data", "sample 1 has label -1");
    nb_trainer_free(t);

    /* Evaluation refuses too, rather than indexing a confusion matrix out of bounds. */
    int64_t confusion[4];
    memset(&err, 0, sizeof err);
    s = nb_evaluate(m, &ds, NULL, NULL, confusion, &err);
    CHECK_ERR(s, NB_EINVAL, &err, sample);
    nb_model_free(m3);
    nb_model_free(m);
    nb_dataset_free(&ds);
}

/* A description far beyond a hand-written one: its names are found by linear search, so it
 * is refused at a node count that still parses in well under a second. */
static void test_huge_description(void)
{
    printf("huge descriptions, numbers beyond a float:\n");
    enum { STATEMENTS = 20000 };
    char *text = malloc(STATEMENTS * 24 + 32);
    if (!text)
        return;
    size_t at = (size_t)sprintf(text, "x = input(2)\n");
    for (int i = 0; i < STATEMENTS; i++)
        at += (size_t)sprintf(text + at, "a%d = relu(x)\n", i);
    nb_error err = {0};
    nb_model *m = nb_model_new(text, "huge.nb", 1, NULL, &err);
    CHECK(m == NULL);
    CHECK_ERR(err.code, NB_EFORMAT, &err, "huge.nb:16385:1", "more than 16384 nodes");
    nb_model_free(m);
    free(text);

    /* Numbers that are not finite floats. */
    const char *bad[] = {"x = input(2)\ny = scale(x, inf)\n", "x = input(2)\ny = scale(x, 1e39)\n",
                         "x = input(2)\ny = scale(x, -nan)\n", "x = input(2)\ny = dropout(x, nan)\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        m = nb_model_new(bad[i], "num.nb", 1, NULL, &err);
        CHECK_MSG(m == NULL, "accepted: %s", bad[i]);
        CHECK_ERR(err.code, NB_EFORMAT, &err, "num.nb:2:", "expected a finite number");
        nb_model_free(m);
    }
}

int main(void)
{
    if (make_dir("nabla-faults"))
        return 1;
    test_feature_mismatch();
    test_empty();
    test_full_disk();
    test_mismatched_tensors();
    test_labels_out_of_range();
    test_huge_description();
    remove_dir();
    return check_finish("test_faults");
}
