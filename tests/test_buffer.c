/* test_buffer.c - suite "buffer": device buffers, events, queues, borrowed contexts. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_suites.h"
#include "test_util.h"

/* One library context per suite, plus a queue of the test's own on its cl_context. */
static clsoftmax_context* g_ctx;
static cl_context g_cl;
static cl_device_id g_dev;
static cl_command_queue g_queue;

static int init_buffer(void)
{
    g_ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    if (g_ctx == NULL)
        return 1;
    g_cl = clsoftmax_context_cl_context(g_ctx);
    g_dev = clsoftmax_context_cl_device(g_ctx);
    cl_int err = CL_SUCCESS;
    g_queue = clCreateCommandQueue(g_cl, g_dev, 0, &err);
    return err != CL_SUCCESS;
}

static int cleanup_buffer(void)
{
    if (g_queue != NULL)
        clReleaseCommandQueue(g_queue);
    g_queue = NULL;
    clsoftmax_context_free(g_ctx);
    g_ctx = NULL;
    return 0;
}

/* A library that blocks on an incomplete wait list would hang the suite; fail it instead. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_buffer: timed out (the call blocked on its wait list?)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static void arm_watchdog(unsigned seconds)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

static cl_mem make_buffer(cl_context cl, size_t bytes, const void* init)
{
    cl_int err = CL_SUCCESS;
    cl_mem buf =
        clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, (void*)init, &err);
    TEST_CHECK(err == CL_SUCCESS, "clCreateBuffer(%zu bytes) failed with %d", bytes, (int)err);
    return buf;
}

static void read_buffer(cl_mem buf, size_t bytes, void* host)
{
    cl_int err = clEnqueueReadBuffer(g_queue, buf, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
    TEST_CHECK(err == CL_SUCCESS, "clEnqueueReadBuffer failed with %d", (int)err);
}

/*
 * Runs the buffer entry point without a wait list, expecting success (reported at the
 * caller's line as `what`), then waits for and releases its output event.
 */
static void run_buffer_ok(clsoftmax_context* ctx, const clsoftmax_desc* desc, cl_mem in,
                          size_t in_off, cl_mem out, size_t out_off, cl_command_queue queue,
                          const char* what, unsigned line)
{
    cl_event ev = NULL;
    test_status_impl(
        clsoftmax_softmax_buffer(ctx, desc, in, in_off, out, out_off, queue, 0, NULL, &ev),
        CLSOFTMAX_SUCCESS, what, __FILE__, line);
    if (ev != NULL) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
    }
}

static cl_int event_status(cl_event ev)
{
    cl_int st = -12345;
    clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st, NULL);
    return st;
}

/* How each case feeds the operation its dependency. */
enum wait_mode { WAIT_NONE, WAIT_WRITE_EVENT, WAIT_USER_EVENT, WAIT_MARKER };

/*
 * Puts a random tensor at in_off of a buffer with `pad` finite elements
 * around it, runs the buffer entry point into out_off of another buffer (or
 * the same buffer and offset for in place), waits on the output event, and
 * checks the result, every byte outside the output range, and the input.
 */
static void check_buffer_case(clsoftmax_dtype dtype, clsoftmax_op op, size_t ndim,
                              const size_t* dims, int axis, size_t in_off, size_t out_off,
                              int in_place, cl_command_queue queue, enum wait_mode wait)
{
    if (dtype == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(g_ctx))
        return;
    const size_t pad = 5;
    const size_t count = test_count(ndim, dims);
    const size_t es = test_dtype_size(dtype);
    const size_t in_elems = in_off + count + pad;
    const size_t out_elems = in_place ? in_elems : out_off + count + pad;
    if (in_place)
        out_off = in_off;
    char what[160];
    snprintf(what, sizeof what, "buffer %s op %d ndim %zu axis %d in_off %zu out_off %zu%s wait %d",
             dtype == CLSOFTMAX_FLOAT64 ? "f64" : "f32", (int)op, ndim, axis, in_off, out_off,
             in_place ? " in place" : "", (int)wait);

    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, ndim, dims, axis);
    desc.op = op;
    desc.scale = op == CLSOFTMAX_OP_LOG_SOFTMAX ? -1.5 : 1.0;

    unsigned char* host_in = malloc(in_elems * es);
    unsigned char* host_out = malloc(out_elems * es);
    unsigned char* got = malloc(out_elems * es);
    unsigned char* got_in = malloc(in_elems * es);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(host_in && host_out && got && got_in && ref);
    test_fill(host_in, dtype, in_elems, -9.0, 9.0, 31u * count + in_off);
    test_fill_sentinel(host_out, out_elems * es);
    test_reference(&desc, host_in + in_off * es, ref);

    /* Where a write is waited for, the buffer starts as garbage: skipping the wait shows. */
    unsigned char* garbage = malloc(in_elems * es);
    CU_ASSERT_FATAL(garbage != NULL);
    test_fill_sentinel(garbage, in_elems * es);
    cl_mem in = make_buffer(g_cl, in_elems * es, wait == WAIT_WRITE_EVENT ? garbage : host_in);
    free(garbage);
    cl_mem out = in_place ? in : make_buffer(g_cl, out_elems * es, host_out);
    if (in_place)
        memcpy(host_out, host_in, in_elems * es);

    cl_event waits[2] = {NULL, NULL};
    cl_uint num_wait = 0;
    cl_int err = CL_SUCCESS;
    cl_command_queue q = queue != NULL ? queue : clsoftmax_context_cl_queue(g_ctx);
    if (wait == WAIT_WRITE_EVENT) {
        /* Rewrite the input asynchronously on the other queue; the softmax must wait for it. */
        cl_command_queue wq = q == g_queue ? clsoftmax_context_cl_queue(g_ctx) : g_queue;
        err = clEnqueueWriteBuffer(wq, in, CL_FALSE, 0, in_elems * es, host_in, 0, NULL,
                                   &waits[num_wait++]);
        clFlush(wq);
        TEST_CHECK(err == CL_SUCCESS, "clEnqueueWriteBuffer: %d", (int)err);
    } else if (wait == WAIT_USER_EVENT) {
        waits[num_wait++] = clCreateUserEvent(g_cl, &err);
        TEST_CHECK(err == CL_SUCCESS, "clCreateUserEvent: %d", (int)err);
    } else if (wait == WAIT_MARKER) {
        /* A marker on the test's queue, plus a user event: two entries in the list. */
        err = clEnqueueMarkerWithWaitList(g_queue, 0, NULL, &waits[num_wait++]);
        TEST_CHECK(err == CL_SUCCESS, "clEnqueueMarkerWithWaitList: %d", (int)err);
        waits[num_wait++] = clCreateUserEvent(g_cl, &err);
        TEST_CHECK(err == CL_SUCCESS, "clCreateUserEvent: %d", (int)err);
    }

    arm_watchdog(120);
    cl_event done = NULL;
    clsoftmax_status st = clsoftmax_softmax_buffer(g_ctx, &desc, in, in_off, out, out_off, queue,
                                                   num_wait, num_wait ? waits : NULL, &done);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", what, clsoftmax_status_name(st),
               clsoftmax_context_last_error(g_ctx));
    TEST_CHECK(st != CLSOFTMAX_SUCCESS || done != NULL, "%s: no output event", what);
    if (wait == WAIT_USER_EVENT || wait == WAIT_MARKER) {
        /* The command may not have run while a user event it waits for is incomplete. */
        if (done != NULL)
            TEST_CHECK(event_status(done) != CL_COMPLETE, "%s: completed before its wait list",
                       what);
        clSetUserEventStatus(waits[num_wait - 1], CL_COMPLETE);
    }
    if (done != NULL) {
        err = clWaitForEvents(1, &done);
        TEST_CHECK(err == CL_SUCCESS, "%s: clWaitForEvents: %d", what, (int)err);
        TEST_CHECK(event_status(done) == CL_COMPLETE, "%s: event status %d after wait", what,
                   (int)event_status(done));
        cl_command_queue evq = NULL;
        clGetEventInfo(done, CL_EVENT_COMMAND_QUEUE, sizeof evq, &evq, NULL);
        TEST_CHECK(evq == q, "%s: event on another queue than the one given", what);
        clReleaseEvent(done);
    }
    alarm(0);
    for (cl_uint i = 0; i < num_wait; ++i)
        clReleaseEvent(waits[i]);

    read_buffer(out, out_elems * es, got);
    if (st == CLSOFTMAX_SUCCESS)
        TEST_COMPARE_DTYPE(got + out_off * es, dtype, ref, count, what);
    TEST_CHECK(memcmp(got, host_out, out_off * es) == 0, "%s: wrote before out_offset", what);
    TEST_CHECK(memcmp(got + (out_off + count) * es, host_out + (out_off + count) * es,
                      (out_elems - out_off - count) * es) == 0,
               "%s: wrote past out_offset + count", what);
    if (!in_place) {
        read_buffer(in, in_elems * es, got_in);
        TEST_CHECK(memcmp(got_in, host_in, in_elems * es) == 0, "%s: input buffer modified", what);
    }
    if (!in_place)
        clReleaseMemObject(out);
    clReleaseMemObject(in);
    free(ref);
    free(got_in);
    free(got);
    free(host_out);
    free(host_in);
}

static void test_offsets(void)
{
    const size_t row[2] = {5, 257};
    const size_t mid[3] = {3, 33, 4};
    const size_t first[2] = {31, 6};
    const size_t offs[][2] = {{0, 0}, {1, 0}, {0, 3}, {7, 13}, {1000, 1}};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; ++i) {
        for (int dt = 0; dt < 2; ++dt) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            check_buffer_case(dtype, CLSOFTMAX_OP_SOFTMAX, 2, row, -1, offs[i][0], offs[i][1], 0,
                              g_queue, WAIT_NONE);
            check_buffer_case(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 3, mid, 1, offs[i][0], offs[i][1], 0,
                              g_queue, WAIT_NONE);
            check_buffer_case(dtype, CLSOFTMAX_OP_SOFTMAX, 2, first, 0, offs[i][0], offs[i][1], 0,
                              g_queue, WAIT_NONE);
        }
    }
}

static void test_offsets_long_row(void)
{
    /* A row past local memory takes the multipass kernel: its offsets are tested too. */
    cl_ulong local = 0;
    clGetDeviceInfo(g_dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
    size_t n = (size_t)local / sizeof(float) + 3;
    if (n > ((size_t)1 << 22))
        n = (size_t)1 << 22;
    const size_t dims[2] = {2, n};
    check_buffer_case(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 2, dims, 1, 3, 11, 0, g_queue,
                      WAIT_NONE);
    check_buffer_case(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_LOG_SOFTMAX, 2, dims, 1, 5, 5, 1, g_queue,
                      WAIT_NONE);
}

static void test_wait_lists(void)
{
    const size_t dims[3] = {4, 100, 3};
    check_buffer_case(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 3, dims, 1, 2, 9, 0, g_queue,
                      WAIT_WRITE_EVENT);
    check_buffer_case(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_SOFTMAX, 3, dims, -1, 2, 9, 0, g_queue,
                      WAIT_USER_EVENT);
    check_buffer_case(CLSOFTMAX_FLOAT64, CLSOFTMAX_OP_LOG_SOFTMAX, 3, dims, 0, 4, 0, 0, g_queue,
                      WAIT_MARKER);
    /* The context's own queue (queue NULL), with a user event. */
    check_buffer_case(CLSOFTMAX_FLOAT32, CLSOFTMAX_OP_LOG_SOFTMAX, 3, dims, 2, 1, 1, 0, NULL,
                      WAIT_USER_EVENT);
}

static void test_in_place(void)
{
    const size_t row[2] = {6, 1000};
    const size_t mid[3] = {2, 65, 7};
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        check_buffer_case(dtype, CLSOFTMAX_OP_SOFTMAX, 2, row, -1, 0, 0, 1, g_queue, WAIT_NONE);
        check_buffer_case(dtype, CLSOFTMAX_OP_LOG_SOFTMAX, 2, row, -1, 17, 17, 1, g_queue,
                          WAIT_WRITE_EVENT);
        check_buffer_case(dtype, CLSOFTMAX_OP_SOFTMAX, 3, mid, 1, 3, 3, 1, NULL, WAIT_NONE);
    }
}

static void test_no_event(void)
{
    /* event NULL is allowed: the caller then finishes the queue. */
    const size_t dims[2] = {3, 50};
    float host[150], out_host[150];
    test_fill(host, CLSOFTMAX_FLOAT32, 150, -3.0, 3.0, 4);
    long double ref[150];
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    test_reference(&desc, host, ref);
    cl_mem in = make_buffer(g_cl, sizeof host, host);
    cl_mem out = make_buffer(g_cl, sizeof host, host);
    TEST_STATUS(clsoftmax_softmax_buffer(g_ctx, &desc, in, 0, out, 0, g_queue, 0, NULL, NULL),
                CLSOFTMAX_SUCCESS);
    clFinish(g_queue);
    read_buffer(out, sizeof out_host, out_host);
    TEST_COMPARE_DTYPE(out_host, CLSOFTMAX_FLOAT32, ref, 150, "buffer without event");
    clReleaseMemObject(in);
    clReleaseMemObject(out);
}

/* ---- errors ------------------------------------------------------------- */

/* A recognisable non-NULL value that the library must leave in *event on error. */
#define EVENT_SENTINEL ((cl_event)(uintptr_t)0x5eed)

static void expect_buffer_error(clsoftmax_context* ctx, const clsoftmax_desc* desc, cl_mem in,
                                size_t in_off, cl_mem out, size_t out_off, cl_command_queue queue,
                                cl_uint num_wait, const cl_event* waits, clsoftmax_status want,
                                const char* mention, const char* what)
{
    /* Snapshot the output buffer, if any, to prove nothing ran. */
    size_t bytes = 0;
    unsigned char* before = NULL;
    if (out != NULL &&
        clGetMemObjectInfo(out, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) == CL_SUCCESS) {
        before = malloc(bytes);
        CU_ASSERT_FATAL(before != NULL);
        read_buffer(out, bytes, before);
    }
    cl_event ev = EVENT_SENTINEL;
    clsoftmax_status st =
        clsoftmax_softmax_buffer(ctx, desc, in, in_off, out, out_off, queue, num_wait, waits, &ev);
    const char* err = clsoftmax_context_last_error(ctx);
    TEST_CHECK(st == want, "%s: got %s, expected %s (%s)", what, clsoftmax_status_name(st),
               clsoftmax_status_name(want), err);
    TEST_CHECK(ev == EVENT_SENTINEL, "%s: *event written on error", what);
    TEST_CHECK(err != NULL && err[0] != '\0', "%s: empty last error", what);
    TEST_CHECK(test_contains(err, mention), "%s: last error \"%s\" does not mention \"%s\"", what,
               err, mention);
    if (before != NULL) {
        /* Anything enqueued would have run by now on either queue. */
        clFinish(clsoftmax_context_cl_queue(g_ctx));
        clFinish(g_queue);
        unsigned char* after = malloc(bytes);
        CU_ASSERT_FATAL(after != NULL);
        read_buffer(out, bytes, after);
        TEST_CHECK(memcmp(before, after, bytes) == 0, "%s: output buffer changed", what);
        free(after);
        free(before);
    }
}

static void test_errors(void)
{
    const size_t dims[2] = {4, 6};
    const size_t count = 24;
    float host[64];
    test_fill(host, CLSOFTMAX_FLOAT32, 64, -2.0, 2.0, 77);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);

    cl_mem exact = make_buffer(g_cl, count * sizeof(float), host); /* exactly the tensor */
    cl_mem big = make_buffer(g_cl, 40 * sizeof(float), host);
    cl_mem out = make_buffer(g_cl, 40 * sizeof(float), host + 1);

    /* Exactly large enough succeeds: the limit is offset + count, not more. */
    run_buffer_ok(g_ctx, &desc, exact, 0, big, 16, g_queue, "exactly large enough", __LINE__);

    expect_buffer_error(g_ctx, &desc, exact, 1, out, 0, g_queue, 0, NULL,
                        CLSOFTMAX_BUFFER_TOO_SMALL, "in", "in offset past the end");
    expect_buffer_error(g_ctx, &desc, big, 0, out, 17, g_queue, 0, NULL, CLSOFTMAX_BUFFER_TOO_SMALL,
                        "out", "out offset past the end");
    cl_mem small = make_buffer(g_cl, (count - 1) * sizeof(float), host);
    expect_buffer_error(g_ctx, &desc, small, 0, out, 0, g_queue, 0, NULL,
                        CLSOFTMAX_BUFFER_TOO_SMALL, "in", "in one element short");
    expect_buffer_error(g_ctx, &desc, big, 0, small, 0, g_queue, 0, NULL,
                        CLSOFTMAX_BUFFER_TOO_SMALL, "out", "out one element short");
    /* float64 needs twice the bytes: the float32-sized buffer is too small. */
    if (clsoftmax_context_supports_float64(g_ctx)) {
        clsoftmax_desc d64 = desc;
        d64.dtype = CLSOFTMAX_FLOAT64;
        expect_buffer_error(g_ctx, &d64, big, 0, out, 0, g_queue, 0, NULL,
                            CLSOFTMAX_BUFFER_TOO_SMALL, "bytes", "float64 in float32 buffers");
    }
    /* An offset so large that offset + count overflows must not wrap around to "fits". */
    {
        cl_event e = EVENT_SENTINEL;
        clsoftmax_status st =
            clsoftmax_softmax_buffer(g_ctx, &desc, big, SIZE_MAX - 3, out, 0, g_queue, 0, NULL, &e);
        TEST_CHECK(st == CLSOFTMAX_SIZE_OVERFLOW, "offset SIZE_MAX - 3: got %s",
                   clsoftmax_status_name(st));
        CU_ASSERT(e == EVENT_SENTINEL);
    }

    expect_buffer_error(g_ctx, &desc, NULL, 0, out, 0, g_queue, 0, NULL, CLSOFTMAX_INVALID_ARGUMENT,
                        "in", "NULL in");
    expect_buffer_error(g_ctx, &desc, big, 0, NULL, 0, g_queue, 0, NULL, CLSOFTMAX_INVALID_ARGUMENT,
                        "out", "NULL out");
    expect_buffer_error(g_ctx, NULL, big, 0, out, 0, g_queue, 0, NULL, CLSOFTMAX_INVALID_ARGUMENT,
                        "desc", "NULL desc");
    {
        cl_event e = EVENT_SENTINEL;
        TEST_STATUS(clsoftmax_softmax_buffer(NULL, &desc, big, 0, out, 0, g_queue, 0, NULL, &e),
                    CLSOFTMAX_INVALID_ARGUMENT);
        CU_ASSERT(e == EVENT_SENTINEL);
    }
    /* A wait list that disagrees with its count. */
    expect_buffer_error(g_ctx, &desc, big, 0, out, 0, g_queue, 1, NULL, CLSOFTMAX_INVALID_ARGUMENT,
                        "wait", "num_wait 1, NULL list");

    /* Descriptor errors through this entry point too. */
    clsoftmax_desc bad = desc;
    bad.axis = 2;
    expect_buffer_error(g_ctx, &bad, big, 0, out, 0, g_queue, 0, NULL, CLSOFTMAX_INVALID_AXIS,
                        "axis", "axis 2");
    bad = desc;
    bad.scale = NAN;
    expect_buffer_error(g_ctx, &bad, big, 0, out, 0, g_queue, 0, NULL, CLSOFTMAX_INVALID_SCALE,
                        "scale", "NaN scale");
    bad = desc;
    bad.dims[0] = 0;
    expect_buffer_error(g_ctx, &bad, big, 0, out, 0, g_queue, 0, NULL, CLSOFTMAX_INVALID_SHAPE,
                        "dims", "zero extent");
    bad = desc;
    bad.dtype = (clsoftmax_dtype)7;
    expect_buffer_error(g_ctx, &bad, big, 0, out, 0, g_queue, 0, NULL, CLSOFTMAX_INVALID_DTYPE,
                        "dtype", "dtype 7");

    /* Overlapping ranges in one buffer; identical ranges are in place and fine. */
    expect_buffer_error(g_ctx, &desc, big, 0, big, 5, g_queue, 0, NULL, CLSOFTMAX_OVERLAP,
                        "overlap", "out 5 elements after in");
    expect_buffer_error(g_ctx, &desc, big, 16, big, 0, g_queue, 0, NULL, CLSOFTMAX_OVERLAP,
                        "overlap", "out 16 elements before in");
    cl_mem whole = make_buffer(g_cl, 2 * count * sizeof(float), host);
    run_buffer_ok(g_ctx, &desc, whole, 0, whole, count, g_queue, "adjacent, not overlapping",
                  __LINE__);

    /* A queue and a buffer of another cl_context on the same device. */
    cl_int err = CL_SUCCESS;
    cl_context other = clCreateContext(NULL, 1, &g_dev, NULL, NULL, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_command_queue other_q = clCreateCommandQueue(other, g_dev, 0, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    expect_buffer_error(g_ctx, &desc, big, 0, out, 0, other_q, 0, NULL, CLSOFTMAX_INVALID_QUEUE,
                        "queue", "queue of another context");
    cl_mem foreign = make_buffer(other, 40 * sizeof(float), host);
    {
        cl_event e = EVENT_SENTINEL;
        clsoftmax_status st =
            clsoftmax_softmax_buffer(g_ctx, &desc, foreign, 0, out, 0, g_queue, 0, NULL, &e);
        TEST_CHECK(st == CLSOFTMAX_INVALID_CONTEXT, "buffer of another context: got %s",
                   clsoftmax_status_name(st));
        CU_ASSERT(e == EVENT_SENTINEL);
    }
    clReleaseMemObject(foreign);
    clReleaseCommandQueue(other_q);
    clReleaseContext(other);

    /* The CPU backend has no buffers to work on. */
    clsoftmax_context* cpu = test_context_create(CLSOFTMAX_BACKEND_CPU);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cpu);
    expect_buffer_error(cpu, &desc, big, 0, out, 0, g_queue, 0, NULL, CLSOFTMAX_UNSUPPORTED,
                        "OpenCL", "CPU backend");
    clsoftmax_context_free(cpu);

    /* An error followed by a success clears the last error. */
    run_buffer_ok(g_ctx, &desc, big, 0, out, 0, g_queue, "success after an error", __LINE__);
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_last_error(g_ctx), "");

    clReleaseMemObject(whole);
    clReleaseMemObject(small);
    clReleaseMemObject(exact);
    clReleaseMemObject(big);
    clReleaseMemObject(out);
}

/* ---- borrowed contexts -------------------------------------------------- */

static cl_uint ref_count_context(cl_context c)
{
    cl_uint n = 0;
    clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof n, &n, NULL);
    return n;
}

/*
 * The context's reference count once it has come back to `expected`, or what it is after 2 s.
 * Drivers may drop a released queue's hold on its context from a worker thread a moment
 * later (PoCL does), so an exact count right after clsoftmax_context_free can be stale; a
 * leaked reference never comes back.
 */
static cl_uint settled_ref_count_context(cl_context c, cl_uint expected)
{
    cl_uint n = ref_count_context(c);
    for (int i = 0; i < 200 && n != expected; ++i) {
        const struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        n = ref_count_context(c);
    }
    return n;
}

static cl_uint ref_count_queue(cl_command_queue q)
{
    cl_uint n = 0;
    clGetCommandQueueInfo(q, CL_QUEUE_REFERENCE_COUNT, sizeof n, &n, NULL);
    return n;
}

/* The same for a queue: PoCL's finished commands also drop their hold on it asynchronously. */
static cl_uint settled_ref_count_queue(cl_command_queue q, cl_uint expected)
{
    cl_uint n = ref_count_queue(q);
    for (int i = 0; i < 200 && n != expected; ++i) {
        const struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        n = ref_count_queue(q);
    }
    return n;
}

/* Runs a small softmax through ctx on both entry points, buffers on the caller's cl_context. */
static void check_borrowed_works(clsoftmax_context* ctx, cl_context cl, cl_command_queue q)
{
    const size_t dims[2] = {3, 40};
    float host[120], got[120];
    long double ref[120];
    test_fill(host, CLSOFTMAX_FLOAT32, 120, -4.0, 4.0, 12);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 0);
    test_reference(&desc, host, ref);
    TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, host, got), CLSOFTMAX_SUCCESS);
    TEST_COMPARE_DTYPE(got, CLSOFTMAX_FLOAT32, ref, 120, "borrowed host");

    cl_int err = CL_SUCCESS;
    cl_mem buf =
        clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    run_buffer_ok(ctx, &desc, buf, 0, buf, 0, q, "borrowed buffer in place", __LINE__);
    memset(got, 0, sizeof got);
    clEnqueueReadBuffer(clsoftmax_context_cl_queue(ctx), buf, CL_TRUE, 0, sizeof got, got, 0, NULL,
                        NULL);
    TEST_COMPARE_DTYPE(got, CLSOFTMAX_FLOAT32, ref, 120, "borrowed buffer in place");
    clReleaseMemObject(buf);
}

static void test_borrowed(void)
{
    cl_int err = CL_SUCCESS;
    cl_context cl = clCreateContext(NULL, 1, &g_dev, NULL, NULL, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_command_queue q = clCreateCommandQueue(cl, g_dev, 0, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    const cl_uint ctx_refs = ref_count_context(cl);
    const cl_uint q_refs = ref_count_queue(q);

    /* With the caller's queue: the library uses it and retains, never owns, it. */
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(clsoftmax_context_create_borrowed(cl, g_dev, q, &ctx), CLSOFTMAX_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_EQUAL(clsoftmax_context_backend(ctx), CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT(clsoftmax_context_cl_context(ctx) == cl);
    CU_ASSERT(clsoftmax_context_cl_device(ctx) == g_dev);
    CU_ASSERT(clsoftmax_context_cl_queue(ctx) == q);
    CU_ASSERT(clsoftmax_context_device_name(ctx)[0] != '\0');
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_fallback_reason(ctx), "");
    TEST_CHECK(ref_count_context(cl) > ctx_refs, "borrowed cl_context not retained (%u -> %u)",
               ctx_refs, ref_count_context(cl));
    TEST_CHECK(ref_count_queue(q) > q_refs, "borrowed queue not retained (%u -> %u)", q_refs,
               ref_count_queue(q));
    check_borrowed_works(ctx, cl, NULL);
    check_borrowed_works(ctx, cl, q);
    clsoftmax_context_free(ctx);
    TEST_CHECK(settled_ref_count_context(cl, ctx_refs) == ctx_refs,
               "cl_context references %u after free, was %u", ref_count_context(cl), ctx_refs);
    TEST_CHECK(settled_ref_count_queue(q, q_refs) == q_refs,
               "queue references %u after free, was %u", ref_count_queue(q), q_refs);

    /* The caller's objects still work. */
    float x[4] = {1, 2, 3, 4}, y[4] = {0};
    cl_mem buf = clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof x, x, &err);
    CU_ASSERT_EQUAL(err, CL_SUCCESS);
    CU_ASSERT_EQUAL(clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof y, y, 0, NULL, NULL),
                    CL_SUCCESS);
    CU_ASSERT(memcmp(x, y, sizeof x) == 0);
    clReleaseMemObject(buf);

    /* With a NULL queue: the library makes its own on the caller's context and device. */
    ctx = NULL;
    TEST_STATUS(clsoftmax_context_create_borrowed(cl, g_dev, NULL, &ctx), CLSOFTMAX_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    cl_command_queue own = clsoftmax_context_cl_queue(ctx);
    CU_ASSERT_PTR_NOT_NULL(own);
    CU_ASSERT(own != q);
    if (own != NULL) {
        cl_context qc = NULL;
        cl_device_id qd = NULL;
        clGetCommandQueueInfo(own, CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL);
        clGetCommandQueueInfo(own, CL_QUEUE_DEVICE, sizeof qd, &qd, NULL);
        CU_ASSERT(qc == cl && qd == g_dev);
    }
    check_borrowed_works(ctx, cl, NULL);
    check_borrowed_works(ctx, cl, q); /* the caller's queue is on the same context: accepted */
    clsoftmax_context_free(ctx);
    TEST_CHECK(settled_ref_count_context(cl, ctx_refs) == ctx_refs,
               "cl_context references %u after free, was %u", ref_count_context(cl), ctx_refs);
    CU_ASSERT_EQUAL(clFinish(q), CL_SUCCESS);

    /* Errors: NULL objects, a queue of another context. */
    ctx = (clsoftmax_context*)&err; /* must be reset to NULL on failure */
    TEST_STATUS(clsoftmax_context_create_borrowed(NULL, g_dev, NULL, &ctx),
                CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT(clsoftmax_last_create_error()[0] != '\0');
    TEST_STATUS(clsoftmax_context_create_borrowed(cl, NULL, NULL, &ctx),
                CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(ctx);
    TEST_STATUS(clsoftmax_context_create_borrowed(cl, g_dev, NULL, NULL),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_context_create_borrowed(cl, g_dev, g_queue, &ctx),
                CLSOFTMAX_INVALID_QUEUE);
    CU_ASSERT_PTR_NULL(ctx);
    TEST_CHECK(test_contains(clsoftmax_last_create_error(), "queue"),
               "borrowed with a foreign queue: \"%s\"", clsoftmax_last_create_error());
    TEST_CHECK(settled_ref_count_context(cl, ctx_refs) == ctx_refs,
               "failed borrows leaked references: %u, was %u", ref_count_context(cl), ctx_refs);

    clReleaseCommandQueue(q);
    clReleaseContext(cl);
}

void test_register_buffer(void)
{
    CU_pSuite suite = CU_add_suite("buffer", init_buffer, cleanup_buffer);
    if (suite == NULL)
        return;
    CU_add_test(suite, "offsets", test_offsets);
    CU_add_test(suite, "offsets on a multipass row", test_offsets_long_row);
    CU_add_test(suite, "wait lists and output events", test_wait_lists);
    CU_add_test(suite, "in place", test_in_place);
    CU_add_test(suite, "no output event", test_no_event);
    CU_add_test(suite, "errors", test_errors);
    CU_add_test(suite, "borrowed contexts", test_borrowed);
}
