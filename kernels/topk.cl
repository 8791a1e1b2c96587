/* topk.cl - the classifier head's top-k: softmax statistics and the k best classes of each row.
 *
 * Built after ops_common.cl and linear_softmax.cl (head_t).
 *
 * Holds:
 *   linear_softmax_topk  values and indices of the k largest t per row, sorted
 *
 * Preprocessor parameters: none of its own.
 */
#ifndef CLSOFTMAX_OPS_COMMON_CL
#error "topk.cl is built after ops_common.cl"
#endif

/* (t1, i1) comes before (t2, i2): larger t first, ties by the lower index; i < 0 is "none". */
int topk_before(REAL t1, long i1, REAL t2, long i2)
{
    if (i1 < 0)
        return 0;
    if (i2 < 0)
        return 1;
    return t1 > t2 || (t1 == t2 && i1 < i2);
}

/*
 * Assumes one work-group per row (looped), a power-of-two local size L, red of L REALs and redi
 * of L longs; logits [rows, classes] contiguous; k <= classes.
 * Trick: softmax is monotonic, so the k best probabilities are those of the k best t; each of
 * k rounds takes the group's best (t, index) that comes after the previous round's, which
 * gives a total order (NaN ordered as -inf) with no sort and no per-row buffer.
 */
__kernel void linear_softmax_topk(__global const REAL* logits, ulong l_off, ulong rows,
                                  ulong classes, __global const REAL* bias, ulong bias_off,
                                  int has_bias, REAL scale, int log_op, ulong k,
                                  __global REAL* vals, ulong v_off, __global long* idx, ulong i_off,
                                  __local REAL* red, __local long* redi)
{
    const ulong lid = get_local_id(0);
    const ulong lsz = get_local_size(0);
    __global const REAL* b = bias + bias_off;
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        __global const REAL* row = logits + l_off + r * classes;
        REAL pmax = -INFINITY;
        for (ulong j = lid; j < classes; j += lsz)
            pmax = fmax(pmax, head_t(row, b, has_bias, scale, j));
        const REAL m = group_max_1d(red, pmax);
        REAL s = 0;
        REAL c = 0;
        for (ulong j = lid; j < classes; j += lsz)
            kahan_add(&s, &c, exp(head_t(row, b, has_bias, scale, j) - m));
        const REAL sum = group_sum_1d(red, s);

        REAL prev_t = 0;
        long prev_i = -1;
        for (ulong q = 0; q < k; q++) {
            REAL best_t = 0;
            long best_i = -1;
            for (ulong j = lid; j < classes; j += lsz) {
                REAL t = head_t(row, b, has_bias, scale, j);
                if (isnan(t))
                    t = -INFINITY;
                const int after = prev_i < 0 || t < prev_t || (t == prev_t && (long)j > prev_i);
                if (after && topk_before(t, (long)j, best_t, best_i)) {
                    best_t = t;
                    best_i = (long)j;
                }
            }
            red[lid] = best_t;
            redi[lid] = best_i;
            barrier(CLK_LOCAL_MEM_FENCE);
            for (ulong h = lsz / 2; h > 0; h >>= 1) {
                if (lid < h && topk_before(red[lid + h], redi[lid + h], red[lid], redi[lid])) {
                    red[lid] = red[lid + h];
                    redi[lid] = redi[lid + h];
                }
                barrier(CLK_LOCAL_MEM_FENCE);
            }
            prev_t = red[0];
            prev_i = redi[0];
            barrier(CLK_LOCAL_MEM_FENCE);
            if (lid == 0) {
                /* the value from the true t, so a NaN row gives NaN through sum */
                const REAL t = head_t(row, b, has_bias, scale, (ulong)prev_i);
                vals[v_off + r * k + q] = log_op ? (t - m) - log(sum) : exp(t - m) / sum;
                idx[i_off + r * k + q] = prev_i;
            }
        }
    }
}
