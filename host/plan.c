/* plan.c - strategy selection: kernel and launch shape, a pure function of shape and device. */
#include "internal.h"

#include <string.h>

/*
 * Widest work-group used. 256 work-items fill a GPU compute unit's lanes (4 warps / wavefronts)
 * and keep the reduction trees at 8 levels; wider groups only lengthen the trees and raise
 * the scratch a group needs. Must be a power of two.
 */
#define WG_CAP 256
/*
 * Groups launched per compute unit. A GPU keeps a handful of groups resident per compute
 * unit; 64 gives several waves of them, enough to hide memory latency and even out rows
 * that finish at different times, while keeping the launch bounded (the kernels loop over
 * the remaining rows or columns).
 */
#define GROUPS_PER_CU 64
/*
 * Hard cap on groups in dimension 0, whatever the compute-unit count says: 65535 is the
 * smallest grid limit of the drivers in the field (CUDA's historical grid.y/z, some
 * embedded GPUs), and a bound keeps groups * local far from SIZE_MAX on 32-bit hosts.
 */
#define GROUPS_CAP 65535
/*
 * Dimension 0 of the strided kernel spans at most 64 neighbouring columns: one AMD wavefront
 * or two NVIDIA warps of coalesced loads, which leaves at least 4 work-items per column to
 * split a long axis in a 256-wide group.
 */
#define STRIDED_LX_CAP 64
/*
 * Local memory left to the implementation: some drivers reserve a few hundred bytes of a
 * group's local memory for themselves (kernel arguments, printf, barriers) and do not
 * subtract it from CL_DEVICE_LOCAL_MEM_SIZE. 1 KiB covers those seen; PoCL reserves none.
 */
#define LOCAL_MARGIN 1024

/* Largest power of two <= v, for v >= 1. */
static size_t floor_pow2(size_t v)
{
    size_t p = 1;
    while (p <= v / 2)
        p *= 2;
    return p;
}

/* Smallest power of two >= v, but at most cap (a power of two). */
static size_t ceil_pow2_capped(size_t v, size_t cap)
{
    size_t p = 1;
    while (p < v && p < cap)
        p *= 2;
    return p;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Groups for `units` independent rows or columns: bounded, at least 1. */
static size_t group_count(size_t units, const clsoftmax__device_caps* caps)
{
    size_t cu = caps->compute_units > 0 ? (size_t)caps->compute_units : 1;
    size_t bound = cu > GROUPS_CAP / GROUPS_PER_CU ? GROUPS_CAP : cu * GROUPS_PER_CU;
    size_t g = min_size(units, bound);
    return g > 0 ? g : 1;
}

clsoftmax_status clsoftmax__plan_make(const clsoftmax__layout* layout,
                                      const clsoftmax__device_caps* caps, size_t kernel_max_wg,
                                      clsoftmax__plan* plan)
{
    if (layout == NULL || caps == NULL || plan == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    memset(plan, 0, sizeof *plan);

    const cl_ulong elem = layout->elem_size > 0 ? (cl_ulong)layout->elem_size : 1;

    /*
     * The kernels index in ulong: (o * n + k) * inner + i is below count, and a loop index
     * passes count by at most one work-group width before it stops. Half the ulong range is
     * a bound those sums never reach (size_t caps bytes well below it on every host we know).
     */
    if ((cl_ulong)layout->count > (CL_ULONG_MAX >> 1))
        return CLSOFTMAX_SIZE_OVERFLOW;
    /* A device with 32-bit pointers cannot address a tensor of 4 GiB or more. */
    if (caps->address_bits > 0 && caps->address_bits < 64 &&
        (cl_ulong)layout->bytes > ((cl_ulong)1 << caps->address_bits) - 1)
        return CLSOFTMAX_SIZE_OVERFLOW;

    /* Local memory we allow ourselves: the margin, or a quarter of a tiny local memory. */
    cl_ulong margin =
        caps->local_mem_size / 4 < LOCAL_MARGIN ? caps->local_mem_size / 4 : LOCAL_MARGIN;
    cl_ulong avail = caps->local_mem_size - margin;

    /* The device's width decides the strategy; the kernel's only narrows the launch. */
    size_t wg_dev = WG_CAP;
    if (caps->max_work_group_size > 0 && caps->max_work_group_size < wg_dev)
        wg_dev = floor_pow2(caps->max_work_group_size);
    /* Every kernel needs wg REALs of reduction scratch. */
    while (wg_dev > 1 && wg_dev * elem > avail)
        wg_dev /= 2;
    size_t wg = wg_dev;
    if (kernel_max_wg > 0 && kernel_max_wg < wg)
        wg = floor_pow2(kernel_max_wg);

    /* Some devices cap a work-group's extent per dimension below its total size. */
    const size_t dim0 = caps->max_work_item_sizes[0] > 0
                            ? min_size(wg, floor_pow2(caps->max_work_item_sizes[0]))
                            : wg;
    const size_t dim1 = caps->max_work_item_sizes[1] > 0
                            ? min_size(wg, floor_pow2(caps->max_work_item_sizes[1]))
                            : wg;

    if (layout->inner > 1) {
        size_t lx = min_size(ceil_pow2_capped(layout->inner, STRIDED_LX_CAP), dim0);
        size_t lk = ceil_pow2_capped(layout->n, min_size(wg / lx, dim1));
        /* A short axis hands the unused width back to the columns. */
        lx = ceil_pow2_capped(layout->inner, min_size(wg / lk, dim0));

        size_t cols = layout->rows;
        plan->strategy = CLSOFTMAX__STRIDED;
        plan->local[0] = lx;
        plan->local[1] = lk;
        plan->groups[0] = group_count(cols / lx + (cols % lx != 0), caps);
        plan->groups[1] = 1;
        plan->local_bytes = (size_t)(lx * lk * elem);
        return CLSOFTMAX_SUCCESS;
    }

    /*
     * A 256-wide group on a row of 3 would leave 253 work-items idle; the next power of two
     * at or above n is the widest that has work for every work-item.
     */
    size_t local = ceil_pow2_capped(layout->n, dim0);
    plan->local[0] = local;
    plan->local[1] = 1;
    plan->groups[0] = group_count(layout->rows, caps);
    plan->groups[1] = 1;

    /* Staging is decided with the device's width so it does not flip with the kernel's. */
    cl_ulong staged = ((cl_ulong)layout->n + (cl_ulong)wg_dev) * elem;
    if ((cl_ulong)layout->n <= avail / elem && staged <= avail) {
        plan->strategy = CLSOFTMAX__ROW_LOCAL;
        plan->local_bytes = (size_t)(((cl_ulong)layout->n + (cl_ulong)local) * elem);
    } else {
        plan->strategy = CLSOFTMAX__ROW_MULTIPASS;
        plan->local_bytes = (size_t)((cl_ulong)local * elem);
    }
    return CLSOFTMAX_SUCCESS;
}
