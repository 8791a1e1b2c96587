/* test_build.c - suite "build_opencl": kernel build failures, their messages, and recovery. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_suites.h"
#include "test_util.h"

#ifndef CLSOFTMAX_SOURCE_DIR
#error "CLSOFTMAX_SOURCE_DIR (the repository root) must be defined"
#endif

static const char* const kernel_files[] = {"common.cl", "softmax_row.cl", "softmax_strided.cl"};
#define KERNEL_FILE_COUNT (sizeof kernel_files / sizeof kernel_files[0])

static char scratch[512];

static int copy_file(const char* from, const char* to)
{
    FILE* in = fopen(from, "rb");
    FILE* out = fopen(to, "wb");
    int ok = in != NULL && out != NULL;
    char buf[4096];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        ok = fclose(out) == 0 && ok;
    return ok ? 0 : -1;
}

static int build_init(void)
{
    unsetenv("CLSOFTMAX_KERNEL_DIR");
    const char* tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/clsoftmax-build-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(scratch) == NULL)
        return -1;
    /* A copy of the real kernels whose common.cl gets one error appended. */
    char from[1024], to[1024];
    for (size_t i = 0; i < KERNEL_FILE_COUNT; ++i) {
        snprintf(from, sizeof from, "%s/kernels/%s", CLSOFTMAX_SOURCE_DIR, kernel_files[i]);
        snprintf(to, sizeof to, "%s/%s", scratch, kernel_files[i]);
        if (copy_file(from, to) != 0)
            return -1;
    }
    snprintf(to, sizeof to, "%s/common.cl", scratch);
    FILE* f = fopen(to, "ab");
    if (f == NULL)
        return -1;
    fputs("\nREAL clsoftmax_broken_on_purpose(void) { return undeclared_identifier_xyz; }\n", f);
    return fclose(f);
}

static int build_clean(void)
{
    unsetenv("CLSOFTMAX_KERNEL_DIR");
    char path[1024];
    for (size_t i = 0; i < KERNEL_FILE_COUNT; ++i) {
        snprintf(path, sizeof path, "%s/%s", scratch, kernel_files[i]);
        unlink(path);
    }
    return rmdir(scratch);
}

static const size_t dims[2] = {3, 5};

/* Runs the host entry point on a fresh 3 x 5 tensor, checking the output either way. */
static clsoftmax_status run_small(clsoftmax_context* ctx, int expect_success)
{
    float in[15], out[15], sentinel[15];
    test_fill(in, CLSOFTMAX_FLOAT32, 15, -3.0, 3.0, 42);
    test_fill_sentinel(out, sizeof out);
    memcpy(sentinel, out, sizeof out);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    clsoftmax_status st = clsoftmax_softmax_host(ctx, &desc, in, out);
    if (expect_success) {
        long double ref[15];
        test_reference(&desc, in, ref);
        TEST_COMPARE_DTYPE(out, CLSOFTMAX_FLOAT32, ref, 15, "after the build");
    } else {
        TEST_CHECK(memcmp(out, sentinel, sizeof out) == 0, "output written by a failed call");
    }
    return st;
}

static void test_build_failure_message(void)
{
    setenv("CLSOFTMAX_KERNEL_DIR", scratch, 1);
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    TEST_STATUS(run_small(ctx, 0), CLSOFTMAX_BUILD_FAILURE);
    const char* msg = clsoftmax_context_last_error(ctx);
    /* The failing call, its error name, the options and the head of the build log. */
    TEST_CHECK(strstr(msg, "clBuildProgram") != NULL, "no failing call in \"%s\"", msg);
    TEST_CHECK(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") != NULL, "no error name in \"%s\"", msg);
    TEST_CHECK(strstr(msg, "-cl-std=CL1.2") != NULL, "no build options in \"%s\"", msg);
    TEST_CHECK(strstr(msg, "undeclared_identifier_xyz") != NULL, "no build log in \"%s\"", msg);
    CU_ASSERT_EQUAL(clsoftmax_context_last_cl_error(ctx), CL_BUILD_PROGRAM_FAILURE);

    /* A failed build is not cached: with the embedded sources the same context works. */
    unsetenv("CLSOFTMAX_KERNEL_DIR");
    TEST_STATUS(run_small(ctx, 1), CLSOFTMAX_SUCCESS);
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_last_error(ctx), "");
    CU_ASSERT_EQUAL(clsoftmax_context_last_cl_error(ctx), CL_SUCCESS);
    clsoftmax_context_free(ctx);
}

static void test_missing_kernel_dir(void)
{
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-folder", scratch);
    setenv("CLSOFTMAX_KERNEL_DIR", missing, 1);
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    TEST_STATUS(run_small(ctx, 0), CLSOFTMAX_BUILD_FAILURE);
    const char* msg = clsoftmax_context_last_error(ctx);
    TEST_CHECK(strstr(msg, "no-such-folder") != NULL, "the folder is not named in \"%s\"", msg);
    unsetenv("CLSOFTMAX_KERNEL_DIR");
    clsoftmax_context_free(ctx);
}

static void test_kernel_dir_override(void)
{
    /* The repository's own kernels through the override give the same results. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/kernels", CLSOFTMAX_SOURCE_DIR);
    setenv("CLSOFTMAX_KERNEL_DIR", dir, 1);
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    TEST_STATUS(run_small(ctx, 1), CLSOFTMAX_SUCCESS);
    unsetenv("CLSOFTMAX_KERNEL_DIR");
    clsoftmax_context_free(ctx);
}

void test_register_build(void)
{
    CU_pSuite suite = CU_add_suite("build_opencl", build_init, build_clean);
    if (suite == NULL)
        return;
    CU_add_test(suite, "build failure: call, error name, options, log; recovery",
                test_build_failure_message);
    CU_add_test(suite, "CLSOFTMAX_KERNEL_DIR naming a missing folder", test_missing_kernel_dir);
    CU_add_test(suite, "CLSOFTMAX_KERNEL_DIR with the real kernels", test_kernel_dir_override);
}
