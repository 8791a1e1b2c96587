/* test_threads.c - suites "threads_cpu", "threads_opencl": one context shared by many threads,
 * and bitwise determinism across runs and CPU thread counts. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_suites.h"
#include "test_util.h"

#define WORKERS 8
#define CALLS_PER_WORKER 500

static clsoftmax_context* g_ctx;

typedef struct worker {
    int id;
    int use_buffers; /* OpenCL: alternate the host and device-buffer entry points */
    unsigned calls;
    unsigned failures;
    char first_failure[512];
} worker;

/* The shapes the workers draw from: short and long rows, 1-D to 4-D. */
static const struct {
    size_t ndim;
    size_t dims[4];
} shapes[] = {
    {1, {7}}, {2, {3, 33}}, {2, {64, 257}}, {3, {2, 5, 9}}, {4, {2, 3, 4, 5}}, {2, {1, 1000}},
};
#define SHAPE_COUNT (sizeof shapes / sizeof shapes[0])

static uint64_t next(uint64_t* s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void fail(worker* w, const char* fmt, const char* what, size_t i, double got, double want)
{
    if (w->failures++ == 0)
        snprintf(w->first_failure, sizeof w->first_failure, fmt, w->id, what, i, got, want);
}

/* Compares without CUnit: its assertions are not thread-safe. */
static void check(worker* w, const clsoftmax_desc* desc, const void* in, const void* out,
                  size_t count, const char* what)
{
    long double* ref = malloc(count * sizeof *ref);
    if (ref == NULL) {
        fail(w, "worker %d %s: out of memory at %zu (%g, %g)", what, 0, 0, 0);
        return;
    }
    test_reference(desc, in, ref);
    const double rtol = desc->dtype == CLSOFTMAX_FLOAT32 ? TEST_RTOL_F32 : TEST_RTOL_F64;
    const double atol = desc->dtype == CLSOFTMAX_FLOAT32 ? TEST_ATOL_F32 : TEST_ATOL_F64;
    for (size_t i = 0; i < count; ++i) {
        double got = test_get(out, desc->dtype, i);
        double want = (double)ref[i];
        if (!(fabs(got - want) <= atol + rtol * fabs(want))) {
            fail(w, "worker %d %s: element %zu is %.9g, expected %.9g", what, i, got, want);
            break;
        }
    }
    free(ref);
}

static void* work(void* arg)
{
    worker* w = arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1);
    cl_command_queue queue = NULL;
    if (w->use_buffers) {
        cl_int err;
        queue = clCreateCommandQueue(clsoftmax_context_cl_context(g_ctx),
                                     clsoftmax_context_cl_device(g_ctx), 0, &err);
        if (err != CL_SUCCESS) {
            fail(w, "worker %d %s: clCreateCommandQueue failed at %zu (%g, %g)", "setup", 0, 0, 0);
            return NULL;
        }
    }
    for (unsigned c = 0; c < CALLS_PER_WORKER; ++c) {
        size_t s = next(&seed) % SHAPE_COUNT;
        int axis =
            (int)(next(&seed) % shapes[s].ndim) - (int)(next(&seed) % 2) * (int)shapes[s].ndim;
        clsoftmax_dtype dtype = next(&seed) % 3 == 0 ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, dtype, shapes[s].ndim, shapes[s].dims, axis);
        desc.op = next(&seed) % 2 ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
        desc.scale = next(&seed) % 4 == 0 ? -0.5 : 1.0;
        const size_t count = test_count(desc.ndim, desc.dims);
        const size_t bytes = count * test_dtype_size(dtype);
        void* in = malloc(bytes);
        void* out = malloc(bytes);
        if (in == NULL || out == NULL) {
            free(in);
            free(out);
            fail(w, "worker %d %s: out of memory at %zu (%g, %g)", "call", c, 0, 0);
            break;
        }
        test_fill(in, dtype, count, -6.0, 6.0, seed);
        const int via_buffers = w->use_buffers && c % 2 == 1;
        clsoftmax_status st;
        if (!via_buffers) {
            st = clsoftmax_softmax_host(g_ctx, &desc, in, out);
        } else {
            cl_int err;
            cl_mem buf = clCreateBuffer(clsoftmax_context_cl_context(g_ctx),
                                        CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, in, &err);
            st = err == CL_SUCCESS
                     ? clsoftmax_softmax_buffer(g_ctx, &desc, buf, 0, buf, 0, queue, 0, NULL, NULL)
                     : CLSOFTMAX_OPENCL_ERROR;
            if (st == CLSOFTMAX_SUCCESS && clEnqueueReadBuffer(queue, buf, CL_TRUE, 0, bytes, out,
                                                               0, NULL, NULL) != CL_SUCCESS)
                st = CLSOFTMAX_OPENCL_ERROR;
            if (buf != NULL)
                clReleaseMemObject(buf);
        }
        if (st != CLSOFTMAX_SUCCESS)
            fail(w, "worker %d %s: call %zu returned status %g (%g)", clsoftmax_status_name(st), c,
                 (double)st, 0);
        else
            check(w, &desc, in, out, count, via_buffers ? "buffer path" : "host path");
        ++w->calls;
        free(in);
        free(out);
    }
    if (queue != NULL)
        clReleaseCommandQueue(queue);
    return NULL;
}

static void run_workers(int use_buffers)
{
    pthread_t threads[WORKERS];
    worker workers[WORKERS];
    int started[WORKERS] = {0};
    for (int i = 0; i < WORKERS; ++i) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].id = i;
        workers[i].use_buffers = use_buffers;
        started[i] = pthread_create(&threads[i], NULL, work, &workers[i]) == 0;
        CU_ASSERT(started[i]);
    }
    for (int i = 0; i < WORKERS; ++i) {
        if (!started[i])
            continue;
        pthread_join(threads[i], NULL);
        CU_ASSERT_EQUAL(workers[i].calls, CALLS_PER_WORKER);
        TEST_CHECK(workers[i].failures == 0, "%u failures; first: %s", workers[i].failures,
                   workers[i].first_failure);
    }
}

static void test_shared_context(void) { run_workers(0); }

static void test_shared_context_buffers(void) { run_workers(1); }

/* The same call twice gives the same bits. */
static void test_repeatable(void)
{
    const size_t dims[3] = {16, 33, 65};
    for (int axis = 0; axis < 3; ++axis) {
        for (int dt = 0; dt < 2; ++dt) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            if (!clsoftmax_context_supports_float64(g_ctx) && dtype == CLSOFTMAX_FLOAT64)
                continue;
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, dtype, 3, dims, axis);
            const size_t bytes = test_count(3, dims) * test_dtype_size(dtype);
            void* in = malloc(bytes);
            void* a = malloc(bytes);
            void* b = malloc(bytes);
            CU_ASSERT_FATAL(in != NULL && a != NULL && b != NULL);
            test_fill(in, dtype, test_count(3, dims), -20.0, 20.0, 7 + (uint64_t)axis);
            TEST_STATUS(clsoftmax_softmax_host(g_ctx, &desc, in, a), CLSOFTMAX_SUCCESS);
            TEST_STATUS(clsoftmax_softmax_host(g_ctx, &desc, in, b), CLSOFTMAX_SUCCESS);
            TEST_CHECK(memcmp(a, b, bytes) == 0, "axis %d dtype %d: two runs differ", axis, dt);
            free(in);
            free(a);
            free(b);
        }
    }
}

/* CPU results do not depend on the number of worker threads. */
static void test_thread_count_independent(void)
{
    static const size_t shape_list[][2] = {{4096, 64}, {3, 100000}, {100000, 3}};
    for (size_t s = 0; s < 3; ++s) {
        for (int axis = 0; axis < 2; ++axis) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, shape_list[s], axis);
            const size_t count = test_count(2, shape_list[s]);
            float* in = malloc(count * sizeof *in);
            float* first = malloc(count * sizeof *first);
            float* other = malloc(count * sizeof *other);
            CU_ASSERT_FATAL(in != NULL && first != NULL && other != NULL);
            test_fill(in, CLSOFTMAX_FLOAT32, count, -10.0, 10.0, 99 + s);
            for (unsigned threads = 1; threads <= 3; ++threads) {
                clsoftmax_config config;
                clsoftmax_config_init(&config);
                config.backend = CLSOFTMAX_BACKEND_CPU;
                config.use_environment = 0;
                config.cpu_threads = threads;
                clsoftmax_context* ctx = NULL;
                TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_SUCCESS);
                if (ctx == NULL)
                    break;
                TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, threads == 1 ? first : other),
                            CLSOFTMAX_SUCCESS);
                if (threads > 1)
                    TEST_CHECK(memcmp(first, other, count * sizeof *first) == 0,
                               "[%zu, %zu] axis %d: %u threads differ from 1", shape_list[s][0],
                               shape_list[s][1], axis, threads);
                clsoftmax_context_free(ctx);
            }
            free(in);
            free(first);
            free(other);
        }
    }
}

static int init_cpu(void)
{
    g_ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    return g_ctx != NULL ? 0 : -1;
}

static int init_opencl(void)
{
    g_ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    return g_ctx != NULL ? 0 : -1;
}

static int clean(void)
{
    clsoftmax_context_free(g_ctx);
    g_ctx = NULL;
    return 0;
}

void test_register_threads(void)
{
    CU_pSuite cpu = CU_add_suite("threads_cpu", init_cpu, clean);
    if (cpu != NULL) {
        CU_add_test(cpu, "8 threads x 500 mixed calls on one context", test_shared_context);
        CU_add_test(cpu, "repeated calls are bitwise equal", test_repeatable);
        CU_add_test(cpu, "results independent of the thread count", test_thread_count_independent);
    }
    CU_pSuite cl = CU_add_suite("threads_opencl", init_opencl, clean);
    if (cl != NULL) {
        CU_add_test(cl, "8 threads x 500 mixed calls on one context, both entry points",
                    test_shared_context_buffers);
        CU_add_test(cl, "repeated calls are bitwise equal", test_repeatable);
    }
}
