/* half_convert.h - float16 and bfloat16 to and from float32, bit for bit as the kernels do. */
#ifndef CLSOFTMAX_HALF_CONVERT_H
#define CLSOFTMAX_HALF_CONVERT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Widening is exact. Narrowing rounds to nearest, ties to even; values past the largest finite
 * become inf. NaN stays NaN of the same sign: narrowing keeps the payload's top bits and sets
 * the quiet bit, widening keeps the payload and sets the quiet bit (as F16C's VCVTPH2PS and
 * GPUs do), so a quiet NaN survives a round trip bit for bit and a signalling one comes back
 * quiet. kernels/common.cl's bfloat16 store is the same function; vstore_half_rte is IEEE's
 * rounding, which clsoftmax__f32_to_f16 follows.
 */
float clsoftmax__f16_to_f32(uint16_t h);
uint16_t clsoftmax__f32_to_f16(float f);
float clsoftmax__bf16_to_f32(uint16_t h);
uint16_t clsoftmax__f32_to_bf16(float f);

/* n elements at a time; in and out must not overlap. */
void clsoftmax__f16_load_n(const uint16_t* in, float* out, size_t n);
void clsoftmax__f16_store_n(const float* in, uint16_t* out, size_t n);
void clsoftmax__bf16_load_n(const uint16_t* in, float* out, size_t n);
void clsoftmax__bf16_store_n(const float* in, uint16_t* out, size_t n);

#endif /* CLSOFTMAX_HALF_CONVERT_H */
