/* test_soak.c - suites "soak_cpu", "soak_opencl": 100000 small calls and 1000 large ones in one
 * process; resident memory (/proc/self/statm) and the live OpenCL objects and host blocks the
 * fault layer counts must stay flat once warmed up. Results are checked every few hundred
 * calls. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_faults.h"
#define CLSOFTMAX__ALLOC_NO_MACROS
#include "alloc.h"

#include "test_suites.h"
#include "test_util.h"

#define SMALL_CALLS 100000
#define LARGE_CALLS 1000
#define SAMPLES 10 /* per phase; the first is the warm-up, the reference is taken after it */
#define CHECK_EVERY 397
/* Resident growth tolerated after the warm-up: allocator and driver caches settle in steps of
   a few pages; a leak of one small buffer per call would be ~100000 blocks, far beyond it. */
#define RSS_SLACK_BYTES (8u << 20)

/* Resident set size in bytes; 0 where /proc is missing. */
static size_t resident_bytes(void)
{
    FILE* f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int got = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return got == 2 ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

typedef struct counts {
    long live[CLSOFTMAX__LIVE_COUNT];
    long allocs;
} counts;

static void read_counts(counts* c)
{
    for (int k = 0; k < CLSOFTMAX__LIVE_COUNT; ++k)
        c->live[k] = clsoftmax__fault_live((clsoftmax__live_kind)k);
    c->allocs = clsoftmax__fault_alloc_live();
}

typedef struct phase {
    const char* name;
    size_t ndim;
    size_t dims[3];
    int axis;
    unsigned calls;
} phase;

typedef struct soak {
    clsoftmax_context* ctx;
    int use_buffers; /* OpenCL: every other call through the device-buffer entry point */
    cl_mem in_buf, out_buf;
} soak;

static clsoftmax_status one_call(soak* s, const clsoftmax_desc* desc, const void* in, void* out,
                                 size_t bytes, unsigned i)
{
    if (!s->use_buffers || i % 2 == 0)
        return clsoftmax_softmax_host(s->ctx, desc, in, out);
    cl_command_queue q = clsoftmax_context_cl_queue(s->ctx);
    cl_event done = NULL;
    cl_int err = clEnqueueWriteBuffer(q, s->in_buf, CL_FALSE, 0, bytes, in, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return CLSOFTMAX_OPENCL_ERROR;
    clsoftmax_status st =
        clsoftmax_softmax_buffer(s->ctx, desc, s->in_buf, 0, s->out_buf, 0, NULL, 0, NULL, &done);
    if (st != CLSOFTMAX_SUCCESS)
        return st;
    err = clEnqueueReadBuffer(q, s->out_buf, CL_TRUE, 0, bytes, out, 1, &done, NULL);
    clReleaseEvent(done);
    return err == CL_SUCCESS ? CLSOFTMAX_SUCCESS : CLSOFTMAX_OPENCL_ERROR;
}

/* Runs one phase; returns 0 if a call failed (reported). */
static int run_phase(soak* s, const phase* p, const char* backend)
{
    size_t count = test_count(p->ndim, p->dims);
    size_t bytes = count * sizeof(float);
    float* in = malloc(bytes);
    float* out = malloc(bytes);
    long double* ref = malloc(count * sizeof *ref);
    int ok = in != NULL && out != NULL && ref != NULL;
    cl_int err = CL_SUCCESS;
    if (ok && s->use_buffers) {
        cl_context c = clsoftmax_context_cl_context(s->ctx);
        s->in_buf = clCreateBuffer(c, CL_MEM_READ_WRITE, bytes, NULL, &err);
        if (err == CL_SUCCESS)
            s->out_buf = clCreateBuffer(c, CL_MEM_READ_WRITE, bytes, NULL, &err);
        ok = err == CL_SUCCESS;
    }
    TEST_CHECK(ok, "%s %s: setup failed", backend, p->name);

    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, p->ndim, p->dims, p->axis);
    test_fill(in, CLSOFTMAX_FLOAT32, count, -10, 10, 99);
    counts ref_counts;
    memset(&ref_counts, 0, sizeof ref_counts);
    size_t rss_ref = 0, rss_max = 0, rss_first = resident_bytes();
    unsigned interval = p->calls / SAMPLES;
    for (unsigned i = 0; ok && i < p->calls; ++i) {
        desc.op = i % 3 == 0 ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
        clsoftmax_status st = one_call(s, &desc, in, out, bytes, i);
        if (st != CLSOFTMAX_SUCCESS) {
            TEST_CHECK(0, "%s %s: call %u: %s: %s", backend, p->name, i, clsoftmax_status_name(st),
                       clsoftmax_context_last_error(s->ctx));
            ok = 0;
            break;
        }
        if (i % CHECK_EVERY == 0 || i + 1 == p->calls) {
            test_reference(&desc, in, ref);
            if (!TEST_COMPARE_DTYPE(out, CLSOFTMAX_FLOAT32, ref, count, p->name))
                ok = 0;
        }
        if ((i + 1) % interval != 0)
            continue;
        size_t rss = resident_bytes();
        if (i + 1 == interval) {
            /* End of the warm-up: programs built, pools and caches filled. */
            read_counts(&ref_counts);
            rss_ref = rss;
            rss_max = rss;
            continue;
        }
        counts now;
        read_counts(&now);
        for (int k = 0; k < CLSOFTMAX__LIVE_COUNT; ++k)
            TEST_CHECK(now.live[k] == ref_counts.live[k],
                       "%s %s, after %u calls: %ld %s, %ld after "
                       "the warm-up",
                       backend, p->name, i + 1, now.live[k],
                       clsoftmax__fault_live_name((clsoftmax__live_kind)k), ref_counts.live[k]);
        TEST_CHECK(now.allocs == ref_counts.allocs,
                   "%s %s, after %u calls: %ld host blocks outstanding, %ld after the warm-up",
                   backend, p->name, i + 1, now.allocs, ref_counts.allocs);
        if (rss > rss_max)
            rss_max = rss;
    }
    if (ok) {
        TEST_CHECK(rss_max <= rss_ref + RSS_SLACK_BYTES,
                   "%s %s: resident memory grew from %zu to %zu bytes after the warm-up", backend,
                   p->name, rss_ref, rss_max);
        printf("\n    %s %s: %u calls; resident %.1f MiB at start, %.1f MiB after warm-up, "
               "%.1f MiB peak after (%+.2f MiB)",
               backend, p->name, p->calls, rss_first / 1048576.0, rss_ref / 1048576.0,
               rss_max / 1048576.0, ((double)rss_max - (double)rss_ref) / 1048576.0);
    }
    if (s->in_buf != NULL)
        clReleaseMemObject(s->in_buf);
    if (s->out_buf != NULL)
        clReleaseMemObject(s->out_buf);
    s->in_buf = s->out_buf = NULL;
    free(in);
    free(out);
    free(ref);
    return ok;
}

static const phase phases[] = {
    {"small (5 x 33, last axis)", 2, {5, 33, 1}, -1, SMALL_CALLS},
    {"large (64 x 96 x 64, middle axis)", 3, {64, 96, 64}, 1, LARGE_CALLS},
};

static void soak_backend(clsoftmax_backend backend, const char* name)
{
    soak s;
    memset(&s, 0, sizeof s);
    s.ctx = test_context_create(backend);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.ctx);
    s.use_buffers = backend == CLSOFTMAX_BACKEND_OPENCL;
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; ++i)
        if (!run_phase(&s, &phases[i], name))
            break;
    clsoftmax_context_free(s.ctx);
    printf("\n");
}

static void test_soak_cpu(void) { soak_backend(CLSOFTMAX_BACKEND_CPU, "cpu"); }
static void test_soak_opencl(void) { soak_backend(CLSOFTMAX_BACKEND_OPENCL, "opencl"); }

void test_register_soak(void)
{
    CU_pSuite cpu = CU_add_suite("soak_cpu", NULL, NULL);
    CU_add_test(cpu, "100000 small and 1000 large calls: memory and counts flat", test_soak_cpu);
    CU_pSuite ocl = CU_add_suite("soak_opencl", NULL, NULL);
    CU_add_test(ocl, "100000 small and 1000 large calls, both entry points: memory and counts flat",
                test_soak_opencl);
}
