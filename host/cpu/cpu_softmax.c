/* cpu_softmax.c - the CPU fallback: splits a softmax job into rows, blocks or columns for a pool.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "cpu_softmax.h"
#include "half_convert.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__)
#error "the CPU backend needs IEEE NaN and inf: build it without -ffast-math / -ffinite-math-only"
#endif

/*
 * Numerics (the definition every backend shares; this file must be built
 * without -ffast-math, the special values rely on IEEE arithmetic):
 *   t = scale * x       float32: in float, scale rounded to float
 *   m = max_k t         NaN skipped, as fmax does
 *   d = t - m, e = exp(d)   float32: expf on the float difference
 *   softmax:     y = e / S,               S = sum_k e
 *   log-softmax: y = d - log(S)
 * computed as S = 1 + u, where u sums e over every element but one that
 * attains the max (whose e is exactly 1). log(S) is then log1p(u): when one
 * element dominates, log(S) is tiny and log of a rounded S would lose all its
 * digits (a float64 -5.87e-13 came out 1.5e-4 off, relatively); log1p(u) keeps them.
 * (Softmax itself needs only S, so float32 softmax sums every e directly
 * and skips the tie count.) Sums end in double for both dtypes; softmax
 * multiplies e by 1/S rounded to the dtype (<= 1 ulp beyond the correctly
 * rounded quotient, far inside the tolerance). log1p(u) is rounded to the dtype
 * before the subtraction; d <= 0 and log1p(u) >= 0, so it never cancels.
 *
 * Special rows need no branches: a NaN or +inf makes d NaN somewhere
 * (NaN - m, inf - inf), hence u = NaN and every output NaN; an all -inf row
 * gives m = -inf and d = -inf - -inf = NaN; -inf beside finite values gives
 * e = 0 (log-softmax: -inf - finite = -inf). A row whose d is never 0 is one
 * of those, so "u + (ties - 1)" with no tie is NaN + -1, still NaN.
 *
 * Sums: float32 rows add 16 floats per vector lane in float (error <= 16 ulp,
 * 1e-6), then those partial sums in double (columns add in double at once).
 * float64 adds contiguous rows in chunks of 64 plainly and the chunk sums
 * with Neumaier compensation (error about 64 * 2^-53 whatever n); strided
 * columns use Kahan per element, whose latency hides behind the independent
 * columns. Softmax multiplies e by 1/S rounded to the dtype (two roundings,
 * <= 1 ulp beyond the quotient).
 *
 * Long rows (n > LONG_ROW) are cut into blocks of a size that depends on n
 * alone. Each block yields (m_b, u_b, ties_b) (clsoftmax__cpu_part), merged
 * in block order: m = max m_b, then u = sum over blocks of u_b + ties_b if
 * m_b == m, else exp(m_b - m) * (u_b + ties_b), minus the one max element;
 * softmax stores exp(t - ref_b) in the first pass and a second pass scales
 * it by exp(ref_b - m) / S (one exp per element); log-softmax writes
 * (t - m) - log(S) in the second pass. Which thread
 * computes which block never changes a bit, so results are identical for
 * every thread count, whether rows are split or not; short rows and column
 * blocks are computed whole by one thread.
 *
 * exp is the polynomial of cpu_kernels.inc (<= 1 ulp measured, both dtypes),
 * not libm's: libm does not vectorise. Kernels come in a portable build and
 * an AVX2 build chosen at run time; both round every operation alike except
 * for the order of the partial sums, so they agree to the tolerances.
 */

/* Below this many elements per thread, waking a worker costs more than the work. */
#define MIN_ELEMS_PER_THREAD 16384u
#define MAX_THREADS 256u
/* Rows up to this length run whole, three passes in cache (x and y: 256 KiB of float32). */
#define LONG_ROW 32768u
/* Elements per block of a long row (64 KiB of float32: the block's two passes hit L2). */
#define ROW_BLOCK 16384u
/* Block summaries held at once (on the stack); longer rows get longer blocks. */
#define MAX_PARTS 512u
/* Elements a thread takes at a time from the shared counter (short rows). */
#define GRAB_ELEMS 32768u
/* Column blocks sized so that a block's x and y stay in L2 across the passes. */
#define COLS_CACHE_BYTES 262144u
/* Narrowest column block: one 64-byte line of floats. */
#define BLOCK_MIN 16u

typedef enum mode { MODE_SMALL, MODE_ROWS, MODE_COLS, MODE_PARTS, MODE_OUT, MODE_LONG } mode;

typedef struct run_state {
    const clsoftmax__cpu_job* job;
    const clsoftmax__cpu_kernels* kern;
    mode mode;
    size_t units; /* rows, (slab, column block) pairs or (row, block) pairs */
    size_t grab;  /* units taken at a time */
    atomic_size_t next;
    size_t block;   /* MODE_COLS: columns per block; MODE_PARTS/OUT: elements per block */
    size_t nblocks; /* blocks per slab or per row */
    size_t row0;    /* MODE_PARTS/OUT: first row of the batch */
    clsoftmax__cpu_part parts[MAX_PARTS]; /* MODE_PARTS/OUT: per (row, block) of the batch */
    double row_m[MAX_PARTS];              /* MODE_OUT: per row of the batch */
} run_state;

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/*
 * The row's max from its block summaries, and each block's factor k:
 * exp(ref_b - m) / S for softmax (ref_b = m_b, or 0 for an all -inf block,
 * whose stored exps are 0), log S for log-softmax.
 */
static double merge_row(clsoftmax__cpu_part* p, size_t count, int is_double, int log_op)
{
    double m = -(double)INFINITY;
    for (size_t b = 0; b < count; b++)
        m = p[b].m > m ? p[b].m : m;
    double u = 0.0;
    size_t ties = 0;
    for (size_t b = 0; b < count; b++) {
        if (p[b].m == m) {
            u += p[b].u;
            ties += p[b].ties;
        } else {
            /* p[b].m < m; an all -inf block has u 0 (or NaN), so 0 * u keeps NaN */
            u += exp(p[b].m - m) * (p[b].u + (double)p[b].ties);
        }
    }
    u += (double)ties - 1.0;
    double lse = log1p(u), inv = 1.0 / (1.0 + u);
    for (size_t b = 0; b < count; b++) {
        double ref = p[b].m == -(double)INFINITY ? 0.0 : p[b].m;
        /* ref == m: exactly 1/S, as a short row gets; m = -inf (all -inf): NaN */
        double k = log_op ? lse : (ref == m ? inv : exp(ref - m) * inv);
        p[b].k = is_double ? k : (double)(float)k;
    }
    return m;
}

/* The summary pass or the output pass over block b of row r (absolute). */
static void long_block(run_state* st, size_t r, size_t b, clsoftmax__cpu_part* part, double m,
                       int out)
{
    const clsoftmax__cpu_job* job = st->job;
    const clsoftmax__cpu_kernels* kern = st->kern;
    int log_op = job->log != 0;
    size_t n = job->n;
    size_t at = r * n + b * st->block;
    size_t len = min_size(st->block, n - b * st->block);
    if (job->dtype == CLSOFTMAX__CPU_F64) {
        const double* x = (const double*)job->in + at;
        double* y = (double*)job->out + at;
        if (!out) /* softmax keeps exp(t - ref) in y for the output pass: one exp each */
            kern->part_f64(x, log_op ? NULL : y, len, job->scale, part);
        else
            kern->out_f64(x, y, len, job->scale, m, part->k, log_op);
    } else {
        const float* x = (const float*)job->in + at;
        float* y = (float*)job->out + at;
        float sf = (float)job->scale;
        if (!out)
            kern->part_f32(x, log_op ? NULL : y, len, sf, part);
        else
            kern->out_f32(x, y, len, sf, (float)m, (float)part->k, log_op);
    }
}

/* Row r whole: the same blocks and merge as MODE_PARTS/OUT, while the row is still in cache. */
static void long_row(run_state* st, size_t r)
{
    clsoftmax__cpu_part parts[MAX_PARTS];
    for (size_t b = 0; b < st->nblocks; b++)
        long_block(st, r, b, &parts[b], 0.0, 0);
    double m = merge_row(parts, st->nblocks, st->job->dtype == CLSOFTMAX__CPU_F64, st->job->log != 0);
    for (size_t b = 0; b < st->nblocks; b++)
        long_block(st, r, b, &parts[b], m, 1);
}

static void run_unit(run_state* st, size_t u)
{
    const clsoftmax__cpu_job* job = st->job;
    const clsoftmax__cpu_kernels* kern = st->kern;
    size_t n = job->n, inner = job->inner;
    int log_op = job->log != 0;
    const float* xf = job->in;
    float* yf = job->out;
    const double* xd = job->in;
    double* yd = job->out;
    float sf = (float)job->scale;
    double sc = job->scale;
    switch (st->mode) {
    case MODE_SMALL: {
        size_t r0 = u * CLSOFTMAX__CPU_BLOCK_MAX;
        size_t g = min_size(CLSOFTMAX__CPU_BLOCK_MAX, job->outer - r0);
        if (job->dtype == CLSOFTMAX__CPU_F64)
            kern->rows_small_f64(xd + r0 * n, yd + r0 * n, g, n, sc, log_op);
        else
            kern->rows_small_f32(xf + r0 * n, yf + r0 * n, g, n, sf, log_op);
        break;
    }
    case MODE_ROWS:
        if (job->dtype == CLSOFTMAX__CPU_F64)
            kern->row_f64(xd + u * n, yd + u * n, n, sc, log_op);
        else
            kern->row_f32(xf + u * n, yf + u * n, n, sf, log_op);
        break;
    case MODE_COLS: {
        size_t o = u / st->nblocks;
        size_t i0 = (u % st->nblocks) * st->block;
        size_t at = o * n * inner + i0; /* element (o, 0, i0) */
        size_t w = min_size(st->block, inner - i0);
        if (job->dtype == CLSOFTMAX__CPU_F64)
            kern->cols_f64(xd + at, yd + at, n, inner, w, sc, log_op);
        else
            kern->cols_f32(xf + at, yf + at, n, inner, w, sf, log_op);
        break;
    }
    case MODE_PARTS:
    case MODE_OUT: {
        size_t r = u / st->nblocks, b = u % st->nblocks;
        long_block(st, st->row0 + r, b, &st->parts[u], st->row_m[r], st->mode == MODE_OUT);
        break;
    }
    case MODE_LONG:
        long_row(st, u);
        break;
    }
}

static void run_task(void* arg, unsigned index, unsigned count)
{
    (void)index;
    (void)count;
    run_state* st = arg;
    /* A shared counter rather than fixed shares: the machine is shared, threads stall. */
    for (;;) {
        size_t u0 = atomic_fetch_add_explicit(&st->next, st->grab, memory_order_relaxed);
        if (u0 >= st->units)
            break;
        size_t u1 = min_size(st->units, u0 + st->grab);
        for (size_t u = u0; u < u1; u++)
            run_unit(st, u);
    }
#if defined(__x86_64__)
    /* the kernels' streaming stores are weakly ordered: drain them before reporting done */
    _mm_sfence();
#endif
}

static void run(run_state* st, unsigned threads, clsoftmax__cpu_pool* pool)
{
    atomic_store_explicit(&st->next, 0, memory_order_relaxed);
    size_t grabs = (st->units + st->grab - 1) / st->grab;
    clsoftmax__cpu_pool_run(pool, (unsigned)min_size(threads, grabs), run_task, st);
}

static void run_long_rows(run_state* st, unsigned threads, clsoftmax__cpu_pool* pool)
{
    const clsoftmax__cpu_job* job = st->job;
    size_t n = job->n, rows = job->outer;
    /* The block length depends on n alone, never on the threads. */
    size_t block = ROW_BLOCK;
    if ((n + block - 1) / block > MAX_PARTS)
        block = ((n + MAX_PARTS - 1) / MAX_PARTS + 63) / 64 * 64;
    size_t nblocks = (n + block - 1) / block;
    size_t batch = MAX_PARTS / nblocks; /* >= 1 */
    st->block = block;
    st->nblocks = nblocks;
    st->grab = 1;
    if (rows >= threads && (rows % threads == 0 || rows >= 4 * (size_t)threads)) {
        /* Enough rows to share whole: each thread's row stays in cache between passes. */
        st->mode = MODE_LONG;
        st->units = rows;
        run(st, threads, pool);
        return;
    }
    for (size_t r0 = 0; r0 < rows; r0 += batch) {
        size_t nr = min_size(batch, rows - r0);
        st->row0 = r0;
        st->units = nr * nblocks;
        st->mode = MODE_PARTS;
        run(st, threads, pool);
        for (size_t r = 0; r < nr; r++)
            st->row_m[r] =
                merge_row(st->parts + r * nblocks, nblocks, job->dtype == CLSOFTMAX__CPU_F64, job->log != 0);
        st->mode = MODE_OUT;
        run(st, threads, pool);
    }
}

const clsoftmax__cpu_kernels* clsoftmax__cpu_kernels_select(clsoftmax__cpu_isa isa)
{
    if (isa == CLSOFTMAX__CPU_ISA_GENERIC)
        return &clsoftmax__cpu_kernels_generic;
#if defined(CLSOFTMAX__CPU_HAVE_AVX2)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        return &clsoftmax__cpu_kernels_avx2;
#endif
    return isa == CLSOFTMAX__CPU_ISA_AVX2 ? NULL : &clsoftmax__cpu_kernels_generic;
}

unsigned clsoftmax__cpu_count(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        return 1;
    return cores > (long)UINT_MAX ? UINT_MAX : (unsigned)cores;
}

void clsoftmax__cpu_softmax(const clsoftmax__cpu_job* job, unsigned threads,
                            clsoftmax__cpu_pool* pool)
{
    if (job == NULL || job->outer == 0 || job->n == 0 || job->inner == 0)
        return;
    const clsoftmax__cpu_kernels* kern = clsoftmax__cpu_kernels_select(job->isa);
    if (kern == NULL)
        kern = &clsoftmax__cpu_kernels_generic;
    size_t total = job->outer * job->n * job->inner; /* validated against overflow */
    size_t want = threads != 0 ? threads : clsoftmax__cpu_count();
    want = min_size(want, MAX_THREADS);
    want = min_size(want, total / MIN_ELEMS_PER_THREAD);
    if (want == 0)
        want = 1;

    run_state st = {.job = job, .kern = kern};
    if (job->inner == 1 && job->n > LONG_ROW) {
        run_long_rows(&st, (unsigned)want, pool);
        return;
    }
    if (job->inner == 1 && job->n <= CLSOFTMAX__CPU_SMALL_ROW) {
        st.mode = MODE_SMALL; /* a unit: CLSOFTMAX__CPU_BLOCK_MAX rows */
        st.units = (job->outer + CLSOFTMAX__CPU_BLOCK_MAX - 1) / CLSOFTMAX__CPU_BLOCK_MAX;
        st.grab = 4;
    } else if (job->inner == 1) {
        st.mode = MODE_ROWS;
        st.units = job->outer;
        st.grab = job->n >= GRAB_ELEMS ? 1 : GRAB_ELEMS / job->n;
    } else {
        /*
         * Column blocks sized for L2, narrowed (never below BLOCK_MIN) when
         * there are too few to feed every thread. A column's result does not
         * depend on its block, so neither does the output.
         */
        size_t esize = job->dtype == CLSOFTMAX__CPU_F64 ? sizeof(double) : sizeof(float);
        size_t block = COLS_CACHE_BYTES / (2 * esize * job->n) / BLOCK_MIN * BLOCK_MIN;
        block = block < BLOCK_MIN
                    ? BLOCK_MIN
                    : (block > CLSOFTMAX__CPU_BLOCK_MAX ? CLSOFTMAX__CPU_BLOCK_MAX : block);
        if (want > 1 && job->outer * ((job->inner + block - 1) / block) < want) {
            size_t per_slab = (want + job->outer - 1) / job->outer;
            size_t b = (job->inner + per_slab - 1) / per_slab;
            b = (b + BLOCK_MIN - 1) / BLOCK_MIN * BLOCK_MIN;
            block = b < BLOCK_MIN ? BLOCK_MIN : min_size(b, block);
        }
        st.mode = MODE_COLS;
        st.block = block;
        st.nblocks = (job->inner + block - 1) / block;
        st.units = job->outer * st.nblocks;
        st.grab = 1;
    }
    run(&st, (unsigned)want, pool);
}

/* Element k of row (o, i) as t = scale * x, in double (exact for every compute precision). */
static double row_t(const clsoftmax__cpu_job* job, size_t o, size_t k, size_t i, float scale_f)
{
    const size_t at = (o * job->n + k) * job->inner + i;
    switch (job->dtype) {
    case CLSOFTMAX__CPU_F64:
        return job->scale * ((const double*)job->in)[at];
    case CLSOFTMAX__CPU_F16:
        return (double)(scale_f * clsoftmax__f16_to_f32(((const uint16_t*)job->in)[at]));
    case CLSOFTMAX__CPU_BF16:
        return (double)(scale_f * clsoftmax__bf16_to_f32(((const uint16_t*)job->in)[at]));
    default:
        return (double)(scale_f * ((const float*)job->in)[at]);
    }
}

void clsoftmax__cpu_check_rows(const clsoftmax__cpu_job* job, unsigned threads,
                               clsoftmax__cpu_pool* pool, size_t* bad_rows, size_t* first_bad_row)
{
    (void)threads;
    (void)pool;
    const float scale_f = (float)job->scale;
    size_t bad = 0, first = SIZE_MAX;
    for (size_t o = 0; o < job->outer; o++) {
        for (size_t i = 0; i < job->inner; i++) {
            int all_neg_inf = 1, is_bad = 0;
            for (size_t k = 0; k < job->n && !is_bad; k++) {
                const double t = row_t(job, o, k, i, scale_f);
                is_bad = isnan(t) || t == INFINITY;
                all_neg_inf = all_neg_inf && t == -INFINITY;
            }
            if (is_bad || all_neg_inf) {
                if (bad++ == 0)
                    first = o * job->inner + i;
            }
        }
    }
    *bad_rows = bad;
    *first_bad_row = first;
}
