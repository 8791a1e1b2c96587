/* test_context.c - suites "context_cpu" and "context_opencl": creation, environment, queries. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_suites.h"
#include "test_util.h"

/* ---- the environment: saved and restored around each test that sets it -- */

static char* saved_backend;
static char* saved_device;
static int saved_backend_set;
static int saved_device_set;

static char* dup_or_null(const char* s)
{
    if (s == NULL)
        return NULL;
    char* d = malloc(strlen(s) + 1);
    if (d != NULL)
        strcpy(d, s);
    return d;
}

/* Clears CLSOFTMAX_BACKEND and CLSOFTMAX_DEVICE so the caller's shell cannot steer the tests. */
static void env_save(void)
{
    const char* b = getenv("CLSOFTMAX_BACKEND");
    const char* d = getenv("CLSOFTMAX_DEVICE");
    saved_backend_set = b != NULL;
    saved_device_set = d != NULL;
    saved_backend = dup_or_null(b);
    saved_device = dup_or_null(d);
    unsetenv("CLSOFTMAX_BACKEND");
    unsetenv("CLSOFTMAX_DEVICE");
}

static void env_restore(void)
{
    if (saved_backend_set && saved_backend != NULL)
        setenv("CLSOFTMAX_BACKEND", saved_backend, 1);
    else
        unsetenv("CLSOFTMAX_BACKEND");
    if (saved_device_set && saved_device != NULL)
        setenv("CLSOFTMAX_DEVICE", saved_device, 1);
    else
        unsetenv("CLSOFTMAX_DEVICE");
    free(saved_backend);
    free(saved_device);
    saved_backend = saved_device = NULL;
}

static int suite_init(void)
{
    env_save();
    return 0;
}

static int suite_cleanup(void)
{
    env_restore();
    return 0;
}

static clsoftmax_status create_with(clsoftmax_backend backend, const char* selector,
                                    int use_environment, clsoftmax_context** ctx)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = backend;
    config.device_selector = selector;
    config.use_environment = use_environment;
    *ctx = (clsoftmax_context*)&config; /* must become NULL on failure */
    clsoftmax_status st = clsoftmax_context_create(&config, ctx);
    if (st != CLSOFTMAX_SUCCESS)
        TEST_CHECK(*ctx == NULL, "failed create left *context = %p", (void*)*ctx);
    return st;
}

/* A 2 x 9 softmax through ctx, checked against the reference. */
static void check_computes(clsoftmax_context* ctx, const char* what)
{
    const size_t dims[2] = {2, 9};
    float in[18], out[18];
    long double ref[18];
    test_fill(in, CLSOFTMAX_FLOAT32, 18, -3.0, 3.0, 3);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    test_reference(&desc, in, ref);
    TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
    TEST_COMPARE_DTYPE(out, CLSOFTMAX_FLOAT32, ref, 18, what);
}

static void check_cpu_queries(clsoftmax_context* ctx)
{
    CU_ASSERT_EQUAL(clsoftmax_context_backend(ctx), CLSOFTMAX_BACKEND_CPU);
    const char* name = clsoftmax_context_device_name(ctx);
    TEST_CHECK(name != NULL && test_contains(name, "CPU"), "CPU device name \"%s\"",
               name ? name : "(null)");
    CU_ASSERT_PTR_NULL(clsoftmax_context_cl_context(ctx));
    CU_ASSERT_PTR_NULL(clsoftmax_context_cl_device(ctx));
    CU_ASSERT_PTR_NULL(clsoftmax_context_cl_queue(ctx));
    CU_ASSERT(clsoftmax_context_supports_float64(ctx));
    CU_ASSERT_PTR_NOT_NULL(clsoftmax_context_last_error(ctx));
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_last_error(ctx), "");
    CU_ASSERT_EQUAL(clsoftmax_context_last_cl_error(ctx), CL_SUCCESS);
}

/* ---- context_cpu -------------------------------------------------------- */

static void test_cpu_explicit(void)
{
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_CPU, NULL, 0, &ctx), CLSOFTMAX_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    check_cpu_queries(ctx);
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_fallback_reason(ctx), "");
    CU_ASSERT_STRING_EQUAL(clsoftmax_last_create_error(), "");
    check_computes(ctx, "explicit CPU");
    clsoftmax_context_free(ctx);
}

static void test_null_config(void)
{
    /* Defaults: the (cleared) environment says nothing, so AUTO: OpenCL where a device exists. */
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(clsoftmax_context_create(NULL, &ctx), CLSOFTMAX_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    clsoftmax_backend b = clsoftmax_context_backend(ctx);
    if (test_opencl_available()) {
        TEST_CHECK(b == CLSOFTMAX_BACKEND_OPENCL, "AUTO with a device chose backend %d (%s)",
                   (int)b, clsoftmax_context_fallback_reason(ctx));
        CU_ASSERT_STRING_EQUAL(clsoftmax_context_fallback_reason(ctx), "");
    } else {
        CU_ASSERT_EQUAL(b, CLSOFTMAX_BACKEND_CPU);
        /* Falling back must say why. */
        CU_ASSERT(clsoftmax_context_fallback_reason(ctx)[0] != '\0');
    }
    check_computes(ctx, "NULL config");
    clsoftmax_context_free(ctx);

    /* clsoftmax_config_init's defaults. */
    clsoftmax_config config;
    memset(&config, 0x5a, sizeof config);
    clsoftmax_config_init(&config);
    CU_ASSERT_EQUAL(config.struct_size, sizeof config);
    CU_ASSERT_EQUAL(config.backend, CLSOFTMAX_BACKEND_AUTO);
    CU_ASSERT_PTR_NULL(config.device_selector);
    CU_ASSERT_EQUAL(config.cpu_threads, 0);
    CU_ASSERT_EQUAL(config.use_environment, 1);
}

static void test_env_cpu(void)
{
    /* The environment overrides an explicit OPENCL request when use_environment is set. */
    setenv("CLSOFTMAX_BACKEND", "cpu", 1);
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, NULL, 1, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        check_cpu_queries(ctx);
        check_computes(ctx, "CLSOFTMAX_BACKEND=cpu");
        clsoftmax_context_free(ctx);
    }
    /* NULL config reads the environment too. */
    ctx = NULL;
    TEST_STATUS(clsoftmax_context_create(NULL, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        CU_ASSERT_EQUAL(clsoftmax_context_backend(ctx), CLSOFTMAX_BACKEND_CPU);
        clsoftmax_context_free(ctx);
    }
    unsetenv("CLSOFTMAX_BACKEND");
}

static void test_env_bogus(void)
{
    setenv("CLSOFTMAX_BACKEND", "bogus", 1);
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_CPU, NULL, 1, &ctx), CLSOFTMAX_INVALID_ARGUMENT);
    const char* msg = clsoftmax_last_create_error();
    TEST_CHECK(test_contains(msg, "bogus") && test_contains(msg, "CLSOFTMAX_BACKEND"),
               "CLSOFTMAX_BACKEND=bogus: message \"%s\"", msg);
    /* Without use_environment the variable is ignored. */
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_CPU, NULL, 0, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        CU_ASSERT_EQUAL(clsoftmax_context_backend(ctx), CLSOFTMAX_BACKEND_CPU);
        /* A success clears the previous failure's text. */
        CU_ASSERT_STRING_EQUAL(clsoftmax_last_create_error(), "");
        clsoftmax_context_free(ctx);
    }
    unsetenv("CLSOFTMAX_BACKEND");
}

static void test_bad_config(void)
{
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(clsoftmax_context_create(NULL, NULL), CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT(clsoftmax_last_create_error()[0] != '\0');

    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.struct_size = 0;
    ctx = (clsoftmax_context*)&config;
    TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(ctx);
    TEST_CHECK(test_contains(clsoftmax_last_create_error(), "struct_size"),
               "struct_size 0: message \"%s\"", clsoftmax_last_create_error());

    clsoftmax_config_init(&config);
    config.backend = (clsoftmax_backend)7;
    config.use_environment = 0;
    TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(ctx);
    TEST_CHECK(test_contains(clsoftmax_last_create_error(), "backend"), "backend 7: message \"%s\"",
               clsoftmax_last_create_error());
}

static void test_free_null(void)
{
    clsoftmax_context_free(NULL);
    CU_PASS("clsoftmax_context_free(NULL) returned");
}

static void test_cpu_threads(void)
{
    /* More threads than rows, one thread, an odd count: the rows split must cover every row. */
    const unsigned threads[] = {1, 3, 16};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; ++t) {
        clsoftmax_config config;
        clsoftmax_config_init(&config);
        config.backend = CLSOFTMAX_BACKEND_CPU;
        config.use_environment = 0;
        config.cpu_threads = threads[t];
        clsoftmax_context* ctx = NULL;
        TEST_STATUS(clsoftmax_context_create(&config, &ctx), CLSOFTMAX_SUCCESS);
        if (ctx == NULL)
            continue;
        char num[32];
        snprintf(num, sizeof num, "%u", threads[t]);
        TEST_CHECK(test_contains(clsoftmax_context_device_name(ctx), num),
                   "%u threads: device name \"%s\"", threads[t],
                   clsoftmax_context_device_name(ctx));
        /* Large enough that the library really splits them (small jobs run on one thread). */
        const size_t shapes[][3] = {{7, 13, 1}, {37, 2001, 1}, {1, 50, 3001}, {3, 7, 11001}};
        for (size_t s = 0; s < 4; ++s) {
            clsoftmax_desc desc;
            clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT64, 3, shapes[s], 1);
            const size_t count = test_count(3, shapes[s]);
            double* in = malloc(count * sizeof *in);
            double* out = malloc(count * sizeof *out);
            long double* ref = malloc(count * sizeof *ref);
            CU_ASSERT_FATAL(in && out && ref);
            test_fill(in, CLSOFTMAX_FLOAT64, count, -5.0, 5.0, s);
            test_reference(&desc, in, ref);
            TEST_STATUS(clsoftmax_softmax_host(ctx, &desc, in, out), CLSOFTMAX_SUCCESS);
            char what[64];
            snprintf(what, sizeof what, "cpu_threads %u shape %zu", threads[t], s);
            TEST_COMPARE_DTYPE(out, CLSOFTMAX_FLOAT64, ref, count, what);
            free(ref);
            free(out);
            free(in);
        }
        clsoftmax_context_free(ctx);
    }
    /* 0 means the online cores: at least one. */
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT(test_contains(clsoftmax_context_device_name(ctx), "thread"));
    clsoftmax_context_free(ctx);
}

/* ---- context_opencl ----------------------------------------------------- */

/* The first device in enumeration order (what index 0 selects) and its names. */
static cl_device_id first_device(char* name, size_t name_size, char* platform_name,
                                 size_t platform_size)
{
    cl_platform_id platforms[8];
    cl_uint np = 0;
    if (clGetPlatformIDs(8, platforms, &np) != CL_SUCCESS)
        return NULL;
    for (cl_uint p = 0; p < np && p < 8; ++p) {
        cl_device_id dev = NULL;
        cl_uint nd = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 1, &dev, &nd) == CL_SUCCESS &&
            nd > 0) {
            clGetDeviceInfo(dev, CL_DEVICE_NAME, name_size, name, NULL);
            clGetPlatformInfo(platforms[p], CL_PLATFORM_NAME, platform_size, platform_name, NULL);
            return dev;
        }
    }
    return NULL;
}

static void check_opencl_queries(clsoftmax_context* ctx, const char* dev_name)
{
    CU_ASSERT_EQUAL(clsoftmax_context_backend(ctx), CLSOFTMAX_BACKEND_OPENCL);
    const char* name = clsoftmax_context_device_name(ctx);
    TEST_CHECK(test_contains(name, dev_name), "device name \"%s\" lacks \"%s\"", name, dev_name);
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_fallback_reason(ctx), "");
    cl_context cl = clsoftmax_context_cl_context(ctx);
    cl_device_id dev = clsoftmax_context_cl_device(ctx);
    cl_command_queue q = clsoftmax_context_cl_queue(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    cl_context qc = NULL;
    cl_device_id qd = NULL;
    clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL);
    clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof qd, &qd, NULL);
    CU_ASSERT(qc == cl);
    CU_ASSERT(qd == dev);
    /* float64 support agrees with the device's extensions. */
    char ext[4096] = "";
    clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, sizeof ext - 1, ext, NULL);
    int fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    TEST_CHECK(!clsoftmax_context_supports_float64(ctx) == !fp64,
               "supports_float64 %d, cl_khr_fp64 %s", clsoftmax_context_supports_float64(ctx),
               fp64 ? "present" : "absent");
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_last_error(ctx), "");
    CU_ASSERT_EQUAL(clsoftmax_context_last_cl_error(ctx), CL_SUCCESS);
}

static void test_auto_picks_opencl(void)
{
    char name[256] = "", platform[256] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(first_device(name, sizeof name, platform, sizeof platform));
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_AUTO, NULL, 0, &ctx), CLSOFTMAX_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT_EQUAL(clsoftmax_context_backend(ctx), CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_fallback_reason(ctx), "");
    check_computes(ctx, "AUTO");
    clsoftmax_context_free(ctx);

    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, NULL, 0, &ctx), CLSOFTMAX_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    check_opencl_queries(ctx, "");
    clsoftmax_context_free(ctx);
}

static void test_env_device(void)
{
    char name[256] = "", platform[256] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(first_device(name, sizeof name, platform, sizeof platform));

    /* CLSOFTMAX_DEVICE=0: the first device of the first platform with one. */
    setenv("CLSOFTMAX_DEVICE", "0", 1);
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, NULL, 1, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        check_opencl_queries(ctx, name);
        check_computes(ctx, "CLSOFTMAX_DEVICE=0");
        clsoftmax_context_free(ctx);
    }

    /* A substring of the device name, in another case (matching is case-insensitive). */
    char sub[16] = "";
    size_t len = strlen(name);
    size_t start = len > 8 ? 2 : 0;
    size_t n = len - start < 6 ? len - start : 6;
    for (size_t i = 0; i < n; ++i) {
        char c = name[start + i];
        sub[i] = (c >= 'a' && c <= 'z')   ? (char)(c - 32)
                 : (c >= 'A' && c <= 'Z') ? (char)(c + 32)
                                          : c;
    }
    sub[n] = '\0';
    setenv("CLSOFTMAX_DEVICE", sub, 1);
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, NULL, 1, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        TEST_CHECK(test_contains(clsoftmax_context_device_name(ctx), sub),
                   "CLSOFTMAX_DEVICE=%s picked \"%s\"", sub, clsoftmax_context_device_name(ctx));
        clsoftmax_context_free(ctx);
    }
    /* PoCL's CPU device is "pthread-..." (CI runs there). */
    if (test_contains(name, "pthread")) {
        setenv("CLSOFTMAX_DEVICE", "pthread", 1);
        TEST_STATUS(create_with(CLSOFTMAX_BACKEND_AUTO, NULL, 1, &ctx), CLSOFTMAX_SUCCESS);
        if (ctx != NULL) {
            check_opencl_queries(ctx, "pthread");
            clsoftmax_context_free(ctx);
        }
    }
    /* The platform's name selects too ("platform / device"). */
    if (platform[0] != '\0') {
        setenv("CLSOFTMAX_DEVICE", platform, 1);
        TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, NULL, 1, &ctx), CLSOFTMAX_SUCCESS);
        if (ctx != NULL) {
            CU_ASSERT(test_contains(clsoftmax_context_device_name(ctx), platform));
            clsoftmax_context_free(ctx);
        }
    }

    /* No such device: NO_DEVICE naming the selector, for OPENCL and for an explicit AUTO. */
    setenv("CLSOFTMAX_DEVICE", "no-such-device-xyz", 1);
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, NULL, 1, &ctx), CLSOFTMAX_NO_DEVICE);
    const char* msg = clsoftmax_last_create_error();
    TEST_CHECK(test_contains(msg, "no-such-device-xyz"), "non-matching selector: message \"%s\"",
               msg);
    /* The environment's selector overrides the config's. */
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, "0", 1, &ctx), CLSOFTMAX_NO_DEVICE);
    unsetenv("CLSOFTMAX_DEVICE");
    /* ... and is ignored without use_environment. */
    setenv("CLSOFTMAX_DEVICE", "no-such-device-xyz", 1);
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, NULL, 0, &ctx), CLSOFTMAX_SUCCESS);
    clsoftmax_context_free(ctx);
    unsetenv("CLSOFTMAX_DEVICE");

    /* CLSOFTMAX_BACKEND=opencl in the environment. */
    setenv("CLSOFTMAX_BACKEND", "opencl", 1);
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_CPU, NULL, 1, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        CU_ASSERT_EQUAL(clsoftmax_context_backend(ctx), CLSOFTMAX_BACKEND_OPENCL);
        clsoftmax_context_free(ctx);
    }
    unsetenv("CLSOFTMAX_BACKEND");
}

static void test_selector_config(void)
{
    char name[256] = "", platform[256] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(first_device(name, sizeof name, platform, sizeof platform));
    clsoftmax_context* ctx = NULL;
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, "999", 0, &ctx), CLSOFTMAX_NO_DEVICE);
    TEST_CHECK(test_contains(clsoftmax_last_create_error(), "999"), "selector 999: message \"%s\"",
               clsoftmax_last_create_error());
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, name, 0, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        check_opencl_queries(ctx, name);
        clsoftmax_context_free(ctx);
    }
    TEST_STATUS(create_with(CLSOFTMAX_BACKEND_OPENCL, "0", 0, &ctx), CLSOFTMAX_SUCCESS);
    if (ctx != NULL) {
        check_opencl_queries(ctx, name);
        clsoftmax_context_free(ctx);
    }
}

/* Counts devices, checking indices run 0, 1, 2, ... and names are filled in. */
static int visit_count(const clsoftmax_device_info* info, void* user)
{
    size_t* seen = user;
    TEST_CHECK(info->index == *seen, "device index %zu, expected %zu", info->index, *seen);
    TEST_CHECK(info->device != NULL && info->device_name != NULL && info->device_name[0] != '\0',
               "device %zu without a name", info->index);
    ++*seen;
    return 0;
}

static int visit_stop(const clsoftmax_device_info* info, void* user)
{
    (void)info;
    ++*(size_t*)user;
    return 1;
}

static void test_enumerate(void)
{
    cl_uint total = 0;
    cl_platform_id platforms[8];
    cl_uint np = 0;
    clGetPlatformIDs(8, platforms, &np);
    for (cl_uint p = 0; p < np && p < 8; ++p) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) == CL_SUCCESS)
            total += nd;
    }
    size_t seen = 0;
    TEST_STATUS(clsoftmax_devices_enumerate(visit_count, &seen), CLSOFTMAX_SUCCESS);
    TEST_CHECK(seen == total, "enumerated %zu devices, OpenCL lists %u", seen, total);
    seen = 0;
    TEST_STATUS(clsoftmax_devices_enumerate(visit_stop, &seen), CLSOFTMAX_SUCCESS);
    CU_ASSERT_EQUAL(seen, 1);
    TEST_STATUS(clsoftmax_devices_enumerate(NULL, NULL), CLSOFTMAX_INVALID_ARGUMENT);
}

void test_register_context(void)
{
    CU_pSuite cpu = CU_add_suite("context_cpu", suite_init, suite_cleanup);
    if (cpu != NULL) {
        CU_add_test(cpu, "explicit CPU backend", test_cpu_explicit);
        CU_add_test(cpu, "NULL config and defaults", test_null_config);
        CU_add_test(cpu, "CLSOFTMAX_BACKEND=cpu", test_env_cpu);
        CU_add_test(cpu, "CLSOFTMAX_BACKEND=bogus", test_env_bogus);
        CU_add_test(cpu, "bad configs", test_bad_config);
        CU_add_test(cpu, "free(NULL)", test_free_null);
        CU_add_test(cpu, "cpu_threads", test_cpu_threads);
    }
    CU_pSuite ocl = CU_add_suite("context_opencl", suite_init, suite_cleanup);
    if (ocl != NULL) {
        CU_add_test(ocl, "AUTO picks OpenCL", test_auto_picks_opencl);
        CU_add_test(ocl, "CLSOFTMAX_DEVICE", test_env_device);
        CU_add_test(ocl, "device_selector in the config", test_selector_config);
        CU_add_test(ocl, "device enumeration", test_enumerate);
    }
}
