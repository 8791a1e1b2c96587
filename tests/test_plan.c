/* test_plan.c - suite "plan": strategy selection on synthetic devices, no OpenCL needed. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "internal.h"
#include "test_suites.h"
#include "test_util.h"

/* A PoCL-like CPU device: what CI runs on. */
static clsoftmax__device_caps caps_pocl(void)
{
    clsoftmax__device_caps c;
    memset(&c, 0, sizeof c);
    c.type = CL_DEVICE_TYPE_CPU;
    c.compute_units = 2;
    c.max_work_group_size = 4096;
    c.local_mem_size = 512 * 1024;
    c.max_mem_alloc_size = (cl_ulong)4 << 30;
    c.address_bits = 64;
    c.has_fp64 = 1;
    c.host_unified_memory = 1;
    c.native_vw_float = 8; /* AVX2 */
    c.native_vw_double = 4;
    return c;
}

/* A discrete-GPU-like device. */
static clsoftmax__device_caps caps_gpu(void)
{
    clsoftmax__device_caps c;
    memset(&c, 0, sizeof c);
    c.type = CL_DEVICE_TYPE_GPU;
    c.compute_units = 80;
    c.max_work_group_size = 1024;
    c.max_work_item_sizes[0] = 1024;
    c.max_work_item_sizes[1] = 1024;
    c.max_work_item_sizes[2] = 64;
    c.local_mem_size = 48 * 1024;
    c.max_mem_alloc_size = (cl_ulong)8 << 30;
    c.address_bits = 64;
    c.has_fp64 = 1;
    return c;
}

/* A tiny embedded device: little local memory, narrow groups, 32-bit pointers. */
static clsoftmax__device_caps caps_tiny(void)
{
    clsoftmax__device_caps c;
    memset(&c, 0, sizeof c);
    c.type = CL_DEVICE_TYPE_GPU;
    c.compute_units = 1;
    c.max_work_group_size = 64;
    c.max_work_item_sizes[0] = 64;
    c.max_work_item_sizes[1] = 64;
    c.max_work_item_sizes[2] = 64;
    c.local_mem_size = 16 * 1024;
    c.max_mem_alloc_size = (cl_ulong)256 << 20;
    c.address_bits = 32;
    c.has_fp64 = 0;
    return c;
}

/* A device whose per-dimension limits are far below its group size (some embedded GPUs). */
static clsoftmax__device_caps caps_narrow_dims(void)
{
    clsoftmax__device_caps c = caps_gpu();
    c.max_work_item_sizes[0] = 48; /* not a power of two either */
    c.max_work_item_sizes[1] = 4;
    c.max_work_item_sizes[2] = 1;
    return c;
}

static int is_pow2(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

static size_t elem_of(clsoftmax_dtype dtype) { return dtype == CLSOFTMAX_FLOAT64 ? 8 : 4; }

static clsoftmax__layout make_layout(clsoftmax_dtype dtype, size_t outer, size_t n, size_t inner)
{
    const size_t dims[3] = {outer, n, inner};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, 3, dims, 1);
    clsoftmax__layout layout;
    memset(&layout, 0, sizeof layout);
    clsoftmax_status st = clsoftmax__validate_desc(&desc, &layout, NULL, 0);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "layout [%zu, %zu, %zu] invalid: %s", outer, n, inner,
               clsoftmax_status_name(st));
    return layout;
}

static size_t ceil_div(size_t a, size_t b) { return a / b + (a % b != 0); }

/* The parameters check_plan() and row_local_limit() plan with (NULL: the device's choices). */
static const size_t* g_params = NULL;

/* Parameters that keep one work-group per row and never split: the group-per-row strategies. */
static const size_t* group_per_row_params(void)
{
    static size_t p[CLSOFTMAX_PARAM_COUNT];
    memset(p, 0, sizeof p);
    p[CLSOFTMAX_PARAM_ROWS_PER_GROUP] = 1;
    p[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] = SIZE_MAX;
    return p;
}

static int is_group_strategy(clsoftmax__strategy s)
{
    return s == CLSOFTMAX__ROW_LOCAL || s == CLSOFTMAX__ROW_MULTIPASS || s == CLSOFTMAX__STRIDED ||
           s == CLSOFTMAX__ROW_SPLIT;
}

/*
 * Plans [outer, n, inner] and checks what every plan must satisfy for the
 * kernels to run: a strategy that fits the shape, power-of-two local sizes
 * within the device's (and kernel's) limits, local memory within the device's,
 * at least one group and never more groups than there is work.
 */
static clsoftmax__plan check_plan(const clsoftmax__device_caps* caps, clsoftmax_dtype dtype,
                                  size_t outer, size_t n, size_t inner, size_t kernel_max_wg)
{
    clsoftmax__layout layout = make_layout(dtype, outer, n, inner);
    clsoftmax__plan plan;
    memset(&plan, 0xee, sizeof plan);
    clsoftmax_status st =
        clsoftmax__plan_make_params(&layout, caps, g_params, kernel_max_wg, &plan);
    if (caps->address_bits < 64 && (cl_ulong)layout.bytes >= ((cl_ulong)1 << caps->address_bits)) {
        TEST_CHECK(st == CLSOFTMAX_SIZE_OVERFLOW,
                   "plan [%zu, %zu, %zu] dtype %d: %zu bytes on a %u-bit device gave %s", outer, n,
                   inner, (int)dtype, layout.bytes, caps->address_bits, clsoftmax_status_name(st));
        return plan;
    }
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "plan [%zu, %zu, %zu] dtype %d: %s", outer, n, inner,
               (int)dtype, clsoftmax_status_name(st));
    if (st != CLSOFTMAX_SUCCESS)
        return plan;

    const size_t elem = layout.elem_size;
    const size_t wg = plan.local[0] * plan.local[1];
    const size_t max_wg = kernel_max_wg > 0 && kernel_max_wg < caps->max_work_group_size
                              ? kernel_max_wg
                              : caps->max_work_group_size;
    if (inner > 1) {
        TEST_CHECK(plan.strategy == CLSOFTMAX__STRIDED || plan.strategy == CLSOFTMAX__STRIDED_ITEM,
                   "[%zu, %zu, %zu]: strategy %d, not a strided one", outer, n, inner,
                   (int)plan.strategy);
    } else {
        TEST_CHECK(
            plan.strategy == CLSOFTMAX__ROW_LOCAL || plan.strategy == CLSOFTMAX__ROW_MULTIPASS ||
                plan.strategy == CLSOFTMAX__ROW_PRIVATE || plan.strategy == CLSOFTMAX__ROW_ITEM ||
                plan.strategy == CLSOFTMAX__ROW_SPLIT,
            "[%zu, %zu, 1]: strategy %d is not a row strategy", outer, n, (int)plan.strategy);
        TEST_CHECK(plan.local[1] == 1, "row kernel with local[1] = %zu", plan.local[1]);
    }
    TEST_CHECK(is_pow2(plan.vector_width) && plan.vector_width <= 16,
               "[%zu, %zu, %zu]: vector width %zu", outer, n, inner, plan.vector_width);
    if (plan.strategy == CLSOFTMAX__ROW_PRIVATE)
        TEST_CHECK(n <= CLSOFTMAX__PRIVATE_MAX, "ROW_PRIVATE for a row of %zu > %d elements", n,
                   CLSOFTMAX__PRIVATE_MAX);
    if (plan.strategy == CLSOFTMAX__ROW_SPLIT) {
        TEST_CHECK(plan.chunks >= 1 && plan.groups[0] == layout.rows * plan.chunks,
                   "[%zu, %zu]: split into %zu chunks on %zu groups", outer, n, plan.chunks,
                   plan.groups[0]);
        TEST_CHECK(plan.chunks <= n / plan.vector_width, "[%zu, %zu]: %zu chunks of %zu-vectors",
                   outer, n, plan.chunks, plan.vector_width);
        TEST_CHECK(plan.scratch_bytes == 2 * layout.rows * plan.chunks * elem_of(dtype),
                   "[%zu, %zu]: scratch of %zu bytes", outer, n, plan.scratch_bytes);
    }
    TEST_CHECK(is_pow2(plan.local[0]) && is_pow2(plan.local[1]),
               "[%zu, %zu, %zu]: local sizes %zu x %zu not powers of two", outer, n, inner,
               plan.local[0], plan.local[1]);
    for (int d = 0; d < 2; ++d)
        TEST_CHECK(caps->max_work_item_sizes[d] == 0 ||
                       plan.local[d] <= caps->max_work_item_sizes[d],
                   "[%zu, %zu, %zu]: local[%d] = %zu exceeds CL_DEVICE_MAX_WORK_ITEM_SIZES %zu",
                   outer, n, inner, d, plan.local[d], caps->max_work_item_sizes[d]);
    TEST_CHECK(wg >= 1 && wg <= max_wg, "[%zu, %zu, %zu]: work-group %zu x %zu exceeds %zu", outer,
               n, inner, plan.local[0], plan.local[1], max_wg);
    TEST_CHECK(plan.local_bytes <= caps->local_mem_size,
               "[%zu, %zu, %zu] dtype %d: local_bytes %zu exceed local memory %llu", outer, n,
               inner, (int)dtype, plan.local_bytes, (unsigned long long)caps->local_mem_size);
    /* Every work-item of a group strategy needs a slot of reduction scratch. */
    TEST_CHECK(!is_group_strategy(plan.strategy) || plan.local_bytes >= wg * elem,
               "[%zu, %zu, %zu]: local_bytes %zu below the %zu x %zu reduction scratch", outer, n,
               inner, plan.local_bytes, wg, elem);
    if (plan.strategy == CLSOFTMAX__ROW_LOCAL)
        TEST_CHECK(plan.local_bytes >= n * elem,
                   "ROW_LOCAL row of %zu elements staged in only %zu bytes", n, plan.local_bytes);
    TEST_CHECK(plan.groups[0] >= 1 && plan.groups[1] >= 1, "[%zu, %zu, %zu]: groups %zu x %zu",
               outer, n, inner, plan.groups[0], plan.groups[1]);
    /* No group without work: rows for row kernels, column blocks for the strided one, blocks
       of work-items for the work-item kernels, chunks for a split. */
    size_t units = inner > 1 ? ceil_div(layout.rows, plan.local[0]) : layout.rows;
    if (plan.strategy == CLSOFTMAX__ROW_PRIVATE || plan.strategy == CLSOFTMAX__ROW_ITEM)
        units = ceil_div(layout.rows, plan.local[0]);
    if (plan.strategy == CLSOFTMAX__ROW_SPLIT)
        units = layout.rows * plan.chunks;
    TEST_CHECK(plan.groups[0] * plan.groups[1] <= units,
               "[%zu, %zu, %zu]: %zu x %zu groups for %zu units of work", outer, n, inner,
               plan.groups[0], plan.groups[1], units);
    /* Bounded launches: the kernels loop over the rest, so a billion rows is not a billion groups.
     */
    TEST_CHECK(plan.groups[0] * plan.groups[1] <= ((size_t)1 << 20),
               "[%zu, %zu, %zu]: unbounded launch of %zu x %zu groups", outer, n, inner,
               plan.groups[0], plan.groups[1]);
    return plan;
}

static void check_shapes_on(const clsoftmax__device_caps* caps)
{
    static const size_t shapes[][3] = {
        {1, 1, 1},        {5, 1, 1},     {1, 2, 1},          {7, 3, 1},          {1, 31, 1},
        {3, 32, 1},       {3, 33, 1},    {2, 255, 1},        {2, 256, 1},        {2, 257, 1},
        {16384, 1000, 1}, {1, 4097, 1},  {1, 65537, 1},      {1, 200000, 1},     {2, 3, 4},
        {1, 2, 60},       {24, 5, 1},    {6, 4, 5},          {1, 1000, 3},       {4, 33, 6},
        {1, 1, 7},        {1, 65537, 2}, {1000000000, 2, 1}, {1, 2, 1000000000}, {3, 1, 100000},
        {100000, 7, 100},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
        for (int dt = 0; dt < 2; ++dt) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            check_plan(caps, dtype, shapes[s][0], shapes[s][1], shapes[s][2], 0);
            /* A kernel narrower than the device (registers, PoCL's limits). */
            check_plan(caps, dtype, shapes[s][0], shapes[s][1], shapes[s][2], 100);
            check_plan(caps, dtype, shapes[s][0], shapes[s][1], shapes[s][2], 1);
        }
    }
}

static void test_invariants_pocl(void)
{
    clsoftmax__device_caps caps = caps_pocl();
    check_shapes_on(&caps);
}

static void test_invariants_gpu(void)
{
    clsoftmax__device_caps caps = caps_gpu();
    check_shapes_on(&caps);
}

static void test_invariants_tiny(void)
{
    clsoftmax__device_caps caps = caps_tiny();
    check_shapes_on(&caps);
}

static void test_invariants_narrow_dims(void)
{
    clsoftmax__device_caps caps = caps_narrow_dims();
    check_shapes_on(&caps);
    /* The caps bite: a long row would otherwise take 256 work-items. */
    clsoftmax__plan p = check_plan(&caps, CLSOFTMAX_FLOAT32, 4, 1000, 1, 0);
    CU_ASSERT_EQUAL(p.local[0], 32);
    p = check_plan(&caps, CLSOFTMAX_FLOAT32, 1, 100000, 2, 0);
    CU_ASSERT(p.local[1] <= 4);
}

/* The longest single row (inner 1) planned as ROW_LOCAL, found by bisection. */
static size_t row_local_limit(const clsoftmax__device_caps* caps, clsoftmax_dtype dtype)
{
    size_t lo = 1;               /* ROW_LOCAL (checked by the caller) */
    size_t hi = (size_t)1 << 24; /* MULTIPASS on every device here, addressable by all */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        clsoftmax__layout layout = make_layout(dtype, 1, mid, 1);
        clsoftmax__plan plan;
        if (clsoftmax__plan_make_params(&layout, caps, g_params, 0, &plan) != CLSOFTMAX_SUCCESS)
            return 0;
        if (plan.strategy == CLSOFTMAX__ROW_LOCAL)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static void check_row_boundary(const clsoftmax__device_caps* caps, const char* name)
{
    size_t limit[2];
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        const size_t elem = dt ? 8 : 4;
        clsoftmax__plan p = check_plan(caps, dtype, 1, 1, 1, 0);
        CU_ASSERT_EQUAL(p.strategy, CLSOFTMAX__ROW_LOCAL);
        p = check_plan(caps, dtype, 1, (size_t)1 << 24, 1, 0);
        CU_ASSERT_EQUAL(p.strategy, CLSOFTMAX__ROW_MULTIPASS);

        size_t n = row_local_limit(caps, dtype);
        limit[dt] = n;
        /* The staged row fits local memory, and uses a real share of it (at least half). */
        TEST_CHECK(n * elem <= caps->local_mem_size,
                   "%s dtype %d: ROW_LOCAL up to %zu elements, over %llu bytes of local memory",
                   name, (int)dtype, n, (unsigned long long)caps->local_mem_size);
        TEST_CHECK(n * elem >= caps->local_mem_size / 2,
                   "%s dtype %d: ROW_LOCAL only up to %zu elements of %llu bytes of local memory",
                   name, (int)dtype, n, (unsigned long long)caps->local_mem_size);
        /* Monotone around the limit, and for several rows as for one. */
        const size_t below[] = {n / 3, n / 2, n - 1, n};
        for (size_t i = 0; i < 4; ++i) {
            if (below[i] == 0)
                continue;
            p = check_plan(caps, dtype, 3, below[i], 1, 0);
            TEST_CHECK(p.strategy == CLSOFTMAX__ROW_LOCAL, "%s: n %zu (<= %zu) not ROW_LOCAL", name,
                       below[i], n);
        }
        const size_t above[] = {n + 1, n + 2, 2 * n, 10 * n + 7};
        for (size_t i = 0; i < 4; ++i) {
            p = check_plan(caps, dtype, 3, above[i], 1, 0);
            TEST_CHECK(p.strategy == CLSOFTMAX__ROW_MULTIPASS,
                       "%s: n %zu (> %zu) not ROW_MULTIPASS", name, above[i], n);
        }
        /* The strategy belongs to the shape and device: a narrower kernel must not flip it. */
        for (size_t k = 0; k < 2; ++k) {
            size_t len = k ? n + 1 : n;
            clsoftmax__plan wide = check_plan(caps, dtype, 2, len, 1, 0);
            clsoftmax__plan narrow = check_plan(caps, dtype, 2, len, 1, 32);
            TEST_CHECK(wide.strategy == narrow.strategy,
                       "%s: n %zu planned %d with the device's width, %d with a kernel of 32", name,
                       len, (int)wide.strategy, (int)narrow.strategy);
        }
    }
    /* float64 rows take twice the bytes, so they switch at about half the length. */
    TEST_CHECK(limit[1] <= limit[0] / 2 + 1 && limit[1] >= limit[0] / 2 - limit[0] / 16,
               "%s: ROW_LOCAL limit float32 %zu, float64 %zu (expected about half)", name, limit[0],
               limit[1]);
}

static void test_row_boundary(void)
{
    /* The boundary between the group-per-row strategies, as chosen when rows get a group. */
    g_params = group_per_row_params();
    clsoftmax__device_caps pocl = caps_pocl();
    clsoftmax__device_caps gpu = caps_gpu();
    clsoftmax__device_caps tiny = caps_tiny();
    check_row_boundary(&pocl, "pocl");
    check_row_boundary(&gpu, "gpu");
    check_row_boundary(&tiny, "tiny");
    /* More local memory stages longer rows. */
    size_t lp = row_local_limit(&pocl, CLSOFTMAX_FLOAT32);
    size_t lg = row_local_limit(&gpu, CLSOFTMAX_FLOAT32);
    size_t lt = row_local_limit(&tiny, CLSOFTMAX_FLOAT32);
    TEST_CHECK(lp > lg && lg > lt, "ROW_LOCAL limits pocl %zu, gpu %zu, tiny %zu not ordered", lp,
               lg, lt);
    /* The brief's long row (200000 float32 = 800000 bytes > 512 KiB) is multipass on PoCL. */
    clsoftmax__plan p = check_plan(&pocl, CLSOFTMAX_FLOAT32, 1, 200000, 1, 0);
    CU_ASSERT_EQUAL(p.strategy, CLSOFTMAX__ROW_MULTIPASS);
    /* The common 1000-wide row is staged everywhere, in both precisions. */
    p = check_plan(&tiny, CLSOFTMAX_FLOAT64, 16, 1000, 1, 0);
    CU_ASSERT_EQUAL(p.strategy, CLSOFTMAX__ROW_LOCAL);
    g_params = NULL;
}

static void test_strided(void)
{
    clsoftmax__device_caps gpu = caps_gpu();
    /* On a CPU: a work-item per vector of columns, unless rows get a group of their own. */
    clsoftmax__device_caps pocl = caps_pocl();
    clsoftmax__plan q = check_plan(&pocl, CLSOFTMAX_FLOAT32, 1, 1000, 16384, 0);
    CU_ASSERT_EQUAL(q.strategy, CLSOFTMAX__STRIDED_ITEM);
    g_params = group_per_row_params();
    q = check_plan(&pocl, CLSOFTMAX_FLOAT32, 1, 1000, 16384, 0);
    CU_ASSERT_EQUAL(q.strategy, CLSOFTMAX__STRIDED);
    g_params = NULL;
    clsoftmax__plan p = check_plan(&gpu, CLSOFTMAX_FLOAT32, 4, 33, 6, 0);
    CU_ASSERT_EQUAL(p.strategy, CLSOFTMAX__STRIDED);
    /* Any inner > 1 is strided, however long the axis or few the columns. */
    p = check_plan(&gpu, CLSOFTMAX_FLOAT64, 1, 1000000, 2, 0);
    CU_ASSERT_EQUAL(p.strategy, CLSOFTMAX__STRIDED);
    p = check_plan(&gpu, CLSOFTMAX_FLOAT32, 1, 1, 2, 0);
    CU_ASSERT_EQUAL(p.strategy, CLSOFTMAX__STRIDED);
    /* Wide tensors get more than one group on a many-CU device. */
    p = check_plan(&gpu, CLSOFTMAX_FLOAT32, 1, 16, 100000, 0);
    CU_ASSERT(p.groups[0] * p.groups[1] > 1);
    p = check_plan(&gpu, CLSOFTMAX_FLOAT32, 100000, 16, 1, 0);
    CU_ASSERT(p.groups[0] * p.groups[1] > 1);
}

static void test_address_bits(void)
{
    clsoftmax__device_caps tiny = caps_tiny();
    /* 2^30 float32 = 4 GiB: one byte past what 32-bit pointers reach. */
    clsoftmax__layout big = make_layout(CLSOFTMAX_FLOAT32, (size_t)1 << 20, 1024, 1);
    clsoftmax__plan plan;
    TEST_STATUS(clsoftmax__plan_make(&big, &tiny, 0, &plan), CLSOFTMAX_SIZE_OVERFLOW);
    clsoftmax__layout big_strided = make_layout(CLSOFTMAX_FLOAT64, 1024, 1024, 1024);
    TEST_STATUS(clsoftmax__plan_make(&big_strided, &tiny, 0, &plan), CLSOFTMAX_SIZE_OVERFLOW);
    /* Just under 4 GiB is addressable. */
    clsoftmax__layout fits = make_layout(CLSOFTMAX_FLOAT32, ((size_t)1 << 20) - 1, 1024, 1);
    TEST_STATUS(clsoftmax__plan_make(&fits, &tiny, 0, &plan), CLSOFTMAX_SUCCESS);
    /* The same 4 GiB tensor is fine on 64-bit devices. */
    clsoftmax__device_caps gpu = caps_gpu();
    TEST_STATUS(clsoftmax__plan_make(&big, &gpu, 0, &plan), CLSOFTMAX_SUCCESS);
    TEST_STATUS(clsoftmax__plan_make(&big_strided, &gpu, 0, &plan), CLSOFTMAX_SUCCESS);
}

static void test_pure(void)
{
    /* Same inputs, same plan: the plan may be cached or recomputed freely. */
    clsoftmax__device_caps caps = caps_pocl();
    clsoftmax__layout layout = make_layout(CLSOFTMAX_FLOAT32, 7, 1000, 3);
    clsoftmax__plan a, b;
    memset(&a, 0x11, sizeof a);
    memset(&b, 0x22, sizeof b);
    TEST_STATUS(clsoftmax__plan_make(&layout, &caps, 0, &a), CLSOFTMAX_SUCCESS);
    TEST_STATUS(clsoftmax__plan_make(&layout, &caps, 0, &b), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(a.strategy, b.strategy);
    CU_ASSERT_EQUAL(a.local[0], b.local[0]);
    CU_ASSERT_EQUAL(a.local[1], b.local[1]);
    CU_ASSERT_EQUAL(a.groups[0], b.groups[0]);
    CU_ASSERT_EQUAL(a.groups[1], b.groups[1]);
    CU_ASSERT_EQUAL(a.local_bytes, b.local_bytes);
}

/* Plans [outer, n, inner] float32 with params and returns the strategy. */
static clsoftmax__strategy strategy_of(const clsoftmax__device_caps* caps, const size_t* params,
                                       size_t outer, size_t n, size_t inner)
{
    const size_t* saved = g_params;
    g_params = params;
    clsoftmax__plan p = check_plan(caps, CLSOFTMAX_FLOAT32, outer, n, inner, 0);
    g_params = saved;
    return p.strategy;
}

static void test_shapes_pocl(void)
{
    /* The shapes on a 2-core PoCL device, with the device's choices. */
    clsoftmax__device_caps c = caps_pocl();
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 1000000, 8, 1), CLSOFTMAX__ROW_PRIVATE);
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 65536, 128, 1), CLSOFTMAX__ROW_PRIVATE);
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 8192, 1024, 1), CLSOFTMAX__ROW_ITEM);
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 16384, 1000, 1), CLSOFTMAX__ROW_ITEM);
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 256, 32000, 1), CLSOFTMAX__ROW_ITEM);
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 32, 262144, 1), CLSOFTMAX__ROW_ITEM);
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 1, 1000, 16384), CLSOFTMAX__STRIDED_ITEM);
    /* A single very long row is split across the cores. */
    CU_ASSERT_EQUAL(strategy_of(&c, NULL, 1, 4194304, 1), CLSOFTMAX__ROW_SPLIT);
    /* The CPU's native width, per dtype. */
    clsoftmax__layout l32 = make_layout(CLSOFTMAX_FLOAT32, 4, 100, 1);
    clsoftmax__layout l64 = make_layout(CLSOFTMAX_FLOAT64, 4, 100, 1);
    clsoftmax__plan p;
    TEST_STATUS(clsoftmax__plan_make_params(&l32, &c, NULL, 0, &p), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(p.vector_width, 8);
    TEST_STATUS(clsoftmax__plan_make_params(&l64, &c, NULL, 0, &p), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(p.vector_width, 4);
    /* Long rows and wide column blocks: two registers per vector, unless the width was set. */
    clsoftmax__layout long32 = make_layout(CLSOFTMAX_FLOAT32, 4, 32000, 1);
    TEST_STATUS(clsoftmax__plan_make_params(&long32, &c, NULL, 0, &p), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(p.vector_width, 16);
    clsoftmax__layout cols64 = make_layout(CLSOFTMAX_FLOAT64, 1, 1000, 16384);
    TEST_STATUS(clsoftmax__plan_make_params(&cols64, &c, NULL, 0, &p), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(p.vector_width, 8);
    size_t set[CLSOFTMAX_PARAM_COUNT] = {0};
    set[CLSOFTMAX_PARAM_VECTOR_WIDTH] = 8;
    TEST_STATUS(clsoftmax__plan_make_params(&long32, &c, set, 0, &p), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(p.vector_width, 8);
}

static void test_shapes_gpu(void)
{
    /* A GPU: short rows a work-item each, others a group per row, scalar (coalesced) loads. */
    clsoftmax__device_caps g = caps_gpu();
    CU_ASSERT_EQUAL(strategy_of(&g, NULL, 1000000, 8, 1), CLSOFTMAX__ROW_PRIVATE);
    CU_ASSERT_EQUAL(strategy_of(&g, NULL, 65536, 128, 1), CLSOFTMAX__ROW_LOCAL);
    CU_ASSERT_EQUAL(strategy_of(&g, NULL, 16384, 1000, 1), CLSOFTMAX__ROW_LOCAL);
    CU_ASSERT_EQUAL(strategy_of(&g, NULL, 256, 32000, 1), CLSOFTMAX__ROW_MULTIPASS);
    CU_ASSERT_EQUAL(strategy_of(&g, NULL, 4, 4194304, 1), CLSOFTMAX__ROW_SPLIT);
    CU_ASSERT_EQUAL(strategy_of(&g, NULL, 1000, 16384, 2), CLSOFTMAX__STRIDED);
    clsoftmax__layout l = make_layout(CLSOFTMAX_FLOAT32, 4, 100, 1);
    clsoftmax__plan p;
    TEST_STATUS(clsoftmax__plan_make_params(&l, &g, NULL, 0, &p), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(p.vector_width, 1);
}

static void test_params_steer(void)
{
    clsoftmax__device_caps c = caps_pocl();
    size_t p[CLSOFTMAX_PARAM_COUNT] = {0};
    /* SHORT_ROW_LIMIT moves the private/item boundary. */
    p[CLSOFTMAX_PARAM_SHORT_ROW_LIMIT] = 16;
    CU_ASSERT_EQUAL(strategy_of(&c, p, 100, 16, 1), CLSOFTMAX__ROW_PRIVATE);
    CU_ASSERT_EQUAL(strategy_of(&c, p, 100, 17, 1), CLSOFTMAX__ROW_ITEM);
    /* ROWS_PER_GROUP 1: a work-group per row, staged or two-pass. */
    memset(p, 0, sizeof p);
    p[CLSOFTMAX_PARAM_ROWS_PER_GROUP] = 1;
    CU_ASSERT_EQUAL(strategy_of(&c, p, 100, 8, 1), CLSOFTMAX__ROW_LOCAL);
    CU_ASSERT_EQUAL(strategy_of(&c, p, 3, 200000, 1), CLSOFTMAX__ROW_MULTIPASS);
    CU_ASSERT_EQUAL(strategy_of(&c, p, 3, 20, 5), CLSOFTMAX__STRIDED);
    /* SPLIT_ROW_MIN: split a row of 5000 when there are fewer rows than compute units. */
    memset(p, 0, sizeof p);
    p[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] = 5000;
    CU_ASSERT_EQUAL(strategy_of(&c, p, 1, 5000, 1), CLSOFTMAX__ROW_SPLIT);
    CU_ASSERT_EQUAL(strategy_of(&c, p, 1, 4999, 1), CLSOFTMAX__ROW_ITEM);
    /* Set, it splits however many rows there are (while the groups stay bounded). */
    CU_ASSERT_EQUAL(strategy_of(&c, p, 4, 5000, 1), CLSOFTMAX__ROW_SPLIT);
    CU_ASSERT_EQUAL(strategy_of(&c, p, 100000, 5000, 1), CLSOFTMAX__ROW_ITEM);
    /* Left to the device, only fewer rows than compute units are split. */
    p[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] = 0;
    CU_ASSERT_EQUAL(strategy_of(&c, p, 2, 4194304, 1), CLSOFTMAX__ROW_ITEM);
    CU_ASSERT_EQUAL(strategy_of(&c, p, 1, 4194304, 1), CLSOFTMAX__ROW_SPLIT);
    /* VECTOR_WIDTH and WORK_GROUP_SIZE reach the plan. */
    memset(p, 0, sizeof p);
    p[CLSOFTMAX_PARAM_VECTOR_WIDTH] = 2;
    p[CLSOFTMAX_PARAM_WORK_GROUP_SIZE] = 32;
    p[CLSOFTMAX_PARAM_ROWS_PER_GROUP] = 1;
    g_params = p;
    clsoftmax__plan q = check_plan(&c, CLSOFTMAX_FLOAT32, 100, 1000, 1, 0);
    g_params = NULL;
    CU_ASSERT_EQUAL(q.vector_width, 2);
    CU_ASSERT_EQUAL(q.local[0], 32);
    /* A split with the work-group size set uses it; without, a CPU runs chunks as one item. */
    p[CLSOFTMAX_PARAM_SPLIT_ROW_MIN] = 100000;
    g_params = p;
    q = check_plan(&c, CLSOFTMAX_FLOAT32, 1, 1000000, 1, 0);
    CU_ASSERT_EQUAL(q.strategy, CLSOFTMAX__ROW_SPLIT);
    CU_ASSERT_EQUAL(q.local[0], 32);
    p[CLSOFTMAX_PARAM_WORK_GROUP_SIZE] = 0;
    q = check_plan(&c, CLSOFTMAX_FLOAT32, 1, 1000000, 1, 0);
    CU_ASSERT_EQUAL(q.local[0], 1);
    CU_ASSERT(q.chunks >= 2);
    g_params = NULL;
}

void test_register_plan(void)
{
    CU_pSuite suite = CU_add_suite("plan", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "invariants on a PoCL-like CPU", test_invariants_pocl);
    CU_add_test(suite, "invariants on a GPU-like device", test_invariants_gpu);
    CU_add_test(suite, "invariants on a tiny device", test_invariants_tiny);
    CU_add_test(suite, "invariants with narrow per-dimension limits", test_invariants_narrow_dims);
    CU_add_test(suite, "ROW_LOCAL / ROW_MULTIPASS boundary", test_row_boundary);
    CU_add_test(suite, "STRIDED for inner > 1", test_strided);
    CU_add_test(suite, "32-bit address space", test_address_bits);
    CU_add_test(suite, "pure function", test_pure);
    CU_add_test(suite, "the issue's shapes on PoCL", test_shapes_pocl);
    CU_add_test(suite, "the issue's shapes on a GPU", test_shapes_gpu);
    CU_add_test(suite, "parameters steer the plan", test_params_steer);
}
