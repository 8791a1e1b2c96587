/* cpu_kernels_generic.c - the CPU kernels at 16-byte vectors, for any target (SSE2 on x86-64). */
#define VBYTES 16
#define KTABLE clsoftmax__cpu_kernels_generic
#define KNAME "generic"
#include "cpu_kernels.inc"
