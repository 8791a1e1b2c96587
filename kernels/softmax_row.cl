/* softmax_row.cl - softmax and log-softmax over contiguous rows (inner == 1).
 *
 * Built after common.cl, which defines REAL, kahan_add() and the 1-D group reductions.
 *
 * Holds:
 *   softmax_row_local      a work-group per row, the row staged in __local memory
 *   softmax_row_multipass  a work-group per row, three passes over global memory
 *
 * Preprocessor parameters: none of its own (CLSOFTMAX_FP64 is read by common.cl).
 *
 * Arguments, the same for every kernel of the library (host/launch.c sets them in this order):
 *   in, in_off        input buffer and offset in elements
 *   out, out_off      output buffer and offset in elements; may equal in, in_off (in place),
 *                     so no pointer is restrict and each work-item writes only elements it
 *                     alone has read
 *   outer, n, inner   the [outer, n, inner] view; element (o, k, i) at (o * n + k) * inner + i
 *   scale             t = scale * x, in REAL precision
 *   log_op            0: softmax exp(t - m) / sum, 1: log-softmax (t - m) - log(sum)
 *   scratch           dynamic __local memory sized by the host (see each kernel)
 * Indices are ulong throughout: a tensor may hold more than 2^32 elements.
 */
#ifndef CLSOFTMAX_COMMON_CL
#error "softmax_row.cl is built after common.cl (REAL and the reductions)"
#endif

/*
 * Assumes inner == 1, a power-of-two local size L, scratch of n + L REALs (row, then
 * reduction slots); rows are outer, looped with stride get_num_groups(0).
 * Trick: the row is read from global memory once into local memory as t = scale * x; max and
 * sum of exp(t - m) (Kahan per work-item, then a tree) run on the staged copy, which for
 * softmax is overwritten in place by exp(t - m) so the write pass needs no second exp.
 */
__kernel void softmax_row_local(__global const REAL* in, ulong in_off, __global REAL* out,
                                ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                int log_op, __local REAL* scratch)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    __local REAL* row = scratch;
    __local REAL* red = scratch + n;
    (void)inner;

    for (ulong r = get_group_id(0); r < outer; r += get_num_groups(0)) {
        __global const REAL* x = in + in_off + r * n;
        __global REAL* y = out + out_off + r * n;

        /* Each work-item touches only its own k's of row, so only the reductions need
           barriers. */
        REAL pmax = -INFINITY;
        for (ulong k = lid; k < n; k += lsz) {
            const REAL t = scale * x[k];
            row[k] = t;
            pmax = fmax(pmax, t);
        }
        const REAL m = group_max_1d(red, pmax);

        REAL s = 0;
        REAL c = 0;
        for (ulong k = lid; k < n; k += lsz) {
            const REAL e = exp(row[k] - m);
            if (!log_op)
                row[k] = e;
            kahan_add(&s, &c, e);
        }
        const REAL sum = group_sum_1d(red, s);

        if (log_op) {
            const REAL lse = log(sum);
            for (ulong k = lid; k < n; k += lsz)
                y[k] = (row[k] - m) - lse;
        } else {
            for (ulong k = lid; k < n; k += lsz)
                y[k] = row[k] / sum;
        }
    }
}

/*
 * Assumes inner == 1, a power-of-two local size L, scratch of L REALs; for rows too long for
 * local memory. Trick: three passes over global memory (max of t, Kahan sum of exp(t - m),
 * write), each recomputing t = scale * x bit-identically, reductions as a tree in local memory.
 */
__kernel void softmax_row_multipass(__global const REAL* in, ulong in_off, __global REAL* out,
                                    ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                    int log_op, __local REAL* scratch)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    (void)inner;

    for (ulong r = get_group_id(0); r < outer; r += get_num_groups(0)) {
        __global const REAL* x = in + in_off + r * n;
        __global REAL* y = out + out_off + r * n;

        REAL pmax = -INFINITY;
        for (ulong k = lid; k < n; k += lsz)
            pmax = fmax(pmax, scale * x[k]);
        const REAL m = group_max_1d(scratch, pmax);

        REAL s = 0;
        REAL c = 0;
        for (ulong k = lid; k < n; k += lsz) {
            const REAL t = scale * x[k];
            kahan_add(&s, &c, exp(t - m));
        }
        const REAL sum = group_sum_1d(scratch, s);

        /* In place, x[k] and y[k] are one element, read then written by this work-item. */
        if (log_op) {
            const REAL lse = log(sum);
            for (ulong k = lid; k < n; k += lsz) {
                const REAL t = scale * x[k];
                y[k] = (t - m) - lse;
            }
        } else {
            for (ulong k = lid; k < n; k += lsz) {
                const REAL t = scale * x[k];
                y[k] = exp(t - m) / sum;
            }
        }
    }
}
