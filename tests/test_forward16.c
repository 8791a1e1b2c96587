/* test_forward16.c - suites "forward16_cpu" and "forward16_opencl": float16 and bfloat16.
 *
 * One body, run on each backend: softmax and log-softmax of 16-bit data on every OpenCL
 * strategy (forced through the context's parameters, and the choice confirmed with plan.c),
 * on the last, a middle and the first axis, through both entry points (the buffer one on
 * OpenCL only), against a long double reference from the exact 16-bit inputs rounded to the
 * 16-bit type: at most 1 ulp apart; on each strategy also policy ZERO with blending on bad
 * rows. Special inputs (subnormals, inf, NaN) too. The largest
 * error seen per dtype and op is printed when the suite ends.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_half_util.h"
#include "test_suites.h"
#include "test_util.h"

/* The largest error seen, per [dtype - FLOAT16][op], for the closing line. */
static int32_t g_max_ulps[2][2];

static const char* dtype_name(clsoftmax_dtype dtype)
{
    return dtype == CLSOFTMAX_FLOAT16 ? "f16" : "bf16";
}

static int init_cpu(void)
{
    memset(g_max_ulps, 0, sizeof g_max_ulps);
    return test_suite_init_cpu();
}

static int init_opencl(void)
{
    memset(g_max_ulps, 0, sizeof g_max_ulps);
    return test_suite_init_opencl();
}

static int cleanup(void)
{
    printf("\n%s max ulps: f16 softmax %d, f16 log-softmax %d, bf16 softmax %d, bf16 "
           "log-softmax %d\n",
           test_suite_backend_name(), (int)g_max_ulps[0][0], (int)g_max_ulps[0][1],
           (int)g_max_ulps[1][0], (int)g_max_ulps[1][1]);
    return test_suite_cleanup();
}

static int is_opencl(void)
{
    return clsoftmax_context_backend(test_suite_ctx) == CLSOFTMAX_BACKEND_OPENCL;
}

/* ---- strategies ---------------------------------------------------------- */

/* The device's capabilities as plan.c reads them (devices.c's query is not exported). */
static void device_caps(clsoftmax__device_caps* caps)
{
    cl_device_id dev = clsoftmax_context_cl_device(test_suite_ctx);
    memset(caps, 0, sizeof *caps);
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof caps->type, &caps->type, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof caps->compute_units,
                    &caps->compute_units, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof caps->max_work_group_size,
                    &caps->max_work_group_size, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof caps->max_work_item_sizes,
                    caps->max_work_item_sizes, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof caps->local_mem_size,
                    &caps->local_mem_size, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof caps->max_mem_alloc_size,
                    &caps->max_mem_alloc_size, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_ADDRESS_BITS, sizeof caps->address_bits, &caps->address_bits,
                    NULL);
    clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof caps->native_vw_float,
                    &caps->native_vw_float, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE, sizeof caps->native_vw_double,
                    &caps->native_vw_double, NULL);
    caps->has_fp64 = clsoftmax_context_supports_float64(test_suite_ctx);
}

/* The strategy the OpenCL context picks for desc with its parameters now. */
static clsoftmax__strategy strategy_of(const clsoftmax_desc* desc)
{
    clsoftmax__device_caps caps;
    clsoftmax__layout layout;
    clsoftmax__plan plan;
    size_t params[CLSOFTMAX_PARAM_COUNT];
    device_caps(&caps);
    for (int p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p)
        clsoftmax_context_get_param(test_suite_ctx, (clsoftmax_param)p, &params[p]);
    TEST_STATUS(clsoftmax__validate_desc(desc, &layout, NULL, 0), CLSOFTMAX_SUCCESS);
    TEST_STATUS(clsoftmax__plan_make_params(&layout, &caps, params, 0, &plan), CLSOFTMAX_SUCCESS);
    return plan.strategy;
}

/* A strategy forced through parameters, with the shapes that reach it. */
typedef struct strategy_case {
    const char* name;
    clsoftmax__strategy strategy;
    size_t rows_per_group; /* 0: the device's choice */
    size_t split_row_min;  /* 0: the device's choice */
    size_t ndim;
    size_t dims[3];
    int axis;
} strategy_case;

/* Local memory of the device in float elements, for the rows that overflow it (multipass). */
static size_t local_floats(void)
{
    cl_ulong local = 0;
    clGetDeviceInfo(clsoftmax_context_cl_device(test_suite_ctx), CL_DEVICE_LOCAL_MEM_SIZE,
                    sizeof local, &local, NULL);
    return (size_t)(local / sizeof(float));
}

/* ---- one run ------------------------------------------------------------- */

/* Which entry point a run uses. */
enum { VIA_HOST = 0, VIA_BUFFER = 1 };

/*
 * Runs desc on in (16-bit) through `via` into a fresh output, compares with the reference
 * (at most 1 ulp, NaN and inf placed exactly) and records the worst error. Returns the worst.
 */
static int32_t check16(const clsoftmax_desc* desc, const void* in, int via, const char* what)
{
    const size_t count = test_count(desc->ndim, desc->dims);
    uint16_t* out = malloc(count * sizeof *out);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(out != NULL && ref != NULL);
    memset(out, 0xff, count * sizeof *out); /* NaN garbage: beta 0 never reads it */
    th_reference(desc, in, ref);
    clsoftmax_status st = via == VIA_HOST ? clsoftmax_softmax_host(test_suite_ctx, desc, in, out)
                                          : th_run_buffer(test_suite_ctx, desc, in, out);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s %s: %s (%s)", test_suite_backend_name(), what,
               clsoftmax_status_name(st), clsoftmax_context_last_error(test_suite_ctx));
    int32_t worst = 0;
    size_t worst_at = 0;
    for (size_t e = 0; st == CLSOFTMAX_SUCCESS && e < count; ++e) {
        const int32_t u = th_ulps16(desc->dtype, out[e], ref[e]);
        if (u > worst) {
            worst = u;
            worst_at = e;
        }
    }
    TEST_CHECK(worst <= 1, "%s %s %s %s: %d ulps at [%zu]: got %.9g (0x%04x), reference %.9Lg",
               test_suite_backend_name(), dtype_name(desc->dtype),
               desc->op == CLSOFTMAX_OP_LOG_SOFTMAX ? "log-softmax" : "softmax", what, (int)worst,
               worst_at, th_get(desc->dtype, out, worst_at), (unsigned)out[worst_at],
               ref[worst_at]);
    int32_t* slot = &g_max_ulps[desc->dtype == CLSOFTMAX_BFLOAT16][desc->op];
    if (worst != INT32_MAX && worst > *slot)
        *slot = worst;
    free(ref);
    free(out);
    return worst;
}

/*
 * Random 16-bit input in [lo, hi) for the shape, then both ops, both dtypes, each entry point.
 * dominated: one element of each row raised to hi + 14, so that the others' terms add up to
 * less than float's epsilon next to its 1 on short rows (log-softmax there is tiny, not 0).
 */
static void check_shape(size_t ndim, const size_t* dims, int axis, double scale, double lo,
                        double hi, int dominated, const char* what)
{
    size_t outer, n, inner;
    test_view(ndim, dims, axis, &outer, &n, &inner);
    const size_t count = test_count(ndim, dims);
    uint16_t* in = malloc(count * sizeof *in);
    CU_ASSERT_FATAL(in != NULL);
    for (int dt = CLSOFTMAX_FLOAT16; dt <= CLSOFTMAX_BFLOAT16; ++dt) {
        const clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        float* f = malloc(count * sizeof *f);
        CU_ASSERT_FATAL(f != NULL);
        test_fill(f, CLSOFTMAX_FLOAT32, count, lo, hi, 7919u * count + (uint64_t)dt);
        for (size_t r = 0; dominated && r < outer * inner; ++r) {
            const size_t o = r / inner, i = r % inner, k = (r * 7) % n;
            f[(o * n + k) * inner + i] = (float)(hi + 14.0);
        }
        for (size_t e = 0; e < count; ++e)
            th_set(dtype, in, e, f[e]);
        free(f);
        for (int op = 0; op < 2; ++op) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, ndim, dims, axis);
            desc.op = (clsoftmax_op)op;
            desc.scale = scale;
            check16(&desc, in, VIA_HOST, what);
            if (is_opencl())
                check16(&desc, in, VIA_BUFFER, what);
        }
    }
    free(in);
}

/*
 * Policy ZERO with blending (alpha 0.5, beta 0.25) on in, where some rows are bad: good rows
 * 0.5 * v + 0.25 * old, bad rows 0.25 * old exactly; old is 1 (-1 for log-softmax, so that
 * nothing cancels). At most 1 ulp from the reference blended in long double.
 */
static void check_zero_blend(clsoftmax_desc desc, const uint16_t* in, int via, const char* what)
{
    const size_t count = test_count(desc.ndim, desc.dims);
    const double old = desc.op == CLSOFTMAX_OP_LOG_SOFTMAX ? -1.0 : 1.0;
    uint16_t* out = malloc(count * sizeof *out);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(out != NULL && ref != NULL);
    th_reference(&desc, in, ref);
    for (size_t e = 0; e < count; ++e) {
        th_set(desc.dtype, out, e, old);
        ref[e] = 0.5L * (isnan(ref[e]) ? 0.0L : ref[e]) + 0.25L * old;
    }
    desc.nonfinite = CLSOFTMAX_NONFINITE_ZERO;
    desc.alpha = 0.5;
    desc.beta = 0.25;
    clsoftmax_status st = via == VIA_HOST ? clsoftmax_softmax_host(test_suite_ctx, &desc, in, out)
                                          : th_run_buffer(test_suite_ctx, &desc, in, out);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s %s ZERO blend: %s (%s)", test_suite_backend_name(),
               what, clsoftmax_status_name(st), clsoftmax_context_last_error(test_suite_ctx));
    int32_t worst = 0;
    size_t worst_at = 0;
    for (size_t e = 0; st == CLSOFTMAX_SUCCESS && e < count; ++e) {
        const int32_t u = th_ulps16(desc.dtype, out[e], ref[e]);
        if (u > worst) {
            worst = u;
            worst_at = e;
        }
    }
    TEST_CHECK(worst <= 1, "%s %s %s %s ZERO blend: %d ulps at [%zu]: got %.9g, reference %.9Lg",
               test_suite_backend_name(), dtype_name(desc.dtype),
               desc.op == CLSOFTMAX_OP_LOG_SOFTMAX ? "log-softmax" : "softmax", what, (int)worst,
               worst_at, th_get(desc.dtype, out, worst_at), ref[worst_at]);
    free(ref);
    free(out);
}

/* Random input with bad rows (NaN, all -inf, +inf: rows 1, 3, 4 mod 5), policy ZERO blended. */
static void check_shape_bad_rows(size_t ndim, const size_t* dims, int axis, const char* what)
{
    size_t outer, n, inner;
    test_view(ndim, dims, axis, &outer, &n, &inner);
    const size_t count = test_count(ndim, dims);
    uint16_t* in = malloc(count * sizeof *in);
    float* f = malloc(count * sizeof *f);
    CU_ASSERT_FATAL(in != NULL && f != NULL);
    test_fill(f, CLSOFTMAX_FLOAT32, count, -6.0, 6.0, 31u * count);
    for (size_t r = 0; r < outer * inner; ++r) {
        const size_t o = r / inner, i = r % inner;
        for (size_t k = 0; k < n; ++k) {
            float* x = &f[(o * n + k) * inner + i];
            if (r % 5 == 1 && k == (r * 3) % n)
                *x = NAN;
            else if (r % 5 == 3)
                *x = -INFINITY;
            else if (r % 5 == 4 && k == (r * 5) % n)
                *x = INFINITY;
        }
    }
    for (int dt = CLSOFTMAX_FLOAT16; dt <= CLSOFTMAX_BFLOAT16; ++dt) {
        for (size_t e = 0; e < count; ++e)
            th_set((clsoftmax_dtype)dt, in, e, f[e]);
        for (int op = 0; op < 2; ++op) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, (clsoftmax_dtype)dt, ndim, dims, axis);
            desc.op = (clsoftmax_op)op;
            check_zero_blend(desc, in, VIA_HOST, what);
            if (is_opencl())
                check_zero_blend(desc, in, VIA_BUFFER, what);
        }
    }
    free(f);
    free(in);
}

static void set_param(clsoftmax_param p, size_t v)
{
    TEST_STATUS(clsoftmax_context_set_param(test_suite_ctx, p, v), CLSOFTMAX_SUCCESS);
}

/* ---- tests --------------------------------------------------------------- */

static void test_strategies(void)
{
    const size_t over = local_floats() + 1001; /* a float row longer than local memory */
    const strategy_case cases[] = {
        {"row private", CLSOFTMAX__ROW_PRIVATE, 0, 0, 2, {37, 100}, -1},
        {"row private, one vector", CLSOFTMAX__ROW_PRIVATE, 0, 0, 2, {9, 8}, -1},
        {"row item", CLSOFTMAX__ROW_ITEM, 0, 0, 2, {6, 1000}, -1},
        {"row item, odd", CLSOFTMAX__ROW_ITEM, 0, 0, 2, {5, 333}, -1},
        {"row local", CLSOFTMAX__ROW_LOCAL, 1, 0, 2, {4, 3000}, -1},
        {"row multipass", CLSOFTMAX__ROW_MULTIPASS, 1, 0, 2, {2, over}, -1},
        {"row split", CLSOFTMAX__ROW_SPLIT, 0, 2048, 2, {2, 20001}, -1},
        {"strided, middle axis", CLSOFTMAX__STRIDED, 1, 0, 3, {3, 50, 7}, 1},
        {"strided, first axis", CLSOFTMAX__STRIDED, 1, 0, 2, {50, 10}, 0},
        {"strided item, one column", CLSOFTMAX__STRIDED_ITEM, 0, 0, 3, {3, 50, 7}, 1},
        {"strided item, one vector", CLSOFTMAX__STRIDED_ITEM, 0, 0, 3, {4, 30, 8}, 1},
        {"strided item, strips", CLSOFTMAX__STRIDED_ITEM, 0, 0, 3, {2, 20, 128}, 1},
        {"strided item, first axis", CLSOFTMAX__STRIDED_ITEM, 0, 0, 2, {40, 256}, 0},
        {"strided item, long axis", CLSOFTMAX__STRIDED_ITEM, 0, 0, 2, {5000, 256}, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        const strategy_case* sc = &cases[c];
        if (is_opencl()) {
            set_param(CLSOFTMAX_PARAM_ROWS_PER_GROUP, sc->rows_per_group);
            set_param(CLSOFTMAX_PARAM_SPLIT_ROW_MIN, sc->split_row_min);
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT16, sc->ndim, sc->dims, sc->axis);
            const clsoftmax__strategy got = strategy_of(&desc);
            TEST_CHECK(got == sc->strategy, "%s: the plan is strategy %d, not %d", sc->name,
                       (int)got, (int)sc->strategy);
        }
        char what[128];
        check_shape(sc->ndim, sc->dims, sc->axis, 1.0, -8.0, 8.0, 0, sc->name);
        snprintf(what, sizeof what, "%s, dominated rows", sc->name);
        check_shape(sc->ndim, sc->dims, sc->axis, 1.0, -8.0, 8.0, 1, what);
        check_shape_bad_rows(sc->ndim, sc->dims, sc->axis, sc->name);
    }
    if (is_opencl()) {
        set_param(CLSOFTMAX_PARAM_ROWS_PER_GROUP, 0);
        set_param(CLSOFTMAX_PARAM_SPLIT_ROW_MIN, 0);
    }
}

static void test_scale_and_range(void)
{
    const size_t dims[2] = {16, 77};
    check_shape(2, dims, -1, 0.37, -30.0, 30.0, 0, "scale 0.37, wide range");
    check_shape(2, dims, 0, -2.0, -3.0, 3.0, 0, "scale -2, first axis");
    check_shape(2, dims, -1, 1.0, -1.0, 1.0, 0, "narrow range");
    /* One element far above the rest: log-softmax there is about -1e-10, not 0. */
    check_shape(2, dims, -1, 1.0, -16.0, 0.0, 1, "dominated rows");
}

static void test_in_place(void)
{
    const size_t dims[2] = {7, 300};
    for (int dt = CLSOFTMAX_FLOAT16; dt <= CLSOFTMAX_BFLOAT16; ++dt) {
        const clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        uint16_t data[7 * 300], in[7 * 300];
        long double ref[7 * 300];
        float f[7 * 300];
        test_fill(f, CLSOFTMAX_FLOAT32, 7 * 300, -6.0, 6.0, 99u + (uint64_t)dt);
        for (size_t e = 0; e < 7 * 300; ++e)
            th_set(dtype, in, e, f[e]);
        for (int op = 0; op < 2; ++op) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 2, dims, -1);
            desc.op = (clsoftmax_op)op;
            memcpy(data, in, sizeof data);
            th_reference(&desc, in, ref);
            TEST_STATUS(clsoftmax_softmax_host(test_suite_ctx, &desc, data, data),
                        CLSOFTMAX_SUCCESS);
            int32_t worst = 0;
            for (size_t e = 0; e < 7 * 300; ++e) {
                const int32_t u = th_ulps16(dtype, data[e], ref[e]);
                worst = u > worst ? u : worst;
            }
            TEST_CHECK(worst <= 1, "%s %s in place: %d ulps", test_suite_backend_name(),
                       dtype_name(dtype), (int)worst);
        }
    }
}

/*
 * Subnormal, infinite and NaN inputs, one kind per row: subnormals behave as tiny numbers
 * (nothing flushes them), -inf beside finite values gives 0 (-inf for log-softmax), and rows
 * holding NaN or +inf, or all -inf, are NaN throughout (the reference says where).
 */
static void test_special_inputs(void)
{
    enum { ROWS = 8, N = 12 };
    const size_t dims[2] = {ROWS, N};
    const size_t dims_t[2] = {N, ROWS};
    for (int dt = CLSOFTMAX_FLOAT16; dt <= CLSOFTMAX_BFLOAT16; ++dt) {
        const clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        /* the smallest subnormal and a larger one of the type */
        const double tiny = dtype == CLSOFTMAX_FLOAT16 ? ldexp(1.0, -24) : ldexp(1.0, -133);
        const double sub = dtype == CLSOFTMAX_FLOAT16 ? ldexp(1.0, -16) : ldexp(1.0, -128);
        uint16_t in[ROWS * N], in_t[ROWS * N];
        for (size_t r = 0; r < ROWS; ++r) {
            for (size_t k = 0; k < N; ++k) {
                double v = (double)k * 0.25 - 1.0;
                switch (r) {
                case 0: /* subnormals and zeros only: nearly uniform */
                    v = k % 3 == 0 ? tiny : k % 3 == 1 ? -sub : 0.0;
                    break;
                case 1: /* subnormals beside normal values */
                    v = k % 2 ? sub : v;
                    break;
                case 2: /* -inf beside finite */
                    v = k % 4 == 0 ? -INFINITY : v;
                    break;
                case 3: /* all -inf: bad */
                    v = -INFINITY;
                    break;
                case 4: /* +inf: bad */
                    v = k == 5 ? INFINITY : v;
                    break;
                case 5: /* NaN: bad */
                    v = k == 0 ? NAN : v;
                    break;
                case 6: /* overflow of the 16-bit range on input stays finite in float */
                    v = dtype == CLSOFTMAX_FLOAT16 ? (k % 2 ? 65504.0 : -65504.0)
                                                   : (k % 2 ? 1e38 : -1e38);
                    break;
                default:
                    break;
                }
                th_set(dtype, in, r * N + k, v);
                in_t[k * ROWS + r] = in[r * N + k];
            }
        }
        for (int op = 0; op < 2; ++op) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 2, dims, -1);
            desc.op = (clsoftmax_op)op;
            check16(&desc, in, VIA_HOST, "special values, last axis");
            clsoftmax_desc_init(&desc, dtype, 2, dims_t, 0);
            desc.op = (clsoftmax_op)op;
            check16(&desc, in_t, VIA_HOST, "special values, first axis");
            if (is_opencl())
                check16(&desc, in_t, VIA_BUFFER, "special values, first axis");
        }
    }
}

/* clsoftmax_prepare takes the 16-bit types, with a report and policy ERROR too. */
static void test_prepare(void)
{
    const size_t dims[3] = {3, 200, 5};
    for (int dt = CLSOFTMAX_FLOAT16; dt <= CLSOFTMAX_BFLOAT16; ++dt) {
        for (int axis = 0; axis < 3; ++axis) {
            clsoftmax_row_report report;
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, (clsoftmax_dtype)dt, 3, dims, axis);
            TEST_STATUS(clsoftmax_prepare(test_suite_ctx, &desc), CLSOFTMAX_SUCCESS);
            desc.report = &report;
            desc.nonfinite = CLSOFTMAX_NONFINITE_ERROR;
            TEST_STATUS(clsoftmax_prepare(test_suite_ctx, &desc), CLSOFTMAX_SUCCESS);
        }
    }
}

/*
 * The host entry point on pointers 2-byte aligned but not 4 (the OpenCL zero-copy path takes
 * them), and on OpenCL also on odd addresses (streamed instead).
 */
static void test_alignment(void)
{
    enum { ROWS = 5, LEN = 33 };
    const size_t dims[2] = {ROWS, LEN};
    for (int dt = CLSOFTMAX_FLOAT16; dt <= CLSOFTMAX_BFLOAT16; ++dt) {
        const clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        uint16_t in[ROWS * LEN], got[ROWS * LEN];
        long double ref[ROWS * LEN];
        /* storage with room for a shift of up to 3 bytes */
        uint16_t in_store[ROWS * LEN + 4], out_store[ROWS * LEN + 4];
        for (size_t e = 0; e < ROWS * LEN; ++e)
            th_set(dtype, in, e, (double)((e * 5) % 17) * 0.4 - 3.0);
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, dtype, 2, dims, -1);
        th_reference(&desc, in, ref);
        for (size_t shift = 2; shift <= (is_opencl() ? 3u : 2u); ++shift) {
            unsigned char* pin =
                (unsigned char*)in_store + ((uintptr_t)in_store % 4 == 0 ? shift : shift + 2);
            unsigned char* pout =
                (unsigned char*)out_store + ((uintptr_t)out_store % 4 == 0 ? shift : shift + 2);
            memcpy(pin, in, sizeof in);
            TEST_STATUS(clsoftmax_softmax_host(test_suite_ctx, &desc, pin, pout),
                        CLSOFTMAX_SUCCESS);
            memcpy(got, pout, sizeof got);
            int32_t worst = 0;
            for (size_t e = 0; e < ROWS * LEN; ++e) {
                const int32_t u = th_ulps16(dtype, got[e], ref[e]);
                worst = u > worst ? u : worst;
            }
            TEST_CHECK(worst <= 1, "%s %s at address offset %zu mod 4: %d ulps",
                       test_suite_backend_name(), dtype_name(dtype), shift, (int)worst);
        }
    }
}

/*
 * The buffer entry point on buffers of total elements holding in at in_off; out (total
 * elements) is copied in, the result at out_off read back over it.
 */
static clsoftmax_status run_buffer_at(const clsoftmax_desc* desc, const uint16_t* in, size_t in_off,
                                      uint16_t* out, size_t out_off, size_t total)
{
    cl_int err = CL_SUCCESS;
    clsoftmax_status st = CLSOFTMAX_OPENCL_ERROR;
    cl_context cl_ctx = clsoftmax_context_cl_context(test_suite_ctx);
    cl_mem bin = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                total * sizeof *in, (void*)in, &err);
    cl_mem bout = NULL;
    if (err == CL_SUCCESS)
        bout = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, total * sizeof *out,
                              out, &err);
    TEST_CHECK(err == CL_SUCCESS, "buffers of %zu elements: error %d", total, (int)err);
    if (err == CL_SUCCESS) {
        cl_event done = NULL;
        st = clsoftmax_softmax_buffer(test_suite_ctx, desc, bin, in_off, bout, out_off, NULL, 0,
                                      NULL, &done);
        if (done != NULL) {
            clWaitForEvents(1, &done);
            clReleaseEvent(done);
        }
        err = clEnqueueReadBuffer(clsoftmax_context_cl_queue(test_suite_ctx), bout, CL_TRUE, 0,
                                  total * sizeof *out, out, 0, NULL, NULL);
        TEST_CHECK(err == CL_SUCCESS, "reading back: error %d", (int)err);
    }
    if (bin != NULL)
        clReleaseMemObject(bin);
    if (bout != NULL)
        clReleaseMemObject(bout);
    return st;
}

/*
 * float16 rows at every element offset 0..9 of their buffers (OpenCL: the buffer entry point's
 * offsets; CPU: host pointers that far into an array), in and out offset differently, through
 * every row strategy at vector widths 8 and 16: the vectors then start on every 2-byte
 * boundary, where PoCL's own vload_half8/vstore_half8_rte fault (common.cl). At most 1 ulp
 * from the reference; the output's neighbours untouched.
 */
static void test_vector_offsets(void)
{
    enum { PAD = 10, ROWS = 3 };
    static const size_t lens[] = {37, 300, 301};
    /* the parameters that force a strategy: {short row limit, rows per group, split row min} */
    static const size_t forcing[][3] = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 2}};
    static const size_t widths[] = {8, 16};
    uint16_t in[ROWS * 301 + PAD], out[ROWS * 301 + PAD];
    long double ref[ROWS * 301];
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; ++w) {
        for (size_t f = 0; f < sizeof forcing / sizeof forcing[0]; ++f) {
            if (is_opencl()) {
                set_param(CLSOFTMAX_PARAM_VECTOR_WIDTH, widths[w]);
                set_param(CLSOFTMAX_PARAM_SHORT_ROW_LIMIT, forcing[f][0]);
                set_param(CLSOFTMAX_PARAM_ROWS_PER_GROUP, forcing[f][1]);
                set_param(CLSOFTMAX_PARAM_SPLIT_ROW_MIN, forcing[f][2]);
            }
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; ++l) {
                const size_t dims[2] = {ROWS, lens[l]};
                const size_t count = ROWS * lens[l];
                for (size_t off = 0; off < PAD; ++off) {
                    const size_t in_off = off, out_off = (off * 3 + 1) % PAD;
                    clsoftmax_desc desc;
                    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT16, 2, dims, -1);
                    desc.op = (clsoftmax_op)(off & 1);
                    for (size_t e = 0; e < count; ++e)
                        th_set(CLSOFTMAX_FLOAT16, in + in_off, e,
                               (double)((e * 7919u) % 1601) / 100.0 - 8.0);
                    memset(out, 0xff, sizeof out);
                    th_reference(&desc, in + in_off, ref);
                    clsoftmax_status st;
                    if (is_opencl())
                        st = run_buffer_at(&desc, in, in_off, out, out_off, count + PAD);
                    else
                        st = clsoftmax_softmax_host(test_suite_ctx, &desc, in + in_off,
                                                    out + out_off);
                    TEST_STATUS(st, CLSOFTMAX_SUCCESS);
                    int32_t worst = 0;
                    for (size_t e = 0; st == CLSOFTMAX_SUCCESS && e < count; ++e) {
                        const int32_t u = th_ulps16(CLSOFTMAX_FLOAT16, out[out_off + e], ref[e]);
                        worst = u > worst ? u : worst;
                    }
                    size_t touched = 0;
                    for (size_t e = 0; e < count + PAD; ++e)
                        touched += (e < out_off || e >= out_off + count) && out[e] != 0xffff;
                    TEST_CHECK(worst <= 1 && touched == 0,
                               "%s f16 width %zu, forcing %zu, %zu x %zu at offsets %zu/%zu: "
                               "%d ulps, %zu elements outside the output written",
                               test_suite_backend_name(), widths[w], f, (size_t)ROWS, lens[l],
                               in_off, out_off, (int)worst, touched);
                }
            }
        }
    }
    if (is_opencl()) {
        set_param(CLSOFTMAX_PARAM_VECTOR_WIDTH, 0);
        set_param(CLSOFTMAX_PARAM_SHORT_ROW_LIMIT, 0);
        set_param(CLSOFTMAX_PARAM_ROWS_PER_GROUP, 0);
        set_param(CLSOFTMAX_PARAM_SPLIT_ROW_MIN, 0);
    }
}

static void add_tests(CU_pSuite suite)
{
    if (suite == NULL)
        return;
    CU_add_test(suite, "every strategy and axis", test_strategies);
    CU_add_test(suite, "scale and ranges", test_scale_and_range);
    CU_add_test(suite, "in place", test_in_place);
    CU_add_test(suite, "subnormal, inf and NaN inputs", test_special_inputs);
    CU_add_test(suite, "prepare", test_prepare);
    CU_add_test(suite, "alignment", test_alignment);
    CU_add_test(suite, "vectors at every element offset", test_vector_offsets);
}

void test_register_forward16(void)
{
    add_tests(CU_add_suite("forward16_cpu", init_cpu, cleanup));
    add_tests(CU_add_suite("forward16_opencl", init_opencl, cleanup));
}
