/* test_validate.c - suite "validate": descriptor checks and the [outer, n, inner] view. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "test_suites.h"
#include "test_util.h"

/*
 * Runs both entry points on desc: the public one must agree with the internal
 * one, and a failure must come with a message naming `field`.
 */
static void expect_status(const clsoftmax_desc* desc, clsoftmax_status want, const char* field,
                          const char* what)
{
    char msg[512];
    memset(msg, 'x', sizeof msg);
    msg[sizeof msg - 1] = '\0';
    clsoftmax__layout layout;
    clsoftmax_status got = clsoftmax__validate_desc(desc, &layout, msg, sizeof msg);
    TEST_CHECK(got == want, "%s: clsoftmax__validate_desc returned %s, expected %s (msg \"%s\")",
               what, clsoftmax_status_name(got), clsoftmax_status_name(want), msg);

    size_t count = 12345;
    clsoftmax_status pub = clsoftmax_desc_validate(desc, &count);
    TEST_CHECK(pub == want, "%s: clsoftmax_desc_validate returned %s, expected %s", what,
               clsoftmax_status_name(pub), clsoftmax_status_name(want));
    if (want != CLSOFTMAX_SUCCESS) {
        TEST_CHECK(count == 12345, "%s: element_count written on failure (%zu)", what, count);
        TEST_CHECK(msg[0] != '\0' && strchr(msg, 'x') != msg,
                   "%s: message empty or not written: \"%s\"", what, msg);
        TEST_CHECK(test_contains(msg, field), "%s: message \"%s\" does not mention \"%s\"", what,
                   msg, field);
    }
}

static clsoftmax_desc make_desc(clsoftmax_dtype dtype, size_t ndim, const size_t* dims, int axis)
{
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, ndim, dims, axis);
    return desc;
}

static void test_desc_init(void)
{
    const size_t dims[3] = {2, 3, 4};
    clsoftmax_desc desc;
    memset(&desc, 0xff, sizeof desc);
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT64, 3, dims, -1);
    CU_ASSERT_EQUAL(desc.struct_size, sizeof(clsoftmax_desc));
    CU_ASSERT_EQUAL(desc.dtype, CLSOFTMAX_FLOAT64);
    CU_ASSERT_EQUAL(desc.ndim, 3);
    CU_ASSERT_EQUAL(desc.dims[0], 2);
    CU_ASSERT_EQUAL(desc.dims[1], 3);
    CU_ASSERT_EQUAL(desc.dims[2], 4);
    CU_ASSERT_EQUAL(desc.axis, -1);
    CU_ASSERT_EQUAL(desc.scale, 1.0);
    CU_ASSERT_EQUAL(desc.op, CLSOFTMAX_OP_SOFTMAX);
    size_t count = 0;
    TEST_STATUS(clsoftmax_desc_validate(&desc, &count), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(count, 24);
    /* element_count may be NULL. */
    TEST_STATUS(clsoftmax_desc_validate(&desc, NULL), CLSOFTMAX_SUCCESS);
    /* ndim 0 with NULL dims is allowed by init (validation rejects it later). */
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 0, NULL, 0);
    CU_ASSERT_EQUAL(desc.ndim, 0);
    CU_ASSERT_EQUAL(desc.struct_size, sizeof(clsoftmax_desc));
}

static void test_null_and_struct_size(void)
{
    char msg[256] = "";
    clsoftmax__layout layout;
    TEST_STATUS(clsoftmax__validate_desc(NULL, &layout, msg, sizeof msg),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_CHECK(test_contains(msg, "desc"), "NULL desc message \"%s\" does not mention desc", msg);
    size_t count = 7;
    TEST_STATUS(clsoftmax_desc_validate(NULL, &count), CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(count, 7);

    const size_t dims[2] = {3, 4};
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 2, dims, 1);
    desc.struct_size = 0;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "struct_size", "struct_size 0");
    desc.struct_size = sizeof(clsoftmax_desc) - 1;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "struct_size", "struct_size short by one");
    desc.struct_size = sizeof(size_t);
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "struct_size", "struct_size of one field");
}

static void test_ndim(void)
{
    const size_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 0, dims, 0);
    expect_status(&desc, CLSOFTMAX_INVALID_SHAPE, "ndim", "ndim 0");
    desc = make_desc(CLSOFTMAX_FLOAT32, 8, dims, 0);
    desc.ndim = 9;
    expect_status(&desc, CLSOFTMAX_INVALID_SHAPE, "ndim", "ndim 9");
    desc.ndim = SIZE_MAX;
    expect_status(&desc, CLSOFTMAX_INVALID_SHAPE, "ndim", "ndim SIZE_MAX");

    /* The limits themselves are valid: 1 and 8 dimensions, every axis of the 8. */
    desc = make_desc(CLSOFTMAX_FLOAT32, 1, dims, 0);
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "ndim 1");
    const size_t dims8[8] = {2, 1, 3, 1, 2, 1, 1, 2};
    for (int axis = -8; axis < 8; ++axis) {
        desc = make_desc(CLSOFTMAX_FLOAT64, 8, dims8, axis);
        clsoftmax__layout layout;
        TEST_STATUS(clsoftmax__validate_desc(&desc, &layout, NULL, 0), CLSOFTMAX_SUCCESS);
        CU_ASSERT_EQUAL(layout.count, 24);
        CU_ASSERT_EQUAL(layout.outer * layout.n * layout.inner, 24);
    }
}

static void test_zero_extent(void)
{
    for (size_t zero_at = 0; zero_at < 3; ++zero_at) {
        size_t dims[3] = {2, 3, 4};
        dims[zero_at] = 0;
        /* The zero is on and off the softmax axis: an empty tensor is an error either way. */
        clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 3, dims, 1);
        expect_status(&desc, CLSOFTMAX_INVALID_SHAPE, "dims", "zero extent");
    }
}

static void test_axis_range(void)
{
    const size_t dims[4] = {2, 3, 4, 5};
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 4, dims, 4);
    expect_status(&desc, CLSOFTMAX_INVALID_AXIS, "axis", "axis == ndim");
    desc.axis = -5;
    expect_status(&desc, CLSOFTMAX_INVALID_AXIS, "axis", "axis == -ndim-1");
    desc.axis = 1000;
    expect_status(&desc, CLSOFTMAX_INVALID_AXIS, "axis", "axis 1000");
    desc.axis = -2147483647 - 1;
    expect_status(&desc, CLSOFTMAX_INVALID_AXIS, "axis", "axis INT_MIN");
    desc.axis = 3;
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "axis ndim-1");
    desc.axis = -4;
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "axis -ndim");
}

static void test_axis_layout(void)
{
    const size_t dims[4] = {2, 3, 4, 5};
    /* [outer, n, inner] for axes 0..3 of [2, 3, 4, 5]. */
    const size_t expected[4][3] = {{1, 2, 60}, {2, 3, 20}, {6, 4, 5}, {24, 5, 1}};
    for (int axis = 0; axis < 4; ++axis) {
        for (int neg = 0; neg < 2; ++neg) {
            int a = neg ? axis - 4 : axis;
            for (int dt = 0; dt < 2; ++dt) {
                clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
                clsoftmax_desc desc = make_desc(dtype, 4, dims, a);
                desc.scale = 0.3;
                clsoftmax__layout layout;
                memset(&layout, 0xff, sizeof layout);
                char msg[64] = "junk";
                TEST_STATUS(clsoftmax__validate_desc(&desc, &layout, msg, sizeof msg),
                            CLSOFTMAX_SUCCESS);
                TEST_CHECK(layout.outer == expected[axis][0] && layout.n == expected[axis][1] &&
                               layout.inner == expected[axis][2],
                           "axis %d: layout [%zu, %zu, %zu], expected [%zu, %zu, %zu]", a,
                           layout.outer, layout.n, layout.inner, expected[axis][0],
                           expected[axis][1], expected[axis][2]);
                CU_ASSERT_EQUAL(layout.rows, expected[axis][0] * expected[axis][2]);
                CU_ASSERT_EQUAL(layout.count, 120);
                CU_ASSERT_EQUAL(layout.elem_size, dt ? 8 : 4);
                CU_ASSERT_EQUAL(layout.bytes, 120 * (dt ? 8 : 4));
                CU_ASSERT_EQUAL(layout.scale_f, 0.3f);
            }
        }
    }
}

static void test_overflow(void)
{
    /* The element count overflows size_t (2^33 * 2^33 = 2^66). */
    const size_t big[2] = {(size_t)1 << 33, (size_t)1 << 33};
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 2, big, 0);
    expect_status(&desc, CLSOFTMAX_SIZE_OVERFLOW, "overflow", "element count overflow");
    /* Overflow hidden by a later factor must still be caught: SIZE_MAX * 2 * 1. */
    const size_t wrap[3] = {SIZE_MAX, 2, 1};
    desc = make_desc(CLSOFTMAX_FLOAT64, 3, wrap, -1);
    expect_status(&desc, CLSOFTMAX_SIZE_OVERFLOW, "overflow", "SIZE_MAX * 2");
    /* 2^63 + 2 elements fit size_t, their float32 bytes do not. */
    const size_t odd[2] = {((size_t)1 << 62) + 1, 2};
    desc = make_desc(CLSOFTMAX_FLOAT32, 2, odd, 1);
    expect_status(&desc, CLSOFTMAX_SIZE_OVERFLOW, "overflow", "2^63+2 elements of float32");

    /* The element count fits but its bytes do not: 2^62 float32 = 2^64 bytes. */
    const size_t bytes[2] = {(size_t)1 << 31, (size_t)1 << 31};
    desc = make_desc(CLSOFTMAX_FLOAT32, 2, bytes, 0);
    expect_status(&desc, CLSOFTMAX_SIZE_OVERFLOW, "overflow", "byte count overflow float32");
    /* 2^61 float64 = 2^64 bytes, while the same count of float32 fits. */
    const size_t b64[1] = {(size_t)1 << 61};
    desc = make_desc(CLSOFTMAX_FLOAT64, 1, b64, 0);
    expect_status(&desc, CLSOFTMAX_SIZE_OVERFLOW, "overflow", "byte count overflow float64");
    desc = make_desc(CLSOFTMAX_FLOAT32, 1, b64, 0);
    size_t count = 0;
    TEST_STATUS(clsoftmax_desc_validate(&desc, &count), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(count, (size_t)1 << 61);
}

static void test_dtype_and_op(void)
{
    const size_t dims[2] = {3, 4};
    clsoftmax_desc desc = make_desc((clsoftmax_dtype)7, 2, dims, 1);
    expect_status(&desc, CLSOFTMAX_INVALID_DTYPE, "dtype", "dtype 7");
    desc.dtype = (clsoftmax_dtype)-1;
    expect_status(&desc, CLSOFTMAX_INVALID_DTYPE, "dtype", "dtype -1");
    desc.dtype = (clsoftmax_dtype)4;
    expect_status(&desc, CLSOFTMAX_INVALID_DTYPE, "dtype", "dtype 4");
    desc.dtype = CLSOFTMAX_FLOAT16;
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "FLOAT16");
    desc.dtype = CLSOFTMAX_BFLOAT16;
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "BFLOAT16");
    TEST_CHECK(clsoftmax_dtype_size(CLSOFTMAX_FLOAT16) == 2 &&
                   clsoftmax_dtype_size(CLSOFTMAX_BFLOAT16) == 2 &&
                   clsoftmax_dtype_size(CLSOFTMAX_FLOAT32) == 4 &&
                   clsoftmax_dtype_size(CLSOFTMAX_FLOAT64) == 8 &&
                   clsoftmax_dtype_size((clsoftmax_dtype)4) == 0,
               "clsoftmax_dtype_size");

    desc = make_desc(CLSOFTMAX_FLOAT32, 2, dims, 1);
    desc.op = (clsoftmax_op)2;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "op", "op 2");
    desc.op = (clsoftmax_op)-1;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "op", "op -1");
    desc.op = CLSOFTMAX_OP_LOG_SOFTMAX;
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "op LOG_SOFTMAX");
}

/* alpha, beta, nonfinite and report (0.2), and a 0.1 struct without them. */
static void test_blend_and_policy(void)
{
    const size_t dims[2] = {3, 4};
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 2, dims, 1);
    TEST_CHECK(desc.alpha == 1.0 && desc.beta == 0.0 && desc.nonfinite == CLSOFTMAX_NONFINITE_NAN &&
                   desc.report == NULL,
               "clsoftmax_desc_init's defaults for alpha, beta, nonfinite, report");
    desc.alpha = NAN;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "alpha", "alpha NaN");
    desc.alpha = 1e39; /* finite as a double, inf as a float */
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "alpha", "alpha 1e39 float32");
    desc.dtype = CLSOFTMAX_FLOAT16;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "alpha", "alpha 1e39 float16");
    desc.dtype = CLSOFTMAX_FLOAT64;
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "alpha 1e39 float64");
    desc.alpha = 1.0;
    desc.beta = -INFINITY;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "beta", "beta -inf");
    desc.beta = 0.5;
    desc.nonfinite = (clsoftmax_nonfinite)3;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "nonfinite", "nonfinite 3");
    desc.nonfinite = CLSOFTMAX_NONFINITE_ERROR;
    clsoftmax__layout layout;
    TEST_STATUS(clsoftmax__validate_desc(&desc, &layout, NULL, 0), CLSOFTMAX_SUCCESS);
    TEST_CHECK(layout.beta == 0.5 && layout.nonfinite == CLSOFTMAX_NONFINITE_ERROR &&
                   layout.compute_size == 8 && layout.elem_size == 8,
               "layout carries beta, nonfinite and sizes");

    /* a 0.1 caller's struct ends at op: garbage past it must not be read */
    desc.struct_size = offsetof(clsoftmax_desc, alpha);
    desc.alpha = NAN;
    desc.beta = NAN;
    desc.nonfinite = (clsoftmax_nonfinite)99;
    TEST_STATUS(clsoftmax__validate_desc(&desc, &layout, NULL, 0), CLSOFTMAX_SUCCESS);
    TEST_CHECK(layout.alpha == 1.0 && layout.beta == 0.0 &&
                   layout.nonfinite == CLSOFTMAX_NONFINITE_NAN && layout.report == NULL,
               "a 0.1 desc gets the defaults");
    desc.struct_size = offsetof(clsoftmax_desc, alpha) + 1;
    expect_status(&desc, CLSOFTMAX_INVALID_ARGUMENT, "struct_size", "struct_size between versions");

    /* a beta that rounds to float 0 is 0 for the float-computed dtypes: out is not read */
    desc = make_desc(CLSOFTMAX_FLOAT32, 2, dims, 1);
    desc.beta = 1e-50;
    TEST_STATUS(clsoftmax__validate_desc(&desc, &layout, NULL, 0), CLSOFTMAX_SUCCESS);
    TEST_CHECK(layout.beta == 0.0, "float32: beta 1e-50 is %g in the layout", layout.beta);
    desc.dtype = CLSOFTMAX_FLOAT64;
    TEST_STATUS(clsoftmax__validate_desc(&desc, &layout, NULL, 0), CLSOFTMAX_SUCCESS);
    TEST_CHECK(layout.beta == 1e-50, "float64 keeps beta 1e-50");

    desc = make_desc(CLSOFTMAX_BFLOAT16, 2, dims, 1);
    TEST_STATUS(clsoftmax__validate_desc(&desc, &layout, NULL, 0), CLSOFTMAX_SUCCESS);
    TEST_CHECK(layout.elem_size == 2 && layout.compute_size == 4 && layout.bytes == 24,
               "bfloat16 sizes: %zu %zu %zu", layout.elem_size, layout.compute_size, layout.bytes);
}

static void test_scale(void)
{
    const size_t dims[2] = {3, 4};
    for (int dt = 0; dt < 2; ++dt) {
        clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
        clsoftmax_desc desc = make_desc(dtype, 2, dims, 0);
        desc.scale = NAN;
        expect_status(&desc, CLSOFTMAX_INVALID_SCALE, "scale", "scale NaN");
        desc.scale = INFINITY;
        expect_status(&desc, CLSOFTMAX_INVALID_SCALE, "scale", "scale +inf");
        desc.scale = -INFINITY;
        expect_status(&desc, CLSOFTMAX_INVALID_SCALE, "scale", "scale -inf");

        const double ok[] = {0.0, -0.0, -2.0, 0.5, -1e-30, 1e30, 5e-324};
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; ++i) {
            desc.scale = ok[i];
            clsoftmax__layout layout;
            TEST_CHECK(clsoftmax__validate_desc(&desc, &layout, NULL, 0) == CLSOFTMAX_SUCCESS,
                       "scale %g rejected for dtype %d", ok[i], (int)dtype);
            TEST_CHECK(layout.scale_f == (float)ok[i], "scale_f %g, expected %g",
                       (double)layout.scale_f, (double)(float)ok[i]);
        }
    }
    /* A finite double that rounds to float inf would make every float32 row NaN: rejected there. */
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 2, dims, 0);
    desc.scale = 1e300;
    expect_status(&desc, CLSOFTMAX_INVALID_SCALE, "scale", "scale 1e300 for float32");
    desc.dtype = CLSOFTMAX_FLOAT64;
    expect_status(&desc, CLSOFTMAX_SUCCESS, "", "scale 1e300 for float64");
}

static void test_msg_buffer(void)
{
    /* A tiny message buffer is truncated, never overrun; NULL/0 is accepted. */
    const size_t dims[1] = {0};
    clsoftmax_desc desc = make_desc(CLSOFTMAX_FLOAT32, 1, dims, 0);
    char msg[8];
    memset(msg, 'z', sizeof msg);
    TEST_STATUS(clsoftmax__validate_desc(&desc, NULL, msg, 4), CLSOFTMAX_INVALID_SHAPE);
    CU_ASSERT_EQUAL(msg[3], '\0');
    CU_ASSERT_EQUAL(msg[4], 'z');
    TEST_STATUS(clsoftmax__validate_desc(&desc, NULL, NULL, 0), CLSOFTMAX_INVALID_SHAPE);
    /* Success clears the message. */
    const size_t good[1] = {5};
    desc = make_desc(CLSOFTMAX_FLOAT32, 1, good, 0);
    strcpy(msg, "old");
    TEST_STATUS(clsoftmax__validate_desc(&desc, NULL, msg, sizeof msg), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(msg[0], '\0');
}

void test_register_validate(void)
{
    CU_pSuite suite = CU_add_suite("validate", NULL, NULL);
    if (suite == NULL)
        return;
    CU_add_test(suite, "desc_init", test_desc_init);
    CU_add_test(suite, "NULL desc and struct_size", test_null_and_struct_size);
    CU_add_test(suite, "ndim 0, 9 and the limits", test_ndim);
    CU_add_test(suite, "zero extent", test_zero_extent);
    CU_add_test(suite, "axis range", test_axis_range);
    CU_add_test(suite, "negative axes and layout", test_axis_layout);
    CU_add_test(suite, "size_t overflow", test_overflow);
    CU_add_test(suite, "dtype and op", test_dtype_and_op);
    CU_add_test(suite, "scale", test_scale);
    CU_add_test(suite, "blend and policy", test_blend_and_policy);
    CU_add_test(suite, "message buffer", test_msg_buffer);
}
