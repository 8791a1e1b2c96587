/* softmax_strided.cl - softmax and log-softmax over a non-last axis (inner > 1), no transpose.
 *
 * Built after common.cl, which defines REAL and kahan_add(); the kernel arguments are those
 * documented in softmax_row.cl.
 *
 * Holds:
 *   group_max_dim1()/group_sum_dim1()  tree reductions over dimension 1 of a 2-D work-group
 *   softmax_strided                    the kernel
 *
 * Preprocessor parameters: none of its own (CLSOFTMAX_FP64 is read by common.cl).
 */
#ifndef CLSOFTMAX_COMMON_CL
#error "softmax_strided.cl is built after common.cl (REAL and kahan_add)"
#endif

/*
 * Reduce v across dimension 1 of the work-group, separately for each dimension-0 position.
 * Assumes get_local_size(1) is a power of two and red holds get_local_size(0) *
 * get_local_size(1) REALs. Every work-item must call them; each gets its column's result.
 */
REAL group_max_dim1(__local REAL* red, REAL v)
{
    const size_t lx = get_local_id(0);
    const size_t wx = get_local_size(0);
    const size_t ly = get_local_id(1);
    red[ly * wx + lx] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = get_local_size(1) / 2; s > 0; s >>= 1) {
        if (ly < s)
            red[ly * wx + lx] = fmax(red[ly * wx + lx], red[(ly + s) * wx + lx]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const REAL r = red[lx];
    /* everyone has read its result before the next reduction overwrites red */
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

REAL group_sum_dim1(__local REAL* red, REAL v)
{
    const size_t lx = get_local_id(0);
    const size_t wx = get_local_size(0);
    const size_t ly = get_local_id(1);
    red[ly * wx + lx] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = get_local_size(1) / 2; s > 0; s >>= 1) {
        if (ly < s)
            red[ly * wx + lx] = red[ly * wx + lx] + red[(ly + s) * wx + lx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const REAL r = red[lx];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/*
 * Assumes a 2-D work-group (LX, LK) of powers of two, one group along dimension 1, scratch of
 * LX * LK REALs. Dimension 0 walks columns (o, i) flattened as o * inner + i, grid-stride
 * over outer * inner, so neighbouring work-items read neighbouring addresses; dimension 1
 * splits the axis: work-item ly takes k = ly, ly + LK, ...
 * Trick: per column, partial max then Kahan partial sum of exp(t - m) over a work-item's k's,
 * each combined across dimension 1 by a tree in local memory; t = scale * x is recomputed
 * bit-identically in each of the three passes over global memory.
 */
__kernel void softmax_strided(__global const REAL* in, ulong in_off, __global REAL* out,
                              ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                              int log_op, __local REAL* scratch)
{
    const ulong lx = get_local_id(0);
    const ulong wx = get_local_size(0);
    const ulong ly = get_local_id(1);
    const ulong wk = get_local_size(1);
    const ulong cols = outer * inner;
    const ulong step = (ulong)get_num_groups(0) * wx;

    /* cbase is the same for the whole group, so every work-item meets every barrier. */
    for (ulong cbase = (ulong)get_group_id(0) * wx; cbase < cols; cbase += step) {
        const ulong col = cbase + lx;
        const int live = col < cols;
        ulong base = 0;
        if (live) {
            const ulong o = col / inner;
            const ulong i = col - o * inner;
            base = o * n * inner + i;
        }
        __global const REAL* x = in + in_off + base;
        __global REAL* y = out + out_off + base;

        REAL pmax = -INFINITY;
        if (live) {
            for (ulong k = ly; k < n; k += wk)
                pmax = fmax(pmax, scale * x[k * inner]);
        }
        const REAL m = group_max_dim1(scratch, pmax);

        REAL s = 0;
        REAL c = 0;
        if (live) {
            for (ulong k = ly; k < n; k += wk) {
                const REAL t = scale * x[k * inner];
                kahan_add(&s, &c, exp(t - m));
            }
        }
        const REAL sum = group_sum_dim1(scratch, s);

        /* The barriers above ordered every read of this column before any write to it. */
        if (live) {
            if (log_op) {
                const REAL lse = log(sum);
                for (ulong k = ly; k < n; k += wk) {
                    const REAL t = scale * x[k * inner];
                    y[k * inner] = (t - m) - lse;
                }
            } else {
                for (ulong k = ly; k < n; k += wk) {
                    const REAL t = scale * x[k * inner];
                    y[k * inner] = exp(t - m) / sum;
                }
            }
        }
    }
}
