/* cpu_cross_entropy.c - the CPU backend of the fused softmax cross-entropy (rows on the pool). */
#include "cpu_cross_entropy.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "cpu_softmax.h"
#include "half_convert.h"

/* Below this many elements one thread does it all: waking workers costs more. */
#define XENT_MIN_ELEMS_PER_THREAD ((size_t)1 << 15)
/* Elements of logits a thread claims at a time (whole rows, at least one). */
#define XENT_GRAB_ELEMS ((size_t)1 << 14)

typedef struct xent_state {
    const clsoftmax__cpu_xent_job* job;
    const clsoftmax__cpu_kernels* kern; /* the softmax backend's vector exp */
    const void* w;                      /* the weights in the compute precision, or NULL */
    void* sums;     /* [0]: the MEAN divisor, [1]: the weights' sum, in the compute precision */
    void* row_loss; /* SUM and MEAN: rows losses in the compute precision */
    void* slots;    /* per running thread: 4 * classes elements of the compute precision */
    size_t grab;    /* rows per claim */
    atomic_size_t next;
} xent_state;

/* ---- float rows (FLOAT32, and the 16-bit types converted) --------------------------------- */

/* v[k] = exp(v[k]) with the CPU softmax's vector exp (within 1.5 ulp, -inf to 0, NaN kept) */
static void exp_n_f(const xent_state* st, float* v, size_t n) { st->kern->exp_f32(v, v, n); }

static const float* load_f(const xent_state* st, const void* base, size_t off, float* buf)
{
    const size_t n = st->job->classes;
    switch (st->job->dtype) {
    case CLSOFTMAX__CPU_F16:
        st->kern->load_f16((const uint16_t*)base + off, buf, n);
        return buf;
    case CLSOFTMAX__CPU_BF16:
        st->kern->load_bf16((const uint16_t*)base + off, buf, n);
        return buf;
    default:
        return (const float*)base + off;
    }
}

static void store_row_f(const xent_state* st, void* base, size_t off, const float* v)
{
    const size_t n = st->job->classes;
    if (st->job->dtype == CLSOFTMAX__CPU_F16)
        st->kern->store_f16(v, (uint16_t*)base + off, n);
    else
        st->kern->store_bf16(v, (uint16_t*)base + off, n);
}

static void store1_f(const xent_state* st, void* base, size_t i, float v)
{
    switch (st->job->dtype) {
    case CLSOFTMAX__CPU_F16:
        ((uint16_t*)base)[i] = clsoftmax__f32_to_f16(v);
        break;
    case CLSOFTMAX__CPU_BF16:
        ((uint16_t*)base)[i] = clsoftmax__f32_to_bf16(v);
        break;
    default:
        ((float*)base)[i] = v;
    }
}

#define XT float
#define XF(name) name##_f
#define XLOG1P log1pf
#define XNATIVE CLSOFTMAX__CPU_F32
#define XCONVERTS 1
#include "cpu_cross_entropy.inc"
#undef XT
#undef XF
#undef XLOG1P
#undef XNATIVE
#undef XCONVERTS

/* ---- double rows (FLOAT64: rows read and written where they lie)
 * --------------------------------- */

static void exp_n_d(const xent_state* st, double* v, size_t n) { st->kern->exp_f64(v, v, n); }

static const double* load_d(const xent_state* st, const void* base, size_t off, double* buf)
{
    (void)st;
    (void)buf;
    return (const double*)base + off;
}

static void store1_d(const xent_state* st, void* base, size_t i, double v)
{
    (void)st;
    ((double*)base)[i] = v;
}

#define XT double
#define XF(name) name##_d
#define XLOG1P log1p
#define XNATIVE CLSOFTMAX__CPU_F64
#define XCONVERTS 0
#include "cpu_cross_entropy.inc"
#undef XT
#undef XF
#undef XLOG1P
#undef XNATIVE
#undef XCONVERTS

/* ---- the pool ------------------------------------------------------------------------------ */

static void rows_task(void* arg, unsigned index, unsigned count)
{
    (void)count;
    xent_state* st = arg;
    const clsoftmax__cpu_xent_job* job = st->job;
    const int dbl = job->dtype == CLSOFTMAX__CPU_F64;
    const size_t slot = 4 * job->classes * (dbl ? sizeof(double) : sizeof(float));
    void* buf = (char*)st->slots + (size_t)index * slot;
    /* A shared counter rather than fixed shares (the machine is shared, threads stall); each
       row's result does not depend on which thread computes it. */
    for (;;) {
        size_t r0 = atomic_fetch_add_explicit(&st->next, st->grab, memory_order_relaxed);
        if (r0 >= job->rows)
            break;
        size_t r1 = r0 + st->grab < job->rows ? r0 + st->grab : job->rows;
        for (size_t r = r0; r < r1; r++) {
            if (dbl)
                row_d(st, r, buf);
            else
                row_f(st, r, buf);
        }
    }
}

int clsoftmax__cpu_cross_entropy(const clsoftmax__cpu_xent_job* job, unsigned threads,
                                 clsoftmax__cpu_pool* pool)
{
    const int dbl = job->dtype == CLSOFTMAX__CPU_F64;
    const size_t esz = dbl ? sizeof(double) : sizeof(float);
    const size_t n = job->classes;
    size_t want = threads != 0 ? threads : clsoftmax__cpu_count();
    const size_t by_size = job->rows * n / XENT_MIN_ELEMS_PER_THREAD;
    if (want > by_size)
        want = by_size;
    if (want > job->rows)
        want = job->rows;
    if (want == 0)
        want = 1;
    const int half = job->dtype == CLSOFTMAX__CPU_F16 || job->dtype == CLSOFTMAX__CPU_BF16;
    /* the validated sizes keep each product below the logits' own byte count times a few */
    const size_t slots_bytes = want * 4 * n * esz;
    const size_t loss_bytes = job->reduction != 0 ? job->rows * esz : 0;
    const size_t w_bytes = half && job->weights != NULL ? n * esz : 0;
    char* mem = malloc(2 * esz + slots_bytes + loss_bytes + w_bytes);
    if (mem == NULL)
        return -1;

    const clsoftmax__cpu_kernels* kern = clsoftmax__cpu_kernels_select(CLSOFTMAX__CPU_ISA_AUTO);
    xent_state st = {.job = job,
                     .kern = kern != NULL ? kern : &clsoftmax__cpu_kernels_generic,
                     .w = job->weights,
                     .sums = mem,
                     .slots = mem + 2 * esz,
                     .row_loss = mem + 2 * esz + slots_bytes,
                     .grab = n >= XENT_GRAB_ELEMS ? 1 : XENT_GRAB_ELEMS / n};
    atomic_init(&st.next, 0);
    if (w_bytes != 0) {
        float* w = (float*)(mem + 2 * esz + slots_bytes + loss_bytes);
        if (job->dtype == CLSOFTMAX__CPU_F16)
            clsoftmax__f16_load_n(job->weights, w, n);
        else
            clsoftmax__bf16_load_n(job->weights, w, n);
        st.w = w;
    }
    if (dbl)
        prepare_d(&st);
    else
        prepare_f(&st);
    clsoftmax__cpu_pool_run(pool, (unsigned)want, rows_task, &st);
    if (job->reduction != 0) {
        if (dbl)
            total_d(&st);
        else
            total_f(&st);
    }
    free(mem);
    return 0;
}
