/* fallback.c - the fallback policy: an AUTO context that meets a device failure goes to the CPU. */
#include "internal.h"

#include <stdio.h>

int clsoftmax__fallback_take(clsoftmax_context* ctx, clsoftmax_status status)
{
    if (!ctx->fallback_on_error)
        return 0;
    /* A build failure, or any failed OpenCL call (last_cl_error says one failed); validation
       errors and device limits (UNSUPPORTED) are the same on the CPU, so they are returned. */
    if (status != CLSOFTMAX_BUILD_FAILURE && ctx->last_cl_error == CL_SUCCESS)
        return 0;
    /* Calls of other threads that were already past the backend check when the first one fell
       back reach the device too: they go to the CPU as well, and the first reason stays. */
    if (!clsoftmax__fell_back(ctx)) {
        snprintf(ctx->fallback_reason, sizeof ctx->fallback_reason,
                 "switched to the CPU after an error on %.200s: %.700s", ctx->device_name,
                 ctx->last_error);
        atomic_store(&ctx->fell_back, 1);
    }
    return 1;
}

int clsoftmax__fell_back(const clsoftmax_context* ctx)
{
    return atomic_load(&((clsoftmax_context*)ctx)->fell_back);
}
