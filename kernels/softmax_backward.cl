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
 *   softmax_backward_strided_vec  a work-item per CLSOFTMAX_BW_VECS vectors of neighbouring
 *                             columns of a non-last axis (CPU devices)
 *
 * With y the forward's output and dy the gradient with respect to y, per row:
 *   softmax      S = sum_k dy_k * y_k,  g_k = scale * (y_k * (dy_k - S))
 *   log-softmax  S = sum_k dy_k,        g_k = scale * (dy_k - exp(y_k) * S)
 *   dx_k = alpha * g_k + beta * dx_k    (beta == 0: dx is never read)
 * all in REAL (float for the 16-bit types, sums included), rounded once on store.
 *
 * Preprocessor parameters (CLSOFTMAX_DTYPE, CLSOFTMAX_FP64 and CLSOFTMAX_VW are common.cl's):
 *   CLSOFTMAX_VW          elements per vector in the row kernels (default 1): the host takes 8
 *                         (float64: 4) on CPU devices, where a work-item's own vectors are the
 *                         SIMD, and 1 on GPUs, which coalesce scalar loads across work-items
 *   CLSOFTMAX_BW_VECS     vectors of neighbouring columns per work-item of
 *                         softmax_backward_strided_vec (default 16: 16 x 8 floats = 512
 *                         contiguous bytes per axis step, which a CPU's prefetcher follows, as
 *                         softmax_strided_item found for the forward)
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
 *   softmax_backward_row only, two more:
 *   contig                 1: each work-item takes a contiguous share of the row, in vectors
 *                          (CPU devices run a group's work-items one after another, and a stride
 *                          of L elements made each of them stream the whole row); 0: scalars
 *                          k = lid, lid + L, ... (coalesced on GPUs)
 *   red                    local_size REALs of reduction scratch
 * Indices are ulong: a tensor may hold more than 2^32 elements.
 */
#ifndef CLSOFTMAX_COMMON_CL
#error "softmax_backward.cl is built after common.cl (REAL, STORE_T and the reductions)"
#endif

#ifndef CLSOFTMAX_BW_VECS
#define CLSOFTMAX_BW_VECS 16
#endif

/* Kahan's step on vectors, lane by lane (see kahan_add() in common.cl). */
void kahan_add_v(REALV* s, REALV* c, REALV v)
{
    const REALV yv = v - *c;
    const REALV t = *s + yv;
    *c = (t - *s) - yv;
    *s = t;
}

/*
 * Adds the terms (dy * y, or dy for log-softmax) of vectors j0 <= j < j1 of a row (elements
 * j * VW ...) to the compensated sum (*s, *c): lanes summed apart, then folded in one by one.
 */
void bw_sum_vectors(__global const STORE_T* y, __global const STORE_T* dy, ulong j0, ulong j1,
                    int log_op, REAL* s, REAL* c)
{
    REALV sv = (REALV)0;
    REALV cv = (REALV)0;
    if (log_op) {
        for (ulong j = j0; j < j1; ++j)
            kahan_add_v(&sv, &cv, VLOAD(j, dy));
    } else {
        for (ulong j = j0; j < j1; ++j)
            kahan_add_v(&sv, &cv, VLOAD(j, dy) * VLOAD(j, y));
    }
    const REAL* ls = (const REAL*)&sv;
    const REAL* lc = (const REAL*)&cv;
    for (int l = 0; l < CLSOFTMAX_VW; ++l) {
        kahan_add(s, c, ls[l]);
        kahan_add(s, c, -lc[l]);
    }
}

/* The same for elements k0, k0 + step, ... < k1. */
void bw_sum_scalars(__global const STORE_T* y, __global const STORE_T* dy, ulong k0, ulong k1,
                    ulong step, int log_op, REAL* s, REAL* c)
{
    for (ulong k = k0; k < k1; k += step)
        kahan_add(s, c, log_op ? LD(dy, k) : LD(dy, k) * LD(y, k));
}

/*
 * The write pass over vectors j0 <= j < j1: g = scale * (y * (dy - S)) or
 * scale * (dy - exp(y) * S), dx = alpha * g (+ beta * dx, read only when beta != 0).
 */
void bw_write_vectors(__global const STORE_T* y, __global const STORE_T* dy, __global STORE_T* dx,
                      ulong j0, ulong j1, REAL sum, REAL scale, REAL alpha, REAL beta, int log_op)
{
    for (ulong j = j0; j < j1; ++j) {
        const REALV yv = VLOAD(j, y);
        const REALV dyv = VLOAD(j, dy);
        const REALV g = log_op ? scale * (dyv - exp(yv) * sum) : scale * (yv * (dyv - sum));
        REALV v = alpha * g;
        if (beta != (REAL)0)
            v = v + beta * VLOAD(j, dx);
        VSTORE(v, j, dx);
    }
}

void bw_write_scalars(__global const STORE_T* y, __global const STORE_T* dy, __global STORE_T* dx,
                      ulong k0, ulong k1, ulong step, REAL sum, REAL scale, REAL alpha, REAL beta,
                      int log_op)
{
    for (ulong k = k0; k < k1; k += step) {
        const REAL yk = LD(y, k);
        const REAL dyk = LD(dy, k);
        const REAL g = log_op ? scale * (dyk - exp(yk) * sum) : scale * (yk * (dyk - sum));
        REAL v = alpha * g;
        if (beta != (REAL)0)
            v = v + beta * LD(dx, k);
        ST(dx, k, v);
    }
}

/*
 * Assumes inner == 1, a power-of-two local size L, red of L REALs; rows looped with stride
 * get_num_groups(0).
 * Trick: each work-item sums its share of the row with Kahan's compensation (per lane), the
 * partial sums meet in a tree (error about (2 + log2 L) ulp of sum |term|, whatever n); the
 * write pass re-reads the share, which the sum pass has just brought into cache.
 */
__kernel void softmax_backward_row(__global const STORE_T* y, ulong y_off,
                                   __global const STORE_T* dy, ulong dy_off, __global STORE_T* dx,
                                   ulong dx_off, ulong outer, ulong n, ulong inner, REAL scale,
                                   REAL alpha, REAL beta, int log_op, int contig, __local REAL* red)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    (void)inner;
    /* contig: vectors [j0, j1) of the row; the scalar tail [t0, n) past the last whole vector
       goes to the last work-item. Otherwise scalars from lid with stride lsz. */
    const ulong nv = contig ? n / CLSOFTMAX_VW : 0;
    const ulong j0 = lid * nv / lsz;
    const ulong j1 = (lid + 1) * nv / lsz;
    const ulong t0 = !contig ? lid : (lid + 1 == lsz ? nv * CLSOFTMAX_VW : n);
    const ulong step = contig ? 1 : lsz;
    for (ulong r = get_group_id(0); r < outer; r += get_num_groups(0)) {
        __global const STORE_T* yr = y + y_off + r * n;
        __global const STORE_T* dyr = dy + dy_off + r * n;
        __global STORE_T* dxr = dx + dx_off + r * n;
        REAL s = 0;
        REAL c = 0;
        bw_sum_vectors(yr, dyr, j0, j1, log_op, &s, &c);
        bw_sum_scalars(yr, dyr, t0, n, step, log_op, &s, &c);
        /* group_sum_1d's barriers also order every read of the row before any write of it */
        const REAL sum = group_sum_1d(red, s - c);
        bw_write_vectors(yr, dyr, dxr, j0, j1, sum, scale, alpha, beta, log_op);
        bw_write_scalars(yr, dyr, dxr, t0, n, step, sum, scale, alpha, beta, log_op);
    }
}

/*
 * Assumes inner == 1; work-item g takes rows g, g + G, ... (G the global size), the same number
 * of rounds in every work-item so that PoCL can run a group's work-items as one loop.
 * Trick: the row in vectors of VW (lanes summed apart with Kahan, then folded), then its
 * scalar tail; two reads of y and dy, one write of dx.
 */
__kernel void softmax_backward_item(__global const STORE_T* y, ulong y_off,
                                    __global const STORE_T* dy, ulong dy_off, __global STORE_T* dx,
                                    ulong dx_off, ulong outer, ulong n, ulong inner, REAL scale,
                                    REAL alpha, REAL beta, int log_op)
{
    const ulong gsz = get_global_size(0);
    const ulong rounds = (outer + gsz - 1) / gsz;
    const ulong nv = n / CLSOFTMAX_VW;
    (void)inner;
    for (ulong round = 0; round < rounds; ++round) {
        const ulong r = get_global_id(0) + round * gsz;
        if (r >= outer)
            continue;
        __global const STORE_T* yr = y + y_off + r * n;
        __global const STORE_T* dyr = dy + dy_off + r * n;
        __global STORE_T* dxr = dx + dx_off + r * n;
        REAL s = 0;
        REAL c = 0;
        bw_sum_vectors(yr, dyr, 0, nv, log_op, &s, &c);
        bw_sum_scalars(yr, dyr, nv * CLSOFTMAX_VW, n, 1, log_op, &s, &c);
        const REAL sum = s - c;
        bw_write_vectors(yr, dyr, dxr, 0, nv, sum, scale, alpha, beta, log_op);
        bw_write_scalars(yr, dyr, dxr, nv * CLSOFTMAX_VW, n, 1, sum, scale, alpha, beta, log_op);
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
        __global const STORE_T* yc = y + y_off + base;
        __global const STORE_T* dyc = dy + dy_off + base;
        __global STORE_T* dxc = dx + dx_off + base;
        REAL s = 0;
        REAL c = 0;
        bw_sum_scalars(yc, dyc, 0, n * inner, inner, log_op, &s, &c);
        bw_write_scalars(yc, dyc, dxc, 0, n * inner, inner, s - c, scale, alpha, beta, log_op);
    }
}

/*
 * Assumes inner > 1; a unit is CLSOFTMAX_BW_VECS vectors of neighbouring columns of one outer
 * slice (fewer at the slice's end), and the slice's last unit also takes the columns past its
 * last whole vector (inner % VW of them) as scalars; work-item g takes units g, g + G, ...
 * Trick: on a CPU device a work-group's work-items run one after another, so each work-item
 * walks the axis over a wide contiguous strip itself (one column per work-item made every load
 * a cache miss); each lane of each vector is its column's Kahan sum.
 */
__kernel void softmax_backward_strided_vec(__global const STORE_T* y, ulong y_off,
                                           __global const STORE_T* dy, ulong dy_off,
                                           __global STORE_T* dx, ulong dx_off, ulong outer, ulong n,
                                           ulong inner, REAL scale, REAL alpha, REAL beta,
                                           int log_op)
{
    const ulong vpr = inner / CLSOFTMAX_VW; /* whole vectors per slice row */
    /* units per slice; a slice narrower than one vector still has one, for its scalars */
    const ulong upr = max((vpr + CLSOFTMAX_BW_VECS - 1) / CLSOFTMAX_BW_VECS, (ulong)1);
    const ulong units = outer * upr;
    const ulong gsz = get_global_size(0);
    const ulong rounds = (units + gsz - 1) / gsz;
    for (ulong round = 0; round < rounds; ++round) {
        const ulong u = get_global_id(0) + round * gsz;
        if (u >= units)
            continue;
        const ulong o = u / upr;
        const ulong v0 = (u - o * upr) * CLSOFTMAX_BW_VECS;
        const ulong nvec = min((ulong)CLSOFTMAX_BW_VECS, vpr - v0);
        const ulong ntail = u - o * upr == upr - 1 ? inner - vpr * CLSOFTMAX_VW : 0;
        const ulong tail = nvec * CLSOFTMAX_VW; /* the tail's first column, from base */
        const ulong base = o * n * inner + v0 * CLSOFTMAX_VW;
        REALV s[CLSOFTMAX_BW_VECS];
        REALV c[CLSOFTMAX_BW_VECS];
        REAL ts[CLSOFTMAX_VW];
        REAL tc[CLSOFTMAX_VW];
        for (int q = 0; q < CLSOFTMAX_BW_VECS; ++q)
            s[q] = c[q] = (REALV)0;
        for (int t = 0; t < CLSOFTMAX_VW; ++t)
            ts[t] = tc[t] = 0;
        for (ulong k = 0; k < n; ++k) {
            __global const STORE_T* yk = y + y_off + base + k * inner;
            __global const STORE_T* dyk = dy + dy_off + base + k * inner;
            for (int q = 0; q < CLSOFTMAX_BW_VECS; ++q)
                if ((ulong)q < nvec)
                    kahan_add_v(&s[q], &c[q],
                                log_op ? VLOAD(q, dyk) : VLOAD(q, dyk) * VLOAD(q, yk));
            for (int t = 0; t < CLSOFTMAX_VW; ++t)
                if ((ulong)t < ntail)
                    kahan_add(&ts[t], &tc[t],
                              log_op ? LD(dyk, tail + t) : LD(dyk, tail + t) * LD(yk, tail + t));
        }
        for (int q = 0; q < CLSOFTMAX_BW_VECS; ++q)
            s[q] = s[q] - c[q];
        for (int t = 0; t < CLSOFTMAX_VW; ++t)
            ts[t] = ts[t] - tc[t];
        for (ulong k = 0; k < n; ++k) {
            __global const STORE_T* yk = y + y_off + base + k * inner;
            __global const STORE_T* dyk = dy + dy_off + base + k * inner;
            __global STORE_T* dxk = dx + dx_off + base + k * inner;
            for (int q = 0; q < CLSOFTMAX_BW_VECS; ++q) {
                if ((ulong)q >= nvec)
                    continue;
                const REALV yv = VLOAD(q, yk);
                const REALV dyv = VLOAD(q, dyk);
                const REALV g =
                    log_op ? scale * (dyv - exp(yv) * s[q]) : scale * (yv * (dyv - s[q]));
                REALV v = alpha * g;
                if (beta != (REAL)0)
                    v = v + beta * VLOAD(q, dxk);
                VSTORE(v, q, dxk);
            }
            for (int t = 0; t < CLSOFTMAX_VW; ++t)
                if ((ulong)t < ntail)
                    bw_write_scalars(yk, dyk, dxk, tail + t, tail + t + 1, 1, ts[t], scale, alpha,
                                     beta, log_op);
        }
    }
}
