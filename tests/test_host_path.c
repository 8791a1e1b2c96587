/* test_host_path.c - suite "host_path_opencl": zero-copy and streamed host memory on a device. */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_suites.h"
#include "test_util.h"

/*
 * The stream chunk parameter and the device limits are written straight into the context
 * (internal.h): that reaches the paths without the public setter, and a fake
 * CL_DEVICE_MAX_MEM_ALLOC_SIZE makes "larger than one allocation" testable with small data.
 */
static clsoftmax_context* g_ctx;
static clsoftmax__device_caps g_caps; /* the device's real values, restored after each test */

static int init_host_path(void)
{
    g_ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    if (g_ctx == NULL)
        return 1;
    g_caps = g_ctx->caps;
    return 0;
}

static int cleanup_host_path(void)
{
    clsoftmax_context_free(g_ctx);
    g_ctx = NULL;
    return 0;
}

static void reset_ctx(void)
{
    g_ctx->caps = g_caps;
    g_ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES] = 0;
}

/* Guard elements on each side of the output that must keep their sentinel. */
#define GUARD ((size_t)8)

/*
 * Runs desc through clsoftmax_softmax_host with the input at byte offset in_shift and the
 * output at out_shift inside larger blocks (in place when in_place), and compares with the
 * reference and the guards.
 */
static void check_run(const clsoftmax_desc* desc, int in_place, size_t in_shift, size_t out_shift,
                      const char* what)
{
    size_t count = test_count(desc->ndim, desc->dims);
    size_t es = test_dtype_size(desc->dtype);
    size_t block = (count + 2 * GUARD) * es + 64;
    unsigned char* in_block = malloc(block);
    unsigned char* out_block = malloc(block);
    unsigned char* sentinel = malloc(block);
    long double* ref = malloc(count * sizeof *ref);
    /* Element-aligned copies: the test reads and writes shifted arrays only with memcpy. */
    void* data = malloc(count * es);
    void* got = malloc(count * es);
    CU_ASSERT_FATAL(in_block != NULL && out_block != NULL && sentinel != NULL && ref != NULL &&
                    data != NULL && got != NULL);

    test_fill_sentinel(out_block, block);
    memcpy(sentinel, out_block, block);
    unsigned char* out = out_block + GUARD * es + out_shift;
    unsigned char* in = in_place ? out : in_block + GUARD * es + in_shift;
    test_fill(data, desc->dtype, count, -6.0, 6.0, 0x5eed + count);
    test_reference(desc, data, ref);
    memcpy(in, data, count * es);

    clsoftmax_status st = clsoftmax_softmax_host(g_ctx, desc, in, out);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", what, clsoftmax_status_name(st),
               clsoftmax_context_last_error(g_ctx));
    memcpy(got, out, count * es);
    if (st == CLSOFTMAX_SUCCESS)
        TEST_COMPARE_DTYPE(got, desc->dtype, ref, count, what);
    size_t head = GUARD * es + out_shift;
    size_t tail = head + count * es;
    TEST_CHECK(memcmp(out_block, sentinel, head) == 0 &&
                   memcmp(out_block + tail, sentinel + tail, block - tail) == 0,
               "%s: wrote outside the output", what);
    free(in_block);
    free(out_block);
    free(sentinel);
    free(ref);
    free(data);
    free(got);
}

static void describe(char* buf, size_t size, const clsoftmax_desc* desc, const char* extra)
{
    int len = snprintf(buf, size, "%s %s [", desc->dtype == CLSOFTMAX_FLOAT64 ? "f64" : "f32",
                       desc->op == CLSOFTMAX_OP_LOG_SOFTMAX ? "log" : "softmax");
    for (size_t d = 0; d < desc->ndim && len > 0 && (size_t)len < size; ++d)
        len += snprintf(buf + len, size - (size_t)len, d ? ",%zu" : "%zu", desc->dims[d]);
    if (len > 0 && (size_t)len < size)
        snprintf(buf + len, size - (size_t)len, "] axis %d %s chunk %zu", desc->axis, extra,
                 g_ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES]);
}

/* Every axis of a 3-D tensor, streamed in chunks that end mid-way between slice multiples. */
static void test_streamed_every_axis(void)
{
    const size_t dims[3] = {7, 5, 6};
    for (int dt = 0; dt < 2; dt++) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        if (dtype == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(g_ctx))
            continue;
        size_t es = test_dtype_size(dtype);
        for (int axis = 0; axis < 3; axis++) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 3, dims, axis);
            size_t outer = 1;
            for (int d = 0; d < axis; d++)
                outer *= dims[d];
            size_t slice = (size_t)7 * 5 * 6 / outer * es;
            /* 1 slice per chunk; 2.5 slices (2 whole, then a short last chunk); all at once. */
            const size_t chunks[3] = {slice, slice * 5 / 2, 1 << 20};
            for (int c = 0; c < 3; c++) {
                g_ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES] = chunks[c];
                for (int op = 0; op < 2; op++) {
                    desc.op = op ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
                    char what[160];
                    describe(what, sizeof what, &desc, "copy");
                    check_run(&desc, 0, 0, 0, what);
                    describe(what, sizeof what, &desc, "in place");
                    check_run(&desc, 1, 0, 0, what);
                }
            }
        }
    }
    reset_ctx();
}

/* A chunk smaller than one slice still moves whole slices, one per chunk. */
static void test_streamed_chunk_below_slice(void)
{
    const size_t dims[2] = {9, 1000};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    g_ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES] = 100;
    check_run(&desc, 0, 0, 0, "chunk of 100 bytes, rows of 4000");
    check_run(&desc, 1, 0, 0, "chunk of 100 bytes, rows of 4000, in place");
    reset_ctx();
}

/* The default path on a device sharing host memory wraps the caller's arrays. */
static void test_zero_copy(void)
{
    TEST_CHECK(g_ctx->caps.host_unified_memory || !test_contains(g_ctx->device_name, "pocl"),
               "PoCL reports no host unified memory: the zero-copy path is untested");
    const size_t dims[3] = {33, 17, 3};
    for (int axis = 0; axis < 3; axis++) {
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 3, dims, axis);
        char what[160];
        describe(what, sizeof what, &desc, "zero-copy");
        check_run(&desc, 0, 0, 0, what);
        describe(what, sizeof what, &desc, "zero-copy in place");
        check_run(&desc, 1, 0, 0, what);
    }
    reset_ctx();
}

/*
 * Pointers off the device's base-address alignment (4 bytes past it: still zero-copy) and off
 * the element size (1 byte: the copying path), in every combination, in place too.
 */
static void test_misaligned(void)
{
    const size_t dims[2] = {40, 77};
    const size_t shifts[3] = {0, 4, 1};
    for (int dt = 0; dt < 2; dt++) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        if (dtype == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(g_ctx))
            continue;
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, dtype, 2, dims, 1);
        for (int i = 0; i < 3; i++) {
            for (int o = 0; o < 3; o++) {
                char what[160];
                char extra[64];
                snprintf(extra, sizeof extra, "in +%zu out +%zu", shifts[i], shifts[o]);
                describe(what, sizeof what, &desc, extra);
                check_run(&desc, 0, shifts[i], shifts[o], what);
            }
            char what[160];
            describe(what, sizeof what, &desc, "in place, shifted");
            check_run(&desc, 1, 0, shifts[i], what);
        }
    }
    reset_ctx();
}

/* A tensor above the (faked) largest allocation streams without any chunk parameter. */
static void test_larger_than_allocation(void)
{
    const size_t dims[2] = {50, 64};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 1);
    g_ctx->caps.max_mem_alloc_size = 3 * 64 * 4 + 10; /* 3 rows of 64 floats per buffer */
    check_run(&desc, 0, 0, 0, "12800 bytes through 778-byte allocations");
    check_run(&desc, 1, 0, 0, "12800 bytes through 778-byte allocations, in place");
    reset_ctx();
}

/* A device without shared memory (faked) streams by default: one chunk, or several. */
static void test_discrete_default(void)
{
    const size_t dims[3] = {9, 20, 4};
    g_ctx->caps.host_unified_memory = 0;
    for (int axis = 0; axis < 3; axis++) {
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 3, dims, axis);
        char what[160];
        g_ctx->caps.max_mem_alloc_size = g_caps.max_mem_alloc_size;
        describe(what, sizeof what, &desc, "discrete, one default chunk");
        check_run(&desc, 0, 0, 0, what);
        /* Axis 1: 2 of 9 slices per allocation; axis 2: 40 of 180. 5 chunks, the last short.
           (Axis 0 is one slice of the whole tensor: it cannot be cut.) */
        if (axis == 0)
            continue;
        g_ctx->caps.max_mem_alloc_size = 2 * 20 * 4 * 4 + 4;
        describe(what, sizeof what, &desc, "discrete, allocations of 644 bytes");
        check_run(&desc, 1, 0, 0, what);
    }
    reset_ctx();
}

/* One slice above the largest allocation: UNSUPPORTED, a message that says so, out untouched. */
static void test_slice_too_large(void)
{
    const size_t dims[2] = {1000, 6};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 0); /* one slice of 24000 bytes */
    g_ctx->caps.max_mem_alloc_size = 4096;
    float in[6000], out[6000], before[6000];
    test_fill(in, CLSOFTMAX_FLOAT32, 6000, -1.0, 1.0, 3);
    test_fill_sentinel(out, sizeof out);
    memcpy(before, out, sizeof out);
    TEST_STATUS(clsoftmax_softmax_host(g_ctx, &desc, in, out), CLSOFTMAX_UNSUPPORTED);
    TEST_CHECK(test_contains(clsoftmax_context_last_error(g_ctx), "CL_DEVICE_MAX_MEM_ALLOC_SIZE"),
               "message: %s", clsoftmax_context_last_error(g_ctx));
    CU_ASSERT(memcmp(out, before, sizeof out) == 0);
    /* The last axis of the same data has slices of 24 bytes: fine. */
    desc.axis = 1;
    TEST_STATUS(clsoftmax_softmax_host(g_ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
    reset_ctx();
}

void test_register_host_path(void)
{
    CU_pSuite suite = CU_add_suite("host_path_opencl", init_host_path, cleanup_host_path);
    CU_add_test(suite, "streamed, every axis, odd chunk boundaries", test_streamed_every_axis);
    CU_add_test(suite, "streamed, chunk below one slice", test_streamed_chunk_below_slice);
    CU_add_test(suite, "zero-copy, in place and not", test_zero_copy);
    CU_add_test(suite, "misaligned host pointers", test_misaligned);
    CU_add_test(suite, "larger than one allocation", test_larger_than_allocation);
    CU_add_test(suite, "one slice larger than an allocation", test_slice_too_large);
    CU_add_test(suite, "no shared memory: streamed by default", test_discrete_default);
}
