/* test_params.c - suites "params" and "params_opencl": tuning parameters and forced strategies. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_suites.h"
#include "test_util.h"

/* ---- the environment, saved and restored around each test that changes it ---- */

static const char* const env_names[] = {"CLSOFTMAX_PARAMS", "CLSOFTMAX_PARAMS_DIR",
                                        "CLSOFTMAX_BACKEND", "CLSOFTMAX_DEVICE"};
#define ENV_COUNT (sizeof env_names / sizeof env_names[0])
static char* env_saved[ENV_COUNT];
static int env_was_set[ENV_COUNT];
static char temp_dir[256];

static int suite_init(void)
{
    for (size_t i = 0; i < ENV_COUNT; ++i) {
        const char* v = getenv(env_names[i]);
        env_was_set[i] = v != NULL;
        env_saved[i] = v != NULL ? strdup(v) : NULL;
        unsetenv(env_names[i]);
    }
    /* A parameter folder of our own: the user's tuned files must not steer the tests. */
    snprintf(temp_dir, sizeof temp_dir, "/tmp/clsoftmax_params_XXXXXX");
    if (mkdtemp(temp_dir) == NULL)
        return 1;
    setenv("CLSOFTMAX_PARAMS_DIR", temp_dir, 1);
    return 0;
}

static int suite_cleanup(void)
{
    for (size_t i = 0; i < ENV_COUNT; ++i) {
        if (env_was_set[i] && env_saved[i] != NULL)
            setenv(env_names[i], env_saved[i], 1);
        else
            unsetenv(env_names[i]);
        free(env_saved[i]);
        env_saved[i] = NULL;
    }
    return 0;
}

/* A context on backend that reads the environment and the parameter file (or NULL). */
static clsoftmax_context* create_env(clsoftmax_backend backend, clsoftmax_status* status)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = backend;
    config.use_environment = 1;
    clsoftmax_context* ctx = NULL;
    *status = clsoftmax_context_create(&config, &ctx);
    return ctx;
}

static size_t get(const clsoftmax_context* ctx, clsoftmax_param p)
{
    size_t v = 12345;
    TEST_STATUS(clsoftmax_context_get_param(ctx, p, &v), CLSOFTMAX_SUCCESS);
    return v;
}

/* ---- set / get / validation, on either backend --------------------------- */

static void check_set_get(clsoftmax_context* ctx)
{
    for (int p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p)
        TEST_CHECK(get(ctx, (clsoftmax_param)p) == 0, "parameter %d starts at %zu", p,
                   get(ctx, (clsoftmax_param)p));
    static const struct {
        clsoftmax_param p;
        size_t good;
        size_t bad;
        const char* why;
    } cases[] = {
        {CLSOFTMAX_PARAM_WORK_GROUP_SIZE, 64, 48, "power of two"},
        {CLSOFTMAX_PARAM_VECTOR_WIDTH, 4, 3, "1, 2, 4, 8 or 16"},
        {CLSOFTMAX_PARAM_VECTOR_WIDTH, 16, 32, "1, 2, 4, 8 or 16"},
        {CLSOFTMAX_PARAM_ROWS_PER_GROUP, 32, (size_t)1 << 20, "work-group size"},
        {CLSOFTMAX_PARAM_SHORT_ROW_LIMIT, 256, 257, "at most 256"},
        {CLSOFTMAX_PARAM_SPLIT_ROW_MIN, 2, 1, "at least 2"},
        {CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES, 4096, 4095, "4096"},
        {CLSOFTMAX_PARAM_CPU_THREADS, 1024, 1025, "1024"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        const char* name = clsoftmax_param_name(cases[i].p);
        TEST_STATUS(clsoftmax_context_set_param(ctx, cases[i].p, cases[i].good), CLSOFTMAX_SUCCESS);
        TEST_CHECK(get(ctx, cases[i].p) == cases[i].good, "%s: set %zu, got %zu", name,
                   cases[i].good, get(ctx, cases[i].p));
        /* A bad value: INVALID_ARGUMENT, a message naming the parameter, nothing changed. */
        TEST_STATUS(clsoftmax_context_set_param(ctx, cases[i].p, cases[i].bad),
                    CLSOFTMAX_INVALID_ARGUMENT);
        const char* err = clsoftmax_context_last_error(ctx);
        TEST_CHECK(test_contains(err, name) && test_contains(err, cases[i].why),
                   "%s = %zu: message \"%s\"", name, cases[i].bad, err);
        TEST_CHECK(get(ctx, cases[i].p) == cases[i].good, "%s changed to %zu on error", name,
                   get(ctx, cases[i].p));
        /* 0 gives the choice back to the device. */
        TEST_STATUS(clsoftmax_context_set_param(ctx, cases[i].p, 0), CLSOFTMAX_SUCCESS);
        CU_ASSERT_EQUAL(get(ctx, cases[i].p), 0);
    }
    TEST_STATUS(clsoftmax_context_set_param(ctx, (clsoftmax_param)CLSOFTMAX_PARAM_COUNT, 1),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_context_set_param(ctx, (clsoftmax_param)-1, 1),
                CLSOFTMAX_INVALID_ARGUMENT);
    size_t v = 0;
    TEST_STATUS(clsoftmax_context_get_param(ctx, (clsoftmax_param)CLSOFTMAX_PARAM_COUNT, &v),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_context_get_param(ctx, CLSOFTMAX_PARAM_VECTOR_WIDTH, NULL),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_context_get_param(NULL, CLSOFTMAX_PARAM_VECTOR_WIDTH, &v),
                CLSOFTMAX_INVALID_ARGUMENT);
    TEST_STATUS(clsoftmax_context_set_param(NULL, CLSOFTMAX_PARAM_VECTOR_WIDTH, 4),
                CLSOFTMAX_INVALID_ARGUMENT);
}

static void test_set_get_cpu(void)
{
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_CPU);
    CU_ASSERT_FATAL(ctx != NULL);
    check_set_get(ctx);
    char path[64];
    TEST_STATUS(clsoftmax_context_params_file(ctx, path, sizeof path), CLSOFTMAX_UNSUPPORTED);
    clsoftmax_context_free(ctx);
}

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(clsoftmax_param_name(CLSOFTMAX_PARAM_WORK_GROUP_SIZE),
                           "work_group_size");
    CU_ASSERT_STRING_EQUAL(clsoftmax_param_name(CLSOFTMAX_PARAM_CPU_THREADS), "cpu_threads");
    CU_ASSERT_STRING_EQUAL(clsoftmax_param_name((clsoftmax_param)CLSOFTMAX_PARAM_COUNT), "");
    CU_ASSERT_STRING_EQUAL(clsoftmax_context_params_source(NULL), "");
}

/* CLSOFTMAX_PARAMS at creation, on the CPU backend (no device needed). */
static void test_env_cpu(void)
{
    clsoftmax_status st;
    setenv("CLSOFTMAX_PARAMS", " vector_width = 4 ,cpu_threads=3", 1);
    clsoftmax_context* ctx = create_env(CLSOFTMAX_BACKEND_CPU, &st);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "create: %s", clsoftmax_last_create_error());
    if (ctx != NULL) {
        CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_VECTOR_WIDTH), 4);
        CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_CPU_THREADS), 3);
        CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_WORK_GROUP_SIZE), 0);
        const char* src = clsoftmax_context_params_source(ctx);
        TEST_CHECK(test_contains(src, "CLSOFTMAX_PARAMS"), "source \"%s\"", src);
        clsoftmax_context_free(ctx);
    }
    /* Contexts told to ignore the environment do. */
    clsoftmax_context* plain = test_context_create(CLSOFTMAX_BACKEND_CPU);
    CU_ASSERT_FATAL(plain != NULL);
    CU_ASSERT_EQUAL(get(plain, CLSOFTMAX_PARAM_VECTOR_WIDTH), 0);
    clsoftmax_context_free(plain);

    /* A bad entry fails creation, naming the variable and the reason. */
    static const char* const bad[] = {"vector_width=3", "bogus=1", "vector_width", "cpu_threads=-1",
                                      "vector_width=4,,cpu_threads=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        setenv("CLSOFTMAX_PARAMS", bad[i], 1);
        ctx = create_env(CLSOFTMAX_BACKEND_CPU, &st);
        TEST_CHECK(st == CLSOFTMAX_INVALID_ARGUMENT && ctx == NULL, "CLSOFTMAX_PARAMS='%s' gave %s",
                   bad[i], clsoftmax_status_name(st));
        TEST_CHECK(test_contains(clsoftmax_last_create_error(), "CLSOFTMAX_PARAMS"),
                   "'%s': message \"%s\"", bad[i], clsoftmax_last_create_error());
        clsoftmax_context_free(ctx);
    }
    unsetenv("CLSOFTMAX_PARAMS");
}

/* ---- OpenCL: validation against the device, the parameter file ------------ */

static void test_set_get_opencl(void)
{
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_FATAL(ctx != NULL);
    check_set_get(ctx);
    /* Above the device's work-group size. */
    size_t max_wg = 0;
    clGetDeviceInfo(clsoftmax_context_cl_device(ctx), CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg,
                    &max_wg, NULL);
    size_t above = 1;
    while (above <= max_wg)
        above *= 2;
    TEST_STATUS(clsoftmax_context_set_param(ctx, CLSOFTMAX_PARAM_WORK_GROUP_SIZE, above),
                CLSOFTMAX_INVALID_ARGUMENT);
    clsoftmax_context_free(ctx);
}

static int write_text(const char* path, const char* text)
{
    FILE* f = fopen(path, "w");
    if (f == NULL)
        return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

static void test_file_opencl(void)
{
    clsoftmax_status st;
    char path[1024];
    clsoftmax_context* ctx = create_env(CLSOFTMAX_BACKEND_OPENCL, &st);
    CU_ASSERT_FATAL(ctx != NULL);
    TEST_STATUS(clsoftmax_context_params_file(ctx, path, sizeof path), CLSOFTMAX_SUCCESS);
    TEST_CHECK(strncmp(path, temp_dir, strlen(temp_dir)) == 0 && test_contains(path, ".params"),
               "parameter file %s not in %s", path, temp_dir);
    const char* src = clsoftmax_context_params_source(ctx);
    TEST_CHECK(test_contains(src, "defaults") && test_contains(src, "no parameter file"),
               "without a file: \"%s\"", src);
    char small[8];
    TEST_STATUS(clsoftmax_context_params_file(ctx, small, sizeof small),
                CLSOFTMAX_INVALID_ARGUMENT);
    clsoftmax_context_free(ctx);

    /* A good file is loaded at creation. */
    CU_ASSERT_FATAL(write_text(path, "# clsoftmax parameters\n\nvector_width=4\n  rows_per_group = "
                                     "32\nsplit_row_min=100000\n"));
    ctx = create_env(CLSOFTMAX_BACKEND_OPENCL, &st);
    CU_ASSERT_FATAL(ctx != NULL);
    CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_VECTOR_WIDTH), 4);
    CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_ROWS_PER_GROUP), 32);
    CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_SPLIT_ROW_MIN), 100000);
    src = clsoftmax_context_params_source(ctx);
    TEST_CHECK(strncmp(src, "file ", 5) == 0 && test_contains(src, path), "source \"%s\"", src);
    clsoftmax_context_free(ctx);

    /* The environment comes after the file. */
    setenv("CLSOFTMAX_PARAMS", "vector_width=2", 1);
    ctx = create_env(CLSOFTMAX_BACKEND_OPENCL, &st);
    CU_ASSERT_FATAL(ctx != NULL);
    CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_VECTOR_WIDTH), 2);
    CU_ASSERT_EQUAL(get(ctx, CLSOFTMAX_PARAM_ROWS_PER_GROUP), 32);
    src = clsoftmax_context_params_source(ctx);
    TEST_CHECK(test_contains(src, "file") && test_contains(src, "then CLSOFTMAX_PARAMS"),
               "source \"%s\"", src);
    clsoftmax_context_free(ctx);
    unsetenv("CLSOFTMAX_PARAMS");

    /* A malformed file is ignored as a whole, the reason recorded. */
    static const struct {
        const char* text;
        const char* why;
    } bad[] = {
        {"vector_width=4\nvector_width=3\n", "line 2"},
        {"# header\nrows_per_group=32\nwhat is this\n", "line 3"},
        {"nonsense_param=4\n", "unknown parameter"},
        {"short_row_limit=12x\n", "short_row_limit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        CU_ASSERT_FATAL(write_text(path, bad[i].text));
        ctx = create_env(CLSOFTMAX_BACKEND_OPENCL, &st);
        TEST_CHECK(st == CLSOFTMAX_SUCCESS && ctx != NULL, "malformed file %zu failed creation", i);
        if (ctx == NULL)
            continue;
        for (int p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p)
            TEST_CHECK(get(ctx, (clsoftmax_param)p) == 0, "file %zu: parameter %d = %zu", i, p,
                       get(ctx, (clsoftmax_param)p));
        src = clsoftmax_context_params_source(ctx);
        TEST_CHECK(test_contains(src, "ignored") && test_contains(src, bad[i].why),
                   "file %zu: source \"%s\"", i, src);
        clsoftmax_context_free(ctx);
    }
    unlink(path);
    rmdir(temp_dir);
}

/* ---- every strategy forced, against the reference ------------------------- */

/* Runs one shape through ctx (host path) and compares with the reference. */
static void check_forced(clsoftmax_context* ctx, const char* label, clsoftmax_dtype dtype,
                         clsoftmax_op op, size_t ndim, const size_t* dims, int axis, int specials)
{
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, ndim, dims, axis);
    desc.op = op;
    desc.scale = 0.75;
    const size_t count = test_count(ndim, dims);
    const size_t es = test_dtype_size(dtype);
    void* in = malloc(count * es);
    void* out = malloc(count * es);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(in != NULL && out != NULL && ref != NULL);
    test_fill(in, dtype, count, -30, 30, 77 + count);
    if (specials && count >= 64) {
        /* The first rows (last axis) get NaN, +inf, all -inf, and -inf beside finite values. */
        size_t n = dims[ndim - 1];
        test_set(in, dtype, 1, NAN);
        if (count >= 2 * n)
            test_set(in, dtype, n + n / 2, INFINITY);
        if (count >= 4 * n) {
            for (size_t k = 0; k < n; ++k)
                test_set(in, dtype, 2 * n + k, -INFINITY);
            test_set(in, dtype, 3 * n, -INFINITY);
            test_set(in, dtype, 4 * n - 1, -INFINITY);
        }
    }
    test_reference(&desc, in, ref);
    char what[160];
    snprintf(what, sizeof what, "%s: %s %s %zu-D axis %d", label,
             dtype == CLSOFTMAX_FLOAT64 ? "f64" : "f32", op ? "log_softmax" : "softmax", ndim,
             axis);
    clsoftmax_status st = clsoftmax_softmax_host(ctx, &desc, in, out);
    TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s: %s (%s)", what, clsoftmax_status_name(st),
               clsoftmax_context_last_error(ctx));
    if (st == CLSOFTMAX_SUCCESS)
        TEST_COMPARE_DTYPE(out, dtype, ref, count, what);
    /* In place as well. */
    memcpy(out, in, count * es);
    st = clsoftmax_softmax_host(ctx, &desc, out, out);
    if (st == CLSOFTMAX_SUCCESS)
        TEST_COMPARE_DTYPE(out, dtype, ref, count, what);
    free(ref);
    free(out);
    free(in);
}

typedef struct forced_case {
    const char* label;
    const char* params; /* CLSOFTMAX_PARAMS syntax, applied with set_param */
    size_t ndim;
    size_t dims[3];
    int axis;
} forced_case;

/* Parses "name=value,..." into set_param calls (the names as clsoftmax_param_name gives). */
static void apply_params(clsoftmax_context* ctx, const char* text)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char* tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
        char* eq = strchr(tok, '=');
        CU_ASSERT_FATAL(eq != NULL);
        *eq = '\0';
        int found = 0;
        for (int p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p) {
            if (strcmp(clsoftmax_param_name((clsoftmax_param)p), tok) == 0) {
                TEST_STATUS(
                    clsoftmax_context_set_param(ctx, (clsoftmax_param)p, strtoul(eq + 1, NULL, 10)),
                    CLSOFTMAX_SUCCESS);
                found = 1;
            }
        }
        TEST_CHECK(found, "no parameter %s", tok);
    }
}

static void test_strategies_opencl(void)
{
    /* Which strategy each runs is asserted by the plan suite for a PoCL-like device. */
    static const forced_case cases[] = {
        {"ROW_PRIVATE one vector", "", 2, {300, 8}, 1},
        {"ROW_PRIVATE with a tail", "", 2, {70, 13}, 1},
        {"ROW_PRIVATE vw 16", "vector_width=16", 2, {90, 40}, 1},
        {"ROW_ITEM", "short_row_limit=1", 2, {40, 1037}, 1},
        {"ROW_ITEM vw 1", "short_row_limit=1,vector_width=1", 2, {9, 301}, 1},
        {"ROW_LOCAL", "rows_per_group=1", 2, {20, 517}, 1},
        {"ROW_MULTIPASS", "rows_per_group=1,work_group_size=64", 2, {2, 140001}, 1},
        {"ROW_SPLIT", "split_row_min=1000", 2, {3, 20011}, 1},
        {"ROW_SPLIT groups", "split_row_min=1000,work_group_size=16", 2, {5, 9000}, 1},
        {"STRIDED", "rows_per_group=1", 3, {3, 37, 20}, 1},
        {"STRIDED_ITEM vectors", "", 3, {3, 37, 24}, 1},
        {"STRIDED_ITEM columns", "", 3, {2, 50, 13}, 1},
        {"STRIDED_ITEM axis 0", "", 2, {300, 40}, 0},
        {"STRIDED_ITEM wide", "", 3, {2, 19, 256}, 1},
        {"STRIDED_ITEM wide axis 0", "", 2, {150, 384}, 0},
        {"STRIDED_ITEM wide online", "", 3, {1, 4099, 128}, 1},
        {"ROW_ITEM online", "", 2, {2, 1048579}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
        CU_ASSERT_FATAL(ctx != NULL);
        apply_params(ctx, cases[i].params);
        for (int dt = 0; dt < 2; ++dt) {
            clsoftmax_dtype dtype = dt ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32;
            if (dt && !clsoftmax_context_supports_float64(ctx))
                continue;
            for (int op = 0; op < 2; ++op)
                check_forced(ctx, cases[i].label, dtype, (clsoftmax_op)op, cases[i].ndim,
                             cases[i].dims, cases[i].axis, cases[i].axis == 1);
        }
        clsoftmax_context_free(ctx);
    }
}

/*
 * 4 x 4194304 float32: a plain float running sum is off by 3.6e-3 here. Every output within
 * relative 1e-5 of a long double reference and every row sum within 1e-5 of 1, split across
 * work-groups and as one work-item per row (two passes).
 */
static void test_long_rows_accuracy_opencl(void)
{
    const size_t rows = 4;
    const size_t n = 4194304;
    float* in = malloc(rows * n * sizeof *in);
    float* out = malloc(rows * n * sizeof *out);
    CU_ASSERT_FATAL(in != NULL && out != NULL);
    test_fill(in, CLSOFTMAX_FLOAT32, rows * n, -4, 4, 4194304);
    const size_t dims[2] = {rows, n};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 1);

    for (int split = 0; split < 2; ++split) {
        clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
        CU_ASSERT_FATAL(ctx != NULL);
        if (split)
            TEST_STATUS(clsoftmax_context_set_param(ctx, CLSOFTMAX_PARAM_SPLIT_ROW_MIN, 1 << 20),
                        CLSOFTMAX_SUCCESS);
        else
            TEST_STATUS(clsoftmax_context_set_param(ctx, CLSOFTMAX_PARAM_SPLIT_ROW_MIN, n + 1),
                        CLSOFTMAX_SUCCESS);
        memset(out, 0, rows * n * sizeof *out);
        clsoftmax_status st = clsoftmax_softmax_host(ctx, &desc, in, out);
        TEST_CHECK(st == CLSOFTMAX_SUCCESS, "%s", clsoftmax_context_last_error(ctx));
        for (size_t r = 0; st == CLSOFTMAX_SUCCESS && r < rows; ++r) {
            const float* x = in + r * n;
            const float* y = out + r * n;
            long double m = -INFINITY;
            for (size_t k = 0; k < n; ++k)
                m = x[k] > m ? x[k] : m;
            long double sum = 0;
            for (size_t k = 0; k < n; ++k)
                sum += expl((long double)x[k] - m);
            double worst = 0;
            size_t worst_k = 0;
            long double ysum = 0;
            for (size_t k = 0; k < n; ++k) {
                long double want = expl((long double)x[k] - m) / sum;
                double rel = (double)fabsl(((long double)y[k] - want) / want);
                if (rel > worst) {
                    worst = rel;
                    worst_k = k;
                }
                ysum += y[k];
            }
            TEST_CHECK(worst <= 1e-5, "%s row %zu: relative error %.3g at %zu",
                       split ? "split" : "item", r, worst, worst_k);
            TEST_CHECK(fabsl(ysum - 1) <= 1e-5L, "%s row %zu: sum - 1 = %.3g",
                       split ? "split" : "item", r, (double)(ysum - 1));
        }
        clsoftmax_context_free(ctx);
    }
    free(out);
    free(in);
}

/*
 * ROW_SPLIT on device buffers: offsets, a wait list, the output event (the second kernel's),
 * two launches back to back sharing the context's scratch.
 */
static void test_split_buffer_opencl(void)
{
    clsoftmax_context* ctx = test_context_create(CLSOFTMAX_BACKEND_OPENCL);
    CU_ASSERT_FATAL(ctx != NULL);
    TEST_STATUS(clsoftmax_context_set_param(ctx, CLSOFTMAX_PARAM_SPLIT_ROW_MIN, 1000),
                CLSOFTMAX_SUCCESS);
    const size_t dims[2] = {2, 30001};
    const size_t count = dims[0] * dims[1];
    const size_t in_off = 5;
    const size_t out_off = 11;
    float* host = malloc((count + in_off) * sizeof *host);
    float* got = malloc((count + out_off) * sizeof *got);
    long double* ref = malloc(count * sizeof *ref);
    CU_ASSERT_FATAL(host != NULL && got != NULL && ref != NULL);
    test_fill(host, CLSOFTMAX_FLOAT32, count + in_off, -20, 20, 99);
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, 1);
    test_reference(&desc, host + in_off, ref);

    cl_int err = CL_SUCCESS;
    cl_context cl = clsoftmax_context_cl_context(ctx);
    cl_command_queue q = clsoftmax_context_cl_queue(ctx);
    cl_mem in = clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                               (count + in_off) * sizeof *host, host, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_mem out = clCreateBuffer(cl, CL_MEM_READ_WRITE, (count + out_off) * sizeof *got, NULL, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_event user = clCreateUserEvent(cl, &err);
    CU_ASSERT_FATAL(err == CL_SUCCESS);
    cl_event first = NULL;
    cl_event second = NULL;
    TEST_STATUS(clsoftmax_softmax_buffer(ctx, &desc, in, in_off, out, out_off, q, 1, &user, &first),
                CLSOFTMAX_SUCCESS);
    /* The second launch (in place on the output) must wait for the first's scratch. */
    desc.op = CLSOFTMAX_OP_LOG_SOFTMAX;
    TEST_STATUS(clsoftmax_softmax_buffer(ctx, &desc, in, in_off, in, in_off, q, 1, &first, &second),
                CLSOFTMAX_SUCCESS);
    cl_int state = 0;
    clGetEventInfo(first, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof state, &state, NULL);
    TEST_CHECK(state != CL_COMPLETE, "the split ran before its wait list completed");
    clSetUserEventStatus(user, CL_COMPLETE);
    CU_ASSERT(clWaitForEvents(1, &second) == CL_SUCCESS);
    CU_ASSERT(clEnqueueReadBuffer(q, out, CL_TRUE, 0, (count + out_off) * sizeof *got, got, 0, NULL,
                                  NULL) == CL_SUCCESS);
    TEST_COMPARE_DTYPE(got + out_off, CLSOFTMAX_FLOAT32, ref, count, "split, buffers, offsets");
    desc.op = CLSOFTMAX_OP_LOG_SOFTMAX;
    test_reference(&desc, host + in_off, ref);
    CU_ASSERT(clEnqueueReadBuffer(q, in, CL_TRUE, 0, (count + in_off) * sizeof *host, got, 0, NULL,
                                  NULL) == CL_SUCCESS);
    TEST_COMPARE_DTYPE(got + in_off, CLSOFTMAX_FLOAT32, ref, count, "split log, in place");
    TEST_CHECK(memcmp(got, host, in_off * sizeof *host) == 0, "wrote before the offset");
    clReleaseEvent(first);
    clReleaseEvent(second);
    clReleaseEvent(user);
    clReleaseMemObject(in);
    clReleaseMemObject(out);
    clsoftmax_context_free(ctx);
    free(ref);
    free(got);
    free(host);
}

/* `clsoftmax tune --quick` writes the device's parameter file, which the next context loads. */
static void test_tune_opencl(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/clsoftmax_tune_XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/made/by/tune", dir);
    setenv("CLSOFTMAX_PARAMS_DIR", sub, 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' tune --quick > '%s/stdout' 2> '%s/stderr'", CLSOFTMAX_TOOL_PATH,
             dir, dir);
    int rc = system(cmd);
    TEST_CHECK(rc == 0, "%s exited with %d", cmd, rc);

    clsoftmax_status st;
    clsoftmax_context* ctx = create_env(CLSOFTMAX_BACKEND_OPENCL, &st);
    CU_ASSERT_FATAL(ctx != NULL);
    char path[1024];
    TEST_STATUS(clsoftmax_context_params_file(ctx, path, sizeof path), CLSOFTMAX_SUCCESS);
    const char* src = clsoftmax_context_params_source(ctx);
    TEST_CHECK(strncmp(src, "file ", 5) == 0 && test_contains(src, path),
               "after tune, source \"%s\"", src);
    FILE* f = fopen(path, "r");
    TEST_CHECK(f != NULL, "no file %s", path);
    if (f != NULL) {
        char line[256] = "";
        TEST_CHECK(fgets(line, sizeof line, f) != NULL && strncmp(line, "# clsoftmax", 11) == 0,
                   "header \"%s\"", line);
        fclose(f);
    }
    /* The progress line went to stderr. */
    snprintf(path, sizeof path, "%s/stderr", dir);
    f = fopen(path, "r");
    if (f != NULL) {
        char text[4096] = "";
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = '\0';
        TEST_CHECK(test_contains(text, "done"), "stderr \"%s\"", text);
        fclose(f);
    }
    clsoftmax_context_free(ctx);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    TEST_CHECK(system(cmd) == 0, "%s", cmd);
    setenv("CLSOFTMAX_PARAMS_DIR", temp_dir, 1);
}

void test_register_params(void)
{
    CU_pSuite suite = CU_add_suite("params", suite_init, suite_cleanup);
    if (suite != NULL) {
        CU_add_test(suite, "names", test_names);
        CU_add_test(suite, "set, get and validation on the CPU backend", test_set_get_cpu);
        CU_add_test(suite, "CLSOFTMAX_PARAMS", test_env_cpu);
    }
    suite = CU_add_suite("params_opencl", suite_init, suite_cleanup);
    if (suite != NULL) {
        CU_add_test(suite, "set, get and validation on OpenCL", test_set_get_opencl);
        CU_add_test(suite, "the parameter file", test_file_opencl);
        CU_add_test(suite, "every strategy forced", test_strategies_opencl);
        CU_add_test(suite, "4 x 4194304 float32 accuracy", test_long_rows_accuracy_opencl);
        CU_add_test(suite, "ROW_SPLIT on buffers", test_split_buffer_opencl);
        CU_add_test(suite, "clsoftmax tune --quick", test_tune_opencl);
    }
}
