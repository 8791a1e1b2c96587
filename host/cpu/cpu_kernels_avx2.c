/* cpu_kernels_avx2.c - the CPU kernels at 32-byte vectors with AVX2 enabled for this file only. */
#include "cpu_kernels.h"

#if defined(CLSOFTMAX__CPU_HAVE_AVX2)
/*
 * The library is built for the baseline ISA; only these functions may use
 * AVX2, and cpu_softmax.c calls them after __builtin_cpu_supports("avx2").
 * FMA only inside exp's polynomial (FMAF/FMAD in cpu_kernels.inc); every
 * other product is rounded on its own, as in the portable build. F16C converts float16
 * storage with the same results as half_convert.c.
 */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#define VBYTES 32
#define KTABLE clsoftmax__cpu_kernels_avx2
#define KNAME "avx2"
#include "cpu_kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
/* ISO C wants a translation unit to declare something. */
typedef int clsoftmax__cpu_kernels_avx2_unused;
#endif
