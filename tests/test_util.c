/* test_util.c - shared test helpers: long double reference, fills, comparisons, contexts. */
#include "test_util.h"

#include <CUnit/CUnit.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_opencl_available(void)
{
    /* Cached: the ICD loader's platform scan is slow enough to matter per suite. */
    static int known = -1;
    if (known >= 0)
        return known;
    known = 0;
    cl_uint num_platforms = 0;
    if (clGetPlatformIDs(0, NULL, &num_platforms) != CL_SUCCESS || num_platforms == 0)
        return known;
    cl_platform_id* platforms = calloc(num_platforms, sizeof *platforms);
    if (platforms == NULL)
        return known;
    if (clGetPlatformIDs(num_platforms, platforms, NULL) == CL_SUCCESS) {
        for (cl_uint i = 0; i < num_platforms && !known; ++i) {
            cl_uint num_devices = 0;
            if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, 0, NULL, &num_devices) ==
                    CL_SUCCESS &&
                num_devices > 0)
                known = 1;
        }
    }
    free(platforms);
    return known;
}

/* ---- formatted assertions ------------------------------------------------ */

void test_check_impl(int ok, const char* file, unsigned line, const char* fmt, ...)
{
    char msg[2048] = "";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    /* CUnit 2.1 copies the condition text into its failure record. */
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, ok ? "" : msg, file, "", CU_FALSE);
}

void test_status_impl(clsoftmax_status got, clsoftmax_status want, const char* expr,
                      const char* file, unsigned line)
{
    test_check_impl(got == want, file, line, "%s returned %s (%d), expected %s (%d)", expr,
                    clsoftmax_status_name(got), (int)got, clsoftmax_status_name(want), (int)want);
}

int test_contains(const char* haystack, const char* needle)
{
    if (haystack == NULL || needle == NULL)
        return 0;
    size_t hn = strlen(haystack);
    size_t nn = strlen(needle);
    if (nn == 0)
        return 1;
    for (size_t i = 0; i + nn <= hn; ++i) {
        size_t k = 0;
        while (k < nn &&
               tolower((unsigned char)haystack[i + k]) == tolower((unsigned char)needle[k]))
            ++k;
        if (k == nn)
            return 1;
    }
    return 0;
}

/* ---- tensors ------------------------------------------------------------- */

void test_view(size_t ndim, const size_t* dims, int axis, size_t* outer, size_t* n, size_t* inner)
{
    size_t a = axis < 0 ? (size_t)((long)ndim + axis) : (size_t)axis;
    *outer = 1;
    *inner = 1;
    for (size_t d = 0; d < a; ++d)
        *outer *= dims[d];
    for (size_t d = a + 1; d < ndim; ++d)
        *inner *= dims[d];
    *n = dims[a];
}

size_t test_count(size_t ndim, const size_t* dims)
{
    size_t count = 1;
    for (size_t d = 0; d < ndim; ++d)
        count *= dims[d];
    return count;
}

size_t test_dtype_size(clsoftmax_dtype dtype)
{
    return dtype == CLSOFTMAX_FLOAT64 ? sizeof(double) : sizeof(float);
}

/* splitmix64: tiny, good enough, and identical on every platform. */
static uint64_t next_random(uint64_t* state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void test_fill(void* data, clsoftmax_dtype dtype, size_t count, double lo, double hi, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < count; ++i) {
        double u = (double)(next_random(&state) >> 11) * 0x1.0p-53;
        test_set(data, dtype, i, lo + (hi - lo) * u);
    }
}

void test_fill_sentinel(void* data, size_t bytes)
{
    unsigned char* p = data;
    for (size_t i = 0; i < bytes; ++i)
        p[i] = (unsigned char)(0xA5 ^ (i * 7));
}

double test_get(const void* data, clsoftmax_dtype dtype, size_t i)
{
    if (dtype == CLSOFTMAX_FLOAT64)
        return ((const double*)data)[i];
    return ((const float*)data)[i];
}

void test_set(void* data, clsoftmax_dtype dtype, size_t i, double v)
{
    if (dtype == CLSOFTMAX_FLOAT64)
        ((double*)data)[i] = v;
    else
        ((float*)data)[i] = (float)v;
}

void test_reference(const clsoftmax_desc* desc, const void* in, long double* ref)
{
    size_t outer, n, inner;
    test_view(desc->ndim, desc->dims, desc->axis, &outer, &n, &inner);
    /* The library scales in the input's precision; mirror it so scale errors are not ours. */
    const float scale_f = (float)desc->scale;
    for (size_t o = 0; o < outer; ++o) {
        for (size_t i = 0; i < inner; ++i) {
            const size_t base = o * n * inner + i;
            long double m = -INFINITY;
            for (size_t k = 0; k < n; ++k) {
                size_t idx = base + k * inner;
                long double t;
                if (desc->dtype == CLSOFTMAX_FLOAT64) {
                    double td = desc->scale * ((const double*)in)[idx];
                    t = td;
                } else {
                    float tf = scale_f * ((const float*)in)[idx];
                    t = tf;
                }
                ref[idx] = t;
                m = fmaxl(m, t); /* skips NaN, as the library's fmax does */
            }
            /*
             * sum = 1 + u, u over every element but the first that attains the max, so that
             * log(sum) = log1p(u) keeps the digits of a tiny u (a dominant element) that
             * 1 + u would round away. A row with no element at the max (NaN, +inf, all
             * -inf) keeps the plain sum, NaN.
             */
            long double u = 0.0L;
            int found = 0;
            for (size_t k = 0; k < n; ++k) {
                long double d = ref[base + k * inner] - m;
                if (!found && d == 0.0L)
                    found = 1;
                else
                    u += expl(d);
            }
            const long double sum = found ? 1.0L + u : u;
            const long double log_sum = found ? log1pl(u) : logl(u);
            for (size_t k = 0; k < n; ++k) {
                size_t idx = base + k * inner;
                long double d = ref[idx] - m;
                ref[idx] = desc->op == CLSOFTMAX_OP_LOG_SOFTMAX ? d - log_sum : expl(d) / sum;
            }
        }
    }
}

int test_compare_impl(const void* got, clsoftmax_dtype dtype, const long double* ref, size_t count,
                      double rtol, double atol, const char* what, const char* file, unsigned line)
{
    size_t bad = 0;
    size_t worst = 0;
    long double worst_ratio = -1.0L;
    for (size_t i = 0; i < count; ++i) {
        long double g = test_get(got, dtype, i);
        long double e = ref[i];
        long double ratio;
        if (isnan(e) || isnan(g) || isinf(e) || isinf(g)) {
            /* Special values must sit exactly where the reference has them. */
            int same = (isnan(e) && isnan(g)) || (isinf(e) && isinf(g) && signbit(e) == signbit(g));
            ratio = same ? 0.0L : INFINITY;
        } else if (e == 0.0L) {
            /*
             * An exact zero in long double comes from exp(-inf) or an underflow far below
             * float64's range, and log-softmax's 0 from a row with one live element: the
             * dtype gets exactly 0 there too, so no tolerance applies.
             */
            ratio = g == 0.0L ? 0.0L : INFINITY;
        } else {
            ratio = fabsl(g - e) / ((long double)atol + (long double)rtol * fabsl(e));
        }
        if (ratio > 1.0L)
            ++bad;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    if (count == 0)
        return 1;
    test_check_impl(bad == 0, file, line,
                    "%s: %zu of %zu elements off (rtol %g, atol %g); worst [%zu] got %.17g "
                    "expected %.20Lg",
                    what, bad, count, rtol, atol, worst, test_get(got, dtype, worst), ref[worst]);
    return bad == 0;
}

/* ---- contexts ------------------------------------------------------------ */

clsoftmax_context* test_context_create(clsoftmax_backend backend)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = backend;
    config.use_environment = 0;
    clsoftmax_context* ctx = NULL;
    clsoftmax_status st = clsoftmax_context_create(&config, &ctx);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "test_context_create(%d): %s: %s\n", (int)backend,
                clsoftmax_status_name(st), clsoftmax_last_create_error());
        return NULL;
    }
    return ctx;
}

clsoftmax_context* test_suite_ctx;

int test_suite_init_cpu(void)
{
    test_suite_ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    return test_suite_ctx == NULL;
}

int test_suite_init_opencl(void)
{
    test_suite_ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    return test_suite_ctx == NULL;
}

int test_suite_cleanup(void)
{
    clsoftmax_context_free(test_suite_ctx);
    test_suite_ctx = NULL;
    return 0;
}

const char* test_suite_backend_name(void)
{
    return clsoftmax_context_backend(test_suite_ctx) == CLSOFTMAX_BACKEND_CPU ? "cpu" : "opencl";
}
