/* test_ops.c - the classifier head and attention against first-principles references, both
 * backends.
 *
 * Suites "ops_cpu" and "ops_opencl" run the same cases; the OpenCL suite adds the device-buffer
 * entry points (blocked keys through a small workspace, strided views, events on a caller's
 * queue). References are written here from the definitions, in long double: scores and logits
 * from the element values, masks applied as the header documents, softmax, then the product.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "npy.h"
#include "test_suites.h"
#include "test_util.h"

#ifndef CLSOFTMAX_TOOL_PATH
#error "CLSOFTMAX_TOOL_PATH (the built tool's absolute path) must be defined"
#endif

/*
 * Products run in the dtype (float32 GEMMs round each partial sum), so the outputs are held to
 * looser bounds than the plain softmax's: relative to the reference's magnitude.
 */
#define OPS_RTOL_F32 2e-4
#define OPS_ATOL_F32 2e-5
#define OPS_RTOL_F64 1e-10
#define OPS_ATOL_F64 1e-12

static int compare(const void* got, clsoftmax_dtype dt, const long double* ref, size_t n,
                   const char* what)
{
    return TEST_COMPARE(got, dt, ref, n, dt == CLSOFTMAX_FLOAT32 ? OPS_RTOL_F32 : OPS_RTOL_F64,
                        dt == CLSOFTMAX_FLOAT32 ? OPS_ATOL_F32 : OPS_ATOL_F64, what);
}

static void* alloc_filled(clsoftmax_dtype dt, size_t n, uint64_t seed)
{
    void* p = malloc(n * test_dtype_size(dt) + 1);
    if (p != NULL)
        test_fill(p, dt, n, -1.0, 1.0, seed);
    return p;
}

/* ---- attention reference -------------------------------------------------------------------- */

static size_t span(const size_t dims[4], const size_t st[4])
{
    size_t s = 1;
    for (int i = 0; i < 4; i++)
        s += (dims[i] - 1) * st[i];
    return s;
}

static size_t q_span(const clsoftmax_attention_desc* d)
{
    const size_t dims[4] = {d->batch, d->heads, d->seq_q, d->d};
    return span(dims, d->q_strides);
}
static size_t k_span(const clsoftmax_attention_desc* d)
{
    const size_t dims[4] = {d->batch, d->heads, d->seq_k, d->d};
    return span(dims, d->k_strides);
}
static size_t v_span(const clsoftmax_attention_desc* d)
{
    const size_t dims[4] = {d->batch, d->heads, d->seq_k, d->d_v};
    return span(dims, d->v_strides);
}
static size_t o_span(const clsoftmax_attention_desc* d)
{
    const size_t dims[4] = {d->batch, d->heads, d->seq_q, d->d_v};
    return span(dims, d->o_strides);
}
static size_t mask_count(const clsoftmax_attention_desc* d)
{
    return d->mask_batch * d->mask_heads * d->seq_q * d->seq_k;
}

/* The n elements of a float32 or float64 array as doubles (exact), for fast indexing. */
static double* as_double(const void* p, clsoftmax_dtype dt, size_t n)
{
    double* r = malloc((n ? n : 1) * sizeof *r);
    for (size_t e = 0; p != NULL && e < n; e++)
        r[e] = test_get(p, dt, e);
    return r;
}

/*
 * ref[((b * heads + h) * seq_q + i) * d_v + c]: softmax(scale * q.k + mask) . v, hidden keys
 * dropped, a row with no visible key 0. Products in double (exact inputs, 1e-16 relative),
 * the softmax in long double. For float32, t = scale * s uses the float scale, as the library.
 */
static void attention_ref(const clsoftmax_attention_desc* d, const void* q_in, const void* k_in,
                          const void* v_in, const void* mask_in, long double* ref)
{
    const clsoftmax_dtype dt = d->dtype;
    const long double scale =
        dt == CLSOFTMAX_FLOAT32 ? (long double)(float)d->scale : (long double)d->scale;
    double* q = as_double(q_in, dt, q_span(d));
    double* k = as_double(k_in, dt, k_span(d));
    double* v = as_double(v_in, dt, v_span(d));
    double* mask = mask_in != NULL ? as_double(mask_in, dt, mask_count(d)) : NULL;
    long double* t = malloc(d->seq_k * sizeof *t);
    double* p = malloc(d->seq_k * sizeof *p);
    for (size_t b = 0; b < d->batch; b++)
        for (size_t h = 0; h < d->heads; h++)
            for (size_t i = 0; i < d->seq_q; i++) {
                const double* qi =
                    q + b * d->q_strides[0] + h * d->q_strides[1] + i * d->q_strides[2];
                long double m = -INFINITY;
                for (size_t j = 0; j < d->seq_k; j++) {
                    int vis = (d->key_lengths == NULL || j < d->key_lengths[b]) &&
                              (!d->causal || (long)j <= (long)i + (long)d->seq_k - (long)d->seq_q);
                    const double* kj =
                        k + b * d->k_strides[0] + h * d->k_strides[1] + j * d->k_strides[2];
                    double s = 0;
                    for (size_t c = 0; c < d->d; c++)
                        s += qi[c] * kj[c];
                    t[j] = scale * s;
                    if (mask != NULL) {
                        size_t mb = d->mask_batch > 1 ? b : 0;
                        size_t mh = d->mask_heads > 1 ? h : 0;
                        t[j] += mask[((mb * d->mask_heads + mh) * d->seq_q + i) * d->seq_k + j];
                    }
                    if (!vis)
                        t[j] = -INFINITY;
                    if (t[j] > m)
                        m = t[j];
                }
                long double sum = 0;
                for (size_t j = 0; j < d->seq_k; j++)
                    sum += t[j] == -INFINITY ? 0 : expl(t[j] - m);
                for (size_t j = 0; j < d->seq_k; j++)
                    p[j] = sum == 0 || t[j] == -INFINITY ? 0.0 : (double)(expl(t[j] - m) / sum);
                long double* o = ref + ((b * d->heads + h) * d->seq_q + i) * d->d_v;
                for (size_t c = 0; c < d->d_v; c++)
                    o[c] = 0;
                for (size_t j = 0; j < d->seq_k; j++) {
                    if (p[j] == 0)
                        continue;
                    const double* vj =
                        v + b * d->v_strides[0] + h * d->v_strides[1] + j * d->v_strides[2];
                    for (size_t c = 0; c < d->d_v; c++)
                        o[c] += p[j] * vj[c];
                }
            }
    free(q);
    free(k);
    free(v);
    free(mask);
    free(t);
    free(p);
}

/* Gathers the strided output into dense [b, h, i, c] order for comparison. */
static void* gather_out(const clsoftmax_attention_desc* d, const void* out)
{
    size_t n = d->batch * d->heads * d->seq_q * d->d_v;
    void* g = malloc(n * test_dtype_size(d->dtype));
    size_t e = 0;
    for (size_t b = 0; b < d->batch; b++)
        for (size_t h = 0; h < d->heads; h++)
            for (size_t i = 0; i < d->seq_q; i++)
                for (size_t c = 0; c < d->d_v; c++)
                    test_set(g, d->dtype, e++,
                             test_get(out, d->dtype,
                                      b * d->o_strides[0] + h * d->o_strides[1] +
                                          i * d->o_strides[2] + c));
    return g;
}

/* Runs d through the host entry point and compares with the reference. */
static void check_attention(const clsoftmax_attention_desc* d, const char* what, uint64_t seed)
{
    const clsoftmax_dtype dt = d->dtype;
    void* q = alloc_filled(dt, q_span(d), seed);
    void* k = alloc_filled(dt, k_span(d), seed + 1);
    void* v = alloc_filled(dt, v_span(d), seed + 2);
    void* mask = NULL;
    if (d->mask_batch > 0) {
        mask = alloc_filled(dt, mask_count(d), seed + 3);
        /* some keys hidden by -inf, every 5th one */
        for (size_t e = 0; e < mask_count(d); e += 5)
            test_set(mask, dt, e, -INFINITY);
    }
    size_t n = d->batch * d->heads * d->seq_q * d->d_v;
    void* out = calloc(o_span(d), test_dtype_size(dt));
    long double* ref = malloc(n * sizeof *ref);
    attention_ref(d, q, k, v, mask, ref);
    clsoftmax_status st = clsoftmax_attention_host(test_suite_ctx, d, q, k, v, mask, out);
    char label[256];
    snprintf(label, sizeof label, "%s %s attention %s [%zu,%zu,%zu/%zu,%zu/%zu]",
             test_suite_backend_name(), dt == CLSOFTMAX_FLOAT64 ? "f64" : "f32", what, d->batch,
             d->heads, d->seq_q, d->seq_k, d->d, d->d_v);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", label, clsoftmax_status_name(st),
               clsoftmax_context_last_error(test_suite_ctx));
    if (st == CLSOFTMAX_SUCCESS) {
        void* g = gather_out(d, out);
        compare(g, dt, ref, n, label);
        free(g);
    }
    free(q);
    free(k);
    free(v);
    free(mask);
    free(out);
    free(ref);
}

static void test_attention_shapes(void)
{
    /* batch, heads, seq_q, seq_k, d, d_v */
    static const size_t shapes[][6] = {{1, 1, 1, 1, 1, 1},     {2, 3, 7, 7, 64, 64},
                                       {1, 2, 64, 64, 80, 80}, {1, 1, 129, 129, 128, 128},
                                       {2, 2, 7, 129, 1, 1},   {1, 1, 1000, 1000, 64, 64},
                                       {2, 2, 7, 64, 80, 16},  {1, 3, 1, 1000, 128, 32}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        clsoftmax_attention_desc d;
        const size_t* x = shapes[s];
        clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, x[0], x[1], x[2], x[3], x[4], x[5]);
        check_attention(&d, "no mask", 100 + s);
    }
}

static void test_attention_masks(void)
{
    clsoftmax_attention_desc d;
    /* 70000 keys in one block: longer than the kernel stages in local memory */
    size_t long_lens[2] = {70000, 50000};
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 1, 3, 70000, 4, 4);
    d.causal = 1;
    d.key_lengths = long_lens;
    check_attention(&d, "causal + key lengths, long rows", 230);
    /* causal square, causal with fewer queries (KV cache), causal with more queries (the
       first seq_q - seq_k rows see nothing: 0) */
    static const size_t causal[][2] = {{64, 64}, {7, 64}, {64, 7}, {129, 1000}};
    for (size_t c = 0; c < 4; c++) {
        clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 2, causal[c][0], causal[c][1], 64,
                                      64);
        d.causal = 1;
        check_attention(&d, "causal", 200 + c);
    }
    /* additive masks broadcast each way */
    static const size_t mb[][2] = {{1, 1}, {2, 1}, {1, 3}, {2, 3}};
    for (size_t c = 0; c < 4; c++) {
        clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 3, 7, 64, 64, 64);
        d.mask_batch = mb[c][0];
        d.mask_heads = mb[c][1];
        check_attention(&d, "additive mask", 210 + c);
    }
    /* key lengths, one batch entry with none (all masked: 0), combined with causal and mask */
    size_t lens[3] = {5, 0, 129};
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 3, 2, 7, 129, 80, 80);
    d.key_lengths = lens;
    check_attention(&d, "key lengths", 220);
    d.causal = 1;
    d.mask_batch = 1;
    d.mask_heads = 2;
    d.scale = 0.3;
    check_attention(&d, "key lengths + causal + mask + scale 0.3", 221);
}

static void test_attention_float64(void)
{
    if (!clsoftmax_context_supports_float64(test_suite_ctx))
        return;
    clsoftmax_attention_desc d;
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT64, 2, 2, 7, 129, 64, 80);
    check_attention(&d, "no mask", 300);
    size_t lens[2] = {100, 3};
    d.key_lengths = lens;
    d.causal = 1;
    d.mask_batch = 2;
    d.mask_heads = 1;
    d.scale = 2.0;
    check_attention(&d, "causal + mask + key lengths + scale 2", 301);
}

/* Q, K, V, O as views of packed [batch, seq, heads, d] tensors (the usual QKV projection). */
static void packed_strides(size_t heads, size_t seq, size_t feat, size_t* st)
{
    st[3] = 1;
    st[1] = feat;
    st[2] = heads * feat;
    st[0] = seq * heads * feat;
}

static void test_attention_strided(void)
{
    clsoftmax_attention_desc d;
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 3, 7, 64, 64, 80);
    packed_strides(3, 7, 64, d.q_strides);
    packed_strides(3, 64, 64, d.k_strides);
    packed_strides(3, 64, 80, d.v_strides);
    packed_strides(3, 7, 80, d.o_strides);
    d.causal = 1;
    check_attention(&d, "packed [b, s, h, d] views", 400);
    /* padded rows: seq strides beyond the features */
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 1, 2, 7, 9, 16, 8);
    d.q_strides[2] = 20;
    d.q_strides[1] = 7 * 20;
    d.q_strides[0] = 2 * 7 * 20;
    d.o_strides[2] = 11;
    d.o_strides[1] = 7 * 11;
    d.o_strides[0] = 2 * 7 * 11;
    check_attention(&d, "padded rows", 401);
}

/* ---- head reference ----------------------------------------------------------------------------
 */

/* t of row r, class j, as the library defines it (float32: float scale). */
static long double head_t(const clsoftmax_head_desc* d, const void* x, const void* w,
                          const void* bias, size_t r, size_t j)
{
    long double l = 0;
    for (size_t c = 0; c < d->in_features; c++)
        l += (long double)test_get(x, d->dtype, r * d->in_features + c) *
             test_get(w, d->dtype, j * d->in_features + c);
    if (bias != NULL)
        l += test_get(bias, d->dtype, j);
    long double s = d->dtype == CLSOFTMAX_FLOAT32 ? (long double)(float)d->scale : d->scale;
    return s * l;
}

/* Full rows: ref [rows, classes]; top-k: ref [rows, k] and the indices by (t desc, index asc). */
static void head_ref(const clsoftmax_head_desc* d, const void* x, const void* w, const void* bias,
                     long double* ref, cl_long* idx)
{
    long double* t = malloc(d->classes * sizeof *t);
    for (size_t r = 0; r < d->rows; r++) {
        long double m = -INFINITY;
        for (size_t j = 0; j < d->classes; j++) {
            t[j] = head_t(d, x, w, bias, r, j);
            if (t[j] > m)
                m = t[j];
        }
        long double sum = 0;
        for (size_t j = 0; j < d->classes; j++)
            sum += expl(t[j] - m);
        const int log_op = d->op == CLSOFTMAX_OP_LOG_SOFTMAX;
        if (d->topk == 0) {
            for (size_t j = 0; j < d->classes; j++)
                ref[r * d->classes + j] = log_op ? (t[j] - m) - logl(sum) : expl(t[j] - m) / sum;
            continue;
        }
        /* selection by repeated scans: the plainest statement of the order */
        long double prev_t = 0;
        long prev_i = -1;
        for (size_t q = 0; q < d->topk; q++) {
            long best = -1;
            for (size_t j = 0; j < d->classes; j++) {
                int after = prev_i < 0 || t[j] < prev_t || (t[j] == prev_t && (long)j > prev_i);
                if (after && (best < 0 || t[j] > t[best]))
                    best = (long)j;
            }
            prev_t = t[best];
            prev_i = best;
            idx[r * d->topk + q] = best;
            ref[r * d->topk + q] = log_op ? (t[best] - m) - logl(sum) : expl(t[best] - m) / sum;
        }
    }
    free(t);
}

/* Values in {-3..3}: products and sums are exact in float, so logits tie exactly. */
static void integerise(void* p, clsoftmax_dtype dt, size_t n)
{
    for (size_t e = 0; e < n; e++)
        test_set(p, dt, e, round(test_get(p, dt, e) * 3.0));
}

static void check_head(const clsoftmax_head_desc* d, int with_bias, int integer, const char* what,
                       uint64_t seed)
{
    const clsoftmax_dtype dt = d->dtype;
    const size_t cols = d->topk > 0 ? d->topk : d->classes;
    void* x = alloc_filled(dt, d->rows * d->in_features, seed);
    void* w = alloc_filled(dt, d->classes * d->in_features, seed + 1);
    void* bias = with_bias ? alloc_filled(dt, d->classes, seed + 2) : NULL;
    if (integer) {
        integerise(x, dt, d->rows * d->in_features);
        integerise(w, dt, d->classes * d->in_features);
        if (bias != NULL)
            integerise(bias, dt, d->classes);
    }
    void* out = calloc(d->rows * cols, test_dtype_size(dt));
    cl_long* idx = d->topk > 0 ? calloc(d->rows * d->topk, sizeof *idx) : NULL;
    cl_long* ref_idx = d->topk > 0 ? calloc(d->rows * d->topk, sizeof *ref_idx) : NULL;
    long double* ref = malloc(d->rows * cols * sizeof *ref);
    head_ref(d, x, w, bias, ref, ref_idx);
    char label[256];
    snprintf(label, sizeof label, "%s %s head %s [%zu x %zu -> %zu] topk %zu%s",
             test_suite_backend_name(), dt == CLSOFTMAX_FLOAT64 ? "f64" : "f32", what, d->rows,
             d->in_features, d->classes, d->topk, d->op == CLSOFTMAX_OP_LOG_SOFTMAX ? " log" : "");
    clsoftmax_status st = clsoftmax_linear_softmax_host(test_suite_ctx, d, x, w, bias, out, idx);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", label, clsoftmax_status_name(st),
               clsoftmax_context_last_error(test_suite_ctx));
    if (st == CLSOFTMAX_SUCCESS) {
        compare(out, dt, ref, d->rows * cols, label);
        size_t bad = 0;
        size_t first = 0;
        for (size_t e = 0; d->topk > 0 && e < d->rows * d->topk; e++)
            if (idx[e] != ref_idx[e] && bad++ == 0)
                first = e;
        TEST_CHECK(bad == 0, "%s: %zu indices differ, first [%zu] got %lld expected %lld", label,
                   bad, first, bad ? (long long)idx[first] : 0LL,
                   bad ? (long long)ref_idx[first] : 0LL);
    }
    free(x);
    free(w);
    free(bias);
    free(out);
    free(idx);
    free(ref_idx);
    free(ref);
}

static void test_head_full(void)
{
    /* 160 x 1000: enough rows for the CPU path to split them across threads */
    static const size_t shapes[][3] = {{1, 1, 1}, {7, 64, 10}, {160, 80, 1000}, {3, 128, 129}};
    for (size_t s = 0; s < 4; s++) {
        clsoftmax_head_desc d;
        clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT32, shapes[s][0], shapes[s][1], shapes[s][2]);
        check_head(&d, 0, 0, "no bias", 500 + s);
        check_head(&d, 1, 0, "bias", 510 + s);
        d.op = CLSOFTMAX_OP_LOG_SOFTMAX;
        d.scale = 0.5;
        check_head(&d, 1, 0, "bias scale 0.5", 520 + s);
    }
    {
        /* rows longer than the kernels stage in local memory (half of PoCL's 512 KiB): the
           re-reading path */
        clsoftmax_head_desc d;
        clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 4, 70000);
        check_head(&d, 1, 0, "long rows", 540);
        d.op = CLSOFTMAX_OP_LOG_SOFTMAX;
        check_head(&d, 1, 0, "long rows", 541);
    }
    if (clsoftmax_context_supports_float64(test_suite_ctx)) {
        clsoftmax_head_desc d;
        clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT64, 7, 80, 1000);
        check_head(&d, 1, 0, "bias", 530);
        d.op = CLSOFTMAX_OP_LOG_SOFTMAX;
        check_head(&d, 0, 0, "no bias", 531);
    }
}

static void test_head_topk(void)
{
    static const size_t ks[] = {1, 5, 32};
    for (size_t c = 0; c < 3; c++) {
        clsoftmax_head_desc d;
        /* 4 features of {-3..3}: few distinct logits, so many exact ties */
        clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT32, 9, 4, 1000);
        d.topk = ks[c];
        check_head(&d, 0, 1, "ties", 600 + c);
        check_head(&d, 1, 1, "ties + bias", 610 + c);
        d.op = CLSOFTMAX_OP_LOG_SOFTMAX;
        check_head(&d, 1, 1, "ties + bias", 620 + c);
    }
    clsoftmax_head_desc d;
    clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT32, 3, 64, 32);
    d.topk = 32; /* k == classes: the whole row sorted */
    check_head(&d, 1, 1, "k = classes", 630);
    clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT32, 160, 4, 1000);
    d.topk = 8; /* rows split across threads on the CPU, each with its own selection buffers */
    check_head(&d, 1, 1, "ties, many rows", 635);
    if (clsoftmax_context_supports_float64(test_suite_ctx)) {
        clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT64, 5, 8, 500);
        d.topk = 7;
        check_head(&d, 1, 1, "ties", 640);
    }
}

/*
 * Special values follow the softmax's rules: a NaN or +inf among a row's t makes the row NaN
 * (head: a NaN bias entry; attention: +inf and NaN in the additive mask), while the other
 * rows stay finite and -inf only hides keys.
 */
static void test_special_values(void)
{
    const clsoftmax_dtype dt = CLSOFTMAX_FLOAT32;
    clsoftmax_head_desc h;
    clsoftmax_head_desc_init(&h, dt, 3, 8, 50);
    float* x = alloc_filled(dt, 3 * 8, 950);
    float* w = alloc_filled(dt, 50 * 8, 951);
    float* b = alloc_filled(dt, 50, 952);
    b[7] = NAN; /* every row gets NaN at class 7: every row is NaN */
    float out[150];
    long double ref[150];
    head_ref(&h, x, w, b, ref, NULL);
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &h, x, w, b, out, NULL),
                CLSOFTMAX_SUCCESS);
    TEST_CHECK(isnan(out[0]) && isnan(out[149]), "%s: NaN bias: rows not NaN",
               test_suite_backend_name());
    compare(out, dt, ref, 150, "head with a NaN bias");

    clsoftmax_attention_desc d;
    clsoftmax_attention_desc_init(&d, dt, 1, 2, 4, 6, 8, 8);
    d.mask_batch = 1;
    d.mask_heads = 1;
    float* q = alloc_filled(dt, q_span(&d), 953);
    float* k = alloc_filled(dt, k_span(&d), 954);
    float* v = alloc_filled(dt, v_span(&d), 955);
    float m[24] = {0};
    m[1 * 6 + 2] = INFINITY; /* query 1: +inf among finite scores */
    m[2 * 6 + 0] = NAN;      /* query 2: NaN */
    for (size_t j = 0; j < 6; j++)
        m[3 * 6 + j] = j == 4 ? 0.0f : -INFINITY; /* query 3: one visible key */
    float o[64];
    long double oref[64];
    attention_ref(&d, q, k, v, m, oref);
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, k, v, m, o), CLSOFTMAX_SUCCESS);
    compare(o, dt, oref, 64, "attention with +inf, NaN and -inf in the mask");
    TEST_CHECK(!isnan(o[0]) && isnan(o[8]) && isnan(o[16]) && !isnan(o[24]),
               "%s: attention NaN rows misplaced", test_suite_backend_name());
    free(x);
    free(w);
    free(b);
    free(q);
    free(k);
    free(v);
}

/* ---- argument errors ------------------------------------------------------------------------- */

static void test_head_errors(void)
{
    float x[8] = {0};
    float w[12] = {0};
    float out[6];
    cl_long idx[6];
    clsoftmax_head_desc d;
    clsoftmax_head_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 4, 3);
    test_fill_sentinel(out, sizeof out);
    const float before = out[0];
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, NULL, x, w, NULL, out, NULL),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &d, NULL, w, NULL, out, NULL),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &d, x, w, NULL, out, idx),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_CHECK(test_contains(clsoftmax_context_last_error(test_suite_ctx), "indices"),
               "message: %s", clsoftmax_context_last_error(test_suite_ctx));
    d.topk = 4; /* more than classes */
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &d, x, w, NULL, out, idx),
                CLSOFTMAX_INVALID_SHAPE);
    d.topk = 0;
    d.scale = INFINITY;
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &d, x, w, NULL, out, NULL),
                CLSOFTMAX_INVALID_SCALE);
    d.scale = 1;
    d.struct_size = 8;
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &d, x, w, NULL, out, NULL),
                CLSOFTMAX_INVALID_ARGUMENT);
    d.struct_size = sizeof d;
    d.classes = 0;
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &d, x, w, NULL, out, NULL),
                CLSOFTMAX_INVALID_SHAPE);
    d.classes = 3;
    TEST_STATUS(clsoftmax_linear_softmax_host(test_suite_ctx, &d, x, w, NULL, (float*)x + 1, NULL),
                CLSOFTMAX_OVERLAP);
    TEST_CHECK(out[0] == before, "out was written on error");
    if (clsoftmax_context_backend(test_suite_ctx) == CLSOFTMAX_BACKEND_CPU)
        TEST_STATUS(clsoftmax_linear_softmax_buffer(test_suite_ctx, &d, NULL, 0, NULL, 0, NULL, 0,
                                                    NULL, 0, NULL, 0, NULL, 0, NULL, NULL),
                    CLSOFTMAX_UNSUPPORTED);
}

static void test_attention_errors(void)
{
    float q[64] = {0};
    float out[64];
    clsoftmax_attention_desc d;
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 1, 2, 2, 2, 4, 4);
    test_fill_sentinel(out, sizeof out);
    float before[64];
    memcpy(before, out, sizeof out);
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, NULL, q, NULL, out),
                CLSOFTMAX_INVALID_ARGUMENT);
    d.q_strides[3] = 2; /* bad strides: the feature stride must be 1 */
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, out),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_CHECK(test_contains(clsoftmax_context_last_error(test_suite_ctx), "stride"), "message: %s",
               clsoftmax_context_last_error(test_suite_ctx));
    d.q_strides[3] = 1;
    d.k_strides[2] = 3; /* seq stride below d */
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, out),
                CLSOFTMAX_INVALID_ARGUMENT);
    d.k_strides[2] = 4;
    d.o_strides[1] = 4; /* heads overlap rows of the output */
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, out),
                CLSOFTMAX_INVALID_ARGUMENT);
    d.o_strides[1] = 8;
    d.mask_batch = 1;
    d.mask_heads = 3; /* mismatched shape: neither 1 nor heads */
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, q, out),
                CLSOFTMAX_INVALID_SHAPE);
    d.mask_heads = 2;
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, out),
                CLSOFTMAX_INVALID_ARGUMENT);
    d.mask_batch = 0;
    size_t lens[1] = {3};
    d.key_lengths = lens;
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, out),
                CLSOFTMAX_INVALID_ARGUMENT);
    d.key_lengths = NULL;
    d.seq_k = 0;
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, out),
                CLSOFTMAX_INVALID_SHAPE);
    d.seq_k = 2;
    d.scale = NAN;
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, out),
                CLSOFTMAX_INVALID_SCALE);
    d.scale = 0.5;
    TEST_STATUS(clsoftmax_attention_host(test_suite_ctx, &d, q, q, q, NULL, q + 4),
                CLSOFTMAX_OVERLAP);
    TEST_CHECK(memcmp(out, before, sizeof out) == 0, "out was written on error");
    if (clsoftmax_context_backend(test_suite_ctx) == CLSOFTMAX_BACKEND_CPU)
        TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &d, NULL, 0, NULL, 0, NULL, 0, NULL,
                                               0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL),
                    CLSOFTMAX_UNSUPPORTED);
}

/* ---- device buffers (OpenCL) ----------------------------------------------------------------- */

static cl_mem upload(const void* data, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(clsoftmax_context_cl_context(test_suite_ctx),
                              CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void*)data, &err);
    TEST_CHECK(err == CL_SUCCESS, "clCreateBuffer %zu bytes: %d", bytes, err);
    return m;
}

/* Attention through the buffer entry point with a workspace for bk keys per block. */
static void check_attention_blocked(clsoftmax_attention_desc* d, size_t bk, const char* what,
                                    uint64_t seed)
{
    const clsoftmax_dtype dt = d->dtype;
    const size_t esz = test_dtype_size(dt);
    void* q = alloc_filled(dt, q_span(d), seed);
    void* k = alloc_filled(dt, k_span(d), seed + 1);
    void* v = alloc_filled(dt, v_span(d), seed + 2);
    void* mask = d->mask_batch ? alloc_filled(dt, mask_count(d), seed + 3) : NULL;
    size_t n = d->batch * d->heads * d->seq_q * d->d_v;
    long double* ref = malloc(n * sizeof *ref);
    void* out = malloc(o_span(d) * esz);
    attention_ref(d, q, k, v, mask, ref);

    size_t min_b = 0;
    size_t pref = 0;
    TEST_STATUS(clsoftmax_attention_workspace_size(test_suite_ctx, d, &min_b, &pref),
                CLSOFTMAX_SUCCESS);
    const size_t rows = d->heads * d->seq_q;
    TEST_CHECK(min_b == rows * 3 * esz, "min workspace %zu", min_b);
    const size_t ws_bytes = rows * (2 + bk) * esz;
    cl_mem bq = upload(q, q_span(d) * esz);
    cl_mem bkk = upload(k, k_span(d) * esz);
    cl_mem bv = upload(v, v_span(d) * esz);
    cl_mem bm = mask ? upload(mask, mask_count(d) * esz) : NULL;
    cl_mem bo = upload(NULL, (o_span(d) + 3) * esz);
    cl_mem ws = upload(NULL, ws_bytes);
    cl_event ev = NULL;
    clsoftmax_status st = clsoftmax_attention_buffer(test_suite_ctx, d, bq, 0, bkk, 0, bv, 0, bm, 0,
                                                     bo, 3, ws, ws_bytes, NULL, 0, NULL, &ev);
    char label[256];
    snprintf(label, sizeof label, "opencl attention %s, %zu keys per block [%zu/%zu]", what, bk,
             d->seq_q, d->seq_k);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS && ev != NULL, "%s: %s (%s)", label,
               clsoftmax_status_name(st), clsoftmax_context_last_error(test_suite_ctx));
    if (st == CLSOFTMAX_SUCCESS) {
        cl_int err = clEnqueueReadBuffer(clsoftmax_context_cl_queue(test_suite_ctx), bo, CL_TRUE,
                                         3 * esz, o_span(d) * esz, out, 1, &ev, NULL);
        TEST_CHECK(err == CL_SUCCESS, "read: %d", err);
        clReleaseEvent(ev);
        void* g = gather_out(d, out);
        compare(g, dt, ref, n, label);
        free(g);
    }
    cl_mem all[] = {bq, bkk, bv, bm, bo, ws};
    for (size_t i = 0; i < 6; i++)
        if (all[i] != NULL)
            clReleaseMemObject(all[i]);
    free(q);
    free(k);
    free(v);
    free(mask);
    free(ref);
    free(out);
}

static void test_attention_blocked(void)
{
    clsoftmax_attention_desc d;
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 1, 2, 64, 1000, 64, 64);
    check_attention_blocked(&d, 100, "no mask", 700);
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 2, 7, 129, 64, 80);
    size_t lens[2] = {70, 129};
    d.key_lengths = lens;
    d.causal = 1;
    d.mask_batch = 1;
    d.mask_heads = 2;
    check_attention_blocked(&d, 64, "causal + mask + key lengths", 701);
    /* one key per block: the online rescaling at its most frequent */
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 2, 7, 20, 64, 80);
    size_t lens1[2] = {15, 20};
    d.key_lengths = lens1;
    d.causal = 1;
    d.mask_batch = 2;
    d.mask_heads = 1;
    check_attention_blocked(&d, 1, "causal + mask + key lengths", 702);
    if (clsoftmax_context_supports_float64(test_suite_ctx)) {
        clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT64, 1, 1, 64, 7, 128, 128);
        d.causal = 1; /* seq_q > seq_k: the first 57 rows all masked across blocks */
        check_attention_blocked(&d, 3, "causal", 703);
    }
}

/*
 * A pipeline on the caller's own queue: a non-blocking upload, attention waiting on it, the
 * head on attention's output waiting on attention's event, a read waiting on the head's.
 */
static void test_chained_events(void)
{
    cl_int err;
    cl_command_queue queue =
        clCreateCommandQueue(clsoftmax_context_cl_context(test_suite_ctx),
                             clsoftmax_context_cl_device(test_suite_ctx), 0, &err);
    TEST_CHECK(err == CL_SUCCESS, "clCreateCommandQueue: %d", err);
    if (err != CL_SUCCESS)
        return;
    const clsoftmax_dtype dt = CLSOFTMAX_FLOAT32;
    clsoftmax_attention_desc a;
    clsoftmax_attention_desc_init(&a, dt, 2, 2, 7, 64, 64, 16);
    const size_t nq = q_span(&a), nk = k_span(&a), nv = v_span(&a), no = o_span(&a);
    float* q = alloc_filled(dt, nq, 800);
    float* k = alloc_filled(dt, nk, 801);
    float* v = alloc_filled(dt, nv, 802);
    clsoftmax_head_desc h;
    clsoftmax_head_desc_init(&h, dt, 2 * 2 * 7, 16, 10);
    h.topk = 3;
    float* w = alloc_filled(dt, 10 * 16, 803);
    cl_mem bq = upload(NULL, nq * 4), bk = upload(k, nk * 4), bv = upload(v, nv * 4);
    cl_mem bo = upload(NULL, no * 4), bw = upload(w, 160 * 4);
    cl_mem bp = upload(NULL, h.rows * 3 * 4), bi = upload(NULL, h.rows * 3 * sizeof(cl_long));
    cl_event up = NULL, e1 = NULL, e2 = NULL;
    err = clEnqueueWriteBuffer(queue, bq, CL_FALSE, 0, nq * 4, q, 0, NULL, &up);
    TEST_CHECK(err == CL_SUCCESS, "write: %d", err);
    TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &a, bq, 0, bk, 0, bv, 0, NULL, 0, bo, 0,
                                           NULL, 0, queue, 1, &up, &e1),
                CLSOFTMAX_SUCCESS);
    TEST_STATUS(clsoftmax_linear_softmax_buffer(test_suite_ctx, &h, bo, 0, bw, 0, NULL, 0, bp, 0,
                                                bi, 0, queue, 1, &e1, &e2),
                CLSOFTMAX_SUCCESS);
    float* o = malloc(no * 4);
    float* p = malloc(h.rows * 3 * 4);
    cl_long* ix = malloc(h.rows * 3 * sizeof *ix);
    if (e2 != NULL) {
        err = clEnqueueReadBuffer(queue, bo, CL_FALSE, 0, no * 4, o, 1, &e2, NULL);
        err |= clEnqueueReadBuffer(queue, bp, CL_FALSE, 0, h.rows * 12, p, 1, &e2, NULL);
        err |=
            clEnqueueReadBuffer(queue, bi, CL_TRUE, 0, h.rows * 3 * sizeof *ix, ix, 1, &e2, NULL);
        TEST_CHECK(err == CL_SUCCESS, "reads: %d", err);
        long double* ref = malloc(no * sizeof *ref);
        attention_ref(&a, q, k, v, NULL, ref);
        compare(o, dt, ref, no, "chained attention");
        long double* href = malloc(h.rows * 3 * sizeof *href);
        cl_long* hidx = malloc(h.rows * 3 * sizeof *hidx);
        head_ref(&h, o, w, NULL, href, hidx);
        compare(p, dt, href, h.rows * 3, "chained head top-3");
        TEST_CHECK(memcmp(ix, hidx, h.rows * 3 * sizeof *ix) == 0, "chained head indices differ");
        free(ref);
        free(href);
        free(hidx);
    }
    if (up)
        clReleaseEvent(up);
    if (e1)
        clReleaseEvent(e1);
    if (e2)
        clReleaseEvent(e2);
    cl_mem all[] = {bq, bk, bv, bo, bw, bp, bi};
    for (size_t i = 0; i < 7; i++)
        clReleaseMemObject(all[i]);
    clReleaseCommandQueue(queue);
    free(q);
    free(k);
    free(v);
    free(w);
    free(o);
    free(p);
    free(ix);
}

static void test_buffer_errors(void)
{
    clsoftmax_attention_desc a;
    clsoftmax_attention_desc_init(&a, CLSOFTMAX_FLOAT32, 1, 2, 4, 4, 8, 8);
    const size_t n = 64;
    float sentinel[64];
    test_fill_sentinel(sentinel, sizeof sentinel);
    cl_mem in = upload(NULL, n * 4);
    cl_mem small = upload(NULL, (n - 1) * 4);
    cl_mem out = upload(sentinel, n * 4);
    cl_event ev = (cl_event)0x1;
    TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &a, in, 0, in, 0, NULL, 0, NULL, 0, out,
                                           0, NULL, 0, NULL, 0, NULL, &ev),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &a, in, 0, small, 0, in, 0, NULL, 0, out,
                                           0, NULL, 0, NULL, 0, NULL, &ev),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_CHECK(test_contains(clsoftmax_context_last_error(test_suite_ctx), "k holds"),
               "message: %s", clsoftmax_context_last_error(test_suite_ctx));
    TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &a, in, 1, in, 0, in, 0, NULL, 0, out, 0,
                                           NULL, 0, NULL, 0, NULL, &ev),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &a, in, 0, in, 0, in, 0, NULL, 0, out, 0,
                                           small, 8, NULL, 0, NULL, &ev),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &a, in, 0, in, 0, in, 0, NULL, 0, out, 0,
                                           NULL, 0, NULL, 1, NULL, &ev),
                CLSOFTMAX_INVALID_ARGUMENT);
    cl_int err;
    cl_command_queue ooo = clCreateCommandQueue(clsoftmax_context_cl_context(test_suite_ctx),
                                                clsoftmax_context_cl_device(test_suite_ctx),
                                                CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (err == CL_SUCCESS) {
        TEST_STATUS(clsoftmax_attention_buffer(test_suite_ctx, &a, in, 0, in, 0, in, 0, NULL, 0,
                                               out, 0, NULL, 0, ooo, 0, NULL, &ev),
                    CLSOFTMAX_INVALID_QUEUE);
        clReleaseCommandQueue(ooo);
    }
    clsoftmax_head_desc h;
    clsoftmax_head_desc_init(&h, CLSOFTMAX_FLOAT32, 4, 8, 16);
    TEST_STATUS(clsoftmax_linear_softmax_buffer(test_suite_ctx, &h, in, 0, small, 0, NULL, 0, out,
                                                0, NULL, 0, NULL, 0, NULL, &ev),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_STATUS(clsoftmax_linear_softmax_buffer(test_suite_ctx, &h, in, 0, NULL, 0, NULL, 0, out, 0,
                                                NULL, 0, NULL, 0, NULL, &ev),
                CLSOFTMAX_INVALID_ARGUMENT);
    h.topk = 2;
    TEST_STATUS(clsoftmax_linear_softmax_buffer(test_suite_ctx, &h, in, 0, in, 0, NULL, 0, out, 0,
                                                small, 0, NULL, 0, NULL, &ev),
                CLSOFTMAX_BUFFER_TOO_SMALL);
    TEST_CHECK(ev == (cl_event)0x1, "event written on error");
    float got[64];
    clEnqueueReadBuffer(clsoftmax_context_cl_queue(test_suite_ctx), out, CL_TRUE, 0, sizeof got,
                        got, 0, NULL, NULL);
    TEST_CHECK(memcmp(got, sentinel, sizeof got) == 0, "out buffer written on error");
    clReleaseMemObject(in);
    clReleaseMemObject(small);
    clReleaseMemObject(out);
}

/* ---- the command-line tool ------------------------------------------------------------------ */

/* Runs the tool with args (NULL-terminated), output discarded; its exit status, or -1. */
static int run_cli(const char* const* args)
{
    char* argv[24];
    size_t n = 0;
    argv[n++] = (char*)CLSOFTMAX_TOOL_PATH;
    for (; args[n - 1] != NULL && n < 23; n++)
        argv[n] = (char*)args[n - 1];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
            _exit(126);
        execv(CLSOFTMAX_TOOL_PATH, argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void save(const char* path, size_t ndim, const size_t* dims, const void* data)
{
    npy_array a = {.dtype = NPY_FLOAT32, .ndim = ndim, .data = (void*)data};
    a.count = 1;
    for (size_t i = 0; i < ndim; i++) {
        a.dims[i] = dims[i];
        a.count *= dims[i];
    }
    char msg[256];
    TEST_CHECK(npy_write(path, &a, msg, sizeof msg) == NPY_OK, "npy_write: %s", msg);
}

static void test_cli(void)
{
    const char* backend = test_suite_backend_name();
    char dir[] = "/tmp/clsoftmax_ops_XXXXXX";
    if (mkdtemp(dir) == NULL) {
        TEST_CHECK(0, "mkdtemp failed");
        return;
    }
    char pq[64], pk[64], pv[64], pm[64], po[64], px[64], pw[64], pb[64], ph[64], phi[64];
    snprintf(pq, sizeof pq, "%s/q.npy", dir);
    snprintf(pk, sizeof pk, "%s/k.npy", dir);
    snprintf(pv, sizeof pv, "%s/v.npy", dir);
    snprintf(pm, sizeof pm, "%s/m.npy", dir);
    snprintf(po, sizeof po, "%s/o.npy", dir);
    snprintf(px, sizeof px, "%s/x.npy", dir);
    snprintf(pw, sizeof pw, "%s/w.npy", dir);
    snprintf(pb, sizeof pb, "%s/b.npy", dir);
    snprintf(ph, sizeof ph, "%s/h.npy", dir);
    snprintf(phi, sizeof phi, "%s/h.idx.npy", dir);

    /* attention: causal with seq_q < seq_k, a mask whose first row hides every key */
    clsoftmax_attention_desc d;
    clsoftmax_attention_desc_init(&d, CLSOFTMAX_FLOAT32, 2, 2, 7, 9, 16, 8);
    d.causal = 1;
    d.mask_batch = 1;
    d.mask_heads = 1;
    float* q = alloc_filled(d.dtype, q_span(&d), 900);
    float* k = alloc_filled(d.dtype, k_span(&d), 901);
    float* v = alloc_filled(d.dtype, v_span(&d), 902);
    float* m = alloc_filled(d.dtype, mask_count(&d), 903);
    for (size_t j = 0; j < 9; j++)
        m[j] = -INFINITY;
    const size_t qd[4] = {2, 2, 7, 16}, kd[4] = {2, 2, 9, 16}, vd[4] = {2, 2, 9, 8};
    const size_t md[2] = {7, 9};
    save(pq, 4, qd, q);
    save(pk, 4, kd, k);
    save(pv, 4, vd, v);
    save(pm, 2, md, m);
    const char* a1[] = {"attention", pq, pk,          pv,      po,  "--causal",
                        "--mask",    pm, "--backend", backend, NULL};
    TEST_CHECK(run_cli(a1) == 0, "clsoftmax attention failed");
    npy_array out = {0};
    char msg[256];
    if (npy_read(po, &out, msg, sizeof msg) == NPY_OK) {
        size_t n = 2 * 2 * 7 * 8;
        long double* ref = malloc(n * sizeof *ref);
        attention_ref(&d, q, k, v, m, ref);
        TEST_CHECK(out.ndim == 4 && out.dims[3] == 8 && out.count == n, "output shape");
        if (out.count == n)
            compare(out.data, d.dtype, ref, n, "cli attention");
        free(ref);
        npy_array_free(&out);
    } else {
        TEST_CHECK(0, "%s", msg);
    }
    /* K of another feature count: a usage error, and no output written */
    const size_t bad[4] = {2, 2, 9, 15};
    save(pk, 4, bad, k);
    remove(po);
    TEST_CHECK(run_cli(a1) == 2, "mismatched shapes should exit 2");
    TEST_CHECK(access(po, F_OK) != 0, "an output appeared after an error");

    /* head with bias and top-5 */
    clsoftmax_head_desc h;
    clsoftmax_head_desc_init(&h, CLSOFTMAX_FLOAT32, 5, 32, 100);
    h.topk = 5;
    float* x = alloc_filled(h.dtype, 5 * 32, 904);
    float* w = alloc_filled(h.dtype, 100 * 32, 905);
    float* b = alloc_filled(h.dtype, 100, 906);
    const size_t xd[2] = {5, 32}, wd[2] = {100, 32}, bd[1] = {100};
    save(px, 2, xd, x);
    save(pw, 2, wd, w);
    save(pb, 1, bd, b);
    const char* a2[] = {"head",   px,  pw,          ph,      "--bias", pb,
                        "--topk", "5", "--backend", backend, NULL};
    TEST_CHECK(run_cli(a2) == 0, "clsoftmax head failed");
    npy_array hv = {0}, hi = {0};
    if (npy_read(ph, &hv, msg, sizeof msg) == NPY_OK &&
        npy_read(phi, &hi, msg, sizeof msg) == NPY_OK) {
        long double ref[25];
        cl_long ri[25];
        head_ref(&h, x, w, b, ref, ri);
        TEST_CHECK(hv.count == 25 && hi.count == 25 && hi.dtype == NPY_FLOAT64, "top-k files");
        if (hv.count == 25)
            compare(hv.data, h.dtype, ref, 25, "cli head top-5");
        for (size_t e = 0; hi.count == 25 && e < 25; e++)
            TEST_CHECK(((double*)hi.data)[e] == (double)ri[e], "index %zu: %g, expected %lld", e,
                       ((double*)hi.data)[e], (long long)ri[e]);
    } else {
        TEST_CHECK(0, "%s", msg);
    }
    npy_array_free(&hv);
    npy_array_free(&hi);
    const char* files[] = {pq, pk, pv, pm, po, px, pw, pb, ph, phi};
    for (size_t i = 0; i < 10; i++)
        remove(files[i]);
    rmdir(dir);
    free(q);
    free(k);
    free(v);
    free(m);
    free(x);
    free(w);
    free(b);
}

static void add_common(CU_pSuite s)
{
    if (s == NULL)
        return;
    CU_add_test(s, "attention shapes", test_attention_shapes);
    CU_add_test(s, "attention masks", test_attention_masks);
    CU_add_test(s, "attention float64", test_attention_float64);
    CU_add_test(s, "attention strided views", test_attention_strided);
    CU_add_test(s, "head full rows", test_head_full);
    CU_add_test(s, "head top-k", test_head_topk);
    CU_add_test(s, "NaN and infinities", test_special_values);
    CU_add_test(s, "head errors", test_head_errors);
    CU_add_test(s, "attention errors", test_attention_errors);
    CU_add_test(s, "command-line attention and head", test_cli);
}

void test_register_ops(void)
{
    add_common(CU_add_suite("ops_cpu", test_suite_init_cpu, test_suite_cleanup));
    CU_pSuite cl = CU_add_suite("ops_opencl", test_suite_init_opencl, test_suite_cleanup);
    add_common(cl);
    if (cl != NULL) {
        CU_add_test(cl, "attention in key blocks", test_attention_blocked);
        CU_add_test(cl, "chained calls with events", test_chained_events);
        CU_add_test(cl, "buffer errors", test_buffer_errors);
    }
}
