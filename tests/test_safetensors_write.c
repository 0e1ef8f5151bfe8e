/* Safetensors writing: bit-exact round trips, the header as written (compact JSON, offsets in
 * order, padded to 8 bytes), atomic replacement when a write fails. Reading malformed files is
 * in test_safetensors.c. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setrlimit */
#include "check.h"
#include "nabla.h"
#include "safetensors_util.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)size + 1);
    *n = b ? fread(b, 1, (size_t)size, f) : 0;
    fclose(f);
    return b;
}

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* ---- round trip ------------------------------------------------------------------------- */

static float vec[] = {-0.0f, FLT_MIN, 1e-45f /* denormal */, FLT_MAX, -FLT_MAX, 0.1f, -3.0f};
static float mat[3 * 4], cube[2 * 3 * 4], quad[1 * 2 * 3 * 2], scalar = 3.5f, uni[2] = {1, 2};

static const nb_tensor_ref tensors[] = {
    {"fc1.weight", 2, {3, 4}, mat},      {"vec", 1, {7}, vec},
    {"scalar", 0, {0}, &scalar},         {"cube", 3, {2, 3, 4}, cube},
    {"empty", 2, {0, 5}, NULL},          {"quad", 4, {1, 2, 3, 2}, quad},
    {"unicode.\xcf\x80", 1, {2}, uni},
};
#define NT ((int)(sizeof tensors / sizeof tensors[0]))
static const char *const keys[] = {"format", "note", "empty"};
static const char *const values[] = {"pt", "quote \" backslash \\ newline \n tab \t \xcf\x80", ""};

static void test_round_trip(void)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    for (size_t i = 0; i < sizeof mat / sizeof mat[0]; i++)
        mat[i] = nb_rng_normal(&rng);
    for (size_t i = 0; i < sizeof cube / sizeof cube[0]; i++)
        cube[i] = nb_rng_normal(&rng) * 1e-30f;
    for (size_t i = 0; i < sizeof quad / sizeof quad[0]; i++)
        quad[i] = nb_rng_uniform(&rng) * 1e30f;

    const char *p = in_dir("round.safetensors");
    nb_error err = {0};
    CHECK_OK(nb_safetensors_write(p, tensors, NT, keys, values, 3, &err), &err);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0644);

    nb_safetensors *st = NULL;
    CHECK_OK(nb_safetensors_read(p, &st, &err), &err);
    if (!st)
        return;
    CHECK(nb_safetensors_count(st) == NT);
    for (int i = 0; i < NT && i < nb_safetensors_count(st); i++) {
        const nb_tensor_ref *t = nb_safetensors_at(st, i), *w = &tensors[i];
        CHECK_MSG(strcmp(t->name, w->name) == 0, "tensor %d is '%s', wrote '%s'", i, t->name,
                  w->name);
        CHECK(nb_safetensors_find(st, w->name) == t);
        CHECK(t->ndim == w->ndim);
        size_t n = 1;
        for (int d = 0; d < w->ndim; d++) {
            CHECK(t->dims[d] == w->dims[d]);
            n *= (size_t)w->dims[d];
        }
        CHECK(t->data != NULL && (uintptr_t)t->data % 64 == 0);
        CHECK_MSG(n == 0 || memcmp(t->data, w->data, n * 4) == 0, "tensor '%s' differs",
                  w->name);
    }
    CHECK(nb_safetensors_find(st, "nope") == NULL && nb_safetensors_find(st, "fc1") == NULL);
    for (int i = 0; i < 3; i++) {
        const char *v = nb_safetensors_meta(st, keys[i]);
        CHECK_MSG(v && strcmp(v, values[i]) == 0, "metadata '%s' is '%s'", keys[i],
                  v ? v : "(null)");
    }
    CHECK(nb_safetensors_meta(st, "absent") == NULL);
    nb_safetensors_free(st);

    /* No tensors, no metadata: "{}" padded to 8. */
    p = in_dir("none.safetensors");
    CHECK_OK(nb_safetensors_write(p, NULL, 0, NULL, NULL, 0, &err), &err);
    size_t n = 0;
    unsigned char *b = read_bytes(p, &n);
    CHECK(b && n == 16 && b[0] == 8 && memcmp(b + 8, "{}      ", 8) == 0);
    free(b);
    CHECK_OK(nb_safetensors_read(p, &st, &err), &err);
    CHECK(nb_safetensors_count(st) == 0);
    nb_safetensors_free(st);
}

/* The bytes as written: compact JSON (metadata first, tensors in the order given, offsets
 * contiguous), padded with spaces to a multiple of 8, then exactly the tensors' bytes. */
static void test_header_bytes(void)
{
    size_t n = 0;
    unsigned char *b = read_bytes(in_dir("round.safetensors"), &n);
    CHECK(b && n >= 8);
    if (!b || n < 8)
        return;
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | b[i];
    CHECK_MSG(hn % 8 == 0, "header size %llu is not a multiple of 8", (unsigned long long)hn);
    CHECK(hn <= n - 8);
    size_t data = 0;
    for (int i = 0; i < NT; i++) {
        size_t e = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            e *= (size_t)tensors[i].dims[d];
        data += 4 * e;
    }
    CHECK(n == 8 + hn + data);

    const char *h = (const char *)b + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hn, &end, 0);
    CHECK(root && cJSON_IsObject(root));
    CHECK(end && (size_t)(end - h) <= hn && hn - (size_t)(end - h) < 8);
    for (const char *q = end; q && q < h + hn; q++)
        CHECK(*q == ' ');
    CHECK(h[0] == '{' && memchr(h, '\n', (size_t)hn) == NULL); /* compact */
    if (!root)
        return;
    const cJSON *it = root->child;
    CHECK(it && strcmp(it->string, "__metadata__") == 0);
    CHECK(cJSON_GetArraySize(it) == 3);
    uint64_t pos = 0;
    int i = 0;
    for (it = it ? it->next : NULL; it; it = it->next, i++) {
        CHECK(i < NT && strcmp(it->string, tensors[i].name) == 0);
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype"),
                    *sh = cJSON_GetObjectItemCaseSensitive(it, "shape"),
                    *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        CHECK(cJSON_IsString(dt) && strcmp(dt->valuestring, "F32") == 0);
        CHECK(cJSON_IsArray(sh) && cJSON_GetArraySize(sh) == tensors[i].ndim);
        CHECK(cJSON_IsArray(off) && cJSON_GetArraySize(off) == 2);
        if (cJSON_GetArraySize(off) == 2) {
            CHECK((uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble == pos);
            pos = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        }
    }
    CHECK(i == NT && pos == data);
    /* The first tensor's entry, spelled out. */
    CHECK(strstr(h, "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}"));
    CHECK(strstr(h, "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[176,176]}"));
    /* Data little-endian, in order: the first float of fc1.weight. */
    uint32_t bits;
    memcpy(&bits, &mat[0], 4);
    CHECK(b[8 + hn] == (bits & 0xff) && b[8 + hn + 3] == bits >> 24);
    cJSON_Delete(root);
    free(b);
}

/* ---- failures while writing ------------------------------------------------------------- */

static void check_still_v1(const char *path)
{
    nb_safetensors *st = NULL;
    nb_error err = {0};
    CHECK_OK(nb_safetensors_read(path, &st, &err), &err);
    const nb_tensor_ref *t = nb_safetensors_find(st, "vec");
    CHECK(nb_safetensors_count(st) == 1 && t && t->dims[0] == 7 && memcmp(t->data, vec, 28) == 0);
    nb_safetensors_free(st);
}

static void expect_write_fail(const char *path, const nb_tensor_ref *t, int n, nb_status code,
                              const char *expect)
{
    nb_error err = {0};
    nb_status s = nb_safetensors_write(path, t, n, NULL, NULL, 0, &err);
    CHECK_MSG(s == code, "write %s: status %s, expected %s (%s)", path, nb_status_name(s),
              nb_status_name(code), err.msg);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, expect), "message '%s' lacks '%s'",
              err.msg, expect);
    printf("  %-10s %s\n", nb_status_name(s), err.msg);
}

static void test_write_failures(void)
{
    printf("write failures:\n");
    static float big[100000];
    const nb_tensor_ref v1 = {"vec", 1, {7}, vec}, v2 = {"big", 1, {100000}, big};
    const char *p = in_dir("atomic.safetensors");
    nb_error err = {0};
    CHECK_OK(nb_safetensors_write(p, &v1, 1, NULL, NULL, 0, &err), &err);
    CHECK(chmod(p, 0600) == 0);

    /* The disk "fills up" part-way through: RLIMIT_FSIZE makes write(2) fail with EFBIG, as
     * ENOSPC would (SIGXFSZ ignored, so the call fails instead of killing us). */
    struct rlimit old, lim;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 4096;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    nb_status s = nb_safetensors_write(p, &v2, 1, NULL, NULL, 0, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, old_handler);
    CHECK(s == NB_EIO);
    CHECK_MSG(strstr(err.msg, p) && strstr(err.msg, "File too large") &&
                  strstr(err.msg, "previous file, if any, is unchanged"),
              "message: %s", err.msg);
    printf("  %-10s %s\n", nb_status_name(s), err.msg);
    check_still_v1(p);
    CHECK(count_temp_files() == 0);

    /* Replacing a file keeps its permissions. */
    CHECK_OK(nb_safetensors_write(p, &v1, 1, NULL, NULL, 0, &err), &err);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600);

    /* The temporary name cannot be created (NAME_MAX is 255; the target's is 250 bytes, so
     * its temporary name is 261). The old file, written directly, survives. */
    char longname[251];
    memset(longname, 'n', 250);
    longname[250] = '\0';
    const char *lp = in_dir(longname);
    size_t n = 0;
    unsigned char *bytes = read_bytes(p, &n);
    write_bytes(lp, bytes, n);
    free(bytes);
    expect_write_fail(lp, &v2, 1, NB_EIO, "cannot create a temporary file beside it");
    check_still_v1(lp);
    unlink(lp);

    /* A directory that cannot be written (permissions do not bind root). */
    const char *sub = in_dir("locked"), *sp = in_dir("locked/model.safetensors");
    CHECK(mkdir(sub, 0755) == 0);
    CHECK_OK(nb_safetensors_write(sp, &v1, 1, NULL, NULL, 0, &err), &err);
    CHECK(chmod(sub, 0555) == 0);
    if (geteuid() != 0) {
        expect_write_fail(sp, &v2, 1, NB_EIO, "Permission denied");
        check_still_v1(sp);
    } else
        printf("  (skipped the read-only directory: running as root)\n");
    CHECK(chmod(sub, 0755) == 0);
    unlink(sp);

    /* A directory as the target, and a directory that does not exist. */
    expect_write_fail(sub, &v1, 1, NB_EIO, "is a directory");
    struct stat ds;
    CHECK(stat(sub, &ds) == 0 && S_ISDIR(ds.st_mode));
    rmdir(sub);
    expect_write_fail(in_dir("no/such/dir.safetensors"), &v1, 1, NB_EIO,
                      "No such file or directory");
    CHECK(count_temp_files() == 0);

    /* Arguments that would make a file the reader rejects: nothing is written. */
    float bad[3] = {1, NAN, 2};
    const nb_tensor_ref nan_t = {"w", 1, {3}, bad}, dup[2] = {v1, v1},
                        deep = {"d", 5, {1, 1, 1, 1}, vec}, reserved = {"__metadata__", 1, {7}, vec},
                        neg = {"n", 1, {-1}, vec}, noname = {"", 1, {7}, vec},
                        latin1 = {"caf\xe9", 1, {7}, vec}, nodata = {"x", 1, {7}, NULL};
    const char *q = in_dir("never.safetensors");
    expect_write_fail(q, &nan_t, 1, NB_ENUMERIC, "tensor 'w': element 1 is NaN");
    expect_write_fail(q, dup, 2, NB_EINVAL, "duplicate tensor name 'vec'");
    expect_write_fail(q, &deep, 1, NB_EINVAL, "ndim 5");
    expect_write_fail(q, &reserved, 1, NB_EINVAL, "reserved");
    expect_write_fail(q, &neg, 1, NB_EINVAL, "dims[0] = -1");
    expect_write_fail(q, &noname, 1, NB_EINVAL, "empty");
    expect_write_fail(q, &latin1, 1, NB_EINVAL, "not UTF-8");
    expect_write_fail(q, &nodata, 1, NB_EINVAL, "data is NULL");
    /* More tensors than the reader's token budget allows (zero-size, so cheap). */
    enum { MANY = 200000 };
    nb_tensor_ref *many = calloc(MANY, sizeof *many);
    char *names = calloc(MANY, 16);
    CHECK(many && names);
    if (many && names) {
        for (int i = 0; i < MANY; i++) {
            snprintf(names + 16 * i, 16, "t%d", i);
            many[i] = (nb_tensor_ref){names + 16 * i, 1, {0}, NULL};
        }
        expect_write_fail(q, many, MANY, NB_EINVAL, "which nabla's reader refuses");
    }
    free(many);
    free(names);
    const char *mk[2] = {"k", "k"}, *mv[2] = {"1", "2"};
    s = nb_safetensors_write(q, &v1, 1, mk, mv, 2, &err);
    CHECK(s == NB_EINVAL && strstr(err.msg, "duplicate metadata key 'k'"));
    CHECK(access(q, F_OK) != 0);
}

int main(void)
{
    if (make_dir("nb_safetensors"))
        return 1;
    test_round_trip();
    test_header_bytes();
    test_write_failures();
    remove_dir();
    return check_finish("test_safetensors_write");
}
