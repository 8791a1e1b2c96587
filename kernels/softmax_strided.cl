/* softmax_strided.cl - softmax and log-softmax over a non-last axis (inner > 1), no transpose.
 *
 * Built after common.cl, which defines REAL and kahan_add(), and softmax_row.cl, whose write
 * step (write_mode, put_1(), blend_v()) these kernels share; the kernel arguments are those
 * documented in softmax_row.cl.
 *
 * Holds:
 *   group_ms_merge_dim1()              merges (max, sum) pairs over dimension 1 of a group
 *   softmax_strided                    work-items on columns, the axis split across a group
 *   softmax_strided_item               a work-item per VW neighbouring columns, no barrier
 *
 * Preprocessor parameters: CLSOFTMAX_BLOCK (default 16): axis steps per block of the online
 * recurrence; CLSOFTMAX_STRIDED_VECS (default 16): vectors of neighbouring columns per
 * work-item of softmax_strided_item when inner is a multiple of that many. CLSOFTMAX_FP64 and
 * CLSOFTMAX_VW are read by common.cl.
 */
#ifndef CLSOFTMAX_COMMON_CL
#error "softmax_strided.cl is built after common.cl (REAL and kahan_add)"
#endif

#ifndef CLSOFTMAX_BLOCK
#define CLSOFTMAX_BLOCK 16
#endif

/*
 * Merges (m, s) pairs across dimension 1 of the work-group, separately for each dimension-0
 * position (see ms_merge() in common.cl). red holds 2 * LX * LK REALs; every work-item calls it
 * and gets its column's pair.
 */
void group_ms_merge_dim1(__local REAL* red, REAL* m, REAL* s)
{
    const size_t lx = get_local_id(0);
    const size_t wx = get_local_size(0);
    const size_t ly = get_local_id(1);
    const size_t pairs = wx * get_local_size(1);
    red[ly * wx + lx] = *m;
    red[pairs + ly * wx + lx] = *s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t st = get_local_size(1) / 2; st > 0; st >>= 1) {
        if (ly < st) {
            REAL mm = red[ly * wx + lx];
            REAL ss = red[pairs + ly * wx + lx];
            ms_merge(&mm, &ss, red[(ly + st) * wx + lx], red[pairs + (ly + st) * wx + lx]);
            red[ly * wx + lx] = mm;
            red[pairs + ly * wx + lx] = ss;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *m = red[lx];
    *s = red[pairs + lx];
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* Sums v across dimension 1 of the work-group per dimension-0 position; red holds LX * LK REALs. */
REAL group_sum_dim1(__local REAL* red, REAL v)
{
    const size_t lx = get_local_id(0);
    const size_t wx = get_local_size(0);
    const size_t ly = get_local_id(1);
    red[ly * wx + lx] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t st = get_local_size(1) / 2; st > 0; st >>= 1) {
        if (ly < st)
            red[ly * wx + lx] = red[ly * wx + lx] + red[(ly + st) * wx + lx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const REAL r = red[lx];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/*
 * Assumes a 2-D work-group (LX, LK) of powers of two, one group along dimension 1, scratch of
 * 2 * LX * LK REALs. Dimension 0 walks columns (o, i) flattened as o * inner + i, grid-stride
 * over outer * inner, so neighbouring work-items read neighbouring addresses; dimension 1
 * splits the axis: work-item ly takes k = ly, ly + LK, ...
 * Trick: two passes over global memory, not three: per column, each work-item runs the online
 * (max, sum) recurrence over its k's in blocks of CLSOFTMAX_BLOCK, the pairs merge across
 * dimension 1 as a tree in local memory, then the write pass.
 */
__kernel void softmax_strided(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                              ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                              int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                              int zero_bad)
{
    const write_mode wm = write_mode_make(alpha, beta, zero_bad);
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
        __global const STORE_T* x = in + in_off + base;
        __global STORE_T* y = out + out_off + base;

        REAL m = -INFINITY;
        REAL s = 0;
        REAL c = 0;
        if (live) {
            const ulong span = wk * CLSOFTMAX_BLOCK;
            for (ulong kb = ly; kb < n; kb += span) {
                const ulong ke = min(n, kb + span);
                REAL bm = -INFINITY;
                for (ulong k = kb; k < ke; k += wk)
                    bm = fmax(bm, scale * LD(x, k * inner));
                const REAL ref = online_rescale(&m, &s, &c, bm);
                REAL bs = 0;
                for (ulong k = kb; k < ke; k += wk)
                    bs += exp(scale * LD(x, k * inner) - ref);
                kahan_add(&s, &c, bs);
            }
        }
        s -= c;
        group_ms_merge_dim1(scratch, &m, &s);
        const REAL sum = m == -INFINITY ? (REAL)NAN : s;
        const int zero = zero_row(wm, sum);
        /* u (LSE_REFINE in softmax_row.cl) for every column of the group whatever its sum:
           the columns' sums differ, and every work-item must meet the barriers. lse is set
           once, after the barriers: assigned before them and again inside this branch, PoCL
           3.1 (CPU device) lost its value and log-softmax came out NaN. */
        REAL u = 0;
        if (LSE_REFINE && log_op) {
            REAL uc = 0;
            for (ulong k = ly; live && k < n; k += wk) {
                const REAL t = scale * LD(x, k * inner);
                kahan_add(&u, &uc, t == m ? (REAL)0 : exp(t - m));
            }
            u = group_sum_dim1(scratch, u - uc);
        }
        const REAL lse = lse_refined(log_op, sum) ? log1p(u) : log(sum);

        /* The barriers above ordered every read of this column before any write to it. */
        if (live) {
            if (log_op) {
                for (ulong k = ly; k < n; k += wk) {
                    const REAL t = scale * LD(x, k * inner);
                    put_1(wm, zero, (t - m) - lse, y, k * inner);
                }
            } else {
                for (ulong k = ly; k < n; k += wk) {
                    const REAL t = scale * LD(x, k * inner);
                    put_1(wm, zero, exp(t - m) / sum, y, k * inner);
                }
            }
        }
    }
}

#ifndef CLSOFTMAX_STRIDED_VECS
#define CLSOFTMAX_STRIDED_VECS 16
#endif

/*
 * The axis lengths whose strip of STRIDED_VECS vectors a work-item keeps in its core's cache
 * (4096 x 512 bytes of float32: 2 MiB): three passes, one exp per element, as cached_row() in
 * softmax_row.cl; longer axes take the online recurrence (two reads, two exps).
 */
#ifndef CLSOFTMAX_STRIDED_CACHED
#define CLSOFTMAX_STRIDED_CACHED 4096
#endif

/*
 * The per-lane state of a strip of CLSOFTMAX_STRIDED_VECS vectors before its first element:
 * max -inf, sum and its compensation 0.
 */
void strided_vecs_start(REALV* m, REALV* s, REALV* c)
{
    for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q) {
        m[q] = (REALV)(-INFINITY);
        s[q] = (REALV)0;
        c[q] = (REALV)0;
    }
}

/* Adds a block's sums bs to the strip's sums s, compensated (Kahan) in c, lane by lane. */
void strided_vecs_kahan_add(REALV* s, REALV* c, const REALV* bs)
{
    for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q) {
        const REALV yk = bs[q] - c[q];
        const REALV t = s[q] + yk;
        c[q] = (t - s[q]) - yk;
        s[q] = t;
    }
}

/*
 * Stores v at vector j of y, per lane: 0 where the lane's column is bad under policy ZERO (its
 * sum NaN), then blended as put_v() in softmax_row.cl.
 */
void put_lanes(write_mode wm, REALV v, REALV sum, __global STORE_T* y, ulong j)
{
    const REALV z = wm.zero_bad ? VSELECT(v, (REALV)0, isnan(sum)) : v;
    VSTORE(blend_v(wm, z, y, j), j, y);
}

/*
 * log(sum) per lane of the VW columns from x on: through u where a lane's sum is below 2
 * (LSE_REFINE in softmax_row.cl; one more pass over the axis, lane-wise compensated, for such
 * columns only).
 */
REALV log_lanes(__global const STORE_T* x, ulong n, ulong inner, REAL scale, REALV m, REALV sum)
{
    REALV lse = log(sum);
    if (LSE_REFINE && VANY(isless(sum, (REALV)2))) {
        REALV u = (REALV)0;
        REALV c = (REALV)0;
        for (ulong k = 0; k < n; ++k) {
            const REALV t = scale * VLOAD(0, x + k * inner);
            const REALV yk = VSELECT(exp(t - m), (REALV)0, isequal(t, m)) - c;
            const REALV tt = u + yk;
            c = (tt - u) - yk;
            u = tt;
        }
        lse = VSELECT(lse, log1p(u - c), isless(sum, (REALV)2));
    }
    return lse;
}

/* The log-softmax write pass of a strip: (t - m) - log(sum) from x, per lane. */
void strided_vecs_write_log(__global const STORE_T* x, __global STORE_T* y, ulong n, ulong inner,
                            REAL scale, const REALV* m, const REALV* s, write_mode wm)
{
    REALV lse[CLSOFTMAX_STRIDED_VECS];
    for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
        lse[q] = log_lanes(x + q * CLSOFTMAX_VW, n, inner, scale, m[q], s[q]);
    for (ulong k = 0; k < n; ++k) {
        for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
            put_lanes(wm, (scale * VLOAD(q, x + k * inner) - m[q]) - lse[q], s[q], y + k * inner,
                      q);
    }
}

/* The softmax write pass of a strip from x: exp(t - m) / sum, per lane. */
void strided_vecs_write_exp(__global const STORE_T* x, __global STORE_T* y, ulong n, ulong inner,
                            REAL scale, const REALV* m, const REALV* s, write_mode wm)
{
    for (ulong k = 0; k < n; ++k) {
        for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
            put_lanes(wm, exp(scale * VLOAD(q, x + k * inner) - m[q]) / s[q], s[q], y + k * inner,
                      q);
    }
}

/*
 * As strided_vecs(), for a strip that stays in cache: per lane the max (no exp), then
 * e = exp(t - m) summed (blocks of CLSOFTMAX_BLOCK steps, compensated across blocks) and,
 * where y holds REALs and is not read for blending, parked in y for a last pass of y / sum
 * (one exp per element); otherwise (16-bit storage, beta != 0, log-softmax) the last pass
 * writes from x. In place, each element is read from x before this work-item writes it.
 */
void strided_vecs_cached(__global const STORE_T* x, __global STORE_T* y, ulong n, ulong inner,
                         REAL scale, int log_op, write_mode wm)
{
    const int park = STORE_IS_REAL && !log_op && wm.beta == 0;
    REALV m[CLSOFTMAX_STRIDED_VECS];
    REALV s[CLSOFTMAX_STRIDED_VECS];
    REALV c[CLSOFTMAX_STRIDED_VECS];
    strided_vecs_start(m, s, c);
    for (ulong k = 0; k < n; ++k) {
        for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
            m[q] = fmax(m[q], scale * VLOAD(q, x + k * inner));
    }
    for (ulong kb = 0; kb < n; kb += CLSOFTMAX_BLOCK) {
        const ulong ke = min(n, kb + (ulong)CLSOFTMAX_BLOCK);
        REALV bs[CLSOFTMAX_STRIDED_VECS];
        for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
            bs[q] = (REALV)0;
        for (ulong k = kb; k < ke; ++k) {
            for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q) {
                const REALV e = exp(scale * VLOAD(q, x + k * inner) - m[q]);
                if (park)
                    VSTORE(e, q, y + k * inner);
                bs[q] += e;
            }
        }
        strided_vecs_kahan_add(s, c, bs);
    }
    if (log_op) {
        strided_vecs_write_log(x, y, n, inner, scale, m, s, wm);
    } else if (park) {
        for (ulong k = 0; k < n; ++k) {
            for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
                put_lanes(wm, VLOAD(q, y + k * inner) / s[q], s[q], y + k * inner, q);
        }
    } else {
        strided_vecs_write_exp(x, y, n, inner, scale, m, s, wm);
    }
}

/*
 * CLSOFTMAX_STRIDED_VECS neighbouring vectors of columns from x (y) on, over the axis (stride
 * inner): the online recurrence per lane as in softmax_strided_item, several vectors at once
 * so each axis step reads whole cache lines and a page serves more than one vector load.
 */
void strided_vecs(__global const STORE_T* x, __global STORE_T* y, ulong n, ulong inner, REAL scale,
                  int log_op, write_mode wm)
{
    if (n <= CLSOFTMAX_STRIDED_CACHED) {
        strided_vecs_cached(x, y, n, inner, scale, log_op, wm);
        return;
    }
    REALV m[CLSOFTMAX_STRIDED_VECS];
    REALV s[CLSOFTMAX_STRIDED_VECS];
    REALV c[CLSOFTMAX_STRIDED_VECS];
    strided_vecs_start(m, s, c);
    for (ulong kb = 0; kb < n; kb += CLSOFTMAX_BLOCK) {
        const ulong ke = min(n, kb + (ulong)CLSOFTMAX_BLOCK);
        REALV bm[CLSOFTMAX_STRIDED_VECS];
        REALV bs[CLSOFTMAX_STRIDED_VECS];
        REALV ref[CLSOFTMAX_STRIDED_VECS];
        for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
            bm[q] = (REALV)(-INFINITY);
        for (ulong k = kb; k < ke; ++k) {
            for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
                bm[q] = fmax(bm[q], scale * VLOAD(q, x + k * inner));
        }
        for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q) {
            const REALV nm = fmax(m[q], bm[q]);
            const REALV f = VSELECT((REALV)1, exp(m[q] - nm), isgreater(nm, m[q]));
            s[q] *= f;
            c[q] *= f;
            m[q] = nm;
            ref[q] = VSELECT(nm, (REALV)0, isequal(nm, (REALV)(-INFINITY)));
            bs[q] = (REALV)0;
        }
        for (ulong k = kb; k < ke; ++k) {
            for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
                bs[q] += exp(scale * VLOAD(q, x + k * inner) - ref[q]);
        }
        strided_vecs_kahan_add(s, c, bs);
    }
    for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
        s[q] = VSELECT(s[q], (REALV)(NAN), isequal(m[q], (REALV)(-INFINITY)));
    if (log_op)
        strided_vecs_write_log(x, y, n, inner, scale, m, s, wm);
    else
        strided_vecs_write_exp(x, y, n, inner, scale, m, s, wm);
}

/*
 * Assumes inner > 1; any local size, no __local memory, no barrier. Work-item u takes
 * STRIDED_VECS * VW neighbouring columns when inner is a multiple of that, else VW columns
 * (o, i .. i + VW - 1) when inner % VW == 0, else one column; neighbouring
 * work-items take neighbouring columns, and each loops over the whole axis, so there is no
 * transpose and no reduction between work-items. Trick: per lane, the online (max, sum)
 * recurrence in blocks of CLSOFTMAX_BLOCK axis steps (the block's max first, one rescale per
 * block, one exp per element), so the input is read twice (recurrence, write), not three times.
 */
__kernel void softmax_strided_item(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                                   ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                   int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                                   int zero_bad)
{
    (void)scratch;
    const write_mode wm = write_mode_make(alpha, beta, zero_bad);
    const ulong wide = (ulong)CLSOFTMAX_VW * CLSOFTMAX_STRIDED_VECS;
    if (inner % wide == 0) {
        /* Rounds of the same count in every work-item (see ROUNDS in softmax_row.cl). */
        const ulong iw = inner / wide;
        const ulong units = outer * iw;
        const ulong gsize = get_global_size(0);
        const ulong rounds = units / gsize + (units % gsize != 0);
        for (ulong round = 0; round < rounds; ++round) {
            const ulong u = get_global_id(0) + round * gsize;
            if (u >= units)
                break;
            const ulong o = u / iw;
            const ulong base = o * n * inner + (u - o * iw) * wide;
            strided_vecs(in + in_off + base, out + out_off + base, n, inner, scale, log_op, wm);
        }
    } else if (inner % CLSOFTMAX_VW == 0) {
        const ulong iv = inner / CLSOFTMAX_VW;
        const ulong units = outer * iv;
        for (ulong u = get_global_id(0); u < units; u += get_global_size(0)) {
            const ulong o = u / iv;
            const ulong base = o * n * inner + (u - o * iv) * CLSOFTMAX_VW;
            __global const STORE_T* x = in + in_off + base;
            __global STORE_T* y = out + out_off + base;
            REALV m = (REALV)(-INFINITY);
            REALV s = (REALV)0;
            REALV c = (REALV)0;
            for (ulong kb = 0; kb < n; kb += CLSOFTMAX_BLOCK) {
                const ulong ke = min(n, kb + (ulong)CLSOFTMAX_BLOCK);
                REALV bm = (REALV)(-INFINITY);
                for (ulong k = kb; k < ke; ++k)
                    bm = fmax(bm, scale * VLOAD(0, x + k * inner));
                /* Per lane, as online_rescale() in common.cl: rescale only where bm raises m
                   (select keeps exp(-inf - -inf) = NaN out of lanes that stay at -inf). */
                const REALV nm = fmax(m, bm);
                const REALV f = VSELECT((REALV)1, exp(m - nm), isgreater(nm, m));
                s *= f;
                c *= f;
                m = nm;
                const REALV ref = VSELECT(m, (REALV)0, isequal(m, (REALV)(-INFINITY)));
                REALV bs = (REALV)0;
                for (ulong k = kb; k < ke; ++k)
                    bs += exp(scale * VLOAD(0, x + k * inner) - ref);
                const REALV yk = bs - c;
                const REALV t = s + yk;
                c = (t - s) - yk;
                s = t;
            }
            const REALV sum = VSELECT(s, (REALV)(NAN), isequal(m, (REALV)(-INFINITY)));
            if (log_op) {
                const REALV lse = log_lanes(x, n, inner, scale, m, sum);
                for (ulong k = 0; k < n; ++k)
                    put_lanes(wm, (scale * VLOAD(0, x + k * inner) - m) - lse, sum, y + k * inner,
                              0);
            } else {
                for (ulong k = 0; k < n; ++k)
                    put_lanes(wm, exp(scale * VLOAD(0, x + k * inner) - m) / sum, sum,
                              y + k * inner, 0);
            }
        }
    } else {
        const ulong cols = outer * inner;
        for (ulong u = get_global_id(0); u < cols; u += get_global_size(0)) {
            const ulong o = u / inner;
            const ulong base = o * n * inner + (u - o * inner);
            __global const STORE_T* x = in + in_off + base;
            __global STORE_T* y = out + out_off + base;
            REAL m = -INFINITY;
            REAL s = 0;
            REAL c = 0;
            for (ulong kb = 0; kb < n; kb += CLSOFTMAX_BLOCK) {
                const ulong ke = min(n, kb + (ulong)CLSOFTMAX_BLOCK);
                REAL bm = -INFINITY;
                for (ulong k = kb; k < ke; ++k)
                    bm = fmax(bm, scale * LD(x, k * inner));
                const REAL ref = online_rescale(&m, &s, &c, bm);
                REAL bs = 0;
                for (ulong k = kb; k < ke; ++k)
                    bs += exp(scale * LD(x, k * inner) - ref);
                kahan_add(&s, &c, bs);
            }
            const REAL sum = m == -INFINITY ? (REAL)NAN : s;
            const int zero = zero_row(wm, sum);
            if (log_op) {
                REAL lse = log(sum);
                if (lse_refined(log_op, sum)) {
                    REAL u = 0;
                    REAL uc = 0;
                    for (ulong k = 0; k < n; ++k) {
                        const REAL t = scale * LD(x, k * inner);
                        kahan_add(&u, &uc, t == m ? (REAL)0 : exp(t - m));
                    }
                    lse = log1p(u - uc);
                }
                for (ulong k = 0; k < n; ++k)
                    put_1(wm, zero, (scale * LD(x, k * inner) - m) - lse, y, k * inner);
            } else {
                for (ulong k = 0; k < n; ++k)
                    put_1(wm, zero, exp(scale * LD(x, k * inner) - m) / sum, y, k * inner);
            }
        }
    }
}
