/* validate.c - descriptor checks, run before anything is enqueued or written; no device needed. */
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void clsoftmax_desc_init(clsoftmax_desc* desc, clsoftmax_dtype dtype, size_t ndim,
                         const size_t* dims, int axis)
{
    if (desc == NULL)
        return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->dtype = dtype;
    desc->ndim = ndim;
    if (dims != NULL) {
        size_t copy = ndim < CLSOFTMAX_MAX_DIMS ? ndim : CLSOFTMAX_MAX_DIMS;
        memcpy(desc->dims, dims, copy * sizeof *dims);
    }
    desc->axis = axis;
    desc->scale = 1.0;
    desc->op = CLSOFTMAX_OP_SOFTMAX;
    desc->alpha = 1.0;
    desc->beta = 0.0;
    desc->nonfinite = CLSOFTMAX_NONFINITE_NAN;
    desc->report = NULL;
}

size_t clsoftmax_dtype_size(clsoftmax_dtype dtype)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT32:
        return 4;
    case CLSOFTMAX_FLOAT64:
        return 8;
    case CLSOFTMAX_FLOAT16:
    case CLSOFTMAX_BFLOAT16:
        return 2;
    default:
        return 0;
    }
}

/*
 * v rounded to the compute precision. A function of its own, not inline: GCC 12.2's SLP
 * vectoriser at -O2 paired the two conditional roundings of alpha and beta into one store of
 * the unrounded values (a beta of 1e-50 stayed 1e-50 for float32).
 */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static double
in_compute_precision(double v, size_t compute_size)
{
    return compute_size == sizeof(float) ? (double)(float)v : v;
}

/* The 0.1 struct ended after op; its callers get the 0.2 fields' defaults. */
#define DESC_V1_SIZE offsetof(clsoftmax_desc, alpha)

#define FAIL(st, ...)                                                                              \
    do {                                                                                           \
        if (msg != NULL && msg_size > 0)                                                           \
            snprintf(msg, msg_size, __VA_ARGS__);                                                  \
        return (st);                                                                               \
    } while (0)

clsoftmax_status clsoftmax__validate_desc(const clsoftmax_desc* desc, clsoftmax__layout* layout,
                                          char* msg, size_t msg_size)
{
    if (desc == NULL)
        FAIL(CLSOFTMAX_INVALID_ARGUMENT, "desc is NULL");
    /* A size we do not know means an uninitialised struct or a header/library mismatch. */
    if (desc->struct_size != sizeof(clsoftmax_desc) && desc->struct_size != DESC_V1_SIZE)
        FAIL(CLSOFTMAX_INVALID_ARGUMENT,
             "desc->struct_size is %zu, expected %zu: initialise it with clsoftmax_desc_init()",
             desc->struct_size, sizeof(clsoftmax_desc));
    const int v1 = desc->struct_size == DESC_V1_SIZE;
    const double alpha = v1 ? 1.0 : desc->alpha;
    const double beta = v1 ? 0.0 : desc->beta;
    const clsoftmax_nonfinite nonfinite = v1 ? CLSOFTMAX_NONFINITE_NAN : desc->nonfinite;
    clsoftmax_row_report* report = v1 ? NULL : desc->report;

    const size_t elem_size = clsoftmax_dtype_size(desc->dtype);
    if (elem_size == 0)
        FAIL(CLSOFTMAX_INVALID_DTYPE, "desc->dtype %d is not a clsoftmax_dtype", (int)desc->dtype);
    /* the 16-bit types are stored, never computed: float holds their values */
    const size_t compute_size = desc->dtype == CLSOFTMAX_FLOAT64 ? sizeof(double) : sizeof(float);
    if (desc->op != CLSOFTMAX_OP_SOFTMAX && desc->op != CLSOFTMAX_OP_LOG_SOFTMAX)
        FAIL(CLSOFTMAX_INVALID_ARGUMENT, "desc->op %d is not a clsoftmax_op", (int)desc->op);

    if (desc->ndim == 0 || desc->ndim > CLSOFTMAX_MAX_DIMS)
        FAIL(CLSOFTMAX_INVALID_SHAPE, "desc->ndim is %zu; it must be 1 to %d", desc->ndim,
             CLSOFTMAX_MAX_DIMS);
    int ndim = (int)desc->ndim;
    if (desc->axis < -ndim || desc->axis >= ndim)
        FAIL(CLSOFTMAX_INVALID_AXIS, "desc->axis %d is out of range for %d dimensions (%d to %d)",
             desc->axis, ndim, -ndim, ndim - 1);
    int axis = desc->axis < 0 ? desc->axis + ndim : desc->axis;

    size_t count = 1;
    for (int d = 0; d < ndim; ++d) {
        /* TensorFlow rejects empty softmax inputs too; an empty row has no max. */
        if (desc->dims[d] == 0)
            FAIL(CLSOFTMAX_INVALID_SHAPE, "desc->dims[%d] is 0: empty tensors are not accepted", d);
        if (count > SIZE_MAX / desc->dims[d])
            FAIL(CLSOFTMAX_SIZE_OVERFLOW, "the element count overflows size_t at desc->dims[%d]",
                 d);
        count *= desc->dims[d];
    }
    if (count > SIZE_MAX / elem_size)
        FAIL(CLSOFTMAX_SIZE_OVERFLOW, "the byte count of %zu elements overflows size_t", count);

    if (!isfinite(desc->scale))
        FAIL(CLSOFTMAX_INVALID_SCALE, "desc->scale is %g; it must be finite", desc->scale);
    float scale_f = (float)desc->scale;
    if (compute_size == sizeof(float) && !isfinite(scale_f))
        FAIL(CLSOFTMAX_INVALID_SCALE, "desc->scale %g overflows float32", desc->scale);
    if (!isfinite(alpha) || (compute_size == sizeof(float) && !isfinite((float)alpha)))
        FAIL(CLSOFTMAX_INVALID_ARGUMENT, "desc->alpha is %g; it must be finite in the dtype",
             alpha);
    if (!isfinite(beta) || (compute_size == sizeof(float) && !isfinite((float)beta)))
        FAIL(CLSOFTMAX_INVALID_ARGUMENT, "desc->beta is %g; it must be finite in the dtype", beta);
    if (nonfinite != CLSOFTMAX_NONFINITE_NAN && nonfinite != CLSOFTMAX_NONFINITE_ZERO &&
        nonfinite != CLSOFTMAX_NONFINITE_ERROR)
        FAIL(CLSOFTMAX_INVALID_ARGUMENT, "desc->nonfinite %d is not a clsoftmax_nonfinite",
             (int)nonfinite);

    if (layout != NULL) {
        size_t outer = 1, inner = 1;
        for (int d = 0; d < axis; ++d)
            outer *= desc->dims[d];
        for (int d = axis + 1; d < ndim; ++d)
            inner *= desc->dims[d];
        layout->outer = outer;
        layout->n = desc->dims[axis];
        layout->inner = inner;
        layout->rows = outer * inner;
        layout->count = count;
        layout->elem_size = elem_size;
        layout->compute_size = compute_size;
        layout->bytes = count * elem_size;
        layout->scale_f = scale_f;
        layout->dtype = desc->dtype;
        /* in the compute precision, so that "beta == 0" (out not read, in place allowed)
           means the same on every path: a double beta that rounds to float 0 is 0 */
        layout->alpha_f = (float)alpha;
        layout->beta_f = (float)beta;
        layout->alpha = in_compute_precision(alpha, compute_size);
        layout->beta = in_compute_precision(beta, compute_size);
        layout->nonfinite = nonfinite;
        layout->report = report;
    }
    if (msg != NULL && msg_size > 0)
        msg[0] = '\0';
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax_desc_validate(const clsoftmax_desc* desc, size_t* element_count)
{
    clsoftmax__layout layout;
    clsoftmax_status status = clsoftmax__validate_desc(desc, &layout, NULL, 0);
    if (status == CLSOFTMAX_SUCCESS && element_count != NULL)
        *element_count = layout.count;
    return status;
}
