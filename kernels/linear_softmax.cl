/* linear_softmax.cl - the classifier head's softmax: bias, scale and softmax in one kernel.
 *
 * Built after common.cl (REAL, kahan_add, group_max_1d/group_sum_1d) and ops_common.cl.
 *
 * Holds:
 *   linear_softmax_rows  y = softmax(scale * (l + b)) over each row of the logits l, in place
 *
 * Preprocessor parameters: none of its own (CLSOFTMAX_FP64 is read by common.cl).
 */
#ifndef CLSOFTMAX_OPS_COMMON_CL
#error "linear_softmax.cl is built after ops_common.cl"
#endif

/* t of class k: the bias is added to the rounded logit, then scaled (the CPU path's order). */
REAL head_t(__global const REAL* l, __global const REAL* bias, int has_bias, REAL scale, ulong k)
{
    return has_bias ? scale * (l[k] + bias[k]) : scale * l[k];
}

/*
 * Assumes one work-group per row (rows looped by get_num_groups(0)), a power-of-two local size
 * L; scratch of L REALs, or classes + L when staged (t kept in __local memory); y holds the
 * logits [rows, classes] written by the GEMM just before.
 * Trick: the bias add is part of the first read. Staged, the row is read once and written
 * once, the traffic of a plain softmax; unstaged (rows too long for local memory) it is read
 * three times (max; Kahan sum of exp(t - m); write), as the plain multipass softmax does.
 */
__kernel void linear_softmax_rows(__global REAL* y, ulong y_off, ulong rows, ulong classes,
                                  __global const REAL* bias, ulong bias_off, int has_bias,
                                  REAL scale, int log_op, int staged, __local REAL* scratch)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    __local REAL* red = scratch;
    __local REAL* trow = scratch + lsz;
    __global const REAL* b = bias + bias_off;
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        __global REAL* row = y + y_off + r * classes;
        REAL pmax = -INFINITY;
        for (ulong k = lid; k < classes; k += lsz) {
            const REAL t = head_t(row, b, has_bias, scale, k);
            if (staged)
                trow[k] = t;
            pmax = fmax(pmax, t);
        }
        const REAL m = group_max_1d(red, pmax);
        /* each work-item touches only its own k's of trow, so only the reductions need
           barriers */
        REAL s = 0;
        REAL c = 0;
        for (ulong k = lid; k < classes; k += lsz) {
            const REAL e = exp((staged ? trow[k] : head_t(row, b, has_bias, scale, k)) - m);
            if (staged && !log_op)
                trow[k] = e;
            kahan_add(&s, &c, e);
        }
        const REAL sum = group_sum_1d(red, s);
        if (log_op) {
            const REAL lse = log(sum);
            for (ulong k = lid; k < classes; k += lsz)
                row[k] = ((staged ? trow[k] : head_t(row, b, has_bias, scale, k)) - m) - lse;
        } else {
            for (ulong k = lid; k < classes; k += lsz)
                row[k] = (staged ? trow[k] : exp(head_t(row, b, has_bias, scale, k) - m)) / sum;
        }
        /* trow is reused by the next row */
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
