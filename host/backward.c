/* backward.c - the softmax and log-softmax gradient: validation, the CPU path, kernel launches.
 *
 * The entry points follow softmax.c's: validate everything (clsoftmax__validate_desc plus the
 * backward's own rules) before anything is allocated, enqueued or written; the CPU backend and
 * a context that fell back run cpu/cpu_backward.c; the OpenCL backend builds
 * kernels/softmax_backward.cl once per dtype into ctx->backward and launches one of its four
 * kernels (see choose_kernel()).
 *
 * softmax.c's clsoftmax__ranges_overlap(), check_buffer() and run_on_cpu()'s thread choice are
 * static there; the small equivalents below keep the two files' rules the same.
 */
#include "internal.h"

#include "cpu/cpu_backward.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

enum { BW_K_ROW = 0, BW_K_ITEM = 1, BW_K_STRIDED = 2, BW_K_STRIDED_VEC = 3, BW_K_COUNT = 4 };

static const char* const bw_sources[] = {"common.cl", "softmax_backward.cl"};
static const char* const bw_kernel_names[BW_K_COUNT] = {
    "softmax_backward_row", "softmax_backward_item", "softmax_backward_strided",
    "softmax_backward_strided_vec"};

/*
 * Work-items per group. A CPU device (PoCL) runs a group as loops split at each barrier, so
 * the row kernel's reduction is cheaper in narrow groups there (ops.c measured the same); GPUs
 * want wide ones. The barrier-free kernels take 64: PoCL vectorises across them.
 */
#define BW_LOCAL_ROW_CPU 32
#define BW_LOCAL_ROW_GPU 256
#define BW_LOCAL_ITEM 64
/*
 * Elements per vector on CPU devices: one AVX2 register of floats (or doubles); float16 too,
 * through common.cl's VLOAD/VSTORE, which avoid PoCL's faulting vload_half8/vstore_half8.
 */
#define BW_VW_CPU 8
#define BW_VW_CPU_F64 4
/* Vectors of neighbouring columns per work-item of softmax_backward_strided_vec. */
#define BW_VECS 16u
/* Work-groups per launch; the kernels loop over the remaining rows or columns. */
#define BW_GROUPS_MAX ((size_t)1 << 16)
/* GPUs: rows up to this long go a work-item each (a group would leave most items idle). */
#define BW_ITEM_ROW_GPU 32
/* CPU devices: a work-item per row once there are this many rows per compute unit. */
#define BW_ITEM_ROWS_PER_CU 8

/* ---- validation ------------------------------------------------------------------------- */

/* The desc's checks, the backward's own (nonfinite NAN, no report), float64 on the device. */
static clsoftmax_status validate(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                 clsoftmax__layout* layout)
{
    char msg[256];
    clsoftmax_status status = clsoftmax__validate_desc(desc, layout, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    if (layout->nonfinite != CLSOFTMAX_NONFINITE_NAN)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               "desc->nonfinite must be CLSOFTMAX_NONFINITE_NAN for the backward: "
                               "it takes NaN where the data has it");
    if (layout->report != NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               "desc->report must be NULL for the backward: it counts no rows");
    if (ctx->backend == CLSOFTMAX_BACKEND_OPENCL && layout->dtype == CLSOFTMAX_FLOAT64 &&
        !ctx->caps.has_fp64) {
        snprintf(msg, sizeof msg, "float64 needs cl_khr_fp64, which %.180s does not support",
                 ctx->device_name);
        return clsoftmax__fail(ctx, CLSOFTMAX_UNSUPPORTED, msg);
    }
    return CLSOFTMAX_SUCCESS;
}

/*
 * dx against one input (name), as positions in one address space (bytes of host memory, or
 * elements of one buffer): identical is in place, allowed only with beta == 0; any other
 * overlap is OVERLAP. On failure *why gets the reason.
 */
static clsoftmax_status check_alias(uintptr_t dx, uintptr_t in, size_t len, const char* name,
                                    double beta, char* why, size_t why_size)
{
    if (dx == in && beta != 0.0) {
        snprintf(why, why_size,
                 "dx is %s (in place) with beta %g: blending reads dx, which the gradient "
                 "overwrites; in place needs beta == 0",
                 name, beta);
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    if (dx != in && clsoftmax__ranges_overlap(dx, len, in, len)) {
        snprintf(why, why_size, "dx and %s overlap without being identical", name);
        return CLSOFTMAX_OVERLAP;
    }
    return CLSOFTMAX_SUCCESS;
}

/* ---- the CPU backend -------------------------------------------------------------------- */

static void run_on_cpu(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                       const clsoftmax__layout* layout, const void* y, const void* dy, void* dx)
{
    const clsoftmax__cpu_backward_job job = {
        .outer = layout->outer,
        .n = layout->n,
        .inner = layout->inner,
        .dtype = (int)layout->dtype,
        .log = desc->op == CLSOFTMAX_OP_LOG_SOFTMAX,
        .scale = desc->scale,
        .alpha = layout->alpha,
        .beta = layout->beta,
        .y = y,
        .dy = dy,
        .dx = dx,
    };
    /* As softmax.c: the parameter, when set, wins, read at each call. */
    pthread_mutex_lock(&ctx->lock);
    const size_t param = ctx->params[CLSOFTMAX_PARAM_CPU_THREADS];
    const unsigned threads =
        param != 0 ? (param < UINT_MAX ? (unsigned)param : UINT_MAX) : ctx->cpu_threads;
    if (ctx->cpu_pool == NULL && threads > 1)
        ctx->cpu_pool = clsoftmax__cpu_pool_create(); /* NULL: run on this thread */
    clsoftmax__cpu_pool* pool = ctx->cpu_pool;
    pthread_mutex_unlock(&ctx->lock);
    clsoftmax__cpu_backward(&job, threads, pool);
    clsoftmax__succeed(ctx);
}

/* ---- kernels and launches (caller holds ctx->lock) -------------------------------------- */

/*
 * CLSOFTMAX_VW of dtype's program. CPU devices: a work-item's own vectors are the SIMD; GPUs:
 * scalar loads, coalesced across work-items (softmax_backward.cl).
 */
static unsigned vector_width(const clsoftmax_context* ctx, clsoftmax_dtype dtype)
{
    if (!(ctx->caps.type & CL_DEVICE_TYPE_CPU))
        return 1;
    return dtype == CLSOFTMAX_FLOAT64 ? BW_VW_CPU_F64 : BW_VW_CPU;
}

/* The backward kernel id for dtype, building the dtype's program on first use. */
static clsoftmax_status bw_kernel(clsoftmax_context* ctx, clsoftmax_dtype dtype, int id,
                                  cl_kernel* kernel, size_t* max_wg)
{
    static const clsoftmax__aux_program prog = {sizeof bw_sources / sizeof bw_sources[0],
                                                bw_sources, BW_K_COUNT, bw_kernel_names,
                                                "softmax backward"};
    char options[160];
    snprintf(options, sizeof options,
             "-cl-std=CL1.2 -w %s -DCLSOFTMAX_VW=%u -DCLSOFTMAX_BW_VECS=%u",
             clsoftmax__dtype_options(dtype), vector_width(ctx, dtype), BW_VECS);
    return clsoftmax__aux_kernel_get(ctx, &ctx->backward, dtype, &prog, options, (size_t)id, kernel,
                                     max_wg);
}

/*
 * The kernel for the layout: inner > 1 the strided kernel (on CPU devices its strips of
 * vectors); contiguous rows a work-item each on
 * CPU devices with rows enough for every compute unit and on GPUs for rows too short to fill a
 * group, else a work-group each. CLSOFTMAX_PARAM_ROWS_PER_GROUP 1 asks for a group per row
 * (as for the forward kernels); CLSOFTMAX_PARAM_VECTOR_WIDTH 1 for the scalar loops GPUs run.
 */
static int choose_kernel(const clsoftmax_context* ctx, const clsoftmax__layout* layout)
{
    const int cpu = (ctx->caps.type & CL_DEVICE_TYPE_CPU) != 0;
    if (layout->inner > 1)
        return cpu && ctx->params[CLSOFTMAX_PARAM_VECTOR_WIDTH] != 1 ? BW_K_STRIDED_VEC
                                                                     : BW_K_STRIDED;
    if (ctx->params[CLSOFTMAX_PARAM_ROWS_PER_GROUP] == 1)
        return BW_K_ROW;
    const size_t cu = ctx->caps.compute_units > 0 ? ctx->caps.compute_units : 1;
    if (cpu)
        return layout->outer >= BW_ITEM_ROWS_PER_CU * cu ? BW_K_ITEM : BW_K_ROW;
    return layout->n <= BW_ITEM_ROW_GPU ? BW_K_ITEM : BW_K_ROW;
}

/* The largest power of two <= v (v >= 1). */
static size_t floor_pow2(size_t v)
{
    size_t p = 1;
    while (p <= v / 2)
        p *= 2;
    return p;
}

#define SET_ARG(k, i, v) CHECK_CL(ctx, clSetKernelArg((k), (i), sizeof(v), &(v)), cleanup)

/* Enqueues the validated backward on queue after wait_list; *event only on success. */
static clsoftmax_status bw_launch(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                  const clsoftmax__layout* layout, cl_mem y, size_t y_offset,
                                  cl_mem dy, size_t dy_offset, cl_mem dx, size_t dx_offset,
                                  cl_command_queue queue, cl_uint num_wait,
                                  const cl_event* wait_list, cl_event* event)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const int id = choose_kernel(ctx, layout);
    cl_kernel kernel = NULL;
    cl_event done = NULL;
    size_t max_wg = 0;
    status = bw_kernel(ctx, layout->dtype, id, &kernel, &max_wg);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (max_wg == 0)
        max_wg = ctx->caps.max_work_group_size > 0 ? ctx->caps.max_work_group_size : 1;

    const int cpu = (ctx->caps.type & CL_DEVICE_TYPE_CPU) != 0;
    const size_t param_wg = ctx->params[CLSOFTMAX_PARAM_WORK_GROUP_SIZE];
    size_t cap = param_wg != 0 ? param_wg
                               : (id == BW_K_ROW ? (cpu ? BW_LOCAL_ROW_CPU : BW_LOCAL_ROW_GPU)
                                                 : BW_LOCAL_ITEM);
    if (cap > max_wg)
        cap = max_wg;
    if (ctx->caps.max_work_item_sizes[0] != 0 && cap > ctx->caps.max_work_item_sizes[0])
        cap = ctx->caps.max_work_item_sizes[0];
    cap = floor_pow2(cap);

    size_t local = 1, groups = 1;
    if (id == BW_K_ROW) {
        while (local * 2 <= cap && local < layout->n)
            local *= 2;
        groups = layout->outer < BW_GROUPS_MAX ? layout->outer : BW_GROUPS_MAX;
    } else {
        const size_t vecs = layout->inner / vector_width(ctx, layout->dtype);
        /* strided_vec: strips of BW_VECS vectors, at least one per slice (softmax_backward.cl) */
        const size_t strips = (vecs + BW_VECS - 1) / BW_VECS;
        const size_t units = id == BW_K_ITEM      ? layout->outer
                             : id == BW_K_STRIDED ? layout->outer * layout->inner
                                                  : layout->outer * (strips > 0 ? strips : 1);
        const size_t cu = ctx->caps.compute_units > 0 ? ctx->caps.compute_units : 1;
        local = cap;
        /* narrower groups rather than idle compute units */
        while (local > 1 && (units + local - 1) / local < 2 * cu)
            local /= 2;
        groups = (units + local - 1) / local;
        if (groups > BW_GROUPS_MAX)
            groups = BW_GROUPS_MAX;
    }
    const size_t global = groups * local;

    const cl_ulong y_off = y_offset, dy_off = dy_offset, dx_off = dx_offset;
    const cl_ulong outer = layout->outer, n = layout->n, inner = layout->inner;
    const cl_int log_op = desc->op == CLSOFTMAX_OP_LOG_SOFTMAX;
    cl_uint a = 0;
    SET_ARG(kernel, a++, y);
    SET_ARG(kernel, a++, y_off);
    SET_ARG(kernel, a++, dy);
    SET_ARG(kernel, a++, dy_off);
    SET_ARG(kernel, a++, dx);
    SET_ARG(kernel, a++, dx_off);
    SET_ARG(kernel, a++, outer);
    SET_ARG(kernel, a++, n);
    SET_ARG(kernel, a++, inner);
    if (layout->dtype == CLSOFTMAX_FLOAT64) {
        const cl_double scale = desc->scale, alpha = layout->alpha, beta = layout->beta;
        SET_ARG(kernel, a++, scale);
        SET_ARG(kernel, a++, alpha);
        SET_ARG(kernel, a++, beta);
    } else {
        const cl_float scale = layout->scale_f, alpha = layout->alpha_f, beta = layout->beta_f;
        SET_ARG(kernel, a++, scale);
        SET_ARG(kernel, a++, alpha);
        SET_ARG(kernel, a++, beta);
    }
    SET_ARG(kernel, a++, log_op);
    if (id == BW_K_ROW) {
        /* CPU devices: contiguous shares in vectors, unless CLSOFTMAX_PARAM_VECTOR_WIDTH 1 asks
           for the scalar loop GPUs run */
        const cl_int contig = cpu && ctx->params[CLSOFTMAX_PARAM_VECTOR_WIDTH] != 1;
        SET_ARG(kernel, a++, contig);
        CHECK_CL(ctx, clSetKernelArg(kernel, a++, local * layout->compute_size, NULL), cleanup);
    }

    CHECK_CL(ctx,
             clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, &local, num_wait,
                                    num_wait > 0 ? wait_list : NULL, event != NULL ? &done : NULL),
             cleanup);
    if (event != NULL)
        *event = done;
cleanup:
    return status;
}

/* ---- host memory through the device (caller holds ctx->lock) ----------------------------- */

/* A buffer over host memory (flags say how), or a device buffer when host is NULL. */
static clsoftmax_status make_buffer(clsoftmax_context* ctx, cl_mem_flags flags, size_t bytes,
                                    const void* host, const char* name, cl_mem* buf)
{
    cl_int err = CL_SUCCESS;
    /* READ_ONLY buffers are only read: the const cast is safe */
    *buf = clCreateBuffer(ctx->cl_ctx, flags, bytes, (void*)host, &err);
    if (err != CL_SUCCESS) {
        *buf = NULL;
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                   "%zu bytes for %s on %s", bytes, name, ctx->device_name);
    }
    return CLSOFTMAX_SUCCESS;
}

/*
 * On devices sharing host memory the kernel runs on the caller's arrays (CL_MEM_USE_HOST_PTR,
 * as host_path.c does; identical pointers share one buffer), else y and dy are copied to the
 * device and dx read back. *dx_touched is set once something may have written dx.
 */
static clsoftmax_status host_on_device(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                       const clsoftmax__layout* layout, const void* y,
                                       const void* dy, void* dx, int* dx_touched)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const size_t bytes = layout->bytes;
    const size_t esz = layout->elem_size;
    cl_mem made[3] = {NULL, NULL, NULL};
    cl_mem by = NULL, bdy = NULL, bdx = NULL;
    cl_int err = CL_SUCCESS;
    const int zero_copy = ctx->caps.host_unified_memory && (uintptr_t)y % esz == 0 &&
                          (uintptr_t)dy % esz == 0 && (uintptr_t)dx % esz == 0;

    if (zero_copy) {
        const int dx_read = layout->beta != 0.0 || dx == y || dx == dy;
        status = make_buffer(
            ctx, (dx_read ? CL_MEM_READ_WRITE : CL_MEM_WRITE_ONLY) | CL_MEM_USE_HOST_PTR, bytes, dx,
            "dx", &made[0]);
        bdx = made[0];
        if (status == CLSOFTMAX_SUCCESS && dx != y)
            status =
                make_buffer(ctx, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, bytes, y, "y", &made[1]);
        by = dx == y ? bdx : made[1];
        if (status == CLSOFTMAX_SUCCESS && dy != dx && dy != y)
            status =
                make_buffer(ctx, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, bytes, dy, "dy", &made[2]);
        bdy = dy == dx ? bdx : (dy == y ? by : made[2]);
    } else {
        RETURN_ERROR_IF(ctx, (cl_ulong)bytes > ctx->caps.max_mem_alloc_size, CLSOFTMAX_UNSUPPORTED,
                        "the backward's tensors (%zu bytes each) exceed %s's "
                        "CL_DEVICE_MAX_MEM_ALLOC_SIZE (%llu bytes); use the CPU backend or the "
                        "device-buffer entry point on smaller pieces",
                        bytes, ctx->device_name, (unsigned long long)ctx->caps.max_mem_alloc_size);
        status = make_buffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, y, "y", &made[0]);
        by = made[0];
        if (status == CLSOFTMAX_SUCCESS && dy != y)
            status = make_buffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, dy, "dy",
                                 &made[1]);
        bdy = dy == y ? by : made[1];
        /* beta != 0 blends into dx's current values, which must go up first */
        if (status == CLSOFTMAX_SUCCESS)
            status = make_buffer(ctx,
                                 layout->beta != 0.0 ? CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR
                                                     : CL_MEM_WRITE_ONLY,
                                 bytes, layout->beta != 0.0 ? dx : NULL, "dx", &made[2]);
        bdx = made[2];
    }
    if (status != CLSOFTMAX_SUCCESS)
        goto cleanup;

    /* The launch builds the program before it enqueues: its failures leave dx untouched. */
    status = bw_launch(ctx, desc, layout, by, 0, bdy, 0, bdx, 0, ctx->queue, 0, NULL, NULL);
    if (status != CLSOFTMAX_SUCCESS)
        goto cleanup;
    if (zero_copy) {
        *dx_touched = 1;
        /* Mapping synchronises a driver's shadow copy (if any) into the caller's memory. */
        void* mapped = clEnqueueMapBuffer(ctx->queue, bdx, CL_TRUE, CL_MAP_READ, 0, bytes, 0, NULL,
                                          NULL, &err);
        if (err != CL_SUCCESS) {
            status = clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clEnqueueMapBuffer",
                                         err, "reading dx into host memory");
            goto cleanup;
        }
        CHECK_CL(ctx, clEnqueueUnmapMemObject(ctx->queue, bdx, mapped, 0, NULL, NULL), cleanup);
    } else {
        /* Finish first, so that a failed kernel never reaches the caller's dx. */
        CHECK_CL(ctx, clFinish(ctx->queue), cleanup);
        *dx_touched = 1;
        CHECK_CL(ctx, clEnqueueReadBuffer(ctx->queue, bdx, CL_TRUE, 0, bytes, dx, 0, NULL, NULL),
                 cleanup);
    }
    CHECK_CL(ctx, clFinish(ctx->queue), cleanup);

cleanup:
    if (status != CLSOFTMAX_SUCCESS)
        clFinish(ctx->queue); /* nothing may still use the caller's memory once we return */
    for (int i = 0; i < 3; i++)
        if (made[i] != NULL)
            clReleaseMemObject(made[i]);
    return status;
}

/* ---- public entry points ---------------------------------------------------------------- */

clsoftmax_status clsoftmax_softmax_backward_host(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                                 const void* y, const void* dy, void* dx)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    clsoftmax__layout layout;
    clsoftmax_status status = validate(ctx, desc, &layout);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (y == NULL || dy == NULL || dx == NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               y == NULL ? "y is NULL"
                                         : (dy == NULL ? "dy is NULL" : "dx is NULL"));
    const size_t bytes = layout.bytes;
    /* A tensor that would run past the end of the address space cannot be the caller's. */
    if ((uintptr_t)y > UINTPTR_MAX - bytes || (uintptr_t)dy > UINTPTR_MAX - bytes ||
        (uintptr_t)dx > UINTPTR_MAX - bytes)
        return clsoftmax__fail(ctx, CLSOFTMAX_SIZE_OVERFLOW,
                               "y, dy or dx plus the tensor's byte count wraps the address space");
    char why[256];
    status = check_alias((uintptr_t)dx, (uintptr_t)y, bytes, "y", layout.beta, why, sizeof why);
    if (status == CLSOFTMAX_SUCCESS)
        status =
            check_alias((uintptr_t)dx, (uintptr_t)dy, bytes, "dy", layout.beta, why, sizeof why);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, why);

    if (ctx->backend == CLSOFTMAX_BACKEND_CPU || clsoftmax__fell_back(ctx)) {
        run_on_cpu(ctx, desc, &layout, y, dy, dx);
        return CLSOFTMAX_SUCCESS;
    }

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    int dx_touched = 0;
    status = host_on_device(ctx, desc, &layout, y, dy, dx, &dx_touched);
    /* Recomputing on the CPU is sound unless the device already overwrote an in-place input. */
    const int in_place = dx == y || dx == dy;
    const int fall_back = status != CLSOFTMAX_SUCCESS && !(in_place && dx_touched) &&
                          clsoftmax__fallback_take(ctx, status);
    pthread_mutex_unlock(&ctx->lock);
    if (fall_back) {
        run_on_cpu(ctx, desc, &layout, y, dy, dx);
        return CLSOFTMAX_SUCCESS;
    }
    return status;
}

clsoftmax_status clsoftmax_softmax_backward_buffer(clsoftmax_context* ctx,
                                                   const clsoftmax_desc* desc, cl_mem y,
                                                   size_t y_offset, cl_mem dy, size_t dy_offset,
                                                   cl_mem dx, size_t dx_offset,
                                                   cl_command_queue queue, cl_uint num_wait,
                                                   const cl_event* wait_list, cl_event* event)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    if (ctx->backend != CLSOFTMAX_BACKEND_OPENCL)
        return clsoftmax__fail_not_opencl(ctx);
    clsoftmax__layout layout;
    clsoftmax_status status = validate(ctx, desc, &layout);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (y == NULL || dy == NULL || dx == NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               y == NULL ? "y is NULL"
                                         : (dy == NULL ? "dy is NULL" : "dx is NULL"));
    const char* wait_why = NULL;
    if (clsoftmax__check_wait_list(num_wait, wait_list, &wait_why) != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT, wait_why);

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    status = clsoftmax__pick_queue(ctx, &queue);
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__check_buffer(ctx, y, "y", y_offset, layout.count, layout.elem_size);
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__check_buffer(ctx, dy, "dy", dy_offset, layout.count, layout.elem_size);
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__check_buffer(ctx, dx, "dx", dx_offset, layout.count, layout.elem_size);
    /* Within one buffer, offsets in elements play the part of host addresses. */
    char why[256];
    if (status == CLSOFTMAX_SUCCESS && dx == y) {
        status = check_alias(dx_offset, y_offset, layout.count, "y", layout.beta, why, sizeof why);
        if (status != CLSOFTMAX_SUCCESS)
            clsoftmax__error(ctx, status, "%s (one buffer, offsets %zu and %zu)", why, dx_offset,
                             y_offset);
    }
    if (status == CLSOFTMAX_SUCCESS && dx == dy) {
        status =
            check_alias(dx_offset, dy_offset, layout.count, "dy", layout.beta, why, sizeof why);
        if (status != CLSOFTMAX_SUCCESS)
            clsoftmax__error(ctx, status, "%s (one buffer, offsets %zu and %zu)", why, dx_offset,
                             dy_offset);
    }
    if (status == CLSOFTMAX_SUCCESS)
        status = bw_launch(ctx, desc, &layout, y, y_offset, dy, dy_offset, dx, dx_offset, queue,
                           num_wait, wait_list, event);
    pthread_mutex_unlock(&ctx->lock);
    return status;
}
