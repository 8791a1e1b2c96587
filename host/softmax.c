/* softmax.c - the public entry points: validate everything, then run on the context's backend. */
#include "internal.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

int clsoftmax__ranges_overlap(uintptr_t a, size_t a_len, uintptr_t b, size_t b_len)
{
    return a <= b ? b - a < a_len : a - b < b_len;
}

/* Records a validation failure under the lock (other threads may share ctx). */
clsoftmax_status clsoftmax__fail(clsoftmax_context* ctx, clsoftmax_status status, const char* msg)
{
    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error(ctx, status, "%s", msg);
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

void clsoftmax__succeed(clsoftmax_context* ctx)
{
    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    pthread_mutex_unlock(&ctx->lock);
}

clsoftmax_status clsoftmax__fail_not_opencl(clsoftmax_context* ctx)
{
    return clsoftmax__fail(ctx, CLSOFTMAX_UNSUPPORTED,
                           "the device-buffer entry point needs an OpenCL context; this one is "
                           "the CPU fallback");
}

clsoftmax_status clsoftmax__check_wait_list(cl_uint num_wait, const cl_event* wait_list,
                                            const char** why)
{
    if ((num_wait == 0) != (wait_list == NULL)) {
        *why = "wait_list must be NULL exactly when num_wait is 0";
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    for (cl_uint i = 0; i < num_wait; ++i)
        if (wait_list[i] == NULL) {
            *why = "wait_list holds a NULL event";
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
    return CLSOFTMAX_SUCCESS;
}

/* Checks that apply to every entry point; a failure is recorded in ctx. */
static clsoftmax_status validate_common(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                        clsoftmax__layout* layout)
{
    char msg[256];
    clsoftmax_status status = clsoftmax__validate_desc(desc, layout, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    if (ctx->backend == CLSOFTMAX_BACKEND_OPENCL && desc->dtype == CLSOFTMAX_FLOAT64 &&
        !ctx->caps.has_fp64) {
        snprintf(msg, sizeof msg, "float64 needs cl_khr_fp64, which %.180s does not support",
                 ctx->device_name);
        return clsoftmax__fail(ctx, CLSOFTMAX_UNSUPPORTED, msg);
    }
    return CLSOFTMAX_SUCCESS;
}

/* The data entry points' in and out (host pointers or cl_mem): neither may be NULL. */
static clsoftmax_status check_in_out(clsoftmax_context* ctx, const void* in, const void* out)
{
    if (in == NULL || out == NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               in == NULL ? "in is NULL" : "out is NULL");
    return CLSOFTMAX_SUCCESS;
}

/*
 * The CPU fallback on validated arguments. It fails only with NONFINITE_ROW (policy ERROR, out
 * untouched); with a report or policy ERROR the rows are counted before anything is written.
 */
static clsoftmax_status run_on_cpu(clsoftmax_context* ctx, const clsoftmax__layout* layout,
                                   clsoftmax_op op, double scale, const void* in, void* out)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    clsoftmax__cpu_job job = {
        .outer = layout->outer,
        .n = layout->n,
        .inner = layout->inner,
        .dtype = (int)layout->dtype,
        .log = op == CLSOFTMAX_OP_LOG_SOFTMAX,
        .scale = scale,
        .alpha = layout->alpha,
        .beta = layout->beta,
        .zero_bad = layout->nonfinite == CLSOFTMAX_NONFINITE_ZERO,
        .in = in,
        .out = out,
    };
    /* The parameter, when set, wins; read at each call so a change applies at once. */
    pthread_mutex_lock(&ctx->lock);
    size_t param = ctx->params[CLSOFTMAX_PARAM_CPU_THREADS];
    unsigned threads =
        param != 0 ? (param < UINT_MAX ? (unsigned)param : UINT_MAX) : ctx->cpu_threads;
    if (ctx->cpu_pool == NULL && threads > 1)
        ctx->cpu_pool = clsoftmax__cpu_pool_create(); /* NULL: run on this thread */
    clsoftmax__cpu_pool* pool = ctx->cpu_pool;
    pthread_mutex_unlock(&ctx->lock);
    if (CLSOFTMAX__COUNTS_ROWS(layout)) {
        size_t bad = 0, first = SIZE_MAX;
        clsoftmax__cpu_check_rows(&job, threads, pool, &bad, &first);
        pthread_mutex_lock(&ctx->lock);
        status = clsoftmax__rows_checked(ctx, layout, bad, first);
        pthread_mutex_unlock(&ctx->lock);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
    }
    clsoftmax__cpu_softmax(&job, threads, pool);
    clsoftmax__succeed(ctx);
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax_softmax_host(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                        const void* in, void* out)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    clsoftmax__layout layout;
    clsoftmax_status status = validate_common(ctx, desc, &layout);
    if (status == CLSOFTMAX_SUCCESS)
        status = check_in_out(ctx, in, out);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    /* A tensor that would run past the end of the address space cannot be the caller's. */
    if ((uintptr_t)in > UINTPTR_MAX - layout.bytes || (uintptr_t)out > UINTPTR_MAX - layout.bytes)
        return clsoftmax__fail(ctx, CLSOFTMAX_SIZE_OVERFLOW,
                               "in or out plus the tensor's byte count wraps the address space");
    if (in != out &&
        clsoftmax__ranges_overlap((uintptr_t)in, layout.bytes, (uintptr_t)out, layout.bytes))
        return clsoftmax__fail(ctx, CLSOFTMAX_OVERLAP,
                               "in and out overlap without being the same pointer");
    if (in == out && layout.beta != 0)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               "beta != 0 blends with out's old values, so out cannot be in "
                               "(in place)");

    if (ctx->backend == CLSOFTMAX_BACKEND_CPU || clsoftmax__fell_back(ctx))
        return run_on_cpu(ctx, &layout, desc->op, desc->scale, in, out);

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    int out_touched = 0;
    /* The device path counts into a report of its own, the caller's filled only when the call
       ends in SUCCESS or NONFINITE_ROW: a failure after the count leaves *report untouched. */
    clsoftmax_row_report* report = layout.report;
    clsoftmax_row_report counted = {0, SIZE_MAX};
    if (report != NULL)
        layout.report = &counted;
    status = clsoftmax__host_run(ctx, desc, &layout, in, out, &out_touched);
    layout.report = report;
    if (report != NULL && (status == CLSOFTMAX_SUCCESS || status == CLSOFTMAX_NONFINITE_ROW))
        *report = counted;
    /* Recomputing on the CPU is sound unless the device already overwrote an in-place input. */
    int fall_back = status != CLSOFTMAX_SUCCESS && !(in == out && out_touched) &&
                    clsoftmax__fallback_take(ctx, status);
    pthread_mutex_unlock(&ctx->lock);
    if (fall_back)
        return run_on_cpu(ctx, &layout, desc->op, desc->scale, in, out);
    return status;
}

clsoftmax_status clsoftmax__check_buffer(clsoftmax_context* ctx, cl_mem buf, const char* name,
                                         size_t offset, size_t count, size_t esz)
{
    size_t size = 0;
    cl_context owner = NULL;
    if (buf == NULL)
        return clsoftmax__error(ctx, CLSOFTMAX_INVALID_ARGUMENT, "%s is NULL", name);
    cl_int err = clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(buf, CL_MEM_CONTEXT, sizeof owner, &owner, NULL);
    /* Only CL_INVALID_MEM_OBJECT is the caller's error; anything else is the driver's. */
    if (err == CL_INVALID_MEM_OBJECT)
        return clsoftmax__error_cl(ctx, CLSOFTMAX_INVALID_ARGUMENT, "clGetMemObjectInfo", err,
                                   "%s is not a valid buffer", name);
    if (err != CL_SUCCESS)
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clGetMemObjectInfo", err,
                                   "querying %s", name);
    if (owner != ctx->cl_ctx)
        return clsoftmax__error(ctx, CLSOFTMAX_INVALID_CONTEXT, "%s belongs to another cl_context",
                                name);
    /* offset + count elements, each step checked: offsets come from the caller. */
    if (offset > SIZE_MAX - count || offset + count > SIZE_MAX / esz)
        return clsoftmax__error(ctx, CLSOFTMAX_SIZE_OVERFLOW,
                                "%s_offset %zu + %zu elements overflows size_t in bytes", name,
                                offset, count);
    const size_t need = (offset + count) * esz;
    if (need > size)
        return clsoftmax__error(ctx, CLSOFTMAX_BUFFER_TOO_SMALL,
                                "%s holds %zu bytes; offset %zu + %zu elements need %zu", name,
                                size, offset, count, need);
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax__check_queue(clsoftmax_context* ctx, cl_command_queue queue)
{
    cl_context queue_ctx = NULL;
    cl_device_id queue_dev = NULL;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof queue_ctx, &queue_ctx, NULL);
    if (err == CL_SUCCESS)
        err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof queue_dev, &queue_dev, NULL);
    if (err == CL_INVALID_COMMAND_QUEUE)
        return clsoftmax__error_cl(ctx, CLSOFTMAX_INVALID_QUEUE, "clGetCommandQueueInfo", err,
                                   "queue is not a valid command queue");
    if (err != CL_SUCCESS)
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clGetCommandQueueInfo",
                                   err, "querying the queue");
    if (queue_ctx != ctx->cl_ctx || queue_dev != ctx->device)
        return clsoftmax__error(ctx, CLSOFTMAX_INVALID_QUEUE,
                                "queue belongs to another cl_context or device than the "
                                "context's (%s)",
                                ctx->device_name);
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax__pick_queue(clsoftmax_context* ctx, cl_command_queue* queue)
{
    if (*queue == NULL) {
        *queue = ctx->queue;
        return CLSOFTMAX_SUCCESS;
    }
    return clsoftmax__check_queue(ctx, *queue);
}

clsoftmax_status clsoftmax_softmax_buffer(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                          cl_mem in, size_t in_offset, cl_mem out,
                                          size_t out_offset, cl_command_queue queue,
                                          cl_uint num_wait, const cl_event* wait_list,
                                          cl_event* event)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    if (ctx->backend != CLSOFTMAX_BACKEND_OPENCL)
        return clsoftmax__fail_not_opencl(ctx);
    clsoftmax__layout layout;
    clsoftmax_status status = validate_common(ctx, desc, &layout);
    if (status == CLSOFTMAX_SUCCESS)
        status = check_in_out(ctx, in, out);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    const char* why = NULL;
    if (clsoftmax__check_wait_list(num_wait, wait_list, &why) != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT, why);

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    status = clsoftmax__pick_queue(ctx, &queue);
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__check_buffer(ctx, in, "in", in_offset, layout.count, layout.elem_size);
    if (status == CLSOFTMAX_SUCCESS)
        status =
            clsoftmax__check_buffer(ctx, out, "out", out_offset, layout.count, layout.elem_size);
    if (status == CLSOFTMAX_SUCCESS && in == out && in_offset != out_offset &&
        clsoftmax__ranges_overlap(in_offset, layout.count, out_offset, layout.count))
        status = clsoftmax__error(ctx, CLSOFTMAX_OVERLAP,
                                  "in and out are one buffer with overlapping ranges "
                                  "(offsets %zu and %zu, %zu elements)",
                                  in_offset, out_offset, layout.count);
    if (status == CLSOFTMAX_SUCCESS && in == out && in_offset == out_offset && layout.beta != 0)
        status = clsoftmax__error(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                                  "beta != 0 blends with out's old values, so out cannot be in "
                                  "(the same buffer and offset: in place)");
    /* As the host path: the caller's report is filled once the call cannot fail any more. */
    clsoftmax_row_report* report = layout.report;
    clsoftmax_row_report counted = {0, SIZE_MAX};
    if (report != NULL)
        layout.report = &counted;
    /*
     * A report or policy ERROR: the check kernel runs after the wait list and this call waits
     * for it (the header says so), so that ERROR can return before anything writes out. The
     * softmax is then enqueued after the same wait list, complete by now.
     */
    if (status == CLSOFTMAX_SUCCESS && CLSOFTMAX__COUNTS_ROWS(&layout)) {
        size_t bad = 0, first = SIZE_MAX;
        status = clsoftmax__check_rows(ctx, desc, &layout, in, in_offset, 0, queue, num_wait,
                                       wait_list, &bad, &first);
        if (status == CLSOFTMAX_SUCCESS)
            status = clsoftmax__rows_checked(ctx, &layout, bad, first);
    }
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__launch(ctx, desc, &layout, in, in_offset, out, out_offset, queue,
                                   num_wait, wait_list, event);
    if (report != NULL && (status == CLSOFTMAX_SUCCESS || status == CLSOFTMAX_NONFINITE_ROW))
        *report = counted;
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

clsoftmax_status clsoftmax_prepare(clsoftmax_context* ctx, const clsoftmax_desc* desc)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    clsoftmax__layout layout;
    clsoftmax_status status = validate_common(ctx, desc, &layout);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (ctx->backend == CLSOFTMAX_BACKEND_CPU) {
        clsoftmax__succeed(ctx); /* nothing to compile */
        return CLSOFTMAX_SUCCESS;
    }
    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    status = clsoftmax__host_prepare(ctx, desc, &layout);
    pthread_mutex_unlock(&ctx->lock);
    return status;
}
