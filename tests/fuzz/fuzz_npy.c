/* fuzz_npy.c - libFuzzer target: the .npy reader on arbitrary bytes must fail cleanly or agree. */
#define _GNU_SOURCE /* fmemopen */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen rejects an empty buffer */
    FILE* f = fmemopen((void*)data, size, "rb");
    if (f == NULL)
        return 0;
    npy_array array;
    char msg[1024];
    npy_result r = npy_read_stream(f, size, "fuzz.npy", &array, msg, sizeof msg);
    fclose(f);
    if (r != NPY_OK) {
        /* Every failure explains itself and hands back nothing. */
        if (msg[0] == '\0' || array.data != NULL)
            abort();
        return 0;
    }
    /* An accepted file is self-consistent: the data are exactly the file's tail. */
    size_t count = 1;
    for (size_t d = 0; d < array.ndim; ++d)
        count *= array.dims[d];
    size_t bytes = count * npy_dtype_size(array.dtype);
    if (array.ndim == 0 || array.ndim > NPY_MAX_DIMS || count != array.count || bytes > size ||
        memcmp((const uint8_t*)data + size - bytes, array.data, bytes) != 0)
        abort();
    npy_array_free(&array);
    return 0;
}
