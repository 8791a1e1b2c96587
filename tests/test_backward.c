/* test_backward.c - suites "backward_cpu" and "backward_opencl": the softmax gradient.
 *
 * One body per test, run on each backend's context (test_suite_ctx). References are computed
 * in long double from the stored (exact) inputs:
 *   softmax      S = sum dy*y,  g = scale * y * (dy - S)
 *   log-softmax  S = sum dy,    g = scale * (dy - exp(y) * S)
 *   ref = alpha * g + beta * dx_old
 * with scale, alpha and beta rounded to float for the dtypes computed in float.
 *
 * Accuracy bound (float32, float64): the error the computation in the compute precision
 * (unit roundoff u: 2^-24 or 2^-53) can make, from the condition of each step:
 *   |dx - ref| <= C * u * B,  B = |alpha*scale| * |y| * (|dy| + |S| + A) + |beta * dx_old|
 *                                 (softmax, A = sum |dy*y|)
 *                              B = |alpha*scale| * (|dy| + exp(y) * (|S| + A)) + |beta*dx_old|
 *                                 (log-softmax, A = sum |dy|)
 * A sum's error is a few u times A (compensated or tree sums, whatever n), dy - S adds u of
 * |dy| + |S|, the products, exp and the blend a few u more: C = BOUND_C covers them all.
 * float16 and bfloat16: within 1 ulp (of the 16-bit type) of the reference rounded to the
 * type; an element where dy and S nearly cancel may instead be within the float bound above
 * plus one 16-bit ulp, since float arithmetic cannot resolve dy - S more finely than u * A.
 * Each check counts such elements; report_measured() prints the worst errors seen.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/half_convert.h"
#include "test_suites.h"
#include "test_util.h"

/* Multiple of u * B allowed (see the header comment); measured worst: see report_measured(). */
#define BOUND_C 8.0
/* Elements past the output that must stay as they were. */
#define GUARD 8

static const clsoftmax_dtype all_dtypes[] = {CLSOFTMAX_FLOAT32, CLSOFTMAX_FLOAT64,
                                             CLSOFTMAX_FLOAT16, CLSOFTMAX_BFLOAT16};
static const char* const dtype_names[] = {"f32", "f64", "f16", "bf16"};

/* The worst error seen per dtype and op: in units of u * B (float32, float64) or 16-bit ulps. */
static double worst[4][2];
static size_t fallback_elems[4][2]; /* 16-bit elements that needed the cancellation clause */

static clsoftmax_context* ctx(void) { return test_suite_ctx; }

static size_t esize(clsoftmax_dtype dtype) { return clsoftmax_dtype_size(dtype); }

static int supported(clsoftmax_dtype dtype)
{
    return dtype != CLSOFTMAX_FLOAT64 || clsoftmax_context_supports_float64(ctx());
}

/* ---- elements of every dtype --------------------------------------------------------------- */

static double get(const void* p, clsoftmax_dtype dtype, size_t i)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        return ((const double*)p)[i];
    case CLSOFTMAX_FLOAT16:
        return clsoftmax__f16_to_f32(((const uint16_t*)p)[i]);
    case CLSOFTMAX_BFLOAT16:
        return clsoftmax__bf16_to_f32(((const uint16_t*)p)[i]);
    default:
        return ((const float*)p)[i];
    }
}

/* v rounded to nearest even in a binary format of `digits` significand bits whose smallest
   subnormal is 2^min_exp and largest finite max; exact, from long double. */
static long double round_to(long double v, int digits, int min_exp, long double max)
{
    if (!isfinite(v) || v == 0)
        return v;
    int e;
    frexpl(v, &e); /* |v| in [2^(e-1), 2^e) */
    int q = e - digits;
    if (q < min_exp)
        q = min_exp;
    const long double r = ldexpl(nearbyintl(ldexpl(v, -q)), q);
    return fabsl(r) > max ? copysignl(INFINITY, r) : r;
}

/* v rounded once to the dtype's storage, exactly. */
static long double round_dtype(long double v, clsoftmax_dtype dtype)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        return (double)v;
    case CLSOFTMAX_FLOAT16:
        return round_to(v, 11, -24, 65504.0L);
    case CLSOFTMAX_BFLOAT16:
        return round_to(v, 8, -133, 0x1.fep127L);
    default:
        return (float)v;
    }
}

/* Stores v, which must already be representable (round_dtype) or is rounded by the cast. */
static void set(void* p, clsoftmax_dtype dtype, size_t i, long double v)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        ((double*)p)[i] = (double)v;
        break;
    case CLSOFTMAX_FLOAT16:
        ((uint16_t*)p)[i] = clsoftmax__f32_to_f16((float)round_dtype(v, dtype));
        break;
    case CLSOFTMAX_BFLOAT16:
        ((uint16_t*)p)[i] = clsoftmax__f32_to_bf16((float)round_dtype(v, dtype));
        break;
    default:
        ((float*)p)[i] = (float)v;
        break;
    }
}

/* Bit patterns of two 16-bit values as a distance in ulps (sign-magnitude to ordered). */
static long ulp_distance16(uint16_t a, uint16_t b)
{
    const long ka = (a & 0x8000u) ? -(long)(a & 0x7fffu) : (long)(a & 0x7fffu);
    const long kb = (b & 0x8000u) ? -(long)(b & 0x7fffu) : (long)(b & 0x7fffu);
    return ka > kb ? ka - kb : kb - ka;
}

static uint64_t rng_next(uint64_t* s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static double rng_uniform(uint64_t* s, double lo, double hi)
{
    return lo + (hi - lo) * ((double)rng_next(s) / 9007199254740992.0);
}

/* ---- the problem ------------------------------------------------------------------------- */

typedef struct problem {
    clsoftmax_desc desc;
    size_t count, outer, n, inner;
    void* y;
    void* dy;
    void* dx_old; /* blended into when beta != 0 */
} problem;

/* y = the forward of random logits (long double, rounded to the dtype), dy and dx_old random. */
static void problem_make(problem* p, clsoftmax_dtype dtype, clsoftmax_op op, size_t ndim,
                         const size_t* dims, int axis, double scale, uint64_t seed)
{
    clsoftmax_desc_init(&p->desc, dtype, ndim, dims, axis);
    p->desc.op = op;
    p->desc.scale = scale;
    p->count = test_count(ndim, dims);
    test_view(ndim, dims, axis, &p->outer, &p->n, &p->inner);
    p->y = malloc(p->count * esize(dtype));
    p->dy = malloc(p->count * esize(dtype));
    p->dx_old = malloc(p->count * esize(dtype));
    long double* t = malloc(p->n * sizeof *t);
    CU_ASSERT_FATAL(p->y != NULL && p->dy != NULL && p->dx_old != NULL && t != NULL);
    uint64_t s = seed * 2654435761u + 1;
    for (size_t o = 0; o < p->outer; o++)
        for (size_t i = 0; i < p->inner; i++) {
            long double m = -INFINITY, sum = 0;
            for (size_t k = 0; k < p->n; k++) {
                t[k] = rng_uniform(&s, -4.0, 4.0);
                m = t[k] > m ? t[k] : m;
            }
            for (size_t k = 0; k < p->n; k++)
                sum += expl(t[k] - m);
            for (size_t k = 0; k < p->n; k++) {
                const size_t at = (o * p->n + k) * p->inner + i;
                const long double v =
                    op == CLSOFTMAX_OP_LOG_SOFTMAX ? (t[k] - m) - logl(sum) : expl(t[k] - m) / sum;
                set(p->y, dtype, at, v);
            }
        }
    for (size_t j = 0; j < p->count; j++) {
        set(p->dy, dtype, j, rng_uniform(&s, -1.0, 1.0));
        set(p->dx_old, dtype, j, rng_uniform(&s, -2.0, 2.0));
    }
    free(t);
}

static void problem_free(problem* p)
{
    free(p->y);
    free(p->dy);
    free(p->dx_old);
}

/* The reference and its error scale B for every element (see the header comment). */
static void reference(const problem* p, const void* dx_old, long double* ref, long double* bound)
{
    const clsoftmax_desc* d = &p->desc;
    const int in_float = d->dtype != CLSOFTMAX_FLOAT64;
    const long double scale = in_float ? (long double)(float)d->scale : (long double)d->scale;
    const long double alpha = in_float ? (long double)(float)d->alpha : (long double)d->alpha;
    const long double beta = in_float ? (long double)(float)d->beta : (long double)d->beta;
    const int log_op = d->op == CLSOFTMAX_OP_LOG_SOFTMAX;
    for (size_t o = 0; o < p->outer; o++)
        for (size_t i = 0; i < p->inner; i++) {
            long double s = 0, a = 0;
            for (size_t k = 0; k < p->n; k++) {
                const size_t at = (o * p->n + k) * p->inner + i;
                const long double yk = get(p->y, d->dtype, at);
                const long double dyk = get(p->dy, d->dtype, at);
                const long double term = log_op ? dyk : dyk * yk;
                s += term;
                a += fabsl(term);
            }
            for (size_t k = 0; k < p->n; k++) {
                const size_t at = (o * p->n + k) * p->inner + i;
                const long double yk = get(p->y, d->dtype, at);
                const long double dyk = get(p->dy, d->dtype, at);
                const long double old = beta != 0 ? get(dx_old, d->dtype, at) : 0;
                const long double g =
                    log_op ? scale * (dyk - expl(yk) * s) : scale * yk * (dyk - s);
                ref[at] = alpha * g + beta * old;
                const long double as = fabsl(alpha * scale);
                bound[at] = (log_op ? as * (fabsl(dyk) + expl(yk) * (fabsl(s) + a))
                                    : as * fabsl(yk) * (fabsl(dyk) + fabsl(s) + a)) +
                            fabsl(beta * old);
            }
        }
}

/*
 * got against the reference under the bound for its dtype; records the worst error. Returns 1
 * when every element passes (one failed assertion names the worst element otherwise).
 */
static int compare(const problem* p, const void* got, const long double* ref,
                   const long double* bound, const char* what, unsigned line)
{
    const clsoftmax_dtype dtype = p->desc.dtype;
    const int di = (int)dtype;
    const int oi = p->desc.op == CLSOFTMAX_OP_LOG_SOFTMAX;
    const long double u = dtype == CLSOFTMAX_FLOAT64 ? 0x1p-53L : 0x1p-24L;
    const int half = dtype == CLSOFTMAX_FLOAT16 || dtype == CLSOFTMAX_BFLOAT16;
    size_t bad = 0, worst_at = 0;
    double worst_here = 0;
    for (size_t j = 0; j < p->count; j++) {
        const long double g = get(got, dtype, j);
        const long double err = fabsl(g - ref[j]);
        int ok;
        double measure;
        if (half) {
            const long double r16 = round_dtype(ref[j], dtype);
            const uint16_t want = dtype == CLSOFTMAX_FLOAT16 ? clsoftmax__f32_to_f16((float)r16)
                                                             : clsoftmax__f32_to_bf16((float)r16);
            const long dist = ulp_distance16(((const uint16_t*)got)[j], want);
            measure = (double)dist;
            ok = dist <= 1;
            if (!ok) {
                /* one 16-bit ulp at ref: the gap above |r16| */
                const long double ulp16 =
                    fabsl(round_to(fabsl(r16) * (1 + 0x1p-7L), dtype == CLSOFTMAX_FLOAT16 ? 11 : 8,
                                   dtype == CLSOFTMAX_FLOAT16 ? -24 : -133, INFINITY) -
                          fabsl(r16));
                ok = err <= BOUND_C * u * bound[j] + ulp16;
                if (ok)
                    fallback_elems[di][oi]++;
            }
        } else {
            measure = bound[j] > 0 ? (double)(err / (u * bound[j])) : (err == 0 ? 0 : INFINITY);
            ok = err <= BOUND_C * u * bound[j];
        }
        if (isnan(g) || isnan(ref[j]))
            ok = isnan(g) && isnan(ref[j]), measure = ok ? 0 : INFINITY;
        if (measure > worst_here || !ok) {
            if (!ok && (bad == 0 || measure > worst_here))
                worst_at = j;
            if (measure > worst_here)
                worst_here = measure;
        }
        bad += !ok;
    }
    if (worst_here > worst[di][oi] && bad == 0)
        worst[di][oi] = worst_here;
    TEST_CHECK_AT(line, bad == 0,
                  "%s: %zu of %zu elements beyond the bound; element %zu: got %.9Lg, want %.9Lg "
                  "(B %.3Lg)",
                  what, bad, p->count, worst_at, (long double)get(got, dtype, worst_at),
                  ref[worst_at], bound[worst_at]);
    return bad == 0;
}

static void describe(char* buf, size_t size, const problem* p, const char* extra)
{
    const clsoftmax_desc* d = &p->desc;
    int len = snprintf(buf, size, "%s %s %s [", test_suite_backend_name(), dtype_names[d->dtype],
                       d->op == CLSOFTMAX_OP_LOG_SOFTMAX ? "log_softmax" : "softmax");
    for (size_t k = 0; k < d->ndim && len > 0 && (size_t)len < size; ++k)
        len += snprintf(buf + len, size - (size_t)len, k ? ",%zu" : "%zu", d->dims[k]);
    if (len > 0 && (size_t)len < size)
        snprintf(buf + len, size - (size_t)len, "] axis %d scale %g alpha %g beta %g%s", d->axis,
                 d->scale, d->alpha, d->beta, extra);
}

typedef enum placement { OUT_OF_PLACE, DX_IS_DY, DX_IS_Y } placement;

/*
 * Runs the host entry point on p (dx in place as asked; with beta == 0 dx starts as NaN
 * garbage) and checks the result, the guard past dx and the last error. Returns 1 on a match.
 */
static int run_host(const problem* p, placement where, unsigned line)
{
    const clsoftmax_dtype dtype = p->desc.dtype;
    const size_t es = esize(dtype);
    const size_t bytes = p->count * es;
    char what[256];
    describe(what, sizeof what, p,
             where == DX_IS_DY ? " dx = dy" : (where == DX_IS_Y ? " dx = y" : ""));
    unsigned char* y = malloc(bytes);
    unsigned char* dy = malloc(bytes);
    unsigned char* dx = malloc(bytes + GUARD * es);
    long double* ref = malloc(p->count * sizeof *ref);
    long double* bound = malloc(p->count * sizeof *bound);
    CU_ASSERT_FATAL(y != NULL && dy != NULL && dx != NULL && ref != NULL && bound != NULL);
    memcpy(y, p->y, bytes);
    memcpy(dy, p->dy, bytes);
    memset(dx + bytes, 0x5a, GUARD * es);
    if (p->desc.beta != 0) {
        memcpy(dx, p->dx_old, bytes);
    } else {
        /* NaN garbage (all-ones bits: a NaN in every dtype) that must not leak into dx */
        memset(dx, 0xff, bytes);
    }
    reference(p, p->dx_old, ref, bound);

    int ok = 0;
    const void* yin = y;
    const void* dyin = dy;
    if (where == DX_IS_DY) {
        memcpy(dx, dy, bytes);
        dyin = dx;
    } else if (where == DX_IS_Y) {
        memcpy(dx, y, bytes);
        yin = dx;
    }
    const clsoftmax_status st = clsoftmax_softmax_backward_host(ctx(), &p->desc, yin, dyin, dx);
    if (!supported(dtype)) {
        TEST_CHECK_AT(line, st == CLSOFTMAX_UNSUPPORTED, "%s: float64 without support gave %s",
                      what, clsoftmax_status_name(st));
    } else {
        TEST_CHECK_AT(line, st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", what, clsoftmax_status_name(st),
                      clsoftmax_context_last_error(ctx()));
        if (st == CLSOFTMAX_SUCCESS) {
            ok = compare(p, dx, ref, bound, what, line);
            const char* err = clsoftmax_context_last_error(ctx());
            TEST_CHECK_AT(line, err != NULL && err[0] == '\0', "%s: last error \"%s\"", what,
                          err ? err : "(null)");
        }
    }
    for (size_t b = 0; b < GUARD * es; b++)
        if (dx[bytes + b] != 0x5a) {
            TEST_CHECK_AT(line, 0, "%s: wrote past the end of dx", what);
            break;
        }
    TEST_CHECK_AT(line, memcmp(y, p->y, bytes) == 0 || where == DX_IS_Y, "%s: y was written", what);
    TEST_CHECK_AT(line, memcmp(dy, p->dy, bytes) == 0 || where == DX_IS_DY, "%s: dy was written",
                  what);
    free(y);
    free(dy);
    free(dx);
    free(ref);
    free(bound);
    return ok;
}

/* ---- shapes, ops, dtypes ------------------------------------------------------------------ */

typedef struct shape {
    size_t ndim;
    size_t dims[3];
    int axis;
} shape;

/*
 * Last, middle and first axes; a long row and many short rows (on PoCL the first runs a
 * work-group per row, the second a work-item per row), a row of one element; slices whose rows
 * whole vectors tile (PoCL: strips of vectors, one partial strip, and a slice of several).
 */
static const shape shapes[] = {
    {2, {5, 37}, -1},    {3, {4, 33, 6}, 1},  {2, {19, 10}, 0}, {2, {3, 5000}, 1},
    {2, {300, 20}, 1},   {3, {2, 7, 130}, 2}, {2, {6, 1}, 1},   {1, {257}, 0},
    {3, {3, 11, 40}, 1}, {2, {9, 272}, 0},
};

static void test_shapes(void)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t d = 0; d < 4; d++)
            for (int op = 0; op < 2; op++) {
                problem p;
                problem_make(&p, all_dtypes[d], (clsoftmax_op)op, shapes[s].ndim, shapes[s].dims,
                             shapes[s].axis, 1.0, 100 * s + 10 * d + (uint64_t)op);
                run_host(&p, OUT_OF_PLACE, __LINE__);
                problem_free(&p);
            }
}

/* scale != 1, alpha, beta (blending into dx's values), and beta 0 with alpha alone. */
static void test_scale_alpha_beta(void)
{
    static const double params[][3] = {
        {0.37, 1.0, 0.0}, {2.5, -1.5, 0.25}, {1.0, 0.5, -1.0}, {-3.0, 1.0, 1.0}};
    for (size_t s = 0; s < 5; s++)
        for (size_t d = 0; d < 4; d++)
            for (int op = 0; op < 2; op++)
                for (size_t q = 0; q < sizeof params / sizeof params[0]; q++) {
                    problem p;
                    problem_make(&p, all_dtypes[d], (clsoftmax_op)op, shapes[s].ndim,
                                 shapes[s].dims, shapes[s].axis, params[q][0],
                                 1000 + 100 * s + 10 * d + 3 * q + (uint64_t)op);
                    p.desc.alpha = params[q][1];
                    p.desc.beta = params[q][2];
                    run_host(&p, OUT_OF_PLACE, __LINE__);
                    problem_free(&p);
                }
}

/* dx identical to dy or to y (beta 0), on each axis. */
static void test_in_place(void)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t d = 0; d < 4; d++)
            for (int op = 0; op < 2; op++)
                for (int w = 1; w <= 2; w++) {
                    problem p;
                    problem_make(&p, all_dtypes[d], (clsoftmax_op)op, shapes[s].ndim,
                                 shapes[s].dims, shapes[s].axis, 1.5,
                                 2000 + 100 * s + 10 * d + 3 * (uint64_t)w + (uint64_t)op);
                    p.desc.alpha = 0.75;
                    run_host(&p, (placement)w, __LINE__);
                    problem_free(&p);
                }
}

/*
 * The group-per-row kernel on contiguous shapes (CLSOFTMAX_PARAM_ROWS_PER_GROUP 1; PoCL
 * otherwise runs many short rows a work-item each), with its contiguous vector shares (a CPU
 * device's default) and then with the scalar loops GPUs run (CLSOFTMAX_PARAM_VECTOR_WIDTH 1:
 * the row kernel's stride of the group size, a work-item per column of a non-last axis). On the
 * CPU backend the parameters change nothing.
 */
static void test_group_kernel(void)
{
    TEST_STATUS(clsoftmax_context_set_param(ctx(), CLSOFTMAX_PARAM_ROWS_PER_GROUP, 1),
                CLSOFTMAX_SUCCESS);
    static const shape rows[] = {{2, {300, 20}, 1},  {2, {5, 37}, -1}, {2, {40, 1000}, 1},
                                 {3, {4, 33, 6}, 1}, {2, {19, 10}, 0}, {3, {3, 11, 40}, 1},
                                 {2, {9, 272}, 0}};
    for (size_t vw = 0; vw < 2; vw++) {
        TEST_STATUS(clsoftmax_context_set_param(ctx(), CLSOFTMAX_PARAM_VECTOR_WIDTH, vw),
                    CLSOFTMAX_SUCCESS);
        for (size_t s = 0; s < sizeof rows / sizeof rows[0]; s++)
            for (size_t d = 0; d < 4; d++)
                for (int op = 0; op < 2; op++) {
                    problem p;
                    problem_make(&p, all_dtypes[d], (clsoftmax_op)op, rows[s].ndim, rows[s].dims,
                                 rows[s].axis, 0.8,
                                 3000 + 1000 * vw + 100 * s + 10 * d + (uint64_t)op);
                    p.desc.beta = s == 1 ? 0.5 : 0.0;
                    run_host(&p, s == 2 ? DX_IS_DY : OUT_OF_PLACE, __LINE__);
                    problem_free(&p);
                }
    }
    TEST_STATUS(clsoftmax_context_set_param(ctx(), CLSOFTMAX_PARAM_VECTOR_WIDTH, 0),
                CLSOFTMAX_SUCCESS);
    TEST_STATUS(clsoftmax_context_set_param(ctx(), CLSOFTMAX_PARAM_ROWS_PER_GROUP, 0),
                CLSOFTMAX_SUCCESS);
}

/* NaN in dy poisons its row (the sum) and nothing else; an inf in y likewise (softmax). */
static void test_nan_rows(void)
{
    for (size_t d = 0; d < 4; d++)
        for (int op = 0; op < 2; op++)
            for (size_t s = 0; s < 5; s++) {
                problem p;
                problem_make(&p, all_dtypes[d], (clsoftmax_op)op, shapes[s].ndim, shapes[s].dims,
                             shapes[s].axis, 1.0, 4000 + 10 * d + (uint64_t)op + 100 * s);
                /* element (o = 0, k = 2, i = 0) */
                const size_t at = 2 * p.inner;
                set(p.dy, p.desc.dtype, at, NAN);
                run_host(&p, OUT_OF_PLACE, __LINE__); /* the reference holds the NaN row too */
                problem_free(&p);
            }
}

/* The buffer entry point: offsets, in place, the event; UNSUPPORTED on the CPU backend. */
static void test_buffer(void)
{
    const size_t dims[] = {6, 50, 3};
    if (clsoftmax_context_backend(ctx()) == CLSOFTMAX_BACKEND_CPU) {
        problem p;
        problem_make(&p, CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 3, dims, 1, 1.0, 5000);
        cl_event ev = (cl_event)(uintptr_t)1;
        TEST_STATUS(clsoftmax_softmax_backward_buffer(ctx(), &p.desc, (cl_mem)(uintptr_t)8, 0,
                                                      (cl_mem)(uintptr_t)8, 0,
                                                      (cl_mem)(uintptr_t)16, 0, NULL, 0, NULL, &ev),
                    CLSOFTMAX_UNSUPPORTED);
        TEST_CHECK(ev == (cl_event)(uintptr_t)1, "event written on UNSUPPORTED");
        problem_free(&p);
        return;
    }
    const cl_context clctx = clsoftmax_context_cl_context(ctx());
    const cl_command_queue queue = clsoftmax_context_cl_queue(ctx());
    for (size_t d = 0; d < 4; d++)
        for (int op = 0; op < 2; op++)
            for (int axis = 0; axis < 3; axis++)
                for (int w = 0; w < 3; w++) {
                    const clsoftmax_dtype dtype = all_dtypes[d];
                    if (!supported(dtype))
                        continue;
                    problem p;
                    problem_make(&p, dtype, (clsoftmax_op)op, 3, dims, axis, 1.25,
                                 6000 + 100 * d + 10 * (uint64_t)axis + 3 * (uint64_t)w +
                                     (uint64_t)op);
                    p.desc.alpha = -0.5;
                    p.desc.beta = w == 0 ? 2.0 : 0.0;
                    const size_t es = esize(dtype), bytes = p.count * es;
                    /* one buffer: y at offset 3, dy at 3 + count + 5, dx at the end (or on one
                       of them, in place) */
                    const size_t y_off = 3, dy_off = y_off + p.count + 5;
                    const size_t dx_off = w == 1 ? dy_off : (w == 2 ? y_off : dy_off + p.count);
                    const size_t total = dy_off + 2 * p.count;
                    cl_int err = CL_SUCCESS;
                    cl_mem buf = clCreateBuffer(clctx, CL_MEM_READ_WRITE, total * es, NULL, &err);
                    CU_ASSERT_FATAL(err == CL_SUCCESS);
                    unsigned char* host = malloc(total * es);
                    long double* ref = malloc(p.count * sizeof *ref);
                    long double* bound = malloc(p.count * sizeof *bound);
                    CU_ASSERT_FATAL(host != NULL && ref != NULL && bound != NULL);
                    memset(host, 0xff, total * es);
                    memcpy(host + y_off * es, p.y, bytes);
                    memcpy(host + dy_off * es, p.dy, bytes);
                    if (w == 0)
                        memcpy(host + dx_off * es, p.dx_old, bytes);
                    reference(&p, p.dx_old, ref, bound);
                    CU_ASSERT_FATAL(clEnqueueWriteBuffer(queue, buf, CL_TRUE, 0, total * es, host,
                                                         0, NULL, NULL) == CL_SUCCESS);
                    cl_event ev = NULL;
                    clsoftmax_status st = clsoftmax_softmax_backward_buffer(
                        ctx(), &p.desc, buf, y_off, buf, dy_off, buf, dx_off, NULL, 0, NULL, &ev);
                    char what[256];
                    describe(what, sizeof what, &p, w == 0 ? " buffer" : " buffer in place");
                    TEST_CHECK(st == CLSOFTMAX_SUCCESS && ev != NULL, "%s: %s (%s)", what,
                               clsoftmax_status_name(st), clsoftmax_context_last_error(ctx()));
                    if (st == CLSOFTMAX_SUCCESS && ev != NULL) {
                        TEST_CHECK(clEnqueueReadBuffer(queue, buf, CL_TRUE, 0, total * es, host, 1,
                                                       &ev, NULL) == CL_SUCCESS,
                                   "%s: read back", what);
                        clReleaseEvent(ev);
                        compare(&p, host + dx_off * es, ref, bound, what, __LINE__);
                        /* the three bytes before y are untouched NaN garbage */
                        for (size_t b = 0; b < y_off * es; b++)
                            if (host[b] != 0xff) {
                                TEST_CHECK(0, "%s: wrote before y", what);
                                break;
                            }
                    }
                    clReleaseMemObject(buf);
                    free(host);
                    free(ref);
                    free(bound);
                    problem_free(&p);
                }
}

/* ---- finite differences of the library's own forward (float64) -------------------------- */

/* L(x) = sum w * forward(x) through clsoftmax_softmax_host in float64. */
static double objective(const clsoftmax_desc* fwd, const double* x, const double* w, double* y,
                        size_t count)
{
    TEST_STATUS(clsoftmax_softmax_host(ctx(), fwd, x, y), CLSOFTMAX_SUCCESS);
    long double l = 0;
    for (size_t j = 0; j < count; j++)
        l += (long double)w[j] * y[j];
    return (double)l;
}

/*
 * The gradient of L = sum w * y(x) is the backward of (y(x), dy = w). Central differences
 * with step h have truncation error h^2/6 * |L'''| (about 1e-10 * scale^3 here) and rounding
 * error about 1e-16 * sum |w y| / h (1e-11 for h = 1e-5): a tolerance of 1e-8 * (1 + |scale|^3)
 * separates them from any real error (a wrong formula is off by O(1)).
 */
static void test_finite_differences(void)
{
    if (!clsoftmax_context_supports_float64(ctx()))
        return;
    static const shape fd_shapes[] = {{2, {3, 6}, 1}, {3, {2, 4, 3}, 1}, {2, {5, 4}, 0}};
    static const double scales[] = {1.0, 1.7};
    for (size_t s = 0; s < 3; s++)
        for (int op = 0; op < 2; op++)
            for (size_t q = 0; q < 2; q++) {
                clsoftmax_desc fwd;
                clsoftmax_desc_init(&fwd, CLSOFTMAX_FLOAT64, fd_shapes[s].ndim, fd_shapes[s].dims,
                                    fd_shapes[s].axis);
                fwd.op = (clsoftmax_op)op;
                fwd.scale = scales[q];
                const size_t count = test_count(fd_shapes[s].ndim, fd_shapes[s].dims);
                double* x = malloc(count * sizeof *x);
                double* w = malloc(count * sizeof *w);
                double* y = malloc(count * sizeof *y);
                double* yh = malloc(count * sizeof *yh);
                double* dx = malloc(count * sizeof *dx);
                CU_ASSERT_FATAL(x && w && y && yh && dx);
                uint64_t seed = 7000 + 10 * s + 2 * q + (uint64_t)op;
                for (size_t j = 0; j < count; j++) {
                    x[j] = rng_uniform(&seed, -2.0, 2.0);
                    w[j] = rng_uniform(&seed, -1.0, 1.0);
                }
                objective(&fwd, x, w, y, count);
                TEST_STATUS(clsoftmax_softmax_backward_host(ctx(), &fwd, y, w, dx),
                            CLSOFTMAX_SUCCESS);
                const double h = 1e-5;
                const double tol = 1e-8 * (1 + fabs(scales[q]) * scales[q] * scales[q]);
                double worst_fd = 0;
                size_t worst_j = 0;
                for (size_t j = 0; j < count; j++) {
                    const double keep = x[j];
                    x[j] = keep + h;
                    const double lp = objective(&fwd, x, w, yh, count);
                    x[j] = keep - h;
                    const double lm = objective(&fwd, x, w, yh, count);
                    x[j] = keep;
                    const double fd = (lp - lm) / (2 * h);
                    if (fabs(fd - dx[j]) > worst_fd || isnan(dx[j])) {
                        worst_fd = isnan(dx[j]) ? INFINITY : fabs(fd - dx[j]);
                        worst_j = j;
                    }
                }
                TEST_CHECK(worst_fd <= tol,
                           "%s %s shape %zu scale %g: the backward is %.3g from the central "
                           "difference at element %zu (tolerance %.3g)",
                           test_suite_backend_name(), op ? "log_softmax" : "softmax", s, scales[q],
                           worst_fd, worst_j, tol);
                free(x);
                free(w);
                free(y);
                free(yh);
                free(dx);
            }
}

/* ---- argument errors: the status, and dx untouched ----------------------------------------- */

static void test_errors(void)
{
    const size_t dims[] = {4, 9};
    problem p;
    problem_make(&p, CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, dims, 1, 1.0, 8000);
    const size_t bytes = p.count * sizeof(float);
    /* y, dy, dx in one block, so that overlaps can be made */
    float* block = malloc(4 * bytes);
    unsigned char* before = malloc(4 * bytes);
    CU_ASSERT_FATAL(block != NULL && before != NULL);
    memcpy(block, p.y, bytes);
    memcpy(block + p.count, p.dy, bytes);
    for (size_t j = 2 * p.count; j < 4 * p.count; j++)
        block[j] = 12345.0f;
    memcpy(before, block, 4 * bytes);
    float* y = block;
    float* dy = block + p.count;
    float* dx = block + 2 * p.count;
    clsoftmax_context* c = ctx();
    clsoftmax_desc d = p.desc;

#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        TEST_STATUS(call, want);                                                                   \
        TEST_CHECK(memcmp(block, before, 4 * bytes) == 0, "%s: memory written", #call);            \
        const char* e_ = clsoftmax_context_last_error(c);                                          \
        TEST_CHECK(e_ != NULL && e_[0] != '\0', "%s: no message", #call);                          \
    } while (0)

    TEST_STATUS(clsoftmax_softmax_backward_host(NULL, &d, y, dy, dx), CLSOFTMAX_INVALID_ARGUMENT);
    EXPECT(clsoftmax_softmax_backward_host(c, NULL, y, dy, dx), CLSOFTMAX_INVALID_ARGUMENT);
    EXPECT(clsoftmax_softmax_backward_host(c, &d, NULL, dy, dx), CLSOFTMAX_INVALID_ARGUMENT);
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, NULL, dx), CLSOFTMAX_INVALID_ARGUMENT);
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, NULL), CLSOFTMAX_INVALID_ARGUMENT);
    d.nonfinite = CLSOFTMAX_NONFINITE_ZERO;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_ARGUMENT);
    d.nonfinite = CLSOFTMAX_NONFINITE_ERROR;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_ARGUMENT);
    d = p.desc;
    clsoftmax_row_report report = {7, 7};
    d.report = &report;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_ARGUMENT);
    TEST_CHECK(report.bad_rows == 7 && report.first_bad_row == 7, "report written");
    d = p.desc;
    d.axis = 2;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_AXIS);
    d = p.desc;
    d.dtype = (clsoftmax_dtype)9;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_DTYPE);
    d = p.desc;
    d.scale = INFINITY;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_SCALE);
    d = p.desc;
    d.beta = NAN;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_ARGUMENT);
    d = p.desc;
    d.dims[0] = 0;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dx), CLSOFTMAX_INVALID_SHAPE);
    /* in place with beta != 0 */
    d = p.desc;
    d.beta = 0.5;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, y), CLSOFTMAX_INVALID_ARGUMENT);
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dy), CLSOFTMAX_INVALID_ARGUMENT);
    /* partial overlaps of dx with either input */
    d = p.desc;
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, y + 1), CLSOFTMAX_OVERLAP);
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y, dy, dy + p.count - 1), CLSOFTMAX_OVERLAP);
    EXPECT(clsoftmax_softmax_backward_host(c, &d, y + 3, dy, block), CLSOFTMAX_OVERLAP);
    /* y and dy may overlap each other: both are only read */
    TEST_STATUS(clsoftmax_softmax_backward_host(c, &d, y, y + 1, dx), CLSOFTMAX_SUCCESS);
#undef EXPECT
    free(block);
    free(before);
    problem_free(&p);
}

/* The buffer entry point's own errors (OpenCL): sizes, overlap, wait list, queue. */
static void test_buffer_errors(void)
{
    const cl_context clctx = clsoftmax_context_cl_context(ctx());
    const cl_command_queue queue = clsoftmax_context_cl_queue(ctx());
    const size_t dims[] = {4, 8};
    clsoftmax_desc d;
    clsoftmax_desc_init(&d, CLSOFTMAX_FLOAT32, 2, dims, 1);
    const size_t count = 32;
    float host[128];
    for (size_t j = 0; j < 128; j++)
        host[j] = 3.0f;
    cl_int err = CL_SUCCESS;
    cl_mem a =
        clCreateBuffer(clctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_event ev = (cl_event)(uintptr_t)1;
    clsoftmax_context* c = ctx();
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, a, 97, NULL, 0, NULL, &ev),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, a, 40, NULL, 0, NULL, &ev),
                CLSOFTMAX_OVERLAP);
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, a, 31, NULL, 0, NULL, &ev),
                CLSOFTMAX_OVERLAP);
    d.beta = 1.0;
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, a, 32, NULL, 0, NULL, &ev),
                CLSOFTMAX_INVALID_ARGUMENT);
    d.beta = 0.0;
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, NULL, 64, NULL, 0, NULL, &ev),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, a, 64, NULL, 1, NULL, &ev),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(
        clsoftmax_softmax_backward_buffer(c, &d, a, SIZE_MAX - 4, a, 32, a, 64, NULL, 0, NULL, &ev),
        CLSOFTMAX_SIZE_OVERFLOW);
    /* a queue of another cl_context */
    cl_device_id dev = clsoftmax_context_cl_device(c);
    cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_command_queue oq = clCreateCommandQueue(other, dev, 0, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, a, 64, oq, 0, NULL, &ev),
                CLSOFTMAX_INVALID_QUEUE);
    TEST_CHECK(ev == (cl_event)(uintptr_t)1, "event written on an error");
    float back[128];
    CU_ASSERT_FATAL(clEnqueueReadBuffer(queue, a, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL) ==
                    CL_SUCCESS);
    TEST_CHECK(memcmp(back, host, sizeof back) == 0, "the buffer was written on an error");
    /* and the same call on valid arguments, waiting for a user event */
    cl_event gate = clCreateUserEvent(clctx, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    ev = NULL;
    TEST_STATUS(clsoftmax_softmax_backward_buffer(c, &d, a, 0, a, 32, a, 64, NULL, 1, &gate, &ev),
                CLSOFTMAX_SUCCESS);
    clSetUserEventStatus(gate, CL_COMPLETE);
    if (ev != NULL) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
    }
    CU_ASSERT_FATAL(clEnqueueReadBuffer(queue, a, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL) ==
                    CL_SUCCESS);
    /* y = 3, dy = 3: S = 3 * 3 * 8 = 72, dx = 3 * (3 - 72) = -207 */
    for (size_t j = 64; j < 64 + count; j++)
        TEST_CHECK(back[j] == -207.0f, "dx[%zu] = %g, want -207", j - 64, (double)back[j]);
    clReleaseEvent(gate);
    clReleaseCommandQueue(oq);
    clReleaseContext(other);
    clReleaseMemObject(a);
}

/*
 * Host pointers not aligned to their element (OpenCL): the host entry point copies through
 * device buffers instead of running on the caller's memory; in place and blending included.
 */
static void test_host_copy_path(void)
{
    const size_t dims[] = {7, 45};
    for (int op = 0; op < 2; op++)
        for (int w = 0; w < 3; w++) {
            problem p;
            problem_make(&p, CLSOFTMAX_FLOAT32, (clsoftmax_op)op, 2, dims, 1, 0.9,
                         9500 + 3 * (uint64_t)w + (uint64_t)op);
            p.desc.beta = w == 0 ? -0.5 : 0.0;
            const size_t bytes = p.count * sizeof(float);
            /* three tensors at odd 2-byte offsets of one block */
            unsigned char* block = malloc(3 * bytes + 8);
            float* got = malloc(bytes);
            long double* ref = malloc(p.count * sizeof *ref);
            long double* bound = malloc(p.count * sizeof *bound);
            CU_ASSERT_FATAL(block != NULL && got != NULL && ref != NULL && bound != NULL);
            unsigned char* y = block + 2;
            unsigned char* dy = y + bytes;
            unsigned char* dx = dy + bytes;
            memcpy(y, p.y, bytes);
            memcpy(dy, p.dy, bytes);
            memcpy(dx, p.dx_old, bytes);
            reference(&p, p.dx_old, ref, bound);
            unsigned char* out = w == 1 ? dy : (w == 2 ? y : dx);
            char what[256];
            describe(what, sizeof what, &p, " unaligned host pointers");
            TEST_STATUS(clsoftmax_softmax_backward_host(ctx(), &p.desc, y, dy, out),
                        CLSOFTMAX_SUCCESS);
            memcpy(got, out, bytes);
            compare(&p, got, ref, bound, what, __LINE__);
            free(block);
            free(got);
            free(ref);
            free(bound);
            problem_free(&p);
        }
}

/* The same bits whatever the thread count (CPU) or from run to run (OpenCL). */
static void test_deterministic(void)
{
    static const shape big[] = {{2, {64, 3000}, 1}, {3, {8, 200, 70}, 1}, {2, {4, 40000}, 1}};
    for (size_t s = 0; s < 3; s++) {
        problem p;
        problem_make(&p, CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, big[s].ndim, big[s].dims,
                     big[s].axis, 1.0, 9000 + s);
        const size_t bytes = p.count * sizeof(float);
        float* first = malloc(bytes);
        float* again = malloc(bytes);
        CU_ASSERT_FATAL(first != NULL && again != NULL);
        const size_t threads[] = {1, 2, 3, 7};
        for (size_t t = 0; t < 4; t++) {
            TEST_STATUS(clsoftmax_context_set_param(ctx(), CLSOFTMAX_PARAM_CPU_THREADS, threads[t]),
                        CLSOFTMAX_SUCCESS);
            TEST_STATUS(
                clsoftmax_softmax_backward_host(ctx(), &p.desc, p.y, p.dy, t == 0 ? first : again),
                CLSOFTMAX_SUCCESS);
            if (t > 0)
                TEST_CHECK(memcmp(first, again, bytes) == 0,
                           "%s shape %zu: %zu threads differ from 1", test_suite_backend_name(), s,
                           threads[t]);
        }
        TEST_STATUS(clsoftmax_context_set_param(ctx(), CLSOFTMAX_PARAM_CPU_THREADS, 0),
                    CLSOFTMAX_SUCCESS);
        free(first);
        free(again);
        problem_free(&p);
    }
}

/* Prints the worst errors seen (for the README's bounds table); asserts nothing. */
static void report_measured(void)
{
    for (int d = 0; d < 4; d++)
        for (int o = 0; o < 2; o++)
            printf("\n  %s %s %-11s worst %.3g %s, %zu elements under the cancellation clause",
                   test_suite_backend_name(), dtype_names[d], o ? "log_softmax" : "softmax",
                   worst[d][o], d >= 2 ? "ulp" : "u*B", fallback_elems[d][o]);
    memset(worst, 0, sizeof worst);
    memset(fallback_elems, 0, sizeof fallback_elems);
}

static void add_common(CU_pSuite s)
{
    if (s == NULL)
        return;
    CU_add_test(s, "every dtype, op and axis", test_shapes);
    CU_add_test(s, "scale, alpha and beta", test_scale_alpha_beta);
    CU_add_test(s, "dx in place on y or dy", test_in_place);
    CU_add_test(s, "a work-group per row", test_group_kernel);
    CU_add_test(s, "NaN rows", test_nan_rows);
    CU_add_test(s, "finite differences of the forward", test_finite_differences);
    CU_add_test(s, "argument errors", test_errors);
    CU_add_test(s, "deterministic", test_deterministic);
    CU_add_test(s, "buffer entry point", test_buffer);
    CU_add_test(s, "measured accuracy (printed)", report_measured);
}

void test_register_backward(void)
{
    add_common(CU_add_suite("backward_cpu", test_suite_init_cpu, test_suite_cleanup));
    CU_pSuite cl = CU_add_suite("backward_opencl", test_suite_init_opencl, test_suite_cleanup);
    add_common(cl);
    if (cl != NULL) {
        CU_add_test(cl, "buffer errors", test_buffer_errors);
        CU_add_test(cl, "host pointers off their alignment", test_host_copy_path);
    }
}
