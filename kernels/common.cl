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
 *   REALV, VLOAD/VSTORE/VSELECT  CLSOFTMAX_VW elements of REAL as one vector, loaded from any
 *                            element-aligned address (vloadn needs no vector alignment)
 *   hmax_v()/hsum_v()        horizontal max (NaN skipped) and pairwise sum of a REALV
 *   online_rescale()         one block step of the online (max, sum) recurrence
 *   ms_merge()               merges two (max, sum) pairs
 *
 * Preprocessor parameters:
 *   CLSOFTMAX_FP64  1: REAL is double (needs cl_khr_fp64); 0 (default): float.
 *                   The host passes a bare -DCLSOFTMAX_FP64, which defines it as 1.
 *   CLSOFTMAX_VW    elements per vector load: 1, 2, 4, 8 or 16 (default 1). Per device: 8
 *                   floats fill an AVX2 register on PoCL; GPUs coalesce scalar loads.
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

#ifndef CLSOFTMAX_VW
#define CLSOFTMAX_VW 1
#endif

#if CLSOFTMAX_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double REAL;
#define REAL_NAME double
#else
typedef float REAL;
#define REAL_NAME float
#endif

#define CLSOFTMAX_CAT_(a, b) a##b
#define CLSOFTMAX_CAT(a, b) CLSOFTMAX_CAT_(a, b)

#if CLSOFTMAX_VW == 1
typedef REAL REALV;
#define VLOAD(i, p) ((p)[i])
#define VSTORE(v, i, p) ((p)[i] = (v))
/* select() on a double needs a long mask; the scalar relations return int */
#define VSELECT(a, b, c) ((c) ? (b) : (a))
#elif CLSOFTMAX_VW == 2 || CLSOFTMAX_VW == 4 || CLSOFTMAX_VW == 8 || CLSOFTMAX_VW == 16
typedef CLSOFTMAX_CAT(REAL_NAME, CLSOFTMAX_VW) REALV;
#define VLOAD(i, p) CLSOFTMAX_CAT(vload, CLSOFTMAX_VW)((i), (p))
#define VSTORE(v, i, p) CLSOFTMAX_CAT(vstore, CLSOFTMAX_VW)((v), (i), (p))
#define VSELECT(a, b, c) select((a), (b), (c))
#else
#error "CLSOFTMAX_VW must be 1, 2, 4, 8 or 16"
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

/* Horizontal max of a vector: halves folded with fmax, so NaN lanes are skipped. */
REAL hmax_v(REALV v)
{
#if CLSOFTMAX_VW == 16
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = fmax(v.lo, v.hi);
#elif CLSOFTMAX_VW == 8
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = v;
#endif
#if CLSOFTMAX_VW >= 8
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = fmax(v8.lo, v8.hi);
#elif CLSOFTMAX_VW == 4
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = v;
#endif
#if CLSOFTMAX_VW >= 4
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = fmax(v4.lo, v4.hi);
#elif CLSOFTMAX_VW == 2
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = v;
#endif
#if CLSOFTMAX_VW >= 2
    return fmax(v2.x, v2.y);
#else
    return v;
#endif
}

/* Horizontal sum of a vector, pairwise: its rounding error grows with log2(VW), not VW. */
REAL hsum_v(REALV v)
{
#if CLSOFTMAX_VW == 16
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = v.lo + v.hi;
#elif CLSOFTMAX_VW == 8
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = v;
#endif
#if CLSOFTMAX_VW >= 8
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = v8.lo + v8.hi;
#elif CLSOFTMAX_VW == 4
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = v;
#endif
#if CLSOFTMAX_VW >= 4
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = v4.lo + v4.hi;
#elif CLSOFTMAX_VW == 2
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = v;
#endif
#if CLSOFTMAX_VW >= 2
    return v2.x + v2.y;
#else
    return v;
#endif
}

/*
 * The online (max, sum) recurrence (Milakov and Gimelshein 2018), blocked. For each block of
 * terms the caller takes the block's max bm, calls online_rescale() (which rescales the running
 * sum by exp(m - bm) only when bm raises m), sums the block's exp(t - ref) on its own and adds
 * that with kahan_add(). Each element costs one exp, a long row stays accurate (block sums of a
 * few hundred terms, compensated across blocks), and (max, sum) need one read of the input.
 * While m is still -inf (every t so far -inf or NaN) terms are taken against ref = 0:
 * exp(-inf) adds 0 and a NaN adds NaN. A row whose final m is -inf is all -inf (or NaN): the
 * caller then makes its sum NaN, as exp(-inf - -inf) does in the three-pass formula.
 * Returns ref.
 */
REAL online_rescale(REAL* m, REAL* s, REAL* c, REAL bm)
{
    if (bm > *m) {
        /* m = -inf gives a factor 0: nothing but NaN can have been summed against it. */
        const REAL f = exp(*m - bm);
        *s *= f;
        *c *= f;
        *m = bm;
    }
    return *m == -INFINITY ? (REAL)0 : *m;
}

/*
 * Merges two (max, sum) pairs: sums rescaled to the larger max. exp(-inf - M) = 0 drops an
 * empty or all -inf side (a NaN sum stays NaN, NaN * 0 being NaN); both maxima -inf keeps the
 * plain sum (0, or NaN when a NaN was seen).
 */
void ms_merge(REAL* m, REAL* s, REAL m2, REAL s2)
{
    const REAL mm = fmax(*m, m2);
    if (mm == -INFINITY) {
        *s = *s + s2;
    } else {
        *s = *s * exp(*m - mm) + s2 * exp(m2 - mm);
    }
    *m = mm;
}

#endif /* CLSOFTMAX_COMMON_CL */
