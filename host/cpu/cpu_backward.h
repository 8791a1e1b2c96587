/* cpu_backward.h - the CPU backend's softmax and log-softmax gradient, threaded through the pool.
 */
#ifndef CLSOFTMAX_CPU_BACKWARD_H
#define CLSOFTMAX_CPU_BACKWARD_H

#include <stddef.h>

#include "cpu_pool.h"

/* A validated backward call over the [outer, n, inner] view (see clsoftmax__layout). */
typedef struct clsoftmax__cpu_backward_job {
    size_t outer;
    size_t n;
    size_t inner;
    int dtype;    /* CLSOFTMAX__CPU_F32 ... (cpu_softmax.h) */
    int log;      /* 0: softmax, 1: log-softmax */
    double scale; /* rounded to float by the dtypes computed in float */
    double alpha; /* dx = alpha * grad + beta * dx */
    double beta;  /* 0: dx is not read */
    const void* y;
    const void* dy;
    void* dx; /* may equal y or dy (then beta is 0) */
} clsoftmax__cpu_backward_job;

/*
 * Runs the job on up to `threads` threads of pool (NULL: the calling thread alone). Each row
 * (or block of columns) is computed whole by one thread in a fixed order, so results are
 * bitwise identical for every thread count. Allocates nothing.
 */
void clsoftmax__cpu_backward(const clsoftmax__cpu_backward_job* job, unsigned threads,
                             clsoftmax__cpu_pool* pool);

#endif /* CLSOFTMAX_CPU_BACKWARD_H */
