/* Safetensors reading: a set of malformed files built byte by byte here, each of which must be
 * rejected with a message naming the file and the field or byte at fault; every dtype converted
 * to float32; the variants other writers produce. Writing is in test_safetensors_write.c. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setrlimit */
#include "check.h"
#include "nabla.h"
#include "safetensors_util.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int main(void)
{
    if (make_dir("nb_safetensors"))
        return 1;
    test_accepts_variants();
    test_dtypes();
    test_malformed();
    remove_dir();
    return check_finish("test_safetensors");
}
