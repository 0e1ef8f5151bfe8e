/* Safetensors files: bit-exact round trips, the header as written (compact JSON, offsets in
 * order, padded to 8 bytes), atomic replacement when a write fails, and a set of malformed
 * files built byte by byte here, each of which must be rejected with a message naming the
 * file and the field or byte at fault. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setrlimit */
#include "check.h"
#include "nabla.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <float.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

/* dir/name, in one of a few rotating buffers (so two can be used in one call). */
static const char *in_dir(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(bytes, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

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

static void put_le64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
}

/* A safetensors file: the header size `size` (normally strlen(header)), the header, then
 * `dlen` bytes of data: little-endian floats 0, 1, 2, ... with `special` (a bit pattern such
 * as NaN) at float index `at` when at >= 0. */
static void make_file(const char *path, uint64_t size, const char *header, size_t dlen,
                      int at, uint32_t special)
{
    size_t hlen = strlen(header);
    unsigned char *b = calloc(8 + hlen + dlen + 4, 1);
    put_le64(b, size);
    memcpy(b + 8, header, hlen);
    for (size_t i = 0; i + 4 <= dlen; i += 4) {
        float v = (float)(i / 4);
        uint32_t bits;
        memcpy(&bits, &v, 4);
        if ((int)(i / 4) == at)
            bits = special;
        for (int k = 0; k < 4; k++)
            b[8 + hlen + i + (size_t)k] = (unsigned char)(bits >> (8 * k));
    }
    write_bytes(path, b, 8 + hlen + dlen);
    free(b);
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

/* The file must be rejected with a message naming it and containing `expect`. */
static void expect_reject(const char *path, const char *expect)
{
    nb_safetensors *st = NULL;
    nb_error err = {0};
    nb_status s = nb_safetensors_read(path, &st, &err);
    CHECK_MSG(s != NB_OK, "%s was accepted", path);
    CHECK(st == NULL);
    CHECK_MSG(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
    CHECK_MSG(strstr(err.msg, expect) != NULL, "message '%s' lacks '%s'", err.msg, expect);
    printf("  %-10s %s\n", nb_status_name(s), err.msg);
    nb_safetensors_free(st);
}

/* ---- malformed files -------------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    const char *header;
    size_t data;    /* bytes of data after the header */
    int at;         /* float index of `special`, or -1 */
    uint32_t special;
    const char *expect;
} bad_case;

#define T(name, dtype, shape, offsets)                                                      \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"
#define F32(name, shape, offsets) T(name, "F32", shape, offsets)

static const bad_case bad_cases[] = {
    {"utf8", "{\"a\xff\":1}", 0, -1, 0, "header byte 3 (file offset 11): invalid UTF-8"},
    {"utf8-overlong", "{\"\xc0\xaf\":1}", 0, -1, 0, "invalid UTF-8"},
    {"utf8-surrogate", "{\"\xed\xa0\x80\":1}", 0, -1, 0, "invalid UTF-8"},
    {"utf8-truncated", "{\"ab\":1} \xe2\x82", 0, -1, 0, "header byte 9 (file offset 17)"},
    {"not-json", "{\"a\": }", 0, -1, 0, "header is not valid JSON"},
    {"not-object", "[1,2,3]", 0, -1, 0, "header is an array; expected a JSON object"},
    {"trailing", "{}  x", 0, -1, 0, "header byte 4 (file offset 12): trailing data"},
    {"control", "{\"a\x01\":1}", 0, -1, 0, "raw control byte 0x01"},
    {"nul-escape", "{\"a\\u0000b\":1}", 0, -1, 0, "\\u0000"},
    {"entry-number", "{\"w\":5}", 0, -1, 0, "tensor 'w': entry is 5; expected an object"},
    {"no-dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, 0,
     "tensor 'w': missing field 'dtype'"},
    {"no-shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, -1, 0,
     "missing field 'shape'"},
    {"no-offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1, 0,
     "missing field 'data_offsets'"},
    {"i32", "{" T("w", "I32", "[1]", "[0,4]") "}", 4, -1, 0,
     "tensor 'w': dtype: expected F32, F16, BF16, F64 or I64, found I32"},
    {"f8", "{" T("w", "F8_E4M3", "[4]", "[0,4]") "}", 4, -1, 0, "found F8_E4M3"},
    {"dtype-lower", "{" T("w", "f32", "[1]", "[0,4]") "}", 4, -1, 0, "found f32"},
    {"dtype-number", "{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, 0,
     "dtype is 32; expected a string such as \"F32\""},
    /* the byte count follows the dtype: 2 per F16/BF16 element, 8 per F64 */
    {"f16-size", "{" T("w", "F16", "[2]", "[0,8]") "}", 8, -1, 0,
     "data_offsets [0, 8] hold 8 bytes, shape [2] needs 4 (2-byte F16 elements)"},
    {"f64-size", "{" T("w", "F64", "[2]", "[0,8]") "}", 8, -1, 0,
     "shape [2] needs 16 (8-byte F64 elements)"},
    {"f64-overflow", "{" T("w", "F64", "[2147483648,2147483648]", "[0,8]") "}", 8, -1, 0,
     "element count overflows 64 bits"},
    /* values: the data are float32 bit patterns, read here as pairs of halves or as doubles */
    {"f16-inf", "{" T("w", "F16", "[4]", "[0,8]") "}", 8, 1, 0x7c000000u,
     "tensor 'w': element 3 [3] (file offset 68) is +Inf"},
    {"f16-nan", "{" T("w", "F16", "[2,2]", "[0,8]") "}", 8, 0, 0xfe000000u,
     "element 1 [0,1] (file offset 66) is NaN"},
    {"bf16-nan", "{" T("w", "BF16", "[4]", "[0,8]") "}", 8, 0, 0x7fc10000u, "element 1 [1]"},
    {"bf16-neg-inf", "{" T("w", "BF16", "[2]", "[0,4]") "}", 4, 0, 0xff800000u, "is -Inf"},
    {"f64-nan", "{" T("w", "F64", "[1]", "[0,8]") "}", 8, 1, 0x7ff80000u, "element 0 [0] "
     "(file offset 62) is NaN"},
    {"i64-inexact", "{" T("n", "I64", "[1]", "[0,8]") "}", 8, 1, 0x00000001u,
     "tensor 'n': element 0 [0] (file offset 62) is 4294967296 in I64, beyond the integers "
     "float32 holds exactly"},
    {"f64-beyond-f32", "{" T("w", "F64", "[1]", "[0,8]") "}", 8, 1, 0x7fe00000u,
     "element 0 [0] (file offset 62) is 8.9884656743115795e+307 in F64, beyond float32's range"},
    {"extra-field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"foo\":1}}",
     4, -1, 0, "unexpected field 'foo'"},
    {"dup-field", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4, -1, 0, "duplicate field 'dtype'"},
    {"shape-string", "{" F32("w", "\"2\"", "[0,8]") "}", 8, -1, 0,
     "shape is the string \"2\"; expected an array"},
    {"shape-negative", "{" F32("w", "[2,-1]", "[0,8]") "}", 8, -1, 0,
     "tensor 'w': shape[1] is -1; expected a non-negative integer"},
    {"shape-bool", "{" F32("w", "[true]", "[0,4]") "}", 4, -1, 0, "shape[0] is true"},
    {"shape-fraction", "{" F32("w", "[2.5]", "[0,8]") "}", 8, -1, 0,
     "number '2.5' is not an integer"},
    {"shape-exponent", "{" F32("w", "[1e3]", "[0,4000]") "}", 4000, -1, 0,
     "number '1e3' is not an integer"},
    {"shape-leading-zero", "{" F32("w", "[02]", "[0,8]") "}", 8, -1, 0, "leading zero"},
    {"shape-5d", "{" F32("w", "[1,1,1,1,1]", "[0,4]") "}", 4, -1, 0,
     "shape has more than 4 dims"},
    {"shape-overflow", "{" F32("w", "[4294967296,4294967296,4294967296]", "[0,4]") "}", 4, -1,
     0, "shape [4294967296,4294967296,4294967296]: element count overflows"},
    {"shape-huge", "{" F32("w", "[9007199254740993]", "[0,4]") "}", 4, -1, 0,
     "shape[0] is 9007199254740992"},
    {"offsets-one", "{" F32("w", "[1]", "[0]") "}", 4, -1, 0,
     "data_offsets is not a pair of integers; expected two non-negative integers"},
    {"offsets-three", "{" F32("w", "[1]", "[0,4,8]") "}", 4, -1, 0, "expected two"},
    {"offsets-object", "{" F32("w", "[1]", "{}") "}", 4, -1, 0,
     "data_offsets is an object; expected two"},
    {"offsets-negative", "{" F32("w", "[1]", "[-4,0]") "}", 4, -1, 0, "expected two"},
    {"offsets-reversed", "{" F32("w", "[1]", "[8,4]") "}", 8, -1, 0,
     "data_offsets [8, 4]: begin is after end"},
    {"size-mismatch", "{" F32("fc1.weight", "[60,600]", "[0,100]") "}", 100, -1, 0,
     "tensor 'fc1.weight': data_offsets [0, 100] hold 100 bytes, shape [60,600] needs 144000"},
    {"past-buffer", "{" F32("w", "[2]", "[0,8]") "}", 4, -1, 0,
     "data_offsets [0, 8] extend past the end of the 4-byte data buffer"},
    {"overlap", "{" F32("a", "[2]", "[0,8]") "," F32("b", "[2]", "[4,12]") "}", 12, -1, 0,
     "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]"},
    {"hole", "{" F32("a", "[1]", "[0,4]") "," F32("b", "[1]", "[8,12]") "}", 12, -1, 0,
     "data bytes [4, 8) (file offsets [120, 124)) belong to no tensor"},
    {"hole-start", "{" F32("a", "[1]", "[4,8]") "}", 8, -1, 0, "data bytes [0, 4)"},
    {"unused-tail", "{" F32("a", "[1]", "[0,4]") "}", 12, -1, 0,
     "the data buffer has 12 bytes but the tensors cover only 4 (8 unused bytes at the end)"},
    {"unused-no-tensors", "{}", 4, -1, 0, "4 unused bytes"},
    {"dup-name", "{" F32("a", "[1]", "[0,4]") "," F32("a", "[1]", "[4,8]") "}", 8, -1, 0,
     "duplicate tensor name 'a' (header keys #1 and #2)"},
    {"empty-name", "{" F32("", "[1]", "[0,4]") "}", 4, -1, 0, "header key #1: empty tensor name"},
    {"meta-array", "{\"__metadata__\":[1]}", 0, -1, 0,
     "__metadata__ is an array; expected an object of strings"},
    {"meta-number", "{\"__metadata__\":{\"k\":1}}", 0, -1, 0,
     "__metadata__ 'k' is 1; expected a string"},
    {"meta-dup-key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, -1, 0,
     "__metadata__: duplicate key 'k'"},
    {"meta-twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, -1, 0,
     "header key #2: duplicate '__metadata__'"},
    {"nan", "{" F32("a", "[1]", "[0,4]") "," F32("w", "[2,3]", "[4,28]") "}", 28, 5, 0x7fc00000u,
     "tensor 'w': element 4 [1,1] (file offset "},
    {"inf", "{" F32("w", "[3]", "[0,12]") "}", 12, 2, 0x7f800000u, "element 2 [2]"},
    {"neg-inf", "{" F32("w", "[3]", "[0,12]") "}", 12, 0, 0xff800000u, "is -Inf"},
    {"nan-payload", "{" F32("w", "[3]", "[0,12]") "}", 12, 1, 0xffffffffu, "is NaN"},
};

static void test_malformed(void)
{
    printf("malformed files:\n");
    /* The size field itself. */
    const char *p = in_dir("short.safetensors");
    write_bytes(p, "\x02\0\0\0\0", 5);
    expect_reject(p, "file is 5 bytes, shorter than the 8-byte header size field");
    p = in_dir("empty.safetensors");
    write_bytes(p, "", 0);
    expect_reject(p, "file is 0 bytes");
    p = in_dir("hsize-zero.safetensors");
    make_file(p, 0, "{}      ", 0, -1, 0);
    expect_reject(p, "header size (bytes 0-7) is 0");
    p = in_dir("hsize-huge.safetensors");
    make_file(p, 100000001, "{}      ", 0, -1, 0);
    expect_reject(p, "header size (bytes 0-7) is 100000001, more than the 100000000-byte limit");
    p = in_dir("hsize-max.safetensors");
    make_file(p, UINT64_MAX, "{}      ", 0, -1, 0);
    expect_reject(p, "header size (bytes 0-7) is 18446744073709551615");
    p = in_dir("hsize-past.safetensors");
    make_file(p, 64, "{}        ", 0, -1, 0);
    expect_reject(p, "header size (bytes 0-7) is 64 but only 10 bytes follow");
    /* A file cut short inside the data: the offsets then point past the buffer. */
    p = in_dir("truncated.safetensors");
    make_file(p, strlen("{" F32("w", "[4]", "[0,16]") "}"), "{" F32("w", "[4]", "[0,16]") "}",
              10, -1, 0);
    expect_reject(p, "extend past the end of the 10-byte data buffer");

    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char name[96];
        snprintf(name, sizeof name, "%s.safetensors", c->name);
        p = in_dir(name);
        make_file(p, strlen(c->header), c->header, c->data, c->at, c->special);
        expect_reject(p, c->expect);
    }

    /* A name past the limit. */
    char header[1024], longname[301];
    memset(longname, 'x', 300);
    longname[300] = '\0';
    snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             longname);
    p = in_dir("long-name.safetensors");
    make_file(p, strlen(header), header, 4, -1, 0);
    expect_reject(p, "name is 300 bytes, longer than the 256-byte limit");

    /* A header of two million zeros: cJSON would spend ~80 bytes on each; refused unparsed. */
    size_t zeros = 2000001, len = 7 + 2 * zeros + 2;
    char *bomb = malloc(len + 1);
    CHECK(bomb != NULL);
    if (bomb) {
        memcpy(bomb, "{\"a\":[", 6);
        for (size_t i = 0; i < zeros; i++)
            memcpy(bomb + 6 + 2 * i, "0,", 2);
        memcpy(bomb + 6 + 2 * zeros - 1, "]}", 3);
        p = in_dir("token-bomb.safetensors");
        make_file(p, strlen(bomb), bomb, 0, -1, 0);
        expect_reject(p, "more than 2000000 JSON tokens");
        free(bomb);
    }

    /* Not a file at all. */
    p = in_dir("absent.safetensors");
    expect_reject(p, "cannot open");
    p = in_dir("a-directory");
    CHECK(mkdir(p, 0755) == 0);
    expect_reject(p, "not a regular file");
    rmdir(p);
}

/* F16, BF16 and F64 tensors load as float32: exactly for the first two (normal, subnormal,
 * signed zero, the largest finite), rounded to nearest for F64 (ties to even; below float32's
 * smallest subnormal to zero); I64 (PyTorch's num_batches_tracked) exactly within ±2^24.
 * Data bytes are little-endian, whatever the host. */
static void test_dtypes(void)
{
    static const uint16_t f16[] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000,
                                   0x3555};
    const float f16_want[] = {1.0f, -2.0f, 0x1p-24f, 0x3ffp-24f, 0x1p-14f, 65504.0f, -0.0f,
                              0x1.554p-2f};
    static const uint16_t bf16[] = {0x3f80, 0xc049, 0x0001, 0x7f7f};
    const float bf16_want[] = {1.0f, -3.140625f, 0x1p-133f, 0x1.fep127f};
    const double f64[] = {0.1, -1e-50, 3.4028234663852886e38, 1.0 + 0x1p-24, 1.0 + 0x1.8p-24,
                          -1.0e-45};
    const float f64_want[] = {0.1f, -0.0f, FLT_MAX, 1.0f, 1.0f + 0x1p-23f, -0x1p-149f};
    const int64_t i64[] = {0, 5, -3, 16777216, -16777216};
    /* header: the four tensors, data F16 (16 bytes), BF16 (8), F64 (48), I64 (40) */
    const char *hdr = "{" T("h", "F16", "[2,4]", "[0,16]") "," T("b", "BF16", "[4]", "[16,24]")
                      "," T("d", "F64", "[6]", "[24,72]") "," T("n", "I64", "[5]", "[72,112]") "}";
    size_t hlen = strlen(hdr), at = 8 + hlen;
    unsigned char file[512];
    put_le64(file, hlen);
    memcpy(file + 8, hdr, hlen);
    for (size_t i = 0; i < 8; i++, at += 2)
        file[at] = (unsigned char)(f16[i] & 0xff), file[at + 1] = (unsigned char)(f16[i] >> 8);
    for (size_t i = 0; i < 4; i++, at += 2)
        file[at] = (unsigned char)(bf16[i] & 0xff), file[at + 1] = (unsigned char)(bf16[i] >> 8);
    for (size_t i = 0; i < 6; i++, at += 8) {
        uint64_t bits;
        memcpy(&bits, &f64[i], 8);
        put_le64(file + at, bits);
    }
    for (size_t i = 0; i < 5; i++, at += 8)
        put_le64(file + at, (uint64_t)i64[i]);
    const char *p = in_dir("dtypes.safetensors");
    write_bytes(p, file, at);
    nb_safetensors *st = NULL;
    nb_error err = {0};
    CHECK_OK(nb_safetensors_read(p, &st, &err), &err);
    const nb_tensor_ref *h = nb_safetensors_find(st, "h"), *b = nb_safetensors_find(st, "b"),
                        *d = nb_safetensors_find(st, "d"), *n = nb_safetensors_find(st, "n");
    CHECK(h && h->ndim == 2 && h->dims[0] == 2 && h->dims[1] == 4);
    CHECK(b && b->ndim == 1 && b->dims[0] == 4 && d && d->ndim == 1 && d->dims[0] == 6);
    /* bit for bit: -0.0f must stay negative */
    for (int i = 0; h && i < 8; i++)
        CHECK_MSG(memcmp(&h->data[i], &f16_want[i], 4) == 0, "F16 element %d: %a, expected %a",
                  i, (double)h->data[i], (double)f16_want[i]);
    for (int i = 0; b && i < 4; i++)
        CHECK_MSG(memcmp(&b->data[i], &bf16_want[i], 4) == 0, "BF16 element %d: %a, expected %a",
                  i, (double)b->data[i], (double)bf16_want[i]);
    for (int i = 0; d && i < 6; i++)
        CHECK_MSG(memcmp(&d->data[i], &f64_want[i], 4) == 0, "F64 element %d: %a, expected %a",
                  i, (double)d->data[i], (double)f64_want[i]);
    for (int i = 0; n && i < 5; i++)
        CHECK_MSG(n->data[i] == (float)i64[i], "I64 element %d: %g", i, (double)n->data[i]);
    CHECK(n && n->ndim == 1 && n->dims[0] == 5);
    nb_safetensors_free(st);

    /* A truncated I64 tensor names its byte count. */
    p = in_dir("i64-cut.safetensors");
    write_bytes(p, file, at - 5);
    expect_reject(p, "tensor 'n': data_offsets [72, 112] extend past the end of the 107-byte data");
}

/* The reader accepts what the spec allows even though nabla does not write it: an unpadded
 * header, JSON key order different from data order, whitespace, zero-size tensors, empty
 * files. */
static void test_accepts_variants(void)
{
    const char *hdr = " {\n\"b\" : {\"data_offsets\":[4,12],\"shape\":[2],\"dtype\":\"F32\"},"
                      F32("z", "[0,3]", "[4,4]") ",\"__metadata__\":{\"k\":\"v\"},"
                      F32("a", "[]", "[0,4]") "}\t";
    const char *p = in_dir("variant.safetensors");
    make_file(p, strlen(hdr), hdr, 12, -1, 0);
    nb_safetensors *st = NULL;
    nb_error err = {0};
    CHECK_OK(nb_safetensors_read(p, &st, &err), &err);
    CHECK(nb_safetensors_count(st) == 3);
    const nb_tensor_ref *a = nb_safetensors_at(st, 0), *z = nb_safetensors_find(st, "z"),
                        *b = nb_safetensors_find(st, "b");
    /* File order is data order: a [0,4], then z [4,4] and b [4,12] (ties by size). */
    CHECK(a && strcmp(a->name, "a") == 0 && a->ndim == 0 && a->data[0] == 0.0f);
    CHECK(nb_safetensors_at(st, 1) == z && nb_safetensors_at(st, 2) == b);
    CHECK(z && z->ndim == 2 && z->dims[0] == 0 && z->dims[1] == 3 && z->data != NULL);
    CHECK(b && b->ndim == 1 && b->dims[0] == 2 && b->data[0] == 1.0f && b->data[1] == 2.0f);
    CHECK(nb_safetensors_at(st, 3) == NULL && nb_safetensors_at(st, -1) == NULL);
    CHECK(nb_safetensors_meta(st, "k") && strcmp(nb_safetensors_meta(st, "k"), "v") == 0);
    nb_safetensors_free(st);

    p = in_dir("nothing.safetensors");
    make_file(p, 2, "{}", 0, -1, 0);
    st = NULL;
    CHECK_OK(nb_safetensors_read(p, &st, &err), &err);
    CHECK(st && nb_safetensors_count(st) == 0 && nb_safetensors_find(st, "a") == NULL &&
          nb_safetensors_meta(st, "k") == NULL);
    nb_safetensors_free(st);
    nb_safetensors_free(NULL);
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

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            CHECK_MSG(unlink(in_dir(e->d_name)) == 0, "cannot remove %s", e->d_name);
    if (d)
        closedir(d);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/nb_safetensors_XXXXXX",
             tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    test_round_trip();
    test_header_bytes();
    test_accepts_variants();
    test_dtypes();
    test_malformed();
    test_write_failures();
    remove_dir();
    return check_finish("test_safetensors");
}
