/* half_convert.c - portable float16 and bfloat16 conversions (rounding to nearest even). */
#include "half_convert.h"

#include <string.h>

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float clsoftmax__f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    const uint32_t m = h & 0x3ffu;
    if (e == 0x1f)
        return bits_float(sign | 0x7f800000u | (m != 0 ? 0x00400000u | (m << 13) : 0));
    if (e != 0)
        return bits_float(sign | ((e + 112u) << 23) | (m << 13));
    /* zero or subnormal: m * 2^-24, exact in float */
    return bits_float(sign | float_bits((float)m * 0x1p-24f));
}

uint16_t clsoftmax__f32_to_f16(float f)
{
    const uint32_t x = float_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    /* 65520 is halfway between 65504 (odd mantissa) and 65536: ties to even go to inf */
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) {
        /* normal: rebias the exponent (127 - 15 = 112), round the 13 dropped bits; a carry
           into the exponent is the correct rounding */
        const uint32_t r = ax - 0x38000000u;
        return (uint16_t)(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
    }
    /* subnormal or zero: adding 0.5 leaves float's ulp at 2^-24, the half subnormal step, so
       the float addition itself rounds to nearest even; a result of 2^-14 carries into the
       smallest normal (0x0400), as it should */
    const float sum = bits_float(ax) + 0.5f;
    return (uint16_t)(sign | (float_bits(sum) - 0x3f000000u));
}

float clsoftmax__bf16_to_f32(uint16_t h) { return bits_float((uint32_t)h << 16); }

uint16_t clsoftmax__f32_to_bf16(float f)
{
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void clsoftmax__f16_load_n(const uint16_t* in, float* out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = clsoftmax__f16_to_f32(in[i]);
}

void clsoftmax__f16_store_n(const float* in, uint16_t* out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = clsoftmax__f32_to_f16(in[i]);
}

void clsoftmax__bf16_load_n(const uint16_t* in, float* out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = clsoftmax__bf16_to_f32(in[i]);
}

void clsoftmax__bf16_store_n(const float* in, uint16_t* out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = clsoftmax__f32_to_bf16(in[i]);
}
