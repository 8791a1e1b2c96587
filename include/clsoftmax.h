/*
 * clsoftmax.h - softmax and log-softmax on any OpenCL device, with a CPU fallback.
 *
 * One context holds a backend (OpenCL or CPU), its device, queue and compiled
 * programs, and the text of the last error. Every fallible function returns a
 * clsoftmax_status; out-parameters come last; the library prints nothing.
 *
 * Units: extents, offsets and counts are in elements, never bytes.
 */
#ifndef CLSOFTMAX_H
#define CLSOFTMAX_H

#include <stddef.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ------------------------------------------------------------ */

#define CLSOFTMAX_VERSION_MAJOR 0
#define CLSOFTMAX_VERSION_MINOR 2
#define CLSOFTMAX_VERSION_PATCH 0
#define CLSOFTMAX_VERSION_NUMBER                                                                   \
    (CLSOFTMAX_VERSION_MAJOR * 10000 + CLSOFTMAX_VERSION_MINOR * 100 + CLSOFTMAX_VERSION_PATCH)

/* ---- export ------------------------------------------------------------- */

#if defined(CLSOFTMAX_STATIC_DEFINE)
#define CLSOFTMAX_API
#elif defined(_WIN32)
#if defined(CLSOFTMAX_BUILDING)
#define CLSOFTMAX_API __declspec(dllexport)
#else
#define CLSOFTMAX_API __declspec(dllimport)
#endif
#else
#define CLSOFTMAX_API __attribute__((visibility("default")))
#endif

/* The runtime library's version, e.g. "0.1.0"; may differ from the header's. */
CLSOFTMAX_API unsigned clsoftmax_version_number(void);
CLSOFTMAX_API const char* clsoftmax_version_string(void);

/* ---- status ------------------------------------------------------------- */

/*
 * X(name, value, message). Values are fixed forever; new ones are appended.
 * One table generates the enum, clsoftmax_status_name() and
 * clsoftmax_status_string().
 */
#define CLSOFTMAX_STATUS_MAP(X)                                                                    \
    X(SUCCESS, 0, "success")                                                                       \
    X(INVALID_ARGUMENT, 1, "invalid argument (a NULL pointer or a malformed struct)")              \
    X(INVALID_SHAPE, 2, "invalid shape (0 or more than 8 dimensions, or a zero extent)")           \
    X(INVALID_AXIS, 3, "axis out of range for the tensor's rank")                                  \
    X(INVALID_DTYPE, 4, "unknown data type")                                                       \
    X(INVALID_SCALE, 5, "scale is not a finite number")                                            \
    X(SIZE_OVERFLOW, 6, "element or byte count overflows size_t or the device's index range")      \
    X(BUFFER_TOO_SMALL, 7, "a buffer is smaller than offset + element count")                      \
    X(INVALID_CONTEXT, 8, "invalid context, OpenCL context or device")                             \
    X(INVALID_QUEUE, 9, "invalid command queue, or a queue of another context or device")          \
    X(UNSUPPORTED, 10, "not supported by this backend or device")                                  \
    X(NO_DEVICE, 11, "no OpenCL device matches the selection")                                     \
    X(OPENCL_ERROR, 12, "an OpenCL call failed")                                                   \
    X(BUILD_FAILURE, 13, "an OpenCL program failed to build")                                      \
    X(OUT_OF_MEMORY, 14, "out of host memory")                                                     \
    X(OVERLAP, 15, "input and output overlap without being identical")                             \
    X(NONFINITE_ROW, 16, "a row holds NaN or +inf or is all -inf (non-finite policy ERROR)")

typedef enum clsoftmax_status {
#define CLSOFTMAX_X_ENUM(name, value, message) CLSOFTMAX_##name = (value),
    CLSOFTMAX_STATUS_MAP(CLSOFTMAX_X_ENUM)
#undef CLSOFTMAX_X_ENUM
} clsoftmax_status;

/* A fixed English sentence for the status; never NULL (unknown values too). */
CLSOFTMAX_API const char* clsoftmax_status_string(clsoftmax_status status);
/* The enumerator's name without prefix, e.g. "INVALID_AXIS"; never NULL. */
CLSOFTMAX_API const char* clsoftmax_status_name(clsoftmax_status status);

/* ---- context ------------------------------------------------------------ */

typedef struct clsoftmax_context clsoftmax_context;

typedef enum clsoftmax_backend {
    CLSOFTMAX_BACKEND_AUTO = 0,   /* a GPU, else any OpenCL device, else the CPU fallback */
    CLSOFTMAX_BACKEND_OPENCL = 1, /* an OpenCL device or an error */
    CLSOFTMAX_BACKEND_CPU = 2     /* the CPU fallback (no OpenCL at all) */
} clsoftmax_backend;

/*
 * Options for clsoftmax_context_create(). Initialise with clsoftmax_config_init(),
 * which sets struct_size: later versions append fields and tell the versions
 * apart by struct_size, so the ABI holds. A struct_size this library does not
 * know is INVALID_ARGUMENT.
 */
typedef struct clsoftmax_config {
    size_t struct_size;
    clsoftmax_backend backend; /* default AUTO */
    /*
     * Device selection for the OpenCL backend (and for AUTO's OpenCL step).
     * device_selector: NULL for automatic choice, a decimal index into the list
     * that `clsoftmax devices` prints (all platforms' devices in order), or a
     * case-insensitive substring of "platform name / device name".
     */
    const char* device_selector;
    /* Worker threads of the CPU backend; 0 means the number of online cores. */
    unsigned cpu_threads;
    /*
     * Non-zero: CLSOFTMAX_BACKEND and CLSOFTMAX_DEVICE override backend and
     * device_selector when set. Default 1.
     */
    int use_environment;
    /*
     * Non-zero: an AUTO context that settled on an OpenCL device switches to the CPU backend,
     * for good, when a program fails to build or an OpenCL call fails during
     * clsoftmax_softmax_host; that call and every later one then run on the CPU and succeed,
     * clsoftmax_context_backend() says CPU and clsoftmax_context_fallback_reason() holds the
     * error that caused it. The device-buffer entry point never falls back (its data lives on
     * the device): it returns the error. 0 (default): errors are returned. With
     * use_environment, CLSOFTMAX_FALLBACK=1 or 0 overrides it. Added in 0.1.0 after the
     * fields above: a struct_size that ends before it (an older header) is accepted as 0.
     */
    int fallback_on_error;
} clsoftmax_config;

CLSOFTMAX_API void clsoftmax_config_init(clsoftmax_config* config);

/*
 * Creates a context. config NULL means clsoftmax_config_init() defaults: the
 * environment chooses, else AUTO. On failure *context is set to NULL and
 * clsoftmax_last_create_error() tells why. The context owns what it creates.
 * Returns SUCCESS, INVALID_ARGUMENT, NO_DEVICE, OPENCL_ERROR, OUT_OF_MEMORY.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_context_create(const clsoftmax_config* config,
                                                        clsoftmax_context** context);

/*
 * Creates an OpenCL context on the caller's objects, for embedding in a
 * pipeline: cl_ctx and device are retained (released by clsoftmax_context_free),
 * never owned. queue may be NULL (the library creates an in-order queue on
 * cl_ctx and device) or a queue on that context and device, also retained.
 * Returns SUCCESS, INVALID_ARGUMENT, INVALID_CONTEXT, INVALID_QUEUE,
 * OPENCL_ERROR, OUT_OF_MEMORY.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_context_create_borrowed(cl_context cl_ctx,
                                                                 cl_device_id device,
                                                                 cl_command_queue queue,
                                                                 clsoftmax_context** context);

/* Releases everything the context holds; waits for its own queue. NULL is a no-op. */
CLSOFTMAX_API void clsoftmax_context_free(clsoftmax_context* context);

/*
 * Why the last clsoftmax_context_create* on this thread failed; "" if it did
 * not. Valid until the next create call on the same thread.
 */
CLSOFTMAX_API const char* clsoftmax_last_create_error(void);

/* OPENCL or CPU (never AUTO once created). */
CLSOFTMAX_API clsoftmax_backend clsoftmax_context_backend(const clsoftmax_context* context);
/* "platform / device" for OpenCL, "CPU fallback (N threads)" for the CPU. */
CLSOFTMAX_API const char* clsoftmax_context_device_name(const clsoftmax_context* context);
/* Why AUTO settled on the CPU fallback (e.g. no OpenCL platform); "" if it did not. */
CLSOFTMAX_API const char* clsoftmax_context_fallback_reason(const clsoftmax_context* context);
/* Non-zero where the OpenCL device computes float64 (cl_khr_fp64); the CPU does. */
CLSOFTMAX_API int clsoftmax_context_supports_float64(const clsoftmax_context* context);

/*
 * The OpenCL objects in use, for allocating buffers on the right context. NULL
 * for the CPU backend. Owned by the context: do not release.
 */
CLSOFTMAX_API cl_context clsoftmax_context_cl_context(const clsoftmax_context* context);
CLSOFTMAX_API cl_device_id clsoftmax_context_cl_device(const clsoftmax_context* context);
CLSOFTMAX_API cl_command_queue clsoftmax_context_cl_queue(const clsoftmax_context* context);

/*
 * The last failed call on this context: a message naming the failing OpenCL
 * call and its error name, with the build options and the head of the build
 * log for build failures. "" after a success. Never NULL.
 */
CLSOFTMAX_API const char* clsoftmax_context_last_error(const clsoftmax_context* context);
/* The raw cl_int of the last failing OpenCL call (CL_SUCCESS if none failed). */
CLSOFTMAX_API cl_int clsoftmax_context_last_cl_error(const clsoftmax_context* context);

/* ---- tuning parameters ---------------------------------------------------- */

/*
 * Per-context knobs, set through an enum so the ABI never grows a struct
 * (zstd's parameter model). 0 always means "chosen for the device", which is
 * where every parameter starts; contexts then load a parameter file written by
 * `clsoftmax tune` for their device, then apply CLSOFTMAX_PARAMS (see README).
 * Values are appended, never renumbered.
 */
typedef enum clsoftmax_param {
    CLSOFTMAX_PARAM_WORK_GROUP_SIZE = 0,    /* work-items per group (power of two) */
    CLSOFTMAX_PARAM_VECTOR_WIDTH = 1,       /* elements per vector load: 1, 2, 4, 8 or 16 */
    CLSOFTMAX_PARAM_ROWS_PER_GROUP = 2,     /* short rows handled by one work-group */
    CLSOFTMAX_PARAM_SHORT_ROW_LIMIT = 3,    /* longest row (elements) of the short-row kernel */
    CLSOFTMAX_PARAM_SPLIT_ROW_MIN = 4,      /* shortest row (elements) split across groups */
    CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES = 5, /* host path: bytes per streamed chunk */
    CLSOFTMAX_PARAM_CPU_THREADS = 6         /* CPU backend worker threads */
} clsoftmax_param;

#define CLSOFTMAX_PARAM_COUNT 7

/*
 * Sets one parameter; 0 restores the device's choice. A value the parameter
 * cannot take (a vector width of 3, a work-group size above the device's) is
 * INVALID_ARGUMENT with the reason in the last error, and nothing changes.
 * Not to be called while another thread runs an operation on the context.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_context_set_param(clsoftmax_context* context,
                                                           clsoftmax_param param, size_t value);
/* The value set (0: the device's choice). Returns SUCCESS or INVALID_ARGUMENT. */
CLSOFTMAX_API clsoftmax_status clsoftmax_context_get_param(const clsoftmax_context* context,
                                                           clsoftmax_param param, size_t* value);

/* ---- tuning parameters: names, files and sources ---------------------- */

/*
 * Where a context's parameters come from, in this order at creation:
 *   1. the device's parameter file, written by `clsoftmax tune`:
 *      ${CLSOFTMAX_PARAMS_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/clsoftmax}/<device>.params,
 *      "name=value" lines (names as clsoftmax_param_name gives them), '#' comments; a file
 *      that is malformed anywhere is ignored as a whole (see clsoftmax_context_params_source);
 *   2. the environment variable CLSOFTMAX_PARAMS, "name=value,name=value"; a bad entry fails
 *      context creation with INVALID_ARGUMENT (clsoftmax_last_create_error names it);
 *   3. clsoftmax_context_set_param.
 * Contexts created with config->use_environment = 0 skip 1 and 2.
 */

/* The parameter's name in files and CLSOFTMAX_PARAMS ("work_group_size"); "" if unknown. */
CLSOFTMAX_API const char* clsoftmax_param_name(clsoftmax_param param);

/*
 * A sentence saying where the context's parameters came from: "file PATH", or "defaults
 * (...)" with the reason no file was used (none there, or why it was ignored), followed by
 * ", then CLSOFTMAX_PARAMS" when that was applied. Never NULL; "" for a NULL context.
 */
CLSOFTMAX_API const char* clsoftmax_context_params_source(const clsoftmax_context* context);

/*
 * The path of the parameter file for the context's device into path (path_size bytes),
 * whether or not the file exists. Returns SUCCESS, UNSUPPORTED (the CPU backend has no
 * parameter file), INVALID_ARGUMENT (NULL, no folder to name, path too small).
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_context_params_file(const clsoftmax_context* context,
                                                             char* path, size_t path_size);

/* ---- the operation ------------------------------------------------------ */

#define CLSOFTMAX_MAX_DIMS 8

/*
 * Element types. FLOAT16 (IEEE binary16) and BFLOAT16 (the upper 16 bits of a float32) are
 * storage types: each element is a 16-bit word in host byte order (uint16_t, cl_ushort), read
 * into float32, computed in float32 (sums included) and rounded to nearest even on store. They
 * need no cl_khr_fp16 and run on every OpenCL device and on the CPU backend.
 */
typedef enum clsoftmax_dtype {
    CLSOFTMAX_FLOAT32 = 0,
    CLSOFTMAX_FLOAT64 = 1,
    CLSOFTMAX_FLOAT16 = 2,
    CLSOFTMAX_BFLOAT16 = 3
} clsoftmax_dtype;

/* Bytes per element of dtype; 0 for a value that is not a clsoftmax_dtype. */
CLSOFTMAX_API size_t clsoftmax_dtype_size(clsoftmax_dtype dtype);

typedef enum clsoftmax_op {
    CLSOFTMAX_OP_SOFTMAX = 0,    /* y = exp(s*x - max) / sum(exp(s*x - max)) */
    CLSOFTMAX_OP_LOG_SOFTMAX = 1 /* y = s*x - max - log(sum(exp(s*x - max))) */
} clsoftmax_op;

/*
 * What the forward operations do with a bad row: one whose t = scale * x holds NaN or +inf, or
 * is -inf throughout (t in the compute precision: float for FLOAT32, FLOAT16 and BFLOAT16,
 * double for FLOAT64, so a finite x whose product with scale overflows counts). The same rows
 * are bad on every backend and device.
 */
typedef enum clsoftmax_nonfinite {
    CLSOFTMAX_NONFINITE_NAN = 0,  /* the row is NaN throughout, as PyTorch and TensorFlow */
    CLSOFTMAX_NONFINITE_ZERO = 1, /* the row's softmax (log-softmax too) is 0 throughout */
    CLSOFTMAX_NONFINITE_ERROR = 2 /* the call returns NONFINITE_ROW and writes nothing */
} clsoftmax_nonfinite;

/*
 * Bad rows of one call (see clsoftmax_nonfinite). Rows are numbered in [outer, inner] order:
 * the row through element (o, *, i) of the [outer, n, inner] view (the extents before, along
 * and after the axis) is o * inner + i.
 */
typedef struct clsoftmax_row_report {
    size_t bad_rows;      /* how many rows are bad */
    size_t first_bad_row; /* the lowest bad row's number; SIZE_MAX when there is none */
} clsoftmax_row_report;

/*
 * A dense C-order tensor of ndim extents and the softmax to take over one axis.
 * Initialise with clsoftmax_desc_init() (it sets struct_size; see
 * clsoftmax_config). axis: -ndim..ndim-1, negative counts from the end.
 * scale: multiplies the input before the softmax (softmax(scale * x)); any
 * finite value (for float32, float16 and bfloat16: finite once rounded to float), 1 by
 * default. Special values follow from t = scale * x, as in PyTorch and TensorFlow: a
 * row whose t holds NaN or +inf, or is all -inf, is NaN throughout (nonfinite selects
 * otherwise); -inf beside finite values gives 0 (log-softmax: -inf).
 *
 * Blending (cuDNN's and MIOpen's): out = alpha * softmax(t) + beta * out, computed in the
 * compute precision and rounded once. alpha and beta finite (float-finite below float64); with
 * beta == 0 (the default) out is never read, so garbage or NaN there does not matter. beta != 0
 * needs out distinct from in (in place is INVALID_ARGUMENT).
 *
 * report: when not NULL, the call counts the bad rows into *report (on SUCCESS and on
 * NONFINITE_ROW). Counting, and the ERROR policy, cost one extra read of the input, and make
 * clsoftmax_softmax_buffer wait for its input and the check before it returns.
 *
 * Fields from alpha on were added in 0.2.0: a struct_size that ends before alpha (0.1's
 * header) is accepted, the missing fields taking their defaults.
 */
typedef struct clsoftmax_desc {
    size_t struct_size;
    clsoftmax_dtype dtype;
    size_t ndim;
    size_t dims[CLSOFTMAX_MAX_DIMS];
    int axis;
    double scale;
    clsoftmax_op op;
    double alpha;                  /* default 1 */
    double beta;                   /* default 0: out is not read */
    clsoftmax_nonfinite nonfinite; /* default NAN */
    clsoftmax_row_report* report;  /* default NULL: not counted */
} clsoftmax_desc;

/*
 * Fills desc: dtype, ndim and dims (copied, up to CLSOFTMAX_MAX_DIMS), axis,
 * scale 1, op SOFTMAX, alpha 1, beta 0, nonfinite NAN, report NULL. Checks nothing (the operations
 * validate); dims may be NULL when ndim is 0.
 */
CLSOFTMAX_API void clsoftmax_desc_init(clsoftmax_desc* desc, clsoftmax_dtype dtype, size_t ndim,
                                       const size_t* dims, int axis);

/*
 * Checks desc without a context or device: the statuses the operations would
 * return for it. element_count (may be NULL) receives the element count.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_desc_validate(const clsoftmax_desc* desc,
                                                       size_t* element_count);

/*
 * Host memory, blocking, on either backend: out = softmax(in) as desc says.
 * in == out (in place) is allowed; other overlap is OVERLAP. Thread safety: a
 * context may be used from several threads; calls are serialised on its queue.
 * On devices that share host memory (CL_DEVICE_HOST_UNIFIED_MEMORY, e.g.
 * PoCL) the kernel reads in and writes out where they lie (CL_MEM_USE_HOST_PTR,
 * no copies); other devices stream the tensor through two device buffers in
 * chunks of whole outer slices (CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES; any size,
 * also beyond CL_DEVICE_MAX_MEM_ALLOC_SIZE, as long as one slice of the
 * non-outer dimensions fits one allocation, else UNSUPPORTED).
 * On error out is left untouched by every failure of validation, allocation or
 * program build, all of which happen before anything is enqueued. A device
 * failure after the first kernel or read-back has been enqueued (a lost
 * device, resources refused at run time) cannot be undone: out may then hold
 * partial results.
 * Returns SUCCESS, INVALID_ARGUMENT, INVALID_SHAPE, INVALID_AXIS,
 * INVALID_DTYPE, INVALID_SCALE, SIZE_OVERFLOW, OVERLAP, UNSUPPORTED (float64
 * without cl_khr_fp64), OPENCL_ERROR, BUILD_FAILURE, OUT_OF_MEMORY, NONFINITE_ROW (policy
 * ERROR: out untouched, the last error names the first bad row).
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_softmax_host(clsoftmax_context* context,
                                                      const clsoftmax_desc* desc, const void* in,
                                                      void* out);

/*
 * Device buffers, asynchronous, OpenCL backend only: enqueues the operation on
 * queue (NULL: the context's queue), which must belong to the context's
 * cl_context and device. in_offset and out_offset are in elements. The same
 * buffer and offset for in and out computes in place; other overlap within one
 * buffer is OVERLAP. The command waits for wait_list (num_wait events); if
 * event is not NULL it receives an event that completes with the operation,
 * which the caller releases. Buffer sizes are checked with clGetMemObjectInfo
 * before anything is enqueued. On error nothing is enqueued (except, with a
 * report or policy ERROR, the read-only check of the input, already finished) and *event is
 * untouched.
 * Returns SUCCESS, INVALID_ARGUMENT, INVALID_SHAPE, INVALID_AXIS,
 * INVALID_DTYPE, INVALID_SCALE, SIZE_OVERFLOW (offset + extent overflows),
 * BUFFER_TOO_SMALL, OVERLAP, INVALID_QUEUE, INVALID_CONTEXT (a buffer of
 * another cl_context), UNSUPPORTED (CPU backend; float64 without
 * cl_khr_fp64), OPENCL_ERROR, BUILD_FAILURE, OUT_OF_MEMORY, NONFINITE_ROW (policy ERROR:
 * the call waited for the check, enqueued nothing that writes out, and returns no event).
 * NULL context is INVALID_ARGUMENT with no message (there is nowhere to keep one).
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_softmax_buffer(clsoftmax_context* context,
                                                        const clsoftmax_desc* desc, cl_mem in,
                                                        size_t in_offset, cl_mem out,
                                                        size_t out_offset, cl_command_queue queue,
                                                        cl_uint num_wait, const cl_event* wait_list,
                                                        cl_event* event);

/*
 * Builds and first-launches every kernel that operations on desc's shape will
 * use, so the first real call pays no compilation: it runs them once on a
 * zero-filled scratch device buffer as large as the tensor (or, where the host
 * path streams, one chunk), released before it returns, and waits for them.
 * Validates desc as the operations do. The CPU backend has nothing to prepare
 * and returns SUCCESS once desc is valid. Blocking; thread safety as for the
 * operations. Returns the statuses of clsoftmax_softmax_host.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_prepare(clsoftmax_context* context,
                                                 const clsoftmax_desc* desc);

/* ---- backward ----------------------------------------------------------- */

/*
 * The gradient of the forward operation desc describes, given its output y and the
 * gradient dy with respect to y, all three tensors of desc's shape and dtype:
 *   softmax      grad = scale * y * (dy - sum(dy * y))
 *   log-softmax  grad = scale * (dy - exp(y) * sum(dy))
 * with the sums along the axis (in float for the 16-bit types), then
 * dx = alpha * grad + beta * dx (beta == 0: dx not read). Uses desc's dtype, dims, axis,
 * scale, op, alpha and beta; nonfinite must be NAN and report NULL (INVALID_ARGUMENT
 * otherwise): the backward takes NaN where the data has it. dx may be identical to y or to dy
 * (in place) when beta == 0; other overlap is OVERLAP.
 * Host memory, either backend, blocking. Returns the statuses of clsoftmax_softmax_host
 * (never NONFINITE_ROW).
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_softmax_backward_host(clsoftmax_context* context,
                                                               const clsoftmax_desc* desc,
                                                               const void* y, const void* dy,
                                                               void* dx);

/*
 * Device buffers, OpenCL backend, asynchronous, in the shape and with the statuses of
 * clsoftmax_softmax_buffer (offsets in elements).
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_softmax_backward_buffer(
    clsoftmax_context* context, const clsoftmax_desc* desc, cl_mem y, size_t y_offset, cl_mem dy,
    size_t dy_offset, cl_mem dx, size_t dx_offset, cl_command_queue queue, cl_uint num_wait,
    const cl_event* wait_list, cl_event* event);

/* ---- softmax cross-entropy with logits -------------------------------------- */

typedef enum clsoftmax_labels {
    CLSOFTMAX_LABELS_INDEX = 0, /* one cl_long class index per row */
    CLSOFTMAX_LABELS_PROBS = 1  /* a row of classes probabilities (dtype) per row */
} clsoftmax_labels;

typedef enum clsoftmax_reduction {
    CLSOFTMAX_REDUCTION_NONE = 0, /* loss is [rows] */
    CLSOFTMAX_REDUCTION_SUM = 1,  /* loss is one element */
    CLSOFTMAX_REDUCTION_MEAN = 2  /* loss is one element */
} clsoftmax_reduction;

/*
 * Fused softmax cross-entropy over logits [rows, classes] (dense, row-major), as PyTorch's
 * cross_entropy and TensorFlow's (sparse_)softmax_cross_entropy_with_logits. With
 * lse = log(sum_c exp(z_c)) taken stably (max subtracted) and -log p_c = lse - z_c, per row n:
 *   INDEX labels y_n (eps = label_smoothing, w = weights or 1, C = classes):
 *     loss_n = (1 - eps) * w[y_n] * (lse - z_{y_n}) + eps / C * sum_c w[c] * (lse - z_c)
 *     a row whose label is ignore_index has loss 0 and gradient 0.
 *   PROBS labels q_n (q' = (1 - eps) * q + eps / C):
 *     loss_n = sum_c w[c] * q'_c * (lse - z_c)
 * reduction: NONE gives loss_n; SUM the sum over rows; MEAN divides that sum by the sum of
 * w[y_n] over rows not ignored (INDEX; 0/0 = NaN when every row is ignored) or by rows
 * (PROBS), as PyTorch does.
 * grad (optional) is the gradient of the reduced loss with respect to the logits (for NONE,
 * of the sum of the row losses), [rows, classes] in dtype, computed in the same pass:
 * p_j * (sum of the row's label weights) - (its weight on class j), divided as the loss is.
 * Sums in float for the 16-bit types, in the dtype otherwise. No scale: scale the logits.
 * Initialise with clsoftmax_cross_entropy_desc_init() (struct_size as clsoftmax_config).
 */
typedef struct clsoftmax_cross_entropy_desc {
    size_t struct_size;
    clsoftmax_dtype dtype; /* logits, probability labels, weights, loss and grad */
    size_t rows;
    size_t classes;
    clsoftmax_labels labels;       /* default INDEX */
    long long ignore_index;        /* INDEX: the label of rows to skip; default -100 (PyTorch) */
    double label_smoothing;        /* 0 <= eps <= 1; default 0 */
    clsoftmax_reduction reduction; /* default MEAN (PyTorch) */
} clsoftmax_cross_entropy_desc;

/* Fills desc: the sizes, INDEX labels, ignore_index -100, no smoothing, MEAN. Checks nothing. */
CLSOFTMAX_API void clsoftmax_cross_entropy_desc_init(clsoftmax_cross_entropy_desc* desc,
                                                     clsoftmax_dtype dtype, size_t rows,
                                                     size_t classes);

/*
 * Host memory, either backend, blocking. labels: rows cl_long (INDEX) or rows x classes
 * dtype values (PROBS); weights: classes dtype values or NULL (all 1); loss: rows elements
 * (NONE) or 1; grad: rows x classes or NULL; grad may be identical to logits (in place),
 * other overlap of an output with an input is OVERLAP. An INDEX label that is neither
 * ignore_index nor in [0, classes) is INVALID_ARGUMENT naming the row, found before
 * anything is written. Returns SUCCESS, INVALID_ARGUMENT, INVALID_SHAPE, INVALID_DTYPE,
 * SIZE_OVERFLOW, OVERLAP, UNSUPPORTED, OPENCL_ERROR, BUILD_FAILURE, OUT_OF_MEMORY.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_cross_entropy_host(
    clsoftmax_context* context, const clsoftmax_cross_entropy_desc* desc, const void* logits,
    const void* labels, const void* weights, void* loss, void* grad);

/*
 * Device buffers, OpenCL backend, asynchronous (offsets in elements; labels' in cl_long
 * elements for INDEX). weights and grad may be NULL. Labels stay on the device and are not
 * checked before the call: a row whose INDEX label is out of range (and not ignore_index)
 * gets a NaN loss and a NaN gradient row (as TensorFlow's GPU kernel), which reaches a SUM
 * or MEAN. Uses a context-owned scratch buffer for SUM and MEAN, so such calls run one after
 * another on the device (as clsoftmax_attention_buffer's context workspace). A device error
 * after the row kernel was queued (enqueueing the SUM/MEAN reduction, a failed final marker)
 * cannot be undone: grad may then be written (completely), loss and *event are untouched; the
 * host entry point on a device sharing host memory likewise. The statuses of
 * clsoftmax_cross_entropy_host plus BUFFER_TOO_SMALL, INVALID_QUEUE, INVALID_CONTEXT.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_cross_entropy_buffer(
    clsoftmax_context* context, const clsoftmax_cross_entropy_desc* desc, cl_mem logits,
    size_t logits_offset, cl_mem labels, size_t labels_offset, cl_mem weights,
    size_t weights_offset, cl_mem loss, size_t loss_offset, cl_mem grad, size_t grad_offset,
    cl_command_queue queue, cl_uint num_wait, const cl_event* wait_list, cl_event* event);

/* ---- operations: classifier head and attention ---------------------------- */

/*
 * Softmax where it sits in inference pipelines: after a matrix product. float32 and float64
 * only: FLOAT16 and BFLOAT16 are UNSUPPORTED here (the GEMMs would need half arithmetic). The
 * products run through CLBlast on the OpenCL backend and through CBLAS
 * (OpenBLAS) on the CPU backend; the bias, scale and masks are fused into the
 * softmax step. Both operations have a host-memory entry point (either
 * backend, blocking) and a device-buffer entry point (OpenCL backend only) in
 * OpenCL's enqueue shape: every command, CLBlast's included, goes onto the
 * caller's queue after wait_list, and *event (when not NULL) completes with the
 * last of them. The queue must be in-order (CLBlast's calls take no wait list),
 * else INVALID_QUEUE. Validation (shapes, strides, NULL buffers, buffer sizes
 * through clGetMemObjectInfo) runs before anything is enqueued; on a
 * validation error nothing is enqueued and outputs and *event are untouched.
 * A device error after the work was queued cannot be undone: a failed final
 * read-back (host entry points) or a failed final marker (buffer entry points,
 * whose kernels are then already queued) may leave outputs written; *event is
 * still untouched.
 */

/* The most entries per row clsoftmax_linear_softmax* returns with top-k. */
#define CLSOFTMAX_MAX_TOPK 32

/*
 * Classifier head: Y = softmax(scale * (X . W^T + b)) (or log-softmax) for
 * X [rows, in_features], W [classes, in_features], optional bias b [classes],
 * all dense row-major. In float32 the logit l = X . W^T is a float, then
 * t = scale * (l + b) is computed in float as the softmax's t (see
 * clsoftmax_desc). topk 0: Y is [rows, classes]. topk k in 1..32 (and <= classes):
 * Y is [rows, k] holding the k largest probabilities (log-probabilities) of each
 * row in decreasing order, ties broken by the lower class index, and indices is
 * [rows, k] cl_long class indices. A row holding NaN gives NaN values; its
 * indices then order NaN logits as the lowest.
 * Initialise with clsoftmax_head_desc_init() (struct_size as clsoftmax_config).
 */
typedef struct clsoftmax_head_desc {
    size_t struct_size;
    clsoftmax_dtype dtype;
    size_t rows;
    size_t in_features;
    size_t classes;
    double scale;    /* finite; default 1 */
    clsoftmax_op op; /* default SOFTMAX */
    size_t topk;     /* 0 (default): full rows; 1..CLSOFTMAX_MAX_TOPK */
} clsoftmax_head_desc;

/* Fills desc with the sizes, scale 1, op SOFTMAX, topk 0. Checks nothing. */
CLSOFTMAX_API void clsoftmax_head_desc_init(clsoftmax_head_desc* desc, clsoftmax_dtype dtype,
                                            size_t rows, size_t in_features, size_t classes);

/*
 * Host memory, either backend, blocking. bias may be NULL (no bias). indices
 * must be NULL when topk is 0 and non-NULL otherwise. out and indices must
 * not overlap the inputs (OVERLAP). Returns SUCCESS, INVALID_ARGUMENT,
 * INVALID_SHAPE (a zero size, topk > 32 or > classes), INVALID_DTYPE,
 * INVALID_SCALE, SIZE_OVERFLOW, OVERLAP, UNSUPPORTED, OPENCL_ERROR,
 * BUILD_FAILURE, OUT_OF_MEMORY.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_linear_softmax_host(clsoftmax_context* context,
                                                             const clsoftmax_head_desc* desc,
                                                             const void* x, const void* w,
                                                             const void* bias, void* out,
                                                             cl_long* indices);

/*
 * Device buffers, OpenCL backend, asynchronous (see the section's head).
 * Offsets in elements (indices: in cl_long elements). bias NULL: no bias;
 * indices NULL exactly when topk is 0. With top-k the logits pass through a
 * scratch buffer owned by the context (grown on demand, at most 64 MiB: rows
 * are processed in blocks), so such calls must run one after another on the
 * device, as for clsoftmax_attention_buffer's context workspace. The statuses of
 * clsoftmax_linear_softmax_host plus BUFFER_TOO_SMALL, INVALID_QUEUE, INVALID_CONTEXT.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_linear_softmax_buffer(
    clsoftmax_context* context, const clsoftmax_head_desc* desc, cl_mem x, size_t x_offset,
    cl_mem w, size_t w_offset, cl_mem bias, size_t bias_offset, cl_mem out, size_t out_offset,
    cl_mem indices, size_t indices_offset, cl_command_queue queue, cl_uint num_wait,
    const cl_event* wait_list, cl_event* event);

/*
 * Scaled-dot-product attention: O = softmax(scale * Q . K^T + mask) . V with
 * Q [batch, heads, seq_q, d], K [batch, heads, seq_k, d], V [batch, heads,
 * seq_k, d_v] and O [batch, heads, seq_q, d_v]. Each tensor has explicit
 * element strides for (batch, head, seq, feature); the feature stride must be
 * 1 and the seq stride at least the feature count (CLBlast's leading
 * dimension); O's elements must not overlap one another. Strides let Q, K, V
 * be views of a packed [batch, seq, heads, d] tensor.
 *
 * Masks combine freely:
 *   causal       key j is visible to query i when j <= i + (seq_k - seq_q): the
 *                causal square aligned to the end (the last query sees every
 *                key), PyTorch's causal_lower_right and a KV cache's rule; with
 *                seq_q > seq_k the first seq_q - seq_k queries see no key.
 *   additive     mask_batch x mask_heads x seq_q x seq_k dense values (dtype)
 *                added to the scaled scores, mask_batch 1 or batch and
 *                mask_heads 1 or heads (1 broadcasts); -inf hides a key.
 *                mask_batch 0 means none.
 *   key_lengths  a host array of batch counts, each <= seq_k: keys at or past
 *                key_lengths[b] are hidden (padding). NULL means none. Read
 *                during the call only.
 * A query row whose keys are all hidden gives an output row of 0, not NaN
 * (PyTorch's and ONNX's attention do the same). Scores are t = scale * s + mask
 * (float32: in float), softmax as clsoftmax_desc, NaN rules included.
 * Initialise with clsoftmax_attention_desc_init().
 */
typedef struct clsoftmax_attention_desc {
    size_t struct_size;
    clsoftmax_dtype dtype;
    size_t batch;
    size_t heads;
    size_t seq_q;
    size_t seq_k;
    size_t d;
    size_t d_v;
    size_t q_strides[4]; /* batch, head, seq, feature; in elements */
    size_t k_strides[4];
    size_t v_strides[4];
    size_t o_strides[4];
    double scale; /* finite; init: 1 / sqrt(d) */
    int causal;   /* non-zero: the causal mask above */
    size_t mask_batch;
    size_t mask_heads;
    const size_t* key_lengths;
} clsoftmax_attention_desc;

/* Fills desc: dense C-order strides for each tensor, scale 1/sqrt(d), no mask. */
CLSOFTMAX_API void clsoftmax_attention_desc_init(clsoftmax_attention_desc* desc,
                                                 clsoftmax_dtype dtype, size_t batch, size_t heads,
                                                 size_t seq_q, size_t seq_k, size_t d, size_t d_v);

/*
 * Workspace for clsoftmax_attention_buffer, in bytes: *min_bytes is the least
 * it runs with (keys one at a time), *bytes what it uses to take up to 64 MiB
 * of scores per step (the whole seq_k where that fits). Keys are processed in
 * blocks as large as the workspace allows, with an online softmax (running max
 * and sum, the partial output rescaled) across blocks. Either pointer may be
 * NULL. The CPU backend needs none (0). Returns the statuses of validation.
 */
CLSOFTMAX_API clsoftmax_status
clsoftmax_attention_workspace_size(clsoftmax_context* context, const clsoftmax_attention_desc* desc,
                                   size_t* min_bytes, size_t* bytes);

/*
 * Host memory, either backend, blocking. q, k, v, out span their strides'
 * extent (offset of the last element + 1); mask is the dense additive mask or
 * NULL (exactly when mask_batch is 0). Elements of out between strided rows
 * are left as they are. Returns SUCCESS, INVALID_ARGUMENT (NULLs, bad strides,
 * key_lengths beyond seq_k), INVALID_SHAPE, INVALID_DTYPE, INVALID_SCALE,
 * SIZE_OVERFLOW, OVERLAP, UNSUPPORTED, OPENCL_ERROR, BUILD_FAILURE,
 * OUT_OF_MEMORY.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_attention_host(clsoftmax_context* context,
                                                        const clsoftmax_attention_desc* desc,
                                                        const void* q, const void* k, const void* v,
                                                        const void* mask, void* out);

/*
 * Device buffers, OpenCL backend, asynchronous (see the section's head).
 * workspace NULL: a scratch buffer owned by the context (grow-only, the `bytes`
 * of clsoftmax_attention_workspace_size, kept until the context is freed), so
 * calls using it must run one after another on the device (one in-order queue,
 * or ordered by events); give each concurrent queue its own workspace.
 * Otherwise workspace_bytes (>= min_bytes) of the caller's buffer from offset 0
 * are used.
 * The statuses of clsoftmax_attention_host plus BUFFER_TOO_SMALL,
 * INVALID_QUEUE, INVALID_CONTEXT.
 */
CLSOFTMAX_API clsoftmax_status clsoftmax_attention_buffer(
    clsoftmax_context* context, const clsoftmax_attention_desc* desc, cl_mem q, size_t q_offset,
    cl_mem k, size_t k_offset, cl_mem v, size_t v_offset, cl_mem mask, size_t mask_offset,
    cl_mem out, size_t out_offset, cl_mem workspace, size_t workspace_bytes, cl_command_queue queue,
    cl_uint num_wait, const cl_event* wait_list, cl_event* event);

/* ---- devices ------------------------------------------------------------ */

/*
 * Enumerates OpenCL devices in the order device_selector indices use.
 * Calls visit once per device; stops early when visit returns non-zero.
 * Returns SUCCESS (also when there is no platform: visit is never called),
 * INVALID_ARGUMENT, OPENCL_ERROR.
 */
typedef struct clsoftmax_device_info {
    size_t index;
    cl_platform_id platform;
    cl_device_id device;
    const char* platform_name;
    const char* device_name;
    cl_device_type type;
    cl_uint compute_units;
    cl_ulong global_mem_size;
    cl_ulong local_mem_size;
    size_t max_work_group_size;
    int has_fp64;
    int host_unified_memory;
    const char* opencl_c_version;
    const char* driver_version;
} clsoftmax_device_info;

CLSOFTMAX_API clsoftmax_status clsoftmax_devices_enumerate(
    int (*visit)(const clsoftmax_device_info* info, void* user), void* user);

#ifdef __cplusplus
}
#endif

#endif /* CLSOFTMAX_H */
