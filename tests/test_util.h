/* test_util.h - shared test helpers: long double reference, fills, comparisons, contexts. */
#ifndef CLSOFTMAX_TEST_UTIL_H
#define CLSOFTMAX_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "clsoftmax.h"

/* Accuracy the library promises (issue 2): float32 against a wide reference, float64 relative. */
#define TEST_RTOL_F32 1e-5
#define TEST_ATOL_F32 1e-6
#define TEST_RTOL_F64 1e-12
#define TEST_ATOL_F64 1e-15

/* 1 when clGetPlatformIDs/clGetDeviceIDs find at least one OpenCL device. */
int test_opencl_available(void);

/* ---- formatted assertions ------------------------------------------------ */

/*
 * CUnit's CU_FAIL only takes a literal; these format a message (CUnit copies
 * it) so a failure says which element, which status, which text went wrong.
 */
void test_check_impl(int ok, const char* file, unsigned line, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define TEST_CHECK(cond, ...) test_check_impl((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)
/* The same, reported at line: for a helper that checks on behalf of its caller's line. */
#define TEST_CHECK_AT(line, cond, ...)                                                             \
    test_check_impl((cond) ? 1 : 0, __FILE__, (line), __VA_ARGS__)

/* Asserts got == want for statuses, naming both on failure. */
void test_status_impl(clsoftmax_status got, clsoftmax_status want, const char* expr,
                      const char* file, unsigned line);
#define TEST_STATUS(expr, want) test_status_impl((expr), (want), #expr, __FILE__, __LINE__)

/* Case-insensitive substring search (for error messages). */
int test_contains(const char* haystack, const char* needle);

/* ---- tensors ------------------------------------------------------------- */

/* [outer, n, inner] of a dense shape for an axis already in range (negative counts from the end).
 */
void test_view(size_t ndim, const size_t* dims, int axis, size_t* outer, size_t* n, size_t* inner);
size_t test_count(size_t ndim, const size_t* dims);
size_t test_dtype_size(clsoftmax_dtype dtype);

/*
 * Fills count elements of dtype with deterministic pseudo-random values in
 * [lo, hi) from seed (the same seed gives the same data everywhere).
 */
void test_fill(void* data, clsoftmax_dtype dtype, size_t count, double lo, double hi,
               uint64_t seed);
/* Fills bytes with a recognisable pattern, to detect writes that should not happen. */
void test_fill_sentinel(void* data, size_t bytes);
/* Reads / writes element i of a float32 or float64 array as double. */
double test_get(const void* data, clsoftmax_dtype dtype, size_t i);
void test_set(void* data, clsoftmax_dtype dtype, size_t i, double v);

/*
 * The reference: softmax or log-softmax of in over desc's axis into ref
 * (desc->ndim, dims, axis, op and scale are used; axis may be negative).
 * For float32, t = (float)scale * x in float, exactly as the library does;
 * for float64 in double. Then max, exp and sum in long double.
 */
void test_reference(const clsoftmax_desc* desc, const void* in, long double* ref);

/*
 * Compares got (float32 or float64, count elements) with ref:
 * |got - ref| <= atol + rtol * |ref| for finite non-zero ref; NaN, +-inf and
 * exact zeros must sit exactly where ref has them (same sign for inf). Fails one assertion naming
 * the worst element (index, got, expected) and the number of bad elements.
 * Returns 1 when all match.
 */
int test_compare_impl(const void* got, clsoftmax_dtype dtype, const long double* ref, size_t count,
                      double rtol, double atol, const char* what, const char* file, unsigned line);
#define TEST_COMPARE(got, dtype, ref, count, rtol, atol, what)                                     \
    test_compare_impl((got), (dtype), (ref), (count), (rtol), (atol), (what), __FILE__, __LINE__)
/* The promised tolerances for dtype. */
#define TEST_COMPARE_DTYPE(got, dtype, ref, count, what)                                           \
    TEST_COMPARE((got), (dtype), (ref), (count),                                                   \
                 (dtype) == CLSOFTMAX_FLOAT32 ? TEST_RTOL_F32 : TEST_RTOL_F64,                     \
                 (dtype) == CLSOFTMAX_FLOAT32 ? TEST_ATOL_F32 : TEST_ATOL_F64, (what))

/* ---- contexts ------------------------------------------------------------ */

/*
 * A context on backend (CPU or OPENCL) that ignores the environment, or NULL
 * (printing clsoftmax_last_create_error to stderr for the test log).
 */
clsoftmax_context* test_context_create(clsoftmax_backend backend);

/*
 * One context per suite (PoCL compiles kernels on first use, so tests share it): CUnit init and
 * cleanup functions that create test_suite_ctx on a backend (0 on success) and free it. CUnit
 * runs one suite at a time, so the suites that use these share the one variable.
 */
extern clsoftmax_context* test_suite_ctx;
int test_suite_init_cpu(void);
int test_suite_init_opencl(void);
int test_suite_cleanup(void);
/* "cpu" or "opencl": test_suite_ctx's backend, for failure messages. */
const char* test_suite_backend_name(void);

#endif /* CLSOFTMAX_TEST_UTIL_H */
