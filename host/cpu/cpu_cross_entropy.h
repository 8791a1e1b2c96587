/* cpu_cross_entropy.h - the CPU backend of the fused softmax cross-entropy, no OpenCL. */
#ifndef CLSOFTMAX_CPU_CROSS_ENTROPY_H
#define CLSOFTMAX_CPU_CROSS_ENTROPY_H

#include <stddef.h>
#include <stdint.h>

#include "cpu_pool.h"

/* Validated arguments of clsoftmax_cross_entropy_host (see include/clsoftmax.h). */
typedef struct clsoftmax__cpu_xent_job {
    int dtype; /* CLSOFTMAX__CPU_F32 ... (cpu_softmax.h) */
    size_t rows, classes;
    int probs;            /* 1: labels are probability rows; 0: int64_t class indices */
    int64_t ignore_index; /* INDEX: rows with this label are skipped */
    double label_smoothing;
    int reduction; /* 0 NONE, 1 SUM, 2 MEAN (clsoftmax_reduction) */
    const void* logits;
    const void* labels;  /* INDEX labels all checked in range or ignore_index by the caller */
    const void* weights; /* may be NULL */
    void* loss;
    void* grad; /* may be NULL, or equal to logits */
} clsoftmax__cpu_xent_job;

/*
 * Runs the job on up to `threads` threads (0: one per online core) of pool (NULL: the calling
 * thread alone). Results are bitwise identical for every thread count: rows are independent and
 * SUM and MEAN add the row losses in row order. Returns 0, or -1 when its scratch (a few rows
 * per thread and the row losses) cannot be allocated, in which case nothing has been written.
 */
int clsoftmax__cpu_cross_entropy(const clsoftmax__cpu_xent_job* job, unsigned threads,
                                 clsoftmax__cpu_pool* pool);

#endif /* CLSOFTMAX_CPU_CROSS_ENTROPY_H */
