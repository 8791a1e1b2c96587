/* test_softmax.c - suites "cpu" and "opencl": the host entry point against the reference. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_suites.h"
#include "test_util.h"

/*
 * The same test functions run in both suites; each suite's init creates the
 * context for its backend (one per suite: PoCL compiles kernels on first use).
 */
static clsoftmax_context* g_ctx;

static int init_cpu(void)
{
    g_ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    return g_ctx == NULL;
}

static int init_opencl(void)
{
    g_ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    return g_ctx == NULL;
}

/*
 * The work-group-per-row strategies (ROW_LOCAL, ROW_MULTIPASS, STRIDED): on a CPU device the
 * defaults pick the work-item-per-row kernels, so this suite runs every test again with a
 * work-group per row and scalar loads.
 */
static int init_group_opencl(void)
{
    g_ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    if (g_ctx == NULL)
        return 1;
    return clsoftmax_context_set_param(g_ctx, CLSOFTMAX_PARAM_ROWS_PER_GROUP, 1) !=
               CLSOFTMAX_SUCCESS ||
           clsoftmax_context_set_param(g_ctx, CLSOFTMAX_PARAM_VECTOR_WIDTH, 1) != CLSOFTMAX_SUCCESS;
}

static int cleanup_ctx(void)
{
    clsoftmax_context_free(g_ctx);
    g_ctx = NULL;
    return 0;
}

static const char* backend_name(void)
{
    return clsoftmax_context_backend(g_ctx) == CLSOFTMAX_BACKEND_CPU ? "cpu" : "opencl";
}

/* Elements past the output that must stay as they were. */
#define GUARD 16

static void describe(char* buf, size_t size, const clsoftmax_desc* desc, const char* extra)
{
    int len = snprintf(buf, size, "%s %s %s [", backend_name(),
                       desc->dtype == CLSOFTMAX_FLOAT64 ? "f64" : "f32",
                       desc->op == CLSOFTMAX_OP_LOG_SOFTMAX ? "log_softmax" : "softmax");
    for (size_t d = 0; d < desc->ndim && len > 0 && (size_t)len < size; ++d)
        len += snprintf(buf + len, size - (size_t)len, d ? ",%zu" : "%zu", desc->dims[d]);
    if (len > 0 && (size_t)len < size)
        snprintf(buf + len, size - (size_t)len, "] axis %d scale %g%s", desc->axis, desc->scale,
                 extra);
}

/*
 * Runs desc on in (count elements) through the host entry point and checks
 * the result against the reference, the guard past the output, and, where
 * the backend cannot do float64, UNSUPPORTED with the output untouched.
 * Returns 1 when the run succeeded and matched.
 */
static int check_run(const clsoftmax_desc* desc, const void* in, int in_place, const char* extra)
{
    const size_t count = test_count(desc->ndim, desc->dims);
    const size_t esize = test_dtype_size(desc->dtype);
    char what[256];
    describe(what, sizeof what, desc, extra);

    unsigned char* out = malloc((count + GUARD) * esize);
    unsigned char* sentinel = malloc((count + GUARD) * esize);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(out != NULL && sentinel != NULL && ref != NULL);
    test_fill_sentinel(sentinel, (count + GUARD) * esize);
    memcpy(out, sentinel, (count + GUARD) * esize);
    if (in_place)
        memcpy(out, in, count * esize);
    test_reference(desc, in, ref);

    int ok = 0;
    const int unsupported =
        desc->dtype == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(g_ctx);
    clsoftmax_status st = clsoftmax_softmax_host(g_ctx, desc, in_place ? out : in, out);
    if (unsupported) {
        TEST_CHECK(st == CLSOFTMAX_UNSUPPORTED, "%s: float64 without support gave %s", what,
                   clsoftmax_status_name(st));
        const void* before = in_place ? in : sentinel;
        TEST_CHECK(memcmp(out, before, count * esize) == 0, "%s: output written on UNSUPPORTED",
                   what);
    } else {
        TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", what, clsoftmax_status_name(st),
                   clsoftmax_context_last_error(g_ctx));
        if (st == CLSOFTMAX_SUCCESS) {
            ok = TEST_COMPARE_DTYPE(out, desc->dtype, ref, count, what);
            const char* err = clsoftmax_context_last_error(g_ctx);
            TEST_CHECK(err != NULL && err[0] == '\0', "%s: last error \"%s\" after success", what,
                       err ? err : "(null)");
        }
    }
    TEST_CHECK(memcmp(out + count * esize, sentinel + count * esize, GUARD * esize) == 0,
               "%s: wrote past the end of the output", what);
    free(ref);
    free(sentinel);
    free(out);
    return ok;
}

/* Random input in [lo, hi) for the shape, then check_run; out of place unless asked. */
static int check_shape(clsoftmax_dtype dtype, clsoftmax_op op, size_t ndim, const size_t* dims,
                       int axis, double scale, double lo, double hi, int in_place)
{
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, ndim, dims, axis);
    desc.op = op;
    desc.scale = scale;
    const size_t count = test_count(ndim, dims);
    void* in = malloc(count * test_dtype_size(dtype));
    CU_ASSERT_FATAL(in != NULL);
    test_fill(in, dtype, count, lo, hi, 1000003u * count + 17u * (uint64_t)(axis + 16) + ndim);
    int ok = check_run(&desc, in, in_place, in_place ? " in place" : "");
    free(in);
    return ok;
}

/* ---- the worked example of issue 2 ------------------------------------- */

static void test_worked_example(void)
{
    const double x[6] = {-1.30022268, 0.59127472, 1.21384177, 0.1981082, -0.83686108, -1.54785864};
    const double axis0[6] = {0.1826746, 0.80661068, 0.94057075, 0.8173254, 0.19338932, 0.05942925};
    const double axis1[6] = {0.0500392, 0.33172426, 0.61823654, 0.65371718, 0.23222472, 0.1140581};
    const size_t dims[2] = {2, 3};
    const int axes[3] = {0, -1, 1};
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        if (dtype == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(g_ctx))
            continue;
        double in[6], out[6];
        for (int i = 0; i < 6; ++i)
            test_set(in, dtype, (size_t)i, x[i]);
        for (int a = 0; a < 3; ++a) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 2, dims, axes[a]);
            memset(out, 0, sizeof out);
            TEST_STATUS(clsoftmax_softmax_host(g_ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
            const double* want = axes[a] == 0 ? axis0 : axis1;
            for (int i = 0; i < 6; ++i) {
                double got = test_get(out, dtype, (size_t)i);
                TEST_CHECK(fabs(got - want[i]) <= 1e-7,
                           "%s dtype %d axis %d: [%d] got %.10f expected %.8f", backend_name(),
                           (int)dtype, axes[a], i, got, want[i]);
            }
        }
    }
}

/* ---- shapes and axes ---------------------------------------------------- */

static void test_every_axis(void)
{
    static const size_t shapes[][5] = {
        /* ndim, dims... */
        {1, 5}, {2, 3, 7}, {3, 2, 3, 4}, {4, 2, 3, 4, 5}, {4, 4, 33, 2, 3},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
        const size_t ndim = shapes[s][0];
        const size_t* dims = &shapes[s][1];
        for (int axis = -(int)ndim; axis < (int)ndim; ++axis) {
            for (int dt = 0; dt < 2; ++dt) {
                clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
                /* Negative axes are checked on softmax; positive ones on both ops. */
                check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, ndim, dims, axis, 1.0, -5.0, 5.0, 0);
                if (axis >= 0)
                    check_shape(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, ndim, dims, axis, 1.0, -5.0, 5.0,
                                0);
            }
        }
    }
}

static void test_higher_rank(void)
{
    /* 8 dimensions, the maximum, on a middle and the last axis. */
    const size_t dims[8] = {2, 1, 3, 2, 1, 5, 2, 3};
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 8, dims, 5, 1.0, -4.0, 4.0, 0);
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_LOG_SOFTMAX, 8, dims, -1, 1.0, -4.0, 4.0, 0);
    check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_SOFTMAX, 8, dims, 0, 1.0, -4.0, 4.0, 0);
}

static const size_t k_lengths[] = {1, 2, 3, 7, 31, 32, 33, 255, 256, 257, 1000, 4097, 65537};
#define N_LENGTHS (sizeof k_lengths / sizeof k_lengths[0])

static void test_lengths_last_axis(void)
{
    for (size_t i = 0; i < N_LENGTHS; ++i) {
        const size_t n = k_lengths[i];
        const size_t dims[2] = {n > 5000 ? 2 : 5, n};
        for (int dt = 0; dt < 2; ++dt) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, 2, dims, -1, 1.0, -10.0, 10.0, 0);
            check_shape(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 2, dims, -1, 1.0, -10.0, 10.0, 0);
        }
    }
}

static void test_lengths_other_axes(void)
{
    for (size_t i = 0; i < N_LENGTHS; ++i) {
        const size_t n = k_lengths[i];
        /* The axis in the middle, with few neighbours (and an odd count of them). */
        const size_t mid[3] = {2, n, n > 5000 ? 3 : 5};
        check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 3, mid, 1, 1.0, -10.0, 10.0, 0);
        if (n <= 4097)
            check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_LOG_SOFTMAX, 3, mid, -2, 1.0, -10.0, 10.0,
                        0);
        /* The first axis of a wide tensor. */
        if (n <= 1000) {
            const size_t first[2] = {n, 67};
            check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_LOG_SOFTMAX, 2, first, 0, 1.0, -10.0, 10.0,
                        0);
            check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_SOFTMAX, 2, first, -2, 1.0, -10.0, 10.0, 0);
        }
    }
    /* Many columns: more than one work-group of them. */
    const size_t wide[2] = {9, 3000};
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, wide, 0, 1.0, -10.0, 10.0, 0);
}

static void test_many_rows(void)
{
    /*
     * More rows and columns than a launch has work-groups (devices bound the grid and the
     * kernels loop over the rest), and, on the CPU, more than one thread's share.
     */
    const size_t rows[2] = {3000, 33};
    const size_t cols[3] = {3, 5, 20000};
    const size_t first[2] = {4, 40000};
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, 2, rows, -1, 1.0, -10.0, 10.0, 0);
        check_shape(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 3, cols, 1, 1.0, -10.0, 10.0, 0);
        check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, 2, first, 0, 1.0, -10.0, 10.0, 1);
    }
}

/* Local memory of the context's device (0 on the CPU backend). */
static size_t device_local_mem(void)
{
    cl_device_id dev = clsoftmax_context_cl_device(g_ctx);
    cl_ulong local = 0;
    if (dev != NULL)
        clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
    return (size_t)local;
}

static void test_long_rows(void)
{
    /* Longer than the device's local memory holds as float32, bounded to keep the suite quick. */
    size_t local = device_local_mem();
    size_t n = 200000;
    if (local > 0) {
        n = local / sizeof(float) + local / (2 * sizeof(float)) + 17;
        if (n > ((size_t)1 << 22))
            n = (size_t)1 << 22;
        TEST_CHECK(n * sizeof(float) > local || n == ((size_t)1 << 22),
                   "long row %zu does not exceed local memory %zu", n, local);
    }
    const size_t dims[2] = {2, n};
    /* A wide range: exp without max subtraction would overflow. */
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, dims, -1, 1.0, -30.0, 30.0, 0);
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_LOG_SOFTMAX, 2, dims, -1, 1.0, -30.0, 30.0, 0);
    check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_SOFTMAX, 2, dims, -1, 1.0, -30.0, 30.0, 0);
    /* The long axis strided, and in place. */
    const size_t strided[2] = {n / 2, 3};
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, strided, 0, 1.0, -30.0, 30.0, 0);
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_LOG_SOFTMAX, 2, dims, -1, 1.0, -30.0, 30.0, 1);

    if (local > 0) {
        /* Either side of the rows that fit local memory: staged and multipass strategies. */
        const size_t fit = local / sizeof(float) - local / (8 * sizeof(float));
        const size_t rows_fit[2] = {3, fit};
        check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, rows_fit, -1, 1.0, -30.0, 30.0, 0);
        const size_t rows_over[2] = {3, local / sizeof(float) + 1};
        check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, rows_over, -1, 1.0, -30.0, 30.0, 0);
    }
}

static void test_large_magnitudes(void)
{
    /* expf overflows past 88.7 and exp past 709.8: only max subtraction keeps these finite. */
    const size_t dims[2] = {4, 300};
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, dims, -1, 1.0, -1000.0, 1000.0, 0);
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_LOG_SOFTMAX, 2, dims, 0, 1.0, -1000.0, 1000.0, 0);
    check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_SOFTMAX, 2, dims, 0, 1.0, -5000.0, 5000.0, 0);
    check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_LOG_SOFTMAX, 2, dims, -1, 1.0, -5000.0, 5000.0, 0);
    /* All equal and huge: uniform. */
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, dims, -1, 1.0, 1e30, 1e30, 0);
}

/* ---- scale, ops, precision, in place ------------------------------------ */

static void test_scale(void)
{
    const double scales[] = {0.5, -2.0, 0.1, 3.7};
    const size_t last[2] = {6, 257};
    const size_t mid[3] = {3, 33, 4};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; ++i) {
        for (int dt = 0; dt < 2; ++dt) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, 2, last, -1, scales[i], -8.0, 8.0, 0);
            check_shape(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 2, last, -1, scales[i], -8.0, 8.0, 0);
            check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, 3, mid, 1, scales[i], -8.0, 8.0, 0);
            check_shape(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 3, mid, 1, scales[i], -8.0, 8.0, 0);
        }
    }
}

static void test_scale_zero_uniform(void)
{
    /* scale 0 forgets the input: softmax is 1/n everywhere, log-softmax -log(n). */
    const size_t dims[3] = {3, 7, 5};
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        if (dtype == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(g_ctx))
            continue;
        for (int op = 0; op < 2; ++op) {
            for (int axis = 0; axis < 3; ++axis) {
                clsoftmax_desc desc;
                clsoftmax_desc_init(&desc, dtype, 3, dims, axis);
                desc.scale = 0.0;
                desc.op = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
                double in[105], out[105];
                test_fill(in, dtype, 105, -50.0, 50.0, 99u + (uint64_t)axis);
                TEST_STATUS(clsoftmax_softmax_host(g_ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
                const double n = (double)dims[axis];
                const double want = op ? -log(n) : 1.0 / n;
                const double tol = dt ? 1e-15 : 1e-6;
                for (size_t i = 0; i < 105; ++i) {
                    double got = test_get(out, dtype, i);
                    if (!(fabs(got - want) <= tol)) {
                        TEST_CHECK(0, "%s scale 0 op %d axis %d dtype %d: [%zu] %.17g != %.17g",
                                   backend_name(), op, axis, (int)dtype, i, got, want);
                        break;
                    }
                }
            }
        }
    }
    check_shape(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 3, dims, 1, 0.0, -3.0, 3.0, 0);
}

static void test_in_place(void)
{
    const size_t a[2] = {7, 33};
    const size_t b[3] = {4, 257, 3};
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, 2, a, -1, 1.0, -6.0, 6.0, 1);
        check_shape(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 2, a, 0, 1.0, -6.0, 6.0, 1);
        check_shape(dtype, CLSOFTMAX_OP_SOFTMAX, 3, b, 1, -2.0, -6.0, 6.0, 1);
        check_shape(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 3, b, 2, 0.5, -6.0, 6.0, 1);
    }
}

static void test_float64_precision(void)
{
    /* Inputs that differ beyond float32's precision: a float32 path would lose them. */
    const size_t dims[2] = {3, 1000};
    check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_SOFTMAX, 2, dims, -1, 1.0, 1.0, 1.0 + 1e-9, 0);
    check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_LOG_SOFTMAX, 2, dims, -1, 1e6, 1.0, 1.0 + 1e-9, 0);
    check_shape(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_SOFTMAX, 2, dims, 0, 1e8, 1.0, 1.0 + 1e-8, 0);
}

/* ---- special values ----------------------------------------------------- */

#define SPECIAL_N 7
#define SPECIAL_ROWS 12

/* Row patterns: NaN, +inf, -inf beside finite, all -inf, and finite rows between them. */
static double special_value(size_t row, size_t k)
{
    const double finite = 0.25 * (double)((row * 5 + k * 3) % 11) - 1.0;
    switch (row) {
    case 1: /* one NaN */
        return k == 3 ? NAN : finite;
    case 2: /* one +inf */
        return k == 0 ? INFINITY : finite;
    case 3: /* one -inf beside finite values: 0 (log: -inf) there */
        return k == 6 ? -INFINITY : finite;
    case 4: /* all -inf */
        return -INFINITY;
    case 6: /* +inf and -inf */
        return k == 2 ? INFINITY : (k == 4 ? -INFINITY : finite);
    case 7: /* all NaN */
        return NAN;
    case 8: /* one finite value among -inf: probability 1 there */
        return k == 5 ? 2.5 : -INFINITY;
    case 5: /* one huge value: float32 t = scale * x overflows to -inf at scale -2 */
        return k == 2 ? 2e38 : finite;
    case 9: /* two +inf */
        return (k == 1 || k == 5) ? INFINITY : finite;
    case 10: /* NaN and -inf */
        return k == 0 ? -INFINITY : (k == 6 ? NAN : finite);
    case 11: /* float32 t overflows to +inf at scale -2: a NaN row there, finite in float64 */
        return k == 4 ? -3e38 : finite;
    default: /* 0: a finite row that must stay finite and correct */
        return finite;
    }
}

/*
 * The patterns laid out along the axis of [outer, SPECIAL_N, inner] with
 * outer * inner = SPECIAL_ROWS, so the same rows are checked on the last
 * axis, the first and a middle one.
 */
static void check_special(clsoftmax_dtype dtype, clsoftmax_op op, size_t outer, size_t inner,
                          double scale, int in_place)
{
    size_t dims[3];
    size_t ndim = 0;
    int axis;
    if (outer > 1)
        dims[ndim++] = outer;
    axis = (int)ndim;
    dims[ndim++] = SPECIAL_N;
    if (inner > 1)
        dims[ndim++] = inner;
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, ndim, dims, axis);
    desc.op = op;
    desc.scale = scale;

    double in[SPECIAL_ROWS * SPECIAL_N];
    for (size_t o = 0; o < outer; ++o)
        for (size_t k = 0; k < SPECIAL_N; ++k)
            for (size_t i = 0; i < inner; ++i)
                test_set(in, dtype, (o * SPECIAL_N + k) * inner + i,
                         special_value(o * inner + i, k));
    check_run(&desc, in, in_place, " special rows");
}

static void test_special_values(void)
{
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        for (int op = 0; op < 2; ++op) {
            clsoftmax_op o = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
            check_special(dtype, o, SPECIAL_ROWS, 1, 1.0, 0); /* last axis */
            check_special(dtype, o, 1, SPECIAL_ROWS, 1.0, 0); /* first axis */
            check_special(dtype, o, 3, 4, 1.0, 0);            /* middle axis */
            check_special(dtype, o, 4, 3, 1.0, 1);            /* in place */
            /* Negative scale turns +inf into -inf; scale 0 turns inf into NaN. */
            check_special(dtype, o, SPECIAL_ROWS, 1, -2.0, 0);
            check_special(dtype, o, 2, 6, 0.0, 0);
        }
    }
}

/*
 * The reference itself must give the semantics of the brief, or every
 * special-value test above would check the wrong thing.
 */
static void test_reference_semantics(void)
{
    /* valgrind runs x87 long double in double precision and its logl(0) comes out finite: the
       reference's own special values cannot be checked there (.ci/run sets this variable). */
    if (getenv("CLSOFTMAX_TEST_UNDER_VALGRIND") != NULL)
        return;
    const size_t dims[2] = {SPECIAL_ROWS, SPECIAL_N};
    for (int op = 0; op < 2; ++op) {
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT64, 2, dims, 1);
        desc.op = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
        double in[SPECIAL_ROWS * SPECIAL_N];
        long double ref[SPECIAL_ROWS * SPECIAL_N];
        for (size_t r = 0; r < SPECIAL_ROWS; ++r)
            for (size_t k = 0; k < SPECIAL_N; ++k)
                in[r * SPECIAL_N + k] = special_value(r, k);
        test_reference(&desc, in, ref);
        for (size_t r = 0; r < SPECIAL_ROWS; ++r) {
            const long double* y = ref + r * SPECIAL_N;
            int nan_row = r == 1 || r == 2 || r == 4 || r == 6 || r == 7 || r == 9 || r == 10;
            long double sum = 0.0L;
            for (size_t k = 0; k < SPECIAL_N; ++k) {
                if (nan_row) {
                    TEST_CHECK(isnan(y[k]), "reference op %d row %zu [%zu] = %Lg, not NaN", op, r,
                               k, y[k]);
                    continue;
                }
                int neg_inf_in = isinf(in[r * SPECIAL_N + k]);
                if (op == 0) {
                    TEST_CHECK(neg_inf_in ? y[k] == 0.0L : (y[k] >= 0.0L && y[k] <= 1.0L),
                               "reference softmax row %zu [%zu] = %Lg", r, k, y[k]);
                    sum += y[k];
                } else {
                    TEST_CHECK(neg_inf_in ? (isinf(y[k]) && y[k] < 0)
                                          : (isfinite(y[k]) && y[k] <= 0),
                               "reference log_softmax row %zu [%zu] = %Lg", r, k, y[k]);
                    if (!neg_inf_in)
                        sum += expl(y[k]);
                }
            }
            if (!nan_row)
                TEST_CHECK(fabsl(sum - 1.0L) < 1e-15L, "reference row %zu sums to %.20Lg", r, sum);
            if (!nan_row && r == 8)
                TEST_CHECK(op ? y[5] == 0.0L : y[5] == 1.0L, "reference row 8 [5] = %Lg", y[5]);
        }
    }
    /* float32: scale * x overflows in float: +inf makes row 11 NaN, -inf zeroes row 5's [2]. */
    {
        clsoftmax_desc d32;
        clsoftmax_desc_init(&d32, CLSOFTMAX_FLOAT32, 2, dims, -1);
        d32.scale = -2.0;
        float in32[SPECIAL_ROWS * SPECIAL_N];
        long double ref32[SPECIAL_ROWS * SPECIAL_N];
        for (size_t r = 0; r < SPECIAL_ROWS; ++r)
            for (size_t k = 0; k < SPECIAL_N; ++k)
                in32[r * SPECIAL_N + k] = (float)special_value(r, k);
        test_reference(&d32, in32, ref32);
        for (size_t k = 0; k < SPECIAL_N; ++k)
            TEST_CHECK(isnan(ref32[11 * SPECIAL_N + k]), "float32 overflow row [%zu] = %Lg", k,
                       ref32[11 * SPECIAL_N + k]);
        TEST_CHECK(ref32[5 * SPECIAL_N + 2] == 0.0L && isfinite(ref32[5 * SPECIAL_N]),
                   "float32 underflow row: %Lg %Lg", ref32[5 * SPECIAL_N + 2],
                   ref32[5 * SPECIAL_N]);
    }
    /* The float32 mirror: scale rounds to float and the product is a float product. */
    const size_t one[1] = {2};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 1, one, 0);
    desc.scale = 0.1;
    desc.op = CLSOFTMAX_OP_LOG_SOFTMAX;
    const float x[2] = {3.0f, 0.0f};
    long double ref[2];
    test_reference(&desc, x, ref);
    const long double tf = (long double)(0.1f * 3.0f);
    const long double td = 0.3L;
    const long double want_f = -tf - log1pl(expl(-tf));
    const long double want_d = -td - log1pl(expl(-td));
    TEST_CHECK(fabsl(ref[1] - want_f) < 1e-15L && fabsl(ref[1] - want_d) > 1e-10L,
               "float32 mirror: %.20Lg, float scale gives %.20Lg, double scale %.20Lg", ref[1],
               want_f, want_d);
}

/* ---- argument errors ---------------------------------------------------- */

/*
 * watch (the output, or for OVERLAP the whole shared buffer) must be
 * bit-identical after an error.
 */
static void expect_error_watch(const clsoftmax_desc* desc, const void* in, void* out,
                               const void* watch, size_t watch_bytes, clsoftmax_status want,
                               const char* mention, const char* what)
{
    unsigned char* before = malloc(watch_bytes);
    CU_ASSERT_FATAL(before != NULL);
    memcpy(before, watch, watch_bytes);
    clsoftmax_status st = clsoftmax_softmax_host(g_ctx, desc, in, out);
    const char* err = clsoftmax_context_last_error(g_ctx);
    TEST_CHECK(st == want, "%s %s: got %s, expected %s (%s)", backend_name(), what,
               clsoftmax_status_name(st), clsoftmax_status_name(want), err ? err : "(null)");
    TEST_CHECK(memcmp(before, watch, watch_bytes) == 0, "%s %s: output modified on error",
               backend_name(), what);
    TEST_CHECK(err != NULL && err[0] != '\0', "%s %s: empty last error", backend_name(), what);
    TEST_CHECK(test_contains(err, mention), "%s %s: last error \"%s\" does not mention \"%s\"",
               backend_name(), what, err ? err : "(null)", mention);
    free(before);
}

static void expect_error(const clsoftmax_desc* desc, const void* in, void* out, size_t out_bytes,
                         clsoftmax_status want, const char* mention, const char* what)
{
    expect_error_watch(desc, in, out, out, out_bytes, want, mention, what);
}

static void test_argument_errors(void)
{
    const size_t dims[2] = {3, 4};
    float in[12];
    float out[12];
    test_fill(in, CLSOFTMAX_FLOAT32, 12, -1.0, 1.0, 5);
    test_fill_sentinel(out, sizeof out);
    const size_t ob = sizeof out;
    clsoftmax_desc good;
    clsoftmax_desc_init(&good, CLSOFTMAX_FLOAT32, 2, dims, 1);

    /* NULL context: nothing to hold a message, the status alone. */
    unsigned char before[sizeof out];
    memcpy(before, out, ob);
    TEST_STATUS(clsoftmax_softmax_host(NULL, &good, in, out), CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT(memcmp(before, out, ob) == 0);

    expect_error(NULL, in, out, ob, CLSOFTMAX_INVALID_ARGUMENT, "desc", "NULL desc");
    expect_error(&good, NULL, out, ob, CLSOFTMAX_INVALID_ARGUMENT, "in", "NULL in");
    TEST_CHECK(test_contains(clsoftmax_context_last_error(g_ctx), "NULL"),
               "NULL in: \"%s\" does not say NULL", clsoftmax_context_last_error(g_ctx));
    TEST_STATUS(clsoftmax_softmax_host(g_ctx, &good, in, NULL), CLSOFTMAX_INVALID_ARGUMENT);
    TEST_CHECK(test_contains(clsoftmax_context_last_error(g_ctx), "out"),
               "NULL out: \"%s\" does not mention out", clsoftmax_context_last_error(g_ctx));

    clsoftmax_desc d = good;
    d.struct_size = 0;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_ARGUMENT, "struct_size", "struct_size 0");
    d = good;
    d.ndim = 0;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_SHAPE, "ndim", "ndim 0");
    d = good;
    d.ndim = 9;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_SHAPE, "ndim", "ndim 9");
    d = good;
    d.dims[0] = 0;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_SHAPE, "dims", "zero extent");
    d = good;
    d.axis = 2;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_AXIS, "axis", "axis 2 of 2-D");
    d.axis = -3;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_AXIS, "axis", "axis -3 of 2-D");
    d = good;
    d.dims[0] = (size_t)1 << 40;
    d.dims[1] = (size_t)1 << 40;
    expect_error(&d, in, out, ob, CLSOFTMAX_SIZE_OVERFLOW, "overflow", "overflowing dims");
    d = good;
    d.dtype = (clsoftmax_dtype)7;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_DTYPE, "dtype", "dtype 7");
    d = good;
    d.op = (clsoftmax_op)5;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_ARGUMENT, "op", "op 5");
    d = good;
    d.scale = NAN;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_SCALE, "scale", "NaN scale");
    d.scale = INFINITY;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_SCALE, "scale", "inf scale");
    d.scale = -INFINITY;
    expect_error(&d, in, out, ob, CLSOFTMAX_INVALID_SCALE, "scale", "-inf scale");

    /* Partial overlap both ways, by one element and by all but one. */
    float shared[24];
    test_fill(shared, CLSOFTMAX_FLOAT32, 24, -1.0, 1.0, 6);
    const size_t shifts[2] = {1, 11};
    for (size_t s = 0; s < 2; ++s) {
        expect_error_watch(&good, shared, shared + shifts[s], shared, sizeof shared,
                           CLSOFTMAX_OVERLAP, "overlap", "out after in");
        expect_error_watch(&good, shared + shifts[s], shared, shared, sizeof shared,
                           CLSOFTMAX_OVERLAP, "overlap", "out before in");
    }
    /* Adjacent ranges do not overlap. */
    TEST_STATUS(clsoftmax_softmax_host(g_ctx, &good, shared, shared + 12), CLSOFTMAX_SUCCESS);

    /* A success clears the last error. */
    TEST_STATUS(clsoftmax_softmax_host(g_ctx, &good, in, out), CLSOFTMAX_SUCCESS);
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_last_error(g_ctx), "");
}

static void test_float64_unsupported(void)
{
    /* Where float64 is supported this checks it runs; elsewhere UNSUPPORTED, output untouched. */
    const size_t dims[2] = {2, 5};
    double in[10], out[10], before[10];
    test_fill(in, CLSOFTMAX_FLOAT64, 10, -1.0, 1.0, 8);
    test_fill_sentinel(out, sizeof out);
    memcpy(before, out, sizeof out);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT64, 2, dims, 1);
    clsoftmax_status st = clsoftmax_softmax_host(g_ctx, &desc, in, out);
    if (clsoftmax_context_supports_float64(g_ctx)) {
        TEST_STATUS(st, CLSOFTMAX_SUCCESS);
    } else {
        TEST_STATUS(st, CLSOFTMAX_UNSUPPORTED);
        CU_ASSERT(memcmp(before, out, sizeof out) == 0);
        CU_ASSERT(test_contains(clsoftmax_context_last_error(g_ctx), "float64"));
    }
    if (clsoftmax_context_backend(g_ctx) == CLSOFTMAX_BACKEND_CPU)
        CU_ASSERT(clsoftmax_context_supports_float64(g_ctx));
}

static void add_tests(CU_pSuite suite)
{
    if (suite == NULL)
        return;
    CU_add_test(suite, "worked example", test_worked_example);
    CU_add_test(suite, "every axis of 1-D to 4-D", test_every_axis);
    CU_add_test(suite, "8-D", test_higher_rank);
    CU_add_test(suite, "axis lengths, last axis", test_lengths_last_axis);
    CU_add_test(suite, "axis lengths, other axes", test_lengths_other_axes);
    CU_add_test(suite, "more rows and columns than work-groups", test_many_rows);
    CU_add_test(suite, "rows longer than local memory", test_long_rows);
    CU_add_test(suite, "large magnitudes", test_large_magnitudes);
    CU_add_test(suite, "scale", test_scale);
    CU_add_test(suite, "scale 0 is uniform", test_scale_zero_uniform);
    CU_add_test(suite, "in place", test_in_place);
    CU_add_test(suite, "float64 precision", test_float64_precision);
    CU_add_test(suite, "special values", test_special_values);
    CU_add_test(suite, "argument errors", test_argument_errors);
    CU_add_test(suite, "float64 support", test_float64_unsupported);
}

void test_register_softmax(void)
{
    CU_pSuite cpu = CU_add_suite("cpu", init_cpu, cleanup_ctx);
    add_tests(cpu);
    if (cpu != NULL)
        CU_add_test(cpu, "reference semantics", test_reference_semantics);
    add_tests(CU_add_suite("opencl", init_opencl, cleanup_ctx));
    add_tests(CU_add_suite("group_opencl", init_group_opencl, cleanup_ctx));
}
