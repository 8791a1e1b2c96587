/* ops_common.cl - the head and attention kernels' prelude: checks that common.cl comes first.
 *
 * The ops program for one dtype is common.cl + ops_common.cl + linear_softmax.cl + topk.cl +
 * attention_softmax.cl concatenated in that order (host/ops.c). common.cl supplies REAL (float,
 * or double under CLSOFTMAX_FP64), kahan_add() and the work-group reductions group_max_1d() /
 * group_sum_1d(): one definition serves the softmax and the ops programs. The later files
 * check for this file's guard.
 *
 * Preprocessor parameters: none of its own (CLSOFTMAX_FP64 is read by common.cl; the host
 * passes -DCLSOFTMAX_FP64=1 for float64).
 *
 * Never build with -cl-fast-relaxed-math: NaN rows and -inf masks rely on IEEE arithmetic.
 */
#ifndef CLSOFTMAX_OPS_COMMON_CL
#define CLSOFTMAX_OPS_COMMON_CL

#ifndef CLSOFTMAX_COMMON_CL
#error "ops_common.cl is built after common.cl"
#endif

/* t = scale * s (+ mask) is rounded before t - max, as on the CPU: no fma contraction (common.cl
   turns it off too; said again here, where the ops kernels start). */
#pragma OPENCL FP_CONTRACT OFF

#endif /* CLSOFTMAX_OPS_COMMON_CL */
