/* softmax_strided.cl - softmax and log-softmax over a non-last axis (inner > 1), no transpose.
 *
 * Built after common.cl, which defines REAL and kahan_add(); the kernel arguments are those
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

/*
 * Assumes a 2-D work-group (LX, LK) of powers of two, one group along dimension 1, scratch of
 * 2 * LX * LK REALs. Dimension 0 walks columns (o, i) flattened as o * inner + i, grid-stride
 * over outer * inner, so neighbouring work-items read neighbouring addresses; dimension 1
 * splits the axis: work-item ly takes k = ly, ly + LK, ...
 * Trick: two passes over global memory, not three: per column, each work-item runs the online
 * (max, sum) recurrence over its k's in blocks of CLSOFTMAX_BLOCK, the pairs merge across
 * dimension 1 as a tree in local memory, then the write pass.
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

        REAL m = -INFINITY;
        REAL s = 0;
        REAL c = 0;
        if (live) {
            const ulong span = wk * CLSOFTMAX_BLOCK;
            for (ulong kb = ly; kb < n; kb += span) {
                const ulong ke = min(n, kb + span);
                REAL bm = -INFINITY;
                for (ulong k = kb; k < ke; k += wk)
                    bm = fmax(bm, scale * x[k * inner]);
                const REAL ref = online_rescale(&m, &s, &c, bm);
                REAL bs = 0;
                for (ulong k = kb; k < ke; k += wk)
                    bs += exp(scale * x[k * inner] - ref);
                kahan_add(&s, &c, bs);
            }
        }
        s -= c;
        group_ms_merge_dim1(scratch, &m, &s);
        const REAL sum = m == -INFINITY ? (REAL)NAN : s;

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

/* The log-softmax write pass of a strip: (t - m) - log(sum) from x, per lane. */
void strided_vecs_write_log(__global const REAL* x, __global REAL* y, ulong n, ulong inner,
                            REAL scale, const REALV* m, const REALV* s)
{
    REALV lse[CLSOFTMAX_STRIDED_VECS];
    for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
        lse[q] = log(s[q]);
    for (ulong k = 0; k < n; ++k) {
        for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
            VSTORE((scale * VLOAD(q, x + k * inner) - m[q]) - lse[q], q, y + k * inner);
    }
}

/*
 * As strided_vecs(), for a strip that stays in cache: per lane the max (no exp), then
 * e = exp(t - m) stored to y and summed (blocks of CLSOFTMAX_BLOCK steps, compensated across
 * blocks), then y / sum, or (t - m) - log(sum) from x for log-softmax. In place, each element
 * is read from x before this work-item writes it.
 */
void strided_vecs_cached(__global const REAL* x, __global REAL* y, ulong n, ulong inner, REAL scale,
                         int log_op)
{
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
                if (!log_op)
                    VSTORE(e, q, y + k * inner);
                bs[q] += e;
            }
        }
        strided_vecs_kahan_add(s, c, bs);
    }
    if (log_op) {
        strided_vecs_write_log(x, y, n, inner, scale, m, s);
    } else {
        for (ulong k = 0; k < n; ++k) {
            for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
                VSTORE(VLOAD(q, y + k * inner) / s[q], q, y + k * inner);
        }
    }
}

/*
 * CLSOFTMAX_STRIDED_VECS neighbouring vectors of columns from x (y) on, over the axis (stride
 * inner): the online recurrence per lane as in softmax_strided_item, several vectors at once
 * so each axis step reads whole cache lines and a page serves more than one vector load.
 */
void strided_vecs(__global const REAL* x, __global REAL* y, ulong n, ulong inner, REAL scale,
                  int log_op)
{
    if (n <= CLSOFTMAX_STRIDED_CACHED) {
        strided_vecs_cached(x, y, n, inner, scale, log_op);
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
    if (log_op) {
        strided_vecs_write_log(x, y, n, inner, scale, m, s);
    } else {
        for (ulong k = 0; k < n; ++k) {
            for (int q = 0; q < CLSOFTMAX_STRIDED_VECS; ++q)
                VSTORE(exp(scale * VLOAD(q, x + k * inner) - m[q]) / s[q], q, y + k * inner);
        }
    }
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
__kernel void softmax_strided_item(__global const REAL* in, ulong in_off, __global REAL* out,
                                   ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                   int log_op, __local REAL* scratch)
{
    (void)scratch;
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
            strided_vecs(in + in_off + base, out + out_off + base, n, inner, scale, log_op);
        }
    } else if (inner % CLSOFTMAX_VW == 0) {
        const ulong iv = inner / CLSOFTMAX_VW;
        const ulong units = outer * iv;
        for (ulong u = get_global_id(0); u < units; u += get_global_size(0)) {
            const ulong o = u / iv;
            const ulong base = o * n * inner + (u - o * iv) * CLSOFTMAX_VW;
            __global const REAL* x = in + in_off + base;
            __global REAL* y = out + out_off + base;
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
                const REALV lse = log(sum);
                for (ulong k = 0; k < n; ++k)
                    VSTORE((scale * VLOAD(0, x + k * inner) - m) - lse, 0, y + k * inner);
            } else {
                for (ulong k = 0; k < n; ++k)
                    VSTORE(exp(scale * VLOAD(0, x + k * inner) - m) / sum, 0, y + k * inner);
            }
        }
    } else {
        const ulong cols = outer * inner;
        for (ulong u = get_global_id(0); u < cols; u += get_global_size(0)) {
            const ulong o = u / inner;
            const ulong base = o * n * inner + (u - o * inner);
            __global const REAL* x = in + in_off + base;
            __global REAL* y = out + out_off + base;
            REAL m = -INFINITY;
            REAL s = 0;
            REAL c = 0;
            for (ulong kb = 0; kb < n; kb += CLSOFTMAX_BLOCK) {
                const ulong ke = min(n, kb + (ulong)CLSOFTMAX_BLOCK);
                REAL bm = -INFINITY;
                for (ulong k = kb; k < ke; ++k)
                    bm = fmax(bm, scale * x[k * inner]);
                const REAL ref = online_rescale(&m, &s, &c, bm);
                REAL bs = 0;
                for (ulong k = kb; k < ke; ++k)
                    bs += exp(scale * x[k * inner] - ref);
                kahan_add(&s, &c, bs);
            }
            const REAL sum = m == -INFINITY ? (REAL)NAN : s;
            if (log_op) {
                const REAL lse = log(sum);
                for (ulong k = 0; k < n; ++k)
                    y[k * inner] = (scale * x[k * inner] - m) - lse;
            } else {
                for (ulong k = 0; k < n; ++k)
                    y[k * inner] = exp(scale * x[k * inner] - m) / sum;
            }
        }
    }
}
