/* test_prepare.c - suites "prepare_cpu" and "prepare_opencl": clsoftmax_prepare. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_suites.h"
#include "test_util.h"

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

static int cleanup_ctx(void)
{
    clsoftmax_context_free(g_ctx);
    g_ctx = NULL;
    return 0;
}

/* The same validation as the entry points, with a message, on either backend. */
static void test_validates(void)
{
    const size_t dims[2] = {4, 10};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 1);
    TEST_STATUS(clsoftmax_prepare(NULL, &desc), CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_prepare(g_ctx, NULL), CLSOFTMAX_INVALID_ARGUMENT);

    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 0, NULL, 0);
    TEST_STATUS(clsoftmax_prepare(g_ctx, &desc), CLSOFTMAX_INVALID_SHAPE);
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 2);
    TEST_STATUS(clsoftmax_prepare(g_ctx, &desc), CLSOFTMAX_INVALID_AXIS);
    TEST_CHECK(clsoftmax_context_last_error(g_ctx)[0] != '\0', "no message for a bad axis");
    clsoftmax_desc_init(&desc, (clsoftmax_dtype)7, 2, dims, 1);
    TEST_STATUS(clsoftmax_prepare(g_ctx, &desc), CLSOFTMAX_INVALID_DTYPE);
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 1);
    desc.scale = INFINITY;
    TEST_STATUS(clsoftmax_prepare(g_ctx, &desc), CLSOFTMAX_INVALID_SCALE);
    desc.scale = 1.0;
    desc.struct_size = 3;
    TEST_STATUS(clsoftmax_prepare(g_ctx, &desc), CLSOFTMAX_INVALID_ARGUMENT);

    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 1);
    TEST_STATUS(clsoftmax_prepare(g_ctx, &desc), CLSOFTMAX_SUCCESS);
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_last_error(g_ctx), "");
}

/* Prepares, then runs the host entry point (and the buffer one on OpenCL) on real data. */
static void prepare_then_run(const clsoftmax_desc* desc, const char* what)
{
    size_t count = test_count(desc->ndim, desc->dims);
    size_t es = test_dtype_size(desc->dtype);
    void* in = malloc(count * es);
    void* out = malloc(count * es);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(in != NULL && out != NULL && ref != NULL);
    test_fill(in, desc->dtype, count, -3.0, 3.0, 99);
    test_reference(desc, in, ref);

    clsoftmax_status st = clsoftmax_prepare(g_ctx, desc);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: prepare %s (%s)", what, clsoftmax_status_name(st),
               clsoftmax_context_last_error(g_ctx));
    if (g_ctx->backend == CLSOFTMAX_BACKEND_OPENCL)
        TEST_CHECK(g_ctx->cache.program[desc->dtype] != NULL, "%s: prepare built no program", what);
    TEST_STATUS(clsoftmax_softmax_host(g_ctx, desc, in, out), CLSOFTMAX_SUCCESS);
    TEST_COMPARE_DTYPE(out, desc->dtype, ref, count, what);

    if (g_ctx->backend == CLSOFTMAX_BACKEND_OPENCL) {
        cl_int err = CL_SUCCESS;
        cl_mem buf = clCreateBuffer(clsoftmax_context_cl_context(g_ctx),
                                    CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, count * es, in, &err);
        CU_ASSERT_FATAL(err == CL_SUCCESS);
        TEST_STATUS(clsoftmax_softmax_buffer(g_ctx, desc, buf, 0, buf, 0, NULL, 0, NULL, NULL),
                    CLSOFTMAX_SUCCESS);
        memset(out, 0, count * es);
        clEnqueueReadBuffer(clsoftmax_context_cl_queue(g_ctx), buf, CL_TRUE, 0, count * es, out, 0,
                            NULL, NULL);
        TEST_COMPARE_DTYPE(out, desc->dtype, ref, count, what);
        clReleaseMemObject(buf);
    }
    free(in);
    free(out);
    free(ref);
}

static void test_prepare_then_run(void)
{
    const size_t dims[3] = {6, 50, 7};
    for (int axis = 0; axis < 3; axis++) {
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 3, dims, axis);
        prepare_then_run(&desc, "f32 after prepare");
        if (clsoftmax_context_supports_float64(g_ctx)) {
            clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT64, 3, dims, axis);
            desc.op = CLSOFTMAX_OP_LOG_SOFTMAX;
            prepare_then_run(&desc, "f64 log after prepare");
        }
    }
}

/* With the host path streaming (a small chunk), prepare covers the chunk launch shapes too. */
static void test_prepare_streamed(void)
{
    const size_t dims[2] = {11, 300};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 1);
    g_ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES] =
        (size_t)4 * 300 * 4; /* 4 rows; last chunk 3 */
    prepare_then_run(&desc, "streamed after prepare");
    g_ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES] = 0;
}

/* A shape the host path cannot stream is refused by prepare as by the call. */
static void test_prepare_unsupported(void)
{
    const size_t dims[2] = {1000, 6};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 0);
    const cl_ulong saved = g_ctx->caps.max_mem_alloc_size;
    g_ctx->caps.max_mem_alloc_size = 4096;
    TEST_STATUS(clsoftmax_prepare(g_ctx, &desc), CLSOFTMAX_UNSUPPORTED);
    g_ctx->caps.max_mem_alloc_size = saved;
}

void test_register_prepare(void)
{
    CU_pSuite cpu = CU_add_suite("prepare_cpu", init_cpu, cleanup_ctx);
    CU_add_test(cpu, "validates like the entry points", test_validates);
    CU_add_test(cpu, "prepare, then run", test_prepare_then_run);
    CU_pSuite cl = CU_add_suite("prepare_opencl", init_opencl, cleanup_ctx);
    CU_add_test(cl, "validates like the entry points", test_validates);
    CU_add_test(cl, "prepare, then run", test_prepare_then_run);
    CU_add_test(cl, "prepare for the streamed host path", test_prepare_streamed);
    CU_add_test(cl, "unsupported shape", test_prepare_unsupported);
}
