/* cross_entropy.cl - fused softmax cross-entropy with logits: row losses and the gradient.
 *
 * Built after common.cl (REAL, STORE_T, LD/ST, kahan_add, group_sum_1d).
 *
 * Holds:
 *   xent_prepare  one work-group: the MEAN divisor and the sum of the class weights, into
 *                 scratch[0] and scratch[1]
 *   xent_rows     a work-group per row (rows looped): the row's loss and gradient row
 *   xent_reduce   one work-group: the row losses in scratch[2..] summed in a fixed order,
 *                 divided for MEAN, into the single loss element
 *
 * Flags (the kernels' `flags` argument), shared with host/cross_entropy.c:
 *   XENT_PROBS 1 labels are probability rows (else cl_long class indices)
 *   XENT_W     2 class weights given
 *   XENT_GRAD  4 write the gradient
 *   XENT_RED   8 SUM or MEAN: row losses go to scratch, not to loss
 *   XENT_MEAN 16 divide by the MEAN divisor
 *
 * Preprocessor parameters:
 *   CLSOFTMAX_DTYPE  read by common.cl
 *   XENT_WG_MAX      the largest local size the host launches with (default 256): sizes the
 *                    __local reduction arrays
 *   XENT_CONTIG      1: each work-item takes a contiguous slice of the row (CPU devices, whose
 *                    compilers run one work-item's loop at a time, so a slice streams through
 *                    the cache); 0 (default): work-items interleave, so that neighbouring
 *                    work-items load neighbouring elements (GPUs coalesce them)
 *   CLSOFTMAX_VW     (common.cl) elements per vector in the row loops; above 1 only with
 *                    XENT_CONTIG (8 on CPU devices: exp on float8 is one vector routine there)
 *   XENT_BLOCK       vectors per block of the online (max, sum) pass (default 32)
 *
 * Never build with -cl-fast-relaxed-math: NaN rows and -inf logits rely on IEEE arithmetic.
 */
#ifndef CLSOFTMAX_COMMON_CL
#error "cross_entropy.cl is built after common.cl"
#endif

#ifndef XENT_WG_MAX
#define XENT_WG_MAX 256
#endif
#ifndef XENT_CONTIG
#define XENT_CONTIG 0
#endif

#ifndef XENT_BLOCK
#define XENT_BLOCK 32
#endif
#if !XENT_CONTIG && CLSOFTMAX_VW != 1
#error "interleaved work-items (XENT_CONTIG 0) load one element at a time: CLSOFTMAX_VW 1"
#endif

/* The vector at any element p of a row (common.cl's VLOAD/VSTORE take any element address). */
#define XVLOAD(p) VLOAD(0, (p))
#define XVSTORE(v, p) VSTORE((v), 0, (p))

#define XENT_PROBS 1
#define XENT_W 2
#define XENT_GRAD 4
#define XENT_RED 8
#define XENT_MEAN 16

/* The elements [*begin, *end) by *step of a row of n that this work-item visits. */
void xent_slice(ulong n, ulong* begin, ulong* end, ulong* step)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
#if XENT_CONTIG
    const ulong chunk = (n + lsz - 1) / lsz;
    *begin = min(lid * chunk, n);
    *end = min(*begin + chunk, n);
    *step = 1;
#else
    *begin = lid;
    *end = n;
    *step = lsz;
#endif
}

/*
 * Assumes a single work-group of power-of-two size <= XENT_WG_MAX.
 * scratch[0]: for MEAN the sum of w[y] over rows neither ignored nor out of range (INDEX), or
 * rows (PROBS); 1 otherwise. scratch[1]: the sum of the weights (classes without weights).
 * Kahan sums per work-item, then a tree: a fixed order, so the result never varies.
 */
__kernel void xent_prepare(__global const long* idx, ulong labels_off, __global const STORE_T* w,
                           ulong w_off, __global REAL* scratch, ulong rows, ulong classes,
                           long ignore_index, int flags)
{
    __local REAL red[XENT_WG_MAX];
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    REAL d = 0;
    REAL dc = 0;
    if ((flags & XENT_MEAN) && !(flags & XENT_PROBS))
        for (ulong r = lid; r < rows; r += lsz) {
            const long y = idx[labels_off + r];
            if (y != ignore_index && y >= 0 && (ulong)y < classes)
                kahan_add(&d, &dc, (flags & XENT_W) ? LD(w, w_off + (ulong)y) : (REAL)1);
        }
    REAL s = 0;
    REAL sc = 0;
    if (flags & XENT_W)
        for (ulong k = lid; k < classes; k += lsz)
            kahan_add(&s, &sc, LD(w, w_off + k));
    const REAL dsum = group_sum_1d(red, d - dc);
    const REAL wsum = group_sum_1d(red, s - sc);
    if (lid == 0) {
        if (!(flags & XENT_MEAN))
            scratch[0] = 1;
        else
            scratch[0] = (flags & XENT_PROBS) ? (REAL)rows : dsum;
        scratch[1] = (flags & XENT_W) ? wsum : (REAL)classes;
    }
}

/*
 * The online (m, t) pair of xent_rows over the elements i0, i0 + vstep, ... < i1 of row zr taken
 * CLSOFTMAX_VW at a time, one block of XENT_BLOCK vectors after another: the block's max, one
 * rescale when it raises m, then the block's exponentials summed (vectors, then one Kahan step).
 * Terms equal to m are exp(0) = 1 exactly: counted rather than summed, and the maximum's own 1 is
 * left out when this block raised m, so t stays the sum's excess over that term.
 */
void xent_online_v(__global const STORE_T* zr, ulong i0, ulong i1, ulong vstep, REAL* m, REAL* t,
                   REAL* tc)
{
    const ulong span = vstep * XENT_BLOCK;
    for (ulong bb = i0; bb < i1; bb += span) {
        const ulong be = min(i1, bb + span);
        REALV vm = (REALV)(-INFINITY);
        for (ulong i = bb; i < be; i += vstep)
            vm = fmax(vm, XVLOAD(zr + i));
        const REAL bm = hmax_v(vm);
        REAL raised = 0;
        if (bm > *m) {
            const REAL f = exp(*m - bm);
            *t = ((REAL)1 + *t) * f;
            *tc *= f;
            *m = bm;
            raised = 1;
        }
        /* while m is -inf nothing is counted (NaN compares false) and -inf terms add exp(-inf) */
        const REAL ref = *m == -INFINITY ? (REAL)0 : *m;
        const REALV vmax = (REALV)(*m == -INFINITY ? (REAL)NAN : *m);
        REALV vs = (REALV)0;
        REALV vn = (REALV)0;
        for (ulong i = bb; i < be; i += vstep) {
            const REALV v = XVLOAD(zr + i);
            vs += VSELECT(exp(v - ref), (REALV)0, v == vmax);
            vn += VSELECT((REALV)0, (REALV)1, v == vmax);
        }
        kahan_add(t, tc, hsum_v(vs) + (hsum_v(vn) - raised));
    }
}

/* Writes v to every element of the row's gradient (0 for ignored rows, NaN for bad labels). */
void xent_fill_row(__global STORE_T* grad, ulong gb, ulong classes, REAL v)
{
    ulong b, e, st;
    xent_slice(classes, &b, &e, &st);
    for (ulong k = b; k < e; k += st)
        ST(grad, gb + k, v);
}

/*
 * Assumes a power-of-two local size <= XENT_WG_MAX, rows looped over by get_num_groups(0), and
 * scratch[0..1] filled by xent_prepare; grad may be the logits themselves (each element is read
 * before the same work-item writes it).
 * Trick: one read of the row gives (max, sum of exp(z - max)) by the online recurrence (per
 * element: rescale the Kahan sum when the max rises), the sum kept as its excess t over the
 * maximum's own term 1, so that log s = log1p(t) stays relatively accurate for the small
 * losses of confident rows; the second read writes the gradient
 * p * A - a and accumulates the loss as sum a * (log s - (z - max)), a sum of non-negative
 * terms for non-negative weights, so no cancellation even where lse is huge and the loss tiny.
 */
__kernel void xent_rows(__global const STORE_T* logits, ulong logits_off, __global const long* idx,
                        __global const STORE_T* probs, ulong labels_off, __global const STORE_T* w,
                        ulong w_off, __global STORE_T* loss, ulong loss_off, __global STORE_T* grad,
                        ulong grad_off, __global REAL* scratch, ulong rows, ulong classes,
                        long ignore_index, REAL eps, int flags)
{
    __local REAL red_m[XENT_WG_MAX];
    __local REAL red_s[XENT_WG_MAX];
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    const int is_probs = flags & XENT_PROBS;
    const int has_w = flags & XENT_W;
    const int has_grad = flags & XENT_GRAD;
    const REAL denom = scratch[0];
    const REAL wsum = scratch[1];
    const REAL eps_c = eps / (REAL)classes;
    const REAL keep = (REAL)1 - eps;
    ulong b, e, st;
    xent_slice(classes, &b, &e, &st);
    /* whole vectors [b, vend) (every element when XENT_CONTIG is 0, CLSOFTMAX_VW then 1) */
    const ulong vend = XENT_CONTIG ? b + (e - b) / CLSOFTMAX_VW * CLSOFTMAX_VW : e;
    const ulong vstep = st * CLSOFTMAX_VW;

    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        const ulong zb = logits_off + r * classes;
        const ulong qb = labels_off + r * classes;
        const ulong gb = grad_off + r * classes;
        long y = 0;
        REAL row_loss = 0;
        int done = 0;
        if (!is_probs) {
            y = idx[labels_off + r];
            if (y == ignore_index) {
                done = 1;
            } else if (y < 0 || (ulong)y >= classes) {
                /* labels stay on the device unchecked: a bad one poisons its own row only */
                row_loss = NAN;
                done = 1;
            }
        }
        if (done) {
            if (has_grad)
                xent_fill_row(grad, gb, classes, row_loss);
        } else {
            /* (m, t): the sum of exp(z - m) is 1 + t; empty: (-inf, -1) */
            REAL m = -INFINITY;
            REAL t = -1;
            REAL tc = 0;
            REAL a = 0;
            REAL ac = 0;
            xent_online_v(logits + zb, b, vend, vstep, &m, &t, &tc);
            for (ulong k = vend; k < e; k += st) {
                const REAL z = LD(logits, zb + k);
                if (z > m) {
                    /* the old sum, rescaled, becomes the excess over the new maximum; m = -inf
                       gives a factor 0 and a NaN sum stays NaN */
                    const REAL f = exp(m - z);
                    t = ((REAL)1 + t) * f;
                    tc *= f;
                    m = z;
                } else if (z != -INFINITY) {
                    /* a NaN z adds NaN; -inf adds nothing even while m is still -inf */
                    kahan_add(&t, &tc, exp(z - m));
                }
            }
            for (ulong k = b; is_probs && k < e; k += st) {
                const REAL wk = has_w ? LD(w, w_off + k) : (REAL)1;
                kahan_add(&a, &ac, wk * (keep * LD(probs, qb + k) + eps_c));
            }
            /* read before the barriers below: in place, another work-item may overwrite it */
            const REAL zy = is_probs ? (REAL)0 : LD(logits, zb + (ulong)y);
            red_m[lid] = m;
            red_s[lid] = t - tc;
            barrier(CLK_LOCAL_MEM_FENCE);
            for (ulong h = lsz / 2; h > 0; h >>= 1) {
                if (lid < h) {
                    REAL m1 = red_m[lid];
                    REAL t1 = red_s[lid];
                    REAL m2 = red_m[lid + h];
                    REAL t2 = red_s[lid + h];
                    if (m2 > m1) {
                        const REAL mt = m1, tt = t1;
                        m1 = m2;
                        t1 = t2;
                        m2 = mt;
                        t2 = tt;
                    }
                    /* 1 + t = (1 + t1) + (1 + t2) exp(m2 - m1), kept as an excess over m1 */
                    red_m[lid] = m1;
                    red_s[lid] = t1 + ((REAL)1 + t2) * exp(m2 - m1);
                }
                barrier(CLK_LOCAL_MEM_FENCE);
            }
            const REAL rmax = red_m[0];
            /* log1p of the excess keeps a small loss (one dominant logit) relatively accurate;
               a +inf logit makes the row NaN, as exp(inf - inf) does in PyTorch's formula */
            const REAL log_s = rmax == INFINITY ? (REAL)NAN : log1p(red_s[0]);
            barrier(CLK_LOCAL_MEM_FENCE);
            REAL wy = 0;
            REAL amass;
            if (is_probs) {
                amass = group_sum_1d(red_m, a - ac);
            } else {
                wy = has_w ? LD(w, w_off + (ulong)y) : (REAL)1;
                amass = eps != 0 ? keep * wy + eps_c * wsum : wy;
            }
            if (!is_probs && eps == 0) {
                /* INDEX without smoothing: the loss needs z_y alone, the gradient is p * w_y
                   but at y, written in vectors and then patched at y by its owner */
                row_loss = wy * (log_s - (zy - rmax));
                if (has_grad) {
                    __global STORE_T* gr = grad + gb;
                    __global const STORE_T* zr = logits + zb;
                    for (ulong i = b; i < vend; i += vstep) {
                        const REALV g = exp((XVLOAD(zr + i) - rmax) - log_s) * wy;
                        XVSTORE((flags & XENT_MEAN) ? g / denom : g, gr + i);
                    }
                    for (ulong k = vend; k < e; k += st) {
                        const REAL g = exp((LD(zr, k) - rmax) - log_s) * wy;
                        ST(gr, k, (flags & XENT_MEAN) ? g / denom : g);
                    }
                    const ulong uy = (ulong)y;
                    if (uy >= b && uy < e && (uy - b) % st == 0) {
                        const REAL g = exp((zy - rmax) - log_s) * wy - wy;
                        ST(gr, uy, (flags & XENT_MEAN) ? g / denom : g);
                    }
                }
            } else {
                /* PROBS, or INDEX with smoothing: every class has a label weight a. Vectors
                   first (for INDEX without y's own share, which its owner adds below), then the
                   scalar tail. */
                REAL l = 0;
                REAL lc = 0;
                __global const STORE_T* zr = logits + zb;
                for (ulong i = b; i < vend; i += vstep) {
                    const REALV d = XVLOAD(zr + i) - rmax;
                    const REALV wk = has_w ? XVLOAD(w + w_off + i) : (REALV)1;
                    const REALV ak =
                        is_probs ? wk * (keep * XVLOAD(probs + qb + i) + eps_c) : eps_c * wk;
                    kahan_add(&l, &lc, hsum_v(ak * (log_s - d)));
                    if (has_grad) {
                        const REALV g = exp(d - log_s) * amass - ak;
                        XVSTORE((flags & XENT_MEAN) ? g / denom : g, grad + gb + i);
                    }
                }
                const ulong uy = (ulong)y;
                if (!is_probs && uy >= b && uy < vend && (uy - b) % st == 0) {
                    /* zy was read before any gradient store: in place, z_y is gone by now */
                    const REAL d = zy - rmax;
                    const REAL ak = eps_c * (has_w ? LD(w, w_off + uy) : (REAL)1) + keep * wy;
                    kahan_add(&l, &lc, keep * wy * (log_s - d));
                    if (has_grad) {
                        const REAL g = exp(d - log_s) * amass - ak;
                        ST(grad, gb + uy, (flags & XENT_MEAN) ? g / denom : g);
                    }
                }
                for (ulong k = vend; k < e; k += st) {
                    const REAL d = LD(logits, zb + k) - rmax;
                    REAL ak;
                    if (is_probs) {
                        const REAL wk = has_w ? LD(w, w_off + k) : (REAL)1;
                        ak = wk * (keep * LD(probs, qb + k) + eps_c);
                    } else {
                        ak = eps != 0 ? eps_c * (has_w ? LD(w, w_off + k) : (REAL)1) : (REAL)0;
                        if (k == (ulong)y)
                            ak += keep * wy;
                    }
                    /* without smoothing, INDEX rows ignore other classes (a -inf logit there
                       must not give 0 * inf); otherwise every term counts, as in PyTorch */
                    if (is_probs || eps != 0 || k == (ulong)y)
                        kahan_add(&l, &lc, ak * (log_s - d));
                    if (has_grad) {
                        const REAL g = exp(d - log_s) * amass - ak;
                        ST(grad, gb + k, (flags & XENT_MEAN) ? g / denom : g);
                    }
                }
                row_loss = group_sum_1d(red_m, l - lc);
            }
        }
        if (lid == 0) {
            if (flags & XENT_RED)
                scratch[2 + r] = row_loss;
            else
                ST(loss, loss_off + r, row_loss);
        }
    }
}

/*
 * Assumes a single work-group of power-of-two size <= XENT_WG_MAX and scratch[2..2+rows)
 * written by xent_rows. Work-item i sums rows i, i + L, ... (Kahan), then a tree: the order
 * depends on L alone, so repeated calls give identical bits.
 */
__kernel void xent_reduce(__global const REAL* scratch, ulong rows, __global STORE_T* loss,
                          ulong loss_off, int flags)
{
    __local REAL red[XENT_WG_MAX];
    const ulong lid = get_local_id(0);
    REAL s = 0;
    REAL c = 0;
    for (ulong r = lid; r < rows; r += get_local_size(0))
        kahan_add(&s, &c, scratch[2 + r]);
    const REAL total = group_sum_1d(red, s - c);
    if (lid == 0)
        ST(loss, loss_off, (flags & XENT_MEAN) ? total / scratch[0] : total);
}
