/* status.c - the status table, OpenCL error names, and each context's last-error text. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x)

unsigned clsoftmax_version_number(void) { return CLSOFTMAX_VERSION_NUMBER; }

const char* clsoftmax_version_string(void)
{
    return STR(CLSOFTMAX_VERSION_MAJOR) "." STR(CLSOFTMAX_VERSION_MINOR) "." STR(
        CLSOFTMAX_VERSION_PATCH);
}

const char* clsoftmax_status_string(clsoftmax_status status)
{
    switch (status) {
#define X(name, value, message)                                                                    \
    case CLSOFTMAX_##name:                                                                         \
        return message;
        CLSOFTMAX_STATUS_MAP(X)
#undef X
    }
    return "unknown status";
}

const char* clsoftmax_status_name(clsoftmax_status status)
{
    switch (status) {
#define X(name, value, message)                                                                    \
    case CLSOFTMAX_##name:                                                                         \
        return #name;
        CLSOFTMAX_STATUS_MAP(X)
#undef X
    }
    return "UNKNOWN";
}

const char* clsoftmax__cl_error_name(cl_int err)
{
    switch (err) {
#define CASE(code)                                                                                 \
    case code:                                                                                     \
        return #code;
        CASE(CL_SUCCESS)
        CASE(CL_DEVICE_NOT_FOUND)
        CASE(CL_DEVICE_NOT_AVAILABLE)
        CASE(CL_COMPILER_NOT_AVAILABLE)
        CASE(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        CASE(CL_OUT_OF_RESOURCES)
        CASE(CL_OUT_OF_HOST_MEMORY)
        CASE(CL_PROFILING_INFO_NOT_AVAILABLE)
        CASE(CL_MEM_COPY_OVERLAP)
        CASE(CL_IMAGE_FORMAT_MISMATCH)
        CASE(CL_IMAGE_FORMAT_NOT_SUPPORTED)
        CASE(CL_BUILD_PROGRAM_FAILURE)
        CASE(CL_MAP_FAILURE)
        CASE(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        CASE(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        CASE(CL_COMPILE_PROGRAM_FAILURE)
        CASE(CL_LINKER_NOT_AVAILABLE)
        CASE(CL_LINK_PROGRAM_FAILURE)
        CASE(CL_DEVICE_PARTITION_FAILED)
        CASE(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
        CASE(CL_INVALID_VALUE)
        CASE(CL_INVALID_DEVICE_TYPE)
        CASE(CL_INVALID_PLATFORM)
        CASE(CL_INVALID_DEVICE)
        CASE(CL_INVALID_CONTEXT)
        CASE(CL_INVALID_QUEUE_PROPERTIES)
        CASE(CL_INVALID_COMMAND_QUEUE)
        CASE(CL_INVALID_HOST_PTR)
        CASE(CL_INVALID_MEM_OBJECT)
        CASE(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
        CASE(CL_INVALID_IMAGE_SIZE)
        CASE(CL_INVALID_SAMPLER)
        CASE(CL_INVALID_BINARY)
        CASE(CL_INVALID_BUILD_OPTIONS)
        CASE(CL_INVALID_PROGRAM)
        CASE(CL_INVALID_PROGRAM_EXECUTABLE)
        CASE(CL_INVALID_KERNEL_NAME)
        CASE(CL_INVALID_KERNEL_DEFINITION)
        CASE(CL_INVALID_KERNEL)
        CASE(CL_INVALID_ARG_INDEX)
        CASE(CL_INVALID_ARG_VALUE)
        CASE(CL_INVALID_ARG_SIZE)
        CASE(CL_INVALID_KERNEL_ARGS)
        CASE(CL_INVALID_WORK_DIMENSION)
        CASE(CL_INVALID_WORK_GROUP_SIZE)
        CASE(CL_INVALID_WORK_ITEM_SIZE)
        CASE(CL_INVALID_GLOBAL_OFFSET)
        CASE(CL_INVALID_EVENT_WAIT_LIST)
        CASE(CL_INVALID_EVENT)
        CASE(CL_INVALID_OPERATION)
        CASE(CL_INVALID_GL_OBJECT)
        CASE(CL_INVALID_BUFFER_SIZE)
        CASE(CL_INVALID_MIP_LEVEL)
        CASE(CL_INVALID_GLOBAL_WORK_SIZE)
        CASE(CL_INVALID_PROPERTY)
        CASE(CL_INVALID_IMAGE_DESCRIPTOR)
        CASE(CL_INVALID_COMPILER_OPTIONS)
        CASE(CL_INVALID_LINKER_OPTIONS)
        CASE(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef CASE
    case -1001: /* cl_khr_icd */
        return "CL_PLATFORM_NOT_FOUND_KHR";
    default:
        return "unknown OpenCL error";
    }
}

clsoftmax_status clsoftmax__status_from_cl(cl_int err)
{
    switch (err) {
    case CL_SUCCESS:
        return CLSOFTMAX_SUCCESS;
    case CL_OUT_OF_HOST_MEMORY:
        return CLSOFTMAX_OUT_OF_MEMORY;
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_INVALID_BUILD_OPTIONS:
    case CL_COMPILER_NOT_AVAILABLE:
        return CLSOFTMAX_BUILD_FAILURE;
    case CL_INVALID_COMMAND_QUEUE:
        return CLSOFTMAX_INVALID_QUEUE;
    case CL_INVALID_CONTEXT:
    case CL_INVALID_DEVICE:
        return CLSOFTMAX_INVALID_CONTEXT;
    default:
        return CLSOFTMAX_OPENCL_ERROR;
    }
}

void clsoftmax__error_clear(clsoftmax_context* ctx)
{
    ctx->last_error[0] = '\0';
    ctx->last_cl_error = CL_SUCCESS;
}

clsoftmax_status clsoftmax__error(clsoftmax_context* ctx, clsoftmax_status status, const char* fmt,
                                  ...)
{
    if (ctx == NULL)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    va_end(ap);
    ctx->last_cl_error = CL_SUCCESS;
    return status;
}

clsoftmax_status clsoftmax__error_cl(clsoftmax_context* ctx, clsoftmax_status status,
                                     const char* call, cl_int err, const char* fmt, ...)
{
    if (ctx == NULL)
        return status;
    int len = snprintf(ctx->last_error, sizeof ctx->last_error, "%s failed with %s (%d)", call,
                       clsoftmax__cl_error_name(err), (int)err);
    if (len > 0 && (size_t)len < sizeof ctx->last_error - 2 && fmt != NULL && fmt[0] != '\0') {
        ctx->last_error[len++] = ':';
        ctx->last_error[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->last_error + len, sizeof ctx->last_error - (size_t)len, fmt, ap);
        va_end(ap);
    }
    ctx->last_cl_error = err;
    return status;
}

void clsoftmax__error_append(clsoftmax_context* ctx, const char* text)
{
    size_t used = strlen(ctx->last_error);
    if (used + 1 < sizeof ctx->last_error)
        snprintf(ctx->last_error + used, sizeof ctx->last_error - used, "%s", text);
}
