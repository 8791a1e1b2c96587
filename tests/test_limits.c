/* test_limits.c - suites "limits", "limits_opencl": shapes at the edges of size_t and of what a
 * device addresses are refused with a clear status before anything is read, written or
 * enqueued. Nothing of those sizes is ever allocated: the checks must fire first. */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <string.h>

#include "test_suites.h"
#include "test_util.h"

/* A desc of one or two extents over the last axis. */
static clsoftmax_desc make_desc(clsoftmax_dtype dtype, size_t ndim, size_t d0, size_t d1)
{
    const size_t dims[2] = {d0, d1};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, ndim, dims, -1);
    return desc;
}

static void expect_validate(clsoftmax_desc desc, clsoftmax_status want, size_t want_count,
                            const char* what, unsigned line)
{
    size_t count = 0;
    clsoftmax_status st = clsoftmax_desc_validate(&desc, &count);
    TEST_CHECK_AT(line, st == want, "%s: %s, expected %s", what, clsoftmax_status_name(st),
                  clsoftmax_status_name(want));
    if (st == CLSOFTMAX_SUCCESS)
        TEST_CHECK_AT(line, count == want_count, "%s: %zu elements, expected %zu", what, count,
                      want_count);
}

/* Element and byte counts at and just past SIZE_MAX, for both element sizes. */
static void test_validate_edges(void)
{
    const size_t f32_max = SIZE_MAX / sizeof(float);
    const size_t f64_max = SIZE_MAX / sizeof(double);
    expect_validate(make_desc(CLSOFTMAX_FLOAT32, 1, f32_max, 0), CLSOFTMAX_SUCCESS, f32_max,
                    "float32 SIZE_MAX/4 elements", __LINE__);
    expect_validate(make_desc(CLSOFTMAX_FLOAT32, 1, f32_max + 1, 0), CLSOFTMAX_SIZE_OVERFLOW, 0,
                    "float32 SIZE_MAX/4 + 1 elements", __LINE__);
    expect_validate(make_desc(CLSOFTMAX_FLOAT64, 1, f64_max, 0), CLSOFTMAX_SUCCESS, f64_max,
                    "float64 SIZE_MAX/8 elements", __LINE__);
    expect_validate(make_desc(CLSOFTMAX_FLOAT64, 1, f64_max + 1, 0), CLSOFTMAX_SIZE_OVERFLOW, 0,
                    "float64 SIZE_MAX/8 + 1 elements", __LINE__);
    expect_validate(make_desc(CLSOFTMAX_FLOAT32, 1, SIZE_MAX, 0), CLSOFTMAX_SIZE_OVERFLOW, 0,
                    "SIZE_MAX elements", __LINE__);
    /* Products: exactly SIZE_MAX + 1 elements (wraps to 0), and just below the byte limit. */
    size_t half = (size_t)1 << (sizeof(size_t) * 4);
    expect_validate(make_desc(CLSOFTMAX_FLOAT32, 2, half, half), CLSOFTMAX_SIZE_OVERFLOW, 0,
                    "2^(bits/2) x 2^(bits/2)", __LINE__);
    expect_validate(make_desc(CLSOFTMAX_FLOAT32, 2, half / 8, half), CLSOFTMAX_SUCCESS,
                    half / 8 * half, "2^(bits/2)/8 x 2^(bits/2) float32", __LINE__);
    expect_validate(make_desc(CLSOFTMAX_FLOAT64, 2, half / 8, half), CLSOFTMAX_SIZE_OVERFLOW, 0,
                    "2^(bits/2)/8 x 2^(bits/2) float64", __LINE__);
    /* Eight extents whose product wraps to exactly 0 or 1 must not pass. */
    size_t eighth = (size_t)1 << (sizeof(size_t) * 8 / 8);
    size_t dims[8];
    for (int i = 0; i < 8; ++i)
        dims[i] = eighth;
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 8, dims, 3);
    expect_validate(desc, CLSOFTMAX_SIZE_OVERFLOW, 0, "8 x 2^(bits/8)", __LINE__);
    dims[7] = eighth + 1; /* (2^8)^7 * 257 wraps to a non-zero count */
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 8, dims, 0);
    expect_validate(desc, CLSOFTMAX_SIZE_OVERFLOW, 0, "7 x 2^(bits/8) x (2^(bits/8)+1)", __LINE__);
}

/* The host entry point with a descriptor far larger than the buffers behind it. */
static void check_host_refused(clsoftmax_backend backend)
{
    clsoftmax_context* ctx = test_context_create(backend);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    float in[16];
    float out[16];
    unsigned char sentinel[sizeof out];
    test_fill(in, CLSOFTMAX_FLOAT32, 16, -1, 1, 7);
    test_fill_sentinel(sentinel, sizeof sentinel);

    /* in + bytes runs past the end of the address space. */
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 2, 4, SIZE_MAX / 16);
    memcpy(out, sentinel, sizeof out);
    clsoftmax_status st = clsoftmax_softmax_host(ctx, &desc, in, out);
    TEST_CHECK(st == CLSOFTMAX_SIZE_OVERFLOW, "wrapping extent: %s (%s)", clsoftmax_status_name(st),
               clsoftmax_context_last_error(ctx));
    TEST_CHECK(test_contains(clsoftmax_context_last_error(ctx), "address space"), "message: %s",
               clsoftmax_context_last_error(ctx));
    TEST_CHECK(memcmp(out, sentinel, sizeof out) == 0, "out was written");

    /* Two distinct small arrays seen as tensors of 2^40 bytes overlap: refused unread. */
    desc = make_desc(CLSOFTMAX_FLOAT32, 2, 1024, (size_t)1 << 28);
    memcpy(out, sentinel, sizeof out);
    st = clsoftmax_softmax_host(ctx, &desc, in, out);
    TEST_CHECK(st == CLSOFTMAX_OVERLAP, "huge extent, two arrays: %s", clsoftmax_status_name(st));
    TEST_CHECK(memcmp(out, sentinel, sizeof out) == 0, "out was written");

    /* The context still works. */
    desc = make_desc(CLSOFTMAX_FLOAT32, 1, 16, 0);
    long double ref[16];
    test_reference(&desc, in, ref);
    TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
    TEST_COMPARE_DTYPE(out, CLSOFTMAX_FLOAT32, ref, 16, "after the refusals");
    clsoftmax_context_free(ctx);
}

static void test_host_cpu(void) { check_host_refused(CLSOFTMAX_BACKEND_CPU); }

static void test_host_opencl(void)
{
    check_host_refused(CLSOFTMAX_BACKEND_OPENCL);

    /* In place, one slice of 2^40 bytes: beyond CL_DEVICE_MAX_MEM_ALLOC_SIZE, so neither
       zero-copy nor streaming can hold it; refused before a buffer is made or a byte of `data`
       is read. (Tensors of many slices beyond one allocation are streamed.) */
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    float data[16];
    unsigned char sentinel[sizeof data];
    test_fill_sentinel(sentinel, sizeof sentinel);
    memcpy(data, sentinel, sizeof data);
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 2, 2, (size_t)1 << 38);
    clsoftmax_status st = clsoftmax_softmax_host(ctx, &desc, data, data);
    TEST_CHECK(st == CLSOFTMAX_UNSUPPORTED, "2^40-byte slices in place: %s (%s)",
               clsoftmax_status_name(st), clsoftmax_context_last_error(ctx));
    TEST_CHECK(test_contains(clsoftmax_context_last_error(ctx), "MAX_MEM_ALLOC_SIZE"),
               "message: %s", clsoftmax_context_last_error(ctx));
    TEST_CHECK(memcmp(data, sentinel, sizeof data) == 0, "data was written");
    clsoftmax_context_free(ctx);
}

/* The device-buffer entry point: a 64-byte buffer and descriptors or offsets far beyond it. */
static void test_buffer_opencl(void)
{
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    cl_int err = CL_SUCCESS;
    unsigned char sentinel[64];
    test_fill_sentinel(sentinel, sizeof sentinel);
    cl_mem buf =
        clCreateBuffer(clsoftmax_context_cl_context(ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                       sizeof sentinel, sentinel, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    /* A wait list that completes only after the refusals: anything enqueued would then run and
       write the buffer, which is compared with its sentinel at the end. */
    cl_event never = clCreateUserEvent(clsoftmax_context_cl_context(ctx), &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_event event = (cl_event)(uintptr_t)0x5e7e;

    static const struct {
        size_t d0, d1, offset;
        clsoftmax_dtype dtype;
        clsoftmax_status want;
        const char* what;
    } cases[] = {
        {1024, (size_t)1 << 28, 0, CLSOFTMAX_FLOAT32, CLSOFTMAX_BUFFER_TOO_SMALL, "2^40 bytes"},
        {4, SIZE_MAX / 16, 0, CLSOFTMAX_FLOAT32, CLSOFTMAX_BUFFER_TOO_SMALL, "SIZE_MAX/4 elements"},
        {1, 16, SIZE_MAX - 8, CLSOFTMAX_FLOAT32, CLSOFTMAX_SIZE_OVERFLOW, "offset SIZE_MAX - 8"},
        {1, 16, SIZE_MAX / 4, CLSOFTMAX_FLOAT32, CLSOFTMAX_SIZE_OVERFLOW,
         "offset SIZE_MAX/4 bytes"},
        {2, SIZE_MAX / 32, 0, CLSOFTMAX_FLOAT64, CLSOFTMAX_BUFFER_TOO_SMALL,
         "SIZE_MAX/16 float64 elements"},
        {1, 4, 13, CLSOFTMAX_FLOAT32, CLSOFTMAX_BUFFER_TOO_SMALL, "offset 13 + 4 of 16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        clsoftmax_desc desc = make_desc(cases[i].dtype, 2, cases[i].d0, cases[i].d1);
        clsoftmax_status st = clsoftmax_softmax_buffer(ctx, &desc, buf, cases[i].offset, buf,
                                                       cases[i].offset, NULL, 1, &never, &event);
        TEST_CHECK(st == cases[i].want, "%s: %s, expected %s (%s)", cases[i].what,
                   clsoftmax_status_name(st), clsoftmax_status_name(cases[i].want),
                   clsoftmax_context_last_error(ctx));
        TEST_CHECK(event == (cl_event)(uintptr_t)0x5e7e, "%s: *event was written", cases[i].what);
    }
    clSetUserEventStatus(never, CL_COMPLETE);
    clReleaseEvent(never);
    unsigned char back[sizeof sentinel];
    cl_command_queue q = clsoftmax_context_cl_queue(ctx);
    CU_ASSERT(clFinish(q) == CL_SUCCESS);
    CU_ASSERT(clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL) ==
              CL_SUCCESS);
    TEST_CHECK(memcmp(back, sentinel, sizeof back) == 0, "the buffer was written");
    clReleaseMemObject(buf);
    clsoftmax_context_free(ctx);
}

void test_register_limits(void)
{
    CU_pSuite pure = CU_add_suite("limits", NULL, NULL);
    CU_add_test(pure, "element and byte counts at the edge of size_t", test_validate_edges);
    CU_add_test(pure, "CPU host entry point refuses extents beyond its buffers", test_host_cpu);
    CU_pSuite ocl = CU_add_suite("limits_opencl", NULL, NULL);
    CU_add_test(ocl, "OpenCL host entry point refuses what the device cannot address",
                test_host_opencl);
    CU_add_test(ocl, "buffer entry point refuses before enqueueing", test_buffer_opencl);
}
