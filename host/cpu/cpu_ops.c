/* cpu_ops.c - the CPU fallback of the head and attention: CBLAS (OpenBLAS) GEMMs + fused softmax.
 *
 * Numerics match the OpenCL kernels: in float32, t = scale * (l + b) (head) or
 * t = scale * s + mask (attention) is rounded to float, t - max and exp taken in float as on
 * the device; the row sum runs in double (the device's Kahan sum in float is as accurate).
 * Includes <cblas.h> only, never OpenCL.
 */
#include "cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Last: the allocations of the head and attention go through the counted, injectable wrappers
   like the rest of host/ (without it the fault sweep saw none of them). */
#include "alloc.h"

/* Row statistics of t: the max skipping NaN and the sum of exp(t - max) (NaN in, NaN sum). */
static void stats_f(const float* t, size_t n, float* m_out, double* sum_out)
{
    float m = -INFINITY;
    for (size_t j = 0; j < n; j++)
        m = t[j] > m ? t[j] : m; /* skips NaN; fmaxf is a libm call without fast-math */
    double sum = 0;
    for (size_t j = 0; j < n; j++)
        sum += expf(t[j] - m);
    *m_out = m;
    *sum_out = sum;
}

static void stats_d(const double* t, size_t n, double* m_out, double* sum_out)
{
    double m = -INFINITY;
    for (size_t j = 0; j < n; j++)
        m = t[j] > m ? t[j] : m;
    double sum = 0;
    for (size_t j = 0; j < n; j++)
        sum += exp(t[j] - m);
    *m_out = m;
    *sum_out = sum;
}

/* ---- classifier head ------------------------------------------------------ */

/* Turns a row of logits into t in place: t = scale * (l + b). */
static void head_t_f(float* row, size_t n, const float* bias, float scale)
{
    for (size_t j = 0; j < n; j++)
        row[j] = bias != NULL ? scale * (row[j] + bias[j]) : scale * row[j];
}

static void head_t_d(double* row, size_t n, const double* bias, double scale)
{
    for (size_t j = 0; j < n; j++)
        row[j] = bias != NULL ? scale * (row[j] + bias[j]) : scale * row[j];
}

/* The k best (t, j) of a row, larger t first, ties by the lower j, NaN ordered as -inf. */
static void topk_select(const double* key, size_t n, size_t k, size_t* best)
{
    size_t have = 0;
    for (size_t j = 0; j < n; j++) {
        /* position of j among the kept ones: after every kept entry that comes before it */
        size_t pos = have;
        while (pos > 0 && key[j] > key[best[pos - 1]])
            pos--;
        if (pos >= k)
            continue;
        size_t last = have < k ? have : k - 1;
        for (size_t q = last; q > pos; q--)
            best[q] = best[q - 1];
        best[pos] = j;
        if (have < k)
            have++;
    }
}

/* Rows [r_begin, r_end) of a block of logits l (block row 0 is row r0), by one thread. */
typedef struct head_task {
    const clsoftmax__cpu_head_job* job;
    void* l;
    size_t r0, r_begin, r_end;
    double* key;  /* classes entries, top-k only */
    size_t* best; /* topk entries, top-k only */
} head_task;

static void* head_rows(void* arg)
{
    const head_task* task = arg;
    const clsoftmax__cpu_head_job* job = task->job;
    const size_t n = job->classes;
    const int topk = job->topk > 0;
    const float scale_f = (float)job->scale;
    double* key = task->key;
    size_t* best = task->best;
    for (size_t r = task->r_begin; r < task->r_end; r++) {
        const size_t row = task->r0 + r;
        double m;
        double sum;
        if (job->is_double) {
            double* t = (double*)task->l + r * n;
            head_t_d(t, n, job->bias, job->scale);
            stats_d(t, n, &m, &sum);
            for (size_t j = 0; j < n && topk; j++)
                key[j] = isnan(t[j]) ? -INFINITY : t[j];
            if (!topk) {
                for (size_t j = 0; j < n; j++)
                    t[j] = job->log ? (t[j] - m) - log(sum) : exp(t[j] - m) / sum;
            } else {
                topk_select(key, n, job->topk, best);
                double* vals = (double*)job->out + row * job->topk;
                for (size_t q = 0; q < job->topk; q++) {
                    double d = t[best[q]] - m;
                    vals[q] = job->log ? d - log(sum) : exp(d) / sum;
                }
            }
        } else {
            float* t = (float*)task->l + r * n;
            float mf;
            head_t_f(t, n, job->bias, scale_f);
            stats_f(t, n, &mf, &sum);
            for (size_t j = 0; j < n && topk; j++)
                key[j] = isnan(t[j]) ? -INFINITY : (double)t[j];
            if (!topk) {
                const double lse = log(sum);
                const double inv = 1.0 / sum;
                for (size_t j = 0; j < n; j++) {
                    float d = t[j] - mf;
                    t[j] = (float)(job->log ? d - lse : expf(d) * inv);
                }
            } else {
                topk_select(key, n, job->topk, best);
                float* vals = (float*)job->out + row * job->topk;
                for (size_t q = 0; q < job->topk; q++) {
                    float d = t[best[q]] - mf;
                    vals[q] = (float)(job->log ? d - log(sum) : expf(d) / sum);
                }
            }
        }
        for (size_t q = 0; topk && q < job->topk; q++)
            job->indices[row * job->topk + q] = (int64_t)best[q];
    }
    return NULL;
}

#define CPU_OPS_MAX_THREADS 64

/* Workers for rows rows of row_len elements: a thread is worth its start with ~64k elements. */
static size_t worker_count(unsigned threads, size_t rows, size_t row_len)
{
    size_t n = threads == 0 ? 1 : threads;
    if (n > CPU_OPS_MAX_THREADS)
        n = CPU_OPS_MAX_THREADS;
    size_t work = rows * row_len / 65536;
    if (n > work)
        n = work > 0 ? work : 1;
    if (n > rows)
        n = rows;
    return n;
}

/* Runs fn on n tasks of task_size bytes each, task 0 here; a task whose thread fails runs here. */
static void run_tasks(void* (*fn)(void*), void* tasks, size_t task_size, size_t n)
{
    pthread_t tid[CPU_OPS_MAX_THREADS];
    int started[CPU_OPS_MAX_THREADS] = {0};
    for (size_t w = 1; w < n; w++)
        started[w] = pthread_create(&tid[w], NULL, fn, (char*)tasks + w * task_size) == 0;
    fn(tasks);
    for (size_t w = 1; w < n; w++) {
        if (started[w])
            pthread_join(tid[w], NULL);
        else
            fn((char*)tasks + w * task_size);
    }
}

int clsoftmax__cpu_linear_softmax(const clsoftmax__cpu_head_job* job)
{
    const size_t n = job->classes;
    const size_t esz = job->is_double ? sizeof(double) : sizeof(float);
    const int topk = job->topk > 0;
    size_t block = job->rows;
    void* scratch = NULL;
    double* key = NULL;
    size_t* best = NULL;
    const size_t workers = worker_count(job->threads, job->rows, n);
    if (topk && n > 0 && workers > 0) {
        size_t cap = CLSOFTMAX__CPU_OPS_SCRATCH / (n * esz);
        block = cap == 0 ? 1 : (cap < job->rows ? cap : job->rows);
        scratch = malloc(block * n * esz);
        key = malloc(workers * n * sizeof *key);
        best = malloc(workers * job->topk * sizeof *best);
        if (scratch == NULL || key == NULL || best == NULL) {
            free(scratch);
            free(key);
            free(best);
            return -1;
        }
    }
    head_task tasks[CPU_OPS_MAX_THREADS];
    for (size_t r0 = 0; r0 < job->rows; r0 += block) {
        const size_t nr = job->rows - r0 < block ? job->rows - r0 : block;
        void* l = topk ? scratch : (char*)job->out + r0 * n * esz;
        if (job->is_double)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)n,
                        (int)job->in_features, 1.0, (const double*)job->x + r0 * job->in_features,
                        (int)job->in_features, (const double*)job->w, (int)job->in_features, 0.0,
                        (double*)l, (int)n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)n,
                        (int)job->in_features, 1.0f, (const float*)job->x + r0 * job->in_features,
                        (int)job->in_features, (const float*)job->w, (int)job->in_features, 0.0f,
                        (float*)l, (int)n);
        const size_t nw = workers < nr ? workers : nr;
        for (size_t w = 0; w < nw; w++) {
            tasks[w] = (head_task){job,
                                   l,
                                   r0,
                                   nr * w / nw,
                                   nr * (w + 1) / nw,
                                   topk ? key + w * n : NULL,
                                   topk ? best + w * job->topk : NULL};
        }
        run_tasks(head_rows, tasks, sizeof tasks[0], nw);
    }
    free(scratch);
    free(key);
    free(best);
    return 0;
}

/* ---- attention -------------------------------------------------------------- */

/* Keys [0, limit) are visible to query i of batch entry b; the rest are hidden. */
static size_t visible_limit(const clsoftmax__cpu_attention_job* job, size_t b, size_t i)
{
    size_t limit = job->seq_k;
    if (job->key_lengths != NULL && job->key_lengths[b] < limit)
        limit = job->key_lengths[b];
    if (job->causal) {
        /* j <= i + seq_k - seq_q, none when i + seq_k < seq_q */
        size_t c = i + job->seq_k >= job->seq_q ? i + job->seq_k - job->seq_q + 1 : 0;
        if (c < limit)
            limit = c;
    }
    return limit;
}

/* One block of score rows turned into weights in place, by one thread. */
typedef struct rows_task {
    const clsoftmax__cpu_attention_job* job;
    void* s;
    size_t b, i0, m_base, r_begin, r_end;
} rows_task;

static void* attention_rows(void* arg)
{
    const rows_task* t = arg;
    const clsoftmax__cpu_attention_job* job = t->job;
    const size_t sk = job->seq_k;
    const float scale_f = (float)job->scale;
    for (size_t r = t->r_begin; r < t->r_end; r++) {
        const size_t i = t->i0 + r;
        const size_t mrow = t->m_base + i * sk;
        const size_t limit = visible_limit(job, t->b, i);
        if (job->is_double) {
            double* x = (double*)t->s + r * sk;
            const double* mask = job->mask;
            double m = -INFINITY;
            for (size_t j = 0; j < limit; j++) {
                double v = job->scale * x[j];
                if (mask != NULL)
                    v = v + mask[mrow + j];
                x[j] = v;
                m = v > m ? v : m;
            }
            double sum = 0;
            for (size_t j = 0; j < limit; j++) {
                x[j] = m == -INFINITY ? 0.0 : exp(x[j] - m);
                sum += x[j];
            }
            /* times 1/sum, as the device kernel does; 1/0 (all hidden) is taken as 0 */
            const double inv = sum == 0 ? 0.0 : 1.0 / sum;
            for (size_t j = 0; j < limit; j++)
                x[j] = x[j] * inv;
            for (size_t j = limit; j < sk; j++)
                x[j] = 0;
        } else {
            float* x = (float*)t->s + r * sk;
            const float* mask = job->mask;
            float m = -INFINITY;
            for (size_t j = 0; j < limit; j++) {
                float v = scale_f * x[j];
                if (mask != NULL)
                    v = v + mask[mrow + j];
                x[j] = v;
                m = v > m ? v : m; /* skips NaN; fmaxf is a libm call without fast-math */
            }
            double sum = 0;
            for (size_t j = 0; j < limit; j++) {
                x[j] = m == -INFINITY ? 0.0f : expf(x[j] - m);
                sum += x[j];
            }
            const double inv = sum == 0 ? 0.0 : 1.0 / sum;
            for (size_t j = 0; j < limit; j++)
                x[j] = (float)(x[j] * inv);
            for (size_t j = limit; j < sk; j++)
                x[j] = 0;
        }
    }
    return NULL;
}

/* Splits rows [0, nq) of a block of scores between the job's threads. */
static void attention_rows_parallel(rows_task base, size_t nq, unsigned threads)
{
    rows_task tasks[CPU_OPS_MAX_THREADS];
    const size_t n = worker_count(threads, nq, base.job->seq_k);
    for (size_t w = 0; w < n; w++) {
        tasks[w] = base;
        tasks[w].r_begin = nq * w / n;
        tasks[w].r_end = nq * (w + 1) / n;
    }
    run_tasks(attention_rows, tasks, sizeof tasks[0], n);
}

int clsoftmax__cpu_attention(const clsoftmax__cpu_attention_job* job)
{
    const size_t sk = job->seq_k;
    const size_t esz = job->is_double ? sizeof(double) : sizeof(float);
    size_t cap = CLSOFTMAX__CPU_OPS_SCRATCH / (sk * esz);
    const size_t block = cap == 0 ? 1 : (cap < job->seq_q ? cap : job->seq_q);
    void* s = malloc(block * sk * esz);
    if (s == NULL)
        return -1;
    const size_t* qs = job->q_strides;
    const size_t* ks = job->k_strides;
    const size_t* vs = job->v_strides;
    const size_t* os = job->o_strides;

    for (size_t b = 0; b < job->batch; b++) {
        for (size_t h = 0; h < job->heads; h++) {
            const size_t q_base = b * qs[0] + h * qs[1];
            const size_t k_base = b * ks[0] + h * ks[1];
            const size_t v_base = b * vs[0] + h * vs[1];
            const size_t o_base = b * os[0] + h * os[1];
            size_t m_base = 0;
            if (job->mask_batch > 0)
                m_base = ((job->mask_batch > 1 ? b : 0) * job->mask_heads +
                          (job->mask_heads > 1 ? h : 0)) *
                         job->seq_q * sk;
            for (size_t i0 = 0; i0 < job->seq_q; i0 += block) {
                const size_t nq = job->seq_q - i0 < block ? job->seq_q - i0 : block;
                if (job->is_double)
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)sk,
                                (int)job->d, 1.0, (const double*)job->q + q_base + i0 * qs[2],
                                (int)qs[2], (const double*)job->k + k_base, (int)ks[2], 0.0,
                                (double*)s, (int)sk);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)sk,
                                (int)job->d, 1.0f, (const float*)job->q + q_base + i0 * qs[2],
                                (int)qs[2], (const float*)job->k + k_base, (int)ks[2], 0.0f,
                                (float*)s, (int)sk);
                rows_task task = {job, s, b, i0, m_base, 0, nq};
                attention_rows_parallel(task, nq, job->threads);
                if (job->is_double)
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)job->d_v,
                                (int)sk, 1.0, (const double*)s, (int)sk,
                                (const double*)job->v + v_base, (int)vs[2], 0.0,
                                (double*)job->out + o_base + i0 * os[2], (int)os[2]);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)job->d_v,
                                (int)sk, 1.0f, (const float*)s, (int)sk,
                                (const float*)job->v + v_base, (int)vs[2], 0.0f,
                                (float*)job->out + o_base + i0 * os[2], (int)os[2]);
            }
        }
    }
    free(s);
    return 0;
}
