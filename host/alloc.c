/* alloc.c - the allocation wrappers behind alloc.h: injected failures, outstanding blocks. */
#define CLSOFTMAX__ALLOC_NO_MACROS
#include "alloc.h"

#include <errno.h>
#include <stdatomic.h>

static atomic_int armed;
static atomic_ulong fail_nth;
static atomic_ulong calls;
static atomic_ulong fired;
static atomic_long live;

/* Non-zero: fail this allocation. */
static int fault_alloc(void)
{
    if (atomic_load_explicit(&armed, memory_order_relaxed) == 0)
        return 0;
    unsigned long n = atomic_fetch_add(&calls, 1) + 1;
    if (n != atomic_load(&fail_nth))
        return 0;
    atomic_fetch_add(&fired, 1);
    return 1;
}

static void* counted(void* ptr)
{
    if (ptr != NULL)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return ptr;
}

void clsoftmax__fault_alloc_nth(unsigned long n)
{
    atomic_store(&armed, 0);
    atomic_store(&calls, 0);
    atomic_store(&fired, 0);
    atomic_store(&fail_nth, n);
    atomic_store(&armed, n != 0);
}

void clsoftmax__fault_alloc_reset(void) { clsoftmax__fault_alloc_nth(0); }
unsigned long clsoftmax__fault_alloc_calls(void) { return atomic_load(&calls); }
unsigned long clsoftmax__fault_alloc_fired(void) { return atomic_load(&fired); }
long clsoftmax__fault_alloc_live(void) { return atomic_load(&live); }

void* clsoftmax__fi_malloc(size_t size)
{
    if (fault_alloc()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(malloc(size));
}

void* clsoftmax__fi_calloc(size_t count, size_t size)
{
    if (fault_alloc()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(calloc(count, size));
}

void* clsoftmax__fi_realloc(void* ptr, size_t size)
{
    if (fault_alloc()) {
        errno = ENOMEM;
        return NULL; /* ptr stays valid, as with a real failure */
    }
    /* Only realloc(NULL, n) adds a block; realloc(p, 0) is not used by the library. */
    void* grown = realloc(ptr, size);
    return ptr == NULL ? counted(grown) : grown;
}

void* clsoftmax__fi_aligned_alloc(size_t alignment, size_t size)
{
    if (fault_alloc()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(aligned_alloc(alignment, size));
}

int clsoftmax__fi_posix_memalign(void** ptr, size_t alignment, size_t size)
{
    if (fault_alloc())
        return ENOMEM;
    int err = posix_memalign(ptr, alignment, size);
    if (err == 0)
        counted(*ptr);
    return err;
}

void clsoftmax__fi_free(void* ptr)
{
    if (ptr != NULL)
        atomic_fetch_add_explicit(&live, -1, memory_order_relaxed);
    free(ptr);
}
