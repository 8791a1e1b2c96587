/* attention_softmax.cl - attention's softmax over one block of keys: scale, masks, online softmax.
 *
 * Built after ops_common.cl.
 *
 * Holds:
 *   attention_block  for one batch entry and one block of keys [j0, j0 + bk): t = scale * s +
 *                    mask, the running max and sum of each query row updated, the scores turned
 *                    into weights in place and the partial output row rescaled
 *
 * Preprocessor parameters: none of its own.
 *
 * The host then runs O += P . V_block (CLBlast, beta 1). Across blocks this is the online
 * softmax: with m the running max and l the running sum of exp(t - m), a new block whose max
 * raises m to m' rescales l and the partial O by alpha = exp(m - m'). On the last block the
 * weights and the rescale factor are also divided by the final l, so no pass over O remains.
 */
#ifndef CLSOFTMAX_OPS_COMMON_CL
#error "attention_softmax.cl is built after ops_common.cl"
#endif

/* t of key j (global index jg) for query i; -inf when a mask hides it. */
REAL attn_t(__global const REAL* s, ulong j, ulong jg, ulong i, ulong seq_q, ulong seq_k,
            REAL scale, int causal, ulong kv_len, __global const REAL* mrow, int has_mask)
{
    /* causal, aligned to the end: jg <= i + (seq_k - seq_q), kept in unsigned arithmetic */
    if (jg >= kv_len || (causal && jg + seq_q > i + seq_k))
        return -INFINITY;
    const REAL t = scale * s[j];
    return has_mask ? t + mrow[jg] : t;
}

/*
 * Assumes one work-group per score row r = h * seq_q + i (rows looped by get_num_groups(0)), a
 * power-of-two local size L; scratch of L REALs, or bk + L when staged (the row of t kept in
 * __local memory so the scores are read once). s: the block's scores [heads, seq_q, bk] at
 * s_off; state: m at st_off + r, l at st_off + rows + r; mask rows (seq_k long) at
 * mask_off + h * mask_sh + i * seq_k; the output row at o_off + h * o_sh + i * o_ss.
 * Trick: a row with every key hidden so far keeps m = -inf and l = 0, and its weights are 0,
 * so a fully masked row ends as 0 (1 / l taken as 0), not NaN.
 */
__kernel void attention_block(__global REAL* s, ulong s_off, ulong heads, ulong seq_q, ulong bk,
                              ulong j0, ulong seq_k, REAL scale, int causal, ulong kv_len,
                              __global const REAL* mask, ulong mask_off, ulong mask_sh,
                              int has_mask, __global REAL* state, ulong st_off, __global REAL* o,
                              ulong o_off, ulong o_sh, ulong o_ss, ulong d_v, int first, int last,
                              int staged, __local REAL* scratch)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    const ulong rows = heads * seq_q;
    __local REAL* red = scratch;
    __local REAL* trow = scratch + lsz;
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        const ulong h = r / seq_q;
        const ulong i = r % seq_q;
        __global REAL* srow = s + s_off + r * bk;
        __global const REAL* mrow = mask + mask_off + h * mask_sh + i * seq_k;

        REAL pmax = -INFINITY;
        for (ulong j = lid; j < bk; j += lsz) {
            const REAL t =
                attn_t(srow, j, j0 + j, i, seq_q, seq_k, scale, causal, kv_len, mrow, has_mask);
            if (staged)
                trow[j] = t;
            pmax = fmax(pmax, t);
        }
        const REAL bmax = group_max_1d(red, pmax);
        const REAL m_old = first ? -INFINITY : state[st_off + r];
        const REAL l_old = first ? 0 : state[st_off + rows + r];
        const REAL m_new = fmax(m_old, bmax);

        /* every work-item writes only the j it read, so the in-place update needs no barrier */
        REAL ps = 0;
        REAL pc = 0;
        for (ulong j = lid; j < bk; j += lsz) {
            const REAL t = staged ? trow[j]
                                  : attn_t(srow, j, j0 + j, i, seq_q, seq_k, scale, causal, kv_len,
                                           mrow, has_mask);
            const REAL p = m_new == -INFINITY ? 0 : exp(t - m_new);
            if (staged)
                trow[j] = p;
            else
                srow[j] = p;
            kahan_add(&ps, &pc, p);
        }
        const REAL bsum = group_sum_1d(red, ps);
        const REAL alpha = m_old == -INFINITY ? 0 : exp(m_old - m_new);
        const REAL l_new = l_old * alpha + bsum;
        /* 1 / l only on the last block; l == 0 (all hidden) gives 0, NaN stays NaN */
        const REAL inv = !last ? 1 : (l_new == 0 ? 0 : 1 / l_new);
        if (staged) {
            for (ulong j = lid; j < bk; j += lsz)
                srow[j] = trow[j] * inv;
        } else if (last) {
            for (ulong j = lid; j < bk; j += lsz)
                srow[j] = srow[j] * inv;
        }
        __global REAL* orow = o + o_off + h * o_sh + i * o_ss;
        const REAL f = alpha * inv;
        for (ulong c = lid; c < d_v; c += lsz)
            orow[c] = first ? 0 : orow[c] * f;
        if (lid == 0) {
            state[st_off + r] = m_new;
            state[st_off + rows + r] = l_new;
        }
        /* trow and red are reused by the next row */
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
