/* launch.c - from a validated layout to an enqueued kernel: plan, arguments, NDRange, events. */
#include "internal.h"

/* The kernel that carries out each strategy. */
static clsoftmax__kernel_id kernel_for(clsoftmax__strategy strategy)
{
    switch (strategy) {
    case CLSOFTMAX__ROW_LOCAL:
        return CLSOFTMAX__K_ROW_LOCAL;
    case CLSOFTMAX__ROW_MULTIPASS:
        return CLSOFTMAX__K_ROW_MULTIPASS;
    case CLSOFTMAX__STRIDED:
    default:
        return CLSOFTMAX__K_STRIDED;
    }
}

clsoftmax_status clsoftmax__launch(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                   const clsoftmax__layout* layout, cl_mem in, size_t in_offset,
                                   cl_mem out, size_t out_offset, cl_command_queue queue,
                                   cl_uint num_wait, const cl_event* wait_list, cl_event* event)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    clsoftmax__plan plan;
    cl_kernel kernel = NULL;
    size_t max_wg = 0;
    cl_event done = NULL;

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
    status = clsoftmax__plan_make(layout, &ctx->caps, 0, &plan);
    if (status == CLSOFTMAX_SUCCESS) {
        status =
            clsoftmax__kernel_get(ctx, kernel_for(plan.strategy), desc->dtype, &kernel, &max_wg);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        status = clsoftmax__plan_make(layout, &ctx->caps, max_wg, &plan);
    }
    if (status == CLSOFTMAX_SIZE_OVERFLOW)
        return clsoftmax__error(ctx, status,
                                "the tensor (%zu elements, %zu bytes) is beyond what the device "
                                "addresses (%u address bits)",
                                layout->count, layout->bytes, (unsigned)ctx->caps.address_bits);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__error(ctx, status, "internal: no launch plan for this tensor");

    /* The argument order is the one documented in kernels/softmax_row.cl. */
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
    CHECK_CL(ctx, clSetKernelArg(kernel, 9, plan.local_bytes, NULL), cleanup);

    const cl_uint work_dim = plan.strategy == CLSOFTMAX__STRIDED ? 2 : 1;
    const size_t global[2] = {plan.groups[0] * plan.local[0], plan.groups[1] * plan.local[1]};
    /* Our own event, handed out only on success: on error *event stays untouched. */
    CHECK_CL(ctx,
             clEnqueueNDRangeKernel(queue, kernel, work_dim, NULL, global, plan.local, num_wait,
                                    num_wait > 0 ? wait_list : NULL, event != NULL ? &done : NULL),
             cleanup);
    if (event != NULL)
        *event = done;
    done = NULL;

cleanup:
    if (done != NULL)
        clReleaseEvent(done);
    return status;
}
