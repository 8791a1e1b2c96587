/* cpu_ops.h - the CPU fallback of the head and attention operations: CBLAS products, no OpenCL. */
#ifndef CLSOFTMAX_CPU_OPS_H
#define CLSOFTMAX_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Validated arguments of clsoftmax_linear_softmax_host (see include/clsoftmax.h). */
typedef struct clsoftmax__cpu_head_job {
    int is_double;
    size_t rows, in_features, classes;
    double scale; /* rounded to float by the float32 path */
    int log;
    size_t topk; /* 0: full rows */
    const void* x;
    const void* w;
    const void* bias; /* may be NULL */
    void* out;
    int64_t* indices; /* topk > 0 only */
    unsigned threads; /* for the softmax rows; the GEMM uses OpenBLAS's own threads */
} clsoftmax__cpu_head_job;

/* Validated arguments of clsoftmax_attention_host; strides in elements, feature stride 1. */
typedef struct clsoftmax__cpu_attention_job {
    int is_double;
    size_t batch, heads, seq_q, seq_k, d, d_v;
    size_t q_strides[4], k_strides[4], v_strides[4], o_strides[4];
    double scale;
    int causal;
    size_t mask_batch, mask_heads; /* mask_batch 0: no additive mask */
    const size_t* key_lengths;     /* may be NULL */
    const void* q;
    const void* k;
    const void* v;
    const void* mask;
    void* out;
    unsigned threads; /* for the softmax rows; the GEMMs use OpenBLAS's own threads */
} clsoftmax__cpu_attention_job;

/* Bytes of score scratch one step may take; longer work is split into blocks of rows. */
#define CLSOFTMAX__CPU_OPS_SCRATCH ((size_t)64 << 20)

/*
 * Each returns 0, or -1 when the scratch cannot be allocated, in which case
 * nothing has been written. Every size fits CBLAS's int (the caller checks).
 */
int clsoftmax__cpu_linear_softmax(const clsoftmax__cpu_head_job* job);
int clsoftmax__cpu_attention(const clsoftmax__cpu_attention_job* job);

#endif /* CLSOFTMAX_CPU_OPS_H */
