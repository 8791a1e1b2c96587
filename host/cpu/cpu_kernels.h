/* cpu_kernels.h - the vectorised CPU kernels, built once per instruction set, and their table. */
#ifndef CLSOFTMAX_CPU_KERNELS_H
#define CLSOFTMAX_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Element types, numbered as clsoftmax_dtype (this folder does not include the OpenCL header). */
enum {
    CLSOFTMAX__CPU_F32 = 0,
    CLSOFTMAX__CPU_F64 = 1,
    CLSOFTMAX__CPU_F16 = 2, /* stored as uint16_t, computed in float */
    CLSOFTMAX__CPU_BF16 = 3 /* stored as uint16_t, computed in float */
};

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
    /*
     * a whole row, three passes (for rows that stay in cache); y may be x. stream: y is the
     * caller's output, written with streaming stores where that helps (0 for a scratch row that
     * is read right after)
     */
    void (*row_f32)(const float* x, float* y, size_t n, float sf, int log_op, int stream);
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
    /* in place: y = exp(scale * y - ref) * k, as part then out compute a softmax block */
    void (*expscale_f32)(float* y, size_t n, float sf, float ref, float k);
    void (*expscale_f64)(double* y, size_t n, double sc, double ref, double k);
    /*
     * 16-bit storage: widening (exact) and narrowing (to nearest even), bit for bit as
     * half_convert.h's functions (F16C instructions where the build has them)
     */
    void (*load_f16)(const uint16_t* in, float* out, size_t n);
    void (*store_f16)(const float* in, uint16_t* out, size_t n);
    void (*load_bf16)(const uint16_t* in, float* out, size_t n);
    void (*store_bf16)(const float* in, uint16_t* out, size_t n);
    /*
     * out[i] = alpha * v[i] + beta * out[i] in float, rounded once to dtype (F32, F16 or
     * BF16) on store; beta == 0: out is not read. zero: v's NaNs count as 0 (a NaN output
     * marks a bad row, see cpu_softmax.c).
     */
    void (*blend_f32)(const float* v, void* out, size_t n, int dtype, float alpha, float beta,
                      int zero);
    void (*blend_f64)(const double* v, double* out, size_t n, double alpha, double beta, int zero);
    /*
     * cols over storage of dtype (F32, F16 or BF16) blended as blend_f32 does, straight into y
     * (y may be x when beta is 0); softmax gives cols_f32's bits before blending
     */
    void (*cols_staged_f32)(const void* x, void* y, size_t n, size_t inner, size_t w, float sf,
                            int log_op, int dtype, float alpha, float beta, int zero);
    void (*cols_staged_f64)(const double* x, double* y, size_t n, size_t inner, size_t w, double sc,
                            int log_op, double alpha, double beta, int zero);
    /* bit 0: some t = scale * x[i] is NaN or +inf; bit 1: some t is not -inf */
    unsigned (*scan_f32)(const float* x, size_t n, float sf);
    unsigned (*scan_f64)(const double* x, size_t n, double sc);
    /* the same per column of w neighbouring columns (row stride inner), ORed into flags[0, w) */
    void (*scan_cols_f32)(const float* x, size_t n, size_t inner, size_t w, float sf,
                          unsigned char* flags);
    void (*scan_cols_f64)(const double* x, size_t n, size_t inner, size_t w, double sc,
                          unsigned char* flags);
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
