/* cpu_softmax.h - the CPU fallback: softmax over host memory with pthreads, no OpenCL. */
#ifndef CLSOFTMAX_CPU_SOFTMAX_H
#define CLSOFTMAX_CPU_SOFTMAX_H

#include <stddef.h>

/* The same [outer, n, inner] view as clsoftmax__layout, without OpenCL types. */
typedef struct clsoftmax__cpu_job {
    size_t outer;
    size_t n;
    size_t inner;
    int is_double; /* 0: float32, 1: float64 */
    int log;       /* 0: softmax, 1: log-softmax */
    double scale;  /* rounded to float by the float32 path, as the kernels do */
    const void* in;
    void* out; /* may equal in */
} clsoftmax__cpu_job;

/*
 * Runs the job on up to `threads` threads (0: one per online core), splitting
 * rows between them. A share whose thread cannot be started runs on the
 * calling thread, so the call always completes.
 */
void clsoftmax__cpu_softmax(const clsoftmax__cpu_job* job, unsigned threads);

/* Online cores (at least 1). */
unsigned clsoftmax__cpu_count(void);

/* Allocations of the CPU path through the fault-injection wrappers (no OpenCL header). */
#include "alloc.h"

#endif /* CLSOFTMAX_CPU_SOFTMAX_H */
