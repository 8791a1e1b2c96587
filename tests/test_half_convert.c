/* test_half_convert.c - suite "half_convert": float16 and bfloat16 conversions, portable and F16C.
 */
#include <CUnit/CUnit.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_softmax.h"
#include "cpu/half_convert.h"
#include "test_suites.h"
#include "test_util.h"

/*
 * The references here are arithmetic (ldexp and rint in double), not bit manipulation, so they
 * share no code with half_convert.c; the kernel tables' bulk conversions (F16C in the AVX2 build)
 * are then held to half_convert.c bit for bit.
 */

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The value of a float16 / bfloat16 bit pattern that is not NaN, from the IEEE formulas. */
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0x1f ? INFINITY : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static double bf16_value(uint16_t h)
{
    int e = (h >> 7) & 0xff, m = h & 0x7f;
    double v = e == 0xff ? INFINITY : e == 0 ? ldexp(m, -133) : ldexp(128 + m, e - 134);
    return (h & 0x8000) ? -v : v;
}

/*
 * f (not NaN) rounded to nearest even with p significant bits, exponents down to emin (below:
 * the fixed subnormal spacing), values at or past max + half a spacing to inf. rint rounds to
 * even in the default mode; f has 24 bits, so f / spacing is exact in double.
 */
static double round_ref(float f, int p, int emin, double max)
{
    double a = fabs((double)f);
    if (a == 0.0 || isinf(a))
        return (double)f;
    int e;
    frexp(a, &e); /* a in [2^(e-1), 2^e) */
    int ex = e - 1 < emin ? emin : e - 1;
    double spacing = ldexp(1.0, ex - (p - 1));
    double r = rint(a / spacing) * spacing;
    if (r > max)
        r = INFINITY;
    return f < 0 ? -r : r;
}

static double f16_ref(float f) { return round_ref(f, 11, -14, 65504.0); }
static double bf16_ref(float f) { return round_ref(f, 8, -126, (double)bitsf(0x7f7f0000u)); }

static int f16_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
static int bf16_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

/* Every float16 widens to its value (NaN: the payload kept, quiet bit set) and back unchanged. */
static void test_f16_all(void)
{
    unsigned bad_widen = 0, bad_trip = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = clsoftmax__f16_to_f32(h);
        uint16_t back = clsoftmax__f32_to_f16(f);
        if (f16_nan(h)) {
            uint32_t want =
                ((uint32_t)(h & 0x8000) << 16) | 0x7fc00000u | ((uint32_t)(h & 0x3ff) << 13);
            bad_widen += fbits(f) != want;
            bad_trip += back != (h | 0x0200); /* quiet stays, signalling comes back quiet */
        } else {
            bad_widen += (double)f != f16_value(h) || (signbit(f) != 0) != ((h & 0x8000) != 0);
            bad_trip += back != h;
        }
    }
    TEST_CHECK(bad_widen == 0, "%u float16 patterns widen wrongly", bad_widen);
    TEST_CHECK(bad_trip == 0, "%u float16 patterns do not come back", bad_trip);
    /* a signalling NaN with payload 1 comes back quiet, payload kept */
    TEST_CHECK(clsoftmax__f32_to_f16(clsoftmax__f16_to_f32(0x7c01)) == 0x7e01, "sNaN 0x7c01");
    TEST_CHECK(clsoftmax__f32_to_f16(clsoftmax__f16_to_f32(0xfe55)) == 0xfe55, "qNaN 0xfe55");
}

static void test_bf16_all(void)
{
    unsigned bad_widen = 0, bad_trip = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = clsoftmax__bf16_to_f32(h);
        uint16_t back = clsoftmax__f32_to_bf16(f);
        if (bf16_nan(h)) {
            bad_widen += fbits(f) != (uint32_t)h << 16;
            bad_trip += back != (h | 0x0040);
        } else {
            bad_widen += (double)f != bf16_value(h) || (signbit(f) != 0) != ((h & 0x8000) != 0);
            bad_trip += back != h;
        }
    }
    TEST_CHECK(bad_widen == 0, "%u bfloat16 patterns widen wrongly", bad_widen);
    TEST_CHECK(bad_trip == 0, "%u bfloat16 patterns do not come back", bad_trip);
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0x7f800001u)) == 0x7fc0, "sNaN, low payload");
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0xff812345u)) == 0xffc1, "sNaN, high payload");
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0x7fc12345u)) == 0x7fc1, "qNaN, payload kept");
}

/*
 * Ties between every pair of neighbouring finite values (normal and subnormal, both signs):
 * the midpoint goes to the even one, a float step either side to the nearer. The midpoint past
 * the largest finite value goes to inf (its neighbour is odd), a float step below it does not.
 */
static void check_ties(int bf16)
{
    unsigned bad = 0, tested = 0;
    uint16_t top = bf16 ? 0x7f7f : 0x7bff; /* largest finite */
    for (uint32_t s = 0; s < 2; s++) {
        for (uint32_t i = 0; i <= top; i++) {
            uint16_t lo = (uint16_t)(i | (s << 15)), hi = (uint16_t)((i + 1) | (s << 15));
            double a = bf16 ? bf16_value(lo) : f16_value(lo);
            double b = bf16 ? bf16_value(hi) : f16_value(hi);
            if (i == top) /* hi is inf: the value one spacing past the largest finite */
                b = (s ? -1.0 : 1.0) * (bf16 ? ldexp(1.0, 128) : 65536.0);
            float mid = (float)((a + b) / 2); /* exact: one bit more than the 16-bit type */
            uint16_t even = (i & 1) ? hi : lo;
            float below = nextafterf(mid, (float)a), above = nextafterf(mid, (float)b);
            uint16_t (*to)(float) = bf16 ? clsoftmax__f32_to_bf16 : clsoftmax__f32_to_f16;
            bad += to(mid) != even;
            bad += to(below) != lo;
            bad += to(above) != hi;
            tested += 3;
        }
    }
    TEST_CHECK(tested > 60000 && bad == 0, "%s: %u of %u ties or near-ties rounded wrongly",
               bf16 ? "bfloat16" : "float16", bad, tested);
}

static void test_ties(void)
{
    check_ties(0);
    check_ties(1);
    /* the named edges, as bits */
    TEST_CHECK(clsoftmax__f32_to_f16(65520.0f) == 0x7c00, "65520 -> inf");
    TEST_CHECK(clsoftmax__f32_to_f16(nextafterf(65520.0f, 0.0f)) == 0x7bff, "below 65520");
    TEST_CHECK(clsoftmax__f32_to_f16(-65520.0f) == 0xfc00, "-65520 -> -inf");
    TEST_CHECK(clsoftmax__f32_to_f16(FLT_MAX) == 0x7c00, "FLT_MAX -> inf");
    TEST_CHECK(clsoftmax__f32_to_f16(0x1p-25f) == 0x0000, "half the least subnormal -> 0");
    TEST_CHECK(clsoftmax__f32_to_f16(nextafterf(0x1p-25f, 1.0f)) == 0x0001, "just above it");
    TEST_CHECK(clsoftmax__f32_to_f16(0x3p-25f) == 0x0002, "1.5 subnormal steps -> 2 (even)");
    TEST_CHECK(clsoftmax__f32_to_f16(-0x1p-25f) == 0x8000, "-0 keeps its sign");
    TEST_CHECK(clsoftmax__f32_to_f16(0x1.ffcp-15f) == 0x0400, "top subnormal tie -> least normal");
    TEST_CHECK(clsoftmax__f32_to_f16(FLT_TRUE_MIN) == 0x0000, "float subnormal -> 0");
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0x7f7f8000u)) == 0x7f80, "bf16 overflow tie -> inf");
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0x7f7f7fffu)) == 0x7f7f, "below it");
    TEST_CHECK(clsoftmax__f32_to_bf16(FLT_MAX) == 0x7f80, "FLT_MAX -> inf");
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0x00008000u)) == 0x0000, "bf16 subnormal tie -> 0");
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0x00018000u)) == 0x0002, "bf16 subnormal tie up");
    TEST_CHECK(clsoftmax__f32_to_bf16(bitsf(0x007f8000u)) == 0x0080, "into the least normal");
}

/* A float sample: every 251st bit pattern, and each one's neighbours. */
#define SAMPLE_STEP 251u

/* Narrowing against the arithmetic reference over the sample (NaN: quiet, sign and top bits). */
static void test_narrow_sample(void)
{
    unsigned long bad16 = 0, badbf = 0, tested = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += SAMPLE_STEP) {
        for (uint32_t d = 0; d < 2; d++) {
            uint32_t bits = (uint32_t)u + d;
            float f = bitsf(bits);
            uint16_t h = clsoftmax__f32_to_f16(f), b = clsoftmax__f32_to_bf16(f);
            if (isnan(f)) {
                bad16 += h != (uint16_t)(((bits >> 16) & 0x8000) | 0x7e00 | ((bits >> 13) & 0x3ff));
                badbf += b != (uint16_t)((bits >> 16) | 0x40);
            } else {
                double w16 = f16_ref(f), wbf = bf16_ref(f);
                bad16 +=
                    f16_nan(h) || f16_value(h) != w16 || (signbit(w16) != 0) != ((h >> 15) != 0);
                badbf +=
                    bf16_nan(b) || bf16_value(b) != wbf || (signbit(wbf) != 0) != ((b >> 15) != 0);
            }
            tested++;
        }
    }
    TEST_CHECK(bad16 == 0, "float16: %lu of %lu floats narrowed wrongly", bad16, tested);
    TEST_CHECK(badbf == 0, "bfloat16: %lu of %lu floats narrowed wrongly", badbf, tested);
}

/*
 * The kernel tables' bulk conversions (portable vectors, F16C in the AVX2 build) against
 * half_convert.c: all 65536 patterns widened, the float sample, every 16-bit value, midpoints
 * and NaNs narrowed, with lengths that leave vector tails.
 */
static void test_bulk_identical(void)
{
    static const clsoftmax__cpu_isa isas[] = {CLSOFTMAX__CPU_ISA_GENERIC, CLSOFTMAX__CPU_ISA_AVX2};
    const size_t nh = 65536, nf = (size_t)(0x100000000ull / SAMPLE_STEP) + 1 + 2 * 65536;
    uint16_t* h = malloc(nh * sizeof *h);
    float* f = malloc(nf * sizeof *f);
    float* wa = malloc(nh * sizeof *wa);
    float* wb = malloc(nh * sizeof *wb);
    uint16_t* na = malloc(nf * sizeof *na);
    uint16_t* nb = malloc(nf * sizeof *nb);
    CU_ASSERT_FATAL(h && f && wa && wb && na && nb);
    for (size_t i = 0; i < nh; i++)
        h[i] = (uint16_t)i;
    size_t k = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += SAMPLE_STEP)
        f[k++] = bitsf((uint32_t)u);
    for (size_t i = 0; i < nh; i++) { /* each float16 value, and a tie just above it */
        f[k++] = clsoftmax__f16_to_f32((uint16_t)i);
        f[k++] = bitsf(fbits(clsoftmax__f16_to_f32((uint16_t)i)) + 0x1000u);
    }
    CU_ASSERT_FATAL(k == nf);
    int tested_avx2 = 0;
    for (size_t v = 0; v < 2; v++) {
        const clsoftmax__cpu_kernels* kern = clsoftmax__cpu_kernels_select(isas[v]);
        if (kern == NULL)
            continue;
        tested_avx2 |= v == 1;
        static const size_t lens[] = {65536, 65533, 7, 1};
        for (size_t li = 0; li < 4; li++) {
            size_t len = lens[li];
            clsoftmax__f16_load_n(h, wa, len);
            kern->load_f16(h, wb, len);
            TEST_CHECK(memcmp(wa, wb, len * sizeof(float)) == 0, "%s load_f16, %zu", kern->name,
                       len);
            clsoftmax__bf16_load_n(h, wa, len);
            kern->load_bf16(h, wb, len);
            TEST_CHECK(memcmp(wa, wb, len * sizeof(float)) == 0, "%s load_bf16, %zu", kern->name,
                       len);
        }
        size_t len = nf - 3; /* a ragged tail */
        clsoftmax__f16_store_n(f, na, len);
        kern->store_f16(f, nb, len);
        TEST_CHECK(memcmp(na, nb, len * sizeof(uint16_t)) == 0, "%s store_f16", kern->name);
        clsoftmax__bf16_store_n(f, na, len);
        kern->store_bf16(f, nb, len);
        TEST_CHECK(memcmp(na, nb, len * sizeof(uint16_t)) == 0, "%s store_bf16", kern->name);
    }
#if defined(__x86_64__) && defined(__GNUC__)
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
    __builtin_cpu_init();
    TEST_CHECK(tested_avx2 || !f16c || !__builtin_cpu_supports("avx2") ||
                   !__builtin_cpu_supports("fma"),
               "the F16C build was not reached on a CPU that has it");
#else
    (void)tested_avx2;
#endif
    free(h);
    free(f);
    free(wa);
    free(wb);
    free(na);
    free(nb);
}

void test_register_half_convert(void)
{
    CU_pSuite suite = CU_add_suite("half_convert", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "float16: every pattern widens and comes back", test_f16_all);
    CU_add_test(suite, "bfloat16: every pattern widens and comes back", test_bf16_all);
    CU_add_test(suite, "ties to even at normal, subnormal and overflow edges", test_ties);
    CU_add_test(suite, "narrowing a float sample against arithmetic", test_narrow_sample);
    CU_add_test(suite, "bulk: portable and F16C bit for bit", test_bulk_identical);
}
