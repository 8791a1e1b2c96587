/* test_half_util.h - helpers of the float16/bfloat16 and non-finite policy suites. */
#ifndef CLSOFTMAX_TEST_HALF_UTIL_H
#define CLSOFTMAX_TEST_HALF_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "clsoftmax.h"

/* Element i of an array of any dtype as a double (16-bit ones widened exactly). */
double th_get(clsoftmax_dtype dtype, const void* data, size_t i);
/* Stores v (rounded to nearest even, once for float32/float64, through float for 16-bit). */
void th_set(clsoftmax_dtype dtype, void* data, size_t i, double v);
/* Bytes per element. */
size_t th_size(clsoftmax_dtype dtype);

/*
 * The reference of desc (dims, axis, op, scale; any dtype) on in: t = scale * x in the compute
 * precision (float for float32 and the 16-bit types, as the library does), then max, exp, sum
 * and the result in long double. A bad row comes out NaN throughout. Blending and policies are
 * the caller's.
 */
void th_reference(const clsoftmax_desc* desc, const void* in, long double* ref);

/*
 * How far the 16-bit got is from ref rounded to dtype, in ulps of dtype (the distance between
 * ordered bit patterns; +0 and -0 are one value). NaN must meet NaN and an infinity (after
 * rounding: beyond the largest finite value is one) the same infinity, else INT32_MAX.
 */
int32_t th_ulps16(clsoftmax_dtype dtype, uint16_t got, long double ref);
/* The 16-bit pattern nearest ref. */
uint16_t th_round16(clsoftmax_dtype dtype, long double ref);

/*
 * clsoftmax_softmax_buffer on host copies: in and the current out are written to two new
 * buffers, the call waits, then out's buffer is read back into out whatever the status (so a
 * test sees what the device buffer holds). Returns the call's status; OPENCL_ERROR (with a
 * failed assertion) when the buffers themselves fail.
 */
clsoftmax_status th_run_buffer(clsoftmax_context* ctx, const clsoftmax_desc* desc, const void* in,
                               void* out);

#endif
