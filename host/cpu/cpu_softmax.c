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
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
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
 * Staged jobs: float16/bfloat16 storage, blending (alpha != 1 or beta != 0)
 * or zeroed bad rows. A thread copies a row or a group of short rows into a
 * float (float64: double) buffer on its stack, widening 16-bit storage
 * exactly, runs the float kernels there in place and writes back
 * out = alpha * v + beta * out (beta 0: out unread) in the compute precision,
 * rounded once to the storage type. Column blocks need no buffer: their
 * kernel reads the storage, and softmax recomputes e = exp(t - m) in its last
 * pass instead of keeping it in out. So a staged float32 result is the plain
 * one's bits blended, and float16 is float32's numerics on the widened input.
 * Rows longer than the buffer go through the long-row blocks, each block
 * summarised chunk by chunk (chunks fixed by n, folded in order like the
 * blocks) and its outputs recomputed per chunk as exp(t - ref_b) * k_b (two
 * exps per element: the summary pass's exps have nowhere to live). A bad
 * row's outputs are all NaN and a good row's never are (t - m is finite or
 * -inf there, S in [1, n]), so zeroing bad rows is zeroing NaN outputs.
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
/* A thread's staging buffer (on its stack): 8192 floats or 4096 doubles, in L1/L2. */
#define STAGE_BYTES 32768u

typedef enum mode { MODE_SMALL, MODE_ROWS, MODE_COLS, MODE_PARTS, MODE_OUT, MODE_LONG } mode;

typedef union stage {
    float f[STAGE_BYTES / sizeof(float)];
    double d[STAGE_BYTES / sizeof(double)];
} stage;

typedef struct run_state {
    const clsoftmax__cpu_job* job;
    const clsoftmax__cpu_kernels* kern;
    int staged;    /* through a stage buffer (16-bit storage, blending, zeroed bad rows) */
    size_t chunk;  /* staged: elements the stage holds (of the compute type) */
    float alpha_f; /* staged float compute: the blend factors in float */
    float beta_f;
    double beta; /* staged: 0 when out is not read (beta_f for float compute) */
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

static size_t elem_size(int dtype)
{
    return dtype == CLSOFTMAX__CPU_F64   ? sizeof(double)
           : dtype == CLSOFTMAX__CPU_F32 ? sizeof(float)
                                         : sizeof(uint16_t);
}

/* count contiguous elements from src (storage) into buf (compute type) */
static void widen(const run_state* st, const void* src, void* buf, size_t count)
{
    switch (st->job->dtype) {
    case CLSOFTMAX__CPU_F16:
        st->kern->load_f16(src, buf, count);
        break;
    case CLSOFTMAX__CPU_BF16:
        st->kern->load_bf16(src, buf, count);
        break;
    default:
        memcpy(buf, src, count * elem_size(st->job->dtype));
        break;
    }
}

static void blend(const run_state* st, const void* buf, void* dst, size_t count)
{
    const clsoftmax__cpu_job* job = st->job;
    if (job->dtype == CLSOFTMAX__CPU_F64)
        st->kern->blend_f64(buf, dst, count, job->alpha, st->beta, job->zero_bad);
    else
        st->kern->blend_f32(buf, dst, count, job->dtype, st->alpha_f, st->beta_f, job->zero_bad);
}

/* count elements of in from at into buf, widened */
static void stage_in(const run_state* st, void* buf, size_t at, size_t count)
{
    widen(st, (const unsigned char*)st->job->in + at * elem_size(st->job->dtype), buf, count);
}

/* buf's count values blended into out from at */
static void stage_out(const run_state* st, const void* buf, size_t at, size_t count)
{
    blend(st, buf, (unsigned char*)st->job->out + at * elem_size(st->job->dtype), count);
}

/*
 * Folds a chunk's summary c into the block's p (both as clsoftmax__cpu_part
 * describes; p starts at m = -inf, u = 0, ties = 0), the same merge as
 * merge_row's, one chunk at a time, in chunk order.
 */
static void fold_part(clsoftmax__cpu_part* p, const clsoftmax__cpu_part* c)
{
    if (c->m == p->m) {
        p->u += c->u;
        p->ties += c->ties;
    } else if (c->m > p->m) {
        /* what p held is scaled down to the new max (0 when p->m is -inf: its
           elements were -inf, or NaN, whose NaN u survives 0 * NaN) */
        p->u = exp(p->m - c->m) * (p->u + (double)p->ties) + c->u;
        p->ties = c->ties;
        p->m = c->m;
    } else {
        p->u += exp(c->m - p->m) * (c->u + (double)c->ties);
    }
}

/* Staged long_block: elements [at, at + len) of a row, in chunks of the stage. */
static void long_block_staged(run_state* st, size_t at, size_t len, clsoftmax__cpu_part* part,
                              double m, int out)
{
    const clsoftmax__cpu_job* job = st->job;
    const clsoftmax__cpu_kernels* kern = st->kern;
    const int is_double = job->dtype == CLSOFTMAX__CPU_F64, log_op = job->log != 0;
    const float sf = (float)job->scale;
    stage buf;
    if (!out) {
        clsoftmax__cpu_part p = {-(double)INFINITY, 0.0, 0, 0.0};
        for (size_t c0 = 0; c0 < len; c0 += st->chunk) {
            size_t c = min_size(st->chunk, len - c0);
            clsoftmax__cpu_part cp;
            stage_in(st, &buf, at + c0, c);
            if (is_double)
                kern->part_f64(buf.d, NULL, c, job->scale, &cp);
            else
                kern->part_f32(buf.f, NULL, c, sf, &cp);
            fold_part(&p, &cp);
        }
        *part = p;
        return;
    }
    const double ref = part->m == -(double)INFINITY ? 0.0 : part->m;
    for (size_t c0 = 0; c0 < len; c0 += st->chunk) {
        size_t c = min_size(st->chunk, len - c0);
        stage_in(st, &buf, at + c0, c);
        if (is_double) {
            if (log_op)
                kern->out_f64(buf.d, buf.d, c, job->scale, m, part->k, 1);
            else
                kern->expscale_f64(buf.d, c, job->scale, ref, part->k);
        } else {
            if (log_op)
                kern->out_f32(buf.f, buf.f, c, sf, (float)m, (float)part->k, 1);
            else
                kern->expscale_f32(buf.f, c, sf, (float)ref, (float)part->k);
        }
        stage_out(st, &buf, at + c0, c);
    }
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
    if (st->staged) {
        long_block_staged(st, at, len, part, m, out);
        return;
    }
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
    double m =
        merge_row(parts, st->nblocks, st->job->dtype == CLSOFTMAX__CPU_F64, st->job->log != 0);
    for (size_t b = 0; b < st->nblocks; b++)
        long_block(st, r, b, &parts[b], m, 1);
}

/* A unit of a staged job that fits the stage: short rows, a row or a column block. */
static void run_unit_staged(run_state* st, size_t u)
{
    const clsoftmax__cpu_job* job = st->job;
    const clsoftmax__cpu_kernels* kern = st->kern;
    const size_t n = job->n, inner = job->inner;
    const int is_double = job->dtype == CLSOFTMAX__CPU_F64, log_op = job->log != 0;
    const float sf = (float)job->scale;
    stage buf;
    switch (st->mode) {
    case MODE_SMALL: {
        size_t r0 = u * CLSOFTMAX__CPU_BLOCK_MAX;
        size_t g = min_size(CLSOFTMAX__CPU_BLOCK_MAX, job->outer - r0);
        stage_in(st, &buf, r0 * n, g * n);
        if (is_double)
            kern->rows_small_f64(buf.d, buf.d, g, n, job->scale, log_op);
        else
            kern->rows_small_f32(buf.f, buf.f, g, n, sf, log_op);
        stage_out(st, &buf, r0 * n, g * n);
        break;
    }
    case MODE_COLS: {
        /* no stage: the column kernel reads the storage and blends into out itself */
        size_t o = u / st->nblocks;
        size_t i0 = (u % st->nblocks) * st->block;
        size_t at = o * n * inner + i0;
        size_t w = min_size(st->block, inner - i0);
        if (is_double)
            kern->cols_staged_f64((const double*)job->in + at, (double*)job->out + at, n, inner, w,
                                  job->scale, log_op, job->alpha, st->beta, job->zero_bad);
        else
            kern->cols_staged_f32((const unsigned char*)job->in + at * elem_size(job->dtype),
                                  (unsigned char*)job->out + at * elem_size(job->dtype), n, inner,
                                  w, sf, log_op, job->dtype, st->alpha_f, st->beta_f,
                                  job->zero_bad);
        break;
    }
    default: /* MODE_ROWS */
        stage_in(st, &buf, u * n, n);
        if (is_double)
            kern->row_f64(buf.d, buf.d, n, job->scale, log_op);
        else
            kern->row_f32(buf.f, buf.f, n, sf, log_op, 0);
        stage_out(st, &buf, u * n, n);
        break;
    }
}

static void run_unit(run_state* st, size_t u)
{
    if (st->staged && (st->mode == MODE_SMALL || st->mode == MODE_ROWS || st->mode == MODE_COLS)) {
        run_unit_staged(st, u);
        return;
    }
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
            kern->row_f32(xf + u * n, yf + u * n, n, sf, log_op, 1);
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
            st->row_m[r] = merge_row(st->parts + r * nblocks, nblocks,
                                     job->dtype == CLSOFTMAX__CPU_F64, job->log != 0);
        st->mode = MODE_OUT;
        run(st, threads, pool);
    }
}

#if defined(CLSOFTMAX__CPU_HAVE_AVX2)
/* CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c"). */
static int have_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

const clsoftmax__cpu_kernels* clsoftmax__cpu_kernels_select(clsoftmax__cpu_isa isa)
{
    if (isa == CLSOFTMAX__CPU_ISA_GENERIC)
        return &clsoftmax__cpu_kernels_generic;
#if defined(CLSOFTMAX__CPU_HAVE_AVX2)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && have_f16c())
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
    const int is_double = job->dtype == CLSOFTMAX__CPU_F64;
    st.alpha_f = (float)job->alpha;
    st.beta_f = (float)job->beta;
    st.beta = is_double ? job->beta : (double)st.beta_f;
    st.staged = (job->dtype != CLSOFTMAX__CPU_F32 && !is_double) || job->zero_bad != 0 ||
                st.beta != 0.0 || (is_double ? job->alpha != 1.0 : st.alpha_f != 1.0f);
    st.chunk = STAGE_BYTES / (is_double ? sizeof(double) : sizeof(float));
    if (job->inner == 1 && job->n > (st.staged ? st.chunk : LONG_ROW)) {
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
         * Column blocks sized for L2, narrowed
         * (never below BLOCK_MIN) when there are too few to feed every
         * thread. A column's result does not depend on its block, so neither
         * does the output.
         */
        size_t esize = is_double ? sizeof(double) : sizeof(float);
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

/* ---- the bad-row check ------------------------------------------------------ */

typedef struct check_state {
    run_state rs;   /* job, kernels, chunk; stage_in for the 16-bit types */
    size_t units;   /* row groups (inner 1) or (slab, column block) pairs */
    size_t grab;    /* rows per unit (inner 1) */
    size_t nblocks; /* column blocks per slab */
    atomic_size_t next;
    atomic_size_t bad;
    atomic_size_t first;
} check_state;

/* 1 when scan flags (cpu_kernels.h) mark a bad row: NaN or +inf, or nothing but -inf */
static int flags_bad(unsigned flags) { return (flags & 1u) != 0 || (flags & 2u) == 0; }

/* The flags of contiguous elements [at, at + count) of in. */
static unsigned scan_span(const run_state* rs, size_t at, size_t count)
{
    const clsoftmax__cpu_job* job = rs->job;
    const clsoftmax__cpu_kernels* kern = rs->kern;
    const float sf = (float)job->scale;
    if (job->dtype == CLSOFTMAX__CPU_F64)
        return kern->scan_f64((const double*)job->in + at, count, job->scale);
    if (job->dtype == CLSOFTMAX__CPU_F32)
        return kern->scan_f32((const float*)job->in + at, count, sf);
    stage buf;
    unsigned flags = 0;
    for (size_t c0 = 0; c0 < count && (flags & 1u) == 0; c0 += rs->chunk) {
        size_t c = min_size(rs->chunk, count - c0);
        stage_in(rs, &buf, at + c0, c);
        flags |= kern->scan_f32(buf.f, c, sf);
    }
    return flags;
}

/* Per-column flags of w columns from (o, 0, i0), ORed into flags. */
static void scan_block(const run_state* rs, size_t at, size_t w, unsigned char* flags)
{
    const clsoftmax__cpu_job* job = rs->job;
    const clsoftmax__cpu_kernels* kern = rs->kern;
    const size_t n = job->n, inner = job->inner;
    const float sf = (float)job->scale;
    if (job->dtype == CLSOFTMAX__CPU_F64) {
        kern->scan_cols_f64((const double*)job->in + at, n, inner, w, job->scale, flags);
        return;
    }
    if (job->dtype == CLSOFTMAX__CPU_F32) {
        kern->scan_cols_f32((const float*)job->in + at, n, inner, w, sf, flags);
        return;
    }
    /* 16-bit: widen as many k rows of the block as the stage holds, then scan them */
    stage buf;
    const size_t per = rs->chunk / w;
    for (size_t k0 = 0; k0 < n; k0 += per) {
        size_t kc = min_size(per, n - k0);
        for (size_t k = 0; k < kc; k++)
            stage_in(rs, buf.f + k * w, at + (k0 + k) * inner, w);
        kern->scan_cols_f32(buf.f, kc, w, w, sf, flags);
    }
}

static void note_bad(check_state* cs, size_t bad, size_t first)
{
    if (bad == 0)
        return;
    atomic_fetch_add_explicit(&cs->bad, bad, memory_order_relaxed);
    size_t cur = atomic_load_explicit(&cs->first, memory_order_relaxed);
    while (first < cur && !atomic_compare_exchange_weak_explicit(
                              &cs->first, &cur, first, memory_order_relaxed, memory_order_relaxed))
        ;
}

static void check_task(void* arg, unsigned index, unsigned count)
{
    (void)index;
    (void)count;
    check_state* cs = arg;
    const clsoftmax__cpu_job* job = cs->rs.job;
    const size_t n = job->n, inner = job->inner;
    for (;;) {
        size_t u = atomic_fetch_add_explicit(&cs->next, 1, memory_order_relaxed);
        if (u >= cs->units)
            break;
        size_t bad = 0, first = SIZE_MAX;
        if (inner == 1) {
            size_t r1 = min_size(job->outer, (u + 1) * cs->grab);
            for (size_t r = u * cs->grab; r < r1; r++) {
                if (flags_bad(scan_span(&cs->rs, r * n, n)) && bad++ == 0)
                    first = r;
            }
        } else {
            unsigned char flags[CLSOFTMAX__CPU_BLOCK_MAX] = {0};
            size_t o = u / cs->nblocks, i0 = (u % cs->nblocks) * CLSOFTMAX__CPU_BLOCK_MAX;
            size_t w = min_size(CLSOFTMAX__CPU_BLOCK_MAX, inner - i0);
            scan_block(&cs->rs, o * n * inner + i0, w, flags);
            for (size_t i = 0; i < w; i++) {
                if (flags_bad(flags[i]) && bad++ == 0)
                    first = o * inner + i0 + i;
            }
        }
        note_bad(cs, bad, first);
    }
}

void clsoftmax__cpu_check_rows(const clsoftmax__cpu_job* job, unsigned threads,
                               clsoftmax__cpu_pool* pool, size_t* bad_rows, size_t* first_bad_row)
{
    *bad_rows = 0;
    *first_bad_row = SIZE_MAX;
    if (job == NULL || job->outer == 0 || job->n == 0 || job->inner == 0)
        return;
    const clsoftmax__cpu_kernels* kern = clsoftmax__cpu_kernels_select(job->isa);
    check_state cs = {.rs = {.job = job,
                             .kern = kern != NULL ? kern : &clsoftmax__cpu_kernels_generic,
                             .chunk = STAGE_BYTES / sizeof(float)}};
    if (job->inner == 1) {
        cs.grab = job->n >= GRAB_ELEMS ? 1 : GRAB_ELEMS / job->n;
        cs.units = (job->outer + cs.grab - 1) / cs.grab;
    } else {
        cs.nblocks = (job->inner + CLSOFTMAX__CPU_BLOCK_MAX - 1) / CLSOFTMAX__CPU_BLOCK_MAX;
        cs.units = job->outer * cs.nblocks;
    }
    atomic_init(&cs.next, 0);
    atomic_init(&cs.bad, 0);
    atomic_init(&cs.first, SIZE_MAX);
    size_t total = job->outer * job->n * job->inner;
    size_t want = threads != 0 ? threads : clsoftmax__cpu_count();
    want = min_size(min_size(want, MAX_THREADS), min_size(total / MIN_ELEMS_PER_THREAD, cs.units));
    clsoftmax__cpu_pool_run(pool, want == 0 ? 1u : (unsigned)want, check_task, &cs);
    *bad_rows = atomic_load_explicit(&cs.bad, memory_order_relaxed);
    *first_bad_row = atomic_load_explicit(&cs.first, memory_order_relaxed);
}
