/* softmax_row.cl - softmax and log-softmax over contiguous rows (inner == 1).
 *
 * Built after common.cl, which defines REAL, kahan_add() and the 1-D group reductions.
 *
 * Holds:
 *   softmax_row_local      a work-group per row, the row staged in __local memory
 *   softmax_row_multipass  a work-group per row, two passes: online (max, sum), then write
 *   softmax_row_private    a work-item per short row, the row held in private memory
 *   softmax_row_item       a work-item per row, two passes (online (max, sum), then write)
 *   softmax_split_partial  rows split across work-groups: each writes its chunk's (max, sum)
 *   softmax_split_write    merges a row's (max, sum) pairs, writes its chunk
 *   softmax_check_rows     counts bad rows (any axis) for the non-finite policy and reports
 *   write_mode, blend_1(), blend_v()  the write step every kernel shares (softmax_strided.cl
 *                          too): ZERO policy and blending
 *
 * Preprocessor parameters (CLSOFTMAX_FP64 and CLSOFTMAX_VW are read by common.cl):
 *   CLSOFTMAX_BLOCK        vectors per block of the online recurrence (default 16): a block is
 *                          read twice (max, then exp) from L1, never from memory
 *   CLSOFTMAX_PRIVATE_MAX  the longest row softmax_row_private holds (default 256 elements)
 *   CLSOFTMAX_CACHED_ROW   the longest row softmax_row_item makes three passes over, one exp
 *                          per element (default 1048576); longer rows: online, two passes
 *
 * Arguments, the same for every kernel of the library (host/launch.c sets them in this order):
 *   in, in_off        input buffer (STORE_T elements) and offset in elements
 *   out, out_off      output buffer and offset in elements; may equal in, in_off (in place,
 *                     then beta is 0), so no pointer is restrict and each work-item writes only
 *                     elements it alone has read
 *   outer, n, inner   the [outer, n, inner] view; element (o, k, i) at (o * n + k) * inner + i
 *   scale             t = scale * x, in REAL precision
 *   log_op            0: softmax exp(t - m) / sum, 1: log-softmax (t - m) - log(sum)
 *   scratch           dynamic __local memory sized by the host (see each kernel), in REALs
 *   alpha, beta       blending: out = alpha * v + beta * out in REAL, rounded once on store;
 *                     beta == 0: out is never read (it may hold NaN)
 *   zero_bad          1: a bad row (its sum NaN: t holds NaN or +inf, or is all -inf) has
 *                     v = 0 before blending (policy ZERO); 0: NaN flows through (policy NAN)
 * Buffers are STORE_T and touched only through LD/ST/VLOAD/VSTORE (common.cl): the 16-bit
 * types are computed in float, sums included, and rounded once on store. Indices are ulong
 * throughout: a tensor may hold more than 2^32 elements.
 * The split kernels take two more: partial (a __global REAL buffer of 2 * rows * chunks) and
 * chunks (work-groups per row). softmax_check_rows (the bad-row count) takes its own.
 */
#ifndef CLSOFTMAX_COMMON_CL
#error "softmax_row.cl is built after common.cl (REAL and the reductions)"
#endif

#ifndef CLSOFTMAX_BLOCK
#define CLSOFTMAX_BLOCK 16
#endif
/*
 * ROUNDS: the work-item-per-row kernels loop over rows r = gid + round * global_size for a
 * round count that is the same in every work-item, not `r += global_size` until r >= outer:
 * PoCL runs a work-group's work-items as one loop it can vectorise only when every work-item's
 * loop has the same trip count, and a copy written the second way ran 5x slower there.
 */
#ifndef CLSOFTMAX_PRIVATE_MAX
#define CLSOFTMAX_PRIVATE_MAX 256
#endif
/*
 * The longest row softmax_row_item makes three passes over (see cached_row()): 1M elements,
 * 4 MiB of float32. On PoCL (Zen 3, AVX2) the exp, not memory, bounds a row: one exp per
 * element beat the online recurrence's two even for rows beyond L2 (32 x 262144: 10 ms of CPU
 * against 16). Longer rows, which only DRAM holds, take the online recurrence (two reads).
 */
#ifndef CLSOFTMAX_CACHED_ROW
#define CLSOFTMAX_CACHED_ROW 1048576
#endif

/*
 * Whether the output buffer holds REALs: only then may a kernel park exp(t - m) in it between
 * passes (a 16-bit store would round the intermediate, a second rounding of the result).
 */
#define STORE_IS_REAL (CLSOFTMAX_DTYPE == 0 || CLSOFTMAX_DTYPE == 1)

/* REAL arrays in private memory, CLSOFTMAX_VW at a time (VLOAD/VSTORE are for buffers). */
#if CLSOFTMAX_VW == 1
#define RLOAD(i, p) ((p)[i])
#define RSTORE(v, i, p) ((p)[i] = (v))
#else
#define RLOAD(i, p) CLSOFTMAX_CAT(vload, CLSOFTMAX_VW)((i), (p))
#define RSTORE(v, i, p) CLSOFTMAX_CAT(vstore, CLSOFTMAX_VW)((v), (i), (p))
#endif

/* The write step's arguments (alpha, beta, zero_bad in the argument list above). */
typedef struct write_mode {
    REAL alpha;
    REAL beta;
    int zero_bad;
} write_mode;

write_mode write_mode_make(REAL alpha, REAL beta, int zero_bad)
{
    write_mode wm;
    wm.alpha = alpha;
    wm.beta = beta;
    wm.zero_bad = zero_bad;
    return wm;
}

/* Whether a row of this sum is written as 0 (policy ZERO on a bad row, whose sum is NaN). */
int zero_row(write_mode wm, REAL sum) { return wm.zero_bad && isnan(sum); }

/*
 * The value stored at y[k] for a result v: alpha * v + beta * y[k] in REAL, y[k] read only when
 * beta != 0; alpha == 1 returns v itself, so the default mode stores what it always did.
 */
REAL blend_1(write_mode wm, REAL v, __global const STORE_T* y, ulong k)
{
    if (wm.beta != 0)
        return wm.alpha * v + wm.beta * LD(y, k);
    return wm.alpha == 1 ? v : wm.alpha * v;
}

/* blend_1 for the vector at VLOAD(j, y). */
REALV blend_v(write_mode wm, REALV v, __global const STORE_T* y, ulong j)
{
    if (wm.beta != 0)
        return wm.alpha * v + wm.beta * VLOAD(j, y);
    return wm.alpha == 1 ? v : wm.alpha * v;
}

/* One result v for element k of y: 0 when `zero` (a bad row under ZERO), then blended. */
void put_1(write_mode wm, int zero, REAL v, __global STORE_T* y, ulong k)
{
    ST(y, k, blend_1(wm, zero ? (REAL)0 : v, y, k));
}

void put_v(write_mode wm, int zero, REALV v, __global STORE_T* y, ulong j)
{
    VSTORE(blend_v(wm, zero ? (REALV)0 : v, y, j), j, y);
}

/*
 * LSE_REFINE: log-softmax of a row whose sum of exp(t - m) is below 2 takes log(sum) as
 * log1p(u), u the sum of every term but the max's (whose term is exactly 1; a sum below 2 has
 * one such term). In float, 1 + u rounds away u's low bits, and a row dominated by one element
 * (u below float's epsilon) gave log-softmax 0 at the max where the answer is -u: thousands of
 * bfloat16 ulps. u costs one more read of the row, for such rows only. The 16-bit types alone
 * need it (their 1-ulp bound); float32 and float64 keep their results bit for bit.
 */
#define LSE_REFINE (!STORE_IS_REAL)
#if CLSOFTMAX_VW == 1
#define VANY(c) (c)
#else
#define VANY(c) any(c)
#endif

/* Whether a row of this sum takes its log through u (see LSE_REFINE); false for NaN sums. */
int lse_refined(int log_op, REAL sum) { return LSE_REFINE && log_op && sum < 2; }

/*
 * This work-item's share of u (see LSE_REFINE) over the vectors j = j0, j0 + stride, ... < j1
 * and the scalars k = k0, k0 + stride, ... < k1 of x, for the row's max m: blocks of
 * CLSOFTMAX_BLOCK vectors, compensated across blocks.
 */
REAL u_range(__global const STORE_T* x, ulong j0, ulong j1, ulong k0, ulong k1, ulong stride,
             REAL scale, REAL m)
{
    REAL s = 0;
    REAL c = 0;
    const ulong span = stride * CLSOFTMAX_BLOCK;
    for (ulong b = j0; b < j1; b += span) {
        const ulong e = min(j1, b + span);
        REALV vs = (REALV)0;
        for (ulong j = b; j < e; j += stride) {
            const REALV t = scale * VLOAD(j, x);
            vs += VSELECT(exp(t - m), (REALV)0, isequal(t, (REALV)m));
        }
        kahan_add(&s, &c, hsum_v(vs));
    }
    for (ulong k = k0; k < k1; k += stride) {
        const REAL t = scale * LD(x, k);
        kahan_add(&s, &c, t == m ? (REAL)0 : exp(t - m));
    }
    return s - c;
}

/*
 * Assumes inner == 1, a power-of-two local size L, scratch of n + L REALs (row, then
 * reduction slots); rows are outer, looped with stride get_num_groups(0).
 * Trick: the row is read from global memory once into local memory as t = scale * x; max and
 * sum of exp(t - m) (Kahan per work-item, then a tree) run on the staged copy, which for
 * softmax is overwritten in place by exp(t - m) so the write pass needs no second exp.
 */
__kernel void softmax_row_local(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                                ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                                int zero_bad)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    __local REAL* row = scratch;
    __local REAL* red = scratch + n;
    const write_mode wm = write_mode_make(alpha, beta, zero_bad);
    (void)inner;

    for (ulong r = get_group_id(0); r < outer; r += get_num_groups(0)) {
        __global const STORE_T* x = in + in_off + r * n;
        __global STORE_T* y = out + out_off + r * n;

        /* Each work-item touches only its own k's of row, so only the reductions need
           barriers. */
        REAL pmax = -INFINITY;
        for (ulong k = lid; k < n; k += lsz) {
            const REAL t = scale * LD(x, k);
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
        const int zero = zero_row(wm, sum);

        if (log_op) {
            REAL lse = log(sum);
            /* the same sum in every work-item: all of them meet the barriers */
            if (lse_refined(log_op, sum)) {
                REAL u = 0;
                REAL uc = 0;
                for (ulong k = lid; k < n; k += lsz)
                    kahan_add(&u, &uc, row[k] == m ? (REAL)0 : exp(row[k] - m));
                lse = log1p(group_sum_1d(red, u - uc));
            }
            for (ulong k = lid; k < n; k += lsz)
                put_1(wm, zero, (row[k] - m) - lse, y, k);
        } else {
            for (ulong k = lid; k < n; k += lsz)
                put_1(wm, zero, row[k] / sum, y, k);
        }
    }
}

/*
 * Online (max, sum) over the vectors j = j0, j0 + stride, ... < j1 of x (VW elements each),
 * then the scalar elements k = k0, k0 + stride, ... < k1, into *m, *s, *c (see common.cl).
 */
void online_range(__global const STORE_T* x, ulong j0, ulong j1, ulong k0, ulong k1, ulong stride,
                  REAL scale, REAL* m, REAL* s, REAL* c)
{
    const ulong span = stride * CLSOFTMAX_BLOCK;
    for (ulong b = j0; b < j1; b += span) {
        const ulong e = min(j1, b + span);
        REALV vm = (REALV)(-INFINITY);
        for (ulong j = b; j < e; j += stride)
            vm = fmax(vm, scale * VLOAD(j, x));
        const REAL ref = online_rescale(m, s, c, hmax_v(vm));
        REALV vs = (REALV)0;
        for (ulong j = b; j < e; j += stride)
            vs += exp(scale * VLOAD(j, x) - ref);
        kahan_add(s, c, hsum_v(vs));
    }
    for (ulong k = k0; k < k1; k += stride) {
        const REAL t = scale * LD(x, k);
        const REAL ref = online_rescale(m, s, c, t);
        kahan_add(s, c, exp(t - ref));
    }
}

/* Writes y = exp(t - m) / sum (log_op: (t - m) - lse, lse the caller's log(sum)) over the
   same index sets. */
void write_range(__global const STORE_T* x, __global STORE_T* y, ulong j0, ulong j1, ulong k0,
                 ulong k1, ulong stride, REAL scale, REAL m, REAL sum, REAL lse, int log_op,
                 write_mode wm)
{
    const int zero = zero_row(wm, sum);
    if (log_op) {
        for (ulong j = j0; j < j1; j += stride)
            put_v(wm, zero, (scale * VLOAD(j, x) - m) - lse, y, j);
        for (ulong k = k0; k < k1; k += stride)
            put_1(wm, zero, (scale * LD(x, k) - m) - lse, y, k);
    } else {
        for (ulong j = j0; j < j1; j += stride)
            put_v(wm, zero, exp(scale * VLOAD(j, x) - m) / sum, y, j);
        for (ulong k = k0; k < k1; k += stride)
            put_1(wm, zero, exp(scale * LD(x, k) - m) / sum, y, k);
    }
}

/* The sum a finished recurrence stands for: NaN for a row that is all -inf (see common.cl). */
REAL online_sum(REAL m, REAL s) { return m == -INFINITY ? (REAL)NAN : s; }

/*
 * Merges the work-group's (m, s) pairs through red (2 L REALs); every work-item gets the
 * result. Assumes a power-of-two local size; every work-item calls it.
 */
void group_ms_merge(__local REAL* red, REAL* m, REAL* s)
{
    const size_t lid = get_local_id(0);
    const size_t lsz = get_local_size(0);
    red[lid] = *m;
    red[lsz + lid] = *s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t st = lsz / 2; st > 0; st >>= 1) {
        if (lid < st) {
            REAL mm = red[lid];
            REAL ss = red[lsz + lid];
            ms_merge(&mm, &ss, red[lid + st], red[lsz + lid + st]);
            red[lid] = mm;
            red[lsz + lid] = ss;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *m = red[0];
    *s = red[lsz];
    barrier(CLK_LOCAL_MEM_FENCE);
}

/*
 * Assumes inner == 1, a power-of-two local size L, scratch of 2 L REALs; for rows too long for
 * local memory. Trick: two passes over global memory instead of three: each work-item runs the
 * online (max, sum) recurrence over its vectors (j = lid, lid + L, ...: neighbouring
 * work-items on neighbouring addresses), the pairs merge as a tree, then the write pass.
 */
__kernel void softmax_row_multipass(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                                    ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                    int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                                    int zero_bad)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    const ulong nv = n / CLSOFTMAX_VW;
    const ulong k0 = nv * CLSOFTMAX_VW + lid;
    const write_mode wm = write_mode_make(alpha, beta, zero_bad);
    (void)inner;

    for (ulong r = get_group_id(0); r < outer; r += get_num_groups(0)) {
        __global const STORE_T* x = in + in_off + r * n;
        __global STORE_T* y = out + out_off + r * n;
        REAL m = -INFINITY;
        REAL s = 0;
        REAL c = 0;
        online_range(x, lid, nv, k0, n, lsz, scale, &m, &s, &c);
        s -= c;
        group_ms_merge(scratch, &m, &s);
        const REAL sum = online_sum(m, s);
        REAL lse = log(sum);
        /* the same sum in every work-item: all of them meet the barriers */
        if (lse_refined(log_op, sum))
            lse = log1p(group_sum_1d(scratch, u_range(x, lid, nv, k0, n, lsz, scale, m)));
        /* The merge's barriers ordered every read of the row before any write to it. */
        write_range(x, y, lid, nv, k0, n, lsz, scale, m, sum, lse, log_op, wm);
    }
}

/*
 * One work-item's row of n <= CLSOFTMAX_PRIVATE_MAX elements. Trick: the row is read once into
 * private memory as t = scale * x, max and sum run there (the sum's terms overwrite t for
 * softmax), then the row is written once.
 */
void private_row(__global const STORE_T* x, __global STORE_T* y, ulong nv, ulong k0, ulong n,
                 REAL scale, int log_op, write_mode wm)
{
    REAL buf[CLSOFTMAX_PRIVATE_MAX];
#if CLSOFTMAX_VW > 1
    /* A row of exactly one vector (1000000 x 8 on AVX2) stays in a register. */
    if (n == CLSOFTMAX_VW) {
        const REALV t = scale * VLOAD(0, x);
        const REAL m = hmax_v(t);
        if (log_op) {
            const REAL sum = hsum_v(exp(t - m));
            const REAL lse =
                lse_refined(log_op, sum)
                    ? log1p(hsum_v(VSELECT(exp(t - m), (REALV)0, isequal(t, (REALV)m))))
                    : log(sum);
            put_v(wm, zero_row(wm, sum), (t - m) - lse, y, 0);
        } else {
            const REALV e = exp(t - m);
            const REAL sum = hsum_v(e);
            put_v(wm, zero_row(wm, sum), e / sum, y, 0);
        }
        return;
    }
#endif
    REALV vm = (REALV)(-INFINITY);
    for (ulong j = 0; j < nv; ++j) {
        const REALV t = scale * VLOAD(j, x);
        RSTORE(t, j, buf);
        vm = fmax(vm, t);
    }
    REAL m = hmax_v(vm);
    for (ulong k = k0; k < n; ++k) {
        const REAL t = scale * LD(x, k);
        buf[k] = t;
        m = fmax(m, t);
    }

    REALV vs = (REALV)0;
    REAL s = 0;
    if (log_op) {
        for (ulong j = 0; j < nv; ++j)
            vs += exp(RLOAD(j, buf) - m);
        for (ulong k = k0; k < n; ++k)
            s += exp(buf[k] - m);
        const REAL sum = hsum_v(vs) + s;
        const int zero = zero_row(wm, sum);
        REAL lse = log(sum);
        if (lse_refined(log_op, sum)) {
            REAL u = 0;
            for (ulong k = 0; k < n; ++k)
                u += buf[k] == m ? (REAL)0 : exp(buf[k] - m);
            lse = log1p(u);
        }
        for (ulong j = 0; j < nv; ++j)
            put_v(wm, zero, (RLOAD(j, buf) - m) - lse, y, j);
        for (ulong k = k0; k < n; ++k)
            put_1(wm, zero, (buf[k] - m) - lse, y, k);
    } else {
        for (ulong j = 0; j < nv; ++j) {
            const REALV e = exp(RLOAD(j, buf) - m);
            RSTORE(e, j, buf);
            vs += e;
        }
        for (ulong k = k0; k < n; ++k) {
            const REAL e = exp(buf[k] - m);
            buf[k] = e;
            s += e;
        }
        const REAL sum = hsum_v(vs) + s;
        const int zero = zero_row(wm, sum);
        for (ulong j = 0; j < nv; ++j)
            put_v(wm, zero, RLOAD(j, buf) / sum, y, j);
        for (ulong k = k0; k < n; ++k)
            put_1(wm, zero, buf[k] / sum, y, k);
    }
}

/*
 * One work-item's row that stays in its core's cache: the max first (no exp), then
 * e = exp(t - m) summed (blocks of CLSOFTMAX_BLOCK vectors, compensated across blocks) and,
 * where y holds REALs and is not read for blending, parked in y, which the last pass scales
 * by 1 / sum: one exp per element where the online recurrence needs two, the extra passes
 * from cache. Otherwise (16-bit storage, beta != 0, log-softmax) the last pass writes from x.
 * In place, each element is read from x before this work-item writes it.
 */
void cached_row(__global const STORE_T* x, __global STORE_T* y, ulong nv, ulong k0, ulong n,
                REAL scale, int log_op, write_mode wm)
{
    const int park = STORE_IS_REAL && !log_op && wm.beta == 0;
    REALV vm = (REALV)(-INFINITY);
    for (ulong j = 0; j < nv; ++j)
        vm = fmax(vm, scale * VLOAD(j, x));
    REAL m = hmax_v(vm);
    for (ulong k = k0; k < n; ++k)
        m = fmax(m, scale * LD(x, k));

    REAL s = 0;
    REAL c = 0;
    for (ulong b = 0; b < nv; b += CLSOFTMAX_BLOCK) {
        const ulong e = min(nv, b + (ulong)CLSOFTMAX_BLOCK);
        REALV vs = (REALV)0;
        if (!park) {
            for (ulong j = b; j < e; ++j)
                vs += exp(scale * VLOAD(j, x) - m);
        } else {
            for (ulong j = b; j < e; ++j) {
                const REALV ev = exp(scale * VLOAD(j, x) - m);
                VSTORE(ev, j, y);
                vs += ev;
            }
        }
        kahan_add(&s, &c, hsum_v(vs));
    }
    for (ulong k = k0; k < n; ++k) {
        const REAL ev = exp(scale * LD(x, k) - m);
        if (park)
            ST(y, k, ev);
        kahan_add(&s, &c, ev);
    }
    const REAL sum = s - c;
    const int zero = zero_row(wm, sum);
    if (log_op) {
        const REAL lse =
            lse_refined(log_op, sum) ? log1p(u_range(x, 0, nv, k0, n, 1, scale, m)) : log(sum);
        for (ulong j = 0; j < nv; ++j)
            put_v(wm, zero, (scale * VLOAD(j, x) - m) - lse, y, j);
        for (ulong k = k0; k < n; ++k)
            put_1(wm, zero, (scale * LD(x, k) - m) - lse, y, k);
    } else if (park) {
        for (ulong j = 0; j < nv; ++j)
            put_v(wm, zero, VLOAD(j, y) / sum, y, j);
        for (ulong k = k0; k < n; ++k)
            put_1(wm, zero, LD(y, k) / sum, y, k);
    } else {
        for (ulong j = 0; j < nv; ++j)
            put_v(wm, zero, exp(scale * VLOAD(j, x) - m) / sum, y, j);
        for (ulong k = k0; k < n; ++k)
            put_1(wm, zero, exp(scale * LD(x, k) - m) / sum, y, k);
    }
}

/*
 * The rows of a work-item-per-row kernel (rows grid-strided, see ROUNDS): private_row() for
 * each when in_private (a constant in each caller, folded once inlined), else cached_row() for
 * rows that fit the cache and the online recurrence (two reads) for longer ones.
 */
void item_rows(__global const STORE_T* in, ulong in_off, __global STORE_T* out, ulong out_off,
               ulong outer, ulong n, REAL scale, int log_op, write_mode wm, int in_private)
{
    const ulong nv = n / CLSOFTMAX_VW;
    const ulong k0 = nv * CLSOFTMAX_VW;

    /* The same trip count in every work-item (see ROUNDS) */
    const ulong gsize = get_global_size(0);
    const ulong rounds = outer / gsize + (outer % gsize != 0);
    for (ulong round = 0; round < rounds; ++round) {
        const ulong r = get_global_id(0) + round * gsize;
        if (r >= outer)
            break;
        __global const STORE_T* x = in + in_off + r * n;
        __global STORE_T* y = out + out_off + r * n;
        if (in_private) {
            private_row(x, y, nv, k0, n, scale, log_op, wm);
        } else if (n <= CLSOFTMAX_CACHED_ROW) {
            cached_row(x, y, nv, k0, n, scale, log_op, wm);
        } else {
            REAL m = -INFINITY;
            REAL s = 0;
            REAL c = 0;
            online_range(x, 0, nv, k0, n, 1, scale, &m, &s, &c);
            const REAL sum = online_sum(m, s - c);
            const REAL lse =
                lse_refined(log_op, sum) ? log1p(u_range(x, 0, nv, k0, n, 1, scale, m)) : log(sum);
            write_range(x, y, 0, nv, k0, n, 1, scale, m, sum, lse, log_op, wm);
        }
    }
}

/*
 * Assumes inner == 1, n <= CLSOFTMAX_PRIVATE_MAX; any local size, no __local memory, no barrier.
 * A work-item per row (rows grid-strided): every work-item runs the same loops, so a CPU
 * device runs them back to back on vector registers; each row through private_row().
 */
__kernel void softmax_row_private(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                                  ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                  int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                                  int zero_bad)
{
    (void)inner;
    (void)scratch;
    item_rows(in, in_off, out, out_off, outer, n, scale, log_op,
              write_mode_make(alpha, beta, zero_bad), 1);
}

/*
 * Assumes inner == 1; any local size, no __local memory, no barrier. A work-item per row (rows
 * grid-strided), for CPU devices with enough rows to share among their cores. Trick: the online
 * (max, sum) recurrence reads the row once, the write pass a second time (from cache when the
 * row fits there).
 */
__kernel void softmax_row_item(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                               ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                               int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                               int zero_bad)
{
    (void)inner;
    (void)scratch;
    item_rows(in, in_off, out, out_off, outer, n, scale, log_op,
              write_mode_make(alpha, beta, zero_bad), 0);
}

/*
 * The vectors [*j0, *j1) and scalars [*k0, n) of chunk `chunk` of a row of n elements split
 * into `chunks` nearly equal runs of whole vectors; the scalar tail belongs to the last chunk.
 */
void split_bounds(ulong n, ulong chunk, ulong chunks, ulong* j0, ulong* j1, ulong* k0)
{
    const ulong nv = n / CLSOFTMAX_VW;
    const ulong per = nv / chunks + (nv % chunks != 0);
    *j0 = min(nv, chunk * per);
    *j1 = min(nv, *j0 + per);
    *k0 = chunk + 1 == chunks ? nv * CLSOFTMAX_VW : n;
}

/*
 * For the split kernels' grid (group g: row g / chunks, chunk g % chunks): this group's row *r
 * and its chunk's bounds as split_bounds() gives them; 0 when the group has no row.
 */
int split_group(ulong outer, ulong n, ulong chunks, ulong* r, ulong* j0, ulong* j1, ulong* k0)
{
    const ulong g = get_group_id(0);
    *r = g / chunks;
    if (*r >= outer)
        return 0;
    split_bounds(n, g - *r * chunks, chunks, j0, j1, k0);
    return 1;
}

/*
 * Assumes inner == 1, exactly outer * chunks work-groups (group g: row g / chunks, chunk
 * g % chunks), a power-of-two local size L, scratch of 2 L REALs, partial of 2 * outer * chunks
 * REALs. For a few very long rows: a row's chunks run on different compute units. Trick: each
 * group runs the online recurrence over its chunk and leaves its (max, sum) pair in partial.
 */
__kernel void softmax_split_partial(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                                    ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                    int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                                    int zero_bad, __global REAL* partial, ulong chunks)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    const ulong g = get_group_id(0);
    ulong r, j0, j1, k0;
    (void)out;
    (void)out_off;
    (void)inner;
    (void)log_op;
    (void)alpha;
    (void)beta;
    (void)zero_bad;
    if (!split_group(outer, n, chunks, &r, &j0, &j1, &k0))
        return;
    __global const STORE_T* x = in + in_off + r * n;
    REAL m = -INFINITY;
    REAL s = 0;
    REAL c = 0;
    online_range(x, j0 + lid, j1, k0 + lid, n, lsz, scale, &m, &s, &c);
    s -= c;
    group_ms_merge(scratch, &m, &s);
    if (lid == 0) {
        partial[2 * g] = m;
        partial[2 * g + 1] = s;
    }
}

/*
 * The same grid as softmax_split_partial, after it. Trick: every work-item merges its row's
 * `chunks` pairs itself, in chunk order (a few dozen exps, identical in every work-item and
 * group, so no barrier and no third kernel), then writes its share of the chunk.
 */
__kernel void softmax_split_write(__global const STORE_T* in, ulong in_off, __global STORE_T* out,
                                  ulong out_off, ulong outer, ulong n, ulong inner, REAL scale,
                                  int log_op, __local REAL* scratch, REAL alpha, REAL beta,
                                  int zero_bad, __global const REAL* partial, ulong chunks)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    ulong r, j0, j1, k0;
    (void)inner;
    if (!split_group(outer, n, chunks, &r, &j0, &j1, &k0))
        return;
    REAL m = partial[2 * r * chunks];
    REAL s = partial[2 * r * chunks + 1];
    for (ulong q = 1; q < chunks; ++q)
        ms_merge(&m, &s, partial[2 * (r * chunks + q)], partial[2 * (r * chunks + q) + 1]);
    __global const STORE_T* x = in + in_off + r * n;
    const REAL sum = online_sum(m, s);
    REAL lse = log(sum);
    /* u needs the whole row: each of its groups reads it all (rows that need u only); the
       same sum in every work-item of the group, so all of them meet the barriers */
    if (lse_refined(log_op, sum)) {
        const ulong nv = n / CLSOFTMAX_VW;
        lse = log1p(
            group_sum_1d(scratch, u_range(x, lid, nv, nv * CLSOFTMAX_VW + lid, n, lsz, scale, m)));
    }
    write_range(x, out + out_off + r * n, j0 + lid, j1, k0 + lid, n, lsz, scale, m, sum, lse,
                log_op, write_mode_make(alpha, beta, zero_bad));
}

/*
 * Any layout, any local size. Counts the bad rows among rows row0 .. row0 + rows - 1 (row
 * r = o * inner + i runs over elements (o, k, i)): t = scale * x holds NaN or +inf, or is -inf
 * throughout, exactly the rows whose sum the kernels above find NaN. report[0] counts them,
 * report[1] takes the lowest bad r - row0 (the host sets {0, UINT_MAX} first and keeps
 * rows below 2^32). A work-item per row, grid-strided: one read of the input, no exp.
 */
__kernel void softmax_check_rows(__global const STORE_T* in, ulong in_off, ulong n, ulong inner,
                                 REAL scale, ulong row0, ulong rows, __global uint* report)
{
    for (ulong q = get_global_id(0); q < rows; q += get_global_size(0)) {
        const ulong r = row0 + q;
        const ulong o = r / inner;
        __global const STORE_T* x = in + in_off + o * n * inner + (r - o * inner);
        int bad = 0;
        int all_neg_inf = 1;
        for (ulong k = 0; k < n && !bad; ++k) {
            const REAL t = scale * LD(x, k * inner);
            bad = isnan(t) || t == INFINITY;
            all_neg_inf = all_neg_inf && t == -INFINITY;
        }
        if (bad || all_neg_inf) {
            atomic_inc(&report[0]);
            atomic_min(&report[1], (uint)q);
        }
    }
}
