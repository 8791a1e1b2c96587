/* test_half_util.c - helpers of the float16/bfloat16 and non-finite policy suites. */
#include "test_half_util.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/half_convert.h"
#include "test_util.h"

size_t th_size(clsoftmax_dtype dtype) { return clsoftmax_dtype_size(dtype); }

double th_get(clsoftmax_dtype dtype, const void* data, size_t i)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        return ((const double*)data)[i];
    case CLSOFTMAX_FLOAT16:
        return clsoftmax__f16_to_f32(((const uint16_t*)data)[i]);
    case CLSOFTMAX_BFLOAT16:
        return clsoftmax__bf16_to_f32(((const uint16_t*)data)[i]);
    default:
        return ((const float*)data)[i];
    }
}

void th_set(clsoftmax_dtype dtype, void* data, size_t i, double v)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        ((double*)data)[i] = v;
        break;
    case CLSOFTMAX_FLOAT16:
        ((uint16_t*)data)[i] = clsoftmax__f32_to_f16((float)v);
        break;
    case CLSOFTMAX_BFLOAT16:
        ((uint16_t*)data)[i] = clsoftmax__f32_to_bf16((float)v);
        break;
    default:
        ((float*)data)[i] = (float)v;
        break;
    }
}

void th_reference(const clsoftmax_desc* desc, const void* in, long double* ref)
{
    size_t outer, n, inner;
    test_view(desc->ndim, desc->dims, desc->axis, &outer, &n, &inner);
    const float scale_f = (float)desc->scale;
    const int f64 = desc->dtype == CLSOFTMAX_FLOAT64;
    for (size_t o = 0; o < outer; ++o) {
        for (size_t i = 0; i < inner; ++i) {
            const size_t base = o * n * inner + i;
            long double m = -INFINITY;
            for (size_t k = 0; k < n; ++k) {
                const double x = th_get(desc->dtype, in, base + k * inner);
                const long double t =
                    f64 ? (long double)(desc->scale * x) : (long double)(scale_f * (float)x);
                ref[base + k * inner] = t;
                m = fmaxl(m, t);
            }
            long double sum = 0;
            for (size_t k = 0; k < n; ++k)
                sum += expl(ref[base + k * inner] - m);
            for (size_t k = 0; k < n; ++k) {
                const long double d = ref[base + k * inner] - m;
                ref[base + k * inner] =
                    desc->op == CLSOFTMAX_OP_LOG_SOFTMAX ? d - logl(sum) : expl(d) / sum;
            }
        }
    }
}

uint16_t th_round16(clsoftmax_dtype dtype, long double ref)
{
    /* Through float: a double rounding, off by one ulp only on exact float midpoints of the
       16-bit grid, which the 1-ulp comparisons absorb. */
    return dtype == CLSOFTMAX_FLOAT16 ? clsoftmax__f32_to_f16((float)ref)
                                      : clsoftmax__f32_to_bf16((float)ref);
}

static double th_get16(clsoftmax_dtype dtype, uint16_t h)
{
    return dtype == CLSOFTMAX_FLOAT16 ? clsoftmax__f16_to_f32(h) : clsoftmax__bf16_to_f32(h);
}

/* The bit pattern as a position on the number line: -0 and +0 both 0. */
static int32_t ordered(uint16_t h) { return (h & 0x8000u) ? -(int32_t)(h & 0x7fffu) : (int32_t)h; }

int32_t th_ulps16(clsoftmax_dtype dtype, uint16_t got, long double ref)
{
    const uint16_t want = th_round16(dtype, ref);
    const double g = th_get16(dtype, got);
    const double w = th_get16(dtype, want);
    if (isnan(w) || isnan(g))
        return isnan(w) && isnan(g) ? 0 : INT32_MAX;
    /* the reference rounded: a value past the type's largest is an infinity there too */
    if (isinf(w) || isinf(g))
        return w == g ? 0 : INT32_MAX;
    const int32_t d = ordered(got) - ordered(want);
    return d < 0 ? -d : d;
}

clsoftmax_status th_run_buffer(clsoftmax_context* ctx, const clsoftmax_desc* desc, const void* in,
                               void* out)
{
    const size_t bytes = test_count(desc->ndim, desc->dims) * th_size(desc->dtype);
    cl_int err = CL_SUCCESS;
    clsoftmax_status st = CLSOFTMAX_OPENCL_ERROR;
    cl_context cl_ctx = clsoftmax_context_cl_context(ctx);
    cl_command_queue queue = clsoftmax_context_cl_queue(ctx);
    cl_mem bin =
        clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, (void*)in, &err);
    cl_mem bout = NULL;
    if (err == CL_SUCCESS)
        bout = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, out, &err);
    TEST_CHECK(err == CL_SUCCESS, "buffers of %zu bytes: error %d", bytes, (int)err);
    if (err == CL_SUCCESS) {
        cl_event done = NULL;
        st = clsoftmax_softmax_buffer(ctx, desc, bin, 0, bout, 0, NULL, 0, NULL, &done);
        if (done != NULL) {
            clWaitForEvents(1, &done);
            clReleaseEvent(done);
        }
        err = clEnqueueReadBuffer(queue, bout, CL_TRUE, 0, bytes, out, 0, NULL, NULL);
        TEST_CHECK(err == CL_SUCCESS, "reading back %zu bytes: error %d", bytes, (int)err);
    }
    if (bin != NULL)
        clReleaseMemObject(bin);
    if (bout != NULL)
        clReleaseMemObject(bout);
    return st;
}
