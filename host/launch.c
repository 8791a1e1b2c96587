/* launch.c - from a validated layout to an enqueued kernel: plan, arguments, NDRange, events. */
#include "internal.h"

#include <limits.h>
#include <stdint.h>
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

clsoftmax_status clsoftmax__scratch_reserve(clsoftmax_context* ctx, cl_mem* buf, size_t* have,
                                            size_t bytes, const char* what)
{
    if (*buf != NULL && *have >= bytes)
        return CLSOFTMAX_SUCCESS;
    cl_int err = CL_SUCCESS;
    cl_mem grown = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                   "allocating %zu bytes of scratch for %s", bytes, what);
    /* A kernel still queued on the old buffer holds its own reference to it. */
    if (*buf != NULL)
        clReleaseMemObject(*buf);
    *buf = grown;
    *have = bytes;
    return CLSOFTMAX_SUCCESS;
}

/* Sets the thirteen arguments every kernel takes, in the order kernels/softmax_row.cl documents. */
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
    const cl_int zero_bad = layout->nonfinite == CLSOFTMAX_NONFINITE_ZERO ? 1 : 0;
    /* Kernels computing in float (float32 and the 16-bit types) take scale, alpha and beta
       rounded to float, as validate.c and the CPU path do; float64 kernels take doubles. */
    const int f64 = layout->dtype == CLSOFTMAX_FLOAT64;
    const cl_float scale_f = (cl_float)layout->scale_f;
    const cl_double scale_d = (cl_double)desc->scale;
    const cl_float alpha_f = (cl_float)layout->alpha_f;
    const cl_float beta_f = (cl_float)layout->beta_f;
    const cl_double alpha_d = (cl_double)layout->alpha;
    const cl_double beta_d = (cl_double)layout->beta;

    CHECK_CL(ctx, clSetKernelArg(kernel, 0, sizeof in, &in), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 1, sizeof in_off, &in_off), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 2, sizeof out, &out), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 3, sizeof out_off, &out_off), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 4, sizeof outer, &outer), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 5, sizeof n, &n), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 6, sizeof inner, &inner), cleanup);
    if (f64)
        CHECK_CL(ctx, clSetKernelArg(kernel, 7, sizeof scale_d, &scale_d), cleanup);
    else
        CHECK_CL(ctx, clSetKernelArg(kernel, 7, sizeof scale_f, &scale_f), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 8, sizeof log_op, &log_op), cleanup);
    /* A NULL value with a size reserves that many bytes of __local memory per group. */
    CHECK_CL(ctx, clSetKernelArg(kernel, 9, local_bytes, NULL), cleanup);
    if (f64) {
        CHECK_CL(ctx, clSetKernelArg(kernel, 10, sizeof alpha_d, &alpha_d), cleanup);
        CHECK_CL(ctx, clSetKernelArg(kernel, 11, sizeof beta_d, &beta_d), cleanup);
    } else {
        CHECK_CL(ctx, clSetKernelArg(kernel, 10, sizeof alpha_f, &alpha_f), cleanup);
        CHECK_CL(ctx, clSetKernelArg(kernel, 11, sizeof beta_f, &beta_f), cleanup);
    }
    CHECK_CL(ctx, clSetKernelArg(kernel, 12, sizeof zero_bad, &zero_bad), cleanup);
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
        status = clsoftmax__kernel_get_vw(ctx, kernel_for(plan.strategy), layout->dtype,
                                          plan.vector_width, &kernel, &max_wg);
        if (status == CLSOFTMAX_SUCCESS && plan.strategy == CLSOFTMAX__ROW_SPLIT) {
            status = clsoftmax__kernel_get_vw(ctx, CLSOFTMAX__K_SPLIT_WRITE, layout->dtype,
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
        status = clsoftmax__scratch_reserve(ctx, &ctx->split_scratch, &ctx->split_scratch_bytes,
                                            plan.scratch_bytes, "a split row");
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        status = set_common_args(ctx, second, desc, layout, in, in_offset, out, out_offset,
                                 plan.local_bytes);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        CHECK_CL(ctx, clSetKernelArg(kernel, 13, sizeof ctx->split_scratch, &ctx->split_scratch),
                 cleanup);
        CHECK_CL(ctx, clSetKernelArg(kernel, 14, sizeof chunks, &chunks), cleanup);
        CHECK_CL(ctx, clSetKernelArg(second, 13, sizeof ctx->split_scratch, &ctx->split_scratch),
                 cleanup);
        CHECK_CL(ctx, clSetKernelArg(second, 14, sizeof chunks, &chunks), cleanup);
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

/*
 * Rows per launch of the check kernel: its device counters are 32-bit (core OpenCL 1.2 atomics;
 * 64-bit ones need cl_khr_int64_base_atomics), so longer tensors are checked in launches of at
 * most this many rows, each read back and added up here. Any row count is counted exactly.
 */
#define CHECK_ROWS_PER_LAUNCH ((size_t)1 << 31)
/* Work-items per group of the check kernel: any size works; 64 fills a GPU's wavefront. */
#define CHECK_LOCAL 64
/* Groups of the check kernel at most; its work-items loop over further rows. */
#define CHECK_GROUPS_CAP 65535

/* The check kernel's arguments that do not change between its launches. */
static clsoftmax_status set_check_args(clsoftmax_context* ctx, cl_kernel kernel,
                                       const clsoftmax_desc* desc, const clsoftmax__layout* layout,
                                       cl_mem in, size_t in_offset)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const cl_ulong in_off = (cl_ulong)in_offset;
    const cl_ulong n = (cl_ulong)layout->n;
    const cl_ulong inner = (cl_ulong)layout->inner;
    const cl_float scale_f = (cl_float)layout->scale_f;
    const cl_double scale_d = (cl_double)desc->scale;
    CHECK_CL(ctx, clSetKernelArg(kernel, 0, sizeof in, &in), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 1, sizeof in_off, &in_off), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 2, sizeof n, &n), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 3, sizeof inner, &inner), cleanup);
    if (layout->dtype == CLSOFTMAX_FLOAT64)
        CHECK_CL(ctx, clSetKernelArg(kernel, 4, sizeof scale_d, &scale_d), cleanup);
    else
        CHECK_CL(ctx, clSetKernelArg(kernel, 4, sizeof scale_f, &scale_f), cleanup);
    CHECK_CL(ctx, clSetKernelArg(kernel, 7, sizeof ctx->report_buf, &ctx->report_buf), cleanup);
cleanup:
    return status;
}

clsoftmax_status clsoftmax__check_rows(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                       const clsoftmax__layout* layout, cl_mem in, size_t in_offset,
                                       size_t row_base, cl_command_queue queue, cl_uint num_wait,
                                       const cl_event* wait_list, size_t* bad_rows,
                                       size_t* first_bad_row)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    clsoftmax__plan plan;
    cl_kernel kernel = NULL;
    size_t max_wg = 0;
    cl_event done = NULL;
    static const cl_uint fresh[2] = {0, UINT_MAX};
    cl_uint counted[2] = {0, 0};

    if (queue == NULL)
        queue = ctx->queue;
    /* The program of the launch that follows (its vector width), so nothing more builds. */
    status = clsoftmax__plan_make_params(layout, &ctx->caps, ctx->params, 0, &plan);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__error(ctx, status,
                                "the tensor (%zu elements, %zu bytes) is beyond what the device "
                                "addresses (%u address bits)",
                                layout->count, layout->bytes, (unsigned)ctx->caps.address_bits);
    status = clsoftmax__kernel_get_vw(ctx, CLSOFTMAX__K_CHECK_ROWS, layout->dtype,
                                      plan.vector_width, &kernel, &max_wg);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (ctx->report_buf == NULL) {
        cl_int err = CL_SUCCESS;
        ctx->report_buf = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, sizeof fresh, NULL, &err);
        if (err != CL_SUCCESS) {
            ctx->report_buf = NULL;
            return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                       "allocating the bad-row counters");
        }
    }
    status = set_check_args(ctx, kernel, desc, layout, in, in_offset);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    size_t local = CHECK_LOCAL;
    while (local > 1 &&
           ((max_wg > 0 && local > max_wg) ||
            (ctx->caps.max_work_item_sizes[0] > 0 && local > ctx->caps.max_work_item_sizes[0])))
        local /= 2;

    /*
     * Each launch: counters reset, the kernel (after the caller's wait list), the counters read
     * back. The write and the read block and the read waits for the kernel's event, so the
     * order holds on out-of-order queues too; the counters are the context's, used only here,
     * under ctx->lock, one launch at a time.
     */
    for (size_t row0 = 0; row0 < layout->rows; row0 += CHECK_ROWS_PER_LAUNCH) {
        const size_t rows = layout->rows - row0 < CHECK_ROWS_PER_LAUNCH ? layout->rows - row0
                                                                        : CHECK_ROWS_PER_LAUNCH;
        const cl_ulong row0_arg = (cl_ulong)row0;
        const cl_ulong rows_arg = (cl_ulong)rows;
        size_t groups = rows / local + (rows % local != 0);
        if (groups > CHECK_GROUPS_CAP)
            groups = CHECK_GROUPS_CAP;
        const size_t global = groups * local;
        CHECK_CL(ctx, clSetKernelArg(kernel, 5, sizeof row0_arg, &row0_arg), cleanup);
        CHECK_CL(ctx, clSetKernelArg(kernel, 6, sizeof rows_arg, &rows_arg), cleanup);
        CHECK_CL(ctx,
                 clEnqueueWriteBuffer(queue, ctx->report_buf, CL_TRUE, 0, sizeof fresh, fresh, 0,
                                      NULL, NULL),
                 cleanup);
        CHECK_CL(ctx,
                 clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, &local, num_wait,
                                        num_wait > 0 ? wait_list : NULL, &done),
                 cleanup);
        CHECK_CL(ctx,
                 clEnqueueReadBuffer(queue, ctx->report_buf, CL_TRUE, 0, sizeof counted, counted, 1,
                                     &done, NULL),
                 cleanup);
        clReleaseEvent(done);
        done = NULL;
        if (counted[0] > 0) {
            if (*bad_rows == 0)
                *first_bad_row = row_base + row0 + (size_t)counted[1];
            *bad_rows += (size_t)counted[0];
        }
    }
cleanup:
    if (done != NULL) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    return status;
}

clsoftmax_status clsoftmax__rows_checked(clsoftmax_context* ctx, const clsoftmax__layout* layout,
                                         size_t bad_rows, size_t first_bad_row)
{
    if (layout->report != NULL) {
        layout->report->bad_rows = bad_rows;
        layout->report->first_bad_row = bad_rows > 0 ? first_bad_row : SIZE_MAX;
    }
    RETURN_ERROR_IF(ctx, layout->nonfinite == CLSOFTMAX_NONFINITE_ERROR && bad_rows > 0,
                    CLSOFTMAX_NONFINITE_ROW,
                    "row %zu holds NaN or +inf or is -inf throughout, the first of %zu bad rows "
                    "(policy ERROR): nothing was written",
                    first_bad_row, bad_rows);
    return CLSOFTMAX_SUCCESS;
}
