/* context.c - creating, borrowing, querying and freeing contexts; the environment's say. */
#include "internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Why the last create call on this thread failed: there is no context to hold it. */
static _Thread_local char create_error[1024];

const char* clsoftmax_last_create_error(void) { return create_error; }

static clsoftmax_status create_failed(clsoftmax_status status, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static clsoftmax_status create_failed(clsoftmax_status status, const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(create_error, sizeof create_error, fmt, ap);
    va_end(ap);
    return status;
}

void clsoftmax_config_init(clsoftmax_config* config)
{
    if (config == NULL)
        return;
    memset(config, 0, sizeof *config);
    config->struct_size = sizeof *config;
    config->backend = CLSOFTMAX_BACKEND_AUTO;
    config->device_selector = NULL;
    config->cpu_threads = 0;
    config->use_environment = 1;
}

static clsoftmax_context* context_alloc(void)
{
    clsoftmax_context* ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return NULL;
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void context_setup_cpu(clsoftmax_context* ctx, unsigned threads)
{
    ctx->backend = CLSOFTMAX_BACKEND_CPU;
    ctx->cpu_threads = threads != 0 ? threads : clsoftmax__cpu_count();
    snprintf(ctx->device_name, sizeof ctx->device_name, "CPU fallback (%u threads)",
             ctx->cpu_threads);
}

/*
 * Creates the OpenCL context and queue for the selected device. On failure
 * writes the reason into msg and releases what it made.
 */
static clsoftmax_status context_setup_opencl(clsoftmax_context* ctx, const char* selector,
                                             char* msg, size_t msg_size)
{
    cl_platform_id platform = NULL;
    cl_device_id device = NULL;
    cl_int err = CL_SUCCESS;
    clsoftmax_status status =
        clsoftmax__device_select(selector, &platform, &device, ctx->device_name,
                                 sizeof ctx->device_name, &err, msg, msg_size);
    if (status != CLSOFTMAX_SUCCESS)
        return status;

    const char* call = NULL;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
    cl_context cl_ctx = clCreateContext(props, 1, &device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        call = "clCreateContext";
        goto fail;
    }
    cl_command_queue queue = clCreateCommandQueue(cl_ctx, device, 0, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(cl_ctx);
        call = "clCreateCommandQueue";
        goto fail;
    }
    err = clsoftmax__device_caps_query(device, &ctx->caps);
    if (err != CL_SUCCESS) {
        clReleaseCommandQueue(queue);
        clReleaseContext(cl_ctx);
        call = "clGetDeviceInfo";
        goto fail;
    }
    ctx->backend = CLSOFTMAX_BACKEND_OPENCL;
    ctx->cl_ctx = cl_ctx;
    ctx->device = device;
    ctx->queue = queue;
    return CLSOFTMAX_SUCCESS;

fail:
    snprintf(msg, msg_size, "%s failed with %s (%d) on %s", call, clsoftmax__cl_error_name(err),
             (int)err, ctx->device_name);
    ctx->device_name[0] = '\0';
    status = clsoftmax__status_from_cl(err);
    return status == CLSOFTMAX_OUT_OF_MEMORY ? status : CLSOFTMAX_OPENCL_ERROR;
}

static int parse_backend(const char* text, clsoftmax_backend* backend)
{
    static const struct {
        const char* name;
        clsoftmax_backend value;
    } names[] = {{"auto", CLSOFTMAX_BACKEND_AUTO},
                 {"opencl", CLSOFTMAX_BACKEND_OPENCL},
                 {"cpu", CLSOFTMAX_BACKEND_CPU}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
        if (strcasecmp(text, names[i].name) == 0) {
            *backend = names[i].value;
            return 1;
        }
    }
    return 0;
}

clsoftmax_status clsoftmax_context_create(const clsoftmax_config* config,
                                          clsoftmax_context** context)
{
    create_error[0] = '\0';
    if (context == NULL)
        return create_failed(CLSOFTMAX_INVALID_ARGUMENT, "context (the output pointer) is NULL");
    *context = NULL;

    clsoftmax_config cfg;
    clsoftmax_config_init(&cfg);
    if (config != NULL) {
        /* The struct before fallback_on_error was appended is accepted, the new field 0. */
        const size_t v1_size = offsetof(clsoftmax_config, fallback_on_error);
        if (config->struct_size != sizeof cfg && config->struct_size != v1_size)
            return create_failed(CLSOFTMAX_INVALID_ARGUMENT,
                                 "config->struct_size is %zu, expected %zu: initialise it with "
                                 "clsoftmax_config_init()",
                                 config->struct_size, sizeof cfg);
        memcpy(&cfg, config, config->struct_size);
    }
    if (cfg.backend != CLSOFTMAX_BACKEND_AUTO && cfg.backend != CLSOFTMAX_BACKEND_OPENCL &&
        cfg.backend != CLSOFTMAX_BACKEND_CPU)
        return create_failed(CLSOFTMAX_INVALID_ARGUMENT, "config->backend %d is not a backend",
                             (int)cfg.backend);

    if (cfg.use_environment) {
        const char* env = getenv("CLSOFTMAX_BACKEND");
        if (env != NULL && env[0] != '\0' && !parse_backend(env, &cfg.backend))
            return create_failed(CLSOFTMAX_INVALID_ARGUMENT,
                                 "CLSOFTMAX_BACKEND='%s' is not one of auto, opencl, cpu", env);
        env = getenv("CLSOFTMAX_DEVICE");
        if (env != NULL && env[0] != '\0')
            cfg.device_selector = env;
        env = getenv("CLSOFTMAX_FALLBACK");
        if (env != NULL && env[0] != '\0') {
            if (strcmp(env, "0") != 0 && strcmp(env, "1") != 0)
                return create_failed(CLSOFTMAX_INVALID_ARGUMENT,
                                     "CLSOFTMAX_FALLBACK='%s' is not 0 or 1", env);
            cfg.fallback_on_error = env[0] == '1';
        }
    }

    clsoftmax_context* ctx = context_alloc();
    if (ctx == NULL)
        return create_failed(CLSOFTMAX_OUT_OF_MEMORY, "allocating the context failed");

    char msg[sizeof create_error];
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    if (cfg.backend == CLSOFTMAX_BACKEND_CPU) {
        context_setup_cpu(ctx, cfg.cpu_threads);
        goto params;
    }

    status = context_setup_opencl(ctx, cfg.device_selector, msg, sizeof msg);
    /* AUTO falls back only when OpenCL has nothing usable; a selector the user
       gave that matches no device is their error, not a reason to fall back. */
    int selected = cfg.device_selector != NULL && cfg.device_selector[0] != '\0';
    if (status != CLSOFTMAX_SUCCESS && cfg.backend == CLSOFTMAX_BACKEND_AUTO &&
        !(selected && status == CLSOFTMAX_NO_DEVICE)) {
        context_setup_cpu(ctx, cfg.cpu_threads);
        snprintf(ctx->fallback_reason, sizeof ctx->fallback_reason, "%s", msg);
        status = CLSOFTMAX_SUCCESS;
    }
    if (status != CLSOFTMAX_SUCCESS) {
        clsoftmax_context_free(ctx);
        return create_failed(status, "%s", msg);
    }
    ctx->fallback_on_error = cfg.backend == CLSOFTMAX_BACKEND_AUTO && cfg.fallback_on_error &&
                             ctx->backend == CLSOFTMAX_BACKEND_OPENCL;
    /* What the CPU path uses should this context fall back to it. */
    ctx->cpu_threads = cfg.cpu_threads != 0 ? cfg.cpu_threads : clsoftmax__cpu_count();

params:
    /* The device's parameter file, then CLSOFTMAX_PARAMS (params.c). */
    status = clsoftmax__params_load(ctx, cfg.use_environment, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS) {
        clsoftmax_context_free(ctx);
        return create_failed(status, "%s", msg);
    }
    *context = ctx;
    return CLSOFTMAX_SUCCESS;
}

/* A failure of the driver (not of the caller's objects): OUT_OF_MEMORY or OPENCL_ERROR. */
static clsoftmax_status borrowed_status(cl_int err)
{
    return clsoftmax__status_from_cl(err) == CLSOFTMAX_OUT_OF_MEMORY ? CLSOFTMAX_OUT_OF_MEMORY
                                                                     : CLSOFTMAX_OPENCL_ERROR;
}

clsoftmax_status clsoftmax_context_create_borrowed(cl_context cl_ctx, cl_device_id device,
                                                   cl_command_queue queue,
                                                   clsoftmax_context** context)
{
    create_error[0] = '\0';
    if (context == NULL)
        return create_failed(CLSOFTMAX_INVALID_ARGUMENT, "context (the output pointer) is NULL");
    *context = NULL;
    if (cl_ctx == NULL || device == NULL)
        return create_failed(CLSOFTMAX_INVALID_ARGUMENT, "cl_ctx and device must not be NULL");

    /* The device must belong to the context. */
    cl_uint num_devices = 0;
    cl_int err =
        clGetContextInfo(cl_ctx, CL_CONTEXT_NUM_DEVICES, sizeof num_devices, &num_devices, NULL);
    /* Only CL_INVALID_CONTEXT is the caller's error; anything else is the driver's trouble. */
    if (err != CL_SUCCESS || num_devices == 0)
        return create_failed(err == CL_SUCCESS || err == CL_INVALID_CONTEXT
                                 ? CLSOFTMAX_INVALID_CONTEXT
                                 : borrowed_status(err),
                             "clGetContextInfo(CL_CONTEXT_NUM_DEVICES) failed with %s (%d)%s",
                             clsoftmax__cl_error_name(err), (int)err,
                             err == CL_INVALID_CONTEXT ? ": not a valid cl_context" : "");
    cl_device_id* devices = malloc(num_devices * sizeof *devices);
    if (devices == NULL)
        return create_failed(CLSOFTMAX_OUT_OF_MEMORY, "allocating the device list failed");
    err =
        clGetContextInfo(cl_ctx, CL_CONTEXT_DEVICES, num_devices * sizeof *devices, devices, NULL);
    int found = 0;
    for (cl_uint i = 0; err == CL_SUCCESS && i < num_devices; ++i)
        found |= devices[i] == device;
    free(devices);
    if (err != CL_SUCCESS)
        return create_failed(borrowed_status(err),
                             "clGetContextInfo(CL_CONTEXT_DEVICES) failed with %s (%d)",
                             clsoftmax__cl_error_name(err), (int)err);
    if (!found)
        return create_failed(CLSOFTMAX_INVALID_CONTEXT,
                             "the device is not one of the cl_context's devices");

    if (queue != NULL) {
        cl_context queue_ctx = NULL;
        cl_device_id queue_dev = NULL;
        err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof queue_ctx, &queue_ctx, NULL);
        if (err == CL_SUCCESS)
            err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof queue_dev, &queue_dev, NULL);
        if (err != CL_SUCCESS)
            return create_failed(
                err == CL_INVALID_COMMAND_QUEUE ? CLSOFTMAX_INVALID_QUEUE : borrowed_status(err),
                "clGetCommandQueueInfo failed with %s (%d)%s", clsoftmax__cl_error_name(err),
                (int)err, err == CL_INVALID_COMMAND_QUEUE ? ": not a valid queue" : "");
        if (queue_ctx != cl_ctx || queue_dev != device)
            return create_failed(CLSOFTMAX_INVALID_QUEUE,
                                 "the queue belongs to another cl_context or device");
    }

    clsoftmax_context* ctx = context_alloc();
    if (ctx == NULL)
        return create_failed(CLSOFTMAX_OUT_OF_MEMORY, "allocating the context failed");
    const char* call = "clGetDeviceInfo";
    cl_command_queue held = NULL; /* the queue reference this context owns */
    int context_held = 0;
    err = clsoftmax__device_caps_query(device, &ctx->caps);
    if (err == CL_SUCCESS && queue == NULL) {
        call = "clCreateCommandQueue";
        held = clCreateCommandQueue(cl_ctx, device, 0, &err);
    } else if (err == CL_SUCCESS) {
        call = "clRetainCommandQueue";
        err = clRetainCommandQueue(queue);
        held = err == CL_SUCCESS ? queue : NULL;
    }
    /* A retain can fail (CL_OUT_OF_HOST_MEMORY): going on would release the caller's
       objects once too often when the context is freed. */
    if (err == CL_SUCCESS) {
        call = "clRetainContext";
        err = clRetainContext(cl_ctx);
        context_held = err == CL_SUCCESS;
    }
    if (err == CL_SUCCESS) {
        call = "clRetainDevice";
        err = clRetainDevice(device);
    }
    if (err != CL_SUCCESS) {
        if (context_held)
            clReleaseContext(cl_ctx);
        if (held != NULL)
            clReleaseCommandQueue(held);
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
        return create_failed(
            clsoftmax__status_from_cl(err) == CLSOFTMAX_OUT_OF_MEMORY ? CLSOFTMAX_OUT_OF_MEMORY
                                                                      : CLSOFTMAX_OPENCL_ERROR,
            "%s failed with %s (%d)", call, clsoftmax__cl_error_name(err), (int)err);
    }
    ctx->backend = CLSOFTMAX_BACKEND_OPENCL;
    ctx->cl_ctx = cl_ctx;
    ctx->device = device;
    ctx->queue = held;
    ctx->device_retained = 1;

    char platform_name[CLSOFTMAX__NAME_MAX] = "";
    char device_name[CLSOFTMAX__NAME_MAX] = "";
    cl_platform_id platform = NULL;
    if (clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL) == CL_SUCCESS)
        clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof platform_name, platform_name, NULL);
    clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof device_name, device_name, NULL);
    platform_name[sizeof platform_name - 1] = '\0';
    device_name[sizeof device_name - 1] = '\0';
    snprintf(ctx->device_name, sizeof ctx->device_name, "%.120s / %.120s", platform_name,
             device_name);
    /* No config to turn the environment off: the device's parameter file, then
       CLSOFTMAX_PARAMS, as for a created context. */
    char msg[sizeof create_error];
    clsoftmax_status status = clsoftmax__params_load(ctx, 1, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS) {
        clsoftmax_context_free(ctx);
        return create_failed(status, "%s", msg);
    }
    *context = ctx;
    return CLSOFTMAX_SUCCESS;
}

void clsoftmax_context_free(clsoftmax_context* ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->queue != NULL)
        clFinish(ctx->queue);
    clsoftmax__program_cache_clear(&ctx->cache);
    clsoftmax__cpu_pool_free(ctx->cpu_pool);
    if (ctx->split_busy != NULL)
        clReleaseEvent(ctx->split_busy);
    if (ctx->split_scratch != NULL)
        clReleaseMemObject(ctx->split_scratch);
    clsoftmax__ops_release(&ctx->ops);
    clsoftmax__aux_release(&ctx->backward);
    clsoftmax__aux_release(&ctx->xent);
    if (ctx->report_buf != NULL)
        clReleaseMemObject(ctx->report_buf);
    if (ctx->queue != NULL)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->cl_ctx != NULL)
        clReleaseContext(ctx->cl_ctx);
    if (ctx->device_retained)
        clReleaseDevice(ctx->device);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

clsoftmax_backend clsoftmax_context_backend(const clsoftmax_context* ctx)
{
    if (ctx == NULL)
        return CLSOFTMAX_BACKEND_AUTO;
    return clsoftmax__fell_back(ctx) ? CLSOFTMAX_BACKEND_CPU : ctx->backend;
}

const char* clsoftmax_context_device_name(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->device_name : "";
}

const char* clsoftmax_context_fallback_reason(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->fallback_reason : "";
}

int clsoftmax_context_supports_float64(const clsoftmax_context* ctx)
{
    if (ctx == NULL)
        return 0;
    return ctx->backend == CLSOFTMAX_BACKEND_CPU || ctx->caps.has_fp64;
}

cl_context clsoftmax_context_cl_context(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->cl_ctx : NULL;
}

cl_device_id clsoftmax_context_cl_device(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->device : NULL;
}

cl_command_queue clsoftmax_context_cl_queue(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->queue : NULL;
}

const char* clsoftmax_context_last_error(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->last_error : "context is NULL";
}

cl_int clsoftmax_context_last_cl_error(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->last_cl_error : CL_SUCCESS;
}

void clsoftmax__aux_release(clsoftmax__aux_cache* aux)
{
    for (size_t d = 0; d < CLSOFTMAX__DTYPE_COUNT; d++) {
        for (size_t k = 0; k < CLSOFTMAX__AUX_K_MAX; k++) {
            if (aux->kernel[d][k] != NULL)
                clReleaseKernel(aux->kernel[d][k]);
            aux->kernel[d][k] = NULL;
        }
        if (aux->program[d] != NULL)
            clReleaseProgram(aux->program[d]);
        aux->program[d] = NULL;
    }
    if (aux->scratch != NULL)
        clReleaseMemObject(aux->scratch);
    aux->scratch = NULL;
    aux->scratch_bytes = 0;
}
