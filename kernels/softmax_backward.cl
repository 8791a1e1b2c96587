/* softmax_backward.cl - the gradient of softmax and log-softmax with respect to their input.
 *
 * Built after common.cl (REAL, STORE_T, LD/ST, kahan_add(), group_sum_1d()); host/backward.c
 * builds "common.cl" + this file once per dtype.
 *
 * Holds:
 *   softmax_backward_row      a work-group per contiguous row (inner == 1), the row's sum
 *                             reduced in local memory
 *   softmax_backward_item     a work-item per contiguous row (CPU devices, short rows)
 *   softmax_backward_strided  a work-item per column (o, i) of a non-last axis (inner > 1)
 *
 * With y the forward's output and dy the gradient with respect to y, per row:
 *   softmax      S = sum_k dy_k * y_k,  g_k = scale * (y_k * (dy_k - S))
 *   log-softmax  S = sum_k dy_k,        g_k = scale * (dy_k - exp(y_k) * S)
 *   dx_k = alpha * g_k + beta * dx_k    (beta == 0: dx is never read)
 * all in REAL (float for the 16-bit types, sums included), rounded once on store.
 *
 * Preprocessor parameters: only common.cl's (CLSOFTMAX_DTYPE, CLSOFTMAX_FP64); CLSOFTMAX_VW is
 * left at 1: every access is a scalar LD/ST, which GPUs coalesce across work-items and PoCL
 * vectorises across them.
 *
 * Arguments, the same for every kernel here (host/backward.c sets them in this order):
 *   y, y_off, dy, dy_off   the inputs and their offsets in elements
 *   dx, dx_off             the output; may be the same buffer and offset as y or dy (in place,
 *                          beta == 0), so nothing is restrict and each work-item reads an
 *                          element's y and dy before it writes that element's dx, and writes
 *                          only elements no other work-item reads afterwards
 *   outer, n, inner        the [outer, n, inner] view; element (o, k, i) at (o * n + k) * inner + i
 *   scale, alpha, beta     as above, in REAL
 *   log_op                 0: softmax, 1: log-softmax
 *   red                    softmax_backward_row only: local_size REALs of reduction scratch
 * Indices are ulong: a tensor may hold more than 2^32 elements.
 */
#ifndef CLSOFTMAX_COMMON_CL
#error "softmax_backward.cl is built after common.cl (REAL, STORE_T and the reductions)"
#endif

/* The summand of element k: dy * y (softmax) or dy (log-softmax). */
REAL bw_term(REAL yk, REAL dyk, int log_op)
{
    return log_op ? dyk : dyk * yk;
}

/* dx_k from y_k, dy_k and the row's sum, blended; old is read only when beta != 0. */
REAL bw_value(REAL yk, REAL dyk, REAL sum, REAL scale, REAL alpha, REAL beta, int log_op,
              __global const STORE_T* dx, ulong at)
{
    const REAL g = log_op ? scale * (dyk - exp(yk) * sum) : scale * (yk * (dyk - sum));
    REAL v = alpha * g;
    if (beta != (REAL)0)
        v = v + beta * LD(dx, at);
    return v;
}

/*
 * Assumes inner == 1, a power-of-two local size L, red of L REALs; rows looped with stride
 * get_num_groups(0).
 * Trick: each work-item sums its k = lid, lid + L, ... with Kahan's compensation, the partial
 * sums meet in a tree (error about (2 + log2 L) ulp of sum |term|, whatever n); the write pass
 * re-reads the row, which a group's previous pass has just brought into cache.
 */
__kernel void softmax_backward_row(__global const STORE_T* y, ulong y_off,
                                   __global const STORE_T* dy, ulong dy_off, __global STORE_T* dx,
                                   ulong dx_off, ulong outer, ulong n, ulong inner, REAL scale,
                                   REAL alpha, REAL beta, int log_op, __local REAL* red)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    (void)inner;
    for (ulong r = get_group_id(0); r < outer; r += get_num_groups(0)) {
        const ulong yb = y_off + r * n;
        const ulong db = dy_off + r * n;
        const ulong xb = dx_off + r * n;
        REAL s = 0;
        REAL c = 0;
        for (ulong k = lid; k < n; k += lsz)
            kahan_add(&s, &c, bw_term(LD(y, yb + k), LD(dy, db + k), log_op));
        /* group_sum_1d's barriers also order every read of the row before any write of it */
        const REAL sum = group_sum_1d(red, s);
        for (ulong k = lid; k < n; k += lsz) {
            const REAL v = bw_value(LD(y, yb + k), LD(dy, db + k), sum, scale, alpha, beta,
                                    log_op, dx, xb + k);
            ST(dx, xb + k, v);
        }
    }
}

/*
 * Assumes inner == 1; work-item g takes rows g, g + G, ... (G the global size), the same number
 * of rounds in every work-item so that PoCL can run a group's work-items as one vector loop.
 * Trick: none beyond Kahan's sum along the row; two reads of y and dy, one write of dx.
 */
__kernel void softmax_backward_item(__global const STORE_T* y, ulong y_off,
                                    __global const STORE_T* dy, ulong dy_off, __global STORE_T* dx,
                                    ulong dx_off, ulong outer, ulong n, ulong inner, REAL scale,
                                    REAL alpha, REAL beta, int log_op)
{
    const ulong gsz = get_global_size(0);
    const ulong rounds = (outer + gsz - 1) / gsz;
    (void)inner;
    for (ulong round = 0; round < rounds; ++round) {
        const ulong r = get_global_id(0) + round * gsz;
        if (r >= outer)
            continue;
        const ulong yb = y_off + r * n;
        const ulong db = dy_off + r * n;
        const ulong xb = dx_off + r * n;
        REAL s = 0;
        REAL c = 0;
        for (ulong k = 0; k < n; ++k)
            kahan_add(&s, &c, bw_term(LD(y, yb + k), LD(dy, db + k), log_op));
        for (ulong k = 0; k < n; ++k) {
            const REAL v =
                bw_value(LD(y, yb + k), LD(dy, db + k), s, scale, alpha, beta, log_op, dx, xb + k);
            ST(dx, xb + k, v);
        }
    }
}

/*
 * Assumes inner > 1; work-item g takes columns g, g + G, ... of the outer * inner columns,
 * column (o, i) flattened as o * inner + i, so neighbouring work-items touch neighbouring
 * addresses at every step k (coalesced on GPUs, contiguous vectors on PoCL).
 * Trick: no transpose and no barrier: each column's sum is one work-item's Kahan sum.
 */
__kernel void softmax_backward_strided(__global const STORE_T* y, ulong y_off,
                                       __global const STORE_T* dy, ulong dy_off,
                                       __global STORE_T* dx, ulong dx_off, ulong outer, ulong n,
                                       ulong inner, REAL scale, REAL alpha, REAL beta, int log_op)
{
    const ulong cols = outer * inner;
    const ulong gsz = get_global_size(0);
    const ulong rounds = (cols + gsz - 1) / gsz;
    for (ulong round = 0; round < rounds; ++round) {
        const ulong col = get_global_id(0) + round * gsz;
        if (col >= cols)
            continue;
        const ulong o = col / inner;
        const ulong base = o * n * inner + (col - o * inner);
        REAL s = 0;
        REAL c = 0;
        for (ulong k = 0; k < n; ++k)
            kahan_add(&s, &c, bw_term(LD(y, y_off + base + k * inner),
                                      LD(dy, dy_off + base + k * inner), log_op));
        for (ulong k = 0; k < n; ++k) {
            const ulong at = base + k * inner;
            const REAL v = bw_value(LD(y, y_off + at), LD(dy, dy_off + at), s, scale, alpha, beta,
                                    log_op, dx, dx_off + at);
            ST(dx, dx_off + at, v);
        }
    }
}
