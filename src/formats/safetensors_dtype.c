/* The dtypes a safetensors file may hold that nabla reads, and their conversion to float32,
 * which is what nabla computes in. PyTorch users save F32 (the default), F16 or BF16 (half
 * precision checkpoints, model.half() / model.bfloat16()) and sometimes F64 (model.double());
 * a batch norm's state_dict holds one I64 (num_batches_tracked, a count).
 *
 * Each is little-endian in the file. The conversions are exact except F64's, which rounds to
 * the nearest float32 (as torch's .float() does); a double beyond float32's range (|x| >
 * FLT_MAX) has no float32 value and is reported by the reader, never converted (converting
 * it in C is undefined behaviour). Values are assembled from bytes, so the host's byte order
 * does not matter. */
#include "formats/safetensors.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* float32 from its IEEE 754 bit pattern. */
static float f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void from_f32(const unsigned char *raw, size_t n, float *out)
{
    for (size_t k = 0; k < n; k++, raw += 4)
        out[k] = f32_from_bits((uint32_t)raw[0] | (uint32_t)raw[1] << 8 |
                               (uint32_t)raw[2] << 16 | (uint32_t)raw[3] << 24);
}

/* IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits.
 *     normal     (−1)^s · 2^(e−15) · 1.f   → float32 exponent e − 15 + 127, fraction f·2^13
 *     subnormal  (−1)^s · 2^−14 · 0.f  = (−1)^s · f · 2^−24 (exact in float32)
 *     e = 31     ±Inf (f = 0) or NaN */
static void from_f16(const unsigned char *raw, size_t n, float *out)
{
    for (size_t k = 0; k < n; k++, raw += 2) {
        uint32_t h = (uint32_t)raw[0] | (uint32_t)raw[1] << 8;
        uint32_t sign = (h >> 15) << 31, e = (h >> 10) & 0x1f, f = h & 0x3ff;
        if (e == 0) {
            float v = ldexpf((float)f, -24);
            out[k] = sign ? -v : v;
        } else if (e == 31)
            out[k] = f32_from_bits(sign | 0x7f800000u | f << 13);
        else
            out[k] = f32_from_bits(sign | (e - 15 + 127) << 23 | f << 13);
    }
}

/* bfloat16 is the upper half of a float32: the same sign and 8-bit exponent, 7 fraction
 * bits. Widening appends 16 zero bits. */
static void from_bf16(const unsigned char *raw, size_t n, float *out)
{
    for (size_t k = 0; k < n; k++, raw += 2)
        out[k] = f32_from_bits(((uint32_t)raw[0] | (uint32_t)raw[1] << 8) << 16);
}

double st_f64_at(const unsigned char *raw)
{
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--)
        bits = bits << 8 | raw[i];
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Rounded to nearest; out of float32's range becomes ±Inf (the reader rejects it, naming the
 * double it was). */
static void from_f64(const unsigned char *raw, size_t n, float *out)
{
    for (size_t k = 0; k < n; k++, raw += 8) {
        double d = st_f64_at(raw);
        out[k] = isnan(d) ? NAN : d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
    }
}

/* int64 two's complement; only integers of magnitude ≤ 2^24 have an exact float32, others
 * become NaN for the reader to refuse (st_i64_at names the value). */
int64_t st_i64_at(const unsigned char *raw)
{
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--)
        bits = bits << 8 | raw[i];
    return bits <= INT64_MAX ? (int64_t)bits : -(int64_t)(~bits) - 1;
}

static void from_i64(const unsigned char *raw, size_t n, float *out)
{
    for (size_t k = 0; k < n; k++, raw += 8) {
        int64_t v = st_i64_at(raw);
        out[k] = v >= -16777216 && v <= 16777216 ? (float)v : NAN;
    }
}

static const st_dtype dtypes[] = {
    {"F32", 4, from_f32},
    {"F16", 2, from_f16},
    {"BF16", 2, from_bf16},
    {"F64", 8, from_f64},
    {"I64", 8, from_i64},
};

const st_dtype *st_dtype_find(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(name, dtypes[i].name) == 0)
            return &dtypes[i];
    return NULL;
}
