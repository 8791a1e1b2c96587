/* ops_common.cl - REAL, compensated sums and group reductions for the head and attention kernels.
 *
 * The ops program for one dtype is ops_common.cl + linear_softmax.cl + topk.cl +
 * attention_softmax.cl concatenated in that order (host/ops.c); the later files use what this
 * one defines. It is separate from common.cl so the softmax kernels can change on their own.
 *
 * Holds:
 *   REAL                        float, or double under OPS_FP64
 *   ops_kahan_add()             one step of Kahan's compensated sum
 *   ops_group_max()/ops_group_sum()  tree reductions over dimension 0 of a work-group
 *
 * Preprocessor parameters:
 *   OPS_FP64  1: REAL is double (needs cl_khr_fp64); 0 (default): float.
 *
 * Never build with -cl-fast-relaxed-math: NaN rows and -inf masks rely on IEEE arithmetic.
 */
#ifndef CLSOFTMAX_OPS_COMMON_CL
#define CLSOFTMAX_OPS_COMMON_CL

/* t = scale * s (+ mask) is rounded before t - max, as on the CPU: no fma contraction. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef OPS_FP64
#define OPS_FP64 0
#endif

#if OPS_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double REAL;
#else
typedef float REAL;
#endif

/* Kahan's compensated sum: rows of 50000 classes keep float32 sums to a few ulp. */
void ops_kahan_add(REAL* s, REAL* c, REAL v)
{
    REAL y = v - *c;
    REAL t = *s + y;
    *c = (t - *s) - y;
    *s = t;
}

/* Power-of-two local size, red of that many REALs, called by every work-item. fmax skips NaN. */
REAL ops_group_max(__local REAL* red, REAL v)
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
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

REAL ops_group_sum(__local REAL* red, REAL v)
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

#endif /* CLSOFTMAX_OPS_COMMON_CL */
