/* host_path.c - host memory through an OpenCL device: zero-copy wrapping or chunked streaming.
 *
 * Two ways to run clsoftmax_softmax_host on a device:
 *
 * - Zero-copy, on devices that share host memory (CL_DEVICE_HOST_UNIFIED_MEMORY: PoCL, most
 *   integrated GPUs): the caller's arrays are wrapped with CL_MEM_USE_HOST_PTR and the kernel
 *   reads `in` and writes `out` where they lie. A map/unmap of `out` then makes the results
 *   visible in the caller's memory on drivers that keep a shadow copy (PoCL keeps none).
 *   OpenCL asks nothing of a USE_HOST_PTR pointer's alignment for correctness;
 *   CL_DEVICE_MEM_BASE_ADDR_ALIGN (1024 bits on PoCL) only tells where a driver can avoid a
 *   shadow copy, and PoCL 3.1 was measured to use pointers at any 4-byte offset in place.
 *   So only a pointer that is not aligned to its element size (which the kernels' loads
 *   assume) falls back to streaming.
 *
 * - Streaming, on discrete devices, for tensors above CL_DEVICE_MAX_MEM_ALLOC_SIZE, for
 *   misaligned pointers, and whenever CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES is set: the tensor
 *   goes through in chunks of whole outer slices (so every softmax row lies in one chunk),
 *   each written to a device buffer, computed in place and read back. Two buffers on two
 *   in-order queues alternate: while chunk i computes on one queue, chunk i+1 is written and
 *   chunk i-1 read on the other. Reuse of a buffer two chunks later is ordered by its own
 *   queue, so no events are needed.
 *
 * Blending with beta != 0 reads out's old values: zero-copy wraps out read-write, streaming
 * copies each chunk of out to a second device buffer, which the kernel then writes. A report
 * or policy ERROR counts the bad rows first (the check kernel): on the wrapped input, or
 * streamed chunk by chunk through the first buffer, before any chunk is computed; under ERROR
 * a bad row ends the call there, `out` untouched.
 *
 * Errors and the caller's output: every validation, every allocation (buffers, the second
 * queue) and the program build happen before anything writes to `out`, so a failure there
 * leaves `out` untouched. Once a kernel has been enqueued on the caller's memory (zero-copy)
 * or a chunk read back (streaming), a device failure (a lost device, an enqueue refused for
 * lack of resources) can no longer be undone: `out` may then be partly written. Both paths
 * finish their queues before returning, so nothing touches `in` or `out` afterwards.
 */
#include "internal.h"

#include <stdint.h>

/* Chunk size when the parameter is 0: large enough that per-command overhead (~10 us) is
   noise against a transfer (4 ms over 16 GB/s PCIe), small enough that two chunks fit next
   to anything else on a small device. */
#define DEFAULT_CHUNK_BYTES ((size_t)64 << 20)

static int aligned_to(const void* p, size_t align) { return ((uintptr_t)p % align) == 0; }

/* A read-write buffer on the caller's memory, or a device buffer when host is NULL. */
static clsoftmax_status make_buffer(clsoftmax_context* ctx, cl_mem_flags flags, size_t bytes,
                                    void* host, cl_mem* buf)
{
    cl_int err = CL_SUCCESS;
    *buf = clCreateBuffer(ctx->cl_ctx, flags, bytes, host, &err);
    if (err != CL_SUCCESS) {
        *buf = NULL;
        return clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateBuffer", err,
                                   "%zu bytes on %s", bytes, ctx->device_name);
    }
    return CLSOFTMAX_SUCCESS;
}

/* The kernel runs on the caller's arrays; see the header comment for `out` on failure. */
static clsoftmax_status run_zero_copy(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                      const clsoftmax__layout* layout, const void* in, void* out,
                                      int* out_touched)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    cl_mem bin = NULL;
    cl_mem bout = NULL;
    cl_int err = CL_SUCCESS;
    void* mapped = NULL;

    /* `in` is only read: READ_ONLY lets a driver skip writing it back, so the cast is safe. */
    if (in == out) {
        status =
            make_buffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, layout->bytes, out, &bout);
    } else {
        /* beta != 0: the kernel reads out's old values too */
        const cl_mem_flags out_flags = layout->beta != 0 ? CL_MEM_READ_WRITE : CL_MEM_WRITE_ONLY;
        status = make_buffer(ctx, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, layout->bytes, (void*)in,
                             &bin);
        if (status == CLSOFTMAX_SUCCESS)
            status = make_buffer(ctx, out_flags | CL_MEM_USE_HOST_PTR, layout->bytes, out, &bout);
    }
    if (status != CLSOFTMAX_SUCCESS)
        goto cleanup;
    if (CLSOFTMAX__COUNTS_ROWS(layout)) {
        size_t bad = 0, first = SIZE_MAX;
        status = clsoftmax__check_rows(ctx, desc, layout, bin != NULL ? bin : bout, 0, 0,
                                       ctx->queue, 0, NULL, &bad, &first);
        if (status == CLSOFTMAX_SUCCESS)
            status = clsoftmax__rows_checked(ctx, layout, bad, first);
        if (status != CLSOFTMAX_SUCCESS)
            goto cleanup;
    }

    /* The launch builds the program and plans before it enqueues: its failures leave `out`. */
    status = clsoftmax__launch(ctx, desc, layout, bin != NULL ? bin : bout, 0, bout, 0, ctx->queue,
                               0, NULL, NULL);
    if (status != CLSOFTMAX_SUCCESS)
        goto cleanup;
    *out_touched = 1; /* the kernel writes the caller's memory directly */
    /* Mapping synchronises a driver's shadow copy (if any) into the caller's memory. */
    mapped = clEnqueueMapBuffer(ctx->queue, bout, CL_TRUE, CL_MAP_READ, 0, layout->bytes, 0, NULL,
                                NULL, &err);
    if (err != CL_SUCCESS) {
        status = clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clEnqueueMapBuffer", err,
                                     "reading the result into host memory");
        goto cleanup;
    }
    CHECK_CL(ctx, clEnqueueUnmapMemObject(ctx->queue, bout, mapped, 0, NULL, NULL), cleanup);
    CHECK_CL(ctx, clFinish(ctx->queue), cleanup);

cleanup:
    if (status != CLSOFTMAX_SUCCESS)
        clFinish(ctx->queue); /* nothing may still use the caller's memory once we return */
    if (bin != NULL)
        clReleaseMemObject(bin);
    if (bout != NULL)
        clReleaseMemObject(bout);
    return status;
}

/*
 * Chunk sizes: whole outer slices of slice_bytes each, about chunk_bytes per chunk, at least
 * one slice. Returns UNSUPPORTED when one slice exceeds the device's largest allocation.
 */
static clsoftmax_status chunk_slices(clsoftmax_context* ctx, const clsoftmax__layout* layout,
                                     size_t* slices_per_chunk)
{
    const size_t slice_bytes = layout->n * layout->inner * layout->elem_size;
    size_t chunk_bytes = ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES];
    *slices_per_chunk = 1; /* never 0, even on the error returns: callers divide by it */
    RETURN_ERROR_IF(ctx, slice_bytes == 0 || layout->outer == 0, CLSOFTMAX_INVALID_ARGUMENT,
                    "internal: an empty layout reached the streamed host path");
    if (chunk_bytes == 0)
        chunk_bytes = DEFAULT_CHUNK_BYTES;
    if ((cl_ulong)chunk_bytes > ctx->caps.max_mem_alloc_size)
        chunk_bytes = (size_t)ctx->caps.max_mem_alloc_size;
    RETURN_ERROR_IF(ctx, (cl_ulong)slice_bytes > ctx->caps.max_mem_alloc_size,
                    CLSOFTMAX_UNSUPPORTED,
                    "one softmax slice (%zu x %zu elements, %zu bytes) exceeds %s's "
                    "CL_DEVICE_MAX_MEM_ALLOC_SIZE (%llu bytes); the host path streams whole "
                    "slices, so this shape needs the CPU backend or a device with larger "
                    "allocations",
                    layout->n, layout->inner, slice_bytes, ctx->device_name,
                    (unsigned long long)ctx->caps.max_mem_alloc_size);
    size_t k = chunk_bytes / slice_bytes;
    if (k == 0)
        k = 1; /* a slice above the chunk size but within the device's limit goes alone */
    if (k > layout->outer)
        k = layout->outer;
    *slices_per_chunk = k;
    return CLSOFTMAX_SUCCESS;
}

/* The layout of `slices` outer slices of layout, from which a streamed chunk is computed. */
static clsoftmax__layout chunk_layout(const clsoftmax__layout* layout, size_t slices)
{
    clsoftmax__layout part = *layout;
    part.outer = slices;
    part.rows = slices * layout->inner;
    part.count = slices * layout->n * layout->inner;
    part.bytes = part.count * layout->elem_size;
    return part;
}

/*
 * The streamed path's bad-row count, before any chunk is computed: each chunk written to buf
 * (blocking, so the order holds on any queue) and checked there, rows numbered from the
 * chunk's first. Then the report, and under ERROR the end of the call.
 */
static clsoftmax_status check_streamed(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                       const clsoftmax__layout* layout, const void* in,
                                       size_t per_chunk, cl_mem buf)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    const unsigned char* src = in;
    const size_t slice_bytes = layout->n * layout->inner * layout->elem_size;
    size_t bad = 0, first = SIZE_MAX;
    for (size_t at = 0; at < layout->outer && status == CLSOFTMAX_SUCCESS; at += per_chunk) {
        const size_t slices = layout->outer - at < per_chunk ? layout->outer - at : per_chunk;
        const clsoftmax__layout part = chunk_layout(layout, slices);
        CHECK_CL(ctx,
                 clEnqueueWriteBuffer(ctx->queue, buf, CL_TRUE, 0, part.bytes,
                                      src + at * slice_bytes, 0, NULL, NULL),
                 cleanup);
        status = clsoftmax__check_rows(ctx, desc, &part, buf, 0, at * layout->inner, ctx->queue, 0,
                                       NULL, &bad, &first);
    }
    if (status == CLSOFTMAX_SUCCESS)
        status = clsoftmax__rows_checked(ctx, layout, bad, first);
cleanup:
    return status;
}

/* Chunks of whole slices through two device buffers; see the header comment. */
static clsoftmax_status run_streamed(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                     const clsoftmax__layout* layout, const void* in, void* out,
                                     int* out_touched)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    cl_mem buf[2] = {NULL, NULL};
    cl_mem obuf[2] = {NULL, NULL}; /* beta != 0: out's old values, then the results */
    cl_command_queue queue[2] = {ctx->queue, NULL};
    cl_int err = CL_SUCCESS;
    size_t per_chunk = 0;

    status = chunk_slices(ctx, layout, &per_chunk);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    const size_t slice_bytes = layout->n * layout->inner * layout->elem_size;
    const size_t chunks = layout->outer / per_chunk + (layout->outer % per_chunk != 0);
    const size_t nbuf = chunks > 1 ? 2 : 1;
    const int blend = layout->beta != 0;

    /* Everything allocated before the first enqueue. */
    for (size_t b = 0; b < nbuf && status == CLSOFTMAX_SUCCESS; b++) {
        status = make_buffer(ctx, CL_MEM_READ_WRITE, per_chunk * slice_bytes, NULL, &buf[b]);
        if (status == CLSOFTMAX_SUCCESS && blend)
            status = make_buffer(ctx, CL_MEM_READ_WRITE, per_chunk * slice_bytes, NULL, &obuf[b]);
    }
    if (status != CLSOFTMAX_SUCCESS)
        goto cleanup;
    if (nbuf == 2) {
        queue[1] = clCreateCommandQueue(ctx->cl_ctx, ctx->device, 0, &err);
        if (err != CL_SUCCESS) {
            queue[1] = NULL;
            status =
                clsoftmax__error_cl(ctx, clsoftmax__status_from_cl(err), "clCreateCommandQueue",
                                    err, "the second queue of the streamed host path");
            goto cleanup;
        }
    }
    if (CLSOFTMAX__COUNTS_ROWS(layout)) {
        status = check_streamed(ctx, desc, layout, in, per_chunk, buf[0]);
        if (status != CLSOFTMAX_SUCCESS)
            goto cleanup;
    }

    const unsigned char* src = in;
    unsigned char* dst = out;
    for (size_t c = 0; c < chunks; c++) {
        const size_t first = c * per_chunk;
        const size_t slices = layout->outer - first < per_chunk ? layout->outer - first : per_chunk;
        const clsoftmax__layout part = chunk_layout(layout, slices);
        const size_t offset = first * slice_bytes;
        cl_command_queue q = queue[c % 2];
        cl_mem b = buf[c % 2];
        /* Without blending the chunk is computed in place in b. */
        cl_mem ob = blend ? obuf[c % 2] : b;

        CHECK_CL(ctx,
                 clEnqueueWriteBuffer(q, b, CL_FALSE, 0, part.bytes, src + offset, 0, NULL, NULL),
                 cleanup);
        if (blend)
            CHECK_CL(
                ctx,
                clEnqueueWriteBuffer(q, ob, CL_FALSE, 0, part.bytes, dst + offset, 0, NULL, NULL),
                cleanup);
        /* The first launch builds the program: a build failure still leaves `out` untouched,
           as no read has been enqueued yet. */
        status = clsoftmax__launch(ctx, desc, &part, b, 0, ob, 0, q, 0, NULL, NULL);
        if (status != CLSOFTMAX_SUCCESS)
            goto cleanup;
        *out_touched = 1;
        CHECK_CL(ctx,
                 clEnqueueReadBuffer(q, ob, CL_FALSE, 0, part.bytes, dst + offset, 0, NULL, NULL),
                 cleanup);
        /* Both queues start work at once on drivers that defer submission to a flush. */
        CHECK_CL(ctx, clFlush(q), cleanup);
    }
    for (size_t b = 0; b < nbuf; b++)
        CHECK_CL(ctx, clFinish(queue[b]), cleanup);

cleanup:
    if (status != CLSOFTMAX_SUCCESS) {
        /* Nothing may still read `in` or write `out` once we return. */
        for (size_t b = 0; b < 2; b++)
            if (queue[b] != NULL)
                clFinish(queue[b]);
    }
    if (queue[1] != NULL)
        clReleaseCommandQueue(queue[1]);
    for (size_t b = 0; b < 2; b++) {
        if (buf[b] != NULL)
            clReleaseMemObject(buf[b]);
        if (obuf[b] != NULL)
            clReleaseMemObject(obuf[b]);
    }
    return status;
}

/* The streamed path is what clsoftmax__host_run picks for element-aligned pointers. */
static int streams(const clsoftmax_context* ctx, const clsoftmax__layout* layout)
{
    return !ctx->caps.host_unified_memory || ctx->params[CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES] != 0 ||
           (cl_ulong)layout->bytes > ctx->caps.max_mem_alloc_size;
}

clsoftmax_status clsoftmax__host_prepare(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                         const clsoftmax__layout* layout)
{
    clsoftmax_status status = CLSOFTMAX_SUCCESS;
    clsoftmax__layout parts[3];
    size_t nparts = 0;
    size_t scratch = 0;
    cl_mem buf = NULL;
    const cl_uchar zero = 0;

    /* The whole tensor: the device-buffer entry point and the zero-copy path. */
    if ((cl_ulong)layout->bytes <= ctx->caps.max_mem_alloc_size)
        parts[nparts++] = *layout;
    /* The streamed path's full chunk and its shorter last chunk. */
    if (streams(ctx, layout)) {
        size_t per_chunk = 0;
        status = chunk_slices(ctx, layout, &per_chunk);
        if (status != CLSOFTMAX_SUCCESS)
            return status;
        const size_t counts[2] = {per_chunk, layout->outer % per_chunk};
        for (size_t i = 0; i < 2; i++) {
            if (counts[i] == 0 || counts[i] == layout->outer)
                continue;
            parts[nparts++] = chunk_layout(layout, counts[i]);
        }
    }
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].bytes > scratch)
            scratch = parts[i].bytes;
    if (nparts == 0)
        return CLSOFTMAX_SUCCESS;

    status = make_buffer(ctx, CL_MEM_READ_WRITE, scratch, NULL, &buf);
    if (status != CLSOFTMAX_SUCCESS)
        return status;
    /* Zeros: a well-defined input that keeps denormals and NaN out of the warm-up. */
    CHECK_CL(ctx, clEnqueueFillBuffer(ctx->queue, buf, &zero, 1, 0, scratch, 0, NULL, NULL),
             cleanup);
    for (size_t i = 0; i < nparts && status == CLSOFTMAX_SUCCESS; i++) {
        /* The bad-row check too, where the calls will count (its result is of no interest). */
        if (CLSOFTMAX__COUNTS_ROWS(layout)) {
            size_t bad = 0, first = SIZE_MAX;
            status = clsoftmax__check_rows(ctx, desc, &parts[i], buf, 0, 0, ctx->queue, 0, NULL,
                                           &bad, &first);
        }
        if (status == CLSOFTMAX_SUCCESS)
            status =
                clsoftmax__launch(ctx, desc, &parts[i], buf, 0, buf, 0, ctx->queue, 0, NULL, NULL);
    }
    if (status == CLSOFTMAX_SUCCESS)
        CHECK_CL(ctx, clFinish(ctx->queue), cleanup);
cleanup:
    if (status != CLSOFTMAX_SUCCESS)
        clFinish(ctx->queue);
    clReleaseMemObject(buf);
    return status;
}

clsoftmax_status clsoftmax__host_run(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                     const clsoftmax__layout* layout, const void* in, void* out,
                                     int* out_touched)
{
    *out_touched = 0;
    if (!streams(ctx, layout) && aligned_to(in, layout->elem_size) &&
        aligned_to(out, layout->elem_size))
        return run_zero_copy(ctx, desc, layout, in, out, out_touched);
    return run_streamed(ctx, desc, layout, in, out, out_touched);
}
