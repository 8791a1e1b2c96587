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
/*
 * Default rows (work-items) per group of the work-item-per-row kernels. On a CPU device a
 * group runs on one core, its work-items back to back (PoCL vectorises across them): 64 is
 * short enough to share rows evenly among cores. On a GPU 64 fills a wavefront.
 */
#define ROWS_PER_GROUP_CPU 64
#define ROWS_PER_GROUP_GPU 64
/*
 * Default longest short row. A CPU keeps CLSOFTMAX__PRIVATE_MAX elements (1-2 KiB) in L1; a
 * GPU keeps private arrays in registers only when small, and beyond 32 elements a group per
 * row reads coalesced where a work-item per row would not.
 */
#define SHORT_ROW_GPU 32
/*
 * Default shortest row split across work-groups, and when: a row of 1M elements (4 MiB of
 * float32) or more on a CPU, 64K on a GPU, when there are fewer than SPLIT_ROWS_PER_CU rows per
 * compute unit, so that each compute unit gets a share of every row.
 */
#define SPLIT_ROW_MIN_CPU ((size_t)1 << 20)
#define SPLIT_ROW_MIN_GPU ((size_t)1 << 16)
#define SPLIT_ROWS_PER_CU 1
/* Rows (or, on other axes, inner extents) this long get twice the native vector width. */
#define WIDE_VECTOR_MIN 512
/* Groups per compute unit a split aims for (chunks = that / rows), and its cap per row. */
#define SPLIT_GROUPS_PER_CU 4
#define SPLIT_CHUNKS_CAP 1024

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

static int is_cpu(const clsoftmax__device_caps* caps)
{
    return (caps->type & CL_DEVICE_TYPE_CPU) != 0;
}

void clsoftmax__params_effective(const size_t* params, const clsoftmax__device_caps* caps,
                                 size_t elem_size, size_t* eff)
{
    static const size_t none[CLSOFTMAX_PARAM_COUNT] = {0};
    if (params == NULL)
        params = none;
    const int cpu = is_cpu(caps);
    for (size_t p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p)
        eff[p] = params[p];

    if (eff[CLSOFTMAX_PARAM_WORK_GROUP_SIZE] == 0)
        eff[CLSOFTMAX_PARAM_WORK_GROUP_SIZE] = WG_CAP;
    if (eff[CLSOFTMAX_PARAM_VECTOR_WIDTH] == 0) {
        /* A CPU's native width fills its vector registers; a GPU's lanes are work-items, and
           scalar loads from neighbouring work-items coalesce. */
        cl_uint native = elem_size == 8 ? caps->native_vw_double : caps->native_vw_float;
        size_t vw = 1;
        if (cpu && native > 0)
            vw = floor_pow2(native < 16 ? native : 16);
        eff[CLSOFTMAX_PARAM_VECTOR_WIDTH] = vw;
    }
    if (eff[CLSOFTMAX_PARAM_ROWS_PER_GROUP] == 0)
        eff[CLSOFTMAX_PARAM_ROWS_PER_GROUP] = cpu ? ROWS_PER_GROUP_CPU : ROWS_PER_GROUP_GPU;
    if (eff[CLSOFTMAX_PARAM_SHORT_ROW_LIMIT] == 0)
        eff[CLSOFTMAX_PARAM_SHORT_ROW_LIMIT] = cpu ? CLSOFTMAX__PRIVATE_MAX : SHORT_ROW_GPU;
    if (eff[CLSOFTMAX_PARAM_SHORT_ROW_LIMIT] > CLSOFTMAX__PRIVATE_MAX)
        eff[CLSOFTMAX_PARAM_SHORT_ROW_LIMIT] = CLSOFTMAX__PRIVATE_MAX;
    if (eff[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] == 0)
        eff[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] = cpu ? SPLIT_ROW_MIN_CPU : SPLIT_ROW_MIN_GPU;
}

/* A launch of `units` independent work-items in groups of at most `want`. */
static void plan_items(clsoftmax__plan* plan, size_t units, size_t want, size_t limit,
                       const clsoftmax__device_caps* caps, size_t elem)
{
    size_t local = floor_pow2(want > 0 ? want : 1);
    if (local > limit)
        local = limit;
    plan->local[0] = local;
    plan->local[1] = 1;
    /*
     * A work-item per unit, up to GROUPS_CAP groups: the kernels loop over further units in
     * rounds, and a round per work-item is what a CPU device runs fastest (ROUNDS in
     * softmax_row.cl).
     */
    size_t groups = units / local + (units % local != 0);
    plan->groups[0] = groups < 1 ? 1 : groups > GROUPS_CAP ? GROUPS_CAP : groups;
    plan->groups[1] = 1;
    (void)caps;
    /* The kernels take no __local memory, but OpenCL rejects a __local argument of 0 bytes. */
    plan->local_bytes = elem;
}

clsoftmax_status clsoftmax__plan_make(const clsoftmax__layout* layout,
                                      const clsoftmax__device_caps* caps, size_t kernel_max_wg,
                                      clsoftmax__plan* plan)
{
    return clsoftmax__plan_make_params(layout, caps, NULL, kernel_max_wg, plan);
}

clsoftmax_status clsoftmax__plan_make_params(const clsoftmax__layout* layout,
                                             const clsoftmax__device_caps* caps,
                                             const size_t* params, size_t kernel_max_wg,
                                             clsoftmax__plan* plan)
{
    if (layout == NULL || caps == NULL || plan == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    memset(plan, 0, sizeof *plan);
    size_t eff[CLSOFTMAX_PARAM_COUNT];
    /* The vector width follows the compute type: 16-bit data computes in float vectors. */
    clsoftmax__params_effective(params, caps, layout->compute_size, eff);
    const int cpu = is_cpu(caps);
    size_t vw = eff[CLSOFTMAX_PARAM_VECTOR_WIDTH];
    /*
     * Left to the device, a CPU takes two registers per vector on long rows or wide column
     * blocks: the exp calls, not memory, bound it, and two independent halves hide their
     * latency (PoCL, AVX2: 10-15% on rows of 32000 and on 1000 x 16384 axis 0). Short rows
     * keep one register: a row shorter than the vector would run the scalar tail.
     */
    const size_t contiguous = layout->inner > 1 ? layout->inner : layout->n;
    if (cpu && (params == NULL || params[CLSOFTMAX_PARAM_VECTOR_WIDTH] == 0) &&
        contiguous >= WIDE_VECTOR_MIN && vw < 16)
        vw *= 2;
    const size_t rows_per_group = eff[CLSOFTMAX_PARAM_ROWS_PER_GROUP];
    const size_t cu = caps->compute_units > 0 ? (size_t)caps->compute_units : 1;
    plan->vector_width = vw;

    /* __local staging, reductions and the split's partials hold REALs, whatever the storage
       type: compute_size, not elem_size (a float16 row staged in local memory is floats). */
    const cl_ulong elem = layout->compute_size > 0 ? (cl_ulong)layout->compute_size : 1;

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
    size_t wg_dev = floor_pow2(eff[CLSOFTMAX_PARAM_WORK_GROUP_SIZE]);
    if (caps->max_work_group_size > 0 && caps->max_work_group_size < wg_dev)
        wg_dev = floor_pow2(caps->max_work_group_size);
    /* Every kernel needs up to 2 wg REALs of reduction scratch ((max, sum) pairs). */
    while (wg_dev > 1 && 2 * wg_dev * elem > avail)
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

    if (layout->inner > 1 && cpu && rows_per_group > 1) {
        /* The kernel's three widths: STRIDED_VECS vectors, one vector, one column. */
        const size_t wide = vw * CLSOFTMAX__STRIDED_VECS;
        size_t units = layout->inner % wide == 0 ? layout->outer * (layout->inner / wide)
                       : layout->inner % vw == 0 ? layout->outer * (layout->inner / vw)
                                                 : layout->rows;
        plan->strategy = CLSOFTMAX__STRIDED_ITEM;
        /* Few wide work-items: groups small enough that every compute unit gets some. */
        size_t want = units / (cu * 4);
        plan_items(plan, units, min_size(rows_per_group, want > 0 ? want : 1), min_size(wg, dim0),
                   caps, (size_t)elem);
        return CLSOFTMAX_SUCCESS;
    }
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
        /* (max, sum) pairs: two REALs per work-item */
        plan->local_bytes = (size_t)(2 * lx * lk * elem);
        return CLSOFTMAX_SUCCESS;
    }

    const size_t n = layout->n;
    const size_t rows = layout->rows;
    /* A SPLIT_ROW_MIN that was set splits rows that long however many there are. */
    const int split_set = params != NULL && params[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] != 0;
    if (n >= eff[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] && (split_set || rows < cu * SPLIT_ROWS_PER_CU) &&
        n / vw >= 2) {
        /*
         * Few very long rows: chunks of each row on every compute unit. A CPU runs a chunk
         * as one work-item (no barrier to pay) unless the work-group size was set.
         */
        size_t local = cpu && (params == NULL || params[CLSOFTMAX_PARAM_WORK_GROUP_SIZE] == 0)
                           ? 1
                           : min_size(wg, dim0);
        size_t chunks =
            (cu * SPLIT_GROUPS_PER_CU) / rows + ((cu * SPLIT_GROUPS_PER_CU) % rows != 0);
        if (chunks < 2)
            chunks = 2;
        /* Every work-item of every chunk has at least a few vectors. */
        size_t most = n / vw / (local * 4);
        if (chunks > most)
            chunks = most > 1 ? most : 1;
        if (chunks > SPLIT_CHUNKS_CAP)
            chunks = SPLIT_CHUNKS_CAP;
        if (rows * chunks <= GROUPS_CAP) {
            plan->strategy = CLSOFTMAX__ROW_SPLIT;
            plan->local[0] = local;
            plan->local[1] = 1;
            plan->groups[0] = rows * chunks;
            plan->groups[1] = 1;
            plan->chunks = chunks;
            plan->local_bytes = (size_t)(2 * local * elem);
            plan->scratch_bytes = (size_t)(2 * rows * chunks * elem);
            return CLSOFTMAX_SUCCESS;
        }
    }
    if (rows_per_group > 1 && n <= eff[CLSOFTMAX_PARAM_SHORT_ROW_LIMIT]) {
        plan->strategy = CLSOFTMAX__ROW_PRIVATE;
        plan_items(plan, rows, rows_per_group, min_size(wg, dim0), caps, (size_t)elem);
        return CLSOFTMAX_SUCCESS;
    }
    if (rows_per_group > 1 && cpu) {
        plan->strategy = CLSOFTMAX__ROW_ITEM;
        plan_items(plan, rows, rows_per_group, min_size(wg, dim0), caps, (size_t)elem);
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
        /* (max, sum) pairs: two REALs per work-item */
        plan->strategy = CLSOFTMAX__ROW_MULTIPASS;
        plan->local_bytes = (size_t)((cl_ulong)local * 2 * elem);
    }
    return CLSOFTMAX_SUCCESS;
}
