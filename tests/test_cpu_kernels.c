/* test_cpu_kernels.c - suite "cpu_kernels": the CPU backend's exp, kernels per ISA, threads, pool,
 * 16-bit storage, blending, zeroed bad rows and the bad-row check. */
#include <CUnit/CUnit.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/half_convert.h"
#include "internal.h"
#include "test_suites.h"
#include "test_util.h"

/*
 * The CPU sources are linked into the runner (as plan.c is), so these tests
 * reach every kernel build (portable and AVX2) and the pool directly; the
 * public entry point runs the library's own copy.
 */

static const clsoftmax__cpu_isa k_isas[] = {CLSOFTMAX__CPU_ISA_GENERIC, CLSOFTMAX__CPU_ISA_AVX2};
#define N_ISAS (sizeof k_isas / sizeof k_isas[0])

static const char* isa_name(clsoftmax__cpu_isa isa)
{
    return isa == CLSOFTMAX__CPU_ISA_AVX2 ? "avx2" : "generic";
}

/* ---- exp against long double ------------------------------------------------ */

/*
 * |got - want| in units of the float spacing at want (the subnormal spacing
 * below FLT_MIN). want beyond the largest float must give +inf.
 */
static double ulp_err_f32(float got, long double want)
{
    if (want > (long double)FLT_MAX)
        return isinf(got) && got > 0 ? 0.0 : HUGE_VAL;
    int e = 0;
    frexpl(want, &e); /* want in [2^(e-1), 2^e) */
    int ex = e - 1 < -126 ? -126 : e - 1;
    return (double)(fabsl((long double)got - want) / ldexpl(1.0L, ex - 23));
}

static double ulp_err_f64(double got, long double want)
{
    if (want > (long double)DBL_MAX)
        return isinf(got) && got > 0 ? 0.0 : HUGE_VAL;
    int e = 0;
    frexpl(want, &e);
    int ex = e - 1 < -1022 ? -1022 : e - 1;
    return (double)(fabsl((long double)got - want) / ldexpl(1.0L, ex - 52));
}

/* The bound documented in cpu_kernels.inc, with a margin over what was measured (1.003). */
#define EXP_ULP_F32 1.5
#define EXP_ULP_F64 1.5
#define EXP_BATCH 4096

/* The kernel tables this CPU can run (the AVX2 one only where the CPU has AVX2). */
static size_t available_kernels(const clsoftmax__cpu_kernels** k)
{
    size_t count = 0;
    for (size_t v = 0; v < N_ISAS; v++) {
        const clsoftmax__cpu_kernels* t = clsoftmax__cpu_kernels_select(k_isas[v]);
        if (t != NULL)
            k[count++] = t;
    }
    return count;
}

/*
 * Folds one result's error into its build's worst: in float spacings at the result (with the
 * input that gave it) for normal results, in subnormal spacings below the smallest normal.
 */
static void track_worst(double err, int subnormal, double xi, double* worst, double* worst_sub,
                        double* worst_x)
{
    if (subnormal) {
        *worst_sub = err > *worst_sub ? err : *worst_sub;
    } else if (err > *worst) {
        *worst = err;
        *worst_x = xi;
    }
}

/*
 * Checks one edge input of exp_f32 (f64 == 0; a float's values are exact in a double) or exp_f64:
 * NaN stays NaN, the infinities give +inf and 0, overflow and underflow to 0 exactly, the rest
 * within the documented bound.
 */
static void check_exp_edge(const char* name, int f64, double xi, double yi)
{
    const char* fn = f64 ? "exp_f64" : "exp_f32";
    if (isnan(xi)) {
        TEST_CHECK(isnan(yi), "%s %s(NaN) = %a", name, fn, yi);
    } else if (isinf(xi)) {
        TEST_CHECK(yi == (xi > 0 ? INFINITY : 0.0), "%s %s(%g) = %a", name, fn, xi, yi);
    } else {
        long double want = expl((long double)xi);
        double rounded = f64 ? (double)want : (double)(float)want;
        if (isinf(rounded) || rounded == 0.0)
            TEST_CHECK(yi == rounded, "%s %s(%a) = %a, want %a", name, fn, xi, yi, rounded);
        else
            TEST_CHECK(f64 ? ulp_err_f64(yi, want) <= EXP_ULP_F64
                           : ulp_err_f32((float)yi, want) <= EXP_ULP_F32,
                       "%s %s(%a) = %a", name, fn, xi, yi);
    }
}

/*
 * Runs a batch of nb inputs x through the nk kernel builds k (exp_f64 when f64, else exp_f32;
 * y holds EXP_BATCH results per build) and folds each result's error against the long double
 * reference, computed once per input, into its build's worst.
 */
static void exp_batch(const clsoftmax__cpu_kernels* const* k, size_t nk, int f64, const void* x,
                      void* y, size_t nb, double* worst, double* worst_sub, double* worst_x)
{
    const double* xd = x;
    const float* xf = x;
    double* yd = y;
    float* yf = y;
    for (size_t v = 0; v < nk; v++) {
        if (f64)
            k[v]->exp_f64(xd, yd + v * EXP_BATCH, nb);
        else
            k[v]->exp_f32(xf, yf + v * EXP_BATCH, nb);
    }
    const long double min_normal = f64 ? (long double)DBL_MIN : (long double)FLT_MIN;
    for (size_t i = 0; i < nb; i++) {
        const double xi = f64 ? xd[i] : (double)xf[i];
        const long double want = expl((long double)xi);
        for (size_t v = 0; v < nk; v++) {
            const double err = f64 ? ulp_err_f64(yd[v * EXP_BATCH + i], want)
                                   : ulp_err_f32(yf[v * EXP_BATCH + i], want);
            track_worst(err, want < min_normal, xi, &worst[v], &worst_sub[v], &worst_x[v]);
        }
    }
}

/*
 * Every 97th float bit pattern of [-104, 89] (about 23 million) through every
 * kernel build, the long double reference computed once per input; then the
 * edges.
 */
static void test_exp_f32(void)
{
    const clsoftmax__cpu_kernels* k[N_ISAS];
    size_t nk = available_kernels(k);
    float* x = malloc(EXP_BATCH * sizeof *x);
    float* y = malloc(EXP_BATCH * N_ISAS * sizeof *y);
    CU_ASSERT_FATAL(x != NULL && y != NULL);
    double worst[N_ISAS] = {0}, worst_sub[N_ISAS] = {0}, worst_x[N_ISAS] = {0};
    size_t tested = 0;
    for (int neg = 0; neg < 2; neg++) {
        uint32_t last = neg ? 0x42D00000u /* 104 */ : 0x42B20000u /* 89 */;
        size_t nb = 0;
        for (uint64_t b = 0; b <= last; b += 97) {
            uint32_t bits = (uint32_t)b | (neg ? 0x80000000u : 0u);
            memcpy(&x[nb++], &bits, sizeof bits);
            if (nb < EXP_BATCH && b + 97 <= last)
                continue;
            exp_batch(k, nk, 0, x, y, nb, worst, worst_sub, worst_x);
            tested += nb;
            nb = 0;
        }
    }
    TEST_CHECK(tested > 20000000, "%zu floats tested", tested);
    for (size_t v = 0; v < nk; v++) {
        TEST_CHECK(worst[v] <= EXP_ULP_F32, "%s exp_f32: %.3f ulp at %a", k[v]->name, worst[v],
                   worst_x[v]);
        TEST_CHECK(worst_sub[v] <= 1.0, "%s exp_f32: %.3f subnormal spacings", k[v]->name,
                   worst_sub[v]);

        /* Edges: overflow, underflow to 0 through the subnormals, infinities, NaN. */
        const float edge[] = {-INFINITY,   INFINITY, NAN,     -NAN,     -104.0f,
                              -103.9f,     -103.28f, -88.0f,  -87.33f,  88.72f,
                              88.7228394f, 88.75f,   89.0f,   1000.0f,  -1000.0f,
                              0.0f,        -0.0f,    FLT_MIN, -FLT_MIN, FLT_TRUE_MIN};
        size_t ne = sizeof edge / sizeof edge[0];
        k[v]->exp_f32(edge, y, ne);
        for (size_t i = 0; i < ne; i++)
            check_exp_edge(k[v]->name, 0, edge[i], y[i]);
        /* The array tail (n not a multiple of the vector width) takes the same path. */
        float one[3] = {0.0f, 1.0f, -1.0f}, out[3];
        k[v]->exp_f32(one, out, 3);
        TEST_CHECK(out[0] == 1.0f && fabsf(out[1] - 2.7182817f) <= 3e-7f &&
                       fabsf(out[2] - 0.36787944f) <= 3e-8f,
                   "%s exp_f32 tail: %a %a %a", k[v]->name, (double)out[0], (double)out[1],
                   (double)out[2]);
    }
    free(x);
    free(y);
}

/* About 4.5 million double patterns of [-746, 710] through every build, then the edges. */
static void test_exp_f64(void)
{
    const clsoftmax__cpu_kernels* k[N_ISAS];
    size_t nk = available_kernels(k);
    double* x = malloc(EXP_BATCH * sizeof *x);
    double* y = malloc(EXP_BATCH * N_ISAS * sizeof *y);
    CU_ASSERT_FATAL(x != NULL && y != NULL);
    const uint64_t step = 1000000007ull * 1009ull; /* odd: walks every exponent and mantissa */
    double worst[N_ISAS] = {0}, worst_sub[N_ISAS] = {0}, worst_x[N_ISAS] = {0};
    for (int neg = 0; neg < 2; neg++) {
        uint64_t last = neg ? 0x40874A0000000000ull /* 745.25 */
                            : 0x40862E0000000000ull /* 709.75 */;
        size_t nb = 0;
        for (uint64_t b = 0; b <= last; b += step) {
            uint64_t bits = b | (neg ? 0x8000000000000000ull : 0u);
            memcpy(&x[nb++], &bits, sizeof bits);
            if (nb < EXP_BATCH && b + step <= last)
                continue;
            exp_batch(k, nk, 1, x, y, nb, worst, worst_sub, worst_x);
            nb = 0;
        }
    }
    for (size_t v = 0; v < nk; v++) {
        TEST_CHECK(worst[v] <= EXP_ULP_F64, "%s exp_f64: %.3f ulp at %a", k[v]->name, worst[v],
                   worst_x[v]);
        TEST_CHECK(worst_sub[v] <= 1.0, "%s exp_f64: %.3f subnormal spacings", k[v]->name,
                   worst_sub[v]);

        const double edge[] = {-INFINITY, INFINITY,          NAN,    -746.0, -745.2, -745.0, -708.5,
                               709.78,    709.7827128933840, 709.79, 710.0,  1e5,    -1e5,   0.0,
                               DBL_MIN,   DBL_TRUE_MIN};
        size_t ne = sizeof edge / sizeof edge[0];
        k[v]->exp_f64(edge, y, ne);
        for (size_t i = 0; i < ne; i++)
            check_exp_edge(k[v]->name, 1, edge[i], y[i]);
    }
    free(x);
    free(y);
}

/* ---- the job runner against the reference, per ISA ---------------------------- */

/* Runs desc over in on isa with threads threads of pool; out receives the result. */
static void run_job(const clsoftmax_desc* desc, const void* in, void* out, clsoftmax__cpu_isa isa,
                    unsigned threads, clsoftmax__cpu_pool* pool)
{
    size_t outer, n, inner;
    test_view(desc->ndim, desc->dims, desc->axis, &outer, &n, &inner);
    clsoftmax__cpu_job job = {
        .outer = outer,
        .n = n,
        .inner = inner,
        .dtype = (int)desc->dtype,
        .alpha = 1.0,
        .log = desc->op == CLSOFTMAX_OP_LOG_SOFTMAX,
        .scale = desc->scale,
        .in = in,
        .out = out,
        .isa = isa,
    };
    clsoftmax__cpu_softmax(&job, threads, pool);
}

typedef struct shape {
    size_t ndim;
    size_t dims[4];
    int axis;
} shape;

/* Every path: small rows, rows, long rows split in blocks, column blocks of each width. */
static const shape k_shapes[] = {
    {2, {1000, 8}, -1},   /* small rows, transposed */
    {2, {300, 3}, 1},     /* small rows, a ragged group */
    {2, {5, 16}, -1},     /* the longest small row */
    {2, {37, 129}, -1},   /* rows, vector tail */
    {2, {3, 40001}, -1},  /* long rows: 3 blocks, the last short */
    {2, {2, 100003}, 1},  /* long rows over several blocks */
    {3, {3, 70, 37}, 1},  /* columns, ragged vector */
    {2, {1000, 40}, 0},   /* columns, long axis, narrow blocks */
    {4, {2, 3, 4, 5}, 2}, /* columns, tiny */
    {3, {2, 5, 300}, 1},  /* columns wider than one block */
};
#define N_SHAPES (sizeof k_shapes / sizeof k_shapes[0])

static void describe_shape(char* buf, size_t size, const shape* s, clsoftmax_dtype dt, int op,
                           const char* isa, unsigned threads)
{
    int len = snprintf(buf, size, "%s %s %s [", isa, dt == CLSOFTMAX_FLOAT64 ? "f64" : "f32",
                       op ? "log_softmax" : "softmax");
    for (size_t d = 0; d < s->ndim && len > 0 && (size_t)len < size; d++)
        len += snprintf(buf + len, size - (size_t)len, d ? ",%zu" : "%zu", s->dims[d]);
    if (len > 0 && (size_t)len < size)
        snprintf(buf + len, size - (size_t)len, "] axis %d, %u threads", s->axis, threads);
}

/* Every shape, dtype, op and ISA against the long double reference, on 2 threads. */
static void test_paths_against_reference(void)
{
    clsoftmax__cpu_pool* pool = clsoftmax__cpu_pool_create();
    for (size_t si = 0; si < N_SHAPES; si++) {
        const shape* s = &k_shapes[si];
        size_t count = test_count(s->ndim, s->dims);
        double* in = malloc(count * sizeof(double));
        double* out = malloc(count * sizeof(double));
        long double* ref = malloc(count * sizeof(long double));
        CU_ASSERT_FATAL(in != NULL && out != NULL && ref != NULL);
        for (int dt = 0; dt < 2; dt++) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            test_fill(in, dtype, count, -12.0, 12.0, 1000 + si);
            for (int op = 0; op < 2; op++) {
                clsoftmax_desc desc;
                clsoftmax_desc_init(&desc, dtype, s->ndim, s->dims, s->axis);
                desc.op = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
                desc.scale = op ? 0.75 : 1.0;
                test_reference(&desc, in, ref);
                for (size_t v = 0; v < N_ISAS; v++) {
                    if (clsoftmax__cpu_kernels_select(k_isas[v]) == NULL)
                        continue;
                    char what[160];
                    describe_shape(what, sizeof what, s, dtype, op, isa_name(k_isas[v]), 2);
                    run_job(&desc, in, out, k_isas[v], 2, pool);
                    TEST_COMPARE_DTYPE(out, dtype, ref, count, what);
                }
            }
        }
        free(in);
        free(out);
        free(ref);
    }
    clsoftmax__cpu_pool_free(pool);
}

/*
 * NaN, +inf, all -inf and -inf beside finite values, in every path and ISA,
 * placed in different blocks of the long rows.
 */
static void test_special_values_every_path(void)
{
    static const size_t lens[] = {6, 100, 70000};
    for (size_t li = 0; li < 3; li++) {
        size_t n = lens[li], rows = 6, count = rows * n;
        double* in = malloc(count * sizeof(double));
        double* out = malloc(count * sizeof(double));
        long double* ref = malloc(count * sizeof(long double));
        CU_ASSERT_FATAL(in != NULL && out != NULL && ref != NULL);
        for (int dt = 0; dt < 2; dt++) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            for (int axis = 0; axis < 2; axis++) {
                /* axis 1: rows of n; axis 0: n columns of 6 (each special row is a column) */
                test_fill(in, dtype, count, -5.0, 5.0, 77 + li);
                for (size_t r = 0; r < rows; r++) {
                    size_t last = n - 1, mid = n / 2;
#define AT(r_, k_) (axis ? (r_)*n + (k_) : (k_)*rows + (r_))
                    switch (r) {
                    case 0:
                        test_set(in, dtype, AT(r, mid), NAN);
                        break;
                    case 1:
                        test_set(in, dtype, AT(r, last), INFINITY);
                        break;
                    case 2:
                        for (size_t k = 0; k < n; k++)
                            test_set(in, dtype, AT(r, k), -INFINITY);
                        break;
                    case 3:
                        test_set(in, dtype, AT(r, 0), -INFINITY);
                        test_set(in, dtype, AT(r, last), -INFINITY);
                        break;
                    case 4: /* a whole first half of -inf: all -inf blocks beside finite ones */
                        for (size_t k = 0; k < mid; k++)
                            test_set(in, dtype, AT(r, k), -INFINITY);
                        break;
                    default: /* ties at the max, in several blocks */
                        test_set(in, dtype, AT(r, 0), 7.0);
                        test_set(in, dtype, AT(r, last), 7.0);
                        test_set(in, dtype, AT(r, mid), 7.0);
                        break;
                    }
#undef AT
                }
                size_t dims[2];
                if (axis) {
                    dims[0] = rows;
                    dims[1] = n;
                } else {
                    dims[0] = n;
                    dims[1] = rows;
                }
                for (int op = 0; op < 2; op++) {
                    clsoftmax_desc desc;
                    clsoftmax_desc_init(&desc, dtype, 2, dims, axis);
                    desc.op = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
                    test_reference(&desc, in, ref);
                    for (size_t v = 0; v < N_ISAS; v++) {
                        if (clsoftmax__cpu_kernels_select(k_isas[v]) == NULL)
                            continue;
                        shape s = {2, {dims[0], dims[1]}, axis};
                        char what[160];
                        describe_shape(what, sizeof what, &s, dtype, op, isa_name(k_isas[v]), 1);
                        run_job(&desc, in, out, k_isas[v], 1, NULL);
                        TEST_COMPARE_DTYPE(out, dtype, ref, count, what);
                    }
                }
            }
        }
        free(in);
        free(out);
        free(ref);
    }
}

/* ---- determinism across thread counts ------------------------------------------ */

static void test_bitwise_across_threads(void)
{
    clsoftmax__cpu_pool* pool = clsoftmax__cpu_pool_create();
    for (size_t si = 0; si < N_SHAPES; si++) {
        const shape* s = &k_shapes[si];
        size_t count = test_count(s->ndim, s->dims);
        double* in = malloc(count * sizeof(double));
        double* first = malloc(count * sizeof(double));
        double* again = malloc(count * sizeof(double));
        CU_ASSERT_FATAL(in != NULL && first != NULL && again != NULL);
        for (int dt = 0; dt < 2; dt++) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            size_t bytes = count * test_dtype_size(dtype);
            test_fill(in, dtype, count, -20.0, 20.0, 500 + si);
            for (int op = 0; op < 2; op++) {
                clsoftmax_desc desc;
                clsoftmax_desc_init(&desc, dtype, s->ndim, s->dims, s->axis);
                desc.op = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
                for (size_t v = 0; v < N_ISAS; v++) {
                    if (clsoftmax__cpu_kernels_select(k_isas[v]) == NULL)
                        continue;
                    run_job(&desc, in, first, k_isas[v], 1, NULL);
                    static const unsigned threads[] = {2, 3, 1, 5};
                    for (size_t t = 0; t < 4; t++) {
                        memset(again, 0xA5, bytes);
                        /* threads 1 through the pool: the pool path with one thread */
                        run_job(&desc, in, again, k_isas[v], threads[t], pool);
                        char what[160];
                        describe_shape(what, sizeof what, s, dtype, op, isa_name(k_isas[v]),
                                       threads[t]);
                        TEST_CHECK(memcmp(first, again, bytes) == 0, "%s: differs from 1 thread",
                                   what);
                    }
                }
            }
        }
        free(in);
        free(first);
        free(again);
    }
    clsoftmax__cpu_pool_free(pool);
}

/*
 * The public entry point on 1, 2 and 3 threads (the context's parameter, read
 * at each call), long rows split across threads: bitwise equal.
 */
static void test_bitwise_public_threads(void)
{
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    CU_ASSERT_FATAL(ctx != NULL);
    size_t dims[2] = {2, 300007}, count = dims[0] * dims[1];
    float* in = malloc(count * sizeof *in);
    float* out[3] = {malloc(count * sizeof(float)), malloc(count * sizeof(float)),
                     malloc(count * sizeof(float))};
    CU_ASSERT_FATAL(in != NULL && out[0] != NULL && out[1] != NULL && out[2] != NULL);
    test_fill(in, CLSOFTMAX_FLOAT32, count, -30.0, 30.0, 99);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    for (unsigned t = 0; t < 3; t++) {
        ctx->params[CLSOFTMAX_PARAM_CPU_THREADS] = t + 1;
        TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, out[t]), CLSOFTMAX_SUCCESS);
    }
    TEST_CHECK(clsoftmax__cpu_pool_workers(ctx->cpu_pool) == 2,
               "3 threads asked: %u workers started", clsoftmax__cpu_pool_workers(ctx->cpu_pool));
    TEST_CHECK(memcmp(out[0], out[1], count * sizeof(float)) == 0, "2 threads differ from 1");
    TEST_CHECK(memcmp(out[0], out[2], count * sizeof(float)) == 0, "3 threads differ from 1");
    ctx->params[CLSOFTMAX_PARAM_CPU_THREADS] = 0;
    free(in);
    for (int t = 0; t < 3; t++)
        free(out[t]);
    clsoftmax_context_free(ctx);
}

/* ---- accuracy at 4M columns ----------------------------------------------------- */

/*
 * One row of 4194304 float32 (the 4 x 4194304 row length), softmax and
 * log-softmax: every output within rtol 1e-5 of a long double reference computed
 * on the fly, and |sum - 1| <= 1e-5. Two rows: random values, and all equal
 * values (every term 1: the sum most exposed to rounding).
 */
static void test_accuracy_4m(void)
{
    const size_t n = 4194304;
    float* in = malloc(n * sizeof *in);
    float* out = malloc(n * sizeof *out);
    double* e = malloc(n * sizeof *e); /* exp(x - max) from expl, rounded to double */
    CU_ASSERT_FATAL(in != NULL && out != NULL && e != NULL);
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    CU_ASSERT_FATAL(ctx != NULL);
    for (int data = 0; data < 2; data++) {
        if (data == 0)
            test_fill(in, CLSOFTMAX_FLOAT32, n, -8.0, 8.0, 4242);
        else
            for (size_t i = 0; i < n; i++)
                in[i] = 0.5f;
        float m = -INFINITY;
        for (size_t i = 0; i < n; i++)
            m = in[i] > m ? in[i] : m;
        long double s = 0.0L;
        for (size_t i = 0; i < n; i++) {
            e[i] = (double)expl((long double)in[i] - m);
            s += e[i];
        }
        for (int op = 0; op < 2; op++) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 1, &n, 0);
            desc.op = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
            TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
            long double lse = logl(s), sum = 0.0L;
            double worst = 0.0;
            size_t worst_i = 0;
            for (size_t i = 0; i < n; i++) {
                long double want = op ? ((long double)in[i] - m) - lse : e[i] / s;
                long double got = out[i];
                sum += op ? exp(out[i]) : got;
                double rel = (double)(fabsl(got - want) / fabsl(want));
                if (!(rel <= worst)) {
                    worst = rel;
                    worst_i = i;
                }
            }
            TEST_CHECK(worst <= 1e-5, "4M %s data %d: relative error %g at %zu",
                       op ? "log_softmax" : "softmax", data, worst, worst_i);
            TEST_CHECK(fabsl(sum - 1.0L) <= 1e-5L, "4M %s data %d: sum - 1 = %Lg",
                       op ? "log_softmax" : "softmax", data, sum - 1.0L);
        }
    }
    clsoftmax_context_free(ctx);
    free(in);
    free(out);
    free(e);
}

/* ---- float16, bfloat16, blending and zeroed bad rows (staged jobs) ---------------- */

/* Every staged path: short rows, rows, rows longer than the stage, columns (short and long). */
typedef struct view3 {
    size_t outer, n, inner;
    const char* mode;
} view3;
static const view3 k_views[] = {
    {300, 8, 1, "small rows"}, {40, 16, 1, "small rows"},  {37, 129, 1, "rows"},
    {5, 1000, 1, "rows"},      {5, 10000, 1, "long rows"}, {5, 20001, 1, "long rows"},
    {3, 70, 37, "columns"},    {2, 5, 300, "columns"},     {2, 9000, 3, "long columns"},
};
#define N_VIEWS (sizeof k_views / sizeof k_views[0])
static const char* const k_dtype_names[] = {"f32", "f64", "f16", "bf16"};

/* Blend settings: plain, blended, zeroed, both. */
typedef struct blend_case {
    double alpha, beta;
    int zero;
} blend_case;
static const blend_case k_blends[] = {{1.0, 0.0, 0}, {0.75, 0.5, 0}, {1.0, 0.0, 1}, {0.5, 0.25, 1}};
#define N_BLENDS (sizeof k_blends / sizeof k_blends[0])

static size_t esize(int dtype)
{
    return dtype == CLSOFTMAX__CPU_F64 ? 8 : dtype == CLSOFTMAX__CPU_F32 ? 4 : 2;
}

/* Element i of a buffer of dtype, widened (exactly) to double. */
static double get_any(const void* p, int dtype, size_t i)
{
    switch (dtype) {
    case CLSOFTMAX__CPU_F64:
        return ((const double*)p)[i];
    case CLSOFTMAX__CPU_F32:
        return ((const float*)p)[i];
    case CLSOFTMAX__CPU_F16:
        return clsoftmax__f16_to_f32(((const uint16_t*)p)[i]);
    default:
        return clsoftmax__bf16_to_f32(((const uint16_t*)p)[i]);
    }
}

/* v stored as dtype (v already representable, or rounded by the library's own conversion). */
static void set_any(void* p, int dtype, size_t i, double v)
{
    switch (dtype) {
    case CLSOFTMAX__CPU_F64:
        ((double*)p)[i] = v;
        break;
    case CLSOFTMAX__CPU_F32:
        ((float*)p)[i] = (float)v;
        break;
    case CLSOFTMAX__CPU_F16:
        ((uint16_t*)p)[i] = clsoftmax__f32_to_f16((float)v);
        break;
    default:
        ((uint16_t*)p)[i] = clsoftmax__f32_to_bf16((float)v);
        break;
    }
}

/* v rounded once to the 16-bit type (nearest, ties to even), as bits; NaN as the quiet NaN. */
static uint16_t round16_ref(long double v, int bf16)
{
    if (isnan(v))
        return bf16 ? 0x7fc0 : 0x7e00;
    int p = bf16 ? 8 : 11, emin = bf16 ? -126 : -14;
    long double a = fabsl(v), r = a;
    if (a != 0.0L && !isinf(a)) {
        int e;
        frexpl(a, &e);
        int ex = e - 1 < emin ? emin : e - 1;
        long double spacing = ldexpl(1.0L, ex - (p - 1));
        r = rintl(a / spacing) * spacing; /* representable in the 16-bit type (or its 2^max) */
    }
    float f = (float)(v < 0 ? -r : r); /* exact, or past float: inf either way */
    return bf16 ? clsoftmax__f32_to_bf16(f) : clsoftmax__f32_to_f16(f);
}

/* Distance between same-signed 16-bit patterns (0 and -0 equal); NaN and inf must match. */
static unsigned ulps16(uint16_t got, uint16_t want, int bf16)
{
    uint16_t expo = bf16 ? 0x7f80 : 0x7c00;
    int got_nan = (got & expo) == expo && (got & ~expo & 0x7fff) != 0;
    int want_nan = (want & expo) == expo && (want & ~expo & 0x7fff) != 0;
    if (got_nan || want_nan)
        return got_nan && want_nan ? 0 : 0xffffu;
    if ((want & 0x7fff) == expo || (got & 0x7fff) == expo)
        return got == want ? 0 : 0xffffu;
    long a = (got & 0x8000) ? -(long)(got & 0x7fff) : (long)got;
    long b = (want & 0x8000) ? -(long)(want & 0x7fff) : (long)want;
    return (unsigned)labs(a - b);
}

/* Fills in: values in [-6, 6); rows 0-2 bad (NaN, +inf, all -inf), row 3 holds a -inf. */
static void fill_view(void* in, int dtype, const view3* v, uint64_t seed)
{
    uint64_t st = seed * 6364136223846793005ull + 1442695040888963407ull;
    size_t count = v->outer * v->n * v->inner, rows = v->outer * v->inner;
    for (size_t i = 0; i < count; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        set_any(in, dtype, i, -6.0 + 12.0 * (double)(st >> 11) * 0x1p-53);
    }
    for (size_t r = 0; r < 4 && r < rows; r++) {
        size_t o = r / v->inner, i = r % v->inner;
#define AT3(k_) ((o * v->n + (k_)) * v->inner + i)
        if (r == 0)
            set_any(in, dtype, AT3(v->n / 2), NAN);
        else if (r == 1)
            set_any(in, dtype, AT3(v->n - 1), INFINITY);
        else if (r == 2)
            for (size_t k = 0; k < v->n; k++)
                set_any(in, dtype, AT3(k), -INFINITY);
        else
            set_any(in, dtype, AT3(0), -INFINITY);
#undef AT3
    }
}

/*
 * The unblended reference: t = scale * x in the compute precision (float for all but f64),
 * then max, exp, sum and log in long double; a bad row is NaN throughout.
 */
static void reference3(const void* in, int dtype, const view3* v, int log_op, double scale,
                       long double* ref)
{
    const float sf = (float)scale;
    for (size_t o = 0; o < v->outer; o++) {
        for (size_t i = 0; i < v->inner; i++) {
            long double m = -INFINITY;
            int bad = 0;
#define AT3(k_) ((o * v->n + (k_)) * v->inner + i)
#define T3(k_)                                                                                     \
    (dtype == CLSOFTMAX__CPU_F64 ? (long double)(scale * get_any(in, dtype, AT3(k_)))              \
                                 : (long double)(sf * (float)get_any(in, dtype, AT3(k_))))
            for (size_t k = 0; k < v->n; k++) {
                long double t = T3(k);
                bad |= isnan(t) || t == INFINITY;
                m = t > m ? t : m;
            }
            bad |= m == -INFINITY;
            long double s = 0.0L;
            for (size_t k = 0; k < v->n && !bad; k++)
                s += expl(T3(k) - m);
            for (size_t k = 0; k < v->n; k++) {
                long double d = T3(k) - m;
                ref[AT3(k)] = bad ? NAN : log_op ? d - logl(s) : expl(d) / s;
            }
#undef T3
#undef AT3
        }
    }
}

/* Output before the call: NaN garbage where out must not be read, else values of the op's sign. */
static void fill_old(void* out, int dtype, size_t count, int log_op, int read, uint64_t seed)
{
    uint64_t st = seed;
    for (size_t i = 0; i < count; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(st >> 11) * 0x1p-53;
        set_any(out, dtype, i, !read ? NAN : log_op ? -8.0 * u : u);
    }
}

typedef struct err_track {
    unsigned worst_ulps[4][2]; /* 16-bit: [dtype][op], in ulps of the type */
} err_track;

/*
 * Runs one staged job and checks every output: 16-bit types within 1 ulp of the reference
 * blended in long double and rounded once; float32/float64 within the promised tolerances.
 */
static void run_and_check(const view3* v, int dtype, int log_op, const blend_case* b,
                          clsoftmax__cpu_isa isa, const void* in, const long double* ref, void* out,
                          long double* want, unsigned* worst)
{
    size_t count = v->outer * v->n * v->inner;
    fill_old(out, dtype, count, log_op, b->beta != 0.0, 99);
    for (size_t i = 0; i < count; i++) {
        long double r = ref[i];
        if (b->zero && isnan(r))
            r = 0.0L;
        want[i] = (long double)b->alpha * r +
                  (b->beta != 0.0 ? (long double)b->beta * get_any(out, dtype, i) : 0.0L);
    }
    clsoftmax__cpu_job job = {
        .outer = v->outer,
        .n = v->n,
        .inner = v->inner,
        .dtype = dtype,
        .log = log_op,
        .scale = log_op ? 0.75 : 1.0,
        .alpha = b->alpha,
        .beta = b->beta,
        .zero_bad = b->zero,
        .in = in,
        .out = out,
        .isa = isa,
    };
    clsoftmax__cpu_softmax(&job, 1, NULL);
    char what[160];
    snprintf(what, sizeof what, "%s %s %s %s [%zu,%zu,%zu] alpha %g beta %g zero %d", isa_name(isa),
             k_dtype_names[dtype], log_op ? "log_softmax" : "softmax", v->mode, v->outer, v->n,
             v->inner, b->alpha, b->beta, b->zero);
    if (dtype == CLSOFTMAX__CPU_F32 || dtype == CLSOFTMAX__CPU_F64) {
        TEST_COMPARE_DTYPE(out, (clsoftmax_dtype)dtype, want, count, what);
        return;
    }
    int bf16 = dtype == CLSOFTMAX__CPU_BF16;
    unsigned w = 0;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        unsigned e = ulps16(((const uint16_t*)out)[i], round16_ref(want[i], bf16), bf16);
        if (e > w) {
            w = e;
            at = i;
        }
    }
    TEST_CHECK(w <= 1, "%s: %u ulps at %zu (got %#x, want %#x)", what, w, at,
               ((const uint16_t*)out)[at], round16_ref(want[at], bf16));
    if (w > *worst)
        *worst = w;
}

/* Every staged path, dtype, op, blend and ISA against the long double reference. */
static void test_staged_against_reference(void)
{
    unsigned worst[4][2] = {{0}};
    for (size_t vi = 0; vi < N_VIEWS; vi++) {
        const view3* v = &k_views[vi];
        size_t count = v->outer * v->n * v->inner;
        void* in = malloc(count * 8);
        void* out = malloc(count * 8);
        long double* ref = malloc(count * sizeof *ref);
        long double* want = malloc(count * sizeof *want);
        CU_ASSERT_FATAL(in != NULL && out != NULL && ref != NULL && want != NULL);
        for (int dtype = 0; dtype < 4; dtype++) {
            fill_view(in, dtype, v, 31 + vi);
            for (int op = 0; op < 2; op++) {
                reference3(in, dtype, v, op, op ? 0.75 : 1.0, ref);
                for (size_t bi = 0; bi < N_BLENDS; bi++)
                    for (size_t s = 0; s < N_ISAS; s++)
                        if (clsoftmax__cpu_kernels_select(k_isas[s]) != NULL)
                            run_and_check(v, dtype, op, &k_blends[bi], k_isas[s], in, ref, out,
                                          want, &worst[dtype][op]);
            }
        }
        free(in);
        free(out);
        free(ref);
        free(want);
    }
    if (getenv("CLSOFTMAX_TEST_REPORT_ULPS") != NULL)
        for (int d = 2; d < 4; d++)
            for (int op = 0; op < 2; op++)
                fprintf(stderr, "%s %s: max %u ulp\n", k_dtype_names[d], op ? "log" : "softmax",
                        worst[d][op]);
}

/*
 * A staged float32/float64 job that blends nothing (zero_bad set, no bad row) gives the plain
 * job's bits in every path but rows longer than the stage; in place (in == out, beta 0) gives the
 * same bits as out of place for every dtype and path.
 */
static void test_staged_bits(void)
{
    for (size_t vi = 0; vi < N_VIEWS; vi++) {
        const view3* v = &k_views[vi];
        size_t count = v->outer * v->n * v->inner;
        unsigned char* in = malloc(count * 8);
        unsigned char* a = malloc(count * 8);
        unsigned char* b = malloc(count * 8);
        CU_ASSERT_FATAL(in != NULL && a != NULL && b != NULL);
        for (int dtype = 0; dtype < 4; dtype++) {
            size_t bytes = count * esize(dtype);
            for (int op = 0; op < 2; op++) {
                for (size_t s = 0; s < N_ISAS; s++) {
                    if (clsoftmax__cpu_kernels_select(k_isas[s]) == NULL)
                        continue;
                    char what[160];
                    snprintf(what, sizeof what, "%s %s %s %s [%zu,%zu,%zu]", isa_name(k_isas[s]),
                             k_dtype_names[dtype], op ? "log_softmax" : "softmax", v->mode,
                             v->outer, v->n, v->inner);
                    fill_view(in, dtype, v, 7 + vi);
                    clsoftmax__cpu_job job = {
                        .outer = v->outer,
                        .n = v->n,
                        .inner = v->inner,
                        .dtype = dtype,
                        .log = op,
                        .scale = 1.0,
                        .alpha = 1.0,
                        .in = in,
                        .out = a,
                        .isa = k_isas[s],
                    };
                    clsoftmax__cpu_softmax(&job, 1, NULL);
                    job.out = in; /* in place */
                    clsoftmax__cpu_softmax(&job, 1, NULL);
                    TEST_CHECK(memcmp(a, in, bytes) == 0, "%s: in place differs", what);
                    /* rows longer than the stage sum in other chunks: not the plain bits */
                    if (dtype > CLSOFTMAX__CPU_F64 || strcmp(v->mode, "long rows") == 0)
                        continue;
                    /* no bad row: staged (zero_bad) against plain */
                    fill_view(in, dtype, v, 7 + vi);
                    for (size_t r = 0; r < 3; r++)
                        for (size_t k = 0; k < v->n; k++)
                            set_any(in, dtype,
                                    ((r / v->inner) * v->n + k) * v->inner + r % v->inner, 0.5);
                    job.in = in;
                    job.out = a;
                    clsoftmax__cpu_softmax(&job, 1, NULL);
                    job.out = b;
                    job.zero_bad = 1;
                    clsoftmax__cpu_softmax(&job, 1, NULL);
                    TEST_CHECK(memcmp(a, b, bytes) == 0, "%s: staged differs from plain", what);
                }
            }
        }
        free(in);
        free(a);
        free(b);
    }
}

/* Staged jobs give the same bits on any thread count (blocks split across threads included). */
static void test_staged_threads(void)
{
    static const view3 views[] = {
        {20000, 8, 1, "small rows"}, {200, 1000, 1, "rows"},  {3, 40001, 1, "long rows"},
        {1, 100003, 1, "long rows"}, {3, 70, 370, "columns"}, {2, 9000, 3, "long columns"},
    };
    static const blend_case blends[] = {{1.0, 0.0, 0}, {0.5, 0.25, 1}};
    clsoftmax__cpu_pool* pool = clsoftmax__cpu_pool_create();
    for (size_t vi = 0; vi < sizeof views / sizeof views[0]; vi++) {
        const view3* v = &views[vi];
        size_t count = v->outer * v->n * v->inner;
        unsigned char* in = malloc(count * 8);
        unsigned char* first = malloc(count * 8);
        unsigned char* again = malloc(count * 8);
        CU_ASSERT_FATAL(in != NULL && first != NULL && again != NULL);
        for (int dtype = 0; dtype < 4; dtype++) {
            size_t bytes = count * esize(dtype);
            fill_view(in, dtype, v, 300 + vi);
            for (int op = 0; op < 2; op++) {
                for (size_t bi = 0; bi < 2; bi++) {
                    if (dtype < CLSOFTMAX__CPU_F16 && bi == 0)
                        continue; /* the plain path: test_bitwise_across_threads */
                    for (size_t s = 0; s < N_ISAS; s++) {
                        if (clsoftmax__cpu_kernels_select(k_isas[s]) == NULL)
                            continue;
                        clsoftmax__cpu_job job = {
                            .outer = v->outer,
                            .n = v->n,
                            .inner = v->inner,
                            .dtype = dtype,
                            .log = op,
                            .scale = 1.0,
                            .alpha = blends[bi].alpha,
                            .beta = blends[bi].beta,
                            .zero_bad = blends[bi].zero,
                            .in = in,
                            .out = first,
                            .isa = k_isas[s],
                        };
                        fill_old(first, dtype, count, op, 1, 5);
                        clsoftmax__cpu_softmax(&job, 1, NULL);
                        static const unsigned threads[] = {2, 3, 5};
                        for (size_t t = 0; t < 3; t++) {
                            fill_old(again, dtype, count, op, 1, 5);
                            job.out = again;
                            clsoftmax__cpu_softmax(&job, threads[t], pool);
                            TEST_CHECK(memcmp(first, again, bytes) == 0,
                                       "%s %s %s %s [%zu,%zu,%zu] blend %zu: %u threads differ",
                                       isa_name(k_isas[s]), k_dtype_names[dtype],
                                       op ? "log_softmax" : "softmax", v->mode, v->outer, v->n,
                                       v->inner, bi, threads[t]);
                        }
                    }
                }
            }
        }
        free(in);
        free(first);
        free(again);
    }
    clsoftmax__cpu_pool_free(pool);
}

/* ---- the bad-row check ------------------------------------------------------------ */

/* The contract, element by element: t = scale * x in the compute precision. */
static void check_rows_ref(const void* in, int dtype, const view3* v, double scale, size_t* bad,
                           size_t* first)
{
    *bad = 0;
    *first = SIZE_MAX;
    for (size_t r = 0; r < v->outer * v->inner; r++) {
        size_t o = r / v->inner, i = r % v->inner;
        int nan_or_inf = 0, all_neg_inf = 1;
        for (size_t k = 0; k < v->n; k++) {
            double x = get_any(in, dtype, (o * v->n + k) * v->inner + i);
            double t = dtype == CLSOFTMAX__CPU_F64 ? scale * x : (double)((float)scale * (float)x);
            nan_or_inf |= isnan(t) || t == INFINITY;
            all_neg_inf &= t == -INFINITY;
        }
        if ((nan_or_inf || all_neg_inf) && (*bad)++ == 0)
            *first = r;
    }
}

/*
 * Each kind of bad row (NaN, +inf, all -inf, +inf from scale * x overflowing, +inf from a
 * negative scale times -inf) in rows, long rows and columns, placed late so that the first bad
 * row is not row 0, on 1 and 3 threads of each ISA; rows with -inf beside finite values are good.
 */
static void test_check_rows(void)
{
    static const view3 views[] = {
        {50, 8, 1, "small rows"}, {40, 1000, 1, "rows"},     {6, 40001, 1, "long rows"},
        {3, 70, 37, "columns"},   {2, 9000, 300, "columns"},
    };
    clsoftmax__cpu_pool* pool = clsoftmax__cpu_pool_create();
    for (size_t vi = 0; vi < sizeof views / sizeof views[0]; vi++) {
        const view3* v = &views[vi];
        size_t count = v->outer * v->n * v->inner, rows = v->outer * v->inner;
        unsigned char* in = malloc(count * 8);
        CU_ASSERT_FATAL(in != NULL);
        for (int dtype = 0; dtype < 4; dtype++) {
            for (int kind = 0; kind < 6; kind++) {
                uint64_t st = 17;
                for (size_t i = 0; i < count; i++) {
                    st = st * 6364136223846793005ull + 1442695040888963407ull;
                    set_any(in, dtype, i, -4.0 + 8.0 * (double)(st >> 11) * 0x1p-53);
                }
                double scale = 1.0;
                size_t r0 = rows - 1 - rows / 3, r1 = rows - 1; /* two bad rows, late */
                for (size_t j = 0; j < 2; j++) {
                    size_t r = j ? r1 : r0, o = r / v->inner, i = r % v->inner;
                    size_t k = j ? v->n - 1 : v->n / 2;
#define AT3(k_) ((o * v->n + (k_)) * v->inner + i)
                    switch (kind) {
                    case 0:
                        set_any(in, dtype, AT3(k), NAN);
                        break;
                    case 1:
                        set_any(in, dtype, AT3(k), INFINITY);
                        break;
                    case 2:
                        for (size_t kk = 0; kk < v->n; kk++)
                            set_any(in, dtype, AT3(kk), -INFINITY);
                        break;
                    case 3: /* finite x whose t overflows (f16 x tops at 65504) */
                        set_any(in, dtype, AT3(k), 60000.0);
                        scale = dtype == CLSOFTMAX__CPU_F64 ? 1e305 : 1e35;
                        break;
                    case 4: /* -inf times a negative scale */
                        set_any(in, dtype, AT3(k), -INFINITY);
                        scale = -1.0;
                        break;
                    default: /* good: -inf beside finite values */
                        set_any(in, dtype, AT3(0), -INFINITY);
                        set_any(in, dtype, AT3(v->n - 1), -INFINITY);
                        break;
                    }
#undef AT3
                }
                size_t want_bad, want_first;
                check_rows_ref(in, dtype, v, scale, &want_bad, &want_first);
                TEST_CHECK(kind == 5 ? want_bad == 0 : want_bad == 2 && want_first == r0,
                           "reference: kind %d, %zu bad from %zu", kind, want_bad, want_first);
                for (size_t s = 0; s < N_ISAS; s++) {
                    if (clsoftmax__cpu_kernels_select(k_isas[s]) == NULL)
                        continue;
                    for (unsigned threads = 1; threads <= 3; threads += 2) {
                        clsoftmax__cpu_job job = {
                            .outer = v->outer,
                            .n = v->n,
                            .inner = v->inner,
                            .dtype = dtype,
                            .scale = scale,
                            .alpha = 1.0,
                            .in = in,
                            .isa = k_isas[s],
                        };
                        size_t bad = 7, first = 7;
                        clsoftmax__cpu_check_rows(&job, threads, pool, &bad, &first);
                        TEST_CHECK(bad == want_bad && first == want_first,
                                   "%s %s %s [%zu,%zu,%zu] kind %d, %u threads: %zu bad from "
                                   "%zu, want %zu from %zu",
                                   isa_name(k_isas[s]), k_dtype_names[dtype], v->mode, v->outer,
                                   v->n, v->inner, kind, threads, bad, first, want_bad, want_first);
                    }
                }
            }
        }
        free(in);
    }
    clsoftmax__cpu_pool_free(pool);
}

/* ---- the pool -------------------------------------------------------------------- */

typedef struct count_arg {
    pthread_mutex_t lock;
    unsigned seen[8];
    unsigned calls;
} count_arg;

static void count_task(void* p, unsigned index, unsigned count)
{
    count_arg* a = p;
    pthread_mutex_lock(&a->lock);
    if (index < 8 && count <= 8)
        a->seen[index]++;
    a->calls++;
    pthread_mutex_unlock(&a->lock);
}

static void test_pool_runs(void)
{
    /* NULL pool and one thread: the caller alone. */
    count_arg a = {.calls = 0};
    pthread_mutex_init(&a.lock, NULL);
    clsoftmax__cpu_pool_run(NULL, 4, count_task, &a);
    TEST_CHECK(a.calls == 1 && a.seen[0] == 1, "NULL pool: %u calls", a.calls);

    clsoftmax__cpu_pool* pool = clsoftmax__cpu_pool_create();
    CU_ASSERT_FATAL(pool != NULL);
    TEST_CHECK(clsoftmax__cpu_pool_workers(pool) == 0, "workers before first use");
    for (unsigned rep = 0; rep < 200; rep++) {
        memset(a.seen, 0, sizeof a.seen);
        a.calls = 0;
        unsigned threads = 1 + rep % 4;
        clsoftmax__cpu_pool_run(pool, threads, count_task, &a);
        int ok = a.calls == threads;
        for (unsigned i = 0; i < threads; i++)
            ok = ok && a.seen[i] == 1;
        TEST_CHECK(ok, "run %u on %u threads: %u calls", rep, threads, a.calls);
    }
    /* Workers start once, up to the most ever asked for, never per call. */
    TEST_CHECK(clsoftmax__cpu_pool_workers(pool) == 3, "%u workers after runs of up to 4",
               clsoftmax__cpu_pool_workers(pool));
    clsoftmax__cpu_pool_free(pool);
    clsoftmax__cpu_pool_free(NULL);
    /* Created and freed without a run. */
    clsoftmax__cpu_pool_free(clsoftmax__cpu_pool_create());
    pthread_mutex_destroy(&a.lock);
}

/* Many contexts, each running once on several threads and freed: no leak, no hang. */
static void test_many_contexts(void)
{
    size_t dims[2] = {64, 1024}, count = dims[0] * dims[1];
    float* in = malloc(count * sizeof *in);
    float* out = malloc(count * sizeof *out);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(in != NULL && out != NULL && ref != NULL);
    test_fill(in, CLSOFTMAX_FLOAT32, count, -4.0, 4.0, 5);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    test_reference(&desc, in, ref);
    for (int i = 0; i < 40; i++) {
        clsoftmax_config cfg;
        clsoftmax_config_init(&cfg);
        cfg.backend = CLSOFTMAX_BACKEND_CPU;
        cfg.use_environment = 0;
        cfg.cpu_threads = 2 + (unsigned)(i % 3);
        clsoftmax_context* ctx = NULL;
        TEST_STATUS(clsoftmax_context_create(&cfg, &ctx), CLSOFTMAX_SUCCESS);
        if (ctx == NULL)
            break;
        if (i % 4 != 3) { /* some contexts never start their pool */
            memset(out, 0, count * sizeof *out);
            TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
            if (i % 8 == 0)
                TEST_COMPARE_DTYPE(out, CLSOFTMAX_FLOAT32, ref, count, "context cycle");
        }
        clsoftmax_context_free(ctx);
    }
    free(in);
    free(out);
    free(ref);
}

typedef struct caller_arg {
    clsoftmax_context* ctx;
    const clsoftmax_desc* desc;
    const float* in;
    const float* want; /* the single-threaded result */
    size_t count;
    int failures;
} caller_arg;

static void* caller_main(void* p)
{
    caller_arg* a = p;
    float* out = malloc(a->count * sizeof *out);
    if (out == NULL) {
        a->failures++;
        return NULL;
    }
    for (int rep = 0; rep < 15; rep++) {
        memset(out, 0, a->count * sizeof *out);
        if (clsoftmax_softmax_host(a->ctx, a->desc, a->in, out) != CLSOFTMAX_SUCCESS ||
            memcmp(out, a->want, a->count * sizeof *out) != 0)
            a->failures++;
    }
    free(out);
    return NULL;
}

/*
 * Three threads call one CPU context at once, each on its own shape (rows,
 * long rows, columns): no deadlock, every result bitwise equal to a
 * single-threaded run (the pool serves one caller; the others run alone).
 */
static void test_concurrent_callers(void)
{
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    CU_ASSERT_FATAL(ctx != NULL);
    ctx->params[CLSOFTMAX_PARAM_CPU_THREADS] = 2;
    static const size_t shapes[3][2] = {{256, 1000}, {2, 200000}, {500, 300}};
    static const int axes[3] = {-1, -1, 0};
    clsoftmax_desc desc[3];
    caller_arg args[3];
    pthread_t tid[3];
    float* bufs[6] = {0};
    for (int t = 0; t < 3; t++) {
        size_t count = shapes[t][0] * shapes[t][1];
        clsoftmax_desc_init(&desc[t], CLSOFTMAX_FLOAT32, 2, shapes[t], axes[t]);
        bufs[2 * t] = malloc(count * sizeof(float));
        bufs[2 * t + 1] = malloc(count * sizeof(float));
        CU_ASSERT_FATAL(bufs[2 * t] != NULL && bufs[2 * t + 1] != NULL);
        test_fill(bufs[2 * t], CLSOFTMAX_FLOAT32, count, -9.0, 9.0, 31 + (uint64_t)t);
        run_job(&desc[t], bufs[2 * t], bufs[2 * t + 1], CLSOFTMAX__CPU_ISA_AUTO, 1, NULL);
        args[t] = (caller_arg){ctx, &desc[t], bufs[2 * t], bufs[2 * t + 1], count, 0};
    }
    int started[3];
    for (int t = 0; t < 3; t++)
        started[t] = pthread_create(&tid[t], NULL, caller_main, &args[t]) == 0;
    for (int t = 0; t < 3; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            caller_main(&args[t]);
        TEST_CHECK(args[t].failures == 0, "caller %d: %d of 15 results wrong", t, args[t].failures);
    }
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    clsoftmax_context_free(ctx);
}

void test_register_cpu_kernels(void)
{
    CU_pSuite suite = CU_add_suite("cpu_kernels", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "exp float32 against long double", test_exp_f32);
    CU_add_test(suite, "exp float64 against long double", test_exp_f64);
    CU_add_test(suite, "every path and ISA against the reference", test_paths_against_reference);
    CU_add_test(suite, "special values, every path and ISA", test_special_values_every_path);
    CU_add_test(suite, "bitwise equal across thread counts", test_bitwise_across_threads);
    CU_add_test(suite, "public entry, 1 2 3 threads", test_bitwise_public_threads);
    CU_add_test(suite, "accuracy at 4M columns", test_accuracy_4m);
    CU_add_test(suite, "pool runs and workers", test_pool_runs);
    CU_add_test(suite, "many contexts", test_many_contexts);
    CU_add_test(suite, "concurrent callers on one context", test_concurrent_callers);
    CU_add_test(suite, "f16, bf16, blending, zeroed rows: every path against the reference",
                test_staged_against_reference);
    CU_add_test(suite, "staged bits: in place, and plain when nothing blends", test_staged_bits);
    CU_add_test(suite, "staged jobs bitwise equal across thread counts", test_staged_threads);
    CU_add_test(suite, "bad-row check: each kind, each layout, threads", test_check_rows);
}
