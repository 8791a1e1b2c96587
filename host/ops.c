/* ops.c - the classifier head and attention: validation, the CPU path, OpenCL enqueue sequences.
 *
 * The matrix products go through clblast_ops.c (OpenCL) or cpu/cpu_ops.c (CBLAS); this file
 * owns the ops kernels' program cache, the context's grow-only scratch buffer, and the order
 * of commands on the caller's queue: an optional barrier on the wait list, then GEMM and
 * fused-softmax kernels, then a marker that becomes the caller's event.
 */
#include "internal.h"

#include "cpu/cpu_ops.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Most bytes of logits or scores one step keeps in the context's scratch. */
#define OPS_SCRATCH_CAP ((size_t)64 << 20)
/*
 * Work-items per row. A CPU device (PoCL) runs a work-group as loops split at every barrier,
 * so narrow groups cost less per reduction there (measured: 32 beat 128 on PoCL); GPUs want
 * wide ones.
 */
#define OPS_LOCAL_MAX_CPU 32
#define OPS_LOCAL_MAX 128
/* Work-groups per launch; the kernels loop over the remaining rows. */
#define OPS_GROUPS_MAX ((size_t)1 << 16)

/* common.cl first: its REAL, kahan_add and group reductions serve the ops kernels too. */
static const char* const ops_sources[] = {"common.cl", "ops_common.cl", "linear_softmax.cl",
                                          "topk.cl", "attention_softmax.cl"};
static const char* const ops_kernel_names[CLSOFTMAX__OPS_K_COUNT] = {
    "linear_softmax_rows", "linear_softmax_topk", "attention_block"};
/* -cl-std=CL1.2 and never fast-math, as for the softmax kernels (program.c). */
static const char* const ops_options[CLSOFTMAX__DTYPE_COUNT] = {"-cl-std=CL1.2",
                                                                "-cl-std=CL1.2 -DCLSOFTMAX_FP64=1"};

/* ---- size arithmetic ----------------------------------------------------------- */

static int mul_ok(size_t a, size_t b, size_t* r)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *r = a * b;
    return 1;
}

static int add_ok(size_t a, size_t b, size_t* r)
{
    if (a > SIZE_MAX - b)
        return 0;
    *r = a + b;
    return 1;
}

/* Elements a strided 4-d view spans: 1 + sum (dim - 1) * stride. 0 on overflow. */
static size_t span4(const size_t dims[4], const size_t strides[4])
{
    size_t total = 1;
    for (int i = 0; i < 4; i++) {
        size_t t;
        if (!mul_ok(dims[i] - 1, strides[i], &t) || !add_ok(total, t, &total))
            return 0;
    }
    return total;
}

static size_t dtype_size(clsoftmax_dtype dtype)
{
    return dtype == CLSOFTMAX_FLOAT64 ? sizeof(double) : sizeof(float);
}

static int scale_ok(clsoftmax_dtype dtype, double scale)
{
    return isfinite(scale) && (dtype == CLSOFTMAX_FLOAT64 || isfinite((float)scale));
}

/* ---- descriptors ------------------------------------------------------------------ */

void clsoftmax_head_desc_init(clsoftmax_head_desc* desc, clsoftmax_dtype dtype, size_t rows,
                              size_t in_features, size_t classes)
{
    if (desc == NULL)
        return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->dtype = dtype;
    desc->rows = rows;
    desc->in_features = in_features;
    desc->classes = classes;
    desc->scale = 1.0;
    desc->op = CLSOFTMAX_OP_SOFTMAX;
    desc->topk = 0;
}

static void dense_strides(size_t heads, size_t seq, size_t feat, size_t* strides)
{
    strides[3] = 1;
    strides[2] = feat;
    strides[1] = seq * feat;
    strides[0] = heads * seq * feat;
}

void clsoftmax_attention_desc_init(clsoftmax_attention_desc* desc, clsoftmax_dtype dtype,
                                   size_t batch, size_t heads, size_t seq_q, size_t seq_k, size_t d,
                                   size_t d_v)
{
    if (desc == NULL)
        return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->dtype = dtype;
    desc->batch = batch;
    desc->heads = heads;
    desc->seq_q = seq_q;
    desc->seq_k = seq_k;
    desc->d = d;
    desc->d_v = d_v;
    dense_strides(heads, seq_q, d, desc->q_strides);
    dense_strides(heads, seq_k, d, desc->k_strides);
    dense_strides(heads, seq_k, d_v, desc->v_strides);
    dense_strides(heads, seq_q, d_v, desc->o_strides);
    desc->scale = d > 0 ? 1.0 / sqrt((double)d) : 1.0;
}

/* ---- validation (no device) ------------------------------------------------------------- */

/* Element counts of the head's arrays. */
typedef struct head_sizes {
    size_t x, w, bias, out, indices, esz;
} head_sizes;

/* The GEMMs run in float32 or float64; the 16-bit types are UNSUPPORTED, others INVALID_DTYPE. */
static clsoftmax_status check_dtype(clsoftmax_dtype dtype, char* msg, size_t msg_size)
{
    if (clsoftmax_dtype_size(dtype) == 0) {
        snprintf(msg, msg_size, "unknown dtype %d", (int)dtype);
        return CLSOFTMAX_INVALID_DTYPE;
    }
    if (dtype != CLSOFTMAX_FLOAT32 && dtype != CLSOFTMAX_FLOAT64) {
        snprintf(msg, msg_size,
                 "the 16-bit dtypes are storage types for softmax; this operation "
                 "takes float32 or float64");
        return CLSOFTMAX_UNSUPPORTED;
    }
    return CLSOFTMAX_SUCCESS;
}

static clsoftmax_status validate_head(const clsoftmax_head_desc* desc, head_sizes* sz, char* msg,
                                      size_t msg_size)
{
    if (desc == NULL || desc->struct_size != sizeof *desc) {
        snprintf(msg, msg_size, "%s",
                 desc == NULL ? "desc is NULL"
                              : "desc->struct_size is not sizeof(clsoftmax_head_desc): "
                                "initialise it with clsoftmax_head_desc_init()");
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    const clsoftmax_status dtype_status = check_dtype(desc->dtype, msg, msg_size);
    if (dtype_status != CLSOFTMAX_SUCCESS)
        return dtype_status;
    if (desc->rows == 0 || desc->in_features == 0 || desc->classes == 0) {
        snprintf(msg, msg_size, "rows %zu, in_features %zu, classes %zu: none may be 0", desc->rows,
                 desc->in_features, desc->classes);
        return CLSOFTMAX_INVALID_SHAPE;
    }
    if (desc->topk > CLSOFTMAX_MAX_TOPK || desc->topk > desc->classes) {
        snprintf(msg, msg_size, "topk %zu exceeds %s (%zu)", desc->topk,
                 desc->topk > CLSOFTMAX_MAX_TOPK ? "CLSOFTMAX_MAX_TOPK" : "classes",
                 desc->topk > CLSOFTMAX_MAX_TOPK ? (size_t)CLSOFTMAX_MAX_TOPK : desc->classes);
        return CLSOFTMAX_INVALID_SHAPE;
    }
    if (desc->op != CLSOFTMAX_OP_SOFTMAX && desc->op != CLSOFTMAX_OP_LOG_SOFTMAX) {
        snprintf(msg, msg_size, "unknown op %d", (int)desc->op);
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    if (!scale_ok(desc->dtype, desc->scale)) {
        snprintf(msg, msg_size, "scale %g is not finite in the dtype", desc->scale);
        return CLSOFTMAX_INVALID_SCALE;
    }
    sz->esz = dtype_size(desc->dtype);
    size_t out_cols = desc->topk > 0 ? desc->topk : desc->classes;
    size_t bytes;
    if (!mul_ok(desc->rows, desc->in_features, &sz->x) ||
        !mul_ok(desc->classes, desc->in_features, &sz->w) ||
        !mul_ok(desc->rows, out_cols, &sz->out) || !mul_ok(desc->rows, desc->classes, &bytes) ||
        !mul_ok(bytes, sz->esz, &bytes) || !mul_ok(sz->x, sz->esz, &bytes) ||
        !mul_ok(sz->w, sz->esz, &bytes) || !mul_ok(sz->out, sz->esz, &bytes)) {
        snprintf(msg, msg_size, "the head's sizes overflow size_t");
        return CLSOFTMAX_SIZE_OVERFLOW;
    }
    sz->bias = desc->classes;
    sz->indices = desc->topk > 0 ? sz->out : 0;
    return CLSOFTMAX_SUCCESS;
}

typedef struct attn_sizes {
    size_t q, k, v, o, mask, esz;
} attn_sizes;

/* O's elements are distinct: its dimensions, sorted by stride, each step past the last's span. */
static int strides_disjoint(const size_t dims[4], const size_t strides[4])
{
    int order[4] = {0, 1, 2, 3};
    for (int a = 1; a < 4; a++)
        for (int b = a; b > 0 && strides[order[b]] < strides[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    size_t extent = 1; /* elements spanned by the dimensions seen so far */
    for (int a = 0; a < 4; a++) {
        const int i = order[a];
        if (dims[i] == 1)
            continue;
        if (strides[i] < extent)
            return 0;
        size_t t;
        if (!mul_ok(dims[i] - 1, strides[i], &t) || !add_ok(extent, t, &extent))
            return 0;
    }
    return 1;
}

static clsoftmax_status validate_attention(const clsoftmax_attention_desc* desc, attn_sizes* sz,
                                           char* msg, size_t msg_size)
{
    if (desc == NULL || desc->struct_size != sizeof *desc) {
        snprintf(msg, msg_size, "%s",
                 desc == NULL ? "desc is NULL"
                              : "desc->struct_size is not sizeof(clsoftmax_attention_desc): "
                                "initialise it with clsoftmax_attention_desc_init()");
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    const clsoftmax_status dtype_status = check_dtype(desc->dtype, msg, msg_size);
    if (dtype_status != CLSOFTMAX_SUCCESS)
        return dtype_status;
    if (desc->batch == 0 || desc->heads == 0 || desc->seq_q == 0 || desc->seq_k == 0 ||
        desc->d == 0 || desc->d_v == 0) {
        snprintf(msg, msg_size,
                 "batch %zu, heads %zu, seq_q %zu, seq_k %zu, d %zu, d_v %zu: none may be 0",
                 desc->batch, desc->heads, desc->seq_q, desc->seq_k, desc->d, desc->d_v);
        return CLSOFTMAX_INVALID_SHAPE;
    }
    if (!scale_ok(desc->dtype, desc->scale)) {
        snprintf(msg, msg_size, "scale %g is not finite in the dtype", desc->scale);
        return CLSOFTMAX_INVALID_SCALE;
    }
    const struct {
        const char* name;
        const size_t* strides;
        size_t seq, feat;
    } t[4] = {{"q", desc->q_strides, desc->seq_q, desc->d},
              {"k", desc->k_strides, desc->seq_k, desc->d},
              {"v", desc->v_strides, desc->seq_k, desc->d_v},
              {"out", desc->o_strides, desc->seq_q, desc->d_v}};
    size_t* spans[4] = {&sz->q, &sz->k, &sz->v, &sz->o};
    for (int i = 0; i < 4; i++) {
        if (t[i].strides[3] != 1 || t[i].strides[2] < t[i].feat) {
            snprintf(msg, msg_size,
                     "bad strides for %s: the feature stride must be 1 (is %zu) and the seq "
                     "stride at least %zu features (is %zu)",
                     t[i].name, t[i].strides[3], t[i].feat, t[i].strides[2]);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        const size_t dims[4] = {desc->batch, desc->heads, t[i].seq, t[i].feat};
        *spans[i] = span4(dims, t[i].strides);
        if (*spans[i] == 0 || *spans[i] > SIZE_MAX / sizeof(double)) {
            snprintf(msg, msg_size, "%s's strides span more elements than size_t counts",
                     t[i].name);
            return CLSOFTMAX_SIZE_OVERFLOW;
        }
        if (i == 3 && !strides_disjoint(dims, t[i].strides)) {
            snprintf(msg, msg_size,
                     "bad strides for out: %zu, %zu, %zu, %zu make output elements overlap",
                     t[i].strides[0], t[i].strides[1], t[i].strides[2], t[i].strides[3]);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
    }
    sz->mask = 0;
    if (desc->mask_batch != 0) {
        if ((desc->mask_batch != 1 && desc->mask_batch != desc->batch) ||
            (desc->mask_heads != 1 && desc->mask_heads != desc->heads)) {
            snprintf(msg, msg_size,
                     "mask [%zu, %zu, seq_q, seq_k] does not broadcast to batch %zu, heads %zu "
                     "(each must be 1 or equal)",
                     desc->mask_batch, desc->mask_heads, desc->batch, desc->heads);
            return CLSOFTMAX_INVALID_SHAPE;
        }
        if (!mul_ok(desc->mask_batch, desc->mask_heads, &sz->mask) ||
            !mul_ok(sz->mask, desc->seq_q, &sz->mask) ||
            !mul_ok(sz->mask, desc->seq_k, &sz->mask) || sz->mask > SIZE_MAX / sizeof(double)) {
            snprintf(msg, msg_size, "the mask's element count overflows size_t");
            return CLSOFTMAX_SIZE_OVERFLOW;
        }
    }
    if (desc->key_lengths != NULL) {
        for (size_t b = 0; b < desc->batch; b++)
            if (desc->key_lengths[b] > desc->seq_k) {
                snprintf(msg, msg_size, "key_lengths[%zu] = %zu exceeds seq_k %zu", b,
                         desc->key_lengths[b], desc->seq_k);
                return CLSOFTMAX_INVALID_ARGUMENT;
            }
    }
    size_t rows;
    if (!mul_ok(desc->heads, desc->seq_q, &rows) || !mul_ok(rows, 3, &rows) ||
        !mul_ok(rows, sizeof(double), &rows)) {
        snprintf(msg, msg_size, "heads * seq_q overflows size_t");
        return CLSOFTMAX_SIZE_OVERFLOW;
    }
    sz->esz = dtype_size(desc->dtype);
    return CLSOFTMAX_SUCCESS;
}

/* ---- shared helpers --------------------------------------------------------------------- */

static int ranges_overlap(const void* a, size_t a_len, const void* b, size_t b_len)
{
    uintptr_t x = (uintptr_t)a;
    uintptr_t y = (uintptr_t)b;
    return a != NULL && b != NULL && x < y + b_len && y < x + a_len;
}

/* The float64 and CBLAS-int limits each backend has, after the descriptor is valid. */
static clsoftmax_status backend_limits(const clsoftmax_context* ctx, clsoftmax_dtype dtype,
                                       const size_t* sizes, size_t count, char* msg,
                                       size_t msg_size)
{
    if (ctx->backend == CLSOFTMAX_BACKEND_OPENCL && dtype == CLSOFTMAX_FLOAT64 &&
        !ctx->caps.has_fp64) {
        snprintf(msg, msg_size, "float64 needs cl_khr_fp64, which %.180s does not support",
                 ctx->device_name);
        return CLSOFTMAX_UNSUPPORTED;
    }
    if (ctx->backend == CLSOFTMAX_BACKEND_CPU)
        for (size_t i = 0; i < count; i++)
            if (sizes[i] > (size_t)INT_MAX) {
                snprintf(msg, msg_size,
                         "a size or stride of %zu exceeds CBLAS's int on the CPU backend",
                         sizes[i]);
                return CLSOFTMAX_SIZE_OVERFLOW;
            }
    return CLSOFTMAX_SUCCESS;
}

/* The ops kernel for (id, dtype), building the dtype's ops program on first use. Holds lock. */
static clsoftmax_status ops_kernel(clsoftmax_context* ctx, clsoftmax__ops_kernel_id id,
                                   clsoftmax_dtype dtype, cl_kernel* kernel, size_t* max_wg)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    clsoftmax__ops_cache* c = &ctx->ops;
    if (c->program[dtype] == NULL) {
        cl_program program = NULL;
        cl_kernel made[CLSOFTMAX__OPS_K_COUNT] = {NULL};
        size_t wg[CLSOFTMAX__OPS_K_COUNT] = {0};
        cl_int err = CL_SUCCESS;
        status = clsoftmax__program_build_ops(
            ctx, sizeof ops_sources / sizeof ops_sources[0], ops_sources, ops_options[dtype],
            dtype == CLSOFTMAX_FLOAT64 ? "float64 head/attention" : "float32 head/attention",
            &program);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        for (size_t k = 0; k < CLSOFTMAX__OPS_K_COUNT; k++) {
            made[k] = clCreateKernel(program, ops_kernel_names[k], &err);
            if (err != CL_SUCCESS) {
                status = clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateKernel",
                                             err, "creating kernel %s", ops_kernel_names[k]);
                goto build_cleanup;
            }
            CHECK_CL(ctx,
                     clGetKernelWorkGroupInfo(made[k], ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                              sizeof wg[k], &wg[k], NULL),
                     build_cleanup);
        }
        c->program[dtype] = program;
        program = NULL;
        for (size_t k = 0; k < CLSOFTMAX__OPS_K_COUNT; k++) {
            c->kernel[dtype][k] = made[k];
            c->kernel_wg[dtype][k] = wg[k];
            made[k] = NULL;
        }
    build_cleanup:
        for (size_t k = 0; k < CLSOFTMAX__OPS_K_COUNT; k++)
            if (made[k] != NULL)
                clReleaseKernel(made[k]);
        if (program != NULL)
            clReleaseProgram(program);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
    }
    *kernel = c->kernel[dtype][id];
    *max_wg = c->kernel_wg[dtype][id];
    return CLSOFTMAX_SUCCESS;
}

void clsoftmax__ops_release(clsoftmax__ops_cache* c)
{
    if (c == NULL)
        return;
    for (size_t d = 0; d < CLSOFTMAX__DTYPE_COUNT; d++) {
        for (size_t k = 0; k < CLSOFTMAX__OPS_K_COUNT; k++) {
            if (c->kernel[d][k] != NULL)
                clReleaseKernel(c->kernel[d][k]);
            c->kernel[d][k] = NULL;
        }
        if (c->program[d] != NULL)
            clReleaseProgram(c->program[d]);
        c->program[d] = NULL;
    }
    if (c->scratch != NULL)
        clReleaseMemObject(c->scratch);
    c->scratch = NULL;
    c->scratch_bytes = 0;
}

/* The context's scratch, grown (never shrunk) to at least bytes. Holds lock. */
static clsoftmax_status ops_scratch(clsoftmax_context* ctx, size_t bytes)
{
    return clsoftmax__scratch_reserve(ctx, &ctx->ops.scratch, &ctx->ops.scratch_bytes, bytes,
                                      "head/attention");
}

/* Work-items per row: a power of two, at most the kernel's limit, no more than the row needs. */
static size_t local_size(const clsoftmax_context* ctx, size_t kernel_wg, size_t row)
{
    const size_t cap = (ctx->caps.type & CL_DEVICE_TYPE_CPU) ? OPS_LOCAL_MAX_CPU : OPS_LOCAL_MAX;
    size_t l = 1;
    while (l * 2 <= cap && l * 2 <= kernel_wg && l < row)
        l *= 2;
    return l;
}

/*
 * A row of bytes staged in __local memory leaves half the device's local memory free (PoCL's
 * 512 KiB stage rows of 65536 floats; a GPU's 48 KiB rows of 6000): beyond it the kernels
 * re-read global memory instead.
 */
static int stage_fits(const clsoftmax_context* ctx, size_t bytes)
{
    return bytes <= ctx->caps.local_mem_size / 2;
}

/* The queue belongs to the context and device and runs commands in order. Holds lock. */
static clsoftmax_status check_queue(clsoftmax_context* ctx, cl_command_queue queue)
{
    clsoftmax_status status = clsoftmax__check_queue(ctx, queue);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    cl_command_queue_properties props = 0;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    if (err != CL_SUCCESS)
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clGetCommandQueueInfo",
                                   err, "querying the queue");
    if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
        return clsoftmax__error(ctx, CLSOFTMAX_INVALID_QUEUE,
                                "queue is out-of-order; CLBlast's calls take no wait list, so "
                                "head and attention need an in-order queue");
    return CLSOFTMAX_SUCCESS;
}

/* The caller's queue, checked, or the context's when queue is NULL. Holds lock. */
static clsoftmax_status pick_queue(clsoftmax_context* ctx, cl_command_queue* queue)
{
    if (*queue == NULL) {
        *queue = ctx->queue;
        return CLSOFTMAX_SUCCESS;
    }
    return check_queue(ctx, *queue);
}

/* One device-buffer argument of a buffer entry point; an optional one is skipped when NULL. */
typedef struct buf_arg {
    cl_mem buf;
    const char* name;
    size_t offset, count, esz;
    int optional;
} buf_arg;

/* check_buffer on each argument in order; the first failure wins. Holds lock. */
static clsoftmax_status check_buffers(clsoftmax_context* ctx, const buf_arg* args, size_t count)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    for (size_t i = 0; i < count && status == CLSOFTMAX_SUCCESS; i++)
        if (!(args[i].optional && args[i].buf == NULL))
            status = clsoftmax__check_buffer(ctx, args[i].buf, args[i].name, args[i].offset,
                                             args[i].count, args[i].esz);
    return status;
}

/* The first command waits for the caller's events; CLBlast takes no wait list. Holds lock. */
static clsoftmax_status enqueue_wait(clsoftmax_context* ctx, cl_command_queue queue,
                                     cl_uint num_wait, const cl_event* wait_list)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    if (num_wait > 0)
        CHECK_CL(ctx, clEnqueueBarrierWithWaitList(queue, num_wait, wait_list, NULL), cleanup);
cleanup:
    return status;
}

/* The caller's event: a marker after the last command of the in-order queue. Holds lock. */
static clsoftmax_status enqueue_done(clsoftmax_context* ctx, cl_command_queue queue,
                                     cl_event* event)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    if (event != NULL) {
        cl_event done = NULL;
        CHECK_CL(ctx, clEnqueueMarkerWithWaitList(queue, 0, NULL, &done), cleanup);
        *event = done;
    }
cleanup:
    return status;
}

/* Sets a REAL kernel argument in the dtype's precision (float32: rounded as the CPU does). */
static cl_int set_real(cl_kernel k, cl_uint index, clsoftmax_dtype dtype, double v)
{
    if (dtype == CLSOFTMAX_FLOAT64)
        return clSetKernelArg(k, index, sizeof(cl_double), &v);
    cl_float f = (cl_float)v;
    return clSetKernelArg(k, index, sizeof f, &f);
}

#define SET_ARG(k, i, v) CHECK_CL(ctx, clSetKernelArg((k), (i), sizeof(v), &(v)), cleanup)

/* set_real through CHECK_CL would name "set_real(...)": the error must name the OpenCL call. */
#define SET_REAL(k, i, dtype, v)                                                                   \
    do {                                                                                           \
        cl_int set_real_err_ = set_real((k), (i), (dtype), (v));                                   \
        if (set_real_err_ != CL_SUCCESS) {                                                         \
            status = clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(set_real_err_),            \
                                         "clSetKernelArg", set_real_err_, "in %s", __func__);      \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)

/* ---- classifier head on OpenCL ------------------------------------------------------------ */

typedef struct head_bufs {
    cl_mem x, w, bias, out, indices;
    size_t x_off, w_off, bias_off, out_off, indices_off;
} head_bufs;

/* Enqueues the validated head on queue. Holds lock. */
static clsoftmax_status head_enqueue(clsoftmax_context* ctx, const clsoftmax_head_desc* desc,
                                     const head_bufs* hb, cl_command_queue queue, cl_uint num_wait,
                                     const cl_event* wait_list, cl_event* event)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const size_t esz = dtype_size(desc->dtype);
    const size_t n = desc->classes;
    const int topk = desc->topk > 0;
    cl_kernel kernel = NULL;
    size_t max_wg = 0;

    /* Build before enqueueing anything, so a build failure leaves the outputs alone. */
    status = ops_kernel(ctx, topk ? CLSOFTMAX__OPS_K_TOPK : CLSOFTMAX__OPS_K_LINEAR, desc->dtype,
                        &kernel, &max_wg);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    size_t block = desc->rows;
    if (topk) {
        size_t cap = OPS_SCRATCH_CAP / (n * esz);
        block = cap == 0 ? 1 : (cap < desc->rows ? cap : desc->rows);
        status = ops_scratch(ctx, block * n * esz);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
    }
    status = enqueue_wait(ctx, queue, num_wait, wait_list);
    if (status != CLSOFTMAX_SUCCESS)
        return status;

    const size_t lsz = local_size(ctx, max_wg, n);
    const cl_int has_bias = hb->bias != NULL;
    const cl_mem bias = has_bias ? hb->bias : hb->x; /* any valid buffer when unused */
    const cl_ulong bias_off = has_bias ? hb->bias_off : 0;
    const cl_ulong classes = n;
    const cl_int log_op = desc->op == CLSOFTMAX_OP_LOG_SOFTMAX;
    for (size_t r0 = 0; r0 < desc->rows; r0 += block) {
        const size_t nr = desc->rows - r0 < block ? desc->rows - r0 : block;
        const cl_mem logits = topk ? ctx->ops.scratch : hb->out;
        const size_t l_off = topk ? 0 : hb->out_off + r0 * n;
        clsoftmax__gemm g = {.dtype = desc->dtype,
                             .trans_b = 1,
                             .m = nr,
                             .n = n,
                             .k = desc->in_features,
                             .alpha = 1.0,
                             .beta = 0.0,
                             .a = hb->x,
                             .a_off = hb->x_off + r0 * desc->in_features,
                             .lda = desc->in_features,
                             .a_stride = nr * desc->in_features,
                             .b = hb->w,
                             .b_off = hb->w_off,
                             .ldb = desc->in_features,
                             .b_stride = n * desc->in_features,
                             .c = logits,
                             .c_off = l_off,
                             .ldc = n,
                             .c_stride = nr * n,
                             .batch = 1};
        status = clsoftmax__gemm_enqueue(ctx, &g, queue);
        if (status != CLSOFTMAX_SUCCESS)
            return status;

        const cl_ulong off = l_off;
        const cl_ulong rows = nr;
        cl_uint a = 0;
        SET_ARG(kernel, a++, logits);
        SET_ARG(kernel, a++, off);
        SET_ARG(kernel, a++, rows);
        SET_ARG(kernel, a++, classes);
        SET_ARG(kernel, a++, bias);
        SET_ARG(kernel, a++, bias_off);
        SET_ARG(kernel, a++, has_bias);
        SET_REAL(kernel, a++, desc->dtype, desc->scale);
        SET_ARG(kernel, a++, log_op);
        if (!topk) {
            /* Stage the row of t in __local memory when it fits comfortably. */
            const cl_int staged = stage_fits(ctx, (n + lsz) * esz);
            SET_ARG(kernel, a++, staged);
            CHECK_CL(ctx, clSetKernelArg(kernel, a++, (staged ? n + lsz : lsz) * esz, NULL),
                     cleanup);
        } else {
            const cl_ulong k = desc->topk;
            const cl_ulong v_off = hb->out_off + r0 * desc->topk;
            const cl_ulong i_off = hb->indices_off + r0 * desc->topk;
            SET_ARG(kernel, a++, k);
            SET_ARG(kernel, a++, hb->out);
            SET_ARG(kernel, a++, v_off);
            SET_ARG(kernel, a++, hb->indices);
            SET_ARG(kernel, a++, i_off);
            CHECK_CL(ctx, clSetKernelArg(kernel, a++, lsz * esz, NULL), cleanup);
            CHECK_CL(ctx, clSetKernelArg(kernel, a++, lsz * sizeof(cl_long), NULL), cleanup);
        }
        const size_t groups = nr < OPS_GROUPS_MAX ? nr : OPS_GROUPS_MAX;
        const size_t global = groups * lsz;
        CHECK_CL(ctx, clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, &lsz, 0, NULL, NULL),
                 cleanup);
    }
    status = enqueue_done(ctx, queue, event);
cleanup:
    return status;
}

/* ---- attention on OpenCL -------------------------------------------------------------------- */

typedef struct attn_bufs {
    cl_mem q, k, v, mask, out, ws;
    size_t q_off, k_off, v_off, mask_off, out_off, ws_bytes;
} attn_bufs;

/* Bytes of workspace: the running max and sum of each row, then a block of bk scores per row. */
static size_t attn_ws_bytes(const clsoftmax_attention_desc* desc, size_t bk)
{
    size_t rows = desc->heads * desc->seq_q; /* validated not to overflow */
    size_t b;
    if (!mul_ok(rows, 2 + bk, &b) || !mul_ok(b, dtype_size(desc->dtype), &b))
        return SIZE_MAX;
    return b;
}

/* The key block the context workspace takes: all of seq_k when its scores fit the cap. */
static size_t attn_preferred_block(const clsoftmax_attention_desc* desc)
{
    size_t per_key = desc->heads * desc->seq_q * dtype_size(desc->dtype);
    size_t bk = per_key == 0 || per_key > OPS_SCRATCH_CAP ? 1 : OPS_SCRATCH_CAP / per_key;
    return bk < desc->seq_k ? bk : desc->seq_k;
}

/* Enqueues the validated attention on queue; ab->ws holds ws_bytes (>= the minimum). Holds lock. */
static clsoftmax_status attention_enqueue(clsoftmax_context* ctx,
                                          const clsoftmax_attention_desc* desc, const attn_bufs* ab,
                                          cl_command_queue queue, cl_uint num_wait,
                                          const cl_event* wait_list, cl_event* event)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const size_t esz = dtype_size(desc->dtype);
    const size_t rows = desc->heads * desc->seq_q;
    cl_kernel kernel = NULL;
    size_t max_wg = 0;

    status = ops_kernel(ctx, CLSOFTMAX__OPS_K_ATTENTION, desc->dtype, &kernel, &max_wg);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    size_t bk = ab->ws_bytes / esz / rows - 2;
    if (bk > desc->seq_k)
        bk = desc->seq_k;
    status = enqueue_wait(ctx, queue, num_wait, wait_list);
    if (status != CLSOFTMAX_SUCCESS)
        return status;

    const size_t* qs = desc->q_strides;
    const size_t* ks = desc->k_strides;
    const size_t* vs = desc->v_strides;
    const size_t* os = desc->o_strides;
    const size_t sq = desc->seq_q;
    const size_t sk = desc->seq_k;
    const size_t s_off = 2 * rows;
    const size_t lsz_full = local_size(ctx, max_wg, bk > desc->d_v ? bk : desc->d_v);
    const cl_int has_mask = ab->mask != NULL;
    const cl_mem mask = has_mask ? ab->mask : ab->ws;
    const cl_ulong mask_sh = desc->mask_heads > 1 ? sq * sk : 0;
    const cl_int causal = desc->causal != 0;

    for (size_t b = 0; b < desc->batch; b++) {
        const cl_ulong kv_len = desc->key_lengths != NULL ? desc->key_lengths[b] : sk;
        const cl_ulong mask_off =
            has_mask ? ab->mask_off + (desc->mask_batch > 1 ? b * desc->mask_heads * sq * sk : 0)
                     : 0;
        for (size_t j0 = 0; j0 < sk; j0 += bk) {
            const size_t nk = sk - j0 < bk ? sk - j0 : bk;
            clsoftmax__gemm g1 = {.dtype = desc->dtype,
                                  .trans_b = 1,
                                  .m = sq,
                                  .n = nk,
                                  .k = desc->d,
                                  .alpha = 1.0,
                                  .beta = 0.0,
                                  .a = ab->q,
                                  .a_off = ab->q_off + b * qs[0],
                                  .lda = qs[2],
                                  .a_stride = qs[1],
                                  .b = ab->k,
                                  .b_off = ab->k_off + b * ks[0] + j0 * ks[2],
                                  .ldb = ks[2],
                                  .b_stride = ks[1],
                                  .c = ab->ws,
                                  .c_off = s_off,
                                  .ldc = nk,
                                  .c_stride = sq * nk,
                                  .batch = desc->heads};
            status = clsoftmax__gemm_enqueue(ctx, &g1, queue);
            if (status != CLSOFTMAX_SUCCESS)
                return status;

            /* Stage the row of t in __local memory when it fits comfortably. */
            const size_t lsz = lsz_full;
            const cl_int staged = stage_fits(ctx, (nk + lsz) * esz);
            const cl_ulong a_s_off = s_off;
            const cl_ulong heads = desc->heads;
            const cl_ulong seq_q = sq;
            const cl_ulong bkv = nk;
            const cl_ulong j0v = j0;
            const cl_ulong seq_k = sk;
            const cl_ulong st_off = 0;
            const cl_ulong o_off = ab->out_off + b * os[0];
            const cl_ulong o_sh = os[1];
            const cl_ulong o_ss = os[2];
            const cl_ulong d_v = desc->d_v;
            const cl_int first = j0 == 0;
            const cl_int last = j0 + nk == sk;
            cl_uint a = 0;
            SET_ARG(kernel, a++, ab->ws);
            SET_ARG(kernel, a++, a_s_off);
            SET_ARG(kernel, a++, heads);
            SET_ARG(kernel, a++, seq_q);
            SET_ARG(kernel, a++, bkv);
            SET_ARG(kernel, a++, j0v);
            SET_ARG(kernel, a++, seq_k);
            SET_REAL(kernel, a++, desc->dtype, desc->scale);
            SET_ARG(kernel, a++, causal);
            SET_ARG(kernel, a++, kv_len);
            SET_ARG(kernel, a++, mask);
            SET_ARG(kernel, a++, mask_off);
            SET_ARG(kernel, a++, mask_sh);
            SET_ARG(kernel, a++, has_mask);
            SET_ARG(kernel, a++, ab->ws);
            SET_ARG(kernel, a++, st_off);
            SET_ARG(kernel, a++, ab->out);
            SET_ARG(kernel, a++, o_off);
            SET_ARG(kernel, a++, o_sh);
            SET_ARG(kernel, a++, o_ss);
            SET_ARG(kernel, a++, d_v);
            SET_ARG(kernel, a++, first);
            SET_ARG(kernel, a++, last);
            SET_ARG(kernel, a++, staged);
            CHECK_CL(ctx, clSetKernelArg(kernel, a++, (staged ? nk + lsz : lsz) * esz, NULL),
                     cleanup);
            const size_t groups = rows < OPS_GROUPS_MAX ? rows : OPS_GROUPS_MAX;
            const size_t global = groups * lsz;
            CHECK_CL(ctx,
                     clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, &lsz, 0, NULL, NULL),
                     cleanup);

            clsoftmax__gemm g2 = {.dtype = desc->dtype,
                                  .trans_b = 0,
                                  .m = sq,
                                  .n = desc->d_v,
                                  .k = nk,
                                  .alpha = 1.0,
                                  .beta = 1.0,
                                  .a = ab->ws,
                                  .a_off = s_off,
                                  .lda = nk,
                                  .a_stride = sq * nk,
                                  .b = ab->v,
                                  .b_off = ab->v_off + b * vs[0] + j0 * vs[2],
                                  .ldb = vs[2],
                                  .b_stride = vs[1],
                                  .c = ab->out,
                                  .c_off = ab->out_off + b * os[0],
                                  .ldc = os[2],
                                  .c_stride = os[1],
                                  .batch = desc->heads};
            status = clsoftmax__gemm_enqueue(ctx, &g2, queue);
            if (status != CLSOFTMAX_SUCCESS)
                return status;
        }
    }
    status = enqueue_done(ctx, queue, event);
cleanup:
    return status;
}

/* ---- public entry points: the head ---------------------------------------------------------- */

/* Device buffer of count elements holding host data (or uninitialised when data is NULL). Holds
   lock. */
static clsoftmax_status make_buffer(clsoftmax_context* ctx, size_t bytes, const void* data,
                                    const char* name, cl_mem* buf)
{
    cl_int err = CL_SUCCESS;
    if (bytes > ctx->caps.max_mem_alloc_size)
        return clsoftmax__error(ctx, CLSOFTMAX_UNSUPPORTED,
                                "%s's %zu bytes exceed %s's CL_DEVICE_MAX_MEM_ALLOC_SIZE", name,
                                bytes, ctx->device_name);
    *buf =
        clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE | (data != NULL ? CL_MEM_COPY_HOST_PTR : 0),
                       bytes, (void*)data, &err);
    if (err != CL_SUCCESS) {
        *buf = NULL;
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                   "%zu bytes for %s", bytes, name);
    }
    return CLSOFTMAX_SUCCESS;
}

/* One host argument of a host entry point, copied to (upload) or allocated for it on the device;
   skipped when host is NULL (an absent optional argument). */
typedef struct host_arg {
    const void* host;
    size_t bytes;
    const char* name;
    int upload;
    cl_mem* buf;
} host_arg;

/* make_buffer for each argument in order; the first failure wins. Holds lock. */
static clsoftmax_status make_buffers(clsoftmax_context* ctx, const host_arg* args, size_t count)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    for (size_t i = 0; i < count && status == CLSOFTMAX_SUCCESS; i++)
        if (args[i].host != NULL)
            status = make_buffer(ctx, args[i].bytes, args[i].upload ? args[i].host : NULL,
                                 args[i].name, args[i].buf);
    return status;
}

/* A host entry point's end: after a failure, waits until no command uses the buffers any more,
   then releases them and the lock. Returns status. */
static clsoftmax_status host_finish(clsoftmax_context* ctx, clsoftmax_status status,
                                    const cl_mem* bufs, size_t count)
{
    if (status != CLSOFTMAX_SUCCESS)
        clFinish(ctx->queue);
    for (size_t i = 0; i < count; i++)
        if (bufs[i] != NULL)
            clReleaseMemObject(bufs[i]);
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

/* A host entry point's CPU-path result: rc != 0 means the path found no memory for its scratch
   (what). Records the outcome in ctx. */
static clsoftmax_status cpu_result(clsoftmax_context* ctx, int rc, const char* what)
{
    if (rc != 0)
        return clsoftmax__fail(ctx, CLSOFTMAX_OUT_OF_MEMORY, what);
    clsoftmax__succeed(ctx);
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax_linear_softmax_host(clsoftmax_context* ctx,
                                               const clsoftmax_head_desc* desc, const void* x,
                                               const void* w, const void* bias, void* out,
                                               cl_long* indices)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    char msg[256];
    head_sizes sz;
    clsoftmax_status status = validate_head(desc, &sz, msg, sizeof msg);
    if (status == CLSOFTMAX_SUCCESS) {
        const size_t lim[] = {desc->rows, desc->in_features, desc->classes};
        status = backend_limits(ctx, desc->dtype, lim, 3, msg, sizeof msg);
    }
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    if (x == NULL || w == NULL || out == NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               x == NULL ? "x is NULL" : (w == NULL ? "w is NULL" : "out is NULL"));
    if ((desc->topk > 0) != (indices != NULL))
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               "indices must be non-NULL exactly when topk > 0");
    const size_t ob = sz.out * sz.esz;
    const size_t ib = sz.indices * sizeof(cl_long);
    if (ranges_overlap(out, ob, x, sz.x * sz.esz) || ranges_overlap(out, ob, w, sz.w * sz.esz) ||
        ranges_overlap(out, ob, bias, sz.bias * sz.esz) ||
        ranges_overlap(indices, ib, x, sz.x * sz.esz) ||
        ranges_overlap(indices, ib, w, sz.w * sz.esz) ||
        ranges_overlap(indices, ib, bias, sz.bias * sz.esz) || ranges_overlap(indices, ib, out, ob))
        return clsoftmax__fail(ctx, CLSOFTMAX_OVERLAP,
                               "an output overlaps an input or the other output");

    if (ctx->backend == CLSOFTMAX_BACKEND_CPU) {
        clsoftmax__cpu_head_job job = {.is_double = desc->dtype == CLSOFTMAX_FLOAT64,
                                       .rows = desc->rows,
                                       .in_features = desc->in_features,
                                       .classes = desc->classes,
                                       .scale = desc->scale,
                                       .log = desc->op == CLSOFTMAX_OP_LOG_SOFTMAX,
                                       .topk = desc->topk,
                                       .x = x,
                                       .w = w,
                                       .bias = bias,
                                       .out = out,
                                       .indices = (int64_t*)indices,
                                       .threads = ctx->cpu_threads};
        return cpu_result(ctx, clsoftmax__cpu_linear_softmax(&job),
                          "no host memory for the logits scratch");
    }

    head_bufs hb = {0};
    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    const host_arg args[] = {
        {x, sz.x * sz.esz, "x", 1, &hb.x},
        {w, sz.w * sz.esz, "w", 1, &hb.w},
        {bias, sz.bias * sz.esz, "bias", 1, &hb.bias},
        {out, ob, "out", 0, &hb.out},
        {indices, ib, "indices", 0, &hb.indices},
    };
    status = make_buffers(ctx, args, sizeof args / sizeof args[0]);
    if (status == CLSOFTMAX_SUCCESS)
        status = head_enqueue(ctx, desc, &hb, ctx->queue, 0, NULL, NULL);
    /* Finish before reading so that a failed command never reaches the outputs. */
    if (status == CLSOFTMAX_SUCCESS)
        CHECK_CL(ctx, clFinish(ctx->queue), host_cleanup);
    if (status == CLSOFTMAX_SUCCESS)
        CHECK_CL(ctx, clEnqueueReadBuffer(ctx->queue, hb.out, CL_TRUE, 0, ob, out, 0, NULL, NULL),
                 host_cleanup);
    if (status == CLSOFTMAX_SUCCESS && indices != NULL)
        CHECK_CL(
            ctx,
            clEnqueueReadBuffer(ctx->queue, hb.indices, CL_TRUE, 0, ib, indices, 0, NULL, NULL),
            host_cleanup);
host_cleanup:;
    const cl_mem all[] = {hb.x, hb.w, hb.bias, hb.out, hb.indices};
    return host_finish(ctx, status, all, sizeof all / sizeof all[0]);
}

clsoftmax_status
clsoftmax_linear_softmax_buffer(clsoftmax_context* ctx, const clsoftmax_head_desc* desc, cl_mem x,
                                size_t x_offset, cl_mem w, size_t w_offset, cl_mem bias,
                                size_t bias_offset, cl_mem out, size_t out_offset, cl_mem indices,
                                size_t indices_offset, cl_command_queue queue, cl_uint num_wait,
                                const cl_event* wait_list, cl_event* event)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    if (ctx->backend != CLSOFTMAX_BACKEND_OPENCL)
        return clsoftmax__fail_not_opencl(ctx);
    char msg[256];
    head_sizes sz;
    const char* why = NULL;
    clsoftmax_status status = validate_head(desc, &sz, msg, sizeof msg);
    if (status == CLSOFTMAX_SUCCESS)
        status = backend_limits(ctx, desc->dtype, NULL, 0, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    if ((desc->topk > 0) != (indices != NULL))
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               "indices must be non-NULL exactly when topk > 0");
    if (clsoftmax__check_wait_list(num_wait, wait_list, &why) != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT, why);

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    const buf_arg args[] = {
        {x, "x", x_offset, sz.x, sz.esz, 0},
        {w, "w", w_offset, sz.w, sz.esz, 0},
        {bias, "bias", bias_offset, sz.bias, sz.esz, 1},
        {out, "out", out_offset, sz.out, sz.esz, 0},
        {indices, "indices", indices_offset, sz.indices, sizeof(cl_long), 1},
    };
    status = pick_queue(ctx, &queue);
    if (status == CLSOFTMAX_SUCCESS)
        status = check_buffers(ctx, args, sizeof args / sizeof args[0]);
    if (status == CLSOFTMAX_SUCCESS && (out == x || out == w || out == bias || indices == x ||
                                        indices == w || indices == bias || indices == out))
        status = clsoftmax__error(ctx, CLSOFTMAX_OVERLAP,
                                  "an output buffer is also an input (or the other output)");
    if (status == CLSOFTMAX_SUCCESS) {
        head_bufs hb = {.x = x,
                        .w = w,
                        .bias = bias,
                        .out = out,
                        .indices = indices,
                        .x_off = x_offset,
                        .w_off = w_offset,
                        .bias_off = bias_offset,
                        .out_off = out_offset,
                        .indices_off = indices_offset};
        status = head_enqueue(ctx, desc, &hb, queue, num_wait, wait_list, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    return status;
}

/* ---- public entry points: attention -------------------------------------------------------- */

clsoftmax_status clsoftmax_attention_workspace_size(clsoftmax_context* ctx,
                                                    const clsoftmax_attention_desc* desc,
                                                    size_t* min_bytes, size_t* bytes)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    char msg[256];
    attn_sizes sz;
    clsoftmax_status status = validate_attention(desc, &sz, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    const int cpu = ctx->backend == CLSOFTMAX_BACKEND_CPU;
    if (min_bytes != NULL)
        *min_bytes = cpu ? 0 : attn_ws_bytes(desc, 1);
    if (bytes != NULL)
        *bytes = cpu ? 0 : attn_ws_bytes(desc, attn_preferred_block(desc));
    clsoftmax__succeed(ctx);
    return CLSOFTMAX_SUCCESS;
}

/* Limits of the CPU path's CBLAS ints: every size and leading dimension. */
static clsoftmax_status attention_limits(const clsoftmax_context* ctx,
                                         const clsoftmax_attention_desc* desc, char* msg,
                                         size_t msg_size)
{
    const size_t lim[] = {desc->seq_q,        desc->seq_k,        desc->d,
                          desc->d_v,          desc->q_strides[2], desc->k_strides[2],
                          desc->v_strides[2], desc->o_strides[2]};
    return backend_limits(ctx, desc->dtype, lim, sizeof lim / sizeof lim[0], msg, msg_size);
}

clsoftmax_status clsoftmax_attention_host(clsoftmax_context* ctx,
                                          const clsoftmax_attention_desc* desc, const void* q,
                                          const void* k, const void* v, const void* mask, void* out)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    char msg[256];
    attn_sizes sz;
    clsoftmax_status status = validate_attention(desc, &sz, msg, sizeof msg);
    if (status == CLSOFTMAX_SUCCESS)
        status = attention_limits(ctx, desc, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    if (q == NULL || k == NULL || v == NULL || out == NULL)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT, "q, k, v and out must not be NULL");
    if ((desc->mask_batch > 0) != (mask != NULL))
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               "mask must be non-NULL exactly when desc->mask_batch > 0");
    const size_t ob = sz.o * sz.esz;
    if (ranges_overlap(out, ob, q, sz.q * sz.esz) || ranges_overlap(out, ob, k, sz.k * sz.esz) ||
        ranges_overlap(out, ob, v, sz.v * sz.esz) ||
        ranges_overlap(out, ob, mask, sz.mask * sz.esz))
        return clsoftmax__fail(ctx, CLSOFTMAX_OVERLAP, "out overlaps an input");

    if (ctx->backend == CLSOFTMAX_BACKEND_CPU) {
        clsoftmax__cpu_attention_job job = {.is_double = desc->dtype == CLSOFTMAX_FLOAT64,
                                            .batch = desc->batch,
                                            .heads = desc->heads,
                                            .seq_q = desc->seq_q,
                                            .seq_k = desc->seq_k,
                                            .d = desc->d,
                                            .d_v = desc->d_v,
                                            .scale = desc->scale,
                                            .causal = desc->causal != 0,
                                            .mask_batch = desc->mask_batch,
                                            .mask_heads = desc->mask_heads,
                                            .key_lengths = desc->key_lengths,
                                            .q = q,
                                            .k = k,
                                            .v = v,
                                            .mask = mask,
                                            .out = out};
        memcpy(job.q_strides, desc->q_strides, sizeof job.q_strides);
        memcpy(job.k_strides, desc->k_strides, sizeof job.k_strides);
        memcpy(job.v_strides, desc->v_strides, sizeof job.v_strides);
        memcpy(job.o_strides, desc->o_strides, sizeof job.o_strides);
        return cpu_result(ctx, clsoftmax__cpu_attention(&job),
                          "no host memory for the score scratch");
    }

    attn_bufs ab = {0};
    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    ab.ws_bytes = attn_ws_bytes(desc, attn_preferred_block(desc));
    /* out's current contents go up too: elements between strided rows come back unchanged */
    const host_arg args[] = {
        {q, sz.q * sz.esz, "q", 1, &ab.q}, {k, sz.k * sz.esz, "k", 1, &ab.k},
        {v, sz.v * sz.esz, "v", 1, &ab.v}, {mask, sz.mask * sz.esz, "mask", 1, &ab.mask},
        {out, ob, "out", 1, &ab.out},
    };
    status = make_buffers(ctx, args, sizeof args / sizeof args[0]);
    if (status == CLSOFTMAX_SUCCESS)
        status = ops_scratch(ctx, ab.ws_bytes);
    if (status == CLSOFTMAX_SUCCESS) {
        ab.ws = ctx->ops.scratch;
        status = attention_enqueue(ctx, desc, &ab, ctx->queue, 0, NULL, NULL);
    }
    if (status == CLSOFTMAX_SUCCESS)
        CHECK_CL(ctx, clFinish(ctx->queue), host_cleanup);
    if (status == CLSOFTMAX_SUCCESS)
        CHECK_CL(ctx, clEnqueueReadBuffer(ctx->queue, ab.out, CL_TRUE, 0, ob, out, 0, NULL, NULL),
                 host_cleanup);
host_cleanup:;
    const cl_mem all[] = {ab.q, ab.k, ab.v, ab.mask, ab.out};
    return host_finish(ctx, status, all, sizeof all / sizeof all[0]);
}

clsoftmax_status
clsoftmax_attention_buffer(clsoftmax_context* ctx, const clsoftmax_attention_desc* desc, cl_mem q,
                           size_t q_offset, cl_mem k, size_t k_offset, cl_mem v, size_t v_offset,
                           cl_mem mask, size_t mask_offset, cl_mem out, size_t out_offset,
                           cl_mem workspace, size_t workspace_bytes, cl_command_queue queue,
                           cl_uint num_wait, const cl_event* wait_list, cl_event* event)
{
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    if (ctx->backend != CLSOFTMAX_BACKEND_OPENCL)
        return clsoftmax__fail_not_opencl(ctx);
    char msg[256];
    attn_sizes sz;
    const char* why = NULL;
    clsoftmax_status status = validate_attention(desc, &sz, msg, sizeof msg);
    if (status == CLSOFTMAX_SUCCESS)
        status = attention_limits(ctx, desc, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, status, msg);
    if ((desc->mask_batch > 0) != (mask != NULL))
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                               "mask must be non-NULL exactly when desc->mask_batch > 0");
    if (clsoftmax__check_wait_list(num_wait, wait_list, &why) != CLSOFTMAX_SUCCESS)
        return clsoftmax__fail(ctx, CLSOFTMAX_INVALID_ARGUMENT, why);
    const size_t min_ws = attn_ws_bytes(desc, 1);
    if (workspace != NULL && workspace_bytes < min_ws) {
        snprintf(msg, sizeof msg,
                 "workspace_bytes %zu is below the %zu bytes this attention needs at least",
                 workspace_bytes, min_ws);
        return clsoftmax__fail(ctx, CLSOFTMAX_BUFFER_TOO_SMALL, msg);
    }

    pthread_mutex_lock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    const buf_arg args[] = {
        {q, "q", q_offset, sz.q, sz.esz, 0},
        {k, "k", k_offset, sz.k, sz.esz, 0},
        {v, "v", v_offset, sz.v, sz.esz, 0},
        {mask, "mask", mask_offset, sz.mask, sz.esz, 1},
        {out, "out", out_offset, sz.o, sz.esz, 0},
        {workspace, "workspace", 0, workspace_bytes, 1, 1},
    };
    status = pick_queue(ctx, &queue);
    if (status == CLSOFTMAX_SUCCESS)
        status = check_buffers(ctx, args, sizeof args / sizeof args[0]);
    if (status == CLSOFTMAX_SUCCESS &&
        (out == q || out == k || out == v || out == mask ||
         (workspace != NULL && (workspace == out || workspace == q || workspace == k ||
                                workspace == v || workspace == mask))))
        status =
            clsoftmax__error(ctx, CLSOFTMAX_OVERLAP, "out or workspace is also an input buffer");
    attn_bufs ab = {.q = q,
                    .k = k,
                    .v = v,
                    .mask = mask,
                    .out = out,
                    .ws = workspace,
                    .q_off = q_offset,
                    .k_off = k_offset,
                    .v_off = v_offset,
                    .mask_off = mask_offset,
                    .out_off = out_offset,
                    .ws_bytes = workspace_bytes};
    if (status == CLSOFTMAX_SUCCESS && workspace == NULL) {
        ab.ws_bytes = attn_ws_bytes(desc, attn_preferred_block(desc));
        status = ops_scratch(ctx, ab.ws_bytes);
        ab.ws = ctx->ops.scratch;
    }
    if (status == CLSOFTMAX_SUCCESS)
        status = attention_enqueue(ctx, desc, &ab, queue, num_wait, wait_list, event);
    pthread_mutex_unlock(&ctx->lock);
    return status;
}
