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
    clsoftmax_status st = clsoftmax__plan_make(&layout, caps, kernel_max_wg, &plan);
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
        TEST_CHECK(plan.strategy == CLSOFTMAX__STRIDED, "[%zu, %zu, %zu]: strategy %d, not STRIDED",
                   outer, n, inner, (int)plan.strategy);
    } else {
        TEST_CHECK(
            plan.strategy == CLSOFTMAX__ROW_LOCAL || plan.strategy == CLSOFTMAX__ROW_MULTIPASS,
            "[%zu, %zu, 1]: strategy %d is not a row strategy", outer, n, (int)plan.strategy);
        TEST_CHECK(plan.local[1] == 1, "row kernel with local[1] = %zu", plan.local[1]);
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
    /* Every work-item needs a slot of reduction scratch. */
    TEST_CHECK(plan.local_bytes >= wg * elem,
               "[%zu, %zu, %zu]: local_bytes %zu below the %zu x %zu reduction scratch", outer, n,
               inner, plan.local_bytes, wg, elem);
    if (plan.strategy == CLSOFTMAX__ROW_LOCAL)
        TEST_CHECK(plan.local_bytes >= n * elem,
                   "ROW_LOCAL row of %zu elements staged in only %zu bytes", n, plan.local_bytes);
    TEST_CHECK(plan.groups[0] >= 1 && plan.groups[1] >= 1, "[%zu, %zu, %zu]: groups %zu x %zu",
               outer, n, inner, plan.groups[0], plan.groups[1]);
    /* No group without work: rows for row kernels, column blocks for the strided one. */
    size_t units = inner > 1 ? ceil_div(layout.rows, plan.local[0]) : layout.rows;
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
        if (clsoftmax__plan_make(&layout, caps, 0, &plan) != CLSOFTMAX_SUCCESS)
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
}

static void test_strided(void)
{
    clsoftmax__device_caps gpu = caps_gpu();
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
}
