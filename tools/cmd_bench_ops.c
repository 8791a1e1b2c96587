/* cmd_bench_ops.c - `clsoftmax bench-ops`: time the classifier head and attention per backend.
 *
 * For each shape and backend: the median of --reps runs of the whole operation (device
 * buffers and clFinish on OpenCL, host memory on the CPU), its GFLOP/s, and where the time
 * goes, from public calls only:
 *   step   the same operation with d = d_v = 1 (attention) or in_features = 1 (head): the
 *          products shrink to nothing, so this is the fused softmax (+ scale, mask, bias)
 *          step plus two near-empty GEMM launches, an upper bound on the softmax's share;
 *   gemm   total - step;
 *   plain  clsoftmax_softmax on a tensor of the scores' shape ([rows, seq_k] or [rows,
 *          classes]), the plain softmax the fused step replaces.
 * step still holds the GEMMs' own pass over the scores (the first product writes them, the
 * second reads them, and CLBlast may pad them), so step is at most about plain + two passes.
 * Attention also runs with every mask at once (causal, additive, key lengths): its ratio to
 * the unmasked total is what fusing the masks into the softmax costs.
 * tools/bench/peers_ops.py times PyTorch on the same shapes.
 */
#include "cli_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_ctx {
    clsoftmax_context* ctx;
    int opencl;
    size_t reps;
} bench_ctx;

/* A device buffer of n floats filled from the bench's generator, or host memory on the CPU. */
typedef struct arr {
    float* host;
    cl_mem dev;
    size_t n;
} arr;

static int arr_make(const bench_ctx* b, arr* a, size_t n, uint64_t seed)
{
    a->n = n;
    a->dev = NULL;
    a->host = malloc(n * sizeof(float));
    if (a->host == NULL)
        return -1;
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        a->host[i] = cli_normalish(&s) * 0.25f;
    if (b->opencl) {
        cl_int err;
        a->dev = clCreateBuffer(clsoftmax_context_cl_context(b->ctx),
                                CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n * sizeof(float),
                                a->host, &err);
        if (err != CL_SUCCESS)
            return -1;
    }
    return 0;
}

static void arr_free(arr* a)
{
    free(a->host);
    if (a->dev != NULL)
        clReleaseMemObject(a->dev);
    memset(a, 0, sizeof *a);
}

typedef struct attn_case {
    size_t batch, heads, seq, d;
    int causal;
} attn_case;

/* One attention call (blocking); 0 on success. */
static int run_attention(const bench_ctx* b, const clsoftmax_attention_desc* d, arr* q, arr* k,
                         arr* v, arr* m, arr* o)
{
    clsoftmax_status st;
    if (b->opencl) {
        st = clsoftmax_attention_buffer(b->ctx, d, q->dev, 0, k->dev, 0, v->dev, 0,
                                        m != NULL ? m->dev : NULL, 0, o->dev, 0, NULL, 0, NULL, 0,
                                        NULL, NULL);
        if (st == CLSOFTMAX_SUCCESS && clFinish(clsoftmax_context_cl_queue(b->ctx)) != CL_SUCCESS)
            st = CLSOFTMAX_OPENCL_ERROR;
    } else {
        st = clsoftmax_attention_host(b->ctx, d, q->host, k->host, v->host,
                                      m != NULL ? m->host : NULL, o->host);
    }
    if (st != CLSOFTMAX_SUCCESS)
        fprintf(stderr, "clsoftmax bench-ops: attention: %s: %s\n", clsoftmax_status_name(st),
                clsoftmax_context_last_error(b->ctx));
    return st == CLSOFTMAX_SUCCESS ? 0 : -1;
}

static int run_softmax(const bench_ctx* b, const clsoftmax_desc* d, arr* x)
{
    clsoftmax_status st;
    if (b->opencl) {
        st = clsoftmax_softmax_buffer(b->ctx, d, x->dev, 0, x->dev, 0, NULL, 0, NULL, NULL);
        if (st == CLSOFTMAX_SUCCESS && clFinish(clsoftmax_context_cl_queue(b->ctx)) != CL_SUCCESS)
            st = CLSOFTMAX_OPENCL_ERROR;
    } else {
        st = clsoftmax_softmax_host(b->ctx, d, x->host, x->host);
    }
    if (st != CLSOFTMAX_SUCCESS)
        fprintf(stderr, "clsoftmax bench-ops: softmax: %s: %s\n", clsoftmax_status_name(st),
                clsoftmax_context_last_error(b->ctx));
    return st == CLSOFTMAX_SUCCESS ? 0 : -1;
}

/* Median seconds of reps attention calls after one warm-up; negative on failure. */
static double time_attention(const bench_ctx* b, const attn_case* c, size_t d, size_t dv,
                             int masked)
{
    clsoftmax_attention_desc desc;
    clsoftmax_attention_desc_init(&desc, CLSOFTMAX_FLOAT32, c->batch, c->heads, c->seq, c->seq, d,
                                  dv);
    desc.causal = c->causal || masked;
    /* the scale of the real head size, so the softmax sees the same spread of scores */
    desc.scale = 1.0 / sqrt((double)c->d);
    const size_t bh = c->batch * c->heads * c->seq;
    arr q = {0}, k = {0}, v = {0}, o = {0}, m = {0};
    double result = -1;
    double* t = calloc(b->reps, sizeof *t);
    size_t* lengths = calloc(c->batch, sizeof *lengths);
    if (masked) {
        /* every mask at once: causal, an additive [1, heads] mask and key lengths */
        desc.mask_batch = 1;
        desc.mask_heads = c->heads;
        for (size_t i = 0; lengths != NULL && i < c->batch; i++)
            lengths[i] = c->seq - i % 7;
        desc.key_lengths = lengths;
    }
    if (t == NULL || lengths == NULL || arr_make(b, &q, bh * d, 1) || arr_make(b, &k, bh * d, 2) ||
        arr_make(b, &v, bh * dv, 3) || arr_make(b, &o, bh * dv, 4) ||
        (masked && arr_make(b, &m, c->heads * c->seq * c->seq, 11)))
        goto done;
    if (run_attention(b, &desc, &q, &k, &v, masked ? &m : NULL, &o))
        goto done;
    for (size_t r = 0; r < b->reps; r++) {
        double t0 = cli_now_seconds();
        if (run_attention(b, &desc, &q, &k, &v, masked ? &m : NULL, &o))
            goto done;
        t[r] = cli_now_seconds() - t0;
    }
    result = cli_median(t, b->reps);
done:
    arr_free(&q);
    arr_free(&k);
    arr_free(&v);
    arr_free(&o);
    arr_free(&m);
    free(lengths);
    free(t);
    return result;
}

static double time_plain(const bench_ctx* b, size_t rows, size_t cols)
{
    const size_t dims[2] = {rows, cols};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    arr x = {0};
    double result = -1;
    double* t = calloc(b->reps, sizeof *t);
    if (t == NULL || arr_make(b, &x, rows * cols, 5) || run_softmax(b, &desc, &x))
        goto done;
    for (size_t r = 0; r < b->reps; r++) {
        double t0 = cli_now_seconds();
        if (run_softmax(b, &desc, &x))
            goto done;
        t[r] = cli_now_seconds() - t0;
    }
    result = cli_median(t, b->reps);
done:
    arr_free(&x);
    free(t);
    return result;
}

static void print_row(const char* shape, const char* backend, double flops, double total,
                      double step, double plain)
{
    printf("%-34s %-7s %9.2f %8.1f %9.2f %9.2f %9.2f %6.2f\n", shape, backend, total * 1e3,
           flops / total * 1e-9, (total - step) * 1e3, step * 1e3, plain * 1e3, step / plain);
}

static void print_header(void)
{
    printf("%-34s %-7s %9s %8s %9s %9s %9s %6s\n", "shape", "backend", "total ms", "GFLOP/s",
           "gemm ms", "step ms", "plain ms", "step/plain");
}

static int bench_attention(const bench_ctx* b, int quick, const char* label)
{
    static const attn_case full[] = {{1, 8, 128, 64, 0},
                                     {1, 8, 512, 64, 0},
                                     {1, 8, 512, 64, 1},
                                     {2, 8, 1024, 64, 0},
                                     {1, 8, 2048, 128, 0}};
    static const attn_case small[] = {{1, 8, 128, 64, 0}, {1, 8, 512, 64, 1}};
    const attn_case* cases = quick ? small : full;
    size_t n = quick ? 2 : sizeof full / sizeof full[0];
    for (size_t i = 0; i < n; i++) {
        const attn_case* c = &cases[i];
        double total = time_attention(b, c, c->d, c->d, 0);
        double masked = time_attention(b, c, c->d, c->d, 1);
        double step = time_attention(b, c, 1, 1, 0);
        double plain = time_plain(b, c->batch * c->heads * c->seq, c->seq);
        if (total < 0 || masked < 0 || step < 0 || plain < 0)
            return EXIT_RUN_FAILED;
        char shape[64];
        snprintf(shape, sizeof shape, "b%zu h%zu s%zu d%zu%s", c->batch, c->heads, c->seq, c->d,
                 c->causal ? " causal" : "");
        double flops = 2.0 * (double)c->batch * (double)c->heads * (double)c->seq * (double)c->seq *
                       (2.0 * (double)c->d);
        print_row(shape, label, flops, total, step, plain);
        printf("%-34s %-7s %9.2f   (all masks: causal + additive + key lengths; x%.2f of total)\n",
               "  same, all masks", label, masked * 1e3, masked / total);
        fflush(stdout);
    }
    return 0;
}

typedef struct head_case {
    size_t rows, in, classes, topk;
} head_case;

static double time_head(const bench_ctx* b, const head_case* c, size_t in)
{
    clsoftmax_head_desc desc;
    clsoftmax_head_desc_init(&desc, CLSOFTMAX_FLOAT32, c->rows, in, c->classes);
    desc.topk = c->topk;
    const size_t cols = c->topk ? c->topk : c->classes;
    arr x = {0}, w = {0}, bias = {0}, out = {0}, idx = {0};
    double result = -1;
    double* t = calloc(b->reps, sizeof *t);
    if (t == NULL || arr_make(b, &x, c->rows * in, 6) || arr_make(b, &w, c->classes * in, 7) ||
        arr_make(b, &bias, c->classes, 8) || arr_make(b, &out, c->rows * cols, 9) ||
        (c->topk && arr_make(b, &idx, c->rows * c->topk * 2, 10)))
        goto done;
    for (size_t r = 0; r <= b->reps; r++) {
        double t0 = cli_now_seconds();
        clsoftmax_status st;
        if (b->opencl) {
            st = clsoftmax_linear_softmax_buffer(b->ctx, &desc, x.dev, 0, w.dev, 0, bias.dev, 0,
                                                 out.dev, 0, c->topk ? idx.dev : NULL, 0, NULL, 0,
                                                 NULL, NULL);
            if (st == CLSOFTMAX_SUCCESS &&
                clFinish(clsoftmax_context_cl_queue(b->ctx)) != CL_SUCCESS)
                st = CLSOFTMAX_OPENCL_ERROR;
        } else {
            st = clsoftmax_linear_softmax_host(b->ctx, &desc, x.host, w.host, bias.host, out.host,
                                               c->topk ? (cl_long*)idx.host : NULL);
        }
        if (st != CLSOFTMAX_SUCCESS) {
            fprintf(stderr, "clsoftmax bench-ops: head: %s: %s\n", clsoftmax_status_name(st),
                    clsoftmax_context_last_error(b->ctx));
            goto done;
        }
        if (r > 0) /* the first call is the warm-up */
            t[r - 1] = cli_now_seconds() - t0;
    }
    result = cli_median(t, b->reps);
done:
    arr_free(&x);
    arr_free(&w);
    arr_free(&bias);
    arr_free(&out);
    arr_free(&idx);
    free(t);
    return result;
}

static int bench_head(const bench_ctx* b, int quick, const char* label)
{
    static const head_case full[] = {{64, 768, 1000, 0},
                                     {1024, 768, 1000, 0},
                                     {256, 1024, 32000, 0},
                                     {64, 4096, 50000, 0},
                                     {64, 4096, 50000, 5}};
    static const head_case small[] = {{64, 768, 1000, 0}, {64, 768, 1000, 5}};
    const head_case* cases = quick ? small : full;
    size_t n = quick ? 2 : sizeof full / sizeof full[0];
    for (size_t i = 0; i < n; i++) {
        const head_case* c = &cases[i];
        double total = time_head(b, c, c->in);
        double step = time_head(b, c, 1);
        double plain = time_plain(b, c->rows, c->classes);
        if (total < 0 || step < 0 || plain < 0)
            return EXIT_RUN_FAILED;
        char shape[64];
        snprintf(shape, sizeof shape, "rows%zu in%zu cls%zu%s", c->rows, c->in, c->classes,
                 c->topk ? " top5" : " +bias");
        print_row(shape, label, 2.0 * (double)c->rows * (double)c->in * (double)c->classes, total,
                  step, plain);
        fflush(stdout);
    }
    return 0;
}

int cmd_bench_ops(int argc, char** argv)
{
    const char* op = NULL;
    int quick = 0;
    int which = 3; /* 1: cpu, 2: opencl */
    size_t reps = 5;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--op") == 0 && i + 1 < argc)
            op = argv[++i];
        else if (strncmp(argv[i], "--op=", 5) == 0)
            op = argv[i] + 5;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            if (cli_parse_count(argv[++i], &reps) != 0) {
                cli_usage_error("bench-ops", "--reps '%s' is not a positive integer", argv[i]);
                return EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            const char* v = argv[++i];
            which = strcmp(v, "cpu") == 0 ? 1 : strcmp(v, "opencl") == 0 ? 2 : 0;
            if (strcmp(v, "both") == 0)
                which = 3;
            if (which == 0) {
                cli_usage_error("bench-ops", "--backend '%s' is not cpu, opencl or both", v);
                return EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: clsoftmax bench-ops --op attention|head [--backend cpu|opencl|both]\n"
                   "                           [--reps N] [--quick]\n");
            return 0;
        } else {
            cli_usage_error("bench-ops", "unknown argument '%s'", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (op == NULL || (strcmp(op, "attention") != 0 && strcmp(op, "head") != 0)) {
        cli_usage_error("bench-ops", "--op attention or --op head is required");
        return EXIT_USAGE;
    }
    printf("bench-ops %s, float32, median of %zu runs after a warm-up; step = the operation "
           "with d = 1 (in = 1): fused softmax + near-empty GEMMs; gemm = total - step; plain "
           "= clsoftmax_softmax over the scores' shape\n",
           op, reps);
    print_header();
    int rc = 0;
    for (int pass = 1; pass <= 2 && rc == 0; pass++) {
        if (!(which & pass))
            continue;
        bench_ctx b = {NULL, pass == 2, reps};
        clsoftmax_status st = cli_create_context(
            1, pass == 2 ? CLSOFTMAX_BACKEND_OPENCL : CLSOFTMAX_BACKEND_CPU, NULL, &b.ctx);
        if (st != CLSOFTMAX_SUCCESS) {
            fprintf(stderr, "clsoftmax bench-ops: cannot create a context: %s: %s\n",
                    clsoftmax_status_name(st), clsoftmax_last_create_error());
            return EXIT_RUN_FAILED;
        }
        const char* label = pass == 2 ? "opencl" : "cpu";
        rc = strcmp(op, "attention") == 0 ? bench_attention(&b, quick, label)
                                          : bench_head(&b, quick, label);
        clsoftmax_context_free(b.ctx);
    }
    return rc;
}
