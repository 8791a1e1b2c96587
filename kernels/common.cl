/* common.cl - the REAL type, compensated summation and work-group reductions for the kernels.
 *
 * The program for one dtype is built from common.cl, softmax_row.cl and softmax_strided.cl
 * concatenated in that order (host/program.c); the later files use what this one defines.
 *
 * Holds:
 *   REAL                     the compute type: double for CLSOFTMAX_DTYPE 1, float otherwise
 *   STORE_T                  the element type of the buffers: float, double, half or ushort
 *   LD()/ST()                one element of a buffer as a REAL, and back (rounded to nearest
 *                            even for the 16-bit types)
 *   kahan_add()              one step of Kahan's compensated sum
 *   group_max_1d()/group_sum_1d()  tree reductions over dimension 0 of a work-group
 *
 *   REALV, VLOAD/VSTORE/VSELECT  CLSOFTMAX_VW elements of REAL as one vector, loaded from (and
 *                            stored to) any element-aligned address of a STORE_T buffer (for
 *                            float16 at 8 and 16 wide, in 4-half pieces: see below)
 *   hmax_v()/hsum_v()        horizontal max (NaN skipped) and pairwise sum of a REALV
 *   online_rescale()         one block step of the online (max, sum) recurrence
 *   ms_merge()               merges two (max, sum) pairs
 *
 * Preprocessor parameters:
 *   CLSOFTMAX_DTYPE the clsoftmax_dtype: 0 float32 (default), 1 float64 (needs cl_khr_fp64),
 *                   2 float16 (storage only: vload_half/vstore_half_rte, core OpenCL, no
 *                   cl_khr_fp16), 3 bfloat16 (storage only: ushort, converted by shifts)
 *   CLSOFTMAX_FP64  set (as a bare -DCLSOFTMAX_FP64) together with CLSOFTMAX_DTYPE=1
 *   CLSOFTMAX_VW    elements per vector load: 1, 2, 4, 8 or 16 (default 1). Per device: 8
 *                   floats fill an AVX2 register on PoCL; GPUs coalesce scalar loads.
 *
 * Helpers are plain functions, not `inline`: under C99 rules an inline definition with no
 * external one may leave an undefined symbol where the compiler declines to inline it.
 *
 * Never build with -cl-fast-relaxed-math or -cl-finite-math-only: the NaN/inf semantics of a
 * row (NaN in, NaN out everywhere) come from IEEE arithmetic.
 */
#ifndef CLSOFTMAX_COMMON_CL
#define CLSOFTMAX_COMMON_CL

/*
 * No contraction of a*b+c into fma: t = scale * x must be rounded before t - max, or a product
 * that overflows to inf would give fma(scale, x, -inf) = -inf instead of inf - inf = NaN, and
 * the results would drift from the CPU path's.
 */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLSOFTMAX_DTYPE
#if defined(CLSOFTMAX_FP64) && CLSOFTMAX_FP64
#define CLSOFTMAX_DTYPE 1
#else
#define CLSOFTMAX_DTYPE 0
#endif
#endif
#undef CLSOFTMAX_FP64
#define CLSOFTMAX_FP64 (CLSOFTMAX_DTYPE == 1)

#ifndef CLSOFTMAX_VW
#define CLSOFTMAX_VW 1
#endif

#if CLSOFTMAX_DTYPE == 1
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double REAL;
#define REAL_NAME double
#else
typedef float REAL;
#define REAL_NAME float
#endif

#define CLSOFTMAX_CAT_(a, b) a##b
#define CLSOFTMAX_CAT(a, b) CLSOFTMAX_CAT_(a, b)

#if CLSOFTMAX_VW == 1
typedef REAL REALV;
/* select() on a double needs a long mask; the scalar relations return int */
#define VSELECT(a, b, c) ((c) ? (b) : (a))
#elif CLSOFTMAX_VW == 2 || CLSOFTMAX_VW == 4 || CLSOFTMAX_VW == 8 || CLSOFTMAX_VW == 16
typedef CLSOFTMAX_CAT(REAL_NAME, CLSOFTMAX_VW) REALV;
#define VSELECT(a, b, c) select((a), (b), (c))
#else
#error "CLSOFTMAX_VW must be 1, 2, 4, 8 or 16"
#endif

/*
 * Storage. Kernels take buffers as STORE_T pointers and touch elements only through LD/ST and
 * VLOAD/VSTORE, so one source serves every dtype; the 16-bit types are read into float and
 * rounded once, to nearest even, on store (host/cpu/half_convert.c does the same bit for bit).
 */
#if CLSOFTMAX_DTYPE == 0 || CLSOFTMAX_DTYPE == 1
typedef REAL STORE_T;
#define LD(p, i) ((p)[i])
#define ST(p, i, v) ((p)[i] = (v))
#if CLSOFTMAX_VW == 1
#define VLOAD(i, p) ((p)[i])
#define VSTORE(v, i, p) ((p)[i] = (v))
#else
#define VLOAD(i, p) CLSOFTMAX_CAT(vload, CLSOFTMAX_VW)((i), (p))
#define VSTORE(v, i, p) CLSOFTMAX_CAT(vstore, CLSOFTMAX_VW)((v), (i), (p))
#endif

#elif CLSOFTMAX_DTYPE == 2
/* A half pointer is legal without cl_khr_fp16 as long as only vload_half/vstore_half touch it. */
typedef half STORE_T;
#define LD(p, i) vload_half((i), (p))
#define ST(p, i, v) vstore_half_rte((v), (i), (p))
#if CLSOFTMAX_VW == 1
#define VLOAD(i, p) vload_half((i), (p))
#define VSTORE(v, i, p) vstore_half_rte((v), (i), (p))
#elif CLSOFTMAX_VW <= 4
#define VLOAD(i, p) CLSOFTMAX_CAT(vload_half, CLSOFTMAX_VW)((i), (p))
#define VSTORE(v, i, p) CLSOFTMAX_CAT(CLSOFTMAX_CAT(vstore_half, CLSOFTMAX_VW), _rte)((v), (i), (p))
#else
/*
 * Eight or sixteen halves move as vload_half4/vstore_half4_rte pieces. PoCL 3.1 (x86-64, F16C)
 * reads and writes a half8 as one 16-byte access that LLVM is told is 16-byte aligned, which
 * the specification does not promise (a half is all it asks): where the compiler keeps the
 * access apart from the conversion it emits vmovdqa/vmovaps, and an address that is not a
 * multiple of 16 bytes (an odd offset, a row of 300) faults. A 4-half piece is an 8-byte
 * access, for which x86 has no alignment-checking instruction, and still converts with one
 * F16C instruction; the scalar vload_half/vstore_half_rte convert in software on PoCL, 4 to
 * 5 times slower (a softmax over rows of 1000).
 */
REALV f16_vload(size_t i, __global const half* p)
{
    p += i * CLSOFTMAX_VW;
#if CLSOFTMAX_VW == 8
    return (REALV)(vload_half4(0, p), vload_half4(1, p));
#else
    return (REALV)(vload_half4(0, p), vload_half4(1, p), vload_half4(2, p), vload_half4(3, p));
#endif
}
void f16_vstore(REALV v, size_t i, __global half* p)
{
    p += i * CLSOFTMAX_VW;
#if CLSOFTMAX_VW == 8
    vstore_half4_rte(v.lo, 0, p);
    vstore_half4_rte(v.hi, 1, p);
#else
    vstore_half4_rte(v.lo.lo, 0, p);
    vstore_half4_rte(v.lo.hi, 1, p);
    vstore_half4_rte(v.hi.lo, 2, p);
    vstore_half4_rte(v.hi.hi, 3, p);
#endif
}
#define VLOAD(i, p) f16_vload((i), (p))
#define VSTORE(v, i, p) f16_vstore((v), (i), (p))
#endif

#elif CLSOFTMAX_DTYPE == 3
typedef ushort STORE_T;
/* bfloat16 is the upper half of a float: widening is exact. */
float bf16_to_float(ushort h) { return as_float((uint)h << 16); }
/* Round to nearest even on the 16 dropped bits; a NaN stays a NaN (quiet, top payload kept). */
ushort float_to_bf16(float f)
{
    const uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (ushort)((u >> 16) | 0x0040u);
    return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
#define LD(p, i) bf16_to_float((p)[i])
#define ST(p, i, v) ((p)[i] = float_to_bf16(v))
#if CLSOFTMAX_VW == 1
#define VLOAD(i, p) LD((p), (i))
#define VSTORE(v, i, p) ST((p), (i), (v))
#else
typedef CLSOFTMAX_CAT(uint, CLSOFTMAX_VW) BF16_UV;
typedef CLSOFTMAX_CAT(int, CLSOFTMAX_VW) BF16_IV;
REALV bf16_vload(size_t i, __global const ushort* p)
{
    return CLSOFTMAX_CAT(as_float, CLSOFTMAX_VW)(
        CLSOFTMAX_CAT(convert_uint, CLSOFTMAX_VW)(CLSOFTMAX_CAT(vload, CLSOFTMAX_VW)(i, p)) << 16);
}
void bf16_vstore(REALV v, size_t i, __global ushort* p)
{
    const BF16_UV u = CLSOFTMAX_CAT(as_uint, CLSOFTMAX_VW)(v);
    const BF16_UV rounded = (u + (BF16_UV)0x7fffu + ((u >> 16) & (BF16_UV)1u)) >> 16;
    const BF16_UV quiet = (u >> 16) | (BF16_UV)0x0040u;
    const BF16_IV is_nan = (u & (BF16_UV)0x7fffffffu) > (BF16_UV)0x7f800000u;
    CLSOFTMAX_CAT(vstore, CLSOFTMAX_VW)
    (CLSOFTMAX_CAT(convert_ushort, CLSOFTMAX_VW)(select(rounded, quiet, is_nan)), i, p);
}
#define VLOAD(i, p) bf16_vload((i), (p))
#define VSTORE(v, i, p) bf16_vstore((v), (i), (p))
#endif

#else
#error "CLSOFTMAX_DTYPE must be 0, 1, 2 or 3"
#endif

/*
 * Kahan's compensated sum: *c carries the low-order bits that s + v lost, so a work-item's
 * sum of m terms is accurate to a few ulp instead of m ulp (a float32 row of 200000 elements
 * needs rtol 1e-5). Needs strict IEEE evaluation, which the build guarantees.
 */
void kahan_add(REAL* s, REAL* c, REAL v)
{
    REAL y = v - *c;
    REAL t = *s + y;
    *c = (t - *s) - y;
    *s = t;
}

/*
 * Tree reductions over dimension 0 of a 1-D work-group. Assumes get_local_size(0) is a power
 * of two and red holds that many REALs. Every work-item must call them (they hold barriers)
 * and all receive the result. fmax skips NaN; a NaN still reaches every output through the sum.
 */
REAL group_max_1d(__local REAL* red, REAL v)
{
    const size_t lid = get_local_id(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = get_local_size(0) / 2; s > 0; s >>= 1) {
        if (lid < s)
            red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const REAL r = red[0];
    /* everyone has read red[0] before the next reduction overwrites it */
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

REAL group_sum_1d(__local REAL* red, REAL v)
{
    const size_t lid = get_local_id(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = get_local_size(0) / 2; s > 0; s >>= 1) {
        if (lid < s)
            red[lid] = red[lid] + red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const REAL r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Horizontal max of a vector: halves folded with fmax, so NaN lanes are skipped. */
REAL hmax_v(REALV v)
{
#if CLSOFTMAX_VW == 16
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = fmax(v.lo, v.hi);
#elif CLSOFTMAX_VW == 8
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = v;
#endif
#if CLSOFTMAX_VW >= 8
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = fmax(v8.lo, v8.hi);
#elif CLSOFTMAX_VW == 4
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = v;
#endif
#if CLSOFTMAX_VW >= 4
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = fmax(v4.lo, v4.hi);
#elif CLSOFTMAX_VW == 2
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = v;
#endif
#if CLSOFTMAX_VW >= 2
    return fmax(v2.x, v2.y);
#else
    return v;
#endif
}

/* Horizontal sum of a vector, pairwise: its rounding error grows with log2(VW), not VW. */
REAL hsum_v(REALV v)
{
#if CLSOFTMAX_VW == 16
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = v.lo + v.hi;
#elif CLSOFTMAX_VW == 8
    const CLSOFTMAX_CAT(REAL_NAME, 8) v8 = v;
#endif
#if CLSOFTMAX_VW >= 8
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = v8.lo + v8.hi;
#elif CLSOFTMAX_VW == 4
    const CLSOFTMAX_CAT(REAL_NAME, 4) v4 = v;
#endif
#if CLSOFTMAX_VW >= 4
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = v4.lo + v4.hi;
#elif CLSOFTMAX_VW == 2
    const CLSOFTMAX_CAT(REAL_NAME, 2) v2 = v;
#endif
#if CLSOFTMAX_VW >= 2
    return v2.x + v2.y;
#else
    return v;
#endif
}

/*
 * The online (max, sum) recurrence (Milakov and Gimelshein 2018), blocked. For each block of
 * terms the caller takes the block's max bm, calls online_rescale() (which rescales the running
 * sum by exp(m - bm) only when bm raises m), sums the block's exp(t - ref) on its own and adds
 * that with kahan_add(). Each element costs one exp, a long row stays accurate (block sums of a
 * few hundred terms, compensated across blocks), and (max, sum) need one read of the input.
 * While m is still -inf (every t so far -inf or NaN) terms are taken against ref = 0:
 * exp(-inf) adds 0 and a NaN adds NaN. A row whose final m is -inf is all -inf (or NaN): the
 * caller then makes its sum NaN, as exp(-inf - -inf) does in the three-pass formula.
 * Returns ref.
 */
REAL online_rescale(REAL* m, REAL* s, REAL* c, REAL bm)
{
    if (bm > *m) {
        /* m = -inf gives a factor 0: nothing but NaN can have been summed against it. */
        const REAL f = exp(*m - bm);
        *s *= f;
        *c *= f;
        *m = bm;
    }
    return *m == -INFINITY ? (REAL)0 : *m;
}

/*
 * Merges two (max, sum) pairs: sums rescaled to the larger max. exp(-inf - M) = 0 drops an
 * empty or all -inf side (a NaN sum stays NaN, NaN * 0 being NaN); both maxima -inf keeps the
 * plain sum (0, or NaN when a NaN was seen).
 */
void ms_merge(REAL* m, REAL* s, REAL m2, REAL s2)
{
    const REAL mm = fmax(*m, m2);
    if (mm == -INFINITY) {
        *s = *s + s2;
    } else {
        *s = *s * exp(*m - mm) + s2 * exp(m2 - mm);
    }
    *m = mm;
}

#endif /* CLSOFTMAX_COMMON_CL */
