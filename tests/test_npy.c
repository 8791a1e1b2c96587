/* test_npy.c - suite "npy": the .npy reader and writer of tools/npy.c, good files and bad ones. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "test_files.h"
#include "test_suites.h"
#include "test_util.h"

/* The suite's scratch directory, made in the suite's init. */
static char npy_dir[512];

static int npy_suite_init(void) { return test_dir_make_temp(npy_dir, sizeof(npy_dir), "npy"); }

static int npy_suite_clean(void) { return test_dir_remove(npy_dir); }

static void npy_path(char* buf, size_t size, const char* name)
{
    test_path_join(buf, size, npy_dir, name);
}

/* Reads path expecting failure with want_result and a message naming the file and `needle`. */
static void expect_bad(const char* path, npy_result want_result, const char* needle,
                       const char* what, unsigned line)
{
    npy_array a;
    char msg[512];
    memset(msg, 'x', sizeof(msg));
    npy_result r = npy_read(path, &a, msg, sizeof(msg));
    TEST_CHECK_AT(line, r == want_result, "%s: npy_read returned %d, want %d (message: %s)", what,
                  (int)r, (int)want_result, msg);
    TEST_CHECK_AT(line, a.data == NULL, "%s: data must stay NULL on failure", what);
    TEST_CHECK_AT(line, strstr(msg, path) != NULL, "%s: message '%s' does not name the file", what,
                  msg);
    TEST_CHECK_AT(line, strstr(msg, needle) != NULL, "%s: message '%s' does not mention '%s'", what,
                  msg, needle);
    npy_array_free(&a);
}

/* ---- good files ----------------------------------------------------------- */

static void fill_values(void* data, npy_dtype dtype, size_t count)
{
    for (size_t i = 0; i < count; ++i) {
        /* 16-bit words and labels: every bit pattern must survive, NaN and inf words included. */
        if (dtype == NPY_FLOAT16 || dtype == NPY_UINT16) {
            static const uint16_t special[4] = {0x7e00, 0xfc00, 0x8000, 0x7f80};
            ((uint16_t*)data)[i] = i % 7 == 3 ? special[i % 4] : (uint16_t)(i * 40503u);
            continue;
        }
        if (dtype == NPY_INT64) {
            ((int64_t*)data)[i] = i % 5 == 1 ? INT64_MIN + (int64_t)i : (int64_t)i * 7 - 100;
            continue;
        }
        double v = (double)i * 0.37 - 5.0;
        /* Special values must come back bit for bit too. */
        if (i % 11 == 3)
            v = NAN;
        else if (i % 13 == 4)
            v = -INFINITY;
        else if (i % 17 == 5)
            v = -0.0;
        if (dtype == NPY_FLOAT32)
            ((float*)data)[i] = (float)v;
        else
            ((double*)data)[i] = v;
    }
}

static void round_trip(npy_dtype dtype, size_t ndim, const size_t* dims)
{
    char path[1024];
    char msg[512];
    npy_path(path, sizeof(path), "round.npy");
    npy_array a;
    memset(&a, 0, sizeof(a));
    a.dtype = dtype;
    a.ndim = ndim;
    a.count = 1;
    for (size_t d = 0; d < ndim; ++d) {
        a.dims[d] = dims[d];
        a.count *= dims[d];
    }
    a.data = malloc(a.count * npy_dtype_size(dtype));
    if (a.data == NULL) {
        CU_FAIL("out of memory");
        return;
    }
    fill_values(a.data, dtype, a.count);

    npy_result r = npy_write(path, &a, msg, sizeof(msg));
    TEST_CHECK(r == NPY_OK, "write %s %zu-D: %s", npy_dtype_descr(dtype), ndim, msg);

    /* NumPy's layout: version 1.0, data 64-byte aligned, header ends in '\n'. */
    FILE* f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    unsigned char head[10];
    CU_ASSERT(fread(head, 1, 10, f) == 10);
    size_t hlen = (size_t)head[8] | ((size_t)head[9] << 8);
    char* header = calloc(hlen + 1, 1);
    CU_ASSERT_FATAL(header != NULL);
    CU_ASSERT(fread(header, 1, hlen, f) == hlen);
    fclose(f);
    CU_ASSERT(memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
    TEST_CHECK((10 + hlen) % 64 == 0, "data offset %zu is not a multiple of 64", 10 + hlen);
    CU_ASSERT(hlen > 0 && header[hlen - 1] == '\n');
    char want_descr[32];
    snprintf(want_descr, sizeof(want_descr), "'descr': '%s'", npy_dtype_descr(dtype));
    TEST_CHECK(strstr(header, want_descr) != NULL, "header '%s' lacks %s", header, want_descr);
    CU_ASSERT(strstr(header, "'fortran_order': False") != NULL);
    if (ndim == 1) {
        char want_shape[64];
        snprintf(want_shape, sizeof(want_shape), "'shape': (%zu,)", dims[0]);
        TEST_CHECK(strstr(header, want_shape) != NULL, "header '%s' lacks %s", header, want_shape);
    }
    free(header);

    npy_array b;
    r = npy_read(path, &b, msg, sizeof(msg));
    TEST_CHECK(r == NPY_OK, "read back %s %zu-D: %s", npy_dtype_descr(dtype), ndim, msg);
    if (r == NPY_OK) {
        CU_ASSERT(b.dtype == dtype);
        CU_ASSERT(b.ndim == ndim);
        CU_ASSERT(b.count == a.count);
        CU_ASSERT(memcmp(b.dims, a.dims, ndim * sizeof(size_t)) == 0);
        TEST_CHECK(memcmp(a.data, b.data, a.count * npy_dtype_size(dtype)) == 0,
                   "%s %zu-D data differ after a round trip", npy_dtype_descr(dtype), ndim);
    }
    npy_array_free(&b);
    npy_array_free(&a);
}

static void test_round_trip_all_ranks(void)
{
    static const size_t dims[8] = {3, 2, 1, 4, 2, 1, 3, 2};
    for (size_t ndim = 1; ndim <= NPY_MAX_DIMS; ++ndim) {
        round_trip(NPY_FLOAT32, ndim, dims);
        round_trip(NPY_FLOAT64, ndim, dims);
        round_trip(NPY_FLOAT16, ndim, dims);
        round_trip(NPY_UINT16, ndim, dims);
        round_trip(NPY_INT64, ndim, dims);
    }
    static const size_t big[1] = {100000};
    round_trip(NPY_FLOAT32, 1, big);
    round_trip(NPY_FLOAT16, 1, big);
    /* An odd count of 2-byte elements: data end off any 4-byte boundary. */
    static const size_t odd[2] = {3, 7};
    round_trip(NPY_UINT16, 2, odd);
}

/* The dtype table: sizes, descr strings, and nothing for a value that is not a dtype. */
static void test_dtypes(void)
{
    static const struct {
        npy_dtype dtype;
        const char* descr;
        size_t size;
    } want[] = {{NPY_FLOAT32, "<f4", 4},
                {NPY_FLOAT64, "<f8", 8},
                {NPY_FLOAT16, "<f2", 2},
                {NPY_UINT16, "<u2", 2},
                {NPY_INT64, "<i8", 8}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); ++i) {
        TEST_CHECK(npy_dtype_size(want[i].dtype) == want[i].size, "size of %s: %zu", want[i].descr,
                   npy_dtype_size(want[i].dtype));
        TEST_CHECK(strcmp(npy_dtype_descr(want[i].dtype), want[i].descr) == 0, "descr %d: %s",
                   (int)want[i].dtype, npy_dtype_descr(want[i].dtype));
    }
    CU_ASSERT(npy_dtype_size((npy_dtype)5) == 0);
    char msg[256];
    float x = 0.0f;
    size_t dims[1] = {1};
    FILE* f = tmpfile();
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(npy_write_stream(f, "w.npy", (npy_dtype)5, 1, dims, &x, msg, sizeof(msg)) ==
              NPY_ERR_FORMAT);
    fclose(f);
}

/*
 * 2-byte and 8-byte elements written by hand (as NumPy lays them out: little-endian), read
 * through npy_read and through npy_read_stream on an in-memory stream, value by value.
 */
static void test_read_half_and_labels(void)
{
    /* float16 1.0, -2.0, 65504, -inf, NaN; as little-endian words. */
    static const unsigned char f2[10] = {0x00, 0x3c, 0x00, 0xc0, 0xff,
                                         0x7b, 0x00, 0xfc, 0x00, 0x7e};
    static const uint16_t f2_words[5] = {0x3c00, 0xc000, 0x7bff, 0xfc00, 0x7e00};
    /* int64 3, -100, 2^40 + 1. */
    static const unsigned char i8[24] = {3,    0,    0,    0,    0, 0, 0, 0, 0x9c, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0,    1,    0,    0};
    static const int64_t i8_values[3] = {3, -100, ((int64_t)1 << 40) + 1};
    char path[1024];
    char msg[512];
    npy_path(path, sizeof(path), "half.npy");
    for (int kind = 0; kind < 3; ++kind) {
        const char* header =
            kind == 0   ? "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }\n"
            : kind == 1 ? "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 5), }\n"
                        : "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1), }\n";
        const void* data = kind < 2 ? (const void*)f2 : (const void*)i8;
        size_t bytes = kind < 2 ? sizeof(f2) : sizeof(i8);
        CU_ASSERT_FATAL(
            test_write_npy_raw(path, NULL, kind == 2 ? 3 : 1, 0, header, 0, 0, data, bytes) == 0);
        for (int stream = 0; stream < 2; ++stream) {
            npy_array a;
            npy_result r;
            if (stream) {
                FILE* f = fopen(path, "rb");
                CU_ASSERT_FATAL(f != NULL);
                CU_ASSERT_FATAL(fseek(f, 0, SEEK_END) == 0);
                long size = ftell(f);
                rewind(f);
                r = npy_read_stream(f, (size_t)size, "mem", &a, msg, sizeof(msg));
                fclose(f);
            } else {
                r = npy_read(path, &a, msg, sizeof(msg));
            }
            TEST_CHECK(r == NPY_OK, "kind %d stream %d: %s", kind, stream, msg);
            if (r != NPY_OK)
                continue;
            if (kind < 2) {
                CU_ASSERT(a.dtype == (kind == 0 ? NPY_FLOAT16 : NPY_UINT16));
                CU_ASSERT(a.count == 5 && a.ndim == (kind == 0 ? 1u : 2u));
                for (size_t i = 0; i < 5; ++i)
                    TEST_CHECK(((const uint16_t*)a.data)[i] == f2_words[i],
                               "kind %d word %zu: 0x%04x", kind, i,
                               (unsigned)((const uint16_t*)a.data)[i]);
            } else {
                CU_ASSERT(a.dtype == NPY_INT64 && a.count == 3 && a.ndim == 2);
                for (size_t i = 0; i < 3; ++i)
                    TEST_CHECK(((const int64_t*)a.data)[i] == i8_values[i], "label %zu: %lld", i,
                               (long long)((const int64_t*)a.data)[i]);
            }
            npy_array_free(&a);
        }
    }
}

/* Hand-written headers NumPy would accept: versions 2.0 and 3.0, spacing, key order, quotes. */
static void test_read_variants(void)
{
    static const struct {
        unsigned major;
        const char* header;
        npy_dtype dtype;
        size_t ndim;
        size_t dims[3];
    } cases[] = {
        {2,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n",
         NPY_FLOAT32,
         2,
         {2, 3, 0}},
        {2, "{'shape': (4,), 'descr': '<f8', 'fortran_order': False}\n", NPY_FLOAT64, 1, {4, 0, 0}},
        {3,
         "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(1,2,3,)}",
         NPY_FLOAT32,
         3,
         {1, 2, 3}},
        {1,
         " {\t'fortran_order' : False ,\n 'shape' : ( 5 , ) , 'descr' : '<f8' , }  \n",
         NPY_FLOAT64,
         1,
         {5, 0, 0}},
        {1,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 2L), }\n",
         NPY_FLOAT32,
         2,
         {2, 2, 0}},
    };
    char path[1024];
    npy_path(path, sizeof(path), "variant.npy");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); ++c) {
        size_t count = 1;
        for (size_t d = 0; d < cases[c].ndim; ++d)
            count *= cases[c].dims[d];
        size_t elem = cases[c].dtype == NPY_FLOAT64 ? 8 : 4;
        CU_ASSERT_FATAL(test_write_npy_raw(path, NULL, cases[c].major, 0, cases[c].header, 0, 0,
                                           NULL, count * elem) == 0);
        npy_array a;
        char msg[512];
        npy_result r = npy_read(path, &a, msg, sizeof(msg));
        TEST_CHECK(r == NPY_OK, "variant %zu (v%u.0): %s", c, cases[c].major, msg);
        if (r != NPY_OK)
            continue;
        CU_ASSERT(a.dtype == cases[c].dtype);
        CU_ASSERT(a.ndim == cases[c].ndim);
        CU_ASSERT(a.count == count);
        for (size_t d = 0; d < cases[c].ndim; ++d)
            CU_ASSERT(a.dims[d] == cases[c].dims[d]);
        if (cases[c].dtype == NPY_FLOAT32)
            CU_ASSERT(((float*)a.data)[0] == 1.0f);
        npy_array_free(&a);
    }
}

/* A v2.0 file with real data, checked value by value (the header written here, not by npy.c). */
static void test_read_v2_values(void)
{
    char path[1024];
    npy_path(path, sizeof(path), "v2.npy");
    /* 1.5, -2.0 and 0.25 as little-endian IEEE doubles. */
    static const unsigned char values[24] = {0, 0, 0, 0,    0, 0, 0xf8, 0x3f, 0, 0, 0,    0,
                                             0, 0, 0, 0xc0, 0, 0, 0,    0,    0, 0, 0xd0, 0x3f};
    CU_ASSERT_FATAL(
        test_write_npy_raw(path, NULL, 2, 0,
                           "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", 0, 0,
                           values, sizeof(values)) == 0);
    npy_array a;
    char msg[512];
    CU_ASSERT_FATAL(npy_read(path, &a, msg, sizeof(msg)) == NPY_OK);
    CU_ASSERT(a.ndim == 1 && a.dims[0] == 3 && a.dtype == NPY_FLOAT64);
    CU_ASSERT(((double*)a.data)[0] == 1.5);
    CU_ASSERT(((double*)a.data)[1] == -2.0);
    CU_ASSERT(((double*)a.data)[2] == 0.25);
    npy_array_free(&a);
}

/* A dimension of 0 is a valid empty array for the reader; the library refuses it later. */
static void test_read_empty(void)
{
    char path[1024];
    npy_path(path, sizeof(path), "empty.npy");
    CU_ASSERT_FATAL(
        test_write_npy_raw(path, NULL, 1, 0,
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }\n", 0, 0,
                           NULL, 0) == 0);
    npy_array a;
    char msg[512];
    npy_result r = npy_read(path, &a, msg, sizeof(msg));
    TEST_CHECK(r == NPY_OK, "empty array: %s", msg);
    CU_ASSERT(a.count == 0);
    CU_ASSERT(a.data != NULL);
    npy_array_free(&a);
}

/* ---- malformed files ------------------------------------------------------ */

static void test_bad_files(void)
{
    char path[1024];
    npy_path(path, sizeof(path), "bad.npy");
    for (size_t c = 0; c < test_bad_npy_count; ++c) {
        const test_bad_npy* b = &test_bad_npy_cases[c];
        CU_ASSERT_FATAL(test_write_bad_npy(path, b) == 0);
        expect_bad(path, NPY_ERR_FORMAT, b->needle, b->name, __LINE__);
    }
}

/* Shapes whose element or byte count overflows size_t, whatever its width. */
static void test_count_overflow(void)
{
    char path[1024];
    char header[256];
    npy_path(path, sizeof(path), "overflow.npy");

    snprintf(header, sizeof(header),
             "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, 2), }\n", (size_t)SIZE_MAX);
    CU_ASSERT_FATAL(test_write_npy_raw(path, NULL, 1, 0, header, 0, 0, NULL, 24) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "element count overflows", "count overflow", __LINE__);

    snprintf(header, sizeof(header),
             "{'descr': '<f4', 'fortran_order': False, 'shape': (3, %zu, 0, 5), }\n",
             (size_t)SIZE_MAX / 2);
    /* A zero extent after a huge one: the count is 0, which is no overflow. */
    CU_ASSERT_FATAL(test_write_npy_raw(path, NULL, 1, 0, header, 0, 0, NULL, 0) == 0);
    npy_array a;
    char msg[512];
    CU_ASSERT(npy_read(path, &a, msg, sizeof(msg)) == NPY_OK);
    npy_array_free(&a);

    snprintf(header, sizeof(header),
             "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu,), }\n",
             (size_t)SIZE_MAX / 8 + 1);
    CU_ASSERT_FATAL(test_write_npy_raw(path, NULL, 1, 0, header, 0, 0, NULL, 24) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "byte count overflows", "byte overflow", __LINE__);

    snprintf(header, sizeof(header),
             "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }\n",
             (size_t)1 << (sizeof(size_t) * 4), (size_t)1 << (sizeof(size_t) * 4));
    CU_ASSERT_FATAL(test_write_npy_raw(path, NULL, 1, 0, header, 0, 0, NULL, 24) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "element count overflows", "2^(w/2) squared", __LINE__);
}

/* Files too short to hold a prefix, missing files, directories. */
static void test_short_and_missing(void)
{
    char path[1024];
    npy_path(path, sizeof(path), "short.npy");

    CU_ASSERT_FATAL(test_write_bytes(path, "", 0) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "magic", "empty file", __LINE__);
    CU_ASSERT_FATAL(test_write_bytes(path, "\x93NUM", 4) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "magic", "4-byte file", __LINE__);
    CU_ASSERT_FATAL(test_write_bytes(path, "\x93NUMPY\x01", 7) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "version", "7-byte file", __LINE__);
    CU_ASSERT_FATAL(test_write_bytes(path, "\x93NUMPY\x01\x00\x10", 9) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "header length", "9-byte v1 file", __LINE__);
    CU_ASSERT_FATAL(test_write_bytes(path, "\x93NUMPY\x02\x00\x10\x00", 10) == 0);
    expect_bad(path, NPY_ERR_FORMAT, "header length", "10-byte v2 file", __LINE__);

    npy_path(path, sizeof(path), "does-not-exist.npy");
    expect_bad(path, NPY_ERR_IO, "cannot open", "missing file", __LINE__);
    expect_bad(npy_dir, NPY_ERR_IO, "not a regular file", "directory", __LINE__);
}

/* The writer refuses what it cannot describe; msg names the file. */
static void test_write_errors(void)
{
    char msg[256];
    size_t dims[2] = {SIZE_MAX, 2};
    float x = 0.0f;
    FILE* f = tmpfile();
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(npy_write_stream(f, "w.npy", NPY_FLOAT32, 2, dims, &x, msg, sizeof(msg)) ==
              NPY_ERR_FORMAT);
    CU_ASSERT(strstr(msg, "w.npy") != NULL);
    CU_ASSERT(npy_write_stream(f, "w.npy", NPY_FLOAT32, 9, dims, &x, msg, sizeof(msg)) ==
              NPY_ERR_FORMAT);
    fclose(f);

    npy_array a;
    memset(&a, 0, sizeof(a));
    a.ndim = 1;
    a.dims[0] = 1;
    a.count = 1;
    a.data = &x;
    char path[1024];
    npy_path(path, sizeof(path), "no-such-dir/out.npy");
    CU_ASSERT(npy_write(path, &a, msg, sizeof(msg)) == NPY_ERR_IO);
    CU_ASSERT(strstr(msg, "cannot create") != NULL);
    /* msg may be NULL when msg_size is 0. */
    CU_ASSERT(npy_write(path, &a, NULL, 0) == NPY_ERR_IO);
    npy_array_free(NULL);
}

void test_register_npy(void)
{
    CU_pSuite s = CU_add_suite("npy", npy_suite_init, npy_suite_clean);
    CU_add_test(s, "round trip f4/f8/f2/u2/i8, 1-D to 8-D", test_round_trip_all_ranks);
    CU_add_test(s, "dtype table", test_dtypes);
    CU_add_test(s, "f2, u2 and i8 values, file and stream", test_read_half_and_labels);
    CU_add_test(s, "header variants, v2.0 and v3.0", test_read_variants);
    CU_add_test(s, "v2.0 values", test_read_v2_values);
    CU_add_test(s, "empty array", test_read_empty);
    CU_add_test(s, "malformed files", test_bad_files);
    CU_add_test(s, "size_t overflow", test_count_overflow);
    CU_add_test(s, "short and missing files", test_short_and_missing);
    CU_add_test(s, "writer errors", test_write_errors);
}
