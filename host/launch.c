/* launch.c - from a validated layout to an enqueued kernel: plan, arguments, NDRange, events. */
#include "internal.h"

#include <stdlib.h>

/* The kernel that carries out each strategy (ROW_SPLIT: its first kernel). */
static clsoftmax__kernel_id kernel_for(clsoftmax__strategy strategy)
{
    switch (strategy) {
    case CLSOFTMAX__ROW_LOCAL:
        return CLSOFTMAX__K_ROW_LOCAL;
    case CLSOFTMAX__ROW_MULTIPASS:
        return CLSOFTMAX__K_ROW_MULTIPASS;
    case CLSOFTMAX__ROW_PRIVATE:
        return CLSOFTMAX__K_ROW_PRIVATE;
    case CLSOFTMAX__ROW_ITEM:
        return CLSOFTMAX__K_ROW_ITEM;
    case CLSOFTMAX__ROW_SPLIT:
        return CLSOFTMAX__K_SPLIT_PARTIAL;
    case CLSOFTMAX__STRIDED_ITEM:
        return CLSOFTMAX__K_STRIDED_ITEM;
    case CLSOFTMAX__STRIDED:
    default:
        return CLSOFTMAX__K_STRIDED;
    }
}

/* Grows the context's ROW_SPLIT scratch buffer to at least bytes (never shrinks it). */
static clsoftmax_status scratch_reserve(clsoftmax_context* ctx, size_t bytes)
{
    if (ctx->split_scratch != NULL && ctx->split_scratch_bytes >= bytes)
        return CLSOFTMAX_SUCCESS;
    cl_int err = CL_SUCCESS;
    cl_mem grown = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                   "allocating %zu bytes of scratch for a split row", bytes);
    /* A kernel still queued on the old buffer holds its own reference to it. */
    if (ctx->split_scratch != NULL)
        clReleaseMemObject(ctx->split_scratch);
    ctx->split_scratch = grown;
    ctx->split_scratch_bytes = bytes;
    return CLSOFTMAX_SUCCESS;
}

/* Sets the ten arguments every kernel takes, in the order kernels/softmax_row.cl documents. */
static clsoftmax_status set_common_args(clsoftmax_context* ctx, cl_kernel kernel,
                                        const clsoftmax_desc* desc, const clsoftmax__layout* layout,
                                        cl_mem in, size_t in_offset, cl_mem out, size_t out_offset,
                                        size_t local_bytes)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const cl_ulong in_off = (cl_ulong)in_offset;
    const cl_ulong out_off = (cl_ulong)out_offset;
    const cl_ulong outer = (cl_ulong)layout->outer;
    const cl_ulong n = (cl_ulong)layout->n;
    const cl_ulong inner = (cl_ulong)layout->inner;
    const cl_int log_op = desc->op == CLSOFTMAX_OP_LOG_SOFTMAX ? 1 : 0;
    /* float32 kernels take scale rounded to float, as validate.c and the CPU path do. */
    const cl_float scale_f = (cl_float)layout->scale_f;
    const cl_double scale_d = (cl_double)desc->scale;

    CHECK_CL(ctx, clSetKernelArg(kernel, 0, sizeof in, &in), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 1, sizeof in_off, &in_off), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 2, sizeof out, &out), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 3, sizeof out_off, &out_off), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 4, sizeof outer, &outer), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 5, sizeof n, &n), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 6, sizeof inner, &inner), cleanup);
    if (desc->dtype == CLSOFTMAX_FLOAT64)
        CHECK_CL(ctx, clSetKernelArg(kernel, 7, sizeof scale_d, &scale_d), cleanup);
    else
        CHECK_CL(ctx, clSetKernelArg(kernel, 7, sizeof scale_f, &scale_f), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 8, sizeof log_op, &log_op), cleanup);
    /* A NULL value with a size reserves that many bytes of __local memory per group. */
    CHECK_CL(ctx, clSetKernelArg(kernel, 9, local_bytes, NULL), cleanup);
cleanup:
    return status;
}

clsoftmax_status clsoftmax__launch(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                   const clsoftmax__layout* layout, cl_mem in, size_t in_offset,
                                   cl_mem out, size_t out_offset, cl_command_queue queue,
                                   cl_uint num_wait, const cl_event* wait_list, cl_event* event)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    clsoftmax__plan plan;
    cl_kernel kernel = NULL;
    cl_kernel second = NULL;
    size_t max_wg = 0;
    size_t max_wg2 = 0;
    cl_event first_done = NULL;
    cl_event done = NULL;
    cl_event* waits = NULL;

    if (ctx == NULL || desc == NULL || layout == NULL)
        return clsoftmax__error(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                                "internal: NULL argument to clsoftmax__launch");
    if (queue == NULL)
        queue = ctx->queue;

    /*
     * The strategy does not depend on the kernel's work-group limit (plan.c decides it from
     * the device's), so plan once to learn which kernel to fetch, then again with that
     * kernel's CL_KERNEL_WORK_GROUP_SIZE for the launch shape.
     */
    status = clsoftmax__plan_make_params(layout, &ctx->caps, ctx->params, 0, &plan);
    if (status == CLSOFTMAX_SUCCESS) {
        status = clsoftmax__kernel_get_vw(ctx, kernel_for(plan.strategy), desc->dtype,
                                          plan.vector_width, &kernel, &max_wg);
        if (status == CLSOFTMAX_SUCCESS && plan.strategy == CLSOFTMAX__ROW_SPLIT) {
            status = clsoftmax__kernel_get_vw(ctx, CLSOFTMAX__K_SPLIT_WRITE, desc->dtype,
                                              plan.vector_width, &second, &max_wg2);
            if (max_wg2 > 0 && max_wg2 < max_wg)
                max_wg = max_wg2;
        }
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        status = clsoftmax__plan_make_params(layout, &ctx->caps, ctx->params, max_wg, &plan);
    }
    if (status == CLSOFTMAX_SIZE_OVERFLOW)
        return clsoftmax__error(ctx, status,
                                "the tensor (%zu elements, %zu bytes) is beyond what the device "
                                "addresses (%u address bits)",
                                layout->count, layout->bytes, (unsigned)ctx->caps.address_bits);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__error(ctx, status, "internal: no launch plan for this tensor");

    status = set_common_args(ctx, kernel, desc, layout, in, in_offset, out, out_offset,
                             plan.local_bytes);
    if (status != CLSOFTMAX_SUCCESS)
        return status;

    const cl_uint work_dim = plan.strategy == CLSOFTMAX__STRIDED ? 2 : 1;
    const size_t global[2] = {plan.groups[0] * plan.local[0], plan.groups[1] * plan.local[1]};

    if (plan.strategy == CLSOFTMAX__ROW_SPLIT) {
        const cl_ulong chunks = (cl_ulong)plan.chunks;
        status = scratch_reserve(ctx, plan.scratch_bytes);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        status = set_common_args(ctx, second, desc, layout, in, in_offset, out, out_offset,
                                 plan.local_bytes);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        CHECK_CL(ctx, clSetKernelArg(kernel, 10, sizeof ctx->split_scratch, &ctx->split_scratch),
                 cleanup);
        CHECK_CL(ctx, clSetKernelArg(kernel, 11, sizeof chunks, &chunks), cleanup);
        CHECK_CL(ctx, clSetKernelArg(second, 10, sizeof ctx->split_scratch, &ctx->split_scratch),
                 cleanup);
        CHECK_CL(ctx, clSetKernelArg(second, 11, sizeof chunks, &chunks), cleanup);
        /*
         * The scratch is the context's, shared by every queue: a split also waits for the
         * previous split, wherever it was enqueued. The second kernel waits on the first's
         * event, the queue may be out of order.
         */
        waits = malloc(((size_t)num_wait + 1) * sizeof *waits);
        if (waits == NULL)
            return clsoftmax__error(ctx, CLSOFTMAX_OUT_OF_MEMORY, "allocating a wait list");
        for (cl_uint w = 0; w < num_wait; ++w)
            waits[w] = wait_list[w];
        cl_uint nw = num_wait;
        if (ctx->split_busy != NULL)
            waits[nw++] = ctx->split_busy;
        CHECK_CL(ctx,
                 clEnqueueNDRangeKernel(queue, kernel, 1, NULL, global, plan.local, nw,
                                        nw > 0 ? waits : NULL, &first_done),
                 cleanup);
        CHECK_CL(ctx,
                 clEnqueueNDRangeKernel(queue, second, 1, NULL, global, plan.local, 1, &first_done,
                                        &done),
                 cleanup);
        if (ctx->split_busy != NULL)
            clReleaseEvent(ctx->split_busy);
        ctx->split_busy = done;
        if (event != NULL)
            clRetainEvent(done);
        else
            done = NULL;
    } else {
        /* Our own event, handed out only on success: on error *event stays untouched. */
        CHECK_CL(ctx,
                 clEnqueueNDRangeKernel(queue, kernel, work_dim, NULL, global, plan.local, num_wait,
                                        num_wait > 0 ? wait_list : NULL,
                                        event != NULL ? &done : NULL),
                 cleanup);
    }
    if (event != NULL)
        *event = done;
    done = NULL;

cleanup:
    free(waits);
    if (first_done != NULL)
        clReleaseEvent(first_done);
    if (done != NULL)
        clReleaseEvent(done);
    return status;
}
