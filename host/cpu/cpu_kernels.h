/* cpu_kernels.h - the vectorised CPU kernels, built once per instruction set, and their table. */
#ifndef CLSOFTMAX_CPU_KERNELS_H
#define CLSOFTMAX_CPU_KERNELS_H

#include <stddef.h>

/*
 * The (max, sum) summary of one block of a row, merged in block order so that
 * a row split between threads gives the same bits as a row run by one:
 *   m     max of t = scale * x over the block, NaN skipped (-inf when none)
 *   u     sum of exp(t - ref) over elements with t != ref, in double, where
 *         ref = m, or 0 when m is -inf (so that an all -inf block adds 0, not
 *         NaN; a NaN in the block still makes u NaN)
 *   ties  elements with t == ref (each contributes exactly 1)
 *   k     set by the merge: the factor turning the block's exp(t - ref) into
 *         outputs, exp(ref - m) / S (softmax), or log S (log-softmax)
 */
typedef struct clsoftmax__cpu_part {
    double m;
    double u;
    size_t ties;
    double k;
} clsoftmax__cpu_part;

/*
 * One instruction set's kernels. Every kernel follows the numerics of
 * cpu_softmax.c; "row" kernels see a contiguous row, "cols" kernels w
 * neighbouring columns of an [n, inner] slab (w <= CLSOFTMAX__CPU_BLOCK_MAX).
 */
typedef struct clsoftmax__cpu_kernels {
    const char* name;
    /* y[i] = exp(x[i]) for i < n with the polynomial of cpu_kernels.inc (y may be x) */
    void (*exp_f32)(const float* x, float* y, size_t n);
    void (*exp_f64)(const double* x, double* y, size_t n);
    /* a whole row, three passes (for rows that stay in cache) */
    void (*row_f32)(const float* x, float* y, size_t n, float sf, int log_op);
    void (*row_f64)(const double* x, double* y, size_t n, double sc, int log_op);
    /* the summary of one block of a long row; y != NULL (softmax) also receives exp(t - ref) */
    void (*part_f32)(const float* x, float* y, size_t n, float sf, clsoftmax__cpu_part* part);
    void (*part_f64)(const double* x, double* y, size_t n, double sc, clsoftmax__cpu_part* part);
    /*
     * outputs of one block of a long row: log-softmax y = (t - m) - k with
     * k = log S; softmax y = y * k, y holding the part's exp(t - ref)
     */
    void (*out_f32)(const float* x, float* y, size_t n, float sf, float m, float k, int log_op);
    void (*out_f64)(const double* x, double* y, size_t n, double sc, double m, double k,
                    int log_op);
    /* rows of n <= CLSOFTMAX__CPU_SMALL_ROW elements, several at a time */
    void (*rows_small_f32)(const float* x, float* y, size_t rows, size_t n, float sf, int log_op);
    void (*rows_small_f64)(const double* x, double* y, size_t rows, size_t n, double sc,
                           int log_op);
    /* w columns of a slab with row stride inner */
    void (*cols_f32)(const float* x, float* y, size_t n, size_t inner, size_t w, float sf,
                     int log_op);
    void (*cols_f64)(const double* x, double* y, size_t n, size_t inner, size_t w, double sc,
                     int log_op);
} clsoftmax__cpu_kernels;

/* Widest column block the cols kernels take. */
#define CLSOFTMAX__CPU_BLOCK_MAX 256u
/* Longest row the rows_small kernels take. */
#define CLSOFTMAX__CPU_SMALL_ROW 16u

/* Portable build: 16-byte vectors (SSE2 on x86-64), always present. */
extern const clsoftmax__cpu_kernels clsoftmax__cpu_kernels_generic;
#if defined(__x86_64__) && defined(__GNUC__)
#define CLSOFTMAX__CPU_HAVE_AVX2 1
/* 32-byte vectors with AVX2 enabled for these functions only; use after a CPU check. */
extern const clsoftmax__cpu_kernels clsoftmax__cpu_kernels_avx2;
#endif

#endif /* CLSOFTMAX_CPU_KERNELS_H */
