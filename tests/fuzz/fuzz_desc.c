/* fuzz_desc.c - libFuzzer target: descriptor validation on arbitrary fields, checked for sense. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

/* Takes n bytes from the input (zeros once it runs out), so every input maps to fields. */
static void take(const uint8_t** data, size_t* size, void* out, size_t n)
{
    size_t k = *size < n ? *size : n;
    memset(out, 0, n);
    memcpy(out, *data, k);
    *data += k;
    *size -= k;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 0, NULL, 0);
    uint8_t small[5];
    take(&data, &size, small, sizeof small);
    desc.ndim = small[0] % 12;                    /* 0..11: past both ends of 1..8 */
    desc.dtype = (clsoftmax_dtype)(small[1] % 6); /* 4 and 5 are not dtypes */
    desc.op = (clsoftmax_op)(small[2] % 3);
    if (small[3] & 1)
        desc.struct_size = small[3];
    else if (small[3] & 2)
        desc.struct_size = offsetof(clsoftmax_desc, alpha); /* a 0.1 caller */
    desc.nonfinite = (clsoftmax_nonfinite)(small[4] % 4);
    int32_t axis;
    take(&data, &size, &axis, sizeof axis);
    desc.axis = axis;
    take(&data, &size, &desc.scale, sizeof desc.scale);
    take(&data, &size, &desc.alpha, sizeof desc.alpha);
    take(&data, &size, &desc.beta, sizeof desc.beta);
    for (size_t d = 0; d < CLSOFTMAX_MAX_DIMS; ++d) {
        /* Mostly small extents, sometimes huge ones: both ends of the overflow checks. */
        uint8_t kind;
        take(&data, &size, &kind, 1);
        if (kind < 200)
            desc.dims[d] = kind % 17;
        else
            take(&data, &size, &desc.dims[d], sizeof desc.dims[d]);
    }

    clsoftmax__layout layout;
    char msg[256];
    clsoftmax_status st = clsoftmax__validate_desc(&desc, &layout, msg, sizeof msg);
    size_t count = 0;
    if (clsoftmax_desc_validate(&desc, &count) != st)
        abort(); /* the public and internal validators agree */
    if (st != CLSOFTMAX_SUCCESS) {
        if (msg[0] == '\0')
            abort(); /* every rejection says why */
        return 0;
    }
    /* An accepted descriptor: the view multiplies back to the count, nothing wrapped. */
    if (layout.outer * layout.n * layout.inner != layout.count || layout.count != count ||
        layout.rows != layout.outer * layout.inner || layout.n == 0 ||
        layout.bytes / layout.elem_size != layout.count || !isfinite(desc.scale))
        abort();
    /* The 0.2 fields: a 0.1 desc gets the defaults, a 0.2 one is finite where it computes. */
    const int v1 = desc.struct_size == offsetof(clsoftmax_desc, alpha);
    if (layout.elem_size != clsoftmax_dtype_size(desc.dtype) ||
        layout.compute_size != (desc.dtype == CLSOFTMAX_FLOAT64 ? 8u : 4u))
        abort();
    if (v1 ? (layout.alpha != 1.0 || layout.beta != 0.0 ||
              layout.nonfinite != CLSOFTMAX_NONFINITE_NAN || layout.report != NULL)
           : (layout.alpha != (layout.compute_size == 4 ? (double)(float)desc.alpha : desc.alpha) ||
              layout.beta != (layout.compute_size == 4 ? (double)(float)desc.beta : desc.beta) ||
              layout.nonfinite != desc.nonfinite || (unsigned)desc.nonfinite > 2))
        abort();
    if (!isfinite(layout.alpha) || !isfinite(layout.beta) ||
        (layout.compute_size == 4 && (!isfinite(layout.alpha_f) || !isfinite(layout.beta_f))))
        abort();
    size_t product = 1;
    for (size_t d = 0; d < desc.ndim; ++d) {
        if (desc.dims[d] != 0 && product > SIZE_MAX / desc.dims[d])
            abort(); /* accepted although the product overflows */
        product *= desc.dims[d];
    }
    if (product != layout.count)
        abort();
    return 0;
}
