/* test_faults.c - suites "faults_cpu", "faults_opencl": each public operation with its 1st, 2nd,
 * ... OpenCL call and allocation failed in turn (SQLite's out-of-memory loop), and
 * "fallback_opencl": the CPU fallback policy under injected build and device failures.
 *
 * Swept: context creation, the softmax's host and buffer entry points (float32; float16 and
 * bfloat16 with a row report, the policy ERROR, blending and copies), the backward, the
 * cross-entropy, the classifier head, attention and device enumeration.
 *
 * Linked against the library's internals (clsoftmax_fault_tests). This file's own OpenCL calls
 * go through the same wrappers (cl_faults.h), so the buffers and events it creates are counted
 * with the library's and the totals must come back to where they started.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_faults.h"
#include "cpu/half_convert.h"
/* The control functions only: the test's own allocations are not the library's. */
#define CLSOFTMAX__ALLOC_NO_MACROS
#include "alloc.h"

#include "test_suites.h"
#include "test_util.h"

/* status.c (internal.h is not included: its allocation macros would count the test's own). */
const char* clsoftmax__cl_error_name(cl_int err);

/* The errors injected, in turn: what drivers return when memory, a device or a build fails. */
static const cl_int injected[] = {
    CL_OUT_OF_RESOURCES,      CL_OUT_OF_HOST_MEMORY,    CL_MEM_OBJECT_ALLOCATION_FAILURE,
    CL_BUILD_PROGRAM_FAILURE, CL_INVALID_COMMAND_QUEUE, CL_DEVICE_NOT_AVAILABLE};
#define INJECTED_COUNT (sizeof injected / sizeof injected[0])

/* Fault sites swept by every suite in this process, reported at the end of each sweep. */
static unsigned long total_sites;

/* ---- live objects and allocations ------------------------------------------ */

typedef struct snapshot {
    long live[CLSOFTMAX__LIVE_COUNT];
    long allocs;
} snapshot;

static void snap(snapshot* s)
{
    for (int k = 0; k < CLSOFTMAX__LIVE_COUNT; ++k)
        s->live[k] = clsoftmax__fault_live((clsoftmax__live_kind)k);
    s->allocs = clsoftmax__fault_alloc_live();
}

/* Asserts the counts equal before's; kinds_mask selects the object kinds (bit per kind). */
static int check_counts(const snapshot* before, unsigned kinds_mask, int allocs, const char* what,
                        unsigned line)
{
    snapshot now;
    snap(&now);
    int ok = 1;
    for (int k = 0; k < CLSOFTMAX__LIVE_COUNT; ++k) {
        if ((kinds_mask & (1u << k)) && now.live[k] != before->live[k]) {
            TEST_CHECK_AT(line, 0, "%s: %ld %s live, %ld before", what, now.live[k],
                          clsoftmax__fault_live_name((clsoftmax__live_kind)k), before->live[k]);
            ok = 0;
        }
    }
    if (allocs && now.allocs != before->allocs) {
        TEST_CHECK_AT(line, 0, "%s: %ld host blocks outstanding, %ld before", what, now.allocs,
                      before->allocs);
        ok = 0;
    }
    return ok;
}

#define ALL_KINDS ((1u << CLSOFTMAX__LIVE_COUNT) - 1)
#define MAP_KIND (1u << CLSOFTMAX__LIVE_MAP)
/* Objects an operation makes for itself (the program cache may legitimately keep the rest). */
#define CALL_KINDS                                                                                 \
    ((1u << CLSOFTMAX__LIVE_BUFFER) | (1u << CLSOFTMAX__LIVE_EVENT) | (1u << CLSOFTMAX__LIVE_MAP))

/* ---- the operations swept ----------------------------------------------------- */

#define SENTINEL_EVENT ((cl_event)(uintptr_t)0x5e7e5e7e)

typedef struct fixture fixture;

typedef struct op {
    const char* name;
    clsoftmax_backend backend; /* of the context the operation runs on or creates */
    size_t ndim;
    size_t dims[3];
    int axis;
    int (*setup)(fixture* f);
    clsoftmax_status (*run)(fixture* f);
    /* The text that must name the failed call: NULL where the API has no channel for it. */
    const char* (*message)(fixture* f, clsoftmax_status st);
    /* After a success: the result is right (why says what is not). */
    int (*check_result)(fixture* f, char* why, size_t why_size);
    /* After a failure: nothing the caller owns was written. */
    int (*check_untouched)(fixture* f, char* why, size_t why_size);
    void (*teardown)(fixture* f);
    /* the 0.2 operations: the element type and the WITH_* options below */
    clsoftmax_dtype dtype;
    unsigned flags;
} op;

struct fixture {
    const op* op;
    clsoftmax_context* ctx;
    clsoftmax_desc desc;
    size_t count;
    size_t bytes;
    void* in;
    void* out;
    void* sentinel; /* what out held before the call */
    long double* ref;
    /* the caller's OpenCL objects (borrowed contexts, buffers) */
    cl_platform_id platform;
    cl_device_id device;
    cl_context cl_ctx;
    cl_command_queue queue;
    cl_mem in_buf;
    cl_mem out_buf;
    cl_event user_event;
    cl_event event;
    size_t visited;
    /* the pipeline operations (host/ops.c): up to three inputs beside in, top-k indices */
    clsoftmax_head_desc head;
    clsoftmax_attention_desc att;
    void* ins[3];
    size_t in_bytes[3];
    cl_mem in_bufs[3];
    cl_long* indices;
    cl_long* indices_sentinel;
    cl_long* indices_ref;
    size_t indices_count;
    cl_mem indices_buf;
    /* the 0.2 operations: out's expected bytes, the gradient (the cross-entropy's second
       output), the row report, the cross-entropy's descriptor */
    void* want;
    void* grad;
    void* grad_sentinel;
    void* grad_want;
    size_t grad_count;
    size_t grad_bytes;
    cl_mem grad_buf;
    clsoftmax_row_report report;
    clsoftmax_cross_entropy_desc xent;
    /* the function the fault failed ("allocation" for an allocation), for check_untouched */
    const char* fault_call;
};

static clsoftmax_context* make_context(clsoftmax_backend backend)
{
    return test_context_create(backend);
}

/* Host tensors: input, reference, out filled with a sentinel and a copy of it. */
static int make_tensors(fixture* f)
{
    const op* o = f->op;
    clsoftmax_desc_init(&f->desc, CLSOFTMAX_FLOAT32, o->ndim, o->dims, o->axis);
    f->desc.scale = 0.75;
    f->count = test_count(o->ndim, o->dims);
    f->bytes = f->count * sizeof(float);
    f->in = malloc(f->bytes);
    f->out = malloc(f->bytes);
    f->sentinel = malloc(f->bytes);
    f->ref = malloc(f->count * sizeof *f->ref);
    if (f->in == NULL || f->out == NULL || f->sentinel == NULL || f->ref == NULL)
        return 0;
    test_fill(f->in, CLSOFTMAX_FLOAT32, f->count, -8.0, 8.0, 42 + f->count);
    test_fill_sentinel(f->sentinel, f->bytes);
    memcpy(f->out, f->sentinel, f->bytes);
    test_reference(&f->desc, f->in, f->ref);
    return 1;
}

static void free_tensors(fixture* f)
{
    free(f->in);
    free(f->out);
    free(f->sentinel);
    free(f->ref);
}

/* Compares out with the reference without CUnit's per-call assertion (it reports once). */
static int result_matches(const void* out, const fixture* f, char* why, size_t why_size)
{
    for (size_t i = 0; i < f->count; ++i) {
        double got = test_get(out, CLSOFTMAX_FLOAT32, i);
        double want = (double)f->ref[i];
        double diff = got > want ? got - want : want - got;
        if (!(diff <= TEST_ATOL_F32 + TEST_RTOL_F32 * (want < 0 ? -want : want))) {
            snprintf(why, why_size, "element %zu is %.9g, expected %.9g", i, got, want);
            return 0;
        }
    }
    return 1;
}

/* The first OpenCL device, as a caller embedding the library would pick it. */
static int first_device(fixture* f)
{
    cl_uint n = 0;
    if (clGetPlatformIDs(1, &f->platform, &n) != CL_SUCCESS || n == 0)
        return 0;
    return clGetDeviceIDs(f->platform, CL_DEVICE_TYPE_ALL, 1, &f->device, NULL) == CL_SUCCESS;
}

/* -- context creation -- */

static int setup_create(fixture* f) { return make_tensors(f); }

static clsoftmax_status run_create(fixture* f)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = f->op->backend;
    config.use_environment = 0;
    return clsoftmax_context_create(&config, &f->ctx);
}

static const char* message_create(fixture* f, clsoftmax_status st)
{
    /* A fault absorbed by AUTO's fallback must be named in the reason. */
    if (st == CLSOFTMAX_SUCCESS)
        return f->ctx != NULL && clsoftmax_context_backend(f->ctx) == CLSOFTMAX_BACKEND_CPU &&
                       f->op->backend == CLSOFTMAX_BACKEND_AUTO
                   ? clsoftmax_context_fallback_reason(f->ctx)
                   : NULL;
    return clsoftmax_last_create_error();
}

/* The created context computes the right numbers. */
static int check_created(fixture* f, char* why, size_t why_size)
{
    if (f->ctx == NULL) {
        snprintf(why, why_size, "the context is NULL after SUCCESS");
        return 0;
    }
    memcpy(f->out, f->sentinel, f->bytes);
    clsoftmax_status st = clsoftmax_softmax_host(f->ctx, &f->desc, f->in, f->out);
    if (st != CLSOFTMAX_SUCCESS) {
        snprintf(why, why_size, "softmax on the new context: %s: %s", clsoftmax_status_name(st),
                 clsoftmax_context_last_error(f->ctx));
        return 0;
    }
    return result_matches(f->out, f, why, why_size);
}

static int check_not_created(fixture* f, char* why, size_t why_size)
{
    if (f->ctx != NULL)
        snprintf(why, why_size, "*context is not NULL after a failure");
    return f->ctx == NULL;
}

static void teardown_create(fixture* f)
{
    clsoftmax_context_free(f->ctx);
    f->ctx = NULL;
    free_tensors(f);
}

/* -- borrowed contexts -- */

static int setup_borrowed(fixture* f)
{
    cl_int err = CL_SUCCESS;
    if (!make_tensors(f) || !first_device(f))
        return 0;
    f->cl_ctx = clCreateContext(NULL, 1, &f->device, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return 0;
    /* AUTO here means "the caller's queue"; OPENCL means "let the library make one". */
    if (f->op->backend == CLSOFTMAX_BACKEND_AUTO)
        f->queue = clCreateCommandQueue(f->cl_ctx, f->device, 0, &err);
    return err == CL_SUCCESS;
}

static clsoftmax_status run_borrowed(fixture* f)
{
    return clsoftmax_context_create_borrowed(f->cl_ctx, f->device, f->queue, &f->ctx);
}

static const char* message_borrowed(fixture* f, clsoftmax_status st)
{
    (void)f;
    return st == CLSOFTMAX_SUCCESS ? NULL : clsoftmax_last_create_error();
}

static void teardown_borrowed(fixture* f)
{
    clsoftmax_context_free(f->ctx);
    f->ctx = NULL;
    if (f->queue != NULL)
        clReleaseCommandQueue(f->queue);
    if (f->cl_ctx != NULL)
        clReleaseContext(f->cl_ctx);
    free_tensors(f);
}

/* -- the host entry point -- */

static int setup_host(fixture* f)
{
    f->ctx = make_context(f->op->backend);
    return f->ctx != NULL && make_tensors(f);
}

static clsoftmax_status run_host(fixture* f)
{
    return clsoftmax_softmax_host(f->ctx, &f->desc, f->in, f->out);
}

static const char* message_context(fixture* f, clsoftmax_status st)
{
    return st == CLSOFTMAX_SUCCESS ? NULL : clsoftmax_context_last_error(f->ctx);
}

static int check_host(fixture* f, char* why, size_t why_size)
{
    return result_matches(f->out, f, why, why_size);
}

static int check_host_untouched(fixture* f, char* why, size_t why_size)
{
    if (memcmp(f->out, f->sentinel, f->bytes) == 0)
        return 1;
    snprintf(why, why_size, "out was written");
    return 0;
}

static void teardown_host(fixture* f)
{
    clsoftmax_context_free(f->ctx);
    f->ctx = NULL;
    free_tensors(f);
}

/* -- the device-buffer entry point, with a wait list and an output event -- */

static int setup_buffer(fixture* f)
{
    cl_int err = CL_SUCCESS;
    if (!setup_host(f))
        return 0;
    cl_context c = clsoftmax_context_cl_context(f->ctx);
    f->in_buf = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, f->bytes, f->in, &err);
    if (err != CL_SUCCESS)
        return 0;
    f->out_buf =
        clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, f->bytes, f->sentinel, &err);
    if (err != CL_SUCCESS)
        return 0;
    f->user_event = clCreateUserEvent(c, &err);
    if (err != CL_SUCCESS)
        return 0;
    f->event = SENTINEL_EVENT;
    return clSetUserEventStatus(f->user_event, CL_COMPLETE) == CL_SUCCESS;
}

static clsoftmax_status run_buffer(fixture* f)
{
    return clsoftmax_softmax_buffer(f->ctx, &f->desc, f->in_buf, 0, f->out_buf, 0, NULL, 1,
                                    &f->user_event, &f->event);
}

static int read_out_buffer(fixture* f, char* why, size_t why_size)
{
    cl_command_queue q = clsoftmax_context_cl_queue(f->ctx);
    cl_int err = clFinish(q);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(q, f->out_buf, CL_TRUE, 0, f->bytes, f->out, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        snprintf(why, why_size, "reading the output buffer failed (%d)", (int)err);
    return err == CL_SUCCESS;
}

/* After a buffer call's SUCCESS: its event exists and completes; released either way. */
static int wait_event(fixture* f, char* why, size_t why_size)
{
    if (f->event == SENTINEL_EVENT || f->event == NULL) {
        snprintf(why, why_size, "no event after SUCCESS");
        return 0;
    }
    cl_int err = clWaitForEvents(1, &f->event);
    clReleaseEvent(f->event);
    f->event = SENTINEL_EVENT;
    if (err != CL_SUCCESS) {
        snprintf(why, why_size, "waiting for the event failed (%d)", (int)err);
        return 0;
    }
    return 1;
}

static int check_buffer(fixture* f, char* why, size_t why_size)
{
    return wait_event(f, why, why_size) && read_out_buffer(f, why, why_size) &&
           result_matches(f->out, f, why, why_size);
}

static int check_buffer_untouched(fixture* f, char* why, size_t why_size)
{
    if (f->event != SENTINEL_EVENT) {
        snprintf(why, why_size, "*event was written");
        return 0;
    }
    if (!read_out_buffer(f, why, why_size))
        return 0;
    return check_host_untouched(f, why, why_size);
}

static void teardown_buffer(fixture* f)
{
    if (f->in_buf != NULL)
        clReleaseMemObject(f->in_buf);
    if (f->out_buf != NULL)
        clReleaseMemObject(f->out_buf);
    if (f->user_event != NULL)
        clReleaseEvent(f->user_event);
    teardown_host(f);
}

/* -- the pipeline operations: classifier head and attention (host/ops.c) --
 * CLBlast's own OpenCL calls do not go through the injector (it is a separate library linked
 * as is), so only the library's calls around the products are failed here. */

#define HEAD_ROWS 3
#define HEAD_IN 5
#define HEAD_CLASSES 4
#define HEAD_TOPK 2

static float* filled(size_t n, uint64_t seed)
{
    float* p = malloc(n * sizeof *p);
    if (p != NULL)
        test_fill(p, CLSOFTMAX_FLOAT32, n, -2.0, 2.0, seed);
    return p;
}

/* out (and indices) filled with sentinels and copies of them; the references allocated. */
static int make_outputs(fixture* f, size_t count, size_t indices_count)
{
    f->count = count;
    f->bytes = count * sizeof(float);
    f->out = malloc(f->bytes);
    f->sentinel = malloc(f->bytes);
    f->ref = malloc(count * sizeof *f->ref);
    if (f->out == NULL || f->sentinel == NULL || f->ref == NULL)
        return 0;
    test_fill_sentinel(f->sentinel, f->bytes);
    memcpy(f->out, f->sentinel, f->bytes);
    f->indices_count = indices_count;
    if (indices_count == 0)
        return 1;
    size_t ib = indices_count * sizeof(cl_long);
    f->indices = malloc(ib);
    f->indices_sentinel = malloc(ib);
    f->indices_ref = malloc(ib);
    if (f->indices == NULL || f->indices_sentinel == NULL || f->indices_ref == NULL)
        return 0;
    test_fill_sentinel(f->indices_sentinel, ib);
    memcpy(f->indices, f->indices_sentinel, ib);
    return 1;
}

static void free_pipeline(fixture* f)
{
    for (int i = 0; i < 3; ++i)
        free(f->ins[i]);
    free(f->indices);
    free(f->indices_sentinel);
    free(f->indices_ref);
    free(f->out);
    free(f->sentinel);
    free(f->ref);
}

/* Y = softmax(0.75 * (X . W^T + b)) in long double, then each row's top 2 (no ties here). */
static void head_reference(fixture* f)
{
    const float* x = f->ins[0];
    const float* w = f->ins[1];
    const float* b = f->ins[2];
    for (size_t r = 0; r < HEAD_ROWS; ++r) {
        long double p[HEAD_CLASSES], m = -1e30L, sum = 0;
        for (size_t c = 0; c < HEAD_CLASSES; ++c) {
            long double l = 0;
            for (size_t i = 0; i < HEAD_IN; ++i)
                l += (long double)x[r * HEAD_IN + i] * w[c * HEAD_IN + i];
            p[c] = 0.75L * (l + b[c]);
            m = p[c] > m ? p[c] : m;
        }
        for (size_t c = 0; c < HEAD_CLASSES; ++c)
            sum += p[c] = expl(p[c] - m);
        int taken[HEAD_CLASSES] = {0};
        for (size_t k = 0; k < HEAD_TOPK; ++k) {
            size_t best = HEAD_CLASSES;
            for (size_t c = 0; c < HEAD_CLASSES; ++c)
                if (!taken[c] && (best == HEAD_CLASSES || p[c] > p[best]))
                    best = c;
            taken[best] = 1;
            f->ref[r * HEAD_TOPK + k] = p[best] / sum;
            f->indices_ref[r * HEAD_TOPK + k] = (cl_long)best;
        }
    }
}

static int setup_head(fixture* f)
{
    f->ctx = make_context(f->op->backend);
    clsoftmax_head_desc_init(&f->head, CLSOFTMAX_FLOAT32, HEAD_ROWS, HEAD_IN, HEAD_CLASSES);
    f->head.scale = 0.75;
    f->head.topk = HEAD_TOPK;
    f->in_bytes[0] = HEAD_ROWS * HEAD_IN * sizeof(float);
    f->in_bytes[1] = HEAD_CLASSES * HEAD_IN * sizeof(float);
    f->in_bytes[2] = HEAD_CLASSES * sizeof(float);
    for (int i = 0; i < 3; ++i)
        f->ins[i] = filled(f->in_bytes[i] / sizeof(float), 7 + (uint64_t)i);
    if (f->ctx == NULL || f->ins[0] == NULL || f->ins[1] == NULL || f->ins[2] == NULL ||
        !make_outputs(f, HEAD_ROWS * HEAD_TOPK, HEAD_ROWS * HEAD_TOPK))
        return 0;
    head_reference(f);
    return 1;
}

static clsoftmax_status run_head_host(fixture* f)
{
    return clsoftmax_linear_softmax_host(f->ctx, &f->head, f->ins[0], f->ins[1], f->ins[2], f->out,
                                         f->indices);
}

/* Attention: batch 1, heads 2, seq 3, d 4, causal, into out. */
#define ATT_HEADS 2
#define ATT_SEQ 3
#define ATT_D 4
#define ATT_COUNT (ATT_HEADS * ATT_SEQ * ATT_D)

static void attention_reference(fixture* f)
{
    const float* q = f->ins[0];
    const float* k = f->ins[1];
    const float* v = f->ins[2];
    const long double scale = (long double)(float)f->att.scale;
    for (size_t h = 0; h < ATT_HEADS; ++h) {
        size_t base = h * ATT_SEQ * ATT_D;
        for (size_t i = 0; i < ATT_SEQ; ++i) {
            long double s[ATT_SEQ], m = -1e30L, sum = 0;
            for (size_t j = 0; j <= i; ++j) {
                long double dot = 0;
                for (size_t e = 0; e < ATT_D; ++e)
                    dot += (long double)q[base + i * ATT_D + e] * k[base + j * ATT_D + e];
                s[j] = scale * dot;
                m = s[j] > m ? s[j] : m;
            }
            for (size_t j = 0; j <= i; ++j)
                sum += s[j] = expl(s[j] - m);
            for (size_t e = 0; e < ATT_D; ++e) {
                long double o = 0;
                for (size_t j = 0; j <= i; ++j)
                    o += s[j] / sum * v[base + j * ATT_D + e];
                f->ref[base + i * ATT_D + e] = o;
            }
        }
    }
}

static int setup_attention(fixture* f)
{
    f->ctx = make_context(f->op->backend);
    clsoftmax_attention_desc_init(&f->att, CLSOFTMAX_FLOAT32, 1, ATT_HEADS, ATT_SEQ, ATT_SEQ, ATT_D,
                                  ATT_D);
    f->att.causal = 1;
    for (int i = 0; i < 3; ++i) {
        f->in_bytes[i] = ATT_COUNT * sizeof(float);
        f->ins[i] = filled(ATT_COUNT, 11 + (uint64_t)i);
    }
    if (f->ctx == NULL || f->ins[0] == NULL || f->ins[1] == NULL || f->ins[2] == NULL ||
        !make_outputs(f, ATT_COUNT, 0))
        return 0;
    attention_reference(f);
    return 1;
}

static clsoftmax_status run_attention_host(fixture* f)
{
    return clsoftmax_attention_host(f->ctx, &f->att, f->ins[0], f->ins[1], f->ins[2], NULL, f->out);
}

static int check_pipeline(fixture* f, char* why, size_t why_size)
{
    if (!result_matches(f->out, f, why, why_size))
        return 0;
    for (size_t i = 0; i < f->indices_count; ++i) {
        if (f->indices[i] != f->indices_ref[i]) {
            snprintf(why, why_size, "index %zu is %lld, expected %lld", i, (long long)f->indices[i],
                     (long long)f->indices_ref[i]);
            return 0;
        }
    }
    return 1;
}

static int check_pipeline_untouched(fixture* f, char* why, size_t why_size)
{
    if (!check_host_untouched(f, why, why_size))
        return 0;
    if (f->indices_count > 0 &&
        memcmp(f->indices, f->indices_sentinel, f->indices_count * sizeof(cl_long)) != 0) {
        snprintf(why, why_size, "indices was written");
        return 0;
    }
    return 1;
}

static void teardown_pipeline(fixture* f)
{
    clsoftmax_context_free(f->ctx);
    f->ctx = NULL;
    free_pipeline(f);
}

/* The buffer entry points: inputs uploaded, outputs holding the sentinels, a wait list and an
   output event. The head passes the context's queue as the caller's (its queries are swept);
   attention runs on the context's queue (NULL) with the context's workspace. */
static int setup_pipeline_buffers(fixture* f)
{
    cl_int err = CL_SUCCESS;
    cl_context c = clsoftmax_context_cl_context(f->ctx);
    for (int i = 0; i < 3 && err == CL_SUCCESS; ++i)
        f->in_bufs[i] = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, f->in_bytes[i],
                                       f->ins[i], &err);
    if (err == CL_SUCCESS)
        f->out_buf = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, f->bytes,
                                    f->sentinel, &err);
    if (err == CL_SUCCESS && f->indices_count > 0)
        f->indices_buf =
            clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                           f->indices_count * sizeof(cl_long), f->indices_sentinel, &err);
    if (err == CL_SUCCESS)
        f->user_event = clCreateUserEvent(c, &err);
    f->event = SENTINEL_EVENT;
    return err == CL_SUCCESS && clSetUserEventStatus(f->user_event, CL_COMPLETE) == CL_SUCCESS;
}

static int setup_head_buffer(fixture* f) { return setup_head(f) && setup_pipeline_buffers(f); }

static int setup_attention_buffer(fixture* f)
{
    return setup_attention(f) && setup_pipeline_buffers(f);
}

static clsoftmax_status run_head_buffer(fixture* f)
{
    return clsoftmax_linear_softmax_buffer(
        f->ctx, &f->head, f->in_bufs[0], 0, f->in_bufs[1], 0, f->in_bufs[2], 0, f->out_buf, 0,
        f->indices_buf, 0, clsoftmax_context_cl_queue(f->ctx), 1, &f->user_event, &f->event);
}

static clsoftmax_status run_attention_buffer(fixture* f)
{
    return clsoftmax_attention_buffer(f->ctx, &f->att, f->in_bufs[0], 0, f->in_bufs[1], 0,
                                      f->in_bufs[2], 0, NULL, 0, f->out_buf, 0, NULL, 0, NULL, 1,
                                      &f->user_event, &f->event);
}

static int read_pipeline_buffers(fixture* f, char* why, size_t why_size)
{
    if (!read_out_buffer(f, why, why_size))
        return 0;
    if (f->indices_count == 0)
        return 1;
    cl_int err = clEnqueueReadBuffer(clsoftmax_context_cl_queue(f->ctx), f->indices_buf, CL_TRUE, 0,
                                     f->indices_count * sizeof(cl_long), f->indices, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        snprintf(why, why_size, "reading the indices buffer failed (%d)", (int)err);
    return err == CL_SUCCESS;
}

static int check_pipeline_buffer(fixture* f, char* why, size_t why_size)
{
    return wait_event(f, why, why_size) && read_pipeline_buffers(f, why, why_size) &&
           check_pipeline(f, why, why_size);
}

static int check_pipeline_buffer_untouched(fixture* f, char* why, size_t why_size)
{
    if (f->event != SENTINEL_EVENT) {
        snprintf(why, why_size, "*event was written");
        return 0;
    }
    return read_pipeline_buffers(f, why, why_size) && check_pipeline_untouched(f, why, why_size);
}

static void teardown_pipeline_buffer(fixture* f)
{
    for (int i = 0; i < 3; ++i)
        if (f->in_bufs[i] != NULL)
            clReleaseMemObject(f->in_bufs[i]);
    if (f->out_buf != NULL)
        clReleaseMemObject(f->out_buf);
    if (f->indices_buf != NULL)
        clReleaseMemObject(f->indices_buf);
    if (f->user_event != NULL)
        clReleaseEvent(f->user_event);
    teardown_pipeline(f);
}

/* -- the 0.2 operations: 16-bit forward with a row report, the policy ERROR and blending, the
 * backward, the cross-entropy --
 * Their expected results come from a clean run of the same call on a CPU context made and freed
 * in setup (the unit suites hold both backends to long double references; here the question is
 * only whether a call after a fault, or one that absorbed it, still computes what a clean one
 * does). Outputs start as sentinels, or as finite values where beta != 0 reads them. */

/* op.flags */
#define WITH_REPORT 1u /* desc.report set: the check kernel and its blocking read run */
#define WITH_ERROR 2u  /* nonfinite ERROR on clean data: the check runs, the call succeeds */
#define WITH_BLEND 4u  /* alpha 1.5, beta 0.5: out is read (copied in) before it is written */
#define WITH_PROBS 8u  /* cross-entropy: PROBS labels, reduction NONE, no gradient */
/* CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES set: the host entry points copy through device buffers
   (the forward in one chunk, so that every call after its kernel is an after_enqueue one; with
   blending, out's old values go up first) instead of wrapping the caller's memory. */
#define WITH_COPIES 16u
#define COPIES_CHUNK_BYTES ((size_t)1 << 20)

/* f->ctx for f's operation, with the parameters its flags ask for (NULL when that fails). */
static void make_new_context(fixture* f)
{
    f->ctx = make_context(f->op->backend);
    if (f->ctx != NULL && (f->op->flags & WITH_COPIES) &&
        clsoftmax_context_set_param(f->ctx, CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES,
                                    COPIES_CHUNK_BYTES) != CLSOFTMAX_SUCCESS) {
        clsoftmax_context_free(f->ctx);
        f->ctx = NULL;
    }
}

/* What a report holds before a call: a failed call must leave it so. */
#define REPORT_SENTINEL 0x5e7e5e7eu

static size_t dtype_bytes(clsoftmax_dtype dtype) { return clsoftmax_dtype_size(dtype); }

static double get_as(clsoftmax_dtype dtype, const void* p, size_t i)
{
    if (dtype == CLSOFTMAX_FLOAT16)
        return clsoftmax__f16_to_f32(((const uint16_t*)p)[i]);
    if (dtype == CLSOFTMAX_BFLOAT16)
        return clsoftmax__bf16_to_f32(((const uint16_t*)p)[i]);
    return test_get(p, dtype, i);
}

/* n elements of dtype in [lo, hi) (through float for the 16-bit types). */
static void* filled_as(clsoftmax_dtype dtype, size_t n, double lo, double hi, uint64_t seed)
{
    float* f32 = malloc(n * sizeof *f32);
    if (f32 == NULL || dtype == CLSOFTMAX_FLOAT32) {
        if (f32 != NULL)
            test_fill(f32, CLSOFTMAX_FLOAT32, n, lo, hi, seed);
        return f32;
    }
    test_fill(f32, CLSOFTMAX_FLOAT32, n, lo, hi, seed);
    uint16_t* h = malloc(n * sizeof *h);
    for (size_t i = 0; h != NULL && i < n; ++i)
        h[i] = dtype == CLSOFTMAX_FLOAT16 ? clsoftmax__f32_to_f16(f32[i])
                                          : clsoftmax__f32_to_bf16(f32[i]);
    free(f32);
    return h;
}

/* The distance between two 16-bit patterns on the ordered line (+0 and -0 one value). */
static long ordered16(uint16_t h) { return (h & 0x8000u) ? -(long)(h & 0x7fffu) : (long)h; }

/* got against want, count elements: float32 within the suite's tolerance, the 16-bit types
   within 2 ulps (each backend is within 1 of the exact result); NaN where NaN. */
static int matches_want(clsoftmax_dtype dtype, const void* got, const void* want, size_t count,
                        const char* name, char* why, size_t why_size)
{
    for (size_t i = 0; i < count; ++i) {
        double g = get_as(dtype, got, i), w = get_as(dtype, want, i);
        int ok;
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (dtype == CLSOFTMAX_FLOAT32)
            ok = fabs(g - w) <= TEST_ATOL_F32 + TEST_RTOL_F32 * fabs(w);
        else
            ok = labs(ordered16(((const uint16_t*)got)[i]) -
                      ordered16(((const uint16_t*)want)[i])) <= 2;
        if (!ok) {
            snprintf(why, why_size, "%s element %zu is %.9g, expected %.9g", name, i, g, w);
            return 0;
        }
    }
    return 1;
}

/* out (bytes) and, when grad_bytes > 0, grad: sentinels (out finite values for blending), the
   caller's copies of them and room for the expected results. */
static int make_new_outputs(fixture* f, size_t count, size_t grad_count)
{
    const op* o = f->op;
    f->count = count;
    f->bytes = count * dtype_bytes(o->dtype);
    f->sentinel =
        (o->flags & WITH_BLEND) ? filled_as(o->dtype, count, -1.0, 1.0, 99) : malloc(f->bytes);
    f->out = malloc(f->bytes);
    f->want = malloc(f->bytes);
    if (f->sentinel == NULL || f->out == NULL || f->want == NULL)
        return 0;
    if (!(o->flags & WITH_BLEND))
        test_fill_sentinel(f->sentinel, f->bytes);
    memcpy(f->out, f->sentinel, f->bytes);
    memcpy(f->want, f->sentinel, f->bytes);
    f->grad_count = grad_count;
    if (grad_count == 0)
        return 1;
    f->grad_bytes = grad_count * dtype_bytes(o->dtype);
    f->grad = malloc(f->grad_bytes);
    f->grad_sentinel = malloc(f->grad_bytes);
    f->grad_want = malloc(f->grad_bytes);
    if (f->grad == NULL || f->grad_sentinel == NULL || f->grad_want == NULL)
        return 0;
    test_fill_sentinel(f->grad_sentinel, f->grad_bytes);
    memcpy(f->grad, f->grad_sentinel, f->grad_bytes);
    memcpy(f->grad_want, f->grad_sentinel, f->grad_bytes);
    return 1;
}

static void reset_report(fixture* f)
{
    f->report.bad_rows = REPORT_SENTINEL;
    f->report.first_bad_row = REPORT_SENTINEL;
}

/* A clean run of f's operation on a CPU context into want (and grad_want). */
static int compute_want(fixture* f, clsoftmax_status (*cpu_run)(clsoftmax_context*, fixture*))
{
    clsoftmax_context* cpu = make_context(CLSOFTMAX_BACKEND_CPU);
    if (cpu == NULL)
        return 0;
    /* One thread: the tensors are small, and a pool per fault site would cost more. */
    clsoftmax_status st = clsoftmax_context_set_param(cpu, CLSOFTMAX_PARAM_CPU_THREADS, 1);
    if (st == CLSOFTMAX_SUCCESS)
        st = cpu_run(cpu, f);
    if (st != CLSOFTMAX_SUCCESS)
        fprintf(stderr, "%s: the CPU reference run: %s: %s\n", f->op->name,
                clsoftmax_status_name(st), clsoftmax_context_last_error(cpu));
    clsoftmax_context_free(cpu);
    return st == CLSOFTMAX_SUCCESS;
}

/* - forward, 16-bit or blended - */

static clsoftmax_status want_forward(clsoftmax_context* cpu, fixture* f)
{
    clsoftmax_desc d = f->desc;
    clsoftmax_row_report r;
    d.report = d.report != NULL ? &r : NULL;
    return clsoftmax_softmax_host(cpu, &d, f->in, f->want);
}

static int setup_forward(fixture* f)
{
    const op* o = f->op;
    make_new_context(f);
    clsoftmax_desc_init(&f->desc, o->dtype, o->ndim, o->dims, o->axis);
    f->desc.scale = 0.75;
    if (o->flags & WITH_REPORT)
        f->desc.report = &f->report;
    if (o->flags & WITH_ERROR)
        f->desc.nonfinite = CLSOFTMAX_NONFINITE_ERROR;
    if (o->flags & WITH_BLEND) {
        f->desc.alpha = 1.5;
        f->desc.beta = 0.5;
    }
    reset_report(f);
    size_t count = test_count(o->ndim, o->dims);
    f->in = filled_as(o->dtype, count, -8.0, 8.0, 42 + count);
    return f->ctx != NULL && f->in != NULL && make_new_outputs(f, count, 0) &&
           compute_want(f, want_forward);
}

/* Buffers over f's host tensors: in (or ins), out, grad, and a completed user event. */
static int upload(fixture* f)
{
    cl_int err = CL_SUCCESS;
    cl_context c = clsoftmax_context_cl_context(f->ctx);
    const cl_mem_flags copy = CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR;
    if (f->in != NULL)
        f->in_buf = clCreateBuffer(c, copy, f->bytes, f->in, &err);
    for (int i = 0; i < 3 && err == CL_SUCCESS; ++i)
        if (f->ins[i] != NULL)
            f->in_bufs[i] = clCreateBuffer(c, copy, f->in_bytes[i], f->ins[i], &err);
    if (err == CL_SUCCESS)
        f->out_buf = clCreateBuffer(c, copy, f->bytes, f->sentinel, &err);
    if (err == CL_SUCCESS && f->grad_count > 0)
        f->grad_buf = clCreateBuffer(c, copy, f->grad_bytes, f->grad_sentinel, &err);
    if (err == CL_SUCCESS)
        f->user_event = clCreateUserEvent(c, &err);
    f->event = SENTINEL_EVENT;
    return err == CL_SUCCESS && clSetUserEventStatus(f->user_event, CL_COMPLETE) == CL_SUCCESS;
}

static int setup_forward_buffer(fixture* f) { return setup_forward(f) && upload(f); }

static clsoftmax_status run_forward_buffer(fixture* f)
{
    return clsoftmax_softmax_buffer(f->ctx, &f->desc, f->in_buf, 0, f->out_buf, 0, NULL, 1,
                                    &f->user_event, &f->event);
}

/* After a success: out (and grad) as the clean run, and the report, when asked, says clean. */
static int check_new(fixture* f, char* why, size_t why_size)
{
    const clsoftmax_dtype dt = f->op->dtype;
    if (!matches_want(dt, f->out, f->want, f->count, "out", why, why_size))
        return 0;
    if (f->grad_count > 0 &&
        !matches_want(dt, f->grad, f->grad_want, f->grad_count, "grad", why, why_size))
        return 0;
    if (f->desc.report != NULL &&
        (f->report.bad_rows != 0 || f->report.first_bad_row != SIZE_MAX)) {
        snprintf(why, why_size, "report {%zu, %zu} on clean data", f->report.bad_rows,
                 f->report.first_bad_row);
        return 0;
    }
    return 1;
}

/* The gradient a failure may have written: see may_have_written (NULL: none). */
static int grad_may_be_written(const fixture* f);

static int check_new_untouched(fixture* f, char* why, size_t why_size)
{
    if (memcmp(f->out, f->sentinel, f->bytes) != 0) {
        snprintf(why, why_size, "out was written");
        return 0;
    }
    if (f->grad_count > 0 && memcmp(f->grad, f->grad_sentinel, f->grad_bytes) != 0 &&
        !grad_may_be_written(f)) {
        snprintf(why, why_size, "grad was written");
        return 0;
    }
    if (f->report.bad_rows != REPORT_SENTINEL || f->report.first_bad_row != REPORT_SENTINEL) {
        snprintf(why, why_size, "the report was written");
        return 0;
    }
    return 1;
}

static int read_new_buffers(fixture* f, char* why, size_t why_size)
{
    cl_command_queue q = clsoftmax_context_cl_queue(f->ctx);
    cl_int err = clFinish(q);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(q, f->out_buf, CL_TRUE, 0, f->bytes, f->out, 0, NULL, NULL);
    if (err == CL_SUCCESS && f->grad_count > 0)
        err =
            clEnqueueReadBuffer(q, f->grad_buf, CL_TRUE, 0, f->grad_bytes, f->grad, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        snprintf(why, why_size, "reading the output buffers failed (%d)", (int)err);
    return err == CL_SUCCESS;
}

static int check_new_buffer(fixture* f, char* why, size_t why_size)
{
    return wait_event(f, why, why_size) && read_new_buffers(f, why, why_size) &&
           check_new(f, why, why_size);
}

static int check_new_buffer_untouched(fixture* f, char* why, size_t why_size)
{
    if (f->event != SENTINEL_EVENT) {
        snprintf(why, why_size, "*event was written");
        return 0;
    }
    return read_new_buffers(f, why, why_size) && check_new_untouched(f, why, why_size);
}

static void teardown_new(fixture* f)
{
    cl_mem bufs[] = {f->in_buf,     f->in_bufs[0], f->in_bufs[1],
                     f->in_bufs[2], f->out_buf,    f->grad_buf};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i)
        if (bufs[i] != NULL)
            clReleaseMemObject(bufs[i]);
    if (f->user_event != NULL)
        clReleaseEvent(f->user_event);
    clsoftmax_context_free(f->ctx);
    f->ctx = NULL;
    for (int i = 0; i < 3; ++i)
        free(f->ins[i]);
    free(f->in);
    free(f->out);
    free(f->sentinel);
    free(f->want);
    free(f->grad);
    free(f->grad_sentinel);
    free(f->grad_want);
}

/* - backward: y in (0, 1), dy in (-1, 1), dx -
 * y need not be a softmax for the formula; scale 0.75 as the forward's. */

static clsoftmax_status want_backward(clsoftmax_context* cpu, fixture* f)
{
    return clsoftmax_softmax_backward_host(cpu, &f->desc, f->ins[0], f->ins[1], f->want);
}

static int setup_backward(fixture* f)
{
    const op* o = f->op;
    make_new_context(f);
    clsoftmax_desc_init(&f->desc, o->dtype, o->ndim, o->dims, o->axis);
    f->desc.scale = 0.75;
    reset_report(f);
    size_t count = test_count(o->ndim, o->dims);
    for (int i = 0; i < 2; ++i) {
        f->in_bytes[i] = count * dtype_bytes(o->dtype);
        f->ins[i] = filled_as(o->dtype, count, i == 0 ? 0.0 : -1.0, 1.0, 23 + (uint64_t)i);
    }
    return f->ctx != NULL && f->ins[0] != NULL && f->ins[1] != NULL &&
           make_new_outputs(f, count, 0) && compute_want(f, want_backward);
}

static int setup_backward_buffer(fixture* f) { return setup_backward(f) && upload(f); }

static clsoftmax_status run_backward_host(fixture* f)
{
    return clsoftmax_softmax_backward_host(f->ctx, &f->desc, f->ins[0], f->ins[1], f->out);
}

static clsoftmax_status run_backward_buffer(fixture* f)
{
    return clsoftmax_softmax_backward_buffer(f->ctx, &f->desc, f->in_bufs[0], 0, f->in_bufs[1], 0,
                                             f->out_buf, 0, NULL, 1, &f->user_event, &f->event);
}

/* - cross-entropy over [rows, classes] = dims[0], dims[1] -
 * INDEX: labels in [0, classes) but row 1 ignored (ignore_index -1), weights in [0.5, 1.5),
 * MEAN, the gradient. PROBS: each row's probabilities, no weights, NONE, no gradient. The
 * entries are float32 (the probabilities are made as float32). */

#define XENT_IGNORE (-1)

static clsoftmax_status want_xent(clsoftmax_context* cpu, fixture* f)
{
    return clsoftmax_cross_entropy_host(cpu, &f->xent, f->ins[0], f->ins[1], f->ins[2], f->want,
                                        f->grad_count > 0 ? f->grad_want : NULL);
}

static int setup_xent(fixture* f)
{
    const op* o = f->op;
    const size_t rows = o->dims[0], classes = o->dims[1];
    const int probs = (o->flags & WITH_PROBS) != 0;
    make_new_context(f);
    clsoftmax_cross_entropy_desc_init(&f->xent, o->dtype, rows, classes);
    f->xent.ignore_index = XENT_IGNORE;
    if (probs) {
        f->xent.labels = CLSOFTMAX_LABELS_PROBS;
        f->xent.reduction = CLSOFTMAX_REDUCTION_NONE;
    }
    reset_report(f);
    const size_t esz = dtype_bytes(o->dtype);
    f->in_bytes[0] = rows * classes * esz;
    f->ins[0] = filled_as(o->dtype, rows * classes, -4.0, 4.0, 31);
    if (probs) {
        f->in_bytes[1] = rows * classes * esz;
        float* q = filled_as(CLSOFTMAX_FLOAT32, rows * classes, 0.0, 1.0, 37);
        for (size_t r = 0; q != NULL && r < rows; ++r) {
            float sum = 0;
            for (size_t c = 0; c < classes; ++c)
                sum += q[r * classes + c];
            for (size_t c = 0; c < classes; ++c)
                q[r * classes + c] /= sum;
        }
        f->ins[1] = q;
    } else {
        f->in_bytes[1] = rows * sizeof(cl_long);
        cl_long* labels = malloc(f->in_bytes[1]);
        for (size_t r = 0; labels != NULL && r < rows; ++r)
            labels[r] = r == 1 ? XENT_IGNORE : (cl_long)((r * 7 + 3) % classes);
        f->ins[1] = labels;
        f->in_bytes[2] = classes * esz;
        f->ins[2] = filled_as(o->dtype, classes, 0.5, 1.5, 41);
    }
    return f->ctx != NULL && f->ins[0] != NULL && f->ins[1] != NULL &&
           (probs || f->ins[2] != NULL) &&
           make_new_outputs(f, probs ? rows : 1, probs ? 0 : rows * classes) &&
           compute_want(f, want_xent);
}

static int setup_xent_buffer(fixture* f) { return setup_xent(f) && upload(f); }

static clsoftmax_status run_xent_host(fixture* f)
{
    return clsoftmax_cross_entropy_host(f->ctx, &f->xent, f->ins[0], f->ins[1], f->ins[2], f->out,
                                        f->grad_count > 0 ? f->grad : NULL);
}

static clsoftmax_status run_xent_buffer(fixture* f)
{
    return clsoftmax_cross_entropy_buffer(f->ctx, &f->xent, f->in_bufs[0], 0, f->in_bufs[1], 0,
                                          f->in_bufs[2], 0, f->out_buf, 0, f->grad_buf, 0, NULL, 1,
                                          &f->user_event, &f->event);
}

/* -- device enumeration -- */

static int setup_none(fixture* f)
{
    (void)f;
    return 1;
}

static int visit(const clsoftmax_device_info* info, void* user)
{
    fixture* f = user;
    (void)info;
    ++f->visited;
    return 0;
}

static clsoftmax_status run_enumerate(fixture* f)
{
    f->visited = 0;
    return clsoftmax_devices_enumerate(visit, f);
}

static int check_enumerated(fixture* f, char* why, size_t why_size)
{
    if (f->visited == 0)
        snprintf(why, why_size, "no device visited");
    return f->visited > 0;
}

static int check_not_enumerated(fixture* f, char* why, size_t why_size)
{
    if (f->visited != 0)
        snprintf(why, why_size, "%zu devices visited before the failure", f->visited);
    return f->visited == 0;
}

static void teardown_none(fixture* f) { (void)f; }

/* ---- the sweep ------------------------------------------------------------------ */

/* A fault is reported as the device's or the host's trouble, never as the caller's mistake. */
static int failure_status(clsoftmax_status st)
{
    return st == CLSOFTMAX_OPENCL_ERROR || st == CLSOFTMAX_OUT_OF_MEMORY ||
           st == CLSOFTMAX_BUILD_FAILURE || st == CLSOFTMAX_INVALID_QUEUE;
}

static int names_fault(const char* msg, int alloc_mode, const char* call)
{
    if (alloc_mode)
        return test_contains(msg, "memory") || test_contains(msg, "alloc");
    return test_contains(msg, call);
}

typedef enum fault_mode {
    NTH_CALL,  /* the nth OpenCL call fails, the others run */
    NTH_ALLOC, /* the nth allocation fails */
    EVERY_CALL /* every call of one function fails: a device that stays broken */
} fault_mode;

/* The functions whose failure the NTH_CALL sweep of one operation injected, for EVERY_CALL. */
#define MAX_FUNCTIONS 64
typedef struct function_set {
    const char* names[MAX_FUNCTIONS];
    size_t count;
} function_set;

static void function_set_add(function_set* set, const char* name)
{
    for (size_t i = 0; i < set->count; ++i)
        if (strcmp(set->names[i], name) == 0)
            return;
    if (set->count < MAX_FUNCTIONS)
        set->names[set->count++] = name;
}

/*
 * One run of o->run with one fault armed (n: which call or allocation; function: for
 * EVERY_CALL) and every check. Returns 0 when no fault fired (the run was complete), else 1;
 * *fired_call receives the name of the function failed (NTH_CALL, EVERY_CALL).
 */
/*
 * Whether `call` is one the host path makes after it enqueued work that writes the caller's
 * `out`: on a device sharing host memory the kernel writes `out` itself (zero-copy), and the
 * streamed path reads finished chunks into it. The header documents that a device error
 * reported after that point can leave `out` partly written; every earlier failure (arguments,
 * allocations, the build, the launch) must leave it untouched.
 */
static int after_enqueue(const char* call)
{
    static const char* const calls[] = {"clFinish",
                                        "clFlush",
                                        "clEnqueueMapBuffer",
                                        "clEnqueueUnmapMemObject",
                                        "clEnqueueReadBuffer",
                                        "clWaitForEvents"};
    for (size_t i = 0; call != NULL && i < sizeof calls / sizeof calls[0]; ++i)
        if (strcmp(call, calls[i]) == 0)
            return 1;
    return 0;
}

static int may_have_written(const op* o, const char* call)
{
    if (o->backend == CLSOFTMAX_BACKEND_CPU || call == NULL)
        return 0;
    /* The pipeline operations' host path uploads into buffers of its own, finishes the queue,
       and only then reads out (and then indices) back into the caller's memory: a failed read
       is the only call that can come after the results reached it (the indices read after out,
       or a blocking read failing part way). A failed clFinish must leave both untouched. */
    if (o->run == run_head_host || o->run == run_attention_host)
        return strcmp(call, "clEnqueueReadBuffer") == 0;
    /* Their buffer entry points make the caller's *event with a marker after the last command
       (CLBlast's calls give none back): when it fails, the commands that write out are already
       on the queue and cannot be taken back; the error still says so and *event is untouched. */
    if (o->run == run_head_buffer || o->run == run_attention_buffer)
        return strcmp(call, "clEnqueueMarkerWithWaitList") == 0;
    /* The 0.2 host entry points follow the softmax's rule: zero-copy on this device, their
       kernels write the caller's outputs, which are read back or mapped after a finish. */
    if (o->run == run_host || o->run == run_backward_host || o->run == run_xent_host)
        return after_enqueue(call);
    return 0;
}

/*
 * The cross-entropy with SUM or MEAN and a gradient enqueues xent_rows, which writes grad, and
 * then xent_reduce, which writes loss (host/cross_entropy.c sets every argument first). When
 * that last enqueue fails, xent_rows is on the queue and cannot be taken back: on the buffer
 * entry point, and on the host one where grad is the caller's memory (zero-copy, not
 * WITH_COPIES, which reads grad back only after a finish), grad is then
 * written, completely and right, while loss stays untouched and *event unset. Any other failure,
 * the earlier enqueues' included, must leave grad alone, so a written grad must match.
 */
static int grad_may_be_written(const fixture* f)
{
    char why[256];
    const op* o = f->op;
    return o->backend != CLSOFTMAX_BACKEND_CPU && !(o->flags & (WITH_PROBS | WITH_COPIES)) &&
           (o->run == run_xent_host || o->run == run_xent_buffer) && f->fault_call != NULL &&
           strcmp(f->fault_call, "clEnqueueNDRangeKernel") == 0 &&
           matches_want(o->dtype, f->grad, f->grad_want, f->grad_count, "grad", why, sizeof why);
}

/* The object kinds that must be back to their count right after a failed call. The pipeline
   operations keep a scratch buffer in the context (top-k logits, the attention workspace),
   grown on first use and freed with the context: buffers are left to the count after teardown,
   which still catches a leaked one. */
static unsigned call_kinds(const op* o, int leaked_map)
{
    unsigned kinds = leaked_map ? CALL_KINDS & ~MAP_KIND : CALL_KINDS;
    if (o->run == run_head_host || o->run == run_head_buffer || o->run == run_attention_host ||
        o->run == run_attention_buffer)
        kinds &= ~(1u << CLSOFTMAX__LIVE_BUFFER);
    /* So do the row check (its two counters) and the reduced cross-entropy (divisor and row
       losses). */
    if (((o->run == run_host || o->run == run_forward_buffer) &&
         (o->flags & (WITH_REPORT | WITH_ERROR))) ||
        ((o->run == run_xent_host || o->run == run_xent_buffer) && !(o->flags & WITH_PROBS)))
        kinds &= ~(1u << CLSOFTMAX__LIVE_BUFFER);
    return kinds;
}

static int sweep_one(const op* o, fault_mode mode, unsigned long n, const char* function,
                     const char** fired_call)
{
    fixture f;
    memset(&f, 0, sizeof f);
    f.op = o;
    char what[256];
    char why[512] = "";
    const int alloc_mode = mode == NTH_ALLOC;
    int leaked_map = 0;
    snprintf(what, sizeof what, "%s, allocation %lu", o->name, n);

    snapshot base;
    snap(&base);
    if (!o->setup(&f)) {
        TEST_CHECK(0, "%s: setup failed", what);
        o->teardown(&f);
        return 0;
    }
    snapshot before;
    snap(&before);
    cl_int err = injected[(n - 1) % INJECTED_COUNT];
    if (mode == NTH_ALLOC)
        clsoftmax__fault_alloc_nth(n);
    else if (mode == NTH_CALL)
        clsoftmax__fault_cl_nth(n, err);
    else
        CU_ASSERT_FATAL(clsoftmax__fault_cl_every(function, err));
    clsoftmax_status st = o->run(&f);
    unsigned long fired = alloc_mode ? clsoftmax__fault_alloc_fired() : clsoftmax__fault_cl_fired();
    const char* call = alloc_mode ? "allocation" : clsoftmax__fault_cl_last();
    clsoftmax__fault_cl_reset();
    clsoftmax__fault_alloc_reset();
    if (mode == NTH_CALL)
        snprintf(what, sizeof what, "%s, OpenCL call %lu (%s -> %s)", o->name, n, call,
                 clsoftmax__cl_error_name(err));
    else if (mode == EVERY_CALL)
        snprintf(what, sizeof what, "%s, every %s -> %s", o->name, function,
                 clsoftmax__cl_error_name(err));
    *fired_call = call;
    f.fault_call = call;

    if (fired == 0) {
        /* The whole operation ran without meeting the fault. */
        TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: no fault injected, yet %s", what,
                   clsoftmax_status_name(st));
        if (st == CLSOFTMAX_SUCCESS)
            TEST_CHECK(o->check_result(&f, why, sizeof why), "%s: %s", what, why);
        o->teardown(&f);
        check_counts(&base, ALL_KINDS, 1, what, __LINE__);
        return 0;
    }
    /* For debugging a sweep: one line per injected fault. */
    if (getenv("CLSOFTMAX_FAULT_VERBOSE") != NULL)
        printf("\n      %s: %s", what, clsoftmax_status_name(st));
    const char* msg = o->message(&f, st);
    if (st == CLSOFTMAX_SUCCESS) {
        /* Absorbed (an optional query, AUTO's fallback): the result must still be right. */
        if (msg != NULL)
            TEST_CHECK(names_fault(msg, alloc_mode, call),
                       "%s: absorbed, but the fallback reason \"%s\" does not name it", what, msg);
        TEST_CHECK(o->check_result(&f, why, sizeof why), "%s: absorbed, but %s", what, why);
    } else {
        TEST_CHECK(failure_status(st), "%s: status %s blames the caller", what,
                   clsoftmax_status_name(st));
        if (msg != NULL)
            TEST_CHECK(names_fault(msg, alloc_mode, call),
                       "%s: %s, but the error \"%s\" does not name the failed call", what,
                       clsoftmax_status_name(st), msg);
        if (!may_have_written(o, call))
            TEST_CHECK(o->check_untouched(&f, why, sizeof why), "%s: %s", what, why);
        /* A mapping whose unmap failed stays mapped (it may hold its buffer too): nothing a
           caller or the library can do about it, so only that count is let go. */
        if (call != NULL && strcmp(call, "clEnqueueUnmapMemObject") == 0)
            leaked_map = 1;
        check_counts(&before, call_kinds(o, leaked_map), 1, what, __LINE__);
        /* The same call again, without a fault, on what is left; a caller blending into out
           restores it first where the failure may have written it. The queue is drained
           first: where the library's own clFinish failed (every clFinish failing), the read
           into out it enqueued can still be running when the call returns. */
        if ((o->flags & WITH_BLEND) && may_have_written(o, call)) {
            clFinish(clsoftmax_context_cl_queue(f.ctx));
            memcpy(f.out, f.sentinel, f.bytes);
        }
        clsoftmax_status again = o->run(&f);
        TEST_CHECK(again == CLSOFTMAX_SUCCESS, "%s: the next call failed: %s: %s", what,
                   clsoftmax_status_name(again), msg != NULL ? o->message(&f, again) : "");
        if (again == CLSOFTMAX_SUCCESS)
            TEST_CHECK(o->check_result(&f, why, sizeof why), "%s: next call: %s", what, why);
    }
    o->teardown(&f);
    check_counts(&base, leaked_map ? ALL_KINDS & ~MAP_KIND : ALL_KINDS, 1, what, __LINE__);
    return 1;
}

/*
 * SQLite's loop: fails the 1st, 2nd, ... OpenCL call of o->run, one per run, until a run
 * completes without meeting the fault; then every call of each function met on the way, one
 * function per run; then the 1st, 2nd, ... allocation. Returns the number of runs with a
 * fault injected.
 */
static unsigned long sweep(const op* o)
{
    unsigned long sites[3] = {0, 0, 0};
    function_set functions = {{NULL}, 0};
    const char* call = NULL;
    for (unsigned long n = 1; n <= 10000 && sweep_one(o, NTH_CALL, n, NULL, &call); ++n) {
        ++sites[NTH_CALL];
        function_set_add(&functions, call);
    }
    for (size_t i = 0; i < functions.count; ++i)
        sites[EVERY_CALL] +=
            (unsigned long)sweep_one(o, EVERY_CALL, i + 1, functions.names[i], &call);
    for (unsigned long n = 1; n <= 10000 && sweep_one(o, NTH_ALLOC, n, NULL, &call); ++n)
        ++sites[NTH_ALLOC];
    TEST_CHECK(sites[NTH_CALL] < 10000 && sites[NTH_ALLOC] < 10000, "%s: the sweep does not end",
               o->name);
    printf("\n    %s: %lu OpenCL calls, %lu functions failing throughout, %lu allocations", o->name,
           sites[NTH_CALL], sites[EVERY_CALL], sites[NTH_ALLOC]);
    total_sites += sites[NTH_CALL] + sites[EVERY_CALL] + sites[NTH_ALLOC];
    return sites[NTH_CALL] + sites[EVERY_CALL] + sites[NTH_ALLOC];
}

/* Shapes: a short row (row-local), a row beyond 512 KiB of local memory (multipass), a middle
   axis (strided). */
#define ROW_LOCAL 2, {5, 300, 1}, -1
#define MULTIPASS 2, {1, 140000, 1}, -1
#define STRIDED 3, {3, 40, 7}, 1
/* The pipeline operations take their shapes from their own descriptors (setup). */
#define HEAD 0, {0, 0, 0}, 0
/* The cross-entropy's [rows, classes]. */
#define XENT 2, {9, 37, 0}, 0

/* The 0.2 operations' entries, on backend B (the host entry points serve both backends). */
#define NEW_FORWARD_HOST(name, B, shape, dtype, flags)                                             \
    {                                                                                              \
        name, B, shape, setup_forward, run_host, message_context, check_new, check_new_untouched,  \
            teardown_new, dtype, flags                                                             \
    }
#define NEW_HOST(name, B, shape, what, dtype, flags)                                               \
    {                                                                                              \
        name, B, shape, setup_##what, run_##what##_host, message_context, check_new,               \
            check_new_untouched, teardown_new, dtype, flags                                        \
    }
#define NEW_BUFFER(name, shape, what, dtype, flags)                                                \
    {                                                                                              \
        name, CLSOFTMAX_BACKEND_OPENCL, shape, setup_##what##_buffer, run_##what##_buffer,         \
            message_context, check_new_buffer, check_new_buffer_untouched, teardown_new, dtype,    \
            flags                                                                                  \
    }
#define NEW_HOST_OPS(B, suffix)                                                                    \
    NEW_FORWARD_HOST("forward host " suffix " float16 row-local, report", B, ROW_LOCAL,            \
                     CLSOFTMAX_FLOAT16, WITH_REPORT),                                              \
        NEW_FORWARD_HOST("forward host " suffix " float16 row-local, policy ERROR", B, ROW_LOCAL,  \
                         CLSOFTMAX_FLOAT16, WITH_ERROR),                                           \
        NEW_FORWARD_HOST("forward host " suffix " bfloat16 strided, beta 0.5, report, copies", B,  \
                         STRIDED, CLSOFTMAX_BFLOAT16, WITH_BLEND | WITH_REPORT | WITH_COPIES),     \
        NEW_HOST("backward host " suffix " row", B, ROW_LOCAL, backward, CLSOFTMAX_FLOAT32, 0),    \
        NEW_HOST("backward host " suffix " strided", B, STRIDED, backward, CLSOFTMAX_FLOAT32, 0),  \
        NEW_HOST("backward host " suffix " float16 row", B, ROW_LOCAL, backward,                   \
                 CLSOFTMAX_FLOAT16, 0),                                                            \
        NEW_HOST("cross-entropy host " suffix " index, mean, grad", B, XENT, xent,                 \
                 CLSOFTMAX_FLOAT32, 0),                                                            \
        NEW_HOST("cross-entropy host " suffix " index, mean, grad, copies", B, XENT, xent,         \
                 CLSOFTMAX_FLOAT32, WITH_COPIES),                                                  \
        NEW_HOST("cross-entropy host " suffix " probs, none", B, XENT, xent, CLSOFTMAX_FLOAT32,    \
                 WITH_PROBS)

static const op ops_cpu[] = {
    {"create cpu", CLSOFTMAX_BACKEND_CPU, ROW_LOCAL, setup_create, run_create, message_create,
     check_created, check_not_created, teardown_create, CLSOFTMAX_FLOAT32, 0},
    {"host cpu row", CLSOFTMAX_BACKEND_CPU, ROW_LOCAL, setup_host, run_host, message_context,
     check_host, check_host_untouched, teardown_host, CLSOFTMAX_FLOAT32, 0},
    {"host cpu long row", CLSOFTMAX_BACKEND_CPU, MULTIPASS, setup_host, run_host, message_context,
     check_host, check_host_untouched, teardown_host, CLSOFTMAX_FLOAT32, 0},
    {"host cpu strided", CLSOFTMAX_BACKEND_CPU, STRIDED, setup_host, run_host, message_context,
     check_host, check_host_untouched, teardown_host, CLSOFTMAX_FLOAT32, 0},
    {"head cpu", CLSOFTMAX_BACKEND_CPU, HEAD, setup_head, run_head_host, message_context,
     check_pipeline, check_pipeline_untouched, teardown_pipeline, CLSOFTMAX_FLOAT32, 0},
    {"attention cpu", CLSOFTMAX_BACKEND_CPU, HEAD, setup_attention, run_attention_host,
     message_context, check_pipeline, check_pipeline_untouched, teardown_pipeline,
     CLSOFTMAX_FLOAT32, 0},
    NEW_HOST_OPS(CLSOFTMAX_BACKEND_CPU, "cpu"),
};

static const op ops_opencl[] = {
    {"create auto", CLSOFTMAX_BACKEND_AUTO, ROW_LOCAL, setup_create, run_create, message_create,
     check_created, check_not_created, teardown_create, CLSOFTMAX_FLOAT32, 0},
    {"create opencl", CLSOFTMAX_BACKEND_OPENCL, ROW_LOCAL, setup_create, run_create, message_create,
     check_created, check_not_created, teardown_create, CLSOFTMAX_FLOAT32, 0},
    {"create borrowed (own queue)", CLSOFTMAX_BACKEND_OPENCL, ROW_LOCAL, setup_borrowed,
     run_borrowed, message_borrowed, check_created, check_not_created, teardown_borrowed,
     CLSOFTMAX_FLOAT32, 0},
    {"create borrowed (caller's queue)", CLSOFTMAX_BACKEND_AUTO, ROW_LOCAL, setup_borrowed,
     run_borrowed, message_borrowed, check_created, check_not_created, teardown_borrowed,
     CLSOFTMAX_FLOAT32, 0},
    {"host opencl row-local", CLSOFTMAX_BACKEND_OPENCL, ROW_LOCAL, setup_host, run_host,
     message_context, check_host, check_host_untouched, teardown_host, CLSOFTMAX_FLOAT32, 0},
    {"host opencl multipass", CLSOFTMAX_BACKEND_OPENCL, MULTIPASS, setup_host, run_host,
     message_context, check_host, check_host_untouched, teardown_host, CLSOFTMAX_FLOAT32, 0},
    {"host opencl strided", CLSOFTMAX_BACKEND_OPENCL, STRIDED, setup_host, run_host,
     message_context, check_host, check_host_untouched, teardown_host, CLSOFTMAX_FLOAT32, 0},
    {"buffer opencl", CLSOFTMAX_BACKEND_OPENCL, STRIDED, setup_buffer, run_buffer, message_context,
     check_buffer, check_buffer_untouched, teardown_buffer, CLSOFTMAX_FLOAT32, 0},
    {"head host opencl", CLSOFTMAX_BACKEND_OPENCL, HEAD, setup_head, run_head_host, message_context,
     check_pipeline, check_pipeline_untouched, teardown_pipeline, CLSOFTMAX_FLOAT32, 0},
    {"head buffer opencl", CLSOFTMAX_BACKEND_OPENCL, HEAD, setup_head_buffer, run_head_buffer,
     message_context, check_pipeline_buffer, check_pipeline_buffer_untouched,
     teardown_pipeline_buffer, CLSOFTMAX_FLOAT32, 0},
    {"attention host opencl", CLSOFTMAX_BACKEND_OPENCL, HEAD, setup_attention, run_attention_host,
     message_context, check_pipeline, check_pipeline_untouched, teardown_pipeline,
     CLSOFTMAX_FLOAT32, 0},
    {"attention buffer opencl", CLSOFTMAX_BACKEND_OPENCL, HEAD, setup_attention_buffer,
     run_attention_buffer, message_context, check_pipeline_buffer, check_pipeline_buffer_untouched,
     teardown_pipeline_buffer, CLSOFTMAX_FLOAT32, 0},
    NEW_HOST_OPS(CLSOFTMAX_BACKEND_OPENCL, "opencl"),
    NEW_BUFFER("forward buffer opencl float16 row-local, report", ROW_LOCAL, forward,
               CLSOFTMAX_FLOAT16, WITH_REPORT),
    NEW_BUFFER("backward buffer opencl row", ROW_LOCAL, backward, CLSOFTMAX_FLOAT32, 0),
    NEW_BUFFER("backward buffer opencl strided", STRIDED, backward, CLSOFTMAX_FLOAT32, 0),
    NEW_BUFFER("cross-entropy buffer opencl index, mean, grad", XENT, xent, CLSOFTMAX_FLOAT32, 0),
    NEW_BUFFER("cross-entropy buffer opencl probs, none", XENT, xent, CLSOFTMAX_FLOAT32,
               WITH_PROBS),
    {"devices enumerate", CLSOFTMAX_BACKEND_OPENCL, ROW_LOCAL, setup_none, run_enumerate, NULL,
     check_enumerated, check_not_enumerated, teardown_none, CLSOFTMAX_FLOAT32, 0},
};

static const char* no_message(fixture* f, clsoftmax_status st)
{
    (void)f;
    (void)st;
    return NULL;
}

static void test_sweep_cpu(void)
{
    unsigned long before = total_sites;
    for (size_t i = 0; i < sizeof ops_cpu / sizeof ops_cpu[0]; ++i)
        sweep(&ops_cpu[i]);
    printf("\n    cpu: %lu fault sites swept\n", total_sites - before);
}

static void test_sweep_opencl(void)
{
    unsigned long before = total_sites;
    for (size_t i = 0; i < sizeof ops_opencl / sizeof ops_opencl[0]; ++i) {
        op o = ops_opencl[i];
        /* Enumeration has no context to keep a message in: its status is all it says. */
        if (o.message == NULL)
            o.message = no_message;
        sweep(&o);
    }
    printf("\n    opencl: %lu fault sites swept\n", total_sites - before);
}

/* The injector itself: a failure is injected where asked, counted, and named. */
static void test_injector(void)
{
    clsoftmax__fault_cl_nth(1, CL_OUT_OF_RESOURCES);
    cl_uint n = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &n);
    TEST_CHECK(err == CL_OUT_OF_RESOURCES, "the first call returned %d", (int)err);
    TEST_CHECK(clsoftmax__fault_cl_fired() == 1, "fired %lu", clsoftmax__fault_cl_fired());
    TEST_CHECK(strcmp(clsoftmax__fault_cl_last(), "clGetPlatformIDs") == 0, "named %s",
               clsoftmax__fault_cl_last());
    clsoftmax__fault_cl_reset();
    TEST_CHECK(clsoftmax__fault_cl_every("clNoSuchFunction", CL_OUT_OF_RESOURCES) == 0,
               "an unknown name was accepted");
    clsoftmax__fault_cl_reset();

    long before = clsoftmax__fault_alloc_live();
    clsoftmax__fault_alloc_nth(2);
    void* a = clsoftmax__fi_malloc(8);
    void* b = clsoftmax__fi_malloc(8);
    clsoftmax__fault_alloc_reset();
    TEST_CHECK(a != NULL && b == NULL, "the second allocation was not failed (%p, %p)", a, b);
    TEST_CHECK(clsoftmax__fault_alloc_live() == before + 1, "outstanding %ld, expected %ld",
               clsoftmax__fault_alloc_live(), before + 1);
    clsoftmax__fi_free(a);
    TEST_CHECK(clsoftmax__fault_alloc_live() == before, "outstanding %ld after free",
               clsoftmax__fault_alloc_live());
}

/* ---- the fallback policy --------------------------------------------------------- */

/* An AUTO context (OpenCL on this machine) with fallback_on_error as asked, or from the
   environment when use_env. */
static clsoftmax_context* auto_context(int fallback, int use_env)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = CLSOFTMAX_BACKEND_AUTO;
    config.use_environment = use_env;
    config.fallback_on_error = fallback;
    clsoftmax_context* ctx = NULL;
    clsoftmax_status st = clsoftmax_context_create(&config, &ctx);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "AUTO context: %s: %s", clsoftmax_status_name(st),
               clsoftmax_last_create_error());
    if (ctx != NULL)
        TEST_CHECK(clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_OPENCL,
                   "AUTO did not settle on OpenCL: %s", clsoftmax_context_fallback_reason(ctx));
    return ctx;
}

/*
 * Runs the host entry point on ctx with every call of `function` failing with err. expect_fallback:
 * the call succeeds on the CPU, the backend says CPU and the reason names the function; else
 * the error comes back, out untouched, the backend still OpenCL.
 */
static void check_host_fallback(clsoftmax_context* ctx, const char* function, cl_int err,
                                int expect_fallback, unsigned line)
{
    static const op shape = {
        "fallback", CLSOFTMAX_BACKEND_AUTO, STRIDED, NULL, NULL, NULL, NULL, NULL,
        NULL,       CLSOFTMAX_FLOAT32,      0};
    fixture f;
    memset(&f, 0, sizeof f);
    f.op = &shape;
    f.ctx = ctx;
    char why[256] = "";
    if (!make_tensors(&f)) {
        TEST_CHECK_AT(line, 0, "out of memory");
        free_tensors(&f);
        return;
    }
    CU_ASSERT_FATAL(clsoftmax__fault_cl_every(function, err));
    clsoftmax_status st = clsoftmax_softmax_host(ctx, &f.desc, f.in, f.out);
    unsigned long fired = clsoftmax__fault_cl_fired();
    TEST_CHECK_AT(line, fired > 0, "%s was never called", function);
    if (expect_fallback) {
        TEST_CHECK_AT(line, st == CLSOFTMAX_SUCCESS, "%s failing: %s (%s)", function,
                      clsoftmax_status_name(st), clsoftmax_context_last_error(ctx));
        TEST_CHECK_AT(line, check_host(&f, why, sizeof why), "%s failing: %s", function, why);
        TEST_CHECK_AT(line, clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_CPU,
                      "the backend is still %d", (int)clsoftmax_context_backend(ctx));
        TEST_CHECK_AT(line, test_contains(clsoftmax_context_fallback_reason(ctx), function),
                      "the reason \"%s\" does not name %s", clsoftmax_context_fallback_reason(ctx),
                      function);
        /* The device is not asked again, even while it keeps failing. */
        memcpy(f.out, f.sentinel, f.bytes);
        clsoftmax__fault_cl_every(function, err);
        st = clsoftmax_softmax_host(ctx, &f.desc, f.in, f.out);
        TEST_CHECK_AT(line, st == CLSOFTMAX_SUCCESS && clsoftmax__fault_cl_calls() == 0,
                      "after the fallback: %s, %lu OpenCL calls", clsoftmax_status_name(st),
                      clsoftmax__fault_cl_calls());
        TEST_CHECK_AT(line, check_host(&f, why, sizeof why), "after the fallback: %s", why);
    } else {
        TEST_CHECK_AT(line, st != CLSOFTMAX_SUCCESS, "%s failing, yet SUCCESS", function);
        TEST_CHECK_AT(line, test_contains(clsoftmax_context_last_error(ctx), function),
                      "the error \"%s\" does not name %s", clsoftmax_context_last_error(ctx),
                      function);
        if (!after_enqueue(function))
            TEST_CHECK_AT(line, check_host_untouched(&f, why, sizeof why), "%s", why);
        TEST_CHECK_AT(line, clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_OPENCL,
                      "the backend changed without the policy");
        TEST_CHECK_AT(line, clsoftmax_context_fallback_reason(ctx)[0] == '\0',
                      "a fallback reason without the policy: %s",
                      clsoftmax_context_fallback_reason(ctx));
        /* Without the fault, the device works again. */
        clsoftmax__fault_cl_reset();
        st = clsoftmax_softmax_host(ctx, &f.desc, f.in, f.out);
        TEST_CHECK_AT(line, st == CLSOFTMAX_SUCCESS && check_host(&f, why, sizeof why),
                      "the next call: %s %s", clsoftmax_status_name(st), why);
    }
    clsoftmax__fault_cl_reset();
    free_tensors(&f);
}

static void test_fallback_build(void)
{
    snapshot base;
    snap(&base);
    clsoftmax_context* ctx = auto_context(1, 0);
    if (ctx != NULL)
        check_host_fallback(ctx, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE, 1, __LINE__);
    clsoftmax_context_free(ctx);
    ctx = auto_context(0, 0);
    if (ctx != NULL)
        check_host_fallback(ctx, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE, 0, __LINE__);
    clsoftmax_context_free(ctx);
    check_counts(&base, ALL_KINDS, 1, "build failures", __LINE__);
}

static void test_fallback_device_error(void)
{
    static const struct {
        const char* function;
        cl_int err;
    } faults[] = {
        {"clEnqueueNDRangeKernel", CL_OUT_OF_RESOURCES},
        {"clCreateBuffer", CL_MEM_OBJECT_ALLOCATION_FAILURE},
        {"clFinish", CL_DEVICE_NOT_AVAILABLE},
        {"clEnqueueMapBuffer", CL_INVALID_COMMAND_QUEUE},
    };
    snapshot base;
    snap(&base);
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; ++i) {
        for (int policy = 0; policy <= 1; ++policy) {
            clsoftmax_context* ctx = auto_context(policy, 0);
            if (ctx != NULL)
                check_host_fallback(ctx, faults[i].function, faults[i].err, policy, __LINE__);
            clsoftmax_context_free(ctx);
        }
    }
    check_counts(&base, ALL_KINDS, 1, "device errors", __LINE__);
}

/* The buffer entry point returns the error with the policy on, and the context stays OpenCL. */
static void test_fallback_not_for_buffers(void)
{
    static const op shape = {
        "buffer", CLSOFTMAX_BACKEND_AUTO, STRIDED, NULL, NULL, NULL, NULL, NULL,
        NULL,     CLSOFTMAX_FLOAT32,      0};
    snapshot base;
    snap(&base);
    fixture f;
    memset(&f, 0, sizeof f);
    f.op = &shape;
    char why[256] = "";
    cl_int err = CL_SUCCESS;
    f.ctx = auto_context(1, 0);
    if (f.ctx == NULL || !make_tensors(&f))
        goto cleanup;
    cl_context c = clsoftmax_context_cl_context(f.ctx);
    f.in_buf = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, f.bytes, f.in, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    f.out_buf =
        clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, f.bytes, f.sentinel, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    f.event = SENTINEL_EVENT;
    clsoftmax__fault_cl_every("clEnqueueNDRangeKernel", CL_OUT_OF_RESOURCES);
    clsoftmax_status st = clsoftmax_softmax_buffer(f.ctx, &f.desc, f.in_buf, 0, f.out_buf, 0, NULL,
                                                   0, NULL, &f.event);
    clsoftmax__fault_cl_reset();
    TEST_CHECK(st == CLSOFTMAX_OPENCL_ERROR, "injected enqueue failure: %s",
               clsoftmax_status_name(st));
    TEST_CHECK(test_contains(clsoftmax_context_last_error(f.ctx), "clEnqueueNDRangeKernel"),
               "error: %s", clsoftmax_context_last_error(f.ctx));
    TEST_CHECK(check_buffer_untouched(&f, why, sizeof why), "%s", why);
    TEST_CHECK(clsoftmax_context_backend(f.ctx) == CLSOFTMAX_BACKEND_OPENCL,
               "the buffer entry point fell back");
    st = clsoftmax_softmax_buffer(f.ctx, &f.desc, f.in_buf, 0, f.out_buf, 0, NULL, 0, NULL,
                                  &f.event);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS && check_buffer(&f, why, sizeof why), "next call: %s %s",
               clsoftmax_status_name(st), why);
cleanup:
    if (f.in_buf != NULL)
        clReleaseMemObject(f.in_buf);
    if (f.out_buf != NULL)
        clReleaseMemObject(f.out_buf);
    teardown_host(&f);
    check_counts(&base, ALL_KINDS, 1, "buffer entry point", __LINE__);
}

/* Only AUTO falls back: a context that asked for OpenCL gets its errors. */
static void test_fallback_only_auto(void)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = CLSOFTMAX_BACKEND_OPENCL;
    config.use_environment = 0;
    config.fallback_on_error = 1;
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL)
        check_host_fallback(ctx, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE, 0, __LINE__);
    clsoftmax_context_free(ctx);
}

/* Several threads on one context with the policy while the device fails every launch: every
   call succeeds with the right numbers, whichever thread meets the failure first. */
#define FALLBACK_THREADS 8
#define FALLBACK_CALLS 40

typedef struct fallback_worker {
    clsoftmax_context* ctx;
    unsigned failures;
    char first[256];
} fallback_worker;

static void* fallback_work(void* arg)
{
    fallback_worker* w = arg;
    static const op shape = {
        "threads", CLSOFTMAX_BACKEND_AUTO, ROW_LOCAL, NULL, NULL, NULL, NULL, NULL,
        NULL,      CLSOFTMAX_FLOAT32,      0};
    fixture f;
    memset(&f, 0, sizeof f);
    f.op = &shape;
    if (!make_tensors(&f)) {
        w->failures = 1;
        snprintf(w->first, sizeof w->first, "out of memory");
    }
    for (unsigned i = 0; w->failures == 0 && i < FALLBACK_CALLS; ++i) {
        char why[128] = "";
        clsoftmax_status st = clsoftmax_softmax_host(w->ctx, &f.desc, f.in, f.out);
        if (st != CLSOFTMAX_SUCCESS || !check_host(&f, why, sizeof why)) {
            w->failures++;
            snprintf(w->first, sizeof w->first, "call %u: %s %s", i, clsoftmax_status_name(st),
                     why);
        }
    }
    free_tensors(&f);
    return NULL;
}

static void test_fallback_threads(void)
{
    clsoftmax_context* ctx = auto_context(1, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    fallback_worker workers[FALLBACK_THREADS];
    pthread_t tids[FALLBACK_THREADS];
    int started[FALLBACK_THREADS];
    clsoftmax__fault_cl_every("clEnqueueNDRangeKernel", CL_OUT_OF_RESOURCES);
    for (int t = 0; t < FALLBACK_THREADS; ++t) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].ctx = ctx;
        started[t] = pthread_create(&tids[t], NULL, fallback_work, &workers[t]) == 0;
    }
    for (int t = 0; t < FALLBACK_THREADS; ++t) {
        if (started[t])
            pthread_join(tids[t], NULL);
        TEST_CHECK(started[t] && workers[t].failures == 0, "thread %d: %u failures, first: %s", t,
                   workers[t].failures, workers[t].first);
    }
    clsoftmax__fault_cl_reset();
    TEST_CHECK(clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_CPU, "no fallback happened");
    TEST_CHECK(test_contains(clsoftmax_context_fallback_reason(ctx), "clEnqueueNDRangeKernel"),
               "reason: %s", clsoftmax_context_fallback_reason(ctx));
    clsoftmax_context_free(ctx);
}

/* Sets or unsets name, returning a copy of its old value (or NULL) to restore. */
static char* swap_env(const char* name, const char* value)
{
    const char* old = getenv(name);
    char* saved = old != NULL ? strdup(old) : NULL;
    if (value != NULL)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return saved;
}

static void restore_env(const char* name, char* saved)
{
    if (saved != NULL)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

/* CLSOFTMAX_FALLBACK=1 turns the policy on, =0 off; other values are refused. */
static void test_fallback_environment(void)
{
    char* backend = swap_env("CLSOFTMAX_BACKEND", NULL);
    char* device = swap_env("CLSOFTMAX_DEVICE", NULL);
    char* fallback = swap_env("CLSOFTMAX_FALLBACK", "1");
    clsoftmax_context* ctx = auto_context(0, 1);
    if (ctx != NULL)
        check_host_fallback(ctx, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE, 1, __LINE__);
    clsoftmax_context_free(ctx);

    setenv("CLSOFTMAX_FALLBACK", "0", 1);
    ctx = auto_context(1, 1);
    if (ctx != NULL)
        check_host_fallback(ctx, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE, 0, __LINE__);
    clsoftmax_context_free(ctx);

    setenv("CLSOFTMAX_FALLBACK", "yes", 1);
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    ctx = NULL;
    TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_INVALID_ARGUMENT);
    TEST_CHECK(test_contains(clsoftmax_last_create_error(), "CLSOFTMAX_FALLBACK"), "error: %s",
               clsoftmax_last_create_error());
    restore_env("CLSOFTMAX_FALLBACK", fallback);
    restore_env("CLSOFTMAX_DEVICE", device);
    restore_env("CLSOFTMAX_BACKEND", backend);
}

/* A config from before fallback_on_error (the shorter struct_size) is accepted, the field
   beyond it never read; other sizes are refused. */
static void test_fallback_old_config(void)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.use_environment = 0;
    config.fallback_on_error = 1; /* past the old struct's end: must be ignored */
    config.struct_size = offsetof(clsoftmax_config, fallback_on_error);
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL)
        check_host_fallback(ctx, "clBuildProgram", CL_BUILD_PROGRAM_FAILURE, 0, __LINE__);
    clsoftmax_context_free(ctx);

    config.struct_size = sizeof config + sizeof(size_t);
    ctx = NULL;
    TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(ctx);
}

void test_register_faults(void)
{
    CU_pSuite cpu = CU_add_suite("faults_cpu", NULL, NULL);
    CU_add_test(cpu, "injector counts and names faults", test_injector);
    CU_add_test(cpu, "every allocation of every CPU operation failed in turn", test_sweep_cpu);
    CU_pSuite ocl = CU_add_suite("faults_opencl", NULL, NULL);
    CU_add_test(ocl, "every OpenCL call and allocation of every operation failed in turn",
                test_sweep_opencl);
    CU_pSuite fb = CU_add_suite("fallback_opencl", NULL, NULL);
    CU_add_test(fb, "a build failure: CPU with the policy, the error without", test_fallback_build);
    CU_add_test(fb, "device errors: CPU with the policy, the error without",
                test_fallback_device_error);
    CU_add_test(fb, "the buffer entry point returns the error", test_fallback_not_for_buffers);
    CU_add_test(fb, "only AUTO contexts fall back", test_fallback_only_auto);
    CU_add_test(fb, "8 threads meet the failure together", test_fallback_threads);
    CU_add_test(fb, "CLSOFTMAX_FALLBACK", test_fallback_environment);
    CU_add_test(fb, "a config without fallback_on_error is accepted", test_fallback_old_config);
}
