/* bfloat16 numbers and where they can run (nabla.h, "Mixed precision"; issue 8): the
 * vectorised conversion float32 → bf16 (bf16.h has the scalar one and the rounding rule), and
 * the detection behind nb_bf16_supported. The bf16 products themselves: bf16_linear.c.
 *
 * Availability: CPUID for AVX512-BF16 (with AVX512 F/BW/VL and the OS saving ZMM state) or
 * AMX-BF16 (with AMX-TILE, the OS enabling tile state, and the kernel's per-process
 * permission, arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), as oneDNN asks for it);
 * then oneDNN's own view (dnnl_get_effective_cpu_isa, which honours ONEDNN_MAX_CPU_ISA) and a
 * probe primitive that must not be the reference implementation. NABLA_DISABLE_BF16=1 makes
 * it refuse, so the refusal can be tested on any machine.
 */
#define _GNU_SOURCE /* syscall(2) */
#include "backend/bf16.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#define NB_X86 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifdef NB_HAVE_ONEDNN
#include <dnnl.h>
#include <pthread.h>
#endif

/* ---- conversion --------------------------------------------------------------------------- */

#ifdef NB_X86
/* nb_bf16_from_float on 16 floats at a time, in the integer unit (so subnormals round as in
 * the scalar code; VCVTNEPS2BF16 would flush them to zero). */
__attribute__((target("avx512f"))) static void convert_avx512(const float *src, nb_bf16 *dst,
                                                              size_t n)
{
    const __m512i half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    const __m512i inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x00400000);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512((const void *)(src + i));
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, half), odd);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, magnitude), inf);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, quiet));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
    for (; i < n; i++)
        dst[i] = nb_bf16_from_float(src[i]);
}
#endif

void nb_bf16_convert(const float *src, nb_bf16 *dst, size_t n)
{
#ifdef NB_X86
    if (__builtin_cpu_supports("avx512f")) {
        convert_avx512(src, dst, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        dst[i] = nb_bf16_from_float(src[i]);
}

/* ---- detection ---------------------------------------------------------------------------- */

const char *nb_precision_name(nb_precision p)
{
    return p == NB_PRECISION_BF16 ? "bf16" : p == NB_PRECISION_FP32 ? "fp32" : "?";
}

static int disabled_by_env(void)
{
    const char *v = getenv("NABLA_DISABLE_BF16");
    return v && *v && strcmp(v, "0") != 0;
}

#ifdef NB_HAVE_ONEDNN /* the CPU is only asked when oneDNN could use it */
#ifdef NB_X86
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* Linux (≥ 5.16) hands out AMX tile state per process, on request. */
static int amx_permitted(void)
{
    unsigned long features = 0;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0)
        return 0;
    return syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &features) == 0 &&
           (features & (1ul << XFEATURE_XTILEDATA));
}
#endif

/* What the CPU and kernel lack for bf16 products (NULL: nothing); *what names what it has. */
static const char *cpu_missing(const char **what)
{
    *what = "";
#ifdef NB_X86
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return "this CPU has neither AVX512-BF16 nor AMX-BF16 (CPUID leaf 7 is absent)";
    __cpuid(1, a, b, c, d);
    uint64_t xcr0 = (c & (1u << 27)) ? xgetbv0() : 0; /* OSXSAVE */
    __cpuid_count(7, 0, a, b, c, d);
    int avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)); /* F, BW, VL */
    int amx = (d & (1u << 22)) && (d & (1u << 24));                        /* AMX-BF16, -TILE */
    __cpuid_count(7, 1, a, b, c, d);
    int avx512_bf16 = avx512 && (a & (1u << 5));
    int zmm_saved = (xcr0 & 0xe6) == 0xe6;                  /* SSE, AVX, opmask, ZMM state */
    int tiles_saved = (xcr0 & (3ull << 17)) == (3ull << 17); /* XTILECFG, XTILEDATA */
    int amx_ok = amx && tiles_saved && amx_permitted();
    if (amx_ok && avx512_bf16 && zmm_saved) {
        *what = "AMX-BF16 and AVX512-BF16";
        return NULL;
    }
    if (amx_ok) {
        *what = "AMX-BF16";
        return NULL;
    }
    if (avx512_bf16 && zmm_saved) {
        *what = "AVX512-BF16";
        return NULL;
    }
    if (amx && !tiles_saved)
        return "this CPU has AMX-BF16 but the operating system does not enable AMX tile state "
               "(Linux 5.16 or later is needed)";
    if (amx)
        return "this CPU has AMX-BF16 but the kernel refused this process the AMX tile "
               "permission (arch_prctl ARCH_REQ_XCOMP_PERM)";
    if (avx512_bf16)
        return "this CPU has AVX512-BF16 but the operating system does not save AVX-512 state";
    return "this CPU has neither AVX512-BF16 nor AMX-BF16 (Intel Xeon Cooper Lake, Sapphire "
           "Rapids or later; AMD Zen 4 or later)";
#else
    return "bf16 products are implemented for x86-64 CPUs with AVX512-BF16 or AMX-BF16 only";
#endif
}

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static char probe_reason[256];   /* empty: supported */
static char probe_hardware[64];
static int probe_emulated;

static int emulation_asked(void)
{
    const char *v = getenv("NABLA_BF16_EMULATE");
    return v && *v && strcmp(v, "0") != 0;
}

/* The CPU, then oneDNN: its ISA ceiling and the implementation of a small bf16 matmul. Where
 * the CPU has no bf16 instructions and NABLA_BF16_EMULATE is set, the bf16 path runs on the
 * fp32 products instead, with the same bf16-rounded operands (bf16_linear.c): the same
 * numbers up to the order of additions, far slower — so that the path can be tested on any
 * machine with oneDNN. */
static void probe(void)
{
    const char *what, *missing = cpu_missing(&what);
    snprintf(probe_hardware, sizeof probe_hardware, "%s", what);
    if (missing && emulation_asked()) {
        probe_emulated = 1;
        snprintf(probe_hardware, sizeof probe_hardware, "none (emulated: NABLA_BF16_EMULATE)");
        return;
    }
    if (missing) {
        snprintf(probe_reason, sizeof probe_reason, "%s", missing);
        return;
    }
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) !=
        (unsigned)dnnl_cpu_isa_avx512_core_bf16) {
        snprintf(probe_reason, sizeof probe_reason, "the CPU has %s, but oneDNN is limited to "
                 "ISA 0x%x, below avx512_core_bf16 (ONEDNN_MAX_CPU_ISA?)", what, (unsigned)isa);
        return;
    }
    dnnl_engine_t engine = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t dims = {32, 32};
    dnnl_matmul_desc_t desc;
    const char *impl = NULL;
    dnnl_status_t s = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&a, 2, dims, dnnl_bf16, dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&b, 2, dims, dnnl_bf16, dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&c, 2, dims, dnnl_f32, dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (s != dnnl_success)
        snprintf(probe_reason, sizeof probe_reason, "oneDNN %d.%d cannot create a bf16 matmul "
                 "here (dnnl status %d)", dnnl_version()->major, dnnl_version()->minor, (int)s);
    else if (!impl || strncmp(impl, "ref", 3) == 0)
        snprintf(probe_reason, sizeof probe_reason, "oneDNN %d.%d has only its reference "
                 "implementation of bf16 matmul here (%s)", dnnl_version()->major,
                 dnnl_version()->minor, impl ? impl : "?");
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (engine)
        dnnl_engine_destroy(engine);
}
#endif

const char *nb_bf16_missing(void)
{
    if (disabled_by_env())
        return "bf16 is disabled by NABLA_DISABLE_BF16";
#ifdef NB_HAVE_ONEDNN
    pthread_once(&probe_once, probe);
    return probe_reason[0] ? probe_reason : NULL;
#else
    return "nabla was built without oneDNN, which runs the bf16 products (install libdnnl-dev "
           "and rebuild)";
#endif
}

nb_status nb_bf16_supported(nb_error *err)
{
    const char *missing = nb_bf16_missing();
    if (missing)
        return nb_error_set(err, NB_ENOTSUP, "bf16 precision is unavailable: %s", missing);
    return NB_OK;
}


int nb_bf16_emulated(void)
{
#ifdef NB_HAVE_ONEDNN
    pthread_once(&probe_once, probe);
    return probe_emulated;
#else
    return 0;
#endif
}

const char *nb_bf16_hardware(void)
{
#ifdef NB_HAVE_ONEDNN
    return probe_hardware;
#else
    return "";
#endif
}
