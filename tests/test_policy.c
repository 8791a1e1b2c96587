/* test_policy.c - suites "policy_cpu" and "policy_opencl": non-finite policies, reports, blending.
 *
 * One body, run on each backend, for every dtype the context computes: each policy (NAN, ZERO,
 * ERROR) on each kind of bad row (NaN, +inf, all -inf, a finite x whose product with scale
 * overflows), with a report, through both entry points (the buffer one on OpenCL only); ERROR
 * leaves out untouched; blending with alpha and beta, beta 0 never reading out, in place with
 * beta != 0 rejected, and a 0.1-size desc giving the same bits as before.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_half_util.h"
#include "test_suites.h"
#include "test_util.h"

static int is_opencl(void)
{
    return clsoftmax_context_backend(test_suite_ctx) == CLSOFTMAX_BACKEND_OPENCL;
}

static const clsoftmax_dtype k_dtypes[4] = {CLSOFTMAX_FLOAT32, CLSOFTMAX_FLOAT64, CLSOFTMAX_FLOAT16,
                                            CLSOFTMAX_BFLOAT16};
static const char* const k_dtype_names[4] = {"f32", "f64", "f16", "bf16"};

static int usable(clsoftmax_dtype dtype)
{
    return dtype != CLSOFTMAX_FLOAT64 || clsoftmax_context_supports_float64(test_suite_ctx);
}

/* got (element e of an array of dtype) against ref: 1 ulp for the 16-bit types, the promised
   tolerances otherwise; NaN and infinities placed exactly. */
static int close_to(clsoftmax_dtype dtype, const void* got, size_t e, long double ref)
{
    if (dtype == CLSOFTMAX_FLOAT16 || dtype == CLSOFTMAX_BFLOAT16)
        return th_ulps16(dtype, ((const uint16_t*)got)[e], ref) <= 1;
    const double g = th_get(dtype, got, e);
    if (isnan(ref) || isnan(g) || isinf(ref) || isinf(g))
        return (isnan(ref) && isnan(g)) || (double)ref == g;
    const double rtol = dtype == CLSOFTMAX_FLOAT32 ? TEST_RTOL_F32 : TEST_RTOL_F64;
    const double atol = dtype == CLSOFTMAX_FLOAT32 ? TEST_ATOL_F32 : TEST_ATOL_F64;
    return fabsl((long double)g - ref) <= atol + rtol * fabsl(ref);
}

/* Which entry point a run uses. */
enum { VIA_HOST = 0, VIA_BUFFER = 1 };

static clsoftmax_status run(const clsoftmax_desc* desc, const void* in, void* out, int via)
{
    return via == VIA_HOST ? clsoftmax_softmax_host(test_suite_ctx, desc, in, out)
                           : th_run_buffer(test_suite_ctx, desc, in, out);
}

static const char* via_name(int via) { return via == VIA_HOST ? "host" : "buffer"; }

/* ---- bad rows ------------------------------------------------------------- */

enum { KIND_NAN, KIND_POS_INF, KIND_ALL_NEG_INF, KIND_OVERFLOW, KIND_COUNT };
static const char* const k_kind_names[KIND_COUNT] = {"NaN", "+inf", "all -inf", "scale overflow"};

/* [outer, n, inner] of the bad-row tensors: rows o * inner + i, 2 x 5 x 3 = 6 rows. */
#define OUTER 2
#define N 5
#define INNER 3
#define COUNT (OUTER * N * INNER)

/*
 * A tensor whose rows 1 (o 0, i 1) and 5 (o 1, i 2) are bad of `kind`, the others finite, and
 * the scale that goes with it: for KIND_OVERFLOW a scale whose product with one finite x of
 * each bad row overflows the compute precision while the good rows' products stay finite.
 */
static double make_bad(clsoftmax_dtype dtype, int kind, void* in)
{
    double scale = 1.0, big = 0.0, unit = 0.25;
    if (kind == KIND_OVERFLOW) {
        switch (dtype) {
        case CLSOFTMAX_FLOAT64:
            scale = 1e300, big = 1e10, unit = 1e-300;
            break;
        case CLSOFTMAX_FLOAT16: /* 65504 is the largest float16: the scale does the rest */
            scale = 1e34, big = 65504.0, unit = ldexp(1.0, -24);
            break;
        default:
            scale = 1e30, big = 1e10, unit = 1e-30;
            break;
        }
    }
    for (size_t o = 0; o < OUTER; ++o) {
        for (size_t k = 0; k < N; ++k) {
            for (size_t i = 0; i < INNER; ++i) {
                const size_t row = o * INNER + i;
                double v =
                    unit * (double)((k * 7 + row * 3) % 11) - (kind == KIND_OVERFLOW ? 0 : 1);
                if (row == 1 || row == 5) {
                    switch (kind) {
                    case KIND_NAN:
                        v = k == 2 ? NAN : v;
                        break;
                    case KIND_POS_INF:
                        v = k == 4 ? INFINITY : v;
                        break;
                    case KIND_ALL_NEG_INF:
                        v = -INFINITY;
                        break;
                    default:
                        v = k == 1 ? big : v;
                        break;
                    }
                }
                th_set(dtype, in, (o * N + k) * INNER + i, v);
            }
        }
    }
    return scale;
}

static int is_bad_element(size_t e)
{
    const size_t o = e / (N * INNER);
    const size_t i = e % INNER;
    const size_t row = o * INNER + i;
    return row == 1 || row == 5;
}

static void check_policy(clsoftmax_dtype dtype, const char* dname, int kind, int via,
                         clsoftmax_nonfinite policy, clsoftmax_op op)
{
    const size_t es = th_size(dtype);
    unsigned char in[COUNT * 8], out[COUNT * 8], sentinel[COUNT * 8];
    long double ref[COUNT];
    const size_t dims[3] = {OUTER, N, INNER};
    clsoftmax_row_report report = {12345, 12345};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, 3, dims, 1);
    desc.scale = make_bad(dtype, kind, in);
    desc.op = op;
    desc.nonfinite = policy;
    desc.report = &report;
    th_reference(&desc, in, ref);
    test_fill_sentinel(sentinel, sizeof sentinel);
    memcpy(out, sentinel, sizeof out);

    const char* pname = policy == CLSOFTMAX_NONFINITE_NAN    ? "NAN"
                        : policy == CLSOFTMAX_NONFINITE_ZERO ? "ZERO"
                                                             : "ERROR";
    char what[160];
    snprintf(what, sizeof what, "%s %s %s rows, policy %s, %s, %s", test_suite_backend_name(),
             dname, k_kind_names[kind], pname, op ? "log-softmax" : "softmax", via_name(via));

    const clsoftmax_status st = run(&desc, in, out, via);
    const clsoftmax_status want =
        policy == CLSOFTMAX_NONFINITE_ERROR ? CLSOFTMAX_NONFINITE_ROW : CLSOFTMAX_SUCCESS;
    TEST_CHECK(st == want, "%s: %s, expected %s (%s)", what, clsoftmax_status_name(st),
               clsoftmax_status_name(want), clsoftmax_context_last_error(test_suite_ctx));
    TEST_CHECK(report.bad_rows == 2 && report.first_bad_row == 1,
               "%s: report {%zu, %zu}, expected {2, 1}", what, report.bad_rows,
               report.first_bad_row);
    if (st == CLSOFTMAX_NONFINITE_ROW) {
        const char* err = clsoftmax_context_last_error(test_suite_ctx);
        TEST_CHECK(test_contains(err, "row 1") && test_contains(err, "2 bad rows"),
                   "%s: the last error \"%s\" names neither row 1 nor the count", what, err);
        TEST_CHECK(memcmp(out, sentinel, COUNT * es) == 0, "%s: out written", what);
        return;
    }
    size_t wrong = 0, first_wrong = 0;
    for (size_t e = 0; e < COUNT; ++e) {
        int ok;
        if (is_bad_element(e) && policy == CLSOFTMAX_NONFINITE_ZERO)
            ok = th_get(dtype, out, e) == 0.0;
        else if (is_bad_element(e))
            ok = isnan(th_get(dtype, out, e));
        else
            ok = close_to(dtype, out, e, ref[e]);
        if (!ok && wrong++ == 0)
            first_wrong = e;
    }
    TEST_CHECK(wrong == 0, "%s: %zu elements wrong, the first [%zu]: %g (reference %Lg)", what,
               wrong, first_wrong, th_get(dtype, out, first_wrong), ref[first_wrong]);
}

static void test_policies(void)
{
    for (int d = 0; d < 4; ++d) {
        if (!usable(k_dtypes[d]))
            continue;
        for (int kind = 0; kind < KIND_COUNT; ++kind)
            for (int via = VIA_HOST; via <= (is_opencl() ? VIA_BUFFER : VIA_HOST); ++via)
                for (int p = 0; p < 3; ++p)
                    for (int op = 0; op < 2; ++op)
                        check_policy(k_dtypes[d], k_dtype_names[d], kind, via,
                                     (clsoftmax_nonfinite)p, (clsoftmax_op)op);
    }
}

/* A clean tensor: the report says none (SIZE_MAX), and ERROR succeeds. */
static void test_no_bad_rows(void)
{
    const size_t dims[2] = {9, 40};
    for (int d = 0; d < 4; ++d) {
        const clsoftmax_dtype dtype = k_dtypes[d];
        if (!usable(dtype))
            continue;
        unsigned char in[9 * 40 * 8], out[9 * 40 * 8];
        for (size_t e = 0; e < 9 * 40; ++e)
            th_set(dtype, in, e, (double)(e % 13) * 0.5 - 3.0);
        for (int via = VIA_HOST; via <= (is_opencl() ? VIA_BUFFER : VIA_HOST); ++via) {
            clsoftmax_row_report report = {7, 7};
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 2, dims, -1);
            desc.nonfinite = CLSOFTMAX_NONFINITE_ERROR;
            desc.report = &report;
            memset(out, 0, sizeof out);
            TEST_STATUS(run(&desc, in, out, via), CLSOFTMAX_SUCCESS);
            TEST_CHECK(report.bad_rows == 0 && report.first_bad_row == SIZE_MAX,
                       "%s %s %s: report {%zu, %zu} on clean data", test_suite_backend_name(),
                       k_dtype_names[d], via_name(via), report.bad_rows, report.first_bad_row);
        }
    }
}

/*
 * Many rows, bad ones scattered, through the streamed host path (small chunks, OpenCL) and
 * the default path: the count and the first row across chunks; ERROR leaves out untouched.
 */
static void test_report_many_rows(void)
{
    enum { ROWS = 3000, LEN = 16 };
    const size_t dims[2] = {ROWS, LEN};
    float* in = malloc(ROWS * LEN * sizeof *in);
    float* out = malloc(ROWS * LEN * sizeof *out);
    CU_ASSERT_FATAL(in != NULL && out != NULL);
    test_fill(in, CLSOFTMAX_FLOAT32, ROWS * LEN, -2.0, 2.0, 4242u);
    size_t bad = 0;
    for (size_t r = 1234; r < ROWS; r += 97, ++bad)
        in[r * LEN + r % LEN] = r % 2 ? NAN : INFINITY;
    for (int streamed = 0; streamed <= is_opencl(); ++streamed) {
        if (is_opencl())
            TEST_STATUS(clsoftmax_context_set_param(test_suite_ctx,
                                                    CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES,
                                                    streamed ? 4096 : 0),
                        CLSOFTMAX_SUCCESS);
        for (int p = 0; p < 3; p += 2) {
            clsoftmax_row_report report = {0, 0};
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
            desc.nonfinite = (clsoftmax_nonfinite)p;
            desc.report = &report;
            memset(out, 0x5a, ROWS * LEN * sizeof *out);
            const clsoftmax_status st = clsoftmax_softmax_host(test_suite_ctx, &desc, in, out);
            TEST_CHECK(st == (p ? CLSOFTMAX_NONFINITE_ROW : CLSOFTMAX_SUCCESS),
                       "%s streamed %d policy %d: %s", test_suite_backend_name(), streamed, p,
                       clsoftmax_status_name(st));
            TEST_CHECK(report.bad_rows == bad && report.first_bad_row == 1234,
                       "%s streamed %d: report {%zu, %zu}, expected {%zu, 1234}",
                       test_suite_backend_name(), streamed, report.bad_rows, report.first_bad_row,
                       bad);
            if (p) {
                size_t changed = 0;
                const unsigned char* bytes = (const unsigned char*)out;
                for (size_t b = 0; b < ROWS * LEN * sizeof *out; ++b)
                    changed += bytes[b] != 0x5a;
                TEST_CHECK(changed == 0, "%s streamed %d: ERROR wrote %zu bytes of out",
                           test_suite_backend_name(), streamed, changed);
            }
        }
    }
    if (is_opencl())
        clsoftmax_context_set_param(test_suite_ctx, CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES, 0);
    free(out);
    free(in);
}

/* ERROR on the buffer entry point: nothing enqueued that writes out, *event untouched. */
static void test_error_buffer_event(void)
{
    if (!is_opencl())
        return;
    const size_t dims[2] = {4, 8};
    float in[32], out[32];
    for (int e = 0; e < 32; ++e) {
        in[e] = (float)e * 0.1f;
        out[e] = -7.0f;
    }
    in[2 * 8 + 3] = NAN;
    cl_context cl_ctx = clsoftmax_context_cl_context(test_suite_ctx);
    cl_command_queue queue = clsoftmax_context_cl_queue(test_suite_ctx);
    cl_int err = CL_SUCCESS;
    cl_mem bin =
        clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof in, in, &err);
    cl_mem bout =
        clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof out, out, &err);
    CU_ASSERT_FATAL(bin != NULL && bout != NULL);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    desc.nonfinite = CLSOFTMAX_NONFINITE_ERROR;
    cl_event event = (cl_event)(uintptr_t)0x1234;
    TEST_STATUS(
        clsoftmax_softmax_buffer(test_suite_ctx, &desc, bin, 0, bout, 0, NULL, 0, NULL, &event),
        CLSOFTMAX_NONFINITE_ROW);
    CU_ASSERT(event == (cl_event)(uintptr_t)0x1234);
    CU_ASSERT(test_contains(clsoftmax_context_last_error(test_suite_ctx), "row 2"));
    float back[32];
    clEnqueueReadBuffer(queue, bout, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL);
    CU_ASSERT(memcmp(back, out, sizeof out) == 0);
    clReleaseMemObject(bin);
    clReleaseMemObject(bout);
}

/* Completes a user event after a pause, from another thread (the main one is blocked). */
static void* complete_later(void* arg)
{
    const struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    clSetUserEventStatus((cl_event)arg, CL_COMPLETE);
    return NULL;
}

/*
 * With a report, the buffer entry point counts after its wait list: the bad row arrives by a
 * write that waits for a user event completed later from another thread; the count sees it.
 */
static void test_report_waits_for_wait_list(void)
{
    if (!is_opencl())
        return;
    enum { ROWS = 6, LEN = 10 };
    const size_t dims[2] = {ROWS, LEN};
    static float clean[ROWS * LEN], dirty[ROWS * LEN];
    for (int e = 0; e < ROWS * LEN; ++e)
        clean[e] = dirty[e] = (float)(e % 7) * 0.5f;
    dirty[4 * LEN + 6] = NAN;
    cl_context cl_ctx = clsoftmax_context_cl_context(test_suite_ctx);
    cl_command_queue queue = clsoftmax_context_cl_queue(test_suite_ctx);
    cl_int err = CL_SUCCESS;
    cl_mem bin =
        clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof clean, clean, &err);
    cl_mem bout = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof clean, NULL, &err);
    cl_event gate = clCreateUserEvent(cl_ctx, &err);
    CU_ASSERT_FATAL(bin != NULL && bout != NULL && gate != NULL);
    cl_event written = NULL;
    CU_ASSERT_FATAL(clEnqueueWriteBuffer(queue, bin, CL_FALSE, 0, sizeof dirty, dirty, 1, &gate,
                                         &written) == CL_SUCCESS);
    pthread_t thread;
    CU_ASSERT_FATAL(pthread_create(&thread, NULL, complete_later, gate) == 0);
    clsoftmax_row_report report = {0, 0};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    desc.report = &report;
    cl_event done = NULL;
    TEST_STATUS(
        clsoftmax_softmax_buffer(test_suite_ctx, &desc, bin, 0, bout, 0, NULL, 1, &written, &done),
        CLSOFTMAX_SUCCESS);
    TEST_CHECK(report.bad_rows == 1 && report.first_bad_row == 4,
               "report {%zu, %zu}: the check did not wait for the wait list", report.bad_rows,
               report.first_bad_row);
    pthread_join(thread, NULL);
    if (done != NULL) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    clReleaseEvent(written);
    clReleaseEvent(gate);
    clReleaseMemObject(bin);
    clReleaseMemObject(bout);
}

/* ---- blending ------------------------------------------------------------- */

static void check_blend(clsoftmax_dtype dtype, const char* dname, int via, clsoftmax_op op,
                        double alpha, double beta, int garbage)
{
    enum { ROWS = 5, LEN = 37 };
    const size_t dims[2] = {ROWS, LEN};
    unsigned char in[ROWS * LEN * 8], out[ROWS * LEN * 8];
    double old[ROWS * LEN];
    long double ref[ROWS * LEN];
    for (size_t e = 0; e < ROWS * LEN; ++e) {
        th_set(dtype, in, e, (double)((e * 7) % 23) * 0.3 - 3.0);
        /* the sign of v, so that alpha * v + beta * old never cancels */
        const double mag = 0.5 + (double)(e % 5) * 0.125;
        th_set(dtype, out, e, op == CLSOFTMAX_OP_LOG_SOFTMAX ? -mag : mag);
        old[e] = th_get(dtype, out, e);
    }
    if (garbage)
        memset(out, 0xff, sizeof out); /* NaN in every dtype */
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, 2, dims, -1);
    desc.op = op;
    desc.alpha = alpha;
    desc.beta = beta;
    th_reference(&desc, in, ref);
    const float af = (float)alpha, bf = (float)beta;
    for (size_t e = 0; e < ROWS * LEN; ++e) {
        const long double a = dtype == CLSOFTMAX_FLOAT64 ? alpha : af;
        const long double b = dtype == CLSOFTMAX_FLOAT64 ? beta : bf;
        ref[e] = a * ref[e] + (beta != 0 ? b * old[e] : 0);
    }
    TEST_STATUS(run(&desc, in, out, via), CLSOFTMAX_SUCCESS);
    size_t wrong = 0, first = 0;
    for (size_t e = 0; e < ROWS * LEN; ++e)
        if (!close_to(dtype, out, e, ref[e]) && wrong++ == 0)
            first = e;
    TEST_CHECK(wrong == 0, "%s %s %s %s alpha %g beta %g%s: %zu wrong, [%zu] %g vs %Lg",
               test_suite_backend_name(), dname, op ? "log-softmax" : "softmax", via_name(via),
               alpha, beta, garbage ? " (NaN in out)" : "", wrong, first, th_get(dtype, out, first),
               ref[first]);
}

static void test_blending(void)
{
    for (int d = 0; d < 4; ++d) {
        if (!usable(k_dtypes[d]))
            continue;
        for (int via = VIA_HOST; via <= (is_opencl() ? VIA_BUFFER : VIA_HOST); ++via) {
            for (int op = 0; op < 2; ++op) {
                check_blend(k_dtypes[d], k_dtype_names[d], via, (clsoftmax_op)op, 0.5, 2.0, 0);
                check_blend(k_dtypes[d], k_dtype_names[d], via, (clsoftmax_op)op, -1.5, 0.25, 0);
                check_blend(k_dtypes[d], k_dtype_names[d], via, (clsoftmax_op)op, 2.0, 0.0, 1);
            }
        }
    }
}

/* ZERO with blending: a bad row is 0 before blending, so it comes out beta * old. */
static void test_zero_blend(void)
{
    const size_t dims[2] = {3, 6};
    for (int d = 0; d < 4; ++d) {
        const clsoftmax_dtype dtype = k_dtypes[d];
        if (!usable(dtype))
            continue;
        unsigned char in[18 * 8], out[18 * 8];
        for (size_t e = 0; e < 18; ++e) {
            th_set(dtype, in, e, e / 6 == 1 ? NAN : (double)e * 0.1);
            th_set(dtype, out, e, 1.0);
        }
        for (int via = VIA_HOST; via <= (is_opencl() ? VIA_BUFFER : VIA_HOST); ++via) {
            unsigned char o[18 * 8];
            memcpy(o, out, sizeof o);
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 2, dims, -1);
            desc.nonfinite = CLSOFTMAX_NONFINITE_ZERO;
            desc.alpha = 3.0;
            desc.beta = 0.5;
            TEST_STATUS(run(&desc, in, o, via), CLSOFTMAX_SUCCESS);
            for (size_t e = 6; e < 12; ++e)
                TEST_CHECK(th_get(dtype, o, e) == 0.5, "%s %s %s: bad row blended to %g, not 0.5",
                           test_suite_backend_name(), k_dtype_names[d], via_name(via),
                           th_get(dtype, o, e));
            TEST_CHECK(fabs(th_get(dtype, o, 0) - (3.0 / 6.0 * 0.0 + 0.5)) > 0.01,
                       "%s %s: a good row was not computed", test_suite_backend_name(),
                       k_dtype_names[d]);
        }
    }
}

/* beta != 0 in place: INVALID_ARGUMENT, nothing written (host: same pointer; buffer: same
   buffer and offset). */
static void test_in_place_beta(void)
{
    const size_t dims[2] = {2, 8};
    float data[16], before[16];
    for (int e = 0; e < 16; ++e)
        data[e] = (float)e;
    memcpy(before, data, sizeof data);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    desc.beta = 1.0;
    TEST_STATUS(clsoftmax_softmax_host(test_suite_ctx, &desc, data, data),
                CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT(memcmp(data, before, sizeof data) == 0);
    CU_ASSERT(test_contains(clsoftmax_context_last_error(test_suite_ctx), "beta"));
    if (!is_opencl())
        return;
    cl_int err = CL_SUCCESS;
    cl_mem buf = clCreateBuffer(clsoftmax_context_cl_context(test_suite_ctx),
                                CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof data, data, &err);
    CU_ASSERT_FATAL(buf != NULL);
    cl_event event = (cl_event)(uintptr_t)0x77;
    TEST_STATUS(
        clsoftmax_softmax_buffer(test_suite_ctx, &desc, buf, 0, buf, 0, NULL, 0, NULL, &event),
        CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT(event == (cl_event)(uintptr_t)0x77);
    float back[16];
    clEnqueueReadBuffer(clsoftmax_context_cl_queue(test_suite_ctx), buf, CL_TRUE, 0, sizeof back,
                        back, 0, NULL, NULL);
    CU_ASSERT(memcmp(back, before, sizeof back) == 0);
    /* beta 0 in place still works */
    desc.beta = 0.0;
    TEST_STATUS(
        clsoftmax_softmax_buffer(test_suite_ctx, &desc, buf, 0, buf, 0, NULL, 0, NULL, NULL),
        CLSOFTMAX_SUCCESS);
    clFinish(clsoftmax_context_cl_queue(test_suite_ctx));
    clReleaseMemObject(buf);
}

/* A 0.1-size desc (ending before alpha) works and gives the bits of alpha 1, beta 0, NAN. */
static void test_old_desc(void)
{
    const size_t dims[3] = {4, 33, 5};
    for (int d = 0; d < 4; ++d) {
        const clsoftmax_dtype dtype = k_dtypes[d];
        if (!usable(dtype))
            continue;
        for (int axis = 0; axis < 3; ++axis) {
            unsigned char in[660 * 8], a[660 * 8], b[660 * 8];
            for (size_t e = 0; e < 660; ++e)
                th_set(dtype, in, e, (double)((e * 13) % 29) * 0.2 - 2.5);
            th_set(dtype, in, 17, NAN); /* a bad row: NaN either way */
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 3, dims, axis);
            memset(a, 0, sizeof a);
            memset(b, 0, sizeof b);
            TEST_STATUS(clsoftmax_softmax_host(test_suite_ctx, &desc, in, a), CLSOFTMAX_SUCCESS);
            desc.struct_size = offsetof(clsoftmax_desc, alpha);
            desc.alpha = 5.0; /* beyond a 0.1 struct: must not be read */
            desc.nonfinite = CLSOFTMAX_NONFINITE_ERROR;
            TEST_STATUS(clsoftmax_softmax_host(test_suite_ctx, &desc, in, b), CLSOFTMAX_SUCCESS);
            TEST_CHECK(memcmp(a, b, 660 * th_size(dtype)) == 0,
                       "%s %s axis %d: a 0.1 desc gave other bits", test_suite_backend_name(),
                       k_dtype_names[d], axis);
        }
    }
}

static void add_tests(CU_pSuite suite)
{
    if (suite == NULL)
        return;
    CU_add_test(suite, "each policy on each kind of bad row", test_policies);
    CU_add_test(suite, "clean data", test_no_bad_rows);
    CU_add_test(suite, "reports over many rows and chunks", test_report_many_rows);
    CU_add_test(suite, "ERROR on the buffer entry point", test_error_buffer_event);
    CU_add_test(suite, "the check waits for the wait list", test_report_waits_for_wait_list);
    CU_add_test(suite, "blending", test_blending);
    CU_add_test(suite, "ZERO with blending", test_zero_blend);
    CU_add_test(suite, "in place with beta rejected", test_in_place_beta);
    CU_add_test(suite, "0.1-size desc", test_old_desc);
}

void test_register_policy(void)
{
    add_tests(CU_add_suite("policy_cpu", test_suite_init_cpu, test_suite_cleanup));
    add_tests(CU_add_suite("policy_opencl", test_suite_init_opencl, test_suite_cleanup));
}
