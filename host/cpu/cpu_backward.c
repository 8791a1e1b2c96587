/* cpu_backward.c - the CPU backend's softmax and log-softmax gradient: rows or column blocks.
 *
 * Numerics. Per row (the axis), with S the row's sum:
 *   softmax      S = sum_k dy_k * y_k,  g_k = scale * (y_k * (dy_k - S))
 *   log-softmax  S = sum_k dy_k,        g_k = scale * (dy_k - exp(y_k) * S)
 *   dx_k = alpha * g_k + beta * dx_k   (beta == 0: dx is never read)
 * For the dtypes computed in float (float32, float16, bfloat16) the elements are widened to
 * double, where products of two floats are exact, S is summed, and each dx_k is computed and
 * rounded once to the dtype: the result is at least as accurate as the float arithmetic the
 * header promises, and the one loss left is the inherent one of dy_k - S when they nearly
 * cancel. exp(y_k) is expf in float (a double exp per element would cost more than the memory
 * traffic). scale, alpha and beta are first rounded to float, as the kernels take them.
 * float64 sums with four Kahan-compensated accumulators (k mod 4) merged in a fixed order, so
 * S is accurate to a few ulp of sum |term| whatever n.
 *
 * Work: contiguous rows (inner == 1) go whole to one thread, a shared counter handing out
 * groups of rows; for inner > 1 a unit is a block of BLOCK_COLS neighbouring columns of one
 * outer slice, summed side by side so that every load of a step k is contiguous. A row's
 * result depends on nothing but the row, so the output is the same for every thread count.
 * Built without -ffast-math (NaN and inf propagate as IEEE says: a NaN in y or dy makes S and
 * the row NaN, as the OpenCL kernels do).
 */
#include "cpu_backward.h"

#include "cpu_softmax.h"
#include "half_convert.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__)
#error "the CPU backend needs IEEE NaN and inf: build it without -ffast-math / -ffinite-math-only"
#endif

/* Below this many elements per thread, waking a worker costs more than the work. */
#define MIN_ELEMS_PER_THREAD 16384u
#define MAX_THREADS 256u
/* Elements a thread takes at a time from the shared counter (rows). */
#define GRAB_ELEMS 32768u
/* Neighbouring columns summed together (inner > 1): 64 doubles of sums stay in L1. */
#define BLOCK_COLS 64u

typedef struct bw_state {
    const clsoftmax__cpu_backward_job* job;
    float scale_f, alpha_f, beta_f;
    size_t units; /* rows, or (slice, column block) pairs */
    size_t grab;  /* units taken at a time */
    size_t nblocks;
    atomic_size_t next;
} bw_state;

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- the dtypes computed in float ------------------------------------------------------ */

/*
 * One element of dx from double y, dy and S, rounded to the dtype by the caller's store.
 * old is read only when beta != 0.
 */
static double value_f(double yk, double dyk, double sum, const bw_state* st, int log_op,
                      double old)
{
    const double g = log_op ? (double)st->scale_f * (dyk - (double)expf((float)yk) * sum)
                            : (double)st->scale_f * (yk * (dyk - sum));
    double v = (double)st->alpha_f * g;
    if (st->beta_f != 0.0f)
        v += (double)st->beta_f * old;
    return v;
}

/*
 * Row and column-block functions per storage type: T the element, LD widens element i of p to
 * double, ST stores a double into element i (rounded once to the dtype).
 */
#define DEFINE_FLOAT_PATHS(SUFFIX, T, LD, ST)                                                      \
    static void row_##SUFFIX(const bw_state* st, size_t r)                                         \
    {                                                                                              \
        const clsoftmax__cpu_backward_job* job = st->job;                                          \
        const size_t n = job->n;                                                                   \
        const T* y = (const T*)job->y + r * n;                                                     \
        const T* dy = (const T*)job->dy + r * n;                                                   \
        T* dx = (T*)job->dx + r * n;                                                               \
        const int log_op = job->log;                                                               \
        /* four sums side by side: the additions need not wait for one another */                \
        double s[4] = {0, 0, 0, 0};                                                                \
        size_t k = 0;                                                                              \
        for (; k + 4 <= n; k += 4)                                                                 \
            for (size_t l = 0; l < 4; l++)                                                         \
                s[l] += log_op ? LD(dy, k + l) : LD(dy, k + l) * LD(y, k + l);                     \
        for (; k < n; k++)                                                                         \
            s[0] += log_op ? LD(dy, k) : LD(dy, k) * LD(y, k);                                     \
        const double sum = (s[0] + s[1]) + (s[2] + s[3]);                                          \
        for (k = 0; k < n; k++) {                                                                  \
            const double old = st->beta_f != 0.0f ? LD(dx, k) : 0.0;                               \
            const double v = value_f(LD(y, k), LD(dy, k), sum, st, log_op, old);                   \
            ST(dx, k, v);                                                                          \
        }                                                                                          \
    }                                                                                              \
    static void cols_##SUFFIX(const bw_state* st, size_t o, size_t i0, size_t w)                   \
    {                                                                                              \
        const clsoftmax__cpu_backward_job* job = st->job;                                          \
        const size_t n = job->n, inner = job->inner;                                               \
        const size_t base = o * n * inner + i0;                                                    \
        const T* y = (const T*)job->y + base;                                                      \
        const T* dy = (const T*)job->dy + base;                                                    \
        T* dx = (T*)job->dx + base;                                                                \
        const int log_op = job->log;                                                               \
        double s[BLOCK_COLS];                                                                      \
        for (size_t i = 0; i < w; i++)                                                             \
            s[i] = 0.0;                                                                            \
        for (size_t k = 0; k < n; k++) {                                                           \
            const size_t at = k * inner;                                                           \
            for (size_t i = 0; i < w; i++)                                                         \
                s[i] += log_op ? LD(dy, at + i) : LD(dy, at + i) * LD(y, at + i);                  \
        }                                                                                          \
        for (size_t k = 0; k < n; k++) {                                                           \
            const size_t at = k * inner;                                                           \
            for (size_t i = 0; i < w; i++) {                                                       \
                const double old = st->beta_f != 0.0f ? LD(dx, at + i) : 0.0;                     \
                const double v = value_f(LD(y, at + i), LD(dy, at + i), s[i], st, log_op, old);    \
                ST(dx, at + i, v);                                                                 \
            }                                                                                      \
        }                                                                                          \
    }

#define LD_F32(p, i) ((double)(p)[i])
#define ST_F32(p, i, v) ((p)[i] = (float)(v))
/* double to float to 16 bits: the first rounding can move a value onto a 16-bit tie only when
   it lay within 2^-24 of it, so the result stays within one 16-bit ulp of the exact value */
#define LD_F16(p, i) ((double)clsoftmax__f16_to_f32((p)[i]))
#define ST_F16(p, i, v) ((p)[i] = clsoftmax__f32_to_f16((float)(v)))
#define LD_BF16(p, i) ((double)clsoftmax__bf16_to_f32((p)[i]))
#define ST_BF16(p, i, v) ((p)[i] = clsoftmax__f32_to_bf16((float)(v)))

DEFINE_FLOAT_PATHS(f32, float, LD_F32, ST_F32)
DEFINE_FLOAT_PATHS(f16, uint16_t, LD_F16, ST_F16)
DEFINE_FLOAT_PATHS(bf16, uint16_t, LD_BF16, ST_BF16)

/* ---- float64 ------------------------------------------------------------------------------ */

static void kahan(double* s, double* c, double v)
{
    const double yv = v - *c;
    const double t = *s + yv;
    *c = (t - *s) - yv;
    *s = t;
}

static double value_d(const clsoftmax__cpu_backward_job* job, double yk, double dyk, double sum,
                      double old)
{
    const double g = job->log ? job->scale * (dyk - exp(yk) * sum) : job->scale * (yk * (dyk - sum));
    double v = job->alpha * g;
    if (job->beta != 0.0)
        v += job->beta * old;
    return v;
}

static void row_f64(const bw_state* st, size_t r)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const size_t n = job->n;
    const double* y = (const double*)job->y + r * n;
    const double* dy = (const double*)job->dy + r * n;
    double* dx = (double*)job->dx + r * n;
    const int log_op = job->log;
    double s[4] = {0, 0, 0, 0}, c[4] = {0, 0, 0, 0};
    size_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (size_t l = 0; l < 4; l++)
            kahan(&s[l], &c[l], log_op ? dy[k + l] : dy[k + l] * y[k + l]);
    for (; k < n; k++)
        kahan(&s[0], &c[0], log_op ? dy[k] : dy[k] * y[k]);
    double sum = 0.0, comp = 0.0;
    for (size_t l = 0; l < 4; l++) {
        kahan(&sum, &comp, s[l]);
        kahan(&sum, &comp, -c[l]);
    }
    for (k = 0; k < n; k++)
        dx[k] = value_d(job, y[k], dy[k], sum, job->beta != 0.0 ? dx[k] : 0.0);
}

static void cols_f64(const bw_state* st, size_t o, size_t i0, size_t w)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    const size_t n = job->n, inner = job->inner;
    const size_t base = o * n * inner + i0;
    const double* y = (const double*)job->y + base;
    const double* dy = (const double*)job->dy + base;
    double* dx = (double*)job->dx + base;
    const int log_op = job->log;
    double s[BLOCK_COLS], c[BLOCK_COLS];
    for (size_t i = 0; i < w; i++)
        s[i] = c[i] = 0.0;
    for (size_t k = 0; k < n; k++) {
        const size_t at = k * inner;
        for (size_t i = 0; i < w; i++)
            kahan(&s[i], &c[i], log_op ? dy[at + i] : dy[at + i] * y[at + i]);
    }
    for (size_t k = 0; k < n; k++) {
        const size_t at = k * inner;
        for (size_t i = 0; i < w; i++)
            dx[at + i] = value_d(job, y[at + i], dy[at + i], s[i] - c[i],
                                 job->beta != 0.0 ? dx[at + i] : 0.0);
    }
}

/* ---- scheduling ------------------------------------------------------------------------- */

static void run_unit(const bw_state* st, size_t u)
{
    const clsoftmax__cpu_backward_job* job = st->job;
    if (job->inner == 1) {
        switch (job->dtype) {
        case CLSOFTMAX__CPU_F64:
            row_f64(st, u);
            break;
        case CLSOFTMAX__CPU_F16:
            row_f16(st, u);
            break;
        case CLSOFTMAX__CPU_BF16:
            row_bf16(st, u);
            break;
        default:
            row_f32(st, u);
            break;
        }
        return;
    }
    const size_t o = u / st->nblocks;
    const size_t i0 = (u % st->nblocks) * BLOCK_COLS;
    const size_t w = min_size(BLOCK_COLS, job->inner - i0);
    switch (job->dtype) {
    case CLSOFTMAX__CPU_F64:
        cols_f64(st, o, i0, w);
        break;
    case CLSOFTMAX__CPU_F16:
        cols_f16(st, o, i0, w);
        break;
    case CLSOFTMAX__CPU_BF16:
        cols_bf16(st, o, i0, w);
        break;
    default:
        cols_f32(st, o, i0, w);
        break;
    }
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
    bw_state st = {.job = job,
                   .scale_f = (float)job->scale,
                   .alpha_f = (float)job->alpha,
                   .beta_f = (float)job->beta};
    if (job->inner == 1) {
        st.units = job->outer;
        st.grab = job->n >= GRAB_ELEMS ? 1 : GRAB_ELEMS / job->n;
        st.nblocks = 1;
    } else {
        st.nblocks = (job->inner + BLOCK_COLS - 1) / BLOCK_COLS;
        st.units = job->outer * st.nblocks;
        const size_t per_unit = job->n * BLOCK_COLS;
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
