/* cpu_softmax.h - the CPU fallback: softmax over host memory with a worker pool, no OpenCL. */
#ifndef CLSOFTMAX_CPU_SOFTMAX_H
#define CLSOFTMAX_CPU_SOFTMAX_H

#include <stddef.h>

#include "cpu_kernels.h"
#include "cpu_pool.h"

/* Which kernels a job runs on (tests pin each one; the library leaves AUTO). */
typedef enum clsoftmax__cpu_isa {
    CLSOFTMAX__CPU_ISA_AUTO = 0, /* the widest the CPU supports */
    CLSOFTMAX__CPU_ISA_GENERIC = 1,
    CLSOFTMAX__CPU_ISA_AVX2 = 2
} clsoftmax__cpu_isa;

/* The same [outer, n, inner] view as clsoftmax__layout, without OpenCL types. */
typedef struct clsoftmax__cpu_job {
    size_t outer;
    size_t n;
    size_t inner;
    int dtype;    /* CLSOFTMAX__CPU_F32 ... */
    int log;      /* 0: softmax, 1: log-softmax */
    double scale; /* rounded to float by the paths computed in float, as the kernels do */
    double alpha; /* out = alpha * softmax + beta * out, in the compute precision */
    double beta;  /* 0: out is not read */
    int zero_bad; /* 1: a bad row (NaN or +inf in t, or all -inf) is 0 before blending */
    const void* in;
    void* out; /* may equal in (then beta is 0) */
    clsoftmax__cpu_isa isa;
} clsoftmax__cpu_job;

/*
 * Runs the job on up to `threads` threads (0: one per online core) of pool
 * (NULL: the calling thread alone). Results are bitwise identical for every
 * thread count and pool state. Allocates nothing: float16/bfloat16 storage,
 * blending and zeroed bad rows go through a 32 KiB buffer on each thread's
 * stack (about 100 KiB of stack in all at the deepest). in == out is allowed
 * when beta is 0.
 */
void clsoftmax__cpu_softmax(const clsoftmax__cpu_job* job, unsigned threads,
                            clsoftmax__cpu_pool* pool);

/*
 * Counts the bad rows of the job's input: rows whose t = scale * x (in the compute precision,
 * as clsoftmax__cpu_softmax takes it) holds NaN or +inf or is -inf throughout. Rows are
 * numbered o * inner + i. *first_bad_row is SIZE_MAX when *bad_rows is 0. Reads in only.
 */
void clsoftmax__cpu_check_rows(const clsoftmax__cpu_job* job, unsigned threads,
                               clsoftmax__cpu_pool* pool, size_t* bad_rows, size_t* first_bad_row);

/* The kernels for isa, or NULL when this CPU or build lacks it. */
const clsoftmax__cpu_kernels* clsoftmax__cpu_kernels_select(clsoftmax__cpu_isa isa);

/* Online cores (at least 1). */
unsigned clsoftmax__cpu_count(void);

/* Allocations of the CPU path through the fault-injection wrappers (no OpenCL header). */
#include "alloc.h"

#endif /* CLSOFTMAX_CPU_SOFTMAX_H */
