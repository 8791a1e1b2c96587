/* cross_entropy.c - fused softmax cross-entropy: validation, the CPU path, OpenCL launches.
 *
 * On OpenCL a call is up to three kernels (kernels/cross_entropy.cl) chained by events:
 * xent_prepare (the MEAN divisor and the weights' sum), xent_rows (a work-group per row: loss
 * and gradient) and, for SUM and MEAN, xent_reduce (the row losses added in a fixed order).
 * The divisor and row losses live in ctx->xent's grow-only scratch for SUM and MEAN; a NONE
 * call takes a two-element buffer of its own, so NONE calls on different queues never share.
 * The host entry point wraps the caller's arrays on devices sharing host memory and copies
 * through device buffers otherwise; the CPU backend is cpu/cpu_cross_entropy.c.
 */
#include "internal.h"

#include "cpu/cpu_cross_entropy.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { XENT_K_PREPARE = 0, XENT_K_ROWS = 1, XENT_K_REDUCE = 2, XENT_K_COUNT = 3 };

/* The kernels' flags (kernels/cross_entropy.cl says the same). */
enum { XENT_PROBS = 1, XENT_W = 2, XENT_GRAD = 4, XENT_RED = 8, XENT_MEAN = 16 };

/* The kernels' __local arrays hold this many REALs (-DXENT_WG_MAX). */
#define XENT_WG_MAX 256
/*
 * Work-items per group on CPU devices: PoCL runs a group's items as a loop split at every
 * barrier, so narrow groups cost less per reduction (as ops.c measured for the head).
 */
#define XENT_LOCAL_MAX_CPU 32
/* Work-groups per xent_rows launch; the kernel loops over the remaining rows. */
#define XENT_GROUPS_MAX ((size_t)1 << 16)

static const char* const xent_sources[] = {"common.cl", "cross_entropy.cl"};
static const char* const xent_kernel_names[XENT_K_COUNT] = {"xent_prepare", "xent_rows",
                                                            "xent_reduce"};

void clsoftmax_cross_entropy_desc_init(clsoftmax_cross_entropy_desc* desc, clsoftmax_dtype dtype,
                                       size_t rows, size_t classes)
{
    if (desc == NULL)
        return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->dtype = dtype;
    desc->rows = rows;
    desc->classes = classes;
    desc->labels = CLSOFTMAX_LABELS_INDEX;
    desc->ignore_index = -100;
    desc->label_smoothing = 0.0;
    desc->reduction = CLSOFTMAX_REDUCTION_MEAN;
}

/* ---- validation (no device) ---------------------------------------------------------------- */

/* Element counts and bytes of the call's arrays. */
typedef struct xent_sizes {
    size_t esz;          /* bytes per element of dtype */
    size_t logits;       /* rows * classes elements (grad and PROBS labels the same) */
    size_t labels;       /* elements of labels: rows (INDEX) or rows * classes (PROBS) */
    size_t label_esz;    /* sizeof(cl_long) or esz */
    size_t loss;         /* rows (NONE) or 1 */
    size_t compute_size; /* bytes per REAL of the kernels: 8 for FLOAT64, else 4 */
} xent_sizes;

static clsoftmax_status validate_xent(const clsoftmax_cross_entropy_desc* desc, xent_sizes* sz,
                                      char* msg, size_t msg_size)
{
    if (desc == NULL || desc->struct_size != sizeof *desc) {
        snprintf(msg, msg_size, "%s",
                 desc == NULL ? "desc is NULL"
                              : "desc->struct_size is not sizeof(clsoftmax_cross_entropy_desc): "
                                "initialise it with clsoftmax_cross_entropy_desc_init()");
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    sz->esz = clsoftmax_dtype_size(desc->dtype);
    if (sz->esz == 0) {
        snprintf(msg, msg_size, "unknown dtype %d", (int)desc->dtype);
        return CLSOFTMAX_INVALID_DTYPE;
    }
    if (desc->rows == 0 || desc->classes == 0) {
        snprintf(msg, msg_size, "rows (%zu) and classes (%zu) must be positive", desc->rows,
                 desc->classes);
        return CLSOFTMAX_INVALID_SHAPE;
    }
    if (desc->labels != CLSOFTMAX_LABELS_INDEX && desc->labels != CLSOFTMAX_LABELS_PROBS) {
        snprintf(msg, msg_size, "unknown labels kind %d", (int)desc->labels);
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    if (desc->reduction != CLSOFTMAX_REDUCTION_NONE && desc->reduction != CLSOFTMAX_REDUCTION_SUM &&
        desc->reduction != CLSOFTMAX_REDUCTION_MEAN) {
        snprintf(msg, msg_size, "unknown reduction %d", (int)desc->reduction);
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    /* the negated test catches NaN too */
    if (!(desc->label_smoothing >= 0.0 && desc->label_smoothing <= 1.0)) {
        snprintf(msg, msg_size, "label_smoothing %g is not in [0, 1]", desc->label_smoothing);
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    const int probs = desc->labels == CLSOFTMAX_LABELS_PROBS;
    if (desc->classes > SIZE_MAX / desc->rows || desc->rows * desc->classes > SIZE_MAX / sz->esz ||
        desc->rows > SIZE_MAX / sizeof(cl_long) - 2) {
        snprintf(msg, msg_size, "rows * classes (%zu x %zu) overflows size_t in bytes", desc->rows,
                 desc->classes);
        return CLSOFTMAX_SIZE_OVERFLOW;
    }
    sz->logits = desc->rows * desc->classes;
    sz->labels = probs ? sz->logits : desc->rows;
    sz->label_esz = probs ? sz->esz : sizeof(cl_long);
    sz->loss = desc->reduction == CLSOFTMAX_REDUCTION_NONE ? desc->rows : 1;
    sz->compute_size = desc->dtype == CLSOFTMAX_FLOAT64 ? sizeof(double) : sizeof(float);
    return CLSOFTMAX_SUCCESS;
}

/* float64 on an OpenCL device without cl_khr_fp64; recorded in ctx. */
static clsoftmax_status check_backend(clsoftmax_context* ctx, clsoftmax_dtype dtype)
{
    if (ctx->backend == CLSOFTMAX_BACKEND_OPENCL && dtype == CLSOFTMAX_FLOAT64 &&
        !ctx->caps.has_fp64) {
        char msg[256];
        snprintf(msg, sizeof msg, "float64 needs cl_khr_fp64, which %.180s does not support",
                 ctx->device_name);
        return clsoftmax__fail(ctx, CLSOFTMAX_UNSUPPORTED, msg);
    }
    return CLSOFTMAX_SUCCESS;
}

/* [a, a + a_len) and [b, b + b_len) share a byte; NULL ranges share nothing. */
static int ranges_overlap(uintptr_t a, size_t a_len, uintptr_t b, size_t b_len)
{
    if (a == 0 || b == 0)
        return 0;
    return a <= b ? b - a < a_len : a - b < b_len;
}

/* ---- the CPU path ----------------------------------------------------------------------- */

/* The CPU backend on validated arguments. Returns SUCCESS or OUT_OF_MEMORY, recorded. */
static clsoftmax_status run_on_cpu(clsoftmax_context* ctx, const clsoftmax_cross_entropy_desc* desc,
                                   const void* logits, const void* labels, const void* weights,
                                   void* loss, void* grad)
{
    const clsoftmax__cpu_xent_job job = {
        .dtype = (int)desc->dtype,
        .rows = desc->rows,
        .classes = desc->classes,
        .probs = desc->labels == CLSOFTMAX_LABELS_PROBS,
        .ignore_index = (int64_t)desc->ignore_index,
        .label_smoothing = desc->label_smoothing,
        .reduction = (int)desc->reduction,
        .logits = logits,
        .labels = labels,
        .weights = weights,
        .loss = loss,
        .grad = grad,
    };
    /* The parameter, when set, wins; read at each call so a change applies at once (softmax.c
       does the same). */
    pthread_mutex_lock(&ctx->lock);
    size_t param = ctx->params[CLSOFTMAX_PARAM_CPU_THREADS];
    unsigned threads =
        param != 0 ? (param < UINT_MAX ? (unsigned)param : UINT_MAX) : ctx->cpu_threads;
    if (ctx->cpu_pool == NULL && threads > 1)
        ctx->cpu_pool = clsoftmax__cpu_pool_create(); /* NULL: run on this thread */
    clsoftmax__cpu_pool* pool = ctx->cpu_pool;
    pthread_mutex_unlock(&ctx->lock);
    if (clsoftmax__cpu_cross_entropy(&job, threads, pool) != 0)
        return clsoftmax__fail(ctx, CLSOFTMAX_OUT_OF_MEMORY,
                               "no host memory for the cross-entropy's row scratch");
    clsoftmax__succeed(ctx);
    return CLSOFTMAX_SUCCESS;
}

/* ---- OpenCL: programs, scratch, launches --------------------------------------------------- */

/* The kernel id for dtype, building the dtype's program on first use. Holds lock. */
static clsoftmax_status xent_kernel(clsoftmax_context* ctx, int id, clsoftmax_dtype dtype,
                                    cl_kernel* kernel, size_t* max_wg)
{
    static const clsoftmax__aux_program prog = {sizeof xent_sources / sizeof xent_sources[0],
                                                xent_sources, XENT_K_COUNT, xent_kernel_names,
                                                "cross-entropy"};
    char options[256];
    /* CPU devices run one work-item's loop at a time: contiguous slices of float8 vectors
       (8 floats fill an AVX2 register, as for the softmax kernels) */
    const int cpu = (ctx->caps.type & CL_DEVICE_TYPE_CPU) != 0;
    snprintf(options, sizeof options,
             "-cl-std=CL1.2 -w %s -DXENT_WG_MAX=%d -DXENT_CONTIG=%d -DCLSOFTMAX_VW=%d",
             clsoftmax__dtype_options(dtype), XENT_WG_MAX, cpu, cpu ? 8 : 1);
    return clsoftmax__aux_kernel_get(ctx, &ctx->xent, dtype, &prog, options, (size_t)id, kernel,
                                     max_wg);
}

/* The context's scratch, grown (never shrunk) to at least bytes. Holds lock. */
static clsoftmax_status xent_scratch(clsoftmax_context* ctx, size_t bytes)
{
    if (ctx->xent.scratch != NULL && ctx->xent.scratch_bytes >= bytes)
        return CLSOFTMAX_SUCCESS;
    RETURN_ERROR_IF(ctx, bytes > ctx->caps.max_mem_alloc_size, CLSOFTMAX_UNSUPPORTED,
                    "the cross-entropy's %zu-byte scratch exceeds %s's "
                    "CL_DEVICE_MAX_MEM_ALLOC_SIZE",
                    bytes, ctx->device_name);
    return clsoftmax__scratch_reserve(ctx, &ctx->xent.scratch, &ctx->xent.scratch_bytes, bytes,
                                      "the cross-entropy");
}

/* Work-items for a group covering `work` elements: a power of two within the kernel's limit. */
static size_t local_size(const clsoftmax_context* ctx, size_t kernel_wg, size_t work)
{
    const size_t cap =
        (ctx->caps.type & CL_DEVICE_TYPE_CPU) ? XENT_LOCAL_MAX_CPU : (size_t)XENT_WG_MAX;
    size_t l = 1;
    while (l * 2 <= cap && l * 2 <= kernel_wg && l < work)
        l *= 2;
    return l;
}

/* The call's buffers (cl_mem and element offsets), already checked. */
typedef struct xent_bufs {
    cl_mem logits, labels, weights, loss, grad;
    size_t logits_off, labels_off, weights_off, loss_off, grad_off;
} xent_bufs;

/* Sets a REAL kernel argument in the kernels' compute precision. */
static cl_int set_real(cl_kernel k, cl_uint index, clsoftmax_dtype dtype, double v)
{
    if (dtype == CLSOFTMAX_FLOAT64)
        return clSetKernelArg(k, index, sizeof(cl_double), &v);
    cl_float f = (cl_float)v;
    return clSetKernelArg(k, index, sizeof f, &f);
}

#define SET_ARG(k, i, v) CHECK_CL(ctx, clSetKernelArg((k), (i), sizeof(v), &(v)), cleanup)

/*
 * Enqueues the validated call on queue after wait_list; *event (when not NULL) completes with
 * the last kernel. Every kernel is fetched (built) before anything is enqueued, so a build
 * failure leaves the outputs alone; *enqueued (when not NULL) is set to 1 just before the kernel
 * that writes grad is enqueued. Every argument is set before that, so the one failure that can
 * follow it is the enqueue of xent_reduce (SUM, MEAN), which leaves grad written (by the rows
 * kernel, already on the queue) and loss untouched. Holds lock.
 */
static clsoftmax_status xent_enqueue(clsoftmax_context* ctx,
                                     const clsoftmax_cross_entropy_desc* desc, const xent_sizes* sz,
                                     const xent_bufs* b, cl_command_queue queue, cl_uint num_wait,
                                     const cl_event* wait_list, cl_event* event, int* enqueued)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const clsoftmax_dtype dt = desc->dtype;
    const int reduce = desc->reduction != CLSOFTMAX_REDUCTION_NONE;
    cl_kernel kp = NULL, kr = NULL, kd = NULL;
    size_t wp = 0, wr = 0, wd = 0;
    cl_mem scratch = NULL, own = NULL;
    cl_event ev[3] = {NULL, NULL, NULL};
    const cl_mem none = NULL;

    status = xent_kernel(ctx, XENT_K_PREPARE, dt, &kp, &wp);
    if (status == CLSOFTMAX_SUCCESS)
        status = xent_kernel(ctx, XENT_K_ROWS, dt, &kr, &wr);
    if (status == CLSOFTMAX_SUCCESS)
        status = xent_kernel(ctx, XENT_K_REDUCE, dt, &kd, &wd);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (reduce) {
        status = xent_scratch(ctx, (2 + desc->rows) * sz->compute_size);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        scratch = ctx->xent.scratch;
    } else {
        cl_int err = CL_SUCCESS;
        own = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, 2 * sz->compute_size, NULL, &err);
        if (err != CL_SUCCESS)
            return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                       "the cross-entropy's divisor");
        scratch = own;
    }

    const int probs = desc->labels == CLSOFTMAX_LABELS_PROBS;
    const cl_int flags = (probs ? XENT_PROBS : 0) | (b->weights != NULL ? XENT_W : 0) |
                         (b->grad != NULL ? XENT_GRAD : 0) | (reduce ? XENT_RED : 0) |
                         (desc->reduction == CLSOFTMAX_REDUCTION_MEAN ? XENT_MEAN : 0);
    const cl_ulong rows = desc->rows, classes = desc->classes;
    const cl_ulong logits_off = b->logits_off, labels_off = b->labels_off;
    const cl_ulong weights_off = b->weights_off, loss_off = b->loss_off, grad_off = b->grad_off;
    const cl_long ignore = (cl_long)desc->ignore_index;
    const cl_mem idx = probs ? NULL : b->labels;
    const cl_mem q = probs ? b->labels : NULL;

    /* xent_prepare */
    SET_ARG(kp, 0, idx);
    SET_ARG(kp, 1, labels_off);
    SET_ARG(kp, 2, b->weights);
    SET_ARG(kp, 3, weights_off);
    SET_ARG(kp, 4, scratch);
    SET_ARG(kp, 5, rows);
    SET_ARG(kp, 6, classes);
    SET_ARG(kp, 7, ignore);
    SET_ARG(kp, 8, flags);
    size_t lp = local_size(ctx, wp, desc->rows > desc->classes ? desc->rows : desc->classes);
    CHECK_CL(ctx, clEnqueueNDRangeKernel(queue, kp, 1, NULL, &lp, &lp, num_wait, wait_list, &ev[0]),
             cleanup);

    /* xent_rows */
    SET_ARG(kr, 0, b->logits);
    SET_ARG(kr, 1, logits_off);
    SET_ARG(kr, 2, idx);
    SET_ARG(kr, 3, q);
    SET_ARG(kr, 4, labels_off);
    SET_ARG(kr, 5, b->weights);
    SET_ARG(kr, 6, weights_off);
    const cl_mem row_loss_out = reduce ? none : b->loss;
    SET_ARG(kr, 7, row_loss_out);
    SET_ARG(kr, 8, loss_off);
    SET_ARG(kr, 9, b->grad);
    SET_ARG(kr, 10, grad_off);
    SET_ARG(kr, 11, scratch);
    SET_ARG(kr, 12, rows);
    SET_ARG(kr, 13, classes);
    SET_ARG(kr, 14, ignore);
    {
        cl_int err = set_real(kr, 15, dt, desc->label_smoothing);
        if (err != CL_SUCCESS) {
            status = clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clSetKernelArg", err,
                                         "in %s", __func__);
            goto cleanup;
        }
    }
    SET_ARG(kr, 16, flags);
    /* A CPU device has its parallelism in the groups: one item per row once rows are many. */
    size_t lr = (ctx->caps.type & CL_DEVICE_TYPE_CPU) &&
                        desc->rows >= 4 * (size_t)(ctx->caps.compute_units + 1)
                    ? 1
                    : local_size(ctx, wr, desc->classes);
    size_t groups = desc->rows < XENT_GROUPS_MAX ? desc->rows : XENT_GROUPS_MAX;
    size_t gr = groups * lr;
    /* xent_reduce's arguments before xent_rows goes: once that writes grad, only the last
       enqueue can still fail. */
    size_t ld = 0;
    if (reduce) {
        ld = local_size(ctx, wd, desc->rows);
        SET_ARG(kd, 0, scratch);
        SET_ARG(kd, 1, rows);
        SET_ARG(kd, 2, b->loss);
        SET_ARG(kd, 3, loss_off);
        SET_ARG(kd, 4, flags);
    }
    if (enqueued != NULL)
        *enqueued = 1;
    CHECK_CL(ctx, clEnqueueNDRangeKernel(queue, kr, 1, NULL, &gr, &lr, 1, &ev[0], &ev[1]), cleanup);
    if (reduce)
        CHECK_CL(ctx, clEnqueueNDRangeKernel(queue, kd, 1, NULL, &ld, &ld, 1, &ev[1], &ev[2]),
                 cleanup);
    if (event != NULL) {
        cl_event* last = &ev[reduce ? 2 : 1];
        *event = *last;
        *last = NULL;
    }
cleanup:
    for (size_t i = 0; i < 3; i++)
        if (ev[i] != NULL)
            clReleaseEvent(ev[i]);
    if (own != NULL)
        clReleaseMemObject(own);
    return status;
}

/* ---- host memory through the device ----------------------------------------------------- */

/* A buffer of bytes with flags over host (NULL: uninitialised). Holds lock. */
static clsoftmax_status make_buffer(clsoftmax_context* ctx, cl_mem_flags flags, size_t bytes,
                                    const void* host, const char* name, cl_mem* buf)
{
    cl_int err = CL_SUCCESS;
    RETURN_ERROR_IF(ctx, bytes > ctx->caps.max_mem_alloc_size, CLSOFTMAX_UNSUPPORTED,
                    "%s's %zu bytes exceed %s's CL_DEVICE_MAX_MEM_ALLOC_SIZE", name, bytes,
                    ctx->device_name);
    /* inputs are wrapped READ_ONLY: the driver never writes them back, so the cast is safe */
    cl_mem m = clCreateBuffer(ctx->cl_ctx, flags, bytes, (void*)host, &err);
    if (err != CL_SUCCESS)
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                   "%zu bytes for %s", bytes, name);
    *buf = m;
    return CLSOFTMAX_SUCCESS;
}

/* p is aligned to its elements (the kernels' loads assume it). */
static int aligned(const void* p, size_t esz) { return p == NULL || (uintptr_t)p % esz == 0; }

/*
 * The host call on the device. On devices sharing host memory (PoCL, integrated GPUs) the
 * caller's arrays are wrapped with CL_MEM_USE_HOST_PTR, as host_path.c does for the softmax: the
 * kernels read the inputs and write the gradient where they lie (in place: one buffer for both).
 * Otherwise (or with CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES set) the inputs are copied in and the
 * outputs read back after every kernel finished.
 * *touched is set once the gradient kernel is enqueued on the caller's memory, or a read-back
 * started: after a failure from there on, outputs (and in-place logits) may be partly written.
 * Holds lock.
 */
static clsoftmax_status host_on_device(clsoftmax_context* ctx,
                                       const clsoftmax_cross_entropy_desc* desc,
                                       const xent_sizes* sz, const void* logits, const void* labels,
                                       const void* weights, void* loss, void* grad, int* touched)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    xent_bufs b = {0};
    cl_int err = CL_SUCCESS;
    const size_t lb = sz->logits * sz->esz;
    const size_t ob = sz->loss * sz->esz;
    /* a set STREAM_CHUNK_BYTES asks for copies through device buffers, as in host_path.c */
    const int zero_copy = ctx->caps.host_unified_memory &&
                          ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES] == 0 &&
                          aligned(logits, sz->esz) && aligned(labels, sz->label_esz) &&
                          aligned(weights, sz->esz) && aligned(grad, sz->esz);
    const int in_place = grad == logits;
    const cl_mem_flags in_flags = zero_copy ? CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR
                                            : CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR;

    if (zero_copy && in_place)
        status = make_buffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, lb, grad, "logits",
                             &b.logits);
    else
        status = make_buffer(ctx, in_flags, lb, logits, "logits", &b.logits);
    if (status == CLSOFTMAX_SUCCESS)
        status =
            make_buffer(ctx, in_flags, sz->labels * sz->label_esz, labels, "labels", &b.labels);
    if (status == CLSOFTMAX_SUCCESS && weights != NULL)
        status =
            make_buffer(ctx, in_flags, desc->classes * sz->esz, weights, "weights", &b.weights);
    if (status == CLSOFTMAX_SUCCESS)
        status = make_buffer(ctx, CL_MEM_READ_WRITE, ob, NULL, "loss", &b.loss);
    if (status == CLSOFTMAX_SUCCESS && grad != NULL && !(zero_copy && in_place))
        status = make_buffer(
            ctx, zero_copy ? CL_MEM_WRITE_ONLY | CL_MEM_USE_HOST_PTR : CL_MEM_READ_WRITE, lb,
            zero_copy ? grad : NULL, "grad", &b.grad);
    if (status != CLSOFTMAX_SUCCESS)
        goto cleanup;
    if (zero_copy && in_place) {
        b.grad = b.logits;
        clRetainMemObject(b.grad); /* released with the others below */
    }
    int enqueued = 0;
    status = xent_enqueue(ctx, desc, sz, &b, ctx->queue, 0, NULL, NULL, &enqueued);
    if (zero_copy && enqueued && grad != NULL)
        *touched = 1; /* the kernel writes the caller's memory directly */
    /* Finish before reading so that a failed command never reaches the outputs. */
    if (status == CLSOFTMAX_SUCCESS)
        CHECK_CL(ctx, clFinish(ctx->queue), cleanup);
    if (status != CLSOFTMAX_SUCCESS)
        goto cleanup;
    *touched = 1;
    CHECK_CL(ctx, clEnqueueReadBuffer(ctx->queue, b.loss, CL_TRUE, 0, ob, loss, 0, NULL, NULL),
             cleanup);
    if (grad != NULL && zero_copy) {
        /* mapping synchronises a driver's shadow copy (if any) into the caller's memory */
        void* mapped = clEnqueueMapBuffer(ctx->queue, b.grad, CL_TRUE, CL_MAP_READ, 0, lb, 0, NULL,
                                          NULL, &err);
        if (err != CL_SUCCESS) {
            status = clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clEnqueueMapBuffer",
                                         err, "reading the gradient into host memory");
            goto cleanup;
        }
        CHECK_CL(ctx, clEnqueueUnmapMemObject(ctx->queue, b.grad, mapped, 0, NULL, NULL), cleanup);
        CHECK_CL(ctx, clFinish(ctx->queue), cleanup);
    } else if (grad != NULL) {
        CHECK_CL(ctx, clEnqueueReadBuffer(ctx->queue, b.grad, CL_TRUE, 0, lb, grad, 0, NULL, NULL),
                 cleanup);
    }
cleanup:
    if (status != CLSOFTMAX_SUCCESS)
        clFinish(ctx->queue); /* nothing may still use the buffers (or the caller's memory) */
    const cl_mem all[] = {b.logits, b.labels, b.weights, b.loss, b.grad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] != NULL)
            clReleaseMemObject(all[i]);
    return status;
}

/* ---- public entry points ----------------------------------------------------------------- */

clsoftmax_status clsoftmax_cross_entropy_host(clsoftmax_context* ctx,
                                              const clsoftmax_cross_entropy_desc* desc,
                                              const void* logits, const void* labels,
                                              const void* weights, void* loss, void* grad)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    char msg[256];
    xent_sizes sz;
    clsoftmax_status status = validate_xent(desc, &sz, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    status = check_backend(ctx, desc->dtype);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (logits == NULL || labels == NULL || loss == NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               logits == NULL   ? "logits is NULL"
                               : labels == NULL ? "labels is NULL"
                                                : "loss is NULL");
    const size_t lb = sz.logits * sz.esz, qb = sz.labels * sz.label_esz;
    const size_t wb = desc->classes * sz.esz, ob = sz.loss * sz.esz;
    const uintptr_t L = (uintptr_t)logits, Q = (uintptr_t)labels, W = (uintptr_t)weights;
    const uintptr_t O = (uintptr_t)loss, G = (uintptr_t)grad;
    /* An array that would run past the end of the address space cannot be the caller's. */
    if (L > UINTPTR_MAX - lb || Q > UINTPTR_MAX - qb || W > UINTPTR_MAX - wb ||
        O > UINTPTR_MAX - ob || G > UINTPTR_MAX - lb)
        return clsoftmax__fail(ctx, CLSOFTMAX_SIZE_OVERFLOW,
                               "an array plus its byte count wraps the address space");
    if (ranges_overlap(O, ob, L, lb) || ranges_overlap(O, ob, Q, qb) ||
        ranges_overlap(O, ob, W, wb) || ranges_overlap(O, ob, G, lb) ||
        (G != L && ranges_overlap(G, lb, L, lb)) || ranges_overlap(G, lb, Q, qb) ||
        ranges_overlap(G, lb, W, wb))
        return clsoftmax__fail(ctx, CLSOFTMAX_OVERLAP,
                               "an output overlaps an input or the other output (grad may only "
                               "be identical to logits)");
    if (desc->labels == CLSOFTMAX_LABELS_INDEX) {
        const cl_long* y = labels;
        for (size_t r = 0; r < desc->rows; r++)
            if (y[r] != (cl_long)desc->ignore_index &&
                (y[r] < 0 || (cl_ulong)y[r] >= desc->classes)) {
                snprintf(msg, sizeof msg,
                         "labels[%zu] = %lld is neither ignore_index (%lld) nor a class in "
                         "[0, %zu)",
                         r, (long long)y[r], desc->ignore_index, desc->classes);
                return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT, msg);
            }
    }

    if (ctx->backend == CLSOFTMAX_BACKEND_CPU || clsoftmax__fell_back(ctx))
        return run_on_cpu(ctx, desc, logits, labels, weights, loss, grad);

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    int touched = 0;
    status = host_on_device(ctx, desc, &sz, logits, labels, weights, loss, grad, &touched);
    /* Recomputing on the CPU is sound unless a read-back already overwrote in-place logits. */
    int fall_back = status != CLSOFTMAX_SUCCESS && !(grad == logits && touched) &&
                    clsoftmax__fallback_take(ctx, status);
    pthread_mutex_unlock(&ctx->lock);
    if (fall_back)
        return run_on_cpu(ctx, desc, logits, labels, weights, loss, grad);
    return status;
}

/* One buffer argument in bytes, for the overlap rules. */
typedef struct xent_span {
    cl_mem buf;
    size_t off, len;
} xent_span;

/* Two spans of one buffer share a byte (offsets checked against overflow already). */
static int spans_overlap(xent_span a, xent_span b)
{
    return a.buf != NULL && a.buf == b.buf &&
           (a.off <= b.off ? b.off - a.off < a.len : a.off - b.off < b.len);
}

clsoftmax_status clsoftmax_cross_entropy_buffer(
    clsoftmax_context* ctx, const clsoftmax_cross_entropy_desc* desc, cl_mem logits,
    size_t logits_offset, cl_mem labels, size_t labels_offset, cl_mem weights,
    size_t weights_offset, cl_mem loss, size_t loss_offset, cl_mem grad, size_t grad_offset,
    cl_command_queue queue, cl_uint num_wait, const cl_event* wait_list, cl_event* event)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    if (ctx->backend != CLSOFTMAX_BACKEND_OPENCL)
        return clsoftmax__fail_not_opencl(ctx);
    char msg[256];
    xent_sizes sz;
    clsoftmax_status status = validate_xent(desc, &sz, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    status = check_backend(ctx, desc->dtype);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (logits == NULL || labels == NULL || loss == NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               logits == NULL   ? "logits is NULL"
                               : labels == NULL ? "labels is NULL"
                                                : "loss is NULL");
    const char* why = NULL;
    if (clsoftmax__check_wait_list(num_wait, wait_list, &why) != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT, why);

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    status = clsoftmax__pick_queue(ctx, &queue);
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__check_buffer(ctx, logits, "logits", logits_offset, sz.logits, sz.esz);
    if (status == CLSOFTMAX_SUCCESS)
        status =
            clsoftmax__check_buffer(ctx, labels, "labels", labels_offset, sz.labels, sz.label_esz);
    if (status == CLSOFTMAX_SUCCESS && weights != NULL)
        status =
            clsoftmax__check_buffer(ctx, weights, "weights", weights_offset, desc->classes, sz.esz);
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__check_buffer(ctx, loss, "loss", loss_offset, sz.loss, sz.esz);
    if (status == CLSOFTMAX_SUCCESS && grad != NULL)
        status = clsoftmax__check_buffer(ctx, grad, "grad", grad_offset, sz.logits, sz.esz);
    if (status == CLSOFTMAX_SUCCESS) {
        /* byte spans: the checks above bound every offset + extent in bytes */
        const xent_span l = {logits, logits_offset * sz.esz, sz.logits * sz.esz};
        const xent_span q = {labels, labels_offset * sz.label_esz, sz.labels * sz.label_esz};
        const xent_span w = {weights, weights_offset * sz.esz, desc->classes * sz.esz};
        const xent_span o = {loss, loss_offset * sz.esz, sz.loss * sz.esz};
        const xent_span g = {grad, grad_offset * sz.esz, sz.logits * sz.esz};
        const int g_in_place = grad == logits && grad_offset == logits_offset;
        if (spans_overlap(o, l) || spans_overlap(o, q) || spans_overlap(o, w) ||
            spans_overlap(o, g) || (!g_in_place && spans_overlap(g, l)) || spans_overlap(g, q) ||
            spans_overlap(g, w))
            status = clsoftmax__error(ctx, CLSOFTMAX_OVERLAP,
                                      "an output overlaps an input or the other output (grad "
                                      "may only be identical to logits, same offset)");
    }
    if (status == CLSOFTMAX_SUCCESS) {
        const xent_bufs b = {.logits = logits,
                             .labels = labels,
                             .weights = weights,
                             .loss = loss,
                             .grad = grad,
                             .logits_off = logits_offset,
                             .labels_off = labels_offset,
                             .weights_off = weights_offset,
                             .loss_off = loss_offset,
                             .grad_off = grad_offset};
        status = xent_enqueue(ctx, desc, &sz, &b, queue, num_wait, wait_list, event, NULL);
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}
