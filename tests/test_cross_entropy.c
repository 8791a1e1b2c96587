/* test_cross_entropy.c - the fused softmax cross-entropy against a long double reference.
 *
 * Suites "xent_cpu" and "xent_opencl" run the same cases on each backend; the OpenCL suite
 * adds the device-buffer entry point. The reference is written here from the header's
 * definition (log-sum-exp, label weights, smoothing, PyTorch's MEAN divisor) in long double,
 * from the exact input values; 16-bit values are decoded here too, not by the library.
 *
 * Accuracy bounds, with the worst errors measured on both backends (XENT_REPORT=1 prints them):
 *   FLOAT64  |got - ref| <= 1e-12 * (|ref| + s)       measured 3.2e-16 (loss), 1.5e-16 (grad)
 *   FLOAT32  |got - ref| <= 1e-5 * (|ref| + s)        measured 2.3e-7 (loss), 1.5e-7 (grad)
 *   16-bit   within 1 ulp of the reference rounded to the type; gradient entries below s / 1024
 *            (p * A - a cancelling) within 1 ulp of s / 1024
 *            measured: float16 1 ulp (loss and grad), bfloat16 0 ulp (loss), 0.5 (grad)
 * s is 0 for the loss (purely relative) and, for a gradient row, the row's label weight mass A
 * (divided as the row is): its entries are p * A - a, so their float error is about
 * ulp(1) * A whatever their own size.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/half_convert.h"
#include "test_suites.h"
#include "test_util.h"

#define XENT_RTOL_F64 1e-12
#define XENT_RTOL_F32 1e-5
#define XENT_ULPS_16 1
/* 16-bit entries below their row's scale / 64 are held to 1 ulp of scale / 64 (see above). */
#define XENT_FLOOR_16 (1.0L / 1024)

static const clsoftmax_dtype all_dtypes[] = {CLSOFTMAX_FLOAT32, CLSOFTMAX_FLOAT64,
                                             CLSOFTMAX_FLOAT16, CLSOFTMAX_BFLOAT16};

/* Worst errors seen, per dtype (relative for 32/64-bit, ulps for 16-bit), for the report. */
static double worst_loss[4], worst_grad[4];

/* ---- elements ---------------------------------------------------------------------------- */

static size_t esize(clsoftmax_dtype dt)
{
    return dt == CLSOFTMAX_FLOAT64 ? 8 : dt == CLSOFTMAX_FLOAT32 ? 4 : 2;
}

/* binary16 decoded from its fields, independently of the library */
static long double f16_value(uint16_t h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    long double v;
    if (e == 0)
        v = ldexpl((long double)m, -24);
    else if (e == 31)
        v = m != 0 ? (long double)NAN : (long double)INFINITY;
    else
        v = ldexpl((long double)(m + 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}

static long double bf16_value(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static long double xget(const void* p, clsoftmax_dtype dt, size_t i)
{
    switch (dt) {
    case CLSOFTMAX_FLOAT64:
        return ((const double*)p)[i];
    case CLSOFTMAX_FLOAT32:
        return ((const float*)p)[i];
    case CLSOFTMAX_FLOAT16:
        return f16_value(((const uint16_t*)p)[i]);
    default:
        return bf16_value(((const uint16_t*)p)[i]);
    }
}

static void xset(void* p, clsoftmax_dtype dt, size_t i, double v)
{
    switch (dt) {
    case CLSOFTMAX_FLOAT64:
        ((double*)p)[i] = v;
        break;
    case CLSOFTMAX_FLOAT32:
        ((float*)p)[i] = (float)v;
        break;
    case CLSOFTMAX_FLOAT16:
        ((uint16_t*)p)[i] = clsoftmax__f32_to_f16((float)v);
        break;
    default:
        ((uint16_t*)p)[i] = clsoftmax__f32_to_bf16((float)v);
    }
}

static uint64_t rng_next(uint64_t* s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double rng_unit(uint64_t* s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static void* fill(clsoftmax_dtype dt, size_t n, double lo, double hi, uint64_t seed)
{
    void* p = malloc(n * esize(dt) + 8);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; p != NULL && i < n; i++)
        xset(p, dt, i, lo + (hi - lo) * rng_unit(&s));
    return p;
}

/* Class indices, every `ignore_every`-th row (0: none) set to ignore_index. */
static cl_long* index_labels(size_t rows, size_t classes, size_t ignore_every, cl_long ignore,
                             uint64_t seed)
{
    cl_long* y = malloc(rows * sizeof *y + 8);
    uint64_t s = seed + 7;
    for (size_t r = 0; y != NULL && r < rows; r++)
        y[r] = (ignore_every != 0 && r % ignore_every == 1) ? ignore
                                                            : (cl_long)(rng_next(&s) % classes);
    return y;
}

/* Probability rows (positive, summing to about 1 before rounding to dt). */
static void* prob_labels(clsoftmax_dtype dt, size_t rows, size_t classes, uint64_t seed)
{
    void* q = malloc(rows * classes * esize(dt) + 8);
    double* tmp = malloc(classes * sizeof *tmp);
    uint64_t s = seed + 11;
    for (size_t r = 0; q != NULL && tmp != NULL && r < rows; r++) {
        double sum = 0;
        for (size_t k = 0; k < classes; k++)
            sum += tmp[k] = rng_unit(&s) * rng_unit(&s);
        for (size_t k = 0; k < classes; k++)
            xset(q, dt, r * classes + k, tmp[k] / sum);
    }
    free(tmp);
    return q;
}

/* ---- the reference ------------------------------------------------------------------------- */

/*
 * loss: rows (NONE) or 1 values; grad: rows x classes. From the header's definition, in long
 * double, smoothing as the exact double eps.
 */
static void reference(const clsoftmax_cross_entropy_desc* d, const void* logits, const void* labels,
                      const void* weights, long double* loss, long double* grad,
                      long double* gscale)
{
    const size_t R = d->rows, C = d->classes;
    const clsoftmax_dtype dt = d->dtype;
    const int probs = d->labels == CLSOFTMAX_LABELS_PROBS;
    const long double eps = d->label_smoothing;
    long double* a = malloc(C * sizeof *a);
    long double total = 0, denom = 0;
    for (size_t r = 0; a != NULL && r < R; r++) {
        long double* g = grad + r * C;
        long double row = 0;
        cl_long y = probs ? 0 : ((const cl_long*)labels)[r];
        gscale[r] = 0;
        if (!probs && y == (cl_long)d->ignore_index) {
            for (size_t k = 0; k < C; k++)
                g[k] = 0;
        } else {
            /* log s = log1p(sum of the terms but the first maximum's 1): in long double the
               plain log(s) of a confident row would lose 1e-14 of a 1e-6 loss */
            long double m = -INFINITY, t = 0, A = 0;
            size_t km = C;
            for (size_t k = 0; k < C; k++)
                if (xget(logits, dt, r * C + k) > m) {
                    m = xget(logits, dt, r * C + k);
                    km = k;
                }
            for (size_t k = 0; k < C; k++)
                if (k != km)
                    t += expl(xget(logits, dt, r * C + k) - m);
            const long double log_s = isinf(m) ? (long double)NAN : log1pl(t);
            for (size_t k = 0; k < C; k++) {
                const long double wk = weights != NULL ? xget(weights, dt, k) : 1.0L;
                if (probs)
                    a[k] = wk * ((1 - eps) * xget(labels, dt, r * C + k) + eps / C);
                else
                    a[k] =
                        eps / C * wk +
                        ((cl_long)k == y
                             ? (1 - eps) * (weights != NULL ? xget(weights, dt, (size_t)y) : 1.0L)
                             : 0.0L);
                A += a[k];
            }
            for (size_t k = 0; k < C; k++) {
                const long double z = xget(logits, dt, r * C + k);
                if (probs || eps != 0 || (cl_long)k == y)
                    row += a[k] * (log_s - (z - m));
                g[k] = expl((z - m) - log_s) * A - a[k];
            }
            gscale[r] = A;
            denom += probs ? 1.0L : (weights != NULL ? xget(weights, dt, (size_t)y) : 1.0L);
        }
        if (d->reduction == CLSOFTMAX_REDUCTION_NONE)
            loss[r] = row;
        total += row;
    }
    if (probs)
        denom = (long double)R;
    if (d->reduction == CLSOFTMAX_REDUCTION_SUM)
        loss[0] = total;
    if (d->reduction == CLSOFTMAX_REDUCTION_MEAN) {
        loss[0] = total / denom;
        for (size_t i = 0; i < R * C; i++)
            grad[i] /= denom;
        for (size_t r = 0; r < R; r++)
            gscale[r] /= denom;
    }
    free(a);
}

/* ---- comparisons ------------------------------------------------------------------------ */

static int ordered16(uint16_t h) { return (h & 0x8000) ? -(int)(h & 0x7fff) : (int)h; }

static uint16_t round16(clsoftmax_dtype dt, long double v)
{
    return dt == CLSOFTMAX_FLOAT16 ? clsoftmax__f32_to_f16((float)v)
                                   : clsoftmax__f32_to_bf16((float)v);
}

/*
 * The error of got against ref in the dtype's measure (see the file's head): relative to
 * |ref| + scale for 32/64-bit, ulps for 16-bit; -1 when NaN/inf do not sit where ref has them.
 */
static double element_error(clsoftmax_dtype dt, long double got, uint16_t got16, long double ref,
                            long double scale)
{
    if (isnan(ref) || isinf(ref))
        return (isnan(ref) ? isnan(got) : got == ref) ? 0.0 : -1.0;
    if (!isfinite(got))
        return -1.0;
    if (dt == CLSOFTMAX_FLOAT32 || dt == CLSOFTMAX_FLOAT64) {
        const long double den = fabsl(ref) + scale;
        return den == 0 ? (got == 0 ? 0.0 : -1.0) : (double)(fabsl(got - ref) / den);
    }
    const long double floor = scale * XENT_FLOOR_16;
    if (fabsl(ref) < floor) {
        /* the ulp of floor in the type: held to that absolute precision */
        const uint16_t f = round16(dt, floor);
        const uint16_t f1 = (uint16_t)(f + 1);
        return (double)(fabsl(got - ref) / (xget(&f1, dt, 0) - xget(&f, dt, 0)));
    }
    return (double)abs(ordered16(got16) - ordered16(round16(dt, ref)));
}

static int dtype_index(clsoftmax_dtype dt) { return (int)dt; }

/*
 * Compares n values of got with ref in groups of `group` values, group g at scale scales[g]
 * (scales NULL: 0), failing one assertion that names the worst element; records the worst error
 * in *worst.
 */
static int compare_vals(clsoftmax_dtype dt, const void* got, const long double* ref, size_t n,
                        size_t group, const long double* scales, const char* what, double* worst,
                        unsigned line)
{
    const double bound = dt == CLSOFTMAX_FLOAT64   ? XENT_RTOL_F64
                         : dt == CLSOFTMAX_FLOAT32 ? XENT_RTOL_F32
                                                   : XENT_ULPS_16;
    double max_err = 0;
    size_t worst_i = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        const uint16_t g16 = esize(dt) == 2 ? ((const uint16_t*)got)[i] : 0;
        double e = element_error(dt, xget(got, dt, i), g16, ref[i],
                                 scales != NULL ? scales[i / group] : 0.0L);
        if (e < 0)
            e = INFINITY;
        if (e > bound)
            bad++;
        if (e > max_err) {
            max_err = e;
            worst_i = i;
        }
    }
    if (isfinite(max_err) && max_err > *worst)
        *worst = max_err;
    TEST_CHECK_AT(line, bad == 0,
                  "%s (%s, dtype %d): %zu of %zu beyond %g; worst [%zu] = %.9Lg, expected %.12Lg "
                  "(error %g)",
                  what, test_suite_backend_name(), (int)dt, bad, n, bound, worst_i,
                  xget(got, dt, worst_i), ref[worst_i], max_err);
    return bad == 0;
}

/* ---- one checked call --------------------------------------------------------------------- */

/* One case's inputs; run_case owns nothing. */
typedef struct xcase {
    clsoftmax_cross_entropy_desc d;
    const void* logits;
    const void* labels;
    const void* weights;
} xcase;

static size_t loss_count(const clsoftmax_cross_entropy_desc* d)
{
    return d->reduction == CLSOFTMAX_REDUCTION_NONE ? d->rows : 1;
}

/* Runs the host entry point with and without grad and checks both against the reference. */
static void run_case_at(const xcase* c, const char* what, unsigned line)
{
    const clsoftmax_cross_entropy_desc* d = &c->d;
    const size_t n = d->rows * d->classes, nl = loss_count(d), es = esize(d->dtype);
    void* loss = malloc(nl * es);
    void* loss2 = malloc(nl * es);
    void* grad = malloc(n * es);
    long double* rl = malloc(nl * sizeof *rl);
    long double* rg = malloc(n * sizeof *rg);
    long double* rs = malloc(d->rows * sizeof *rs);
    if (loss == NULL || loss2 == NULL || grad == NULL || rl == NULL || rg == NULL || rs == NULL) {
        TEST_CHECK_AT(line, 0, "out of memory");
        goto done;
    }
    reference(d, c->logits, c->labels, c->weights, rl, rg, rs);
    clsoftmax_status st = clsoftmax_cross_entropy_host(test_suite_ctx, d, c->logits, c->labels,
                                                       c->weights, loss, grad);
    TEST_CHECK_AT(line, st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", what, clsoftmax_status_name(st),
                  clsoftmax_context_last_error(test_suite_ctx));
    if (st != CLSOFTMAX_SUCCESS)
        goto done;
    const int di = dtype_index(d->dtype);
    compare_vals(d->dtype, loss, rl, nl, 1, NULL, what, &worst_loss[di], line);
    compare_vals(d->dtype, grad, rg, n, d->classes, rs, what, &worst_grad[di], line);
    /* without the gradient: the same loss */
    st = clsoftmax_cross_entropy_host(test_suite_ctx, d, c->logits, c->labels, c->weights, loss2,
                                      NULL);
    TEST_CHECK_AT(line, st == CLSOFTMAX_SUCCESS, "%s without grad: %s", what,
                  clsoftmax_status_name(st));
    if (st == CLSOFTMAX_SUCCESS)
        compare_vals(d->dtype, loss2, rl, nl, 1, NULL, what, &worst_loss[di], line);
done:
    free(loss);
    free(loss2);
    free(grad);
    free(rl);
    free(rg);
    free(rs);
}
#define run_case(c, what) run_case_at((c), (what), __LINE__)

static int skip_dtype(clsoftmax_dtype dt)
{
    return dt == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(test_suite_ctx);
}

/* ---- cases --------------------------------------------------------------------------------- */

/* INDEX labels: every dtype, reduction, with and without weights and smoothing, ignored rows. */
static void test_index_labels(void)
{
    const size_t shapes[][2] = {{7, 5}, {33, 300}, {4, 1000}};
    for (size_t di = 0; di < 4; di++) {
        const clsoftmax_dtype dt = all_dtypes[di];
        if (skip_dtype(dt))
            continue;
        for (size_t si = 0; si < 3; si++) {
            const size_t R = shapes[si][0], C = shapes[si][1];
            void* z = fill(dt, R * C, -4, 4, 1 + si);
            void* w = fill(dt, C, 0.25, 2, 2 + si);
            cl_long* y = index_labels(R, C, 3, -100, 3 + si);
            for (int red = 0; red < 3; red++)
                for (int wi = 0; wi < 2; wi++)
                    for (int ei = 0; ei < 2; ei++) {
                        xcase c = {.logits = z, .labels = y, .weights = wi ? w : NULL};
                        clsoftmax_cross_entropy_desc_init(&c.d, dt, R, C);
                        c.d.reduction = (clsoftmax_reduction)red;
                        c.d.label_smoothing = ei ? 0.1 : 0.0;
                        char what[128];
                        snprintf(what, sizeof what, "INDEX %zux%zu red %d weights %d eps %d", R, C,
                                 red, wi, ei);
                        run_case(&c, what);
                    }
            free(z);
            free(w);
            free(y);
        }
    }
}

/* PROBS labels: every dtype and reduction, weights, smoothing. */
static void test_prob_labels(void)
{
    const size_t shapes[][2] = {{6, 9}, {17, 513}};
    for (size_t di = 0; di < 4; di++) {
        const clsoftmax_dtype dt = all_dtypes[di];
        if (skip_dtype(dt))
            continue;
        for (size_t si = 0; si < 2; si++) {
            const size_t R = shapes[si][0], C = shapes[si][1];
            void* z = fill(dt, R * C, -3, 5, 10 + si);
            void* w = fill(dt, C, 0.5, 1.5, 11 + si);
            void* q = prob_labels(dt, R, C, 12 + si);
            for (int red = 0; red < 3; red++)
                for (int wi = 0; wi < 2; wi++)
                    for (int ei = 0; ei < 2; ei++) {
                        xcase c = {.logits = z, .labels = q, .weights = wi ? w : NULL};
                        clsoftmax_cross_entropy_desc_init(&c.d, dt, R, C);
                        c.d.labels = CLSOFTMAX_LABELS_PROBS;
                        c.d.reduction = (clsoftmax_reduction)red;
                        c.d.label_smoothing = ei ? 0.2 : 0.0;
                        char what[128];
                        snprintf(what, sizeof what, "PROBS %zux%zu red %d weights %d eps %d", R, C,
                                 red, wi, ei);
                        run_case(&c, what);
                    }
            free(z);
            free(w);
            free(q);
        }
    }
}

/* ignore_index: a custom value, a class-valued one, and every row ignored (MEAN: 0/0 = NaN). */
static void test_ignore_index(void)
{
    const size_t R = 5, C = 4;
    float z[20];
    cl_long y[5] = {7, 7, 7, 7, 7};
    float loss[5], grad[20];
    for (size_t i = 0; i < 20; i++)
        z[i] = (float)i / 7.0f - 1.0f;
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, R, C);
    d.ignore_index = 7; /* outside [0, C): fine, it only has to match */
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, loss, grad),
                CLSOFTMAX_SUCCESS);
    TEST_CHECK(isnan(loss[0]), "all rows ignored, MEAN: %g, expected NaN", loss[0]);
    for (size_t i = 0; i < 20; i++)
        TEST_CHECK(grad[i] == 0.0f, "ignored rows' gradient [%zu] = %g", i, grad[i]);
    d.reduction = CLSOFTMAX_REDUCTION_SUM;
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, loss, grad),
                CLSOFTMAX_SUCCESS);
    TEST_CHECK(loss[0] == 0.0f, "all rows ignored, SUM: %g, expected 0", loss[0]);
    d.reduction = CLSOFTMAX_REDUCTION_NONE;
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, loss, grad),
                CLSOFTMAX_SUCCESS);
    for (size_t r = 0; r < R; r++)
        TEST_CHECK(loss[r] == 0.0f, "ignored row %zu: loss %g", r, loss[r]);

    /* ignore_index naming a real class: those rows are skipped, the others count */
    cl_long y2[5] = {2, 0, 2, 3, 1};
    xcase c = {.logits = z, .labels = y2};
    clsoftmax_cross_entropy_desc_init(&c.d, CLSOFTMAX_FLOAT32, R, C);
    c.d.ignore_index = 2;
    for (int red = 0; red < 3; red++) {
        c.d.reduction = (clsoftmax_reduction)red;
        run_case(&c, "ignore_index is a class");
    }
}

/* The gradient against central differences of the library's own float64 loss. */
static void test_finite_differences(void)
{
    if (skip_dtype(CLSOFTMAX_FLOAT64))
        return;
    const size_t R = 4, C = 6;
    double* z = fill(CLSOFTMAX_FLOAT64, R * C, -2, 2, 21);
    double* w = fill(CLSOFTMAX_FLOAT64, C, 0.5, 2, 22);
    double* q = prob_labels(CLSOFTMAX_FLOAT64, R, C, 23);
    cl_long y[4] = {1, -100, 5, 0};
    double grad[24], lp, lm, l0;
    double worst = 0;
    for (int probs = 0; probs < 2; probs++)
        for (int red = 0; red < 3; red++) {
            clsoftmax_cross_entropy_desc d;
            clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT64, R, C);
            d.labels = probs ? CLSOFTMAX_LABELS_PROBS : CLSOFTMAX_LABELS_INDEX;
            d.reduction = (clsoftmax_reduction)red;
            d.label_smoothing = 0.15;
            /* NONE's gradient is that of the sum of the row losses: difference SUM's loss */
            clsoftmax_cross_entropy_desc dl = d;
            if (red == 0)
                dl.reduction = CLSOFTMAX_REDUCTION_SUM;
            const void* labels = probs ? (const void*)q : (const void*)y;
            double none[4];
            TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, labels, w,
                                                     red == 0 ? (void*)none : (void*)&l0, grad),
                        CLSOFTMAX_SUCCESS);
            for (size_t i = 0; i < R * C; i++) {
                const double h = 1e-5, keep = z[i];
                z[i] = keep + h;
                clsoftmax_cross_entropy_host(test_suite_ctx, &dl, z, labels, w, &lp, NULL);
                z[i] = keep - h;
                clsoftmax_cross_entropy_host(test_suite_ctx, &dl, z, labels, w, &lm, NULL);
                z[i] = keep;
                const double fd = (lp - lm) / (2 * h);
                const double err = fabs(fd - grad[i]);
                if (err > worst)
                    worst = err;
                /* O(h^2) truncation (~1e-10 here) plus loss rounding / h (~1e-11) */
                TEST_CHECK(err <= 1e-8, "probs %d red %d: d/dz[%zu] %.12g, differences %.12g",
                           probs, red, i, grad[i], fd);
            }
        }
    if (getenv("XENT_REPORT") != NULL)
        printf("\n  [%s] finite differences: worst |analytic - central| = %.3g\n",
               test_suite_backend_name(), worst);
    free(z);
    free(w);
    free(q);
}

/* Confident rows: the label's logit 12 to 18 above the rest, losses near 1e-6, still held to
   the relative bound (log1p of the sum's excess over the maximum's term). */
static void test_confident_rows(void)
{
    const size_t R = 16, C = 10;
    for (size_t di = 0; di < 4; di++) {
        const clsoftmax_dtype dt = all_dtypes[di];
        if (skip_dtype(dt))
            continue;
        void* z = fill(dt, R * C, -18, -12, 71);
        cl_long* y = index_labels(R, C, 0, -100, 72);
        for (size_t r = 0; r < R; r++)
            xset(z, dt, r * C + (size_t)y[r], 0.0);
        for (int red = 0; red < 3; red++) {
            xcase c = {.logits = z, .labels = y};
            clsoftmax_cross_entropy_desc_init(&c.d, dt, R, C);
            c.d.reduction = (clsoftmax_reduction)red;
            run_case(&c, "confident rows");
        }
        free(z);
        free(y);
    }
}

/* grad identical to logits: the same results as separate arrays, for each dtype. */
static void test_in_place(void)
{
    /* few short rows (several work-items per row on OpenCL), and many rows of vectors plus a tail
       (one work-item per row, the label's entry patched after the vector stores) */
    static const size_t shapes[2][2] = {{9, 37}, {30, 301}};
    for (size_t t = 0; t < 4 * 2; t++) {
        const size_t di = t / 2, R = shapes[t % 2][0], C = shapes[t % 2][1];
        const clsoftmax_dtype dt = all_dtypes[di];
        if (skip_dtype(dt))
            continue;
        const size_t es = esize(dt);
        void* z = fill(dt, R * C, -3, 3, 31);
        void* zz = malloc(R * C * es);
        void* g = malloc(R * C * es);
        cl_long* y = index_labels(R, C, 4, -100, 32);
        double l1[2], l2[2];
        /* INDEX without and with smoothing, PROBS with smoothing */
        for (int v = 0; v < 3 && z != NULL && zz != NULL && g != NULL; v++) {
            const int probs = v == 2;
            void* q = probs ? prob_labels(dt, R, C, 33) : NULL;
            clsoftmax_cross_entropy_desc d;
            clsoftmax_cross_entropy_desc_init(&d, dt, R, C);
            d.labels = probs ? CLSOFTMAX_LABELS_PROBS : CLSOFTMAX_LABELS_INDEX;
            d.label_smoothing = v == 0 ? 0.0 : 0.05;
            const void* labels = probs ? q : (const void*)y;
            memcpy(zz, z, R * C * es);
            TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, labels, NULL, l1, g),
                        CLSOFTMAX_SUCCESS);
            TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, zz, labels, NULL, l2, zz),
                        CLSOFTMAX_SUCCESS);
            TEST_CHECK(memcmp(g, zz, R * C * es) == 0,
                       "dtype %d %zux%zu case %d: in-place gradient differs", (int)dt, R, C, v);
            TEST_CHECK(memcmp(l1, l2, es) == 0, "dtype %d %zux%zu case %d: in-place loss differs",
                       (int)dt, R, C, v);
            free(q);
        }
        free(z);
        free(zz);
        free(g);
        free(y);
    }
}

/* One class (loss 0, gradient 0), 50000 classes, many rows; MEAN with weights. */
static void test_shapes(void)
{
    const size_t shapes[][2] = {{5, 1}, {3, 50000}, {20000, 3}, {1, 7}};
    for (size_t si = 0; si < 4; si++) {
        const size_t R = shapes[si][0], C = shapes[si][1];
        for (size_t di = 0; di < 4; di += 2) { /* float32 and float16 */
            const clsoftmax_dtype dt = all_dtypes[di];
            void* z = fill(dt, R * C, -6, 6, 41 + si);
            void* w = fill(dt, C, 0.5, 2, 42 + si);
            cl_long* y = index_labels(R, C, 5, -100, 43 + si);
            for (int red = 0; red < 3; red++) {
                xcase c = {.logits = z, .labels = y, .weights = w};
                clsoftmax_cross_entropy_desc_init(&c.d, dt, R, C);
                c.d.reduction = (clsoftmax_reduction)red;
                c.d.label_smoothing = 0.1;
                char what[96];
                snprintf(what, sizeof what, "shape %zux%zu red %d", R, C, red);
                run_case(&c, what);
            }
            free(z);
            free(w);
            free(y);
        }
    }
}

/* NaN and +inf logits poison their row; a -inf logit off the label does not (without smoothing). */
static void test_special_values(void)
{
    float z[12] = {0.5f, NAN, 1.0f, 2.0f, 0.0f, -INFINITY, 1.0f, 3.0f, 1.0f, INFINITY, 0.0f, 2.0f};
    cl_long y[3] = {0, 2, 3};
    float loss[3], grad[12];
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, 3, 4);
    d.reduction = CLSOFTMAX_REDUCTION_NONE;
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, loss, grad),
                CLSOFTMAX_SUCCESS);
    TEST_CHECK(isnan(loss[0]) && isnan(loss[2]), "NaN / +inf rows: losses %g %g", loss[0], loss[2]);
    for (size_t k = 0; k < 4; k++)
        TEST_CHECK(isnan(grad[k]) && isnan(grad[8 + k]), "NaN / +inf rows: gradient %zu: %g %g", k,
                   grad[k], grad[8 + k]);
    long double s = expl(0.0L) + expl(1.0L) + expl(3.0L);
    long double want = logl(s) - 1.0L;
    TEST_CHECK(fabsl(loss[1] - want) <= 1e-6L, "row with -inf: loss %g, expected %Lg", loss[1],
               want);
    TEST_CHECK(grad[5] == 0.0f, "-inf logit's gradient %g", grad[5]);
    d.reduction = CLSOFTMAX_REDUCTION_MEAN;
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, loss, grad),
                CLSOFTMAX_SUCCESS);
    TEST_CHECK(isnan(loss[0]), "a NaN row reaches MEAN: %g", loss[0]);
    TEST_CHECK(isfinite(grad[4]) && isfinite(grad[7]), "other rows' gradient stays finite");
}

/* An INDEX label out of range: INVALID_ARGUMENT naming the row, nothing written. */
static void test_bad_labels(void)
{
    float z[12];
    for (size_t i = 0; i < 12; i++)
        z[i] = (float)i;
    const cl_long bad[][3] = {{0, 4, 1}, {0, 1, -1}, {-101, 0, 0}, {0, 2, (cl_long)1 << 40}};
    const size_t bad_row[] = {1, 2, 0, 2};
    for (size_t t = 0; t < 4; t++) {
        float loss[3], grad[12], loss0[3], grad0[12];
        test_fill_sentinel(loss, sizeof loss);
        test_fill_sentinel(grad, sizeof grad);
        memcpy(loss0, loss, sizeof loss);
        memcpy(grad0, grad, sizeof grad);
        clsoftmax_cross_entropy_desc d;
        clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, 3, 4);
        d.reduction = CLSOFTMAX_REDUCTION_NONE;
        TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, bad[t], NULL, loss, grad),
                    CLSOFTMAX_INVALID_ARGUMENT);
        char row[32];
        snprintf(row, sizeof row, "labels[%zu]", bad_row[t]);
        TEST_CHECK(test_contains(clsoftmax_context_last_error(test_suite_ctx), row),
                   "case %zu: the error names %s: %s", t, row,
                   clsoftmax_context_last_error(test_suite_ctx));
        TEST_CHECK(memcmp(loss, loss0, sizeof loss) == 0 && memcmp(grad, grad0, sizeof grad) == 0,
                   "case %zu: outputs written on a bad label", t);
    }
}

/* Argument errors: the status, and outputs untouched. */
static void test_errors(void)
{
    float z[8] = {0}, loss[2], grad[8], loss0[2], grad0[8];
    cl_long y[2] = {0, 1};
    test_fill_sentinel(loss, sizeof loss);
    test_fill_sentinel(grad, sizeof grad);
    memcpy(loss0, loss, sizeof loss);
    memcpy(grad0, grad, sizeof grad);
    clsoftmax_context* ctx = test_suite_ctx;
    clsoftmax_cross_entropy_desc d, b;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 4);
    d.reduction = CLSOFTMAX_REDUCTION_NONE;

    TEST_STATUS(clsoftmax_cross_entropy_host(NULL, &d, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, NULL, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    b = d;
    b.struct_size = 8;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    b = d;
    b.dtype = (clsoftmax_dtype)9;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_DTYPE);
    b = d;
    b.rows = 0;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_SHAPE);
    b = d;
    b.classes = 0;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_SHAPE);
    b = d;
    b.label_smoothing = 1.5;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    b.label_smoothing = NAN;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    b.label_smoothing = -0.1;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    b = d;
    b.labels = (clsoftmax_labels)5;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    b = d;
    b.reduction = (clsoftmax_reduction)3;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    b = d;
    b.rows = SIZE_MAX / 2;
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &b, z, y, NULL, loss, grad),
                CLSOFTMAX_SIZE_OVERFLOW);
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, NULL, y, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z, NULL, NULL, loss, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z, y, NULL, NULL, grad),
                CLSOFTMAX_INVALID_ARGUMENT);
    /* overlap: grad one element into logits; loss inside grad; loss on the labels */
    float big[16] = {0};
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, big, y, NULL, loss, big + 1),
                CLSOFTMAX_OVERLAP);
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z, y, NULL, grad + 2, grad),
                CLSOFTMAX_OVERLAP);
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z, y, NULL, (float*)(void*)y, grad),
                CLSOFTMAX_OVERLAP);
    TEST_CHECK(memcmp(loss, loss0, sizeof loss) == 0 && memcmp(grad, grad0, sizeof grad) == 0,
               "outputs written on an argument error");
    TEST_CHECK(test_contains(clsoftmax_context_last_error(ctx), "overlap"), "last error: %s",
               clsoftmax_context_last_error(ctx));
    /* a successful call clears the last error */
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z, y, NULL, loss, grad), CLSOFTMAX_SUCCESS);
    TEST_CHECK(clsoftmax_context_last_error(ctx)[0] == '\0', "last error after success: %s",
               clsoftmax_context_last_error(ctx));
}

/*
 * PyTorch 1.13's torch.nn.functional.cross_entropy on float64 tensors, values computed once
 * with /usr/bin/python3 (torch 1.13.0a0) and pasted here:
 *   z = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
 *   l = F.cross_entropy(z, torch.tensor([2, -100, 0]), weight=torch.tensor(W),
 *                       label_smoothing=0.1)             # reduction='mean'
 *   l.backward(); l.item(), z.grad
 *   F.cross_entropy(z, torch.tensor(Q), label_smoothing=0.2, reduction='sum')  # probabilities
 */
static void test_pytorch_values(void)
{
    if (skip_dtype(CLSOFTMAX_FLOAT64))
        return;
    const double z[12] = {1.5, -0.25, 0.75, 2.0, -1.0, 0.0, 0.5, 3.0, 0.1, 0.2, -0.3, -2.5};
    const double w[4] = {1.0, 2.0, 0.5, 1.5};
    const cl_long y[3] = {2, -100, 0};
    const double q[12] = {0.1, 0.2, 0.3, 0.4, 1.0, 0.0, 0.0, 0.0, 0.25, 0.25, 0.25, 0.25};
    const double torch_mean_loss = 1.5147678046264736, torch_sum_probs = 7.179525740389846;
    const double torch_grad[12] = {0.09967609987524341,
                                   -0.013115991999411115,
                                   -0.25337690176557864,
                                   0.16681679388974635,
                                   0.0,
                                   0.0,
                                   0.0,
                                   0.0,
                                   -0.3768807744695232,
                                   0.23167106128777204,
                                   0.15239995696295275,
                                   -0.007190243781201628};
    double loss, grad[12];
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT64, 3, 4);
    d.label_smoothing = 0.1;
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, w, &loss, grad),
                CLSOFTMAX_SUCCESS);
    TEST_CHECK(fabs(loss - torch_mean_loss) <= 1e-14 * fabs(torch_mean_loss),
               "weighted smoothed MEAN: %.17g, PyTorch %.17g", loss, torch_mean_loss);
    for (size_t i = 0; i < 12; i++)
        TEST_CHECK(fabs(grad[i] - torch_grad[i]) <= 1e-14, "gradient [%zu]: %.17g, PyTorch %.17g",
                   i, grad[i], torch_grad[i]);
    d.labels = CLSOFTMAX_LABELS_PROBS;
    d.label_smoothing = 0.2;
    d.reduction = CLSOFTMAX_REDUCTION_SUM;
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, q, NULL, &loss, NULL),
                CLSOFTMAX_SUCCESS);
    TEST_CHECK(fabs(loss - torch_sum_probs) <= 1e-14 * fabs(torch_sum_probs),
               "smoothed probabilities SUM: %.17g, PyTorch %.17g", loss, torch_sum_probs);
}

/* Repeated calls give identical bits; on the CPU, for any thread count too. */
static void test_deterministic(void)
{
    const size_t R = 3000, C = 129;
    float* z = fill(CLSOFTMAX_FLOAT32, R * C, -5, 5, 51);
    cl_long* y = index_labels(R, C, 7, -100, 52);
    float* g1 = malloc(R * C * sizeof *g1);
    float* g2 = malloc(R * C * sizeof *g2);
    float l1, l2;
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, R, C);
    d.label_smoothing = 0.1;
    const int cpu = clsoftmax_context_backend(test_suite_ctx) == CLSOFTMAX_BACKEND_CPU;
    if (cpu)
        clsoftmax_context_set_param(test_suite_ctx, CLSOFTMAX_PARAM_CPU_THREADS, 1);
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, &l1, g1),
                CLSOFTMAX_SUCCESS);
    if (cpu)
        clsoftmax_context_set_param(test_suite_ctx, CLSOFTMAX_PARAM_CPU_THREADS, 5);
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, &l2, g2),
                CLSOFTMAX_SUCCESS);
    if (cpu)
        clsoftmax_context_set_param(test_suite_ctx, CLSOFTMAX_PARAM_CPU_THREADS, 0);
    TEST_CHECK(memcmp(&l1, &l2, sizeof l1) == 0, "MEAN differs between calls: %.9g %.9g", l1, l2);
    TEST_CHECK(memcmp(g1, g2, R * C * sizeof *g1) == 0, "gradient differs between calls");
    free(z);
    free(y);
    free(g1);
    free(g2);
}

/* The device-buffer entry point needs OpenCL. */
static void test_buffer_unsupported_on_cpu(void)
{
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 3);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(test_suite_ctx, &d, NULL, 0, NULL, 0, NULL, 0, NULL,
                                               0, NULL, 0, NULL, 0, NULL, NULL),
                CLSOFTMAX_UNSUPPORTED);
}

/* ---- the device-buffer entry point (OpenCL) ------------------------------------------------ */

static cl_mem make_buf(size_t bytes, const void* data)
{
    cl_int err;
    cl_mem m = clCreateBuffer(clsoftmax_context_cl_context(test_suite_ctx),
                              CL_MEM_READ_WRITE | (data != NULL ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void*)data, &err);
    return err == CL_SUCCESS ? m : NULL;
}

static void read_buf(cl_mem m, size_t off, size_t bytes, void* out)
{
    clEnqueueReadBuffer(clsoftmax_context_cl_queue(test_suite_ctx), m, CL_TRUE, off, bytes, out, 0,
                        NULL, NULL);
}

/* Offsets, weights, every reduction and both label kinds, compared with the reference. */
static void test_buffer_entry(void)
{
    for (size_t di = 0; di < 4; di++) {
        const clsoftmax_dtype dt = all_dtypes[di];
        if (skip_dtype(dt))
            continue;
        const size_t R = 13, C = 70, es = esize(dt), off = 3;
        void* z = fill(dt, (R * C + off), -4, 4, 61);
        void* w = fill(dt, C + off, 0.5, 2, 62);
        void* q = prob_labels(dt, R + 1, C, 63); /* offset by one row's worth: C elements */
        cl_long* y = index_labels(R + off, C, 4, -100, 64);
        cl_mem bz = make_buf((R * C + off) * es, z);
        cl_mem bw = make_buf((C + off) * es, w);
        cl_mem bq = make_buf((R + 1) * C * es, q);
        cl_mem by = make_buf((R + off) * sizeof(cl_long), y);
        cl_mem bl = make_buf((R + off) * es, NULL);
        cl_mem bg = make_buf((R * C + off) * es, NULL);
        void* loss = malloc(R * es);
        void* grad = malloc(R * C * es);
        long double* rl = malloc(R * sizeof *rl);
        long double* rg = malloc(R * C * sizeof *rg);
        long double rs[13];
        for (int probs = 0; probs < 2; probs++)
            for (int red = 0; red < 3; red++) {
                clsoftmax_cross_entropy_desc d;
                clsoftmax_cross_entropy_desc_init(&d, dt, R, C);
                d.labels = probs ? CLSOFTMAX_LABELS_PROBS : CLSOFTMAX_LABELS_INDEX;
                d.reduction = (clsoftmax_reduction)red;
                d.label_smoothing = 0.1;
                cl_event ev = NULL;
                clsoftmax_status st = clsoftmax_cross_entropy_buffer(
                    test_suite_ctx, &d, bz, off, probs ? bq : by, probs ? C : off, bw, off, bl, off,
                    bg, off, NULL, 0, NULL, &ev);
                TEST_CHECK(st == CLSOFTMAX_SUCCESS && ev != NULL, "buffer dtype %d: %s (%s)",
                           (int)dt, clsoftmax_status_name(st),
                           clsoftmax_context_last_error(test_suite_ctx));
                if (st != CLSOFTMAX_SUCCESS)
                    continue;
                clWaitForEvents(1, &ev);
                clReleaseEvent(ev);
                const size_t nl = loss_count(&d);
                read_buf(bl, off * es, nl * es, loss);
                read_buf(bg, off * es, R * C * es, grad);
                reference(&d, (char*)z + off * es,
                          probs ? (const void*)((char*)q + C * es) : (const void*)(y + off),
                          (char*)w + off * es, rl, rg, rs);
                const int dx = dtype_index(dt);
                compare_vals(dt, loss, rl, nl, 1, NULL, "buffer loss", &worst_loss[dx], __LINE__);
                compare_vals(dt, grad, rg, R * C, C, rs, "buffer grad", &worst_grad[dx], __LINE__);
            }
        clReleaseMemObject(bz);
        clReleaseMemObject(bw);
        clReleaseMemObject(bq);
        clReleaseMemObject(by);
        clReleaseMemObject(bl);
        clReleaseMemObject(bg);
        free(z);
        free(w);
        free(q);
        free(y);
        free(loss);
        free(grad);
        free(rl);
        free(rg);
    }
}

/* Out-of-range labels on the device: a NaN row, reaching SUM; other rows untouched by it. */
static void test_buffer_bad_labels(void)
{
    const size_t R = 4, C = 5;
    float z[20];
    for (size_t i = 0; i < 20; i++)
        z[i] = (float)(i % 7) * 0.3f;
    const cl_long y[4] = {1, 5, -100, -3};
    cl_mem bz = make_buf(sizeof z, z), by = make_buf(sizeof y, y);
    cl_mem bl = make_buf(R * sizeof(float), NULL), bg = make_buf(sizeof z, NULL);
    float loss[4], grad[20];
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, R, C);
    d.reduction = CLSOFTMAX_REDUCTION_NONE;
    TEST_STATUS(clsoftmax_cross_entropy_buffer(test_suite_ctx, &d, bz, 0, by, 0, NULL, 0, bl, 0, bg,
                                               0, NULL, 0, NULL, NULL),
                CLSOFTMAX_SUCCESS);
    read_buf(bl, 0, sizeof loss, loss);
    read_buf(bg, 0, sizeof grad, grad);
    TEST_CHECK(isfinite(loss[0]) && isnan(loss[1]) && loss[2] == 0.0f && isnan(loss[3]),
               "row losses %g %g %g %g: expected finite, NaN, 0, NaN", loss[0], loss[1], loss[2],
               loss[3]);
    for (size_t k = 0; k < C; k++)
        TEST_CHECK(isfinite(grad[k]) && isnan(grad[C + k]) && grad[2 * C + k] == 0.0f &&
                       isnan(grad[3 * C + k]),
                   "gradient column %zu: %g %g %g %g", k, grad[k], grad[C + k], grad[2 * C + k],
                   grad[3 * C + k]);
    d.reduction = CLSOFTMAX_REDUCTION_SUM;
    TEST_STATUS(clsoftmax_cross_entropy_buffer(test_suite_ctx, &d, bz, 0, by, 0, NULL, 0, bl, 0,
                                               NULL, 0, NULL, 0, NULL, NULL),
                CLSOFTMAX_SUCCESS);
    read_buf(bl, 0, sizeof(float), loss);
    TEST_CHECK(isnan(loss[0]), "SUM over a bad label: %g", loss[0]);
    clReleaseMemObject(bz);
    clReleaseMemObject(by);
    clReleaseMemObject(bl);
    clReleaseMemObject(bg);
}

/*
 * The host entry point through device copies (CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES set; PoCL
 * otherwise wraps host memory): the same bits as the zero-copy path, in place included.
 */
static void test_host_copies(void)
{
    const size_t R = 21, C = 300;
    float* z = fill(CLSOFTMAX_FLOAT32, R * C, -4, 4, 81);
    float* w = fill(CLSOFTMAX_FLOAT32, C, 0.5, 2, 82);
    cl_long* y = index_labels(R, C, 3, -100, 83);
    float* g1 = malloc(R * C * sizeof *g1);
    float* g2 = malloc(R * C * sizeof *g2);
    float* z2 = malloc(R * C * sizeof *z2);
    float l1[21], l2[21], l3[21];
    clsoftmax_context* ctx = test_suite_ctx;
    for (int red = 0; red < 3 && z2 != NULL; red++) {
        clsoftmax_cross_entropy_desc d;
        clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, R, C);
        d.reduction = (clsoftmax_reduction)red;
        d.label_smoothing = red == 1 ? 0.1 : 0.0;
        const size_t nl = loss_count(&d);
        TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z, y, w, l1, g1), CLSOFTMAX_SUCCESS);
        clsoftmax_context_set_param(ctx, CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES, 1 << 20);
        TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z, y, w, l2, g2), CLSOFTMAX_SUCCESS);
        memcpy(z2, z, R * C * sizeof *z2);
        TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z2, y, w, l3, z2), CLSOFTMAX_SUCCESS);
        clsoftmax_context_set_param(ctx, CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES, 0);
        TEST_CHECK(memcmp(l1, l2, nl * sizeof *l1) == 0 && memcmp(g1, g2, R * C * sizeof *g1) == 0,
                   "red %d: copies differ from zero-copy", red);
        TEST_CHECK(memcmp(l1, l3, nl * sizeof *l1) == 0 && memcmp(g1, z2, R * C * sizeof *g1) == 0,
                   "red %d: copies in place differ from zero-copy", red);
    }
    free(z);
    free(w);
    free(y);
    free(g1);
    free(g2);
    free(z2);
}

/* A wait list holding a user event: the call waits for it, its event completes after. */
static void test_buffer_wait_list(void)
{
    const size_t R = 6, C = 11;
    float z[66], loss, want;
    for (size_t i = 0; i < 66; i++)
        z[i] = (float)((i * 5) % 13) * 0.2f;
    const cl_long y[6] = {0, 3, 10, -100, 7, 1};
    cl_mem bz = make_buf(sizeof z, z), by = make_buf(sizeof y, y);
    cl_mem bl = make_buf(sizeof(float), NULL);
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, R, C);
    TEST_STATUS(clsoftmax_cross_entropy_host(test_suite_ctx, &d, z, y, NULL, &want, NULL),
                CLSOFTMAX_SUCCESS);
    cl_int err;
    cl_event gate = clCreateUserEvent(clsoftmax_context_cl_context(test_suite_ctx), &err);
    cl_event done = NULL;
    TEST_STATUS(clsoftmax_cross_entropy_buffer(test_suite_ctx, &d, bz, 0, by, 0, NULL, 0, bl, 0,
                                               NULL, 0, NULL, 1, &gate, &done),
                CLSOFTMAX_SUCCESS);
    cl_int state = CL_COMPLETE;
    if (done != NULL)
        clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state, NULL);
    TEST_CHECK(done != NULL && state != CL_COMPLETE, "the call completed before its wait list");
    clSetUserEventStatus(gate, CL_COMPLETE);
    if (done != NULL) {
        clWaitForEvents(1, &done);
        clReleaseEvent(done);
    }
    read_buf(bl, 0, sizeof loss, &loss);
    TEST_CHECK(memcmp(&loss, &want, sizeof loss) == 0, "after the wait list: %.9g, host %.9g", loss,
               want);
    clReleaseEvent(gate);
    clReleaseMemObject(bz);
    clReleaseMemObject(by);
    clReleaseMemObject(bl);
}

/* Buffer errors: sizes, overlap, wait lists, queue; nothing written; in place allowed. */
static void test_buffer_errors(void)
{
    const size_t R = 3, C = 4;
    float z[12] = {0}, sentinel[16];
    const cl_long y[3] = {0, 1, 2};
    test_fill_sentinel(sentinel, sizeof sentinel);
    cl_mem bz = make_buf(sizeof z, z), by = make_buf(sizeof y, y);
    cl_mem bl = make_buf(sizeof sentinel, sentinel), bg = make_buf(sizeof sentinel, sentinel);
    clsoftmax_context* ctx = test_suite_ctx;
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, CLSOFTMAX_FLOAT32, R, C);
    d.reduction = CLSOFTMAX_REDUCTION_NONE;
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bz, 1, by, 0, NULL, 0, bl, 0, bg, 0, NULL,
                                               0, NULL, NULL),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bz, 0, by, 1, NULL, 0, bl, 0, bg, 0, NULL,
                                               0, NULL, NULL),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bz, 0, by, 0, bz, 9, bl, 0, bg, 0, NULL, 0,
                                               NULL, NULL),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bz, 0, by, 0, NULL, 0, bg, 0, bg, 2, NULL,
                                               0, NULL, NULL),
                CLSOFTMAX_OVERLAP);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bg, 0, by, 0, NULL, 0, bl, 0, bg, 1, NULL,
                                               0, NULL, NULL),
                CLSOFTMAX_OVERLAP);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bz, 0, by, 0, NULL, 0, NULL, 0, bg, 0, NULL,
                                               0, NULL, NULL),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bz, 0, by, 0, NULL, 0, bl, 0, bg, 0, NULL,
                                               1, NULL, NULL),
                CLSOFTMAX_INVALID_ARGUMENT);
    float back[16];
    read_buf(bl, 0, sizeof back, back);
    TEST_CHECK(memcmp(back, sentinel, sizeof back) == 0, "loss written on an error");
    read_buf(bg, 0, sizeof back, back);
    TEST_CHECK(memcmp(back, sentinel, sizeof back) == 0, "grad written on an error");
    /* in place on the device: grad is logits, same offset */
    float z2[12], g2[12], l_sep[3], l_in[3];
    for (size_t i = 0; i < 12; i++)
        z2[i] = (float)i * 0.25f;
    cl_mem bz2 = make_buf(sizeof z2, z2);
    TEST_STATUS(clsoftmax_cross_entropy_host(ctx, &d, z2, y, NULL, l_sep, g2), CLSOFTMAX_SUCCESS);
    TEST_STATUS(clsoftmax_cross_entropy_buffer(ctx, &d, bz2, 0, by, 0, NULL, 0, bl, 0, bz2, 0, NULL,
                                               0, NULL, NULL),
                CLSOFTMAX_SUCCESS);
    read_buf(bz2, 0, sizeof z2, z2);
    read_buf(bl, 0, sizeof l_in, l_in);
    TEST_CHECK(memcmp(z2, g2, sizeof z2) == 0 && memcmp(l_in, l_sep, sizeof l_in) == 0,
               "in place on the device differs from the host call");
    clReleaseMemObject(bz);
    clReleaseMemObject(by);
    clReleaseMemObject(bl);
    clReleaseMemObject(bg);
    clReleaseMemObject(bz2);
}

/* Prints the worst errors seen (XENT_REPORT set): the figures of the README's bounds table. */
static void test_report(void)
{
    if (getenv("XENT_REPORT") == NULL)
        return;
    static const char* const names[] = {"float32", "float64", "float16", "bfloat16"};
    printf("\n");
    for (int i = 0; i < 4; i++)
        printf("  [%s] %-8s worst loss error %.3g, gradient %.3g (%s)\n", test_suite_backend_name(),
               names[i], worst_loss[i], worst_grad[i],
               i < 2 ? "relative to |ref| + row scale" : "ulps");
    CU_PASS("report");
}

static void add_common(CU_pSuite s)
{
    if (s == NULL)
        return;
    CU_add_test(s, "INDEX labels", test_index_labels);
    CU_add_test(s, "PROBS labels", test_prob_labels);
    CU_add_test(s, "ignore_index", test_ignore_index);
    CU_add_test(s, "confident rows", test_confident_rows);
    CU_add_test(s, "gradient by finite differences", test_finite_differences);
    CU_add_test(s, "grad in place of logits", test_in_place);
    CU_add_test(s, "shapes", test_shapes);
    CU_add_test(s, "NaN and infinities", test_special_values);
    CU_add_test(s, "out-of-range labels", test_bad_labels);
    CU_add_test(s, "argument errors", test_errors);
    CU_add_test(s, "PyTorch's values", test_pytorch_values);
    CU_add_test(s, "deterministic", test_deterministic);
}

void test_register_cross_entropy(void)
{
    CU_pSuite cpu = CU_add_suite("xent_cpu", test_suite_init_cpu, test_suite_cleanup);
    add_common(cpu);
    if (cpu != NULL) {
        CU_add_test(cpu, "buffer entry point unsupported", test_buffer_unsupported_on_cpu);
        CU_add_test(cpu, "accuracy report", test_report);
    }
    CU_pSuite cl = CU_add_suite("xent_opencl", test_suite_init_opencl, test_suite_cleanup);
    add_common(cl);
    if (cl != NULL) {
        CU_add_test(cl, "buffer entry point", test_buffer_entry);
        CU_add_test(cl, "buffer: out-of-range labels", test_buffer_bad_labels);
        CU_add_test(cl, "buffer errors and in place", test_buffer_errors);
        CU_add_test(cl, "buffer wait list", test_buffer_wait_list);
        CU_add_test(cl, "host entry through device copies", test_host_copies);
        CU_add_test(cl, "accuracy report", test_report);
    }
}
