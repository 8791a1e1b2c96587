/* common.cl - the REAL type, compensated summation and work-group reductions for the kernels.
 *
 * The program for one dtype is built from common.cl, softmax_row.cl and softmax_strided.cl
 * concatenated in that order (host/program.c); the later files use what this one defines.
 *
 * Holds:
 *   REAL                     float, or double under CLSOFTMAX_FP64
 *   kahan_add()              one step of Kahan's compensated sum
 *   group_max_1d()/group_sum_1d()  tree reductions over dimension 0 of a work-group
 *
 * Preprocessor parameters:
 *   CLSOFTMAX_FP64  1: REAL is double (needs cl_khr_fp64); 0 (default): float.
 *                   The host passes a bare -DCLSOFTMAX_FP64, which defines it as 1.
 *
 * Helpers are plain functions, not `inline`: under C99 rules an inline definition with no
 * external one may leave an undefined symbol where the compiler declines to inline it.
 *
 * Never build with -cl-fast-relaxed-math or -cl-finite-math-only: the NaN/inf semantics of a
 * row (NaN in, NaN out everywhere) come from IEEE arithmetic.
 */
#ifndef CLSOFTMAX_COMMON_CL
#define CLSOFTMAX_COMMON_CL

/*
 * No contraction of a*b+c into fma: t = scale * x must be rounded before t - max, or a product
 * that overflows to inf would give fma(scale, x, -inf) = -inf instead of inf - inf = NaN, and
 * the results would drift from the CPU path's.
 */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLSOFTMAX_FP64
#define CLSOFTMAX_FP64 0
#endif

#if CLSOFTMAX_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double REAL;
#else
typedef float REAL;
#endif

/*
 * Kahan's compensated sum: *c carries the low-order bits that s + v lost, so a work-item's
 * sum of m terms is accurate to a few ulp instead of m ulp (a float32 row of 200000 elements
 * needs rtol 1e-5). Needs strict IEEE evaluation, which the build guarantees.
 */
void kahan_add(REAL* s, REAL* c, REAL v)
{
    REAL y = v - *c;
    REAL t = *s + y;
    *c = (t - *s) - y;
    *s = t;
}

/*
 * Tree reductions over dimension 0 of a 1-D work-group. Assumes get_local_size(0) is a power
 * of two and red holds that many REALs. Every work-item must call them (they hold barriers)
 * and all receive the result. fmax skips NaN; a NaN still reaches every output through the sum.
 */
REAL group_max_1d(__local REAL* red, REAL v)
{
    const size_t lid = get_local_id(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = get_local_size(0) / 2; s > 0; s >>= 1) {
        if (lid < s)
            red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const REAL r = red[0];
    /* everyone has read red[0] before the next reduction overwrites it */
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

REAL group_sum_1d(__local REAL* red, REAL v)
{
    const size_t lid = get_local_id(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = get_local_size(0) / 2; s > 0; s >>= 1) {
        if (lid < s)
            red[lid] = red[lid] + red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const REAL r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

#endif /* CLSOFTMAX_COMMON_CL */
