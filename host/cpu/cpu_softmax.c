/* cpu_softmax.c - the CPU fallback: softmax and log-softmax over host memory with pthreads. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "cpu_softmax.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>

/*
 * t = scale * x must be rounded before t - m: a fused multiply-subtract would
 * make the max element's d differ from 0 and turn an overflowing scale * x
 * (a +inf row, hence NaN) into a finite value. GCC contracts only in GNU
 * modes or when asked (-ffp-contract=fast, with FMA in -march), clang within
 * one expression; the pragmas switch contraction off for this file whatever
 * the flags, and t gets its own statement anyway.
 */
#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__)
#error "cpu_softmax.c needs IEEE NaN and inf: build it without -ffast-math / -ffinite-math-only"
#endif

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
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
 * u is accumulated in double for both dtypes; softmax divides in double and
 * rounds once to the dtype, so float32 softmax is the correctly rounded
 * quotient of e and S up to the error of S. log1p(u) is rounded to the dtype
 * before the subtraction; d <= 0 and log1p(u) >= 0, so it never cancels.
 *
 * Special rows need no branches: a NaN or +inf makes d NaN somewhere
 * (NaN - m, inf - inf), hence u = NaN and every output NaN; an all -inf row
 * gives m = -inf and d = -inf - -inf = NaN; -inf beside finite values gives
 * e = 0 (log-softmax: -inf - finite = -inf). A row whose d is never 0 is one
 * of those, so "u + (ties - 1)" with no tie is NaN + -1, still NaN.
 *
 * Sums: float32 adds floats in double (error < n * 2^-53, far below 1e-5).
 * float64 adds contiguous rows in chunks of SUM_CHUNK plainly and the chunk
 * sums with Neumaier compensation (error about SUM_CHUNK * 2^-53 whatever n);
 * strided columns use Kahan per element, whose latency hides behind the
 * independent columns. A row is never split between threads, so results are
 * bitwise identical for every thread count and every block width.
 */

/* Below this many elements per thread, starting a thread costs more than the work. */
#define MIN_ELEMS_PER_THREAD 16384u
#define MAX_THREADS 256u
/* Columns per (o, i-block) unit when inner > 1: 1 KiB of floats per k step. */
#define BLOCK_MAX 256u
/* Narrowest block we cut to find work for every thread: one 64-byte line of floats. */
#define BLOCK_MIN 16u
#define SUM_CHUNK 64u

typedef struct share {
    const clsoftmax__cpu_job* job;
    size_t first; /* units [first, last): rows when inner == 1, else (o, i-block) */
    size_t last;
    size_t block; /* columns per unit when inner > 1 */
} share;

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/*
 * `t > m ? t : m` with m starting at -inf is fmax that skips NaN t; unlike a
 * call to fmaxf the compiler can keep it in registers.
 */
static float max_row_f32(const float* x, size_t n, float sf)
{
    float m0 = -INFINITY, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY;
    size_t k = 0;
    /* Four chains so the compare latency overlaps; max is exact, order is irrelevant. */
    for (; k + 4 <= n; k += 4) {
        float t0 = sf * x[k], t1 = sf * x[k + 1], t2 = sf * x[k + 2], t3 = sf * x[k + 3];
        m0 = t0 > m0 ? t0 : m0;
        m1 = t1 > m1 ? t1 : m1;
        m2 = t2 > m2 ? t2 : m2;
        m3 = t3 > m3 ? t3 : m3;
    }
    for (; k < n; k++) {
        float t = sf * x[k];
        m0 = t > m0 ? t : m0;
    }
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

static double max_row_f64(const double* x, size_t n, double sc)
{
    double m0 = -(double)INFINITY, m1 = m0, m2 = m0, m3 = m0;
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
        double t0 = sc * x[k], t1 = sc * x[k + 1], t2 = sc * x[k + 2], t3 = sc * x[k + 3];
        m0 = t0 > m0 ? t0 : m0;
        m1 = t1 > m1 ? t1 : m1;
        m2 = t2 > m2 ? t2 : m2;
        m3 = t3 > m3 ? t3 : m3;
    }
    for (; k < n; k++) {
        double t = sc * x[k];
        m0 = t > m0 ? t : m0;
    }
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

/*
 * One contiguous row (inner == 1). Softmax stores e in y during the sum pass
 * and divides it in place afterwards, one exp per element; log-softmax
 * re-reads x for d because y may be x.
 */
static void row_f32(const float* x, float* y, size_t n, float sf, int log_op)
{
    float m = max_row_f32(x, n, sf);
    double u = 0.0;
    size_t ties = 0; /* elements with d == 0 */
    for (size_t k = 0; k < n; k++) {
        float t = sf * x[k];
        float d = t - m;
        float e = expf(d);
        if (!log_op)
            y[k] = e;
        ties += d == 0.0f;
        u += d == 0.0f ? 0.0 : (double)e;
    }
    u += (double)ties - 1.0;
    if (log_op) {
        float lse = (float)log1p(u);
        for (size_t k = 0; k < n; k++) {
            float t = sf * x[k];
            y[k] = (t - m) - lse;
        }
    } else {
        double sum = 1.0 + u;
        for (size_t k = 0; k < n; k++)
            y[k] = (float)((double)y[k] / sum);
    }
}

static void row_f64(const double* x, double* y, size_t n, double sc, int log_op)
{
    double m = max_row_f64(x, n, sc);
    double u = 0.0, c = 0.0; /* Neumaier: c gathers what u lost */
    size_t ties = 0;
    for (size_t k0 = 0; k0 < n; k0 += SUM_CHUNK) {
        size_t k1 = min_size(n, k0 + SUM_CHUNK);
        double p = 0.0;
        for (size_t k = k0; k < k1; k++) {
            double t = sc * x[k];
            double d = t - m;
            double e = exp(d);
            if (!log_op)
                y[k] = e;
            ties += d == 0.0;
            p += d == 0.0 ? 0.0 : e;
        }
        double sum = u + p;
        c += fabs(u) >= fabs(p) ? (u - sum) + p : (p - sum) + u;
        u = sum;
    }
    u = (u + c) + ((double)ties - 1.0);
    if (log_op) {
        double lse = log1p(u);
        for (size_t k = 0; k < n; k++) {
            double t = sc * x[k];
            y[k] = (t - m) - lse;
        }
    } else {
        double sum = 1.0 + u;
        for (size_t k = 0; k < n; k++)
            y[k] = y[k] / sum;
    }
}

/*
 * Columns [i0, i0 + w) of slab o (inner > 1): for each k the w elements are
 * contiguous, so each pass walks k outside and the columns inside, keeping a
 * running max and sum per column. Never a transpose, never one column at a
 * time down a large stride.
 */
static void cols_f32(const float* x, float* y, size_t n, size_t inner, size_t w, float sf,
                     int log_op)
{
    float m[BLOCK_MAX];
    double u[BLOCK_MAX];
    size_t ties[BLOCK_MAX];
    for (size_t j = 0; j < w; j++) {
        m[j] = -INFINITY;
        u[j] = 0.0;
        ties[j] = 0;
    }
    for (size_t k = 0; k < n; k++) {
        const float* xk = x + k * inner;
        for (size_t j = 0; j < w; j++) {
            float t = sf * xk[j];
            m[j] = t > m[j] ? t : m[j];
        }
    }
    for (size_t k = 0; k < n; k++) {
        const float* xk = x + k * inner;
        float* yk = y + k * inner;
        for (size_t j = 0; j < w; j++) {
            float t = sf * xk[j];
            float d = t - m[j];
            float e = expf(d);
            if (!log_op)
                yk[j] = e;
            ties[j] += d == 0.0f;
            u[j] += d == 0.0f ? 0.0 : (double)e;
        }
    }
    for (size_t j = 0; j < w; j++)
        u[j] += (double)ties[j] - 1.0;
    if (log_op) {
        float lse[BLOCK_MAX];
        for (size_t j = 0; j < w; j++)
            lse[j] = (float)log1p(u[j]);
        for (size_t k = 0; k < n; k++) {
            const float* xk = x + k * inner;
            float* yk = y + k * inner;
            for (size_t j = 0; j < w; j++) {
                float t = sf * xk[j];
                yk[j] = (t - m[j]) - lse[j];
            }
        }
    } else {
        for (size_t j = 0; j < w; j++)
            u[j] += 1.0;
        for (size_t k = 0; k < n; k++) {
            float* yk = y + k * inner;
            for (size_t j = 0; j < w; j++)
                yk[j] = (float)((double)yk[j] / u[j]);
        }
    }
}

static void cols_f64(const double* x, double* y, size_t n, size_t inner, size_t w, double sc,
                     int log_op)
{
    double m[BLOCK_MAX];
    double u[BLOCK_MAX];
    double c[BLOCK_MAX]; /* Kahan compensation per column */
    size_t ties[BLOCK_MAX];
    for (size_t j = 0; j < w; j++) {
        m[j] = -(double)INFINITY;
        u[j] = 0.0;
        c[j] = 0.0;
        ties[j] = 0;
    }
    for (size_t k = 0; k < n; k++) {
        const double* xk = x + k * inner;
        for (size_t j = 0; j < w; j++) {
            double t = sc * xk[j];
            m[j] = t > m[j] ? t : m[j];
        }
    }
    for (size_t k = 0; k < n; k++) {
        const double* xk = x + k * inner;
        double* yk = y + k * inner;
        for (size_t j = 0; j < w; j++) {
            double t = sc * xk[j];
            double d = t - m[j];
            double e = exp(d);
            if (!log_op)
                yk[j] = e;
            ties[j] += d == 0.0;
            /* Terms are in [0, 1] or NaN, so Kahan never meets inf - inf. */
            double v = (d == 0.0 ? 0.0 : e) - c[j];
            double sum = u[j] + v;
            c[j] = (sum - u[j]) - v;
            u[j] = sum;
        }
    }
    for (size_t j = 0; j < w; j++)
        u[j] += (double)ties[j] - 1.0;
    if (log_op) {
        for (size_t j = 0; j < w; j++)
            u[j] = log1p(u[j]);
        for (size_t k = 0; k < n; k++) {
            const double* xk = x + k * inner;
            double* yk = y + k * inner;
            for (size_t j = 0; j < w; j++) {
                double t = sc * xk[j];
                yk[j] = (t - m[j]) - u[j];
            }
        }
    } else {
        for (size_t j = 0; j < w; j++)
            u[j] += 1.0;
        for (size_t k = 0; k < n; k++) {
            double* yk = y + k * inner;
            for (size_t j = 0; j < w; j++)
                yk[j] = yk[j] / u[j];
        }
    }
}

static void run_share(const share* sh)
{
    const clsoftmax__cpu_job* job = sh->job;
    size_t n = job->n, inner = job->inner;
    int log_op = job->log != 0;
    size_t nblocks = inner == 1 ? 1 : (inner + sh->block - 1) / sh->block;
    for (size_t u = sh->first; u < sh->last; u++) {
        size_t o = u / nblocks;
        size_t i0 = (u % nblocks) * sh->block;
        size_t at = o * n * inner + i0; /* element (o, 0, i0) */
        if (job->is_double) {
            const double* x = (const double*)job->in + at;
            double* y = (double*)job->out + at;
            if (inner == 1)
                row_f64(x, y, n, job->scale, log_op);
            else
                cols_f64(x, y, n, inner, min_size(sh->block, inner - i0), job->scale, log_op);
        } else {
            const float* x = (const float*)job->in + at;
            float* y = (float*)job->out + at;
            float sf = (float)job->scale;
            if (inner == 1)
                row_f32(x, y, n, sf, log_op);
            else
                cols_f32(x, y, n, inner, min_size(sh->block, inner - i0), sf, log_op);
        }
    }
}

static void* share_main(void* arg)
{
    run_share((const share*)arg);
    return NULL;
}

unsigned clsoftmax__cpu_count(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        return 1;
    return cores > (long)UINT_MAX ? UINT_MAX : (unsigned)cores;
}

void clsoftmax__cpu_softmax(const clsoftmax__cpu_job* job, unsigned threads)
{
    if (job == NULL || job->outer == 0 || job->n == 0 || job->inner == 0)
        return;
    size_t total = job->outer * job->n * job->inner; /* validated against overflow */
    size_t want = threads != 0 ? threads : clsoftmax__cpu_count();
    want = min_size(want, MAX_THREADS);
    want = min_size(want, total / MIN_ELEMS_PER_THREAD);

    /*
     * Column blocks of BLOCK_MAX, narrowed (never below BLOCK_MIN) when there
     * are too few slabs to feed every thread. Each column's reduction runs in
     * the same order whatever the block width, so the width cannot change the
     * results.
     */
    size_t block = 1, units = job->outer;
    if (job->inner > 1) {
        block = BLOCK_MAX;
        if (want > 1 && job->outer < want) {
            size_t per_slab = (want + job->outer - 1) / job->outer;
            size_t b = (job->inner + per_slab - 1) / per_slab;
            b = (b + BLOCK_MIN - 1) / BLOCK_MIN * BLOCK_MIN;
            block = b < BLOCK_MIN ? BLOCK_MIN : (b > BLOCK_MAX ? BLOCK_MAX : b);
        }
        units = job->outer * ((job->inner + block - 1) / block);
    }
    want = min_size(want, units);

    if (want <= 1) {
        share all = {job, 0, units, block};
        run_share(&all);
        return;
    }

    share shares[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    unsigned char started[MAX_THREADS];
    size_t base = units / want, extra = units % want, next = 0;
    for (size_t t = 0; t < want; t++) {
        size_t count = base + (t < extra ? 1 : 0);
        shares[t] = (share){job, next, next + count, block};
        next += count;
    }
    for (size_t t = 1; t < want; t++)
        started[t] = pthread_create(&tids[t], NULL, share_main, &shares[t]) == 0;
    run_share(&shares[0]);
    /* A share whose thread did not start runs here, so the call always completes. */
    for (size_t t = 1; t < want; t++) {
        if (!started[t])
            run_share(&shares[t]);
    }
    for (size_t t = 1; t < want; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
    }
}
