/* program.c - kernel sources, build options, the per-context program cache and build logs.
 *
 * One program per (dtype, vector width) per context, built lazily from common.cl + softmax_row.cl +
 * softmax_strided.cl (embedded at build time by cmake/embed_kernels.cmake) with -D options;
 * the program and all its kernels stay in ctx->cache until the context is freed. The op and
 * the scale are kernel arguments, so one program per dtype serves every call.
 *
 * Development override: when the environment variable CLSOFTMAX_KERNEL_DIR names a folder,
 * the three .cl files are read from it instead of the embedded copies, at the first build of
 * each dtype in a context (so edited kernels need no rebuild of the library; a context that
 * has already built keeps its program).
 *
 * Across processes, built programs are kept on disk as binaries (binary_cache.c): a fresh
 * process loads them instead of compiling.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Generated into the build tree as kernel_sources.c, in the order of CLSOFTMAX_KERNELS. */
extern const char* const clsoftmax__cl_sources[];
extern const char* const clsoftmax__cl_names[];
extern const size_t clsoftmax__cl_count;

/* The program is always the three files, concatenated in this order. */
#define SOURCE_COUNT 3
static const char* const source_files[SOURCE_COUNT] = {"common.cl", "softmax_row.cl",
                                                       "softmax_strided.cl"};

/* Indexed by clsoftmax__kernel_id. */
static const char* const kernel_names[CLSOFTMAX__K_COUNT] = {
    "softmax_row_local",   "softmax_row_multipass", "softmax_strided",
    "softmax_row_private", "softmax_row_item",      "softmax_split_partial",
    "softmax_split_write", "softmax_strided_item",  "softmax_check_rows"};

/*
 * -cl-std=CL1.2: the kernels use nothing newer, and it fixes the language on drivers whose
 * default is 3.0 with optional features. Never -cl-fast-relaxed-math or -cl-finite-math-only:
 * NaN and inf must propagate as IEEE says. The vector width and the private row limit are
 * spelled out so the options name the program exactly. -w: PoCL prints a build's warnings to
 * stderr itself, and 16-wide vectors draw dozens of harmless ABI notes on AVX2 hosts.
 */
static void build_options(clsoftmax_dtype dtype, size_t vw, char* buf, size_t size)
{
    snprintf(buf, size,
             "-cl-std=CL1.2 -w %s -DCLSOFTMAX_VW=%zu -DCLSOFTMAX_PRIVATE_MAX=%d "
             "-DCLSOFTMAX_STRIDED_VECS=%d",
             clsoftmax__dtype_options(dtype), vw, CLSOFTMAX__PRIVATE_MAX, CLSOFTMAX__STRIDED_VECS);
}

const char* clsoftmax__dtype_options(clsoftmax_dtype dtype)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT32:
        return "-DCLSOFTMAX_DTYPE=0";
    case CLSOFTMAX_FLOAT64:
        return "-DCLSOFTMAX_DTYPE=1 -DCLSOFTMAX_FP64";
    case CLSOFTMAX_FLOAT16:
        return "-DCLSOFTMAX_DTYPE=2";
    case CLSOFTMAX_BFLOAT16:
        return "-DCLSOFTMAX_DTYPE=3";
    default:
        return "";
    }
}

clsoftmax_status clsoftmax__dtype_check(clsoftmax_context* ctx, clsoftmax_dtype dtype)
{
    RETURN_ERROR_IF(ctx, clsoftmax_dtype_size(dtype) == 0, CLSOFTMAX_INVALID_DTYPE,
                    "unknown dtype %d", (int)dtype);
    RETURN_ERROR_IF(ctx, dtype == CLSOFTMAX_FLOAT64 && !ctx->caps.has_fp64, CLSOFTMAX_UNSUPPORTED,
                    "float64 needs cl_khr_fp64, which %s lacks", ctx->device_name);
    return CLSOFTMAX_SUCCESS;
}

/* log2 of a vector width 1..16 (the cache index), or -1. */
static int vw_index(size_t vw)
{
    for (int i = 0; i < CLSOFTMAX__VW_COUNT; ++i) {
        if (vw == ((size_t)1 << i))
            return i;
    }
    return -1;
}

static const char* const dtype_names[CLSOFTMAX__DTYPE_COUNT] = {"float32", "float64", "float16",
                                                                "bfloat16"};

/* The build log is appended to a last-error buffer of CLSOFTMAX__ERROR_MAX; its head says why. */
#define BUILD_LOG_HEAD 4096

/* Reads dir/name into a NUL-terminated malloc'd string; on failure NULL, the reason in why. */
static char* read_text_file(const char* dir, const char* name, char* why, size_t why_size)
{
    char path[4096];
    char* text = NULL;
    FILE* f = NULL;
    long size = 0;

    int len = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= sizeof path) {
        snprintf(why, why_size, "path too long");
        return NULL;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, why_size, "cannot open %s", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(why, why_size, "cannot read %s", path);
        goto cleanup;
    }
    text = malloc((size_t)size + 1);
    if (text == NULL) {
        snprintf(why, why_size, "out of memory reading %s", path);
        goto cleanup;
    }
    if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(why, why_size, "cannot read %s", path);
        free(text);
        text = NULL;
        goto cleanup;
    }
    text[size] = '\0';
cleanup:
    fclose(f);
    return text;
}

/* Appends the head of the device's build log to the context's last error. */
static void append_build_log(clsoftmax_context* ctx, cl_program program)
{
    size_t size = 0;
    char* log = NULL;
    if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size) !=
            CL_SUCCESS ||
        size == 0) {
        clsoftmax__error_append(ctx, "\n(no build log)");
        return;
    }
    log = malloc(size + 1);
    if (log == NULL) {
        clsoftmax__error_append(ctx, "\n(build log not read: out of host memory)");
        return;
    }
    if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, size, log, NULL) !=
        CL_SUCCESS) {
        clsoftmax__error_append(ctx, "\n(build log not readable)");
        free(log);
        return;
    }
    log[size] = '\0';
    int truncated = strlen(log) > BUILD_LOG_HEAD;
    if (truncated)
        log[BUILD_LOG_HEAD] = '\0';
    clsoftmax__error_append(ctx, "\nbuild log:\n");
    clsoftmax__error_append(ctx, log);
    if (truncated)
        clsoftmax__error_append(ctx, "\n(build log truncated)");
    free(log);
}

/* Builds the dtype's program and creates every kernel into ctx->cache; all or nothing. */
static clsoftmax_status build_program(clsoftmax_context* ctx, clsoftmax_dtype dtype, size_t vw)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    cl_int err = CL_SUCCESS;
    cl_program program = NULL;
    cl_kernel kernels[CLSOFTMAX__K_COUNT] = {NULL};
    size_t wg[CLSOFTMAX__K_COUNT] = {0};
    char* loaded[SOURCE_COUNT] = {NULL};
    const char* sources[SOURCE_COUNT];
    char options[256];
    const int vi = vw_index(vw);
    build_options(dtype, vw, options, sizeof options);

    const char* dir = getenv("CLSOFTMAX_KERNEL_DIR");
    const char* origin = "embedded sources";
    if (dir != NULL && dir[0] != '\0') {
        origin = "sources from CLSOFTMAX_KERNEL_DIR";
        for (size_t s = 0; s < SOURCE_COUNT; s++) {
            char why[4200];
            loaded[s] = read_text_file(dir, source_files[s], why, sizeof why);
            if (loaded[s] == NULL) {
                status = clsoftmax__error(ctx, CLSOFTMAX_BUILD_FAILURE,
                                          "CLSOFTMAX_KERNEL_DIR is set but the kernel sources "
                                          "could not be loaded: %s",
                                          why);
                goto cleanup;
            }
            sources[s] = loaded[s];
        }
    } else {
        /* Guards against CLSOFTMAX_KERNELS in CMakeLists.txt drifting from this file. */
        int same = clsoftmax__cl_count == SOURCE_COUNT;
        for (size_t s = 0; same && s < SOURCE_COUNT; s++)
            same = strcmp(clsoftmax__cl_names[s], source_files[s]) == 0;
        if (!same) {
            status = clsoftmax__error(ctx, CLSOFTMAX_BUILD_FAILURE,
                                      "internal: the library embeds %zu kernel sources, expected "
                                      "common.cl, softmax_row.cl, softmax_strided.cl in order",
                                      clsoftmax__cl_count);
            goto cleanup;
        }
        for (size_t s = 0; s < SOURCE_COUNT; s++)
            sources[s] = clsoftmax__cl_sources[s];
    }

    program = clsoftmax__binary_cache_load(ctx, sources, SOURCE_COUNT, options);
    if (program != NULL)
        goto built; /* from the disk cache (binary_cache.c) */

    program = clCreateProgramWithSource(ctx->cl_ctx, SOURCE_COUNT, sources, NULL, &err);
    if (err != CL_SUCCESS) {
        status =
            clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateProgramWithSource",
                                err, "creating the %s program", dtype_names[dtype]);
        goto cleanup;
    }

    err = clBuildProgram(program, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        /* Whatever the driver's code (CL_BUILD_PROGRAM_FAILURE, CL_INVALID_BUILD_OPTIONS,
           CL_COMPILER_NOT_AVAILABLE, ...), the program did not build. */
        status = clsoftmax__error_cl(ctx, CLSOFTMAX_BUILD_FAILURE, "clBuildProgram", err,
                                     "building the %s kernels (%s) with options \"%s\"",
                                     dtype_names[dtype], origin, options);
        append_build_log(ctx, program);
        goto cleanup;
    }
    clsoftmax__binary_cache_store(ctx, sources, SOURCE_COUNT, options, program);

built:

    for (size_t k = 0; k < CLSOFTMAX__K_COUNT; k++) {
        kernels[k] = clCreateKernel(program, kernel_names[k], &err);
        if (err != CL_SUCCESS) {
            status =
                clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateKernel", err,
                                    "creating kernel %s (%s)", kernel_names[k], dtype_names[dtype]);
            goto cleanup;
        }
        CHECK_CL(ctx,
                 clGetKernelWorkGroupInfo(kernels[k], ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof wg[k], &wg[k], NULL),
                 cleanup);
    }

    ctx->cache.program[dtype][vi] = program;
    for (size_t k = 0; k < CLSOFTMAX__K_COUNT; k++) {
        ctx->cache.kernel[dtype][vi][k] = kernels[k];
        ctx->cache.kernel_wg[dtype][vi][k] = wg[k];
    }
    program = NULL; /* owned by the cache now */
    for (size_t k = 0; k < CLSOFTMAX__K_COUNT; k++)
        kernels[k] = NULL;

cleanup:
    for (size_t k = 0; k < CLSOFTMAX__K_COUNT; k++) {
        if (kernels[k] != NULL)
            clReleaseKernel(kernels[k]);
    }
    if (program != NULL)
        clReleaseProgram(program);
    for (size_t s = 0; s < SOURCE_COUNT; s++)
        free(loaded[s]);
    return status;
}

clsoftmax_status clsoftmax__kernel_get(clsoftmax_context* ctx, clsoftmax__kernel_id id,
                                       clsoftmax_dtype dtype, cl_kernel* kernel, size_t* max_wg)
{
    size_t eff[CLSOFTMAX_PARAM_COUNT];
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    clsoftmax__params_effective(ctx->params, &ctx->caps, clsoftmax_dtype_size(dtype), eff);
    return clsoftmax__kernel_get_vw(ctx, id, dtype, eff[CLSOFTMAX_PARAM_VECTOR_WIDTH], kernel,
                                    max_wg);
}

clsoftmax_status clsoftmax__kernel_get_vw(clsoftmax_context* ctx, clsoftmax__kernel_id id,
                                          clsoftmax_dtype dtype, size_t vw, cl_kernel* kernel,
                                          size_t* max_wg)
{
    const int vi = vw_index(vw);
    if (ctx == NULL || kernel == NULL || (unsigned)id >= CLSOFTMAX__K_COUNT || vi < 0)
        return clsoftmax__error(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                                "internal: bad arguments to clsoftmax__kernel_get");
    RETURN_ERROR_IF(ctx, ctx->cl_ctx == NULL || ctx->device == NULL, CLSOFTMAX_UNSUPPORTED,
                    "OpenCL kernels are not available on the CPU backend");
    clsoftmax_status checked = clsoftmax__dtype_check(ctx, dtype);
    if (checked != CLSOFTMAX_SUCCESS)
        return checked;

    if (ctx->cache.program[dtype][vi] == NULL) {
        clsoftmax_status status = build_program(ctx, dtype, vw);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
    }
    *kernel = ctx->cache.kernel[dtype][vi][id];
    if (max_wg != NULL)
        *max_wg = ctx->cache.kernel_wg[dtype][vi][id];
    return CLSOFTMAX_SUCCESS;
}

void clsoftmax__program_cache_clear(clsoftmax__program_cache* cache)
{
    if (cache == NULL)
        return;
    for (size_t d = 0; d < CLSOFTMAX__DTYPE_COUNT; d++) {
        for (size_t v = 0; v < CLSOFTMAX__VW_COUNT; v++) {
            for (size_t k = 0; k < CLSOFTMAX__K_COUNT; k++) {
                if (cache->kernel[d][v][k] != NULL)
                    clReleaseKernel(cache->kernel[d][v][k]);
                cache->kernel[d][v][k] = NULL;
                cache->kernel_wg[d][v][k] = 0;
            }
            if (cache->program[d][v] != NULL)
                clReleaseProgram(cache->program[d][v]);
            cache->program[d][v] = NULL;
        }
    }
}

/* ---- programs of the head and attention operations (ops.c) ----------------------------- */

/* Generated into the build tree as ops_kernel_sources.c from CLSOFTMAX_OPS_KERNELS. */
extern const char* const clsoftmax__ops_cl_sources[];
extern const char* const clsoftmax__ops_cl_names[];
extern const size_t clsoftmax__ops_cl_count;

#define OPS_SOURCE_MAX 8

clsoftmax_status clsoftmax__program_build_ops(clsoftmax_context* ctx, size_t count,
                                              const char* const* names, const char* options,
                                              const char* what, cl_program* program)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    cl_int err = CL_SUCCESS;
    const char* sources[OPS_SOURCE_MAX];
    char* loaded[OPS_SOURCE_MAX] = {NULL};
    cl_program prog = NULL;

    if (count == 0 || count > OPS_SOURCE_MAX)
        return clsoftmax__error(ctx, CLSOFTMAX_INVALID_ARGUMENT,
                                "internal: %zu sources for the %s program", count, what);
    /* As for the softmax program, CLSOFTMAX_KERNEL_DIR replaces the embedded sources. */
    const char* dir = getenv("CLSOFTMAX_KERNEL_DIR");
    for (size_t s = 0; dir != NULL && dir[0] != '\0' && s < count; s++) {
        char why[4200];
        loaded[s] = read_text_file(dir, names[s], why, sizeof why);
        if (loaded[s] == NULL) {
            status = clsoftmax__error(ctx, CLSOFTMAX_BUILD_FAILURE,
                                      "CLSOFTMAX_KERNEL_DIR is set but the %s sources could not "
                                      "be loaded: %s",
                                      what, why);
            goto cleanup;
        }
    }
    for (size_t s = 0; s < count; s++) {
        sources[s] = loaded[s];
        for (size_t e = 0; sources[s] == NULL && e < clsoftmax__ops_cl_count; e++)
            if (strcmp(clsoftmax__ops_cl_names[e], names[s]) == 0)
                sources[s] = clsoftmax__ops_cl_sources[e];
        /* common.cl is embedded once, in the softmax table, and opens the ops programs too */
        for (size_t e = 0; sources[s] == NULL && e < clsoftmax__cl_count; e++)
            if (strcmp(clsoftmax__cl_names[e], names[s]) == 0)
                sources[s] = clsoftmax__cl_sources[e];
        if (sources[s] == NULL) {
            status = clsoftmax__error(ctx, CLSOFTMAX_BUILD_FAILURE,
                                      "internal: kernel source %s is not embedded in the library",
                                      names[s]);
            goto cleanup;
        }
    }
    prog = clCreateProgramWithSource(ctx->cl_ctx, (cl_uint)count, sources, NULL, &err);
    if (err != CL_SUCCESS) {
        status =
            clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateProgramWithSource",
                                err, "creating the %s program", what);
        goto cleanup;
    }
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        status = clsoftmax__error_cl(
            ctx, CLSOFTMAX_BUILD_FAILURE, "clBuildProgram", err,
            "building the %s program (%s) with options \"%s\"", what,
            dir != NULL && dir[0] != '\0' ? "CLSOFTMAX_KERNEL_DIR" : "embedded sources", options);
        append_build_log(ctx, prog);
        clReleaseProgram(prog);
        goto cleanup;
    }
    *program = prog;
cleanup:
    for (size_t s = 0; s < count; s++)
        free(loaded[s]);
    return status;
}

clsoftmax_status clsoftmax__aux_kernel_get(clsoftmax_context* ctx, clsoftmax__aux_cache* cache,
                                           clsoftmax_dtype dtype,
                                           const clsoftmax__aux_program* prog, const char* options,
                                           size_t id, cl_kernel* kernel, size_t* max_wg)
{
    clsoftmax_status status = clsoftmax__dtype_check(ctx, dtype);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    if (cache->program[dtype] == NULL) {
        cl_program program = NULL;
        cl_kernel made[CLSOFTMAX__AUX_K_MAX] = {NULL};
        size_t wg[CLSOFTMAX__AUX_K_MAX] = {0};
        cl_int err = CL_SUCCESS;
        status = clsoftmax__program_build_ops(ctx, prog->source_count, prog->sources, options,
                                              prog->what, &program);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        /* all kernels or none: a half-filled cache entry would be taken as built */
        for (size_t k = 0; k < prog->kernel_count; k++) {
            made[k] = clCreateKernel(program, prog->kernel_names[k], &err);
            if (err != CL_SUCCESS) {
                status = clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateKernel",
                                             err, "creating kernel %s", prog->kernel_names[k]);
                goto cleanup;
            }
            CHECK_CL(ctx,
                     clGetKernelWorkGroupInfo(made[k], ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                              sizeof wg[k], &wg[k], NULL),
                     cleanup);
        }
        cache->program[dtype] = program;
        program = NULL;
        for (size_t k = 0; k < prog->kernel_count; k++) {
            cache->kernel[dtype][k] = made[k];
            cache->kernel_wg[dtype][k] = wg[k];
            made[k] = NULL;
        }
    cleanup:
        for (size_t k = 0; k < prog->kernel_count; k++)
            if (made[k] != NULL)
                clReleaseKernel(made[k]);
        if (program != NULL)
            clReleaseProgram(program);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
    }
    *kernel = cache->kernel[dtype][id];
    *max_wg = cache->kernel_wg[dtype][id];
    return CLSOFTMAX_SUCCESS;
}
