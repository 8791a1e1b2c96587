/* test_disk_cache.c - suites "disk_cache_cpu" and "disk_cache_opencl": program binaries on disk. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "test_suites.h"
#include "test_util.h"

/*
 * Each test points CLSOFTMAX_CACHE_DIR at a fresh folder and reads binary_cache.c's counters
 * in the context (internal.h) to tell a load from a build.
 */
static char g_dir[64];

static int init_dir(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/clsoftmax-cache-test-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return 1;
    setenv("CLSOFTMAX_CACHE_DIR", g_dir, 1);
    unsetenv("CLSOFTMAX_NO_DISK_CACHE");
    return 0;
}

/* Removes every file in the folder, and the folder when remove_dir. */
static void empty_dir(int remove_dir)
{
    DIR* d = opendir(g_dir);
    if (d != NULL) {
        struct dirent* e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
            remove(path);
        }
        closedir(d);
    }
    if (remove_dir)
        rmdir(g_dir);
}

static int cleanup_dir(void)
{
    empty_dir(1);
    unsetenv("CLSOFTMAX_CACHE_DIR");
    unsetenv("CLSOFTMAX_NO_DISK_CACHE");
    return 0;
}

/* Files in the folder; the first one's path in path. */
static int cache_files(char* path, size_t size)
{
    int n = 0;
    DIR* d = opendir(g_dir);
    if (d == NULL)
        return 0;
    struct dirent* e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n++ == 0 && path != NULL)
            snprintf(path, size, "%s/%s", g_dir, e->d_name);
    }
    closedir(d);
    return n;
}

/* A fresh context runs a float32 softmax, checked against the reference; returns the context. */
static clsoftmax_context* run_fresh(clsoftmax_backend backend, const char* what)
{
    clsoftmax_context* ctx = test_context_create(backend);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    const size_t dims[2] = {5, 300};
    float in[1500], out[1500];
    long double ref[1500];
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    test_fill(in, CLSOFTMAX_FLOAT32, 1500, -5.0, 5.0, 77);
    test_reference(&desc, in, ref);
    TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
    TEST_COMPARE_DTYPE(out, CLSOFTMAX_FLOAT32, ref, 1500, what);
    return ctx;
}

static long file_size(const char* path)
{
    FILE* f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Overwrites len bytes at offset (negative: from the end) with a pattern. */
static void scribble(const char* path, long offset, size_t len)
{
    FILE* f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, offset >= 0 ? offset : file_size(path) + offset, SEEK_SET);
    for (size_t i = 0; i < len; i++)
        fputc(0xa5 ^ (int)i, f);
    fclose(f);
}

/* First context writes the file, the second loads it and writes nothing. */
static void test_write_then_load(void)
{
    empty_dir(0);
    clsoftmax_context* a = run_fresh(CLSOFTMAX_BACKEND_OPENCL, "cold");
    TEST_CHECK(a->disk_cache_stores == 1 && a->disk_cache_loads == 0,
               "cold context: %u stores, %u loads", a->disk_cache_stores, a->disk_cache_loads);
    clsoftmax_context_free(a);
    TEST_CHECK(cache_files(NULL, 0) == 1, "%d files after one build", cache_files(NULL, 0));

    clsoftmax_context* b = run_fresh(CLSOFTMAX_BACKEND_OPENCL, "warm");
    TEST_CHECK(b->disk_cache_loads == 1 && b->disk_cache_stores == 0 && b->disk_cache_rejects == 0,
               "warm context: %u loads, %u stores, %u rejects", b->disk_cache_loads,
               b->disk_cache_stores, b->disk_cache_rejects);
    clsoftmax_context_free(b);
    TEST_CHECK(cache_files(NULL, 0) == 1, "%d files after a load", cache_files(NULL, 0));
}

/* A damaged file (in the binary, in the key, cut short) is rebuilt from source and replaced. */
static void test_corrupt_rebuilt(void)
{
    const long where[3] = {-64, 20, 0}; /* binary tail; inside the key; truncated to 0 bytes */
    for (int k = 0; k < 3; k++) {
        empty_dir(0);
        clsoftmax_context_free(run_fresh(CLSOFTMAX_BACKEND_OPENCL, "seed"));
        char path[512];
        CU_ASSERT_FATAL(cache_files(path, sizeof path) == 1);
        long good = file_size(path);
        if (k < 2) {
            scribble(path, where[k], 8);
        } else {
            FILE* f = fopen(path, "wb");
            CU_ASSERT_PTR_NOT_NULL_FATAL(f);
            fclose(f);
        }

        clsoftmax_context* c = run_fresh(CLSOFTMAX_BACKEND_OPENCL, "after corruption");
        TEST_CHECK(c->disk_cache_rejects == 1 && c->disk_cache_stores == 1 &&
                       c->disk_cache_loads == 0,
                   "damage %d: %u rejects, %u stores, %u loads", k, c->disk_cache_rejects,
                   c->disk_cache_stores, c->disk_cache_loads);
        TEST_CHECK(clsoftmax_context_last_error(c)[0] == '\0', "an error was recorded: %s",
                   clsoftmax_context_last_error(c));
        clsoftmax_context_free(c);
        TEST_CHECK(cache_files(path, sizeof path) == 1 && file_size(path) == good,
                   "damage %d: the file was not replaced by a whole one", k);

        clsoftmax_context* d = run_fresh(CLSOFTMAX_BACKEND_OPENCL, "after replacement");
        TEST_CHECK(d->disk_cache_loads == 1, "damage %d: the replaced file did not load", k);
        clsoftmax_context_free(d);
    }
}

/* CLSOFTMAX_NO_DISK_CACHE=1 reads and writes nothing; "0" leaves the cache on. */
static void test_disabled(void)
{
    empty_dir(0);
    setenv("CLSOFTMAX_NO_DISK_CACHE", "1", 1);
    clsoftmax_context* a = run_fresh(CLSOFTMAX_BACKEND_OPENCL, "disabled");
    TEST_CHECK(a->disk_cache_stores == 0 && a->disk_cache_loads == 0,
               "disabled: %u stores, %u loads", a->disk_cache_stores, a->disk_cache_loads);
    clsoftmax_context_free(a);
    TEST_CHECK(cache_files(NULL, 0) == 0, "disabled cache wrote %d files", cache_files(NULL, 0));

    setenv("CLSOFTMAX_NO_DISK_CACHE", "0", 1);
    clsoftmax_context* b = run_fresh(CLSOFTMAX_BACKEND_OPENCL, "enabled by 0");
    TEST_CHECK(b->disk_cache_stores == 1, "CLSOFTMAX_NO_DISK_CACHE=0: %u stores",
               b->disk_cache_stores);
    clsoftmax_context_free(b);
    unsetenv("CLSOFTMAX_NO_DISK_CACHE");
}

/* A cache folder that cannot be created costs nothing but the cache. */
static void test_unwritable(void)
{
    setenv("CLSOFTMAX_CACHE_DIR", "/proc/clsoftmax-no-such-dir/cache", 1);
    clsoftmax_context* a = run_fresh(CLSOFTMAX_BACKEND_OPENCL, "unwritable cache folder");
    TEST_CHECK(a->disk_cache_stores == 0 && a->disk_cache_rejects == 0,
               "unwritable: %u stores, %u rejects", a->disk_cache_stores, a->disk_cache_rejects);
    clsoftmax_context_free(a);
    setenv("CLSOFTMAX_CACHE_DIR", g_dir, 1);
}

/* The CPU backend compiles nothing and writes nothing. */
static void test_cpu_writes_nothing(void)
{
    empty_dir(0);
    clsoftmax_context* a = run_fresh(CLSOFTMAX_BACKEND_CPU, "cpu");
    CU_ASSERT_EQUAL(a->disk_cache_stores + a->disk_cache_loads + a->disk_cache_rejects, 0);
    clsoftmax_context_free(a);
    TEST_CHECK(cache_files(NULL, 0) == 0, "the CPU backend wrote %d files", cache_files(NULL, 0));
}

void test_register_disk_cache(void)
{
    CU_pSuite cpu = CU_add_suite("disk_cache_cpu", init_dir, cleanup_dir);
    CU_add_test(cpu, "the CPU backend writes nothing", test_cpu_writes_nothing);
    CU_pSuite suite = CU_add_suite("disk_cache_opencl", init_dir, cleanup_dir);
    CU_add_test(suite, "first context writes, second loads", test_write_then_load);
    CU_add_test(suite, "corrupt or stale file rebuilt and replaced", test_corrupt_rebuilt);
    CU_add_test(suite, "off with CLSOFTMAX_NO_DISK_CACHE", test_disabled);
    CU_add_test(suite, "unwritable cache folder", test_unwritable);
}
