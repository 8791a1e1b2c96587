/* alloc.h - host allocations of host/ (the CPU path included) through wrappers: injected
 * failures and a count of outstanding blocks.
 *
 * Included at the end of internal.h and of cpu/cpu_softmax.h (the CPU path sees no OpenCL
 * header, hence a header of its own). <stdlib.h> comes first, so its declarations are never
 * rewritten; after that, malloc(n) in a host file calls clsoftmax__fi_malloc(n) without any
 * change at the call site. alloc.c defines CLSOFTMAX__ALLOC_NO_MACROS to reach the real ones.
 * Unarmed, a wrapper costs one relaxed atomic load and one atomic add.
 */
#ifndef CLSOFTMAX_ALLOC_H
#define CLSOFTMAX_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

/* Fails the nth allocation counted from now (1: the next one); 0 disarms. Resets the counters. */
void clsoftmax__fault_alloc_nth(unsigned long n);
/* Disarms and zeroes the call and fired counters (the outstanding count stays). */
void clsoftmax__fault_alloc_reset(void);
/* Allocations attempted while armed, and how many were failed on purpose. */
unsigned long clsoftmax__fault_alloc_calls(void);
unsigned long clsoftmax__fault_alloc_fired(void);
/* Blocks allocated through the wrappers and not yet freed. */
long clsoftmax__fault_alloc_live(void);

void* clsoftmax__fi_malloc(size_t size);
void* clsoftmax__fi_calloc(size_t count, size_t size);
void* clsoftmax__fi_realloc(void* ptr, size_t size);
void* clsoftmax__fi_aligned_alloc(size_t alignment, size_t size);
int clsoftmax__fi_posix_memalign(void** ptr, size_t alignment, size_t size);
void clsoftmax__fi_free(void* ptr);

#ifndef CLSOFTMAX__ALLOC_NO_MACROS
#define malloc(...) clsoftmax__fi_malloc(__VA_ARGS__)
#define calloc(...) clsoftmax__fi_calloc(__VA_ARGS__)
#define realloc(...) clsoftmax__fi_realloc(__VA_ARGS__)
#define aligned_alloc(...) clsoftmax__fi_aligned_alloc(__VA_ARGS__)
#define posix_memalign(...) clsoftmax__fi_posix_memalign(__VA_ARGS__)
#define free(...) clsoftmax__fi_free(__VA_ARGS__)
#endif

#endif /* CLSOFTMAX_ALLOC_H */
