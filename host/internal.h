/* internal.h - the context struct and the interfaces between host/ files. */
#ifndef CLSOFTMAX_INTERNAL_H
#define CLSOFTMAX_INTERNAL_H

#include "clsoftmax.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cpu/cpu_softmax.h"

/* ---- shapes (validate.c) ------------------------------------------------ */

/*
 * A validated descriptor seen as [outer, n, inner]: element (o, k, i) sits at
 * (o * n + k) * inner + i, the softmax runs over k. rows = outer * inner.
 * The 0.2 fields (alpha, beta, nonfinite, report) are read from here, never from the desc:
 * a 0.1 desc does not have them, and validation filled in their defaults.
 */
typedef struct clsoftmax__layout {
    size_t outer;
    size_t n;
    size_t inner;
    size_t rows;
    size_t count;        /* elements */
    size_t elem_size;    /* bytes per stored element (2 for FLOAT16 and BFLOAT16) */
    size_t compute_size; /* bytes per computed element: 8 for FLOAT64, else 4 (float) */
    size_t bytes;        /* count * elem_size, checked against overflow */
    float scale_f;       /* desc->scale rounded to float, for every dtype computed in float */
    clsoftmax_dtype dtype;
    double alpha, beta;    /* blending, rounded to the compute precision; beta == 0: out is
                              not read */
    float alpha_f, beta_f; /* rounded to float, as scale_f */
    clsoftmax_nonfinite nonfinite;
    clsoftmax_row_report* report; /* NULL: bad rows not counted */
} clsoftmax__layout;

/*
 * Checks every field of desc without touching a device; fills *layout. On
 * failure writes a sentence naming the bad field into msg.
 */
clsoftmax_status clsoftmax__validate_desc(const clsoftmax_desc* desc, clsoftmax__layout* layout,
                                          char* msg, size_t msg_size);

/* ---- device capabilities and strategy (plan.c) -------------------------- */

typedef struct clsoftmax__device_caps {
    cl_device_type type;
    cl_uint compute_units;
    size_t max_work_group_size;
    size_t max_work_item_sizes[3]; /* per dimension of a work-group; 0: unknown */
    cl_ulong local_mem_size;
    cl_ulong max_mem_alloc_size;
    cl_uint address_bits;
    int has_fp64;
    int host_unified_memory;
    /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT / _DOUBLE; 0: unknown */
    cl_uint native_vw_float;
    cl_uint native_vw_double;
} clsoftmax__device_caps;

typedef enum clsoftmax__strategy {
    /* inner == 1: a work-group per row, the row staged in local memory */
    CLSOFTMAX__ROW_LOCAL = 0,
    /* inner == 1: a work-group per row, three passes over global memory */
    CLSOFTMAX__ROW_MULTIPASS = 1,
    /* inner > 1: work-items on neighbouring inner elements, the axis split
       across the group's second dimension, reductions in local memory */
    CLSOFTMAX__STRIDED = 2,
    /* (The name ROW_MULTIPASS stays for the long-row strategy: it now makes two passes,
       the online (max, sum) recurrence then the write.) */
    /* inner == 1, short rows: a work-item per row, the row in private memory */
    CLSOFTMAX__ROW_PRIVATE = 3,
    /* inner == 1: a work-item per row, two passes (CPU devices) */
    CLSOFTMAX__ROW_ITEM = 4,
    /* inner == 1, few very long rows: each row split across work-groups, partial
       (max, sum) pairs in a context-owned scratch buffer, merged by a second kernel */
    CLSOFTMAX__ROW_SPLIT = 5,
    /* inner > 1: a work-item per VECTOR_WIDTH neighbouring columns, looping over the
       axis, no barrier (CPU devices) */
    CLSOFTMAX__STRIDED_ITEM = 6
} clsoftmax__strategy;

#define CLSOFTMAX__STRATEGY_COUNT 7

typedef struct clsoftmax__plan {
    clsoftmax__strategy strategy;
    size_t local[2];      /* work-group size (dimension 1 is 1 for row kernels) */
    size_t groups[2];     /* work-groups launched; kernels loop over the rest */
    size_t local_bytes;   /* dynamic __local bytes (row staging + reduction scratch) */
    size_t vector_width;  /* CLSOFTMAX_VW of the program the kernels come from */
    size_t chunks;        /* ROW_SPLIT: work-groups per row (groups[0] = rows * chunks) */
    size_t scratch_bytes; /* ROW_SPLIT: __global bytes of (max, sum) pairs */
} clsoftmax__plan;

/* The longest row softmax_row_private holds (its -DCLSOFTMAX_PRIVATE_MAX). */
#define CLSOFTMAX__PRIVATE_MAX 256
/*
 * Vectors of columns per work-item of softmax_strided_item (its -DCLSOFTMAX_STRIDED_VECS):
 * 16 x 8 floats = 512 contiguous bytes per axis step, which a CPU's prefetcher follows; one
 * vector per work-item made every load a miss (1000 x 16384, axis 0: 120 ms, 16: 35-40 ms).
 */
#define CLSOFTMAX__STRIDED_VECS 16

/*
 * The values plan_make uses for params (clsoftmax_context_set_param's, 0: the device's
 * choice): every entry filled with the value in effect for this device and dtype. params may
 * be NULL (all 0).
 */
void clsoftmax__params_effective(const size_t* params, const clsoftmax__device_caps* caps,
                                 size_t elem_size, size_t* effective);

/*
 * As clsoftmax__plan_make, with the context's parameters (see clsoftmax__params_effective);
 * params NULL: the device's choices throughout.
 */
clsoftmax_status clsoftmax__plan_make_params(const clsoftmax__layout* layout,
                                             const clsoftmax__device_caps* caps,
                                             const size_t* params, size_t kernel_max_wg,
                                             clsoftmax__plan* plan);

/*
 * Chooses the kernel and its launch shape: a pure function of the layout, the
 * element size and the device, unit-tested without a device.
 * kernel_max_wg is the kernel's CL_KERNEL_WORK_GROUP_SIZE (0: unknown, use the
 * device's). Returns SUCCESS or SIZE_OVERFLOW (an index the kernels cannot
 * address).
 */
clsoftmax_status clsoftmax__plan_make(const clsoftmax__layout* layout,
                                      const clsoftmax__device_caps* caps, size_t kernel_max_wg,
                                      clsoftmax__plan* plan);

/* ---- embedded kernel sources and the program cache (program.c) ---------- */

typedef enum clsoftmax__kernel_id {
    CLSOFTMAX__K_ROW_LOCAL = 0,
    CLSOFTMAX__K_ROW_MULTIPASS = 1,
    CLSOFTMAX__K_STRIDED = 2,
    CLSOFTMAX__K_ROW_PRIVATE = 3,
    CLSOFTMAX__K_ROW_ITEM = 4,
    CLSOFTMAX__K_SPLIT_PARTIAL = 5,
    CLSOFTMAX__K_SPLIT_WRITE = 6,
    CLSOFTMAX__K_STRIDED_ITEM = 7,
    CLSOFTMAX__K_CHECK_ROWS = 8, /* the bad-row count (any layout), not a strategy */
    CLSOFTMAX__K_COUNT
} clsoftmax__kernel_id;

#define CLSOFTMAX__DTYPE_COUNT 4
/* Programs per dtype: one per vector width 1, 2, 4, 8, 16 (index log2 of the width). */
#define CLSOFTMAX__VW_COUNT 5

/* One built program per (dtype, vector width), built lazily, holding every kernel. */
typedef struct clsoftmax__program_cache {
    cl_program program[CLSOFTMAX__DTYPE_COUNT][CLSOFTMAX__VW_COUNT];
    cl_kernel kernel[CLSOFTMAX__DTYPE_COUNT][CLSOFTMAX__VW_COUNT][CLSOFTMAX__K_COUNT];
    size_t kernel_wg[CLSOFTMAX__DTYPE_COUNT][CLSOFTMAX__VW_COUNT][CLSOFTMAX__K_COUNT];
} clsoftmax__program_cache;

/*
 * The kernel for (id, dtype) from the program built with vector width vw (1, 2, 4, 8, 16),
 * building it on first use. As clsoftmax__kernel_get otherwise.
 */
clsoftmax_status clsoftmax__kernel_get_vw(clsoftmax_context* ctx, clsoftmax__kernel_id id,
                                          clsoftmax_dtype dtype, size_t vw, cl_kernel* kernel,
                                          size_t* max_wg);

/*
 * The kernel for (id, dtype) at the context's vector width for dtype, building the program
 * on first use.
 * Caller holds ctx->lock. *max_wg receives CL_KERNEL_WORK_GROUP_SIZE.
 * Returns SUCCESS, UNSUPPORTED (float64 without fp64), BUILD_FAILURE (build log
 * in the last error), OPENCL_ERROR.
 */
clsoftmax_status clsoftmax__kernel_get(clsoftmax_context* ctx, clsoftmax__kernel_id id,
                                       clsoftmax_dtype dtype, cl_kernel* kernel, size_t* max_wg);
/* Releases every program and kernel in the cache. */
void clsoftmax__program_cache_clear(clsoftmax__program_cache* cache);

/*
 * The -D options that select dtype in every kernel file (kernels/common.cl): "-DCLSOFTMAX_DTYPE=n",
 * with " -DCLSOFTMAX_FP64" for FLOAT64. A static string; "" for an unknown dtype.
 */
const char* clsoftmax__dtype_options(clsoftmax_dtype dtype);
/*
 * Whether ctx's device runs kernels for dtype: SUCCESS, or a recorded INVALID_DTYPE (not a
 * clsoftmax_dtype) or UNSUPPORTED (FLOAT64 without cl_khr_fp64). Caller holds ctx->lock.
 */
clsoftmax_status clsoftmax__dtype_check(clsoftmax_context* ctx, clsoftmax_dtype dtype);

/* ---- launches (launch.c) ------------------------------------------------ */

/*
 * Enqueues the softmax on queue. Arguments are already validated (layout from
 * clsoftmax__validate_desc, buffers large enough). Caller holds ctx->lock.
 * Returns SUCCESS, UNSUPPORTED, SIZE_OVERFLOW, BUILD_FAILURE, OPENCL_ERROR.
 */
clsoftmax_status clsoftmax__launch(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                   const clsoftmax__layout* layout, cl_mem in, size_t in_offset,
                                   cl_mem out, size_t out_offset, cl_command_queue queue,
                                   cl_uint num_wait, const cl_event* wait_list, cl_event* event);

/*
 * Counts the bad rows of the tensor at in + in_offset (see clsoftmax_nonfinite) with the check
 * kernel on queue after wait_list, and waits for the count. Rows are numbered from row_base
 * (a streamed chunk's first row): *bad_rows grows by the count, and *first_bad_row is set
 * when *bad_rows was 0 and this tensor has a bad row (callers start at 0 and SIZE_MAX, and
 * check chunks in row order). Caller holds ctx->lock. Returns SUCCESS, SIZE_OVERFLOW,
 * BUILD_FAILURE, OPENCL_ERROR, OUT_OF_MEMORY.
 */
clsoftmax_status clsoftmax__check_rows(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                       const clsoftmax__layout* layout, cl_mem in, size_t in_offset,
                                       size_t row_base, cl_command_queue queue, cl_uint num_wait,
                                       const cl_event* wait_list, size_t* bad_rows,
                                       size_t* first_bad_row);
/*
 * After a count of the bad rows: fills layout->report (when not NULL), and under policy ERROR
 * with a bad row returns a recorded NONFINITE_ROW naming the first bad row and the count;
 * SUCCESS otherwise. Caller holds ctx->lock.
 */
clsoftmax_status clsoftmax__rows_checked(clsoftmax_context* ctx, const clsoftmax__layout* layout,
                                         size_t bad_rows, size_t first_bad_row);
/* Whether the call counts bad rows first: a report is asked for, or the policy is ERROR. */
#define CLSOFTMAX__COUNTS_ROWS(layout)                                                             \
    ((layout)->report != NULL || (layout)->nonfinite == CLSOFTMAX_NONFINITE_ERROR)

/*
 * Grows a context-owned scratch buffer (*buf of *have bytes) to at least bytes, never shrinking
 * it; commands still queued on the old buffer keep it alive. what names it in the message.
 * Caller holds ctx->lock.
 */
clsoftmax_status clsoftmax__scratch_reserve(clsoftmax_context* ctx, cl_mem* buf, size_t* have,
                                            size_t bytes, const char* what);

/* ---- host memory through a device (host_path.c) ------------------------- */

/*
 * clsoftmax_softmax_host on the OpenCL backend: zero-copy on devices sharing host memory,
 * chunked double-buffered streaming otherwise (chunk size from
 * ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES], 0: a default). Arguments validated;
 * caller holds ctx->lock. Returns SUCCESS, UNSUPPORTED (one slice above the device's
 * largest allocation), SIZE_OVERFLOW, BUILD_FAILURE, OPENCL_ERROR, OUT_OF_MEMORY, NONFINITE_ROW
 * (policy ERROR: found by the bad-row check before anything writes `out`; layout->report, when
 * not NULL, is filled once the rows are counted, so the entry point passes one of its own and
 * hands it on only on SUCCESS and NONFINITE_ROW).
 * *out_touched is set to 1 once work that writes the caller's `out` has been enqueued: after a
 * failure past that point `out` (and, in place, the input) may hold partial results.
 */
clsoftmax_status clsoftmax__host_run(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                     const clsoftmax__layout* layout, const void* in, void* out,
                                     int* out_touched);
/*
 * clsoftmax_prepare on the OpenCL backend: launches, on a zero-filled scratch device buffer,
 * every layout the entry points will launch for this shape (the whole tensor; a full and a
 * last streamed chunk where the host path streams), so each kernel is built and, on drivers
 * that compile per launch shape (PoCL), compiled. Caller holds ctx->lock.
 */
clsoftmax_status clsoftmax__host_prepare(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                         const clsoftmax__layout* layout);

/* ---- on-disk cache of program binaries (binary_cache.c) ------------------ */

/* 0 when CLSOFTMAX_NO_DISK_CACHE turns the disk cache off. */
int clsoftmax__binary_cache_enabled(void);
/*
 * The program for (sources, options) on ctx->device, created from a cached binary and
 * built; NULL on a miss, when disabled, or when the file is stale or corrupt (then removed,
 * ctx->disk_cache_rejects counted). Never records an error. Caller holds ctx->lock.
 */
cl_program clsoftmax__binary_cache_load(clsoftmax_context* ctx, const char* const* sources,
                                        size_t count, const char* options);
/* Writes program's binary for ctx->device to the cache (atomically); silent on failure. */
void clsoftmax__binary_cache_store(clsoftmax_context* ctx, const char* const* sources, size_t count,
                                   const char* options, cl_program program);
/* ---- head and attention (ops.c, clblast_ops.c, program.c) --------------- */

typedef enum clsoftmax__ops_kernel_id {
    CLSOFTMAX__OPS_K_LINEAR = 0,
    CLSOFTMAX__OPS_K_TOPK = 1,
    CLSOFTMAX__OPS_K_ATTENTION = 2,
    CLSOFTMAX__OPS_K_COUNT
} clsoftmax__ops_kernel_id;

/* The ops kernels' programs (one per dtype) and the context-owned scratch buffer. */
typedef struct clsoftmax__ops_cache {
    cl_program program[CLSOFTMAX__DTYPE_COUNT];
    cl_kernel kernel[CLSOFTMAX__DTYPE_COUNT][CLSOFTMAX__OPS_K_COUNT];
    size_t kernel_wg[CLSOFTMAX__DTYPE_COUNT][CLSOFTMAX__OPS_K_COUNT];
    cl_mem scratch;
    size_t scratch_bytes;
} clsoftmax__ops_cache;

/* Releases the ops programs, kernels and scratch (context.c calls it on free). */
void clsoftmax__ops_release(clsoftmax__ops_cache* ops);

/* ---- backward and cross-entropy programs (backward.c, cross_entropy.c) --- */

#define CLSOFTMAX__AUX_K_MAX 4

/*
 * One operation's programs (one per dtype, built with clsoftmax__program_build_ops on first
 * use), up to CLSOFTMAX__AUX_K_MAX kernels each (the operation numbers them), and a grow-only
 * scratch buffer; all released by clsoftmax__aux_release when the context is freed.
 */
typedef struct clsoftmax__aux_cache {
    cl_program program[CLSOFTMAX__DTYPE_COUNT];
    cl_kernel kernel[CLSOFTMAX__DTYPE_COUNT][CLSOFTMAX__AUX_K_MAX];
    size_t kernel_wg[CLSOFTMAX__DTYPE_COUNT][CLSOFTMAX__AUX_K_MAX];
    cl_mem scratch;
    size_t scratch_bytes;
} clsoftmax__aux_cache;

void clsoftmax__aux_release(clsoftmax__aux_cache* aux);

/* What an operation's program is made of: embedded sources (common.cl first) and kernels. */
typedef struct clsoftmax__aux_program {
    size_t source_count;
    const char* const* sources;
    size_t kernel_count; /* <= CLSOFTMAX__AUX_K_MAX */
    const char* const* kernel_names;
    const char* what; /* names the program in messages */
} clsoftmax__aux_program;

/*
 * Kernel id of prog for dtype from cache, building the program with options and creating all
 * its kernels on first use (program.c). *max_wg receives CL_KERNEL_WORK_GROUP_SIZE. Returns
 * SUCCESS, INVALID_DTYPE, UNSUPPORTED, BUILD_FAILURE, OPENCL_ERROR, OUT_OF_MEMORY, recorded.
 * Caller holds ctx->lock.
 */
clsoftmax_status clsoftmax__aux_kernel_get(clsoftmax_context* ctx, clsoftmax__aux_cache* cache,
                                           clsoftmax_dtype dtype,
                                           const clsoftmax__aux_program* prog, const char* options,
                                           size_t id, cl_kernel* kernel, size_t* max_wg);

/*
 * Builds a program for the context's device from count embedded sources named
 * like "linear_softmax.cl" (ops kernels, cmake's CLSOFTMAX_OPS_KERNELS) with
 * options; on failure the last error holds the options and the build log.
 * what names the program in messages. Caller holds ctx->lock.
 * Returns SUCCESS, BUILD_FAILURE, OPENCL_ERROR, OUT_OF_MEMORY.
 */
clsoftmax_status clsoftmax__program_build_ops(clsoftmax_context* ctx, size_t count,
                                              const char* const* names, const char* options,
                                              const char* what, cl_program* program);

/*
 * C = alpha * A . op(B) + beta * C for batch matrices (row-major, A not
 * transposed, B transposed when trans_b), on queue, through CLBlast's
 * strided batched GEMM; CLBlast's status is translated into ours with its
 * code and name in the message. Caller holds ctx->lock.
 */
typedef struct clsoftmax__gemm {
    clsoftmax_dtype dtype;
    int trans_b;
    size_t m, n, k;
    double alpha, beta;
    cl_mem a;
    size_t a_off, lda, a_stride;
    cl_mem b;
    size_t b_off, ldb, b_stride;
    cl_mem c;
    size_t c_off, ldc, c_stride;
    size_t batch;
} clsoftmax__gemm;

clsoftmax_status clsoftmax__gemm_enqueue(clsoftmax_context* ctx, const clsoftmax__gemm* g,
                                         cl_command_queue queue);

/* ---- the context (context.c) -------------------------------------------- */

#define CLSOFTMAX__NAME_MAX 256
#define CLSOFTMAX__ERROR_MAX 8192

struct clsoftmax_context {
    clsoftmax_backend backend;
    char device_name[CLSOFTMAX__NAME_MAX];
    char fallback_reason[1024];

    char last_error[CLSOFTMAX__ERROR_MAX];
    cl_int last_cl_error;

    unsigned cpu_threads;
    /* CPU backend workers, started on first use (under lock), freed with the context */
    clsoftmax__cpu_pool* cpu_pool;

    /* clsoftmax_context_set_param values; 0: chosen for the device */
    size_t params[CLSOFTMAX_PARAM_COUNT];
    /* where params came from (params.c); clsoftmax_context_params_source */
    char params_source[1024];

    /* ROW_SPLIT's (max, sum) pairs: grow-only, released by clsoftmax_context_free */
    cl_mem split_scratch;
    size_t split_scratch_bytes;
    cl_event split_busy; /* completes with the last split launch, which used the scratch */

    cl_context cl_ctx;
    cl_device_id device;
    cl_command_queue queue;
    int device_retained; /* borrowed contexts retain the caller's device */
    clsoftmax__device_caps caps;
    clsoftmax__program_cache cache;

    /* binary_cache.c's doings, for tests: programs loaded, files written, files rejected */
    unsigned disk_cache_loads, disk_cache_stores, disk_cache_rejects;
    /* the head and attention operations (ops.c): kernels and grow-only scratch */
    clsoftmax__ops_cache ops;
    /* the backward (backward.c) and cross-entropy (cross_entropy.c) operations */
    clsoftmax__aux_cache backward;
    clsoftmax__aux_cache xent;
    /* the bad-row check's (count, first row) pair, for the nonfinite policy and reports */
    cl_mem report_buf;

    /* serialises kernel-argument setting, enqueues and the last error */
    pthread_mutex_t lock;

    /* the fallback policy (fallback.c): set at creation for AUTO contexts on OpenCL */
    int fallback_on_error;
    atomic_int fell_back; /* 1 once host calls run on the CPU; never goes back */
};

/* ---- the fallback policy (fallback.c) ----------------------------------- */

/*
 * Called with ctx->lock held after a host call failed with status on the device. Returns 1 if
 * the context has now fallen back to the CPU (the reason recorded): the caller runs the call
 * on the CPU instead. 0: return the error.
 */
int clsoftmax__fallback_take(clsoftmax_context* ctx, clsoftmax_status status);
/* Non-zero once host calls of ctx run on the CPU. */
int clsoftmax__fell_back(const clsoftmax_context* ctx);

/* ---- device enumeration and selection (devices.c) ----------------------- */

/* Reads the capabilities clsoftmax__plan_make needs. */
cl_int clsoftmax__device_caps_query(cl_device_id device, clsoftmax__device_caps* caps);

/*
 * Picks a device. selector NULL or "": the first GPU, else the first device of
 * any type. Otherwise a decimal index into the enumeration order, or a
 * case-insensitive substring of "platform / device". Writes "platform / device"
 * into name. Returns SUCCESS, NO_DEVICE (msg says why), OPENCL_ERROR (*cl_err
 * set), OUT_OF_MEMORY.
 */
clsoftmax_status clsoftmax__device_select(const char* selector, cl_platform_id* platform,
                                          cl_device_id* device, char* name, size_t name_size,
                                          cl_int* cl_err, char* msg, size_t msg_size);

/* ---- tuning parameters (params.c) ------------------------------------- */

/*
 * At context creation, after the backend is set up: loads the device's parameter file (a
 * malformed or missing one is skipped, the reason kept in ctx->params_source), then, when
 * use_env, CLSOFTMAX_PARAMS. Returns SUCCESS or INVALID_ARGUMENT (a bad CLSOFTMAX_PARAMS;
 * msg names the variable).
 */
clsoftmax_status clsoftmax__params_load(clsoftmax_context* ctx, int use_env, char* msg,
                                        size_t msg_size);
/* Checks value for param on ctx; on failure a sentence into msg. */
clsoftmax_status clsoftmax__param_check(const clsoftmax_context* ctx, clsoftmax_param param,
                                        size_t value, char* msg, size_t msg_size);
/* The parameter's lower-case name ("work_group_size"), NULL for an unknown one. */
const char* clsoftmax__param_name(clsoftmax_param param);
/*
 * The parameter file's path for ctx's device into path:
 * ${CLSOFTMAX_PARAMS_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/clsoftmax}/<device key>.params.
 * Returns 0 when no folder can be named (no HOME) or path is too small.
 */
int clsoftmax__params_path(const clsoftmax_context* ctx, char* path, size_t path_size);

/* ---- errors (status.c) -------------------------------------------------- */

/* The entry points' error recording (softmax.c, shared with ops.c). clsoftmax__fail records
   msg as the last error and returns status; clsoftmax__succeed clears it. Both take ctx->lock,
   since other threads may share ctx; the caller must not hold it. */
clsoftmax_status clsoftmax__fail(clsoftmax_context* ctx, clsoftmax_status status, const char* msg);
void clsoftmax__succeed(clsoftmax_context* ctx);
/* clsoftmax__fail with UNSUPPORTED: a device-buffer entry point called on the CPU fallback. */
clsoftmax_status clsoftmax__fail_not_opencl(clsoftmax_context* ctx);
/* The wait list's shape (NULL exactly when num_wait is 0, no NULL event); on failure *why gets
   the reason and INVALID_ARGUMENT is returned. Touches nothing else. */
clsoftmax_status clsoftmax__check_wait_list(cl_uint num_wait, const cl_event* wait_list,
                                            const char** why);

/* The OpenCL error code's name, e.g. "CL_OUT_OF_RESOURCES"; never NULL. */
const char* clsoftmax__cl_error_name(cl_int err);

void clsoftmax__error_clear(clsoftmax_context* ctx);
/* Records "message" as the context's last error and returns status. */
clsoftmax_status clsoftmax__error(clsoftmax_context* ctx, clsoftmax_status status, const char* fmt,
                                  ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/*
 * Records "call failed with NAME (code): message" and err as the last
 * cl_int; returns status.
 */
clsoftmax_status clsoftmax__error_cl(clsoftmax_context* ctx, clsoftmax_status status,
                                     const char* call, cl_int err, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Appends text to the last error (used for the build log). */
void clsoftmax__error_append(clsoftmax_context* ctx, const char* text);

/*
 * A caller's queue belongs to ctx's cl_context and device (softmax.c): INVALID_QUEUE for the
 * caller's errors, the driver's status for a failed query. Caller holds ctx->lock.
 */
clsoftmax_status clsoftmax__check_queue(clsoftmax_context* ctx, cl_command_queue queue);
/* The queue a buffer entry point runs on: the caller's, checked as above, or the context's when
 *queue is NULL (then written into *queue). Caller holds ctx->lock. */
clsoftmax_status clsoftmax__pick_queue(clsoftmax_context* ctx, cl_command_queue* queue);

/* [a, a + a_len) and [b, b + b_len) share a byte; non-empty ranges, no sum can wrap. */
int clsoftmax__ranges_overlap(uintptr_t a, size_t a_len, uintptr_t b, size_t b_len);

/*
 * A caller's buffer (softmax.c, shared by every buffer entry point): not NULL, valid, of ctx's
 * cl_context, holding offset + count elements of esz bytes. Records and returns
 * INVALID_ARGUMENT, INVALID_CONTEXT, SIZE_OVERFLOW, BUFFER_TOO_SMALL or the driver's status for
 * a failed query. Caller holds ctx->lock.
 */
clsoftmax_status clsoftmax__check_buffer(clsoftmax_context* ctx, cl_mem buf, const char* name,
                                         size_t offset, size_t count, size_t esz);

/* Maps an OpenCL error to our status: allocation failures to OUT_OF_MEMORY etc. */
clsoftmax_status clsoftmax__status_from_cl(cl_int err);

/*
 * CHECK_CL(ctx, call, label): runs an OpenCL call returning cl_int; on failure
 * records the call's text and the error name, sets `status`, jumps to label.
 * The enclosing function declares `clsoftmax_status status`.
 */
#define CHECK_CL(ctx, call, label)                                                                 \
    do {                                                                                           \
        cl_int check_cl_err_ = (call);                                                             \
        if (check_cl_err_ != CL_SUCCESS) {                                                         \
            status = clsoftmax__error_cl((ctx), clsoftmax__status_from_cl(check_cl_err_), #call,   \
                                         check_cl_err_, "in %s", __func__);                        \
            goto label;                                                                            \
        }                                                                                          \
    } while (0)

/* RETURN_ERROR_IF(ctx, cond, status, fmt, ...): zstd's idiom for validation. */
#define RETURN_ERROR_IF(ctx, cond, st, ...)                                                        \
    do {                                                                                           \
        if (cond)                                                                                  \
            return clsoftmax__error((ctx), (st), __VA_ARGS__);                                     \
    } while (0)

/* Last, so that nothing above is rewritten: OpenCL calls and host allocations through the
   fault-injection wrappers (cl_faults.h, alloc.h). */
#include "alloc.h"
#include "cl_faults.h"

#endif /* CLSOFTMAX_INTERNAL_H */
