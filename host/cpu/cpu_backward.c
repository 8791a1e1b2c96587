/* cpu_backward.c - the CPU backend's softmax and log-softmax gradient: rows or column blocks.
 *
 * Numerics. Per row (the axis), with S the row's sum:
 *   softmax      S = sum_k dy_k * y_k,  g_k = scale * (y_k * (dy_k - S))
 *   log-softmax  S = sum_k dy_k,        g_k = scale * (dy_k - exp(y_k) * S)
 *   dx_k = alpha * g_k + beta * dx_k   (beta == 0: dx is never read)
 * The dtypes computed in float (float32, float16, bfloat16) are read into float and then
 * widened to double, where a product of two floats is exact: S is summed in double (eight
 * lanes, k mod 8, added pairwise at the end) and each dx_k is computed in double as
 * (alpha * scale) * (y_k * (dy_k - S)) and rounded to float (then, for the 16-bit types, to
 * nearest even in 16 bits: the first rounding moves a value onto a 16-bit tie only when it
 * lay within 2^-24 of it, so the result stays within one 16-bit ulp of the exact value). That
 * is at least as accurate as the float arithmetic the header promises; the one loss left is
 * the inherent one of dy_k - S when the two nearly cancel. scale, alpha and beta are rounded
 * to float first, as the kernels take them (alpha * scale of two floats is exact in double).
 * float64 sums with eight Kahan-compensated lanes merged in a fixed order, so S is accurate
 * to a few ulp of sum |term| whatever n. exp(y_k) is the polynomial of cpu_kernels.inc
 * (<= 1 ulp), vectorised, over blocks of BLOCK elements.
 *
 * Work: contiguous rows (inner == 1) go whole to one thread, a shared counter handing out
 * groups of rows; for inner > 1 a unit is a block of up to BLOCK neighbouring columns of one
 * outer slice, summed side by side so that every load at a step k is contiguous. A row's
 * result depends on nothing but the row, so the output is the same for every thread count.
 * Built without -ffast-math: a NaN in y or dy makes S and its row NaN, as in the kernels.
 */
#include "cpu_backward.h"

#include "cpu_softmax.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__)
#error "the CPU backend needs IEEE NaN and inf: build it without -ffast-math / -ffinite-math-only"
#endif

/* Below this many elements per thread, waking a worker costs more than the work. */
#define MIN_ELEMS_PER_THREAD 16384u
#define MAX_THREADS 256u
/* Elements a thread takes at a time from the shared counter. */
#define GRAB_ELEMS 32768u
/* Elements per block of the write pass, and columns per unit (inner > 1): a few KiB, in L1. */
#define BLOCK 256u
/* Independent partial sums per row: the additions need not wait for one another. */
#define LANES 8u

typedef struct bw_state {
    const clsoftmax__cpu_backward_job* job;
    const clsoftmax__cpu_kernels* kern;
    double coef;  /* float-computed dtypes: alpha * scale, both rounded to float (exact product) */
    double beta;  /* rounded to float for those dtypes */
    size_t units; /* rows, or (slice, column block) pairs */
    size_t grab;  /* units taken at a time */
    size_t nblocks;
    atomic_size_t next;
} bw_state;

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- the dtypes computed in float ------------------------------------------------------ */

/*
 * m elements of p from element at as floats (exact): float32 in place, the others into buf,
 * through the kernel table's conversions (F16C where the CPU has it; the same bits).
 */
static const float* load_f(const clsoftmax__cpu_kernels* kern, int dtype, const void* p, size_t at,
                           float* buf, size_t m)
{
    if (dtype == CLSOFTMAX__CPU_F16)
        kern->load_f16((const uint16_t*)p + at, buf, m);
    else if (dtype == CLSOFTMAX__CPU_BF16)
        kern->load_bf16((const uint16_t*)p + at, buf, m);
    else
        return (const float*)p + at;
    return buf;
}

/*
 * The write pass over m elements from element at (stepping 1), element i's S in sums[i]. dx
 * may be y or dy (in place): each element is read before it is written, by the same loop step.
 */
static void write_f(const bw_state* st, size_t at, size_t m, const double* sums)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const int dtype = job->dtype;
    float yb[BLOCK], dyb[BLOCK], oldb[BLOCK], e[BLOCK], outb[BLOCK];
    const float* y = load_f(st->kern, dtype, job->y, at, yb, m);
    const float* dy = load_f(st->kern, dtype, job->dy, at, dyb, m);
    const float* old = st->beta != 0.0 ? load_f(st->kern, dtype, job->dx, at, oldb, m) : NULL;
    float* out = dtype == CLSOFTMAX__CPU_F32 ? (float*)job->dx + at : outb;
    const double c = st->coef, b = st->beta;
    if (job->log)
        st->kern->exp_f32(y, e, m);
    /* one loop per case, free of branches, so that the compiler vectorises it */
    if (job->log && old == NULL) {
        for (size_t i = 0; i < m; i++)
            out[i] = (float)(c * ((double)dy[i] - (double)e[i] * sums[i]));
    } else if (job->log) {
        for (size_t i = 0; i < m; i++)
            out[i] = (float)(c * ((double)dy[i] - (double)e[i] * sums[i]) + b * (double)old[i]);
    } else if (old == NULL) {
        for (size_t i = 0; i < m; i++)
            out[i] = (float)(c * ((double)y[i] * ((double)dy[i] - sums[i])));
    } else {
        for (size_t i = 0; i < m; i++)
            out[i] = (float)(c * ((double)y[i] * ((double)dy[i] - sums[i])) + b * (double)old[i]);
    }
    if (dtype == CLSOFTMAX__CPU_F16)
        st->kern->store_f16(outb, (uint16_t*)job->dx + at, m);
    else if (dtype == CLSOFTMAX__CPU_BF16)
        st->kern->store_bf16(outb, (uint16_t*)job->dx + at, m);
}

static void row_f(const bw_state* st, size_t r)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const size_t n = job->n, at = r * n;
    double s[LANES] = {0};
    float yb[BLOCK], dyb[BLOCK];
    for (size_t k0 = 0; k0 < n; k0 += BLOCK) {
        const size_t m = min_size(BLOCK, n - k0);
        const float* y = load_f(st->kern, job->dtype, job->y, at + k0, yb, m);
        const float* dy = load_f(st->kern, job->dtype, job->dy, at + k0, dyb, m);
        /* m is a multiple of LANES except in the last block: lanes stay k mod LANES */
        size_t i = 0;
        if (job->log) {
            for (; i + LANES <= m; i += LANES)
                for (size_t l = 0; l < LANES; l++)
                    s[l] += (double)dy[i + l];
            for (; i < m; i++)
                s[i % LANES] += (double)dy[i];
        } else {
            for (; i + LANES <= m; i += LANES)
                for (size_t l = 0; l < LANES; l++)
                    s[l] += (double)dy[i + l] * (double)y[i + l];
            for (; i < m; i++)
                s[i % LANES] += (double)dy[i] * (double)y[i];
        }
    }
    const double sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    double sums[BLOCK];
    for (size_t i = 0; i < BLOCK; i++)
        sums[i] = sum;
    for (size_t k0 = 0; k0 < n; k0 += BLOCK)
        write_f(st, at + k0, min_size(BLOCK, n - k0), sums);
}

static void cols_f(const bw_state* st, size_t o, size_t i0, size_t w)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const size_t n = job->n, inner = job->inner;
    const size_t base = o * n * inner + i0;
    double s[BLOCK];
    float yb[BLOCK], dyb[BLOCK];
    for (size_t i = 0; i < w; i++)
        s[i] = 0.0;
    for (size_t k = 0; k < n; k++) {
        const float* y = load_f(st->kern, job->dtype, job->y, base + k * inner, yb, w);
        const float* dy = load_f(st->kern, job->dtype, job->dy, base + k * inner, dyb, w);
        for (size_t i = 0; i < w; i++)
            s[i] += job->log ? (double)dy[i] : (double)dy[i] * (double)y[i];
    }
    for (size_t k = 0; k < n; k++)
        write_f(st, base + k * inner, w, s);
}

/* ---- float64 ------------------------------------------------------------------------------ */

static void kahan(double* s, double* c, double v)
{
    const double yv = v - *c;
    const double t = *s + yv;
    *c = (t - *s) - yv;
    *s = t;
}

static void write_d(const bw_state* st, size_t at, size_t m, const double* sums)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const double* y = (const double*)job->y + at;
    const double* dy = (const double*)job->dy + at;
    double* dx = (double*)job->dx + at;
    double e[BLOCK];
    if (job->log)
        st->kern->exp_f64(y, e, m);
    for (size_t i = 0; i < m; i++) {
        const double g = job->log ? job->scale * (dy[i] - e[i] * sums[i])
                                  : job->scale * (y[i] * (dy[i] - sums[i]));
        double v = job->alpha * g;
        if (st->beta != 0.0)
            v += st->beta * dx[i];
        dx[i] = v;
    }
}

static void row_d(const bw_state* st, size_t r)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const size_t n = job->n, at = r * n;
    const double* y = (const double*)job->y + at;
    const double* dy = (const double*)job->dy + at;
    double s[LANES] = {0}, c[LANES] = {0};
    size_t k = 0;
    for (; k + LANES <= n; k += LANES)
        for (size_t l = 0; l < LANES; l++)
            kahan(&s[l], &c[l], job->log ? dy[k + l] : dy[k + l] * y[k + l]);
    for (; k < n; k++)
        kahan(&s[k % LANES], &c[k % LANES], job->log ? dy[k] : dy[k] * y[k]);
    double sum = 0.0, comp = 0.0;
    for (size_t l = 0; l < LANES; l++) {
        kahan(&sum, &comp, s[l]);
        kahan(&sum, &comp, -c[l]);
    }
    double sums[BLOCK];
    for (size_t i = 0; i < BLOCK; i++)
        sums[i] = sum;
    for (size_t k0 = 0; k0 < n; k0 += BLOCK)
        write_d(st, at + k0, min_size(BLOCK, n - k0), sums);
}

static void cols_d(const bw_state* st, size_t o, size_t i0, size_t w)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const size_t n = job->n, inner = job->inner;
    const size_t base = o * n * inner + i0;
    const double* y = (const double*)job->y + base;
    const double* dy = (const double*)job->dy + base;
    double s[BLOCK], c[BLOCK];
    for (size_t i = 0; i < w; i++)
        s[i] = c[i] = 0.0;
    for (size_t k = 0; k < n; k++) {
        const size_t at = k * inner;
        for (size_t i = 0; i < w; i++)
            kahan(&s[i], &c[i], job->log ? dy[at + i] : dy[at + i] * y[at + i]);
    }
    for (size_t i = 0; i < w; i++)
        s[i] -= c[i];
    for (size_t k = 0; k < n; k++)
        write_d(st, base + k * inner, w, s);
}

/* ---- scheduling ------------------------------------------------------------------------- */

static void run_unit(const bw_state* st, size_t u)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const int is_double = job->dtype == CLSOFTMAX__CPU_F64;
    if (job->inner == 1) {
        if (is_double)
            row_d(st, u);
        else
            row_f(st, u);
        return;
    }
    const size_t o = u / st->nblocks;
    const size_t i0 = (u % st->nblocks) * BLOCK;
    const size_t w = min_size(BLOCK, job->inner - i0);
    if (is_double)
        cols_d(st, o, i0, w);
    else
        cols_f(st, o, i0, w);
}

static void run_task(void* arg, unsigned index, unsigned count)
{
    (void)index;
    (void)count;
    bw_state* st = arg;
    /* A shared counter rather than fixed shares: the machine is shared, threads stall. */
    for (;;) {
        const size_t u0 = atomic_fetch_add_explicit(&st->next, st->grab, memory_order_relaxed);
        if (u0 >= st->units)
            break;
        const size_t u1 = min_size(st->units, u0 + st->grab);
        for (size_t u = u0; u < u1; u++)
            run_unit(st, u);
    }
}

void clsoftmax__cpu_backward(const clsoftmax__cpu_backward_job* job, unsigned threads,
                             clsoftmax__cpu_pool* pool)
{
    if (job == NULL || job->outer == 0 || job->n == 0 || job->inner == 0)
        return;
    const int in_float = job->dtype != CLSOFTMAX__CPU_F64;
    bw_state st = {
        .job = job,
        .kern = clsoftmax__cpu_kernels_select(CLSOFTMAX__CPU_ISA_AUTO),
        .coef = in_float ? (double)(float)job->alpha * (double)(float)job->scale : 0.0,
        .beta = in_float ? (double)(float)job->beta : job->beta,
    };
    if (job->inner == 1) {
        st.units = job->outer;
        st.nblocks = 1;
        st.grab = job->n >= GRAB_ELEMS ? 1 : GRAB_ELEMS / job->n;
    } else {
        st.nblocks = (job->inner + BLOCK - 1) / BLOCK;
        st.units = job->outer * st.nblocks;
        const size_t per_unit = job->n * min_size(BLOCK, job->inner);
        st.grab = per_unit >= GRAB_ELEMS ? 1 : GRAB_ELEMS / per_unit;
    }
    atomic_init(&st.next, 0);
    const size_t total = job->outer * job->n * job->inner; /* validated against overflow */
    size_t want = threads != 0 ? threads : clsoftmax__cpu_count();
    want = min_size(want, MAX_THREADS);
    want = min_size(want, total / MIN_ELEMS_PER_THREAD);
    want = min_size(want, (st.units + st.grab - 1) / st.grab);
    if (want == 0)
        want = 1;
    clsoftmax__cpu_pool_run(pool, (unsigned)want, run_task, &st);
}
