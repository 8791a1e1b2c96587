/* test_tool.c - suites "tool" and "tool_opencl": the clsoftmax tool run as a child process. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clsoftmax.h"
#include "npy.h"
#include "test_files.h"
#include "test_suites.h"
#include "test_util.h"

#ifndef CLSOFTMAX_TOOL_PATH
#error "CLSOFTMAX_TOOL_PATH (the built tool's absolute path) must be defined"
#endif

extern char** environ;

/* tool_dir holds the captured stdout/stderr; work_dir only the .npy files of a test. */
static char tool_dir[512];
static char work_dir[600];
/* --backend for the round trips: "cpu" in suite "tool", "opencl" in "tool_opencl". */
static const char* tool_backend = "cpu";
/* Whether the backend computes float64 (an OpenCL device may lack cl_khr_fp64). */
static int tool_fp64 = 1;
static char tool_out[16384];
static char tool_err[16384];

/* ---- the scratch directory ------------------------------------------------ */

/* Entries in work_dir; *tmp_left is set when a temporary output file was left behind. */
static size_t work_file_count(int* tmp_left)
{
    size_t n = 0;
    *tmp_left = 0;
    DIR* d = opendir(work_dir);
    if (d == NULL)
        return 0;
    struct dirent* e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        ++n;
        if (strstr(e->d_name, ".tmp") != NULL)
            *tmp_left = 1;
    }
    closedir(d);
    return n;
}

static void work_path(char* buf, size_t size, const char* name)
{
    test_path_join(buf, size, work_dir, name);
}

static int file_exists(const char* path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int suite_init_common(void)
{
    if (test_dir_make_temp(tool_dir, sizeof(tool_dir), "tool") != 0)
        return -1;
    snprintf(work_dir, sizeof(work_dir), "%s/work", tool_dir);
    return mkdir(work_dir, 0700);
}

static int tool_suite_init(void)
{
    tool_backend = "cpu";
    tool_fp64 = 1;
    return suite_init_common();
}

static int tool_opencl_suite_init(void)
{
    tool_backend = "opencl";
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = CLSOFTMAX_BACKEND_OPENCL;
    config.use_environment = 0;
    clsoftmax_context* ctx = NULL;
    if (clsoftmax_context_create(&config, &ctx) != CLSOFTMAX_SUCCESS)
        return -1;
    tool_fp64 = clsoftmax_context_supports_float64(ctx);
    clsoftmax_context_free(ctx);
    return suite_init_common();
}

static int tool_suite_clean(void) { return test_dir_remove(tool_dir); }

/* ---- running the tool ----------------------------------------------------- */

/* buf = the text of path, truncated to size; "" when it cannot be opened. */
static void read_text(const char* path, char* buf, size_t size)
{
    buf[0] = '\0';
    FILE* f = fopen(path, "rb");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/*
 * Runs the tool with args (NULL-terminated, after the program name) and
 * returns its exit status (-1 if a signal ended it). The child's environment
 * is ours without CLSOFTMAX_BACKEND and CLSOFTMAX_DEVICE, plus env_extra
 * ("NAME=value", may be NULL), so the caller's shell cannot change results.
 * stdout and stderr land in tool_out and tool_err.
 */
static int run_tool_argv(const char* env_extra, const char* const* args)
{
    char out_path[700];
    char err_path[700];
    snprintf(out_path, sizeof(out_path), "%s/stdout.txt", tool_dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr.txt", tool_dir);

    size_t argc = 0;
    while (args[argc] != NULL)
        ++argc;
    char** argv = calloc(argc + 2, sizeof(char*));
    size_t envc = 0;
    while (environ[envc] != NULL)
        ++envc;
    char** envp = calloc(envc + 2, sizeof(char*));
    if (argv == NULL || envp == NULL) {
        free(argv);
        free(envp);
        return -2;
    }
    argv[0] = (char*)CLSOFTMAX_TOOL_PATH;
    for (size_t i = 0; i < argc; ++i)
        argv[i + 1] = (char*)args[i];
    size_t k = 0;
    for (size_t i = 0; i < envc; ++i)
        if (strncmp(environ[i], "CLSOFTMAX_BACKEND=", 18) != 0 &&
            strncmp(environ[i], "CLSOFTMAX_DEVICE=", 17) != 0)
            envp[k++] = environ[i];
    if (env_extra != NULL)
        envp[k++] = (char*)env_extra;

    fflush(stdout);
    fflush(stderr);
    /* Between fork and exec only async-signal-safe calls: everything is prepared above. */
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        close(fo);
        close(fe);
        execve(CLSOFTMAX_TOOL_PATH, argv, envp);
        _exit(127);
    }
    free(argv);
    free(envp);
    if (pid < 0)
        return -2;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -2;
    }
    read_text(out_path, tool_out, sizeof(tool_out));
    read_text(err_path, tool_err, sizeof(tool_err));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define MAX_ARGS 24

/* run_tool(env_extra, "run", "--axis", "0", in, out, NULL) */
static int run_tool(const char* env_extra, ...)
{
    const char* args[MAX_ARGS + 1];
    size_t n = 0;
    va_list ap;
    va_start(ap, env_extra);
    const char* a;
    while ((a = va_arg(ap, const char*)) != NULL && n < MAX_ARGS)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return run_tool_argv(env_extra, args);
}

/* ---- arrays and the reference --------------------------------------------- */

static size_t product(size_t ndim, const size_t* dims)
{
    size_t n = 1;
    for (size_t d = 0; d < ndim; ++d)
        n *= dims[d];
    return n;
}

static double get_value(const npy_array* a, size_t i)
{
    return a->dtype == NPY_FLOAT32 ? (double)((const float*)a->data)[i]
                                   : ((const double*)a->data)[i];
}

/* Writes path holding values (converted to dtype). */
static int write_input(const char* path, npy_dtype dtype, size_t ndim, const size_t* dims,
                       const double* values)
{
    npy_array a;
    memset(&a, 0, sizeof(a));
    a.dtype = dtype;
    a.ndim = ndim;
    memcpy(a.dims, dims, ndim * sizeof(size_t));
    a.count = product(ndim, dims);
    a.data = malloc(a.count > 0 ? a.count * npy_dtype_size(dtype) : 1);
    if (a.data == NULL)
        return -1;
    for (size_t i = 0; i < a.count; ++i) {
        if (dtype == NPY_FLOAT32)
            ((float*)a.data)[i] = (float)values[i];
        else
            ((double*)a.data)[i] = values[i];
    }
    char msg[512];
    npy_result r = npy_write(path, &a, msg, sizeof(msg));
    npy_array_free(&a);
    return r == NPY_OK ? 0 : -1;
}

/*
 * Starts a test's files from nothing: empties work_dir, then writes work_dir/name holding
 * values (converted to dtype) and puts its path in path (size bytes).
 */
static void fresh_input(const char* name, npy_dtype dtype, size_t ndim, const size_t* dims,
                        const double* values, char* path, size_t size)
{
    test_dir_empty(work_dir);
    work_path(path, size, name);
    CU_ASSERT_FATAL(write_input(path, dtype, ndim, dims, values) == 0);
}

/* fresh_input of in.npy = [1, 2, 3] (float32); out gets the path of out.npy beside it. */
static void small_input(char* in, char* out, size_t size)
{
    static const double x[3] = {1, 2, 3};
    static const size_t dims[1] = {3};
    fresh_input("in.npy", NPY_FLOAT32, 1, dims, x, in, size);
    work_path(out, size, "out.npy");
}

/* Softmax over axis of x (as stored: float32 inputs already rounded) in double. */
static void reference(const double* x, size_t ndim, const size_t* dims, int axis, int log_op,
                      double scale, double* y)
{
    size_t ax = (size_t)(axis < 0 ? axis + (int)ndim : axis);
    size_t outer = product(ax, dims);
    size_t n = dims[ax];
    size_t inner = product(ndim - ax - 1, dims + ax + 1);
    for (size_t o = 0; o < outer; ++o) {
        for (size_t i = 0; i < inner; ++i) {
            double m = -INFINITY;
            for (size_t k = 0; k < n; ++k)
                m = fmax(m, scale * x[(o * n + k) * inner + i]);
            double sum = 0.0;
            for (size_t k = 0; k < n; ++k)
                sum += exp(scale * x[(o * n + k) * inner + i] - m);
            for (size_t k = 0; k < n; ++k) {
                double t = scale * x[(o * n + k) * inner + i] - m;
                y[(o * n + k) * inner + i] = log_op ? t - log(sum) : exp(t) / sum;
            }
        }
    }
}

/* Deterministic inputs in [-6, 6), rounded to the dtype: the reference sees what the tool reads. */
static void make_values(double* x, size_t count, npy_dtype dtype, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < count; ++i) {
        s = s * 1664525u + 1013904223u;
        double v = ((double)(s >> 8) / 16777216.0) * 12.0 - 6.0;
        x[i] = dtype == NPY_FLOAT32 ? (double)(float)v : v;
    }
}

/* ---- round trips ---------------------------------------------------------- */

typedef struct trip {
    npy_dtype dtype;
    size_t ndim;
    size_t dims[4];
    int axis;
    int give_axis; /* 0: rely on the default axis -1 */
    int log_op;
    const char* scale; /* NULL: default 1 */
    int options_last;  /* options after the file names */
    int equals_form;   /* --axis=A instead of --axis A */
} trip;

static void check_trip(const trip* t, unsigned line)
{
    size_t count = product(t->ndim, t->dims);
    double* x = malloc(count * sizeof(double));
    double* ref = malloc(count * sizeof(double));
    if (x == NULL || ref == NULL) {
        free(x);
        free(ref);
        CU_FAIL("out of memory");
        return;
    }
    make_values(x, count, t->dtype, (unsigned)(count + t->ndim * 7 + (size_t)(t->axis + 9)));
    char in[1024];
    char out[1024];
    fresh_input("in.npy", t->dtype, t->ndim, t->dims, x, in, sizeof(in));
    work_path(out, sizeof(out), "out.npy");
    double scale = t->scale != NULL ? strtod(t->scale, NULL) : 1.0;
    reference(x, t->ndim, t->dims, t->axis, t->log_op, scale, ref);

    char axis_text[32];
    char axis_eq[48];
    snprintf(axis_text, sizeof(axis_text), "%d", t->axis);
    snprintf(axis_eq, sizeof(axis_eq), "--axis=%d", t->axis);

    const char* args[MAX_ARGS + 1];
    size_t n = 0;
    args[n++] = "run";
    if (t->options_last) {
        args[n++] = in;
        args[n++] = out;
    }
    args[n++] = "--backend";
    args[n++] = tool_backend;
    if (t->give_axis && t->equals_form) {
        args[n++] = axis_eq;
    } else if (t->give_axis) {
        args[n++] = "--axis";
        args[n++] = axis_text;
    }
    if (t->log_op)
        args[n++] = "--log";
    if (t->scale != NULL) {
        args[n++] = "--scale";
        args[n++] = t->scale;
    }
    if (!t->options_last) {
        args[n++] = in;
        args[n++] = out;
    }
    args[n] = NULL;

    char what[256];
    snprintf(what, sizeof(what), "%s %s %zu-D axis %d%s scale %s", tool_backend,
             npy_dtype_descr(t->dtype), t->ndim, t->axis, t->log_op ? " log" : "",
             t->scale != NULL ? t->scale : "1");
    int rc = run_tool_argv(NULL, args);

    if (t->dtype == NPY_FLOAT64 && !tool_fp64) {
        /* A device without cl_khr_fp64 must refuse clearly, not return garbage. */
        TEST_CHECK_AT(line, rc == 1, "%s: exit %d, want 1 (no fp64): %s", what, rc, tool_err);
        TEST_CHECK_AT(line, strstr(tool_err, "UNSUPPORTED") != NULL, "%s: stderr: %s", what,
                      tool_err);
        TEST_CHECK_AT(line, !file_exists(out), "%s: output written despite the failure", what);
        free(x);
        free(ref);
        return;
    }
    TEST_CHECK_AT(line, rc == 0, "%s: exit %d: %s", what, rc, tool_err);
    npy_array y;
    char msg[512];
    npy_result r = npy_read(out, &y, msg, sizeof(msg));
    TEST_CHECK_AT(line, r == NPY_OK, "%s: output unreadable: %s", what, msg);
    if (r == NPY_OK) {
        TEST_CHECK_AT(line,
                      y.dtype == t->dtype && y.ndim == t->ndim &&
                          memcmp(y.dims, t->dims, t->ndim * sizeof(size_t)) == 0,
                      "%s: output dtype or shape differs", what);
        double rtol = t->dtype == NPY_FLOAT32 ? 1e-5 : 1e-12;
        double atol = t->dtype == NPY_FLOAT32 ? 1e-6 : 1e-14;
        size_t bad = 0;
        size_t first_bad = 0;
        for (size_t i = 0; i < count && i < y.count; ++i) {
            double d = fabs(get_value(&y, i) - ref[i]);
            if (!(d <= atol + rtol * fabs(ref[i])) && bad++ == 0)
                first_bad = i;
        }
        TEST_CHECK_AT(line, bad == 0, "%s: %zu elements off, first [%zu] %.9g vs %.9g", what, bad,
                      first_bad, bad ? get_value(&y, first_bad) : 0.0, bad ? ref[first_bad] : 0.0);
    }
    npy_array_free(&y);
    int tmp_left;
    TEST_CHECK_AT(line, work_file_count(&tmp_left) == 2 && !tmp_left,
                  "%s: stray files left in the work directory", what);
    free(x);
    free(ref);
}

static void test_round_trips(void)
{
    static const trip trips[] = {
        {NPY_FLOAT32, 2, {5, 7}, -1, 0, 0, NULL, 0, 0},
        {NPY_FLOAT32, 2, {5, 7}, 0, 1, 0, NULL, 0, 0},
        {NPY_FLOAT32, 2, {5, 7}, 1, 1, 1, NULL, 1, 0},
        {NPY_FLOAT32, 2, {5, 7}, -1, 1, 0, "-0.5", 0, 1},
        {NPY_FLOAT32, 2, {4, 300}, -1, 1, 1, "-0.5", 1, 1},
        {NPY_FLOAT32, 1, {1000}, 0, 1, 0, "2.5", 0, 0},
        {NPY_FLOAT64, 2, {5, 7}, 0, 1, 0, NULL, 0, 0},
        {NPY_FLOAT64, 2, {5, 7}, -1, 1, 1, "-0.5", 1, 0},
        {NPY_FLOAT32, 3, {3, 4, 5}, 0, 1, 0, NULL, 0, 0},
        {NPY_FLOAT32, 3, {3, 4, 5}, 1, 1, 1, NULL, 1, 1},
        {NPY_FLOAT32, 3, {3, 4, 5}, -1, 1, 0, "-0.5", 0, 0},
        {NPY_FLOAT64, 3, {3, 4, 5}, -2, 1, 1, "0.75", 0, 0},
        {NPY_FLOAT32, 4, {2, 3, 4, 5}, 2, 1, 0, NULL, 1, 0},
    };
    for (size_t i = 0; i < sizeof(trips) / sizeof(trips[0]); ++i)
        check_trip(&trips[i], __LINE__);
}

/* Issue 2's worked example, both axes, float64 and float32, to 1e-7. */
static void test_worked_example(void)
{
    static const double x[6] = {-1.30022268, 0.59127472,  1.21384177,
                                0.1981082,   -0.83686108, -1.54785864};
    static const double axis0[6] = {0.1826746, 0.80661068, 0.94057075,
                                    0.8173254, 0.19338932, 0.05942925};
    static const double axis1[6] = {0.0500392,  0.33172426, 0.61823654,
                                    0.65371718, 0.23222472, 0.1140581};
    static const size_t dims[2] = {2, 3};
    char in[1024];
    char out[1024];
    work_path(out, sizeof(out), "example-out.npy");
    for (int dt = 0; dt < 2; ++dt) {
        npy_dtype dtype = dt == 0 ? NPY_FLOAT64 : NPY_FLOAT32;
        if (dtype == NPY_FLOAT64 && !tool_fp64)
            continue;
        for (int a = 0; a < 2; ++a) {
            fresh_input("example.npy", dtype, 2, dims, x, in, sizeof(in));
            const double* want = a == 0 ? axis0 : axis1;
            int rc = run_tool(NULL, "run", "--backend", tool_backend, "--axis", a == 0 ? "0" : "-1",
                              in, out, NULL);
            TEST_CHECK(rc == 0, "example %s axis %s: exit %d: %s", npy_dtype_descr(dtype),
                       a == 0 ? "0" : "-1", rc, tool_err);
            npy_array y;
            char msg[512];
            if (npy_read(out, &y, msg, sizeof(msg)) != NPY_OK) {
                TEST_CHECK(0, "example output: %s", msg);
                continue;
            }
            for (size_t i = 0; i < 6; ++i)
                TEST_CHECK(fabs(get_value(&y, i) - want[i]) <= 1e-7,
                           "example %s axis %s [%zu]: %.9f, want %.9f", npy_dtype_descr(dtype),
                           a == 0 ? "0" : "-1", i, get_value(&y, i), want[i]);
            npy_array_free(&y);
        }
    }
}

/* The output replaces the input when both are the same file; the mode is a plain fopen's. */
static void test_in_place_and_mode(void)
{
    static const double x[4] = {1.0, 2.0, 3.0, 4.0};
    static const size_t dims[1] = {4};
    char path[1024];
    fresh_input("same.npy", NPY_FLOAT32, 1, dims, x, path, sizeof(path));
    int rc = run_tool(NULL, "run", "--backend", tool_backend, path, path, NULL);
    TEST_CHECK(rc == 0, "in place: exit %d: %s", rc, tool_err);
    npy_array y;
    char msg[512];
    if (npy_read(path, &y, msg, sizeof(msg)) == NPY_OK) {
        double ref[4];
        reference(x, 1, dims, 0, 0, 1.0, ref);
        for (size_t i = 0; i < 4; ++i)
            TEST_CHECK(fabs(get_value(&y, i) - ref[i]) <= 1e-6, "in place [%zu]", i);
        npy_array_free(&y);
    } else {
        TEST_CHECK(0, "in place: %s", msg);
    }
    mode_t mask = umask(0);
    umask(mask);
    struct stat st;
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    TEST_CHECK((st.st_mode & 0777) == (0666 & ~mask), "output mode %o, want %o",
               (unsigned)(st.st_mode & 0777), (unsigned)(0666 & ~mask));
}

/* ---- malformed files ------------------------------------------------------ */

/* Every malformed file: exit 2, a message naming the file, no output, an old output intact. */
static void test_malformed_files(void)
{
    char in[1024];
    char out[1024];
    work_path(in, sizeof(in), "bad.npy");
    work_path(out, sizeof(out), "out.npy");
    static const char precious[] = "an older result that must survive";
    for (size_t c = 0; c < test_bad_npy_count; ++c) {
        const test_bad_npy* b = &test_bad_npy_cases[c];
        for (int existing = 0; existing < 2; ++existing) {
            test_dir_empty(work_dir);
            CU_ASSERT_FATAL(test_write_bad_npy(in, b) == 0);
            if (existing)
                CU_ASSERT_FATAL(test_write_bytes(out, precious, strlen(precious)) == 0);
            int rc = run_tool(NULL, "run", "--backend", "cpu", in, out, NULL);
            TEST_CHECK(rc == 2, "%s: exit %d, want 2", b->name, rc);
            TEST_CHECK(strstr(tool_err, "bad.npy") != NULL && strstr(tool_err, b->needle) != NULL,
                       "%s: stderr '%s' should name bad.npy and mention '%s'", b->name, tool_err,
                       b->needle);
            int tmp_left;
            size_t files = work_file_count(&tmp_left);
            TEST_CHECK(files == (size_t)(1 + existing) && !tmp_left,
                       "%s: %zu files in the work directory", b->name, files);
            if (existing) {
                char got[128];
                read_text(out, got, sizeof(got));
                TEST_CHECK(strcmp(got, precious) == 0, "%s: the existing output was changed",
                           b->name);
            } else {
                TEST_CHECK(!file_exists(out), "%s: an output file appeared", b->name);
            }
        }
    }
}

/* ---- bad options ---------------------------------------------------------- */

/* Runs `run` with opts around a good 2x3 input; expects want_rc, needle on stderr, no output. */
static void expect_run_fails(int want_rc, const char* needle, const char* const* opts,
                             const char* in_name, const char* out_name, unsigned line)
{
    static const double x[6] = {1, 2, 3, 4, 5, 6};
    static const size_t dims[2] = {2, 3};
    char in[1024];
    char out[1024];
    fresh_input("good.npy", NPY_FLOAT32, 2, dims, x, in, sizeof(in));
    work_path(in, sizeof(in), in_name);
    work_path(out, sizeof(out), out_name);
    const char* args[MAX_ARGS + 1];
    size_t n = 0;
    args[n++] = "run";
    for (size_t i = 0; opts[i] != NULL; ++i)
        args[n++] = opts[i];
    args[n++] = in;
    args[n++] = out;
    args[n] = NULL;
    char what[256] = "";
    for (size_t i = 0; opts[i] != NULL; ++i) {
        strncat(what, opts[i], sizeof(what) - strlen(what) - 2);
        strcat(what, " ");
    }
    int rc = run_tool_argv(NULL, args);
    TEST_CHECK_AT(line, rc == want_rc, "[%s]: exit %d, want %d: %s", what, rc, want_rc, tool_err);
    TEST_CHECK_AT(line, strstr(tool_err, needle) != NULL, "[%s]: stderr '%s' lacks '%s'", what,
                  tool_err, needle);
    int tmp_left;
    size_t files = work_file_count(&tmp_left);
    TEST_CHECK_AT(line, files == 1 && !tmp_left, "[%s]: %zu files in the work directory", what,
                  files);
}

static void test_bad_options(void)
{
    static const char* const axis5[] = {"--backend", "cpu", "--axis", "5", NULL};
    static const char* const axis_neg3[] = {"--backend", "cpu", "--axis", "-3", NULL};
    static const char* const axis_text[] = {"--axis", "x", NULL};
    static const char* const axis_frac[] = {"--axis", "1.5", NULL};
    static const char* const axis_huge[] = {"--axis", "99999999999", NULL};
    static const char* const scale_nan[] = {"--scale", "nan", NULL};
    static const char* const scale_inf[] = {"--scale", "-inf", NULL};
    static const char* const scale_big[] = {"--scale", "1e999", NULL};
    static const char* const scale_junk[] = {"--scale", "2x", NULL};
    static const char* const scale_empty[] = {"--scale=", NULL};
    static const char* const backend_bogus[] = {"--backend", "bogus", NULL};
    static const char* const unknown[] = {"--frobnicate", NULL};
    static const char* const log_value[] = {"--log=1", NULL};
    static const char* const none[] = {NULL};

    expect_run_fails(2, "axis 5", axis5, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "INVALID_AXIS", axis_neg3, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "not an integer", axis_text, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "not an integer", axis_frac, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "not an integer", axis_huge, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "finite", scale_nan, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "finite", scale_inf, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "finite", scale_big, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "finite", scale_junk, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "finite", scale_empty, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "bogus", backend_bogus, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "--frobnicate", unknown, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "--log", log_value, "good.npy", "out.npy", __LINE__);
    expect_run_fails(2, "cannot open", none, "missing.npy", "out.npy", __LINE__);
    expect_run_fails(2, "temporary file", none, "good.npy", "no-such-dir/out.npy", __LINE__);

    /* A missing option value, too few and too many file names. */
    char in[1024];
    char out[1024];
    work_path(in, sizeof(in), "good.npy");
    work_path(out, sizeof(out), "out.npy");
    int rc = run_tool(NULL, "run", in, out, "--axis", NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "needs a value") != NULL, "--axis at the end: %d %s", rc,
               tool_err);
    rc = run_tool(NULL, "run", in, NULL);
    TEST_CHECK(rc == 2 && tool_err[0] != '\0', "one file name: %d", rc);
    rc = run_tool(NULL, "run", in, out, out, NULL);
    TEST_CHECK(rc == 2 && tool_err[0] != '\0', "three file names: %d", rc);
    TEST_CHECK(!file_exists(out), "an output file appeared");

    /* The output path is a directory. */
    rc = run_tool(NULL, "run", "--backend", "cpu", in, work_dir, NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "directory") != NULL, "output a directory: %d %s", rc,
               tool_err);

    /* An empty tensor: the library's INVALID_SHAPE, reported as bad input. */
    static const size_t empty_dims[2] = {0, 3};
    fresh_input("empty.npy", NPY_FLOAT32, 2, empty_dims, NULL, in, sizeof(in));
    rc = run_tool(NULL, "run", "--backend", "cpu", in, out, NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "INVALID_SHAPE") != NULL, "empty tensor: %d %s", rc,
               tool_err);
    TEST_CHECK(!file_exists(out), "empty tensor: an output file appeared");
}

/* A failure inside the library (here: no such device) is exit 1 with the status name. */
static void test_library_error(void)
{
    char in[1024];
    char out[1024];
    small_input(in, out, sizeof(in));
    int rc = run_tool(NULL, "run", "--backend", "opencl", "--device", "no-such-device-xyzzy", in,
                      out, NULL);
    TEST_CHECK(rc == 1, "no such device: exit %d, want 1: %s", rc, tool_err);
    TEST_CHECK(strstr(tool_err, "cannot create a context") != NULL, "stderr: %s", tool_err);
    int tmp_left;
    TEST_CHECK(work_file_count(&tmp_left) == 1 && !tmp_left, "files left after a library error");
}

/* --backend and --device turn the environment off; without them it chooses. */
static void test_environment(void)
{
    char in[1024];
    char out[1024];
    small_input(in, out, sizeof(in));
    int rc = run_tool("CLSOFTMAX_BACKEND=bogus", "run", "--backend", "cpu", in, out, NULL);
    TEST_CHECK(rc == 0, "--backend cpu must override CLSOFTMAX_BACKEND=bogus: %d %s", rc, tool_err);
    rc = run_tool("CLSOFTMAX_BACKEND=cpu", "run", in, out, NULL);
    TEST_CHECK(rc == 0, "CLSOFTMAX_BACKEND=cpu: %d %s", rc, tool_err);
    rc = run_tool("CLSOFTMAX_BACKEND=cpu", "devices", NULL);
    TEST_CHECK(rc == 0 && strstr(tool_out, "auto picks: CPU fallback") != NULL,
               "devices with CLSOFTMAX_BACKEND=cpu: %d %s%s", rc, tool_out, tool_err);
}

static void test_commands(void)
{
    int rc = run_tool(NULL, "--version", NULL);
    TEST_CHECK(rc == 0 && strstr(tool_out, clsoftmax_version_string()) != NULL,
               "--version: %d '%s'", rc, tool_out);
    rc = run_tool(NULL, "--help", NULL);
    TEST_CHECK(rc == 0 && strstr(tool_out, "usage") != NULL && strstr(tool_out, "exit status"),
               "--help: %d", rc);
    rc = run_tool(NULL, "run", "--help", NULL);
    TEST_CHECK(rc == 0 && strstr(tool_out, "usage") != NULL, "run --help: %d", rc);
    rc = run_tool(NULL, NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "usage") != NULL, "no command: %d", rc);
    rc = run_tool(NULL, "frobnicate", NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "unknown command") != NULL &&
                   strstr(tool_err, "usage") != NULL,
               "unknown command: %d %s", rc, tool_err);
    rc = run_tool(NULL, "devices", "--bogus", NULL);
    TEST_CHECK(rc == 2, "devices --bogus: %d", rc);
    rc = run_tool(NULL, "demo", "--rows", "0", NULL);
    TEST_CHECK(rc == 2, "demo --rows 0: %d", rc);
    rc = run_tool(NULL, "demo", "--cols", "-5", NULL);
    TEST_CHECK(rc == 2, "demo --cols -5: %d", rc);
}

/* A small demo on the suite's backend, checked against the CPU backend by the tool itself. */
static void test_demo(void)
{
    int rc =
        run_tool(NULL, "demo", "--backend", tool_backend, "--rows", "300", "--cols", "257", NULL);
    TEST_CHECK(rc == 0 && strstr(tool_out, "PASS") != NULL && strstr(tool_out, "GB/s") != NULL,
               "demo: %d %s %s", rc, tool_out, tool_err);
}

/* `bench --csv`: a header, then copy, (buffer,) host per shape with eight fields each. */
static void test_bench(void)
{
    int rc = run_tool(NULL, "bench", "--backend", tool_backend, "--shapes", "8x16,4x3x5:1",
                      "--runs", "1", "--csv", NULL);
    TEST_CHECK(rc == 0, "bench: %d %s %s", rc, tool_out, tool_err);
    const int per_shape = strcmp(tool_backend, "opencl") == 0 ? 3 : 2;
    const char* expect_shape[2] = {"8x16", "4x3x5"};
    const char* expect_axis[2] = {"1", "1"};
    int lines = 0;
    int bad = 0;
    char* save = NULL;
    for (char* line = strtok_r(tool_out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), ++lines) {
        if (lines == 0) {
            bad += strcmp(line, "backend,path,dtype,shape,axis,median_ms,gbps,pct_of_copy") != 0;
            continue;
        }
        char* fields[9] = {NULL};
        int n = 0;
        char* fsave = NULL;
        for (char* f = strtok_r(line, ",", &fsave); f != NULL && n < 9;
             f = strtok_r(NULL, ",", &fsave))
            fields[n++] = f;
        int shape = (lines - 1) / per_shape;
        if (n != 8 || shape > 1 || strcmp(fields[0], tool_backend) != 0 ||
            strcmp(fields[2], "f32") != 0 || strcmp(fields[3], expect_shape[shape]) != 0 ||
            strcmp(fields[4], expect_axis[shape]) != 0 || !(atof(fields[5]) > 0.0))
            ++bad;
    }
    TEST_CHECK(bad == 0 && lines == 1 + 2 * per_shape, "bench csv: %d lines, %d bad", lines, bad);

    rc = run_tool(NULL, "bench", "--backend", tool_backend, "--shapes", "8xx3", NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "8xx3") != NULL, "bad shape list: %d %s", rc, tool_err);
    rc = run_tool(NULL, "bench", "--shapes", "8x3:2", NULL);
    TEST_CHECK(rc == 2, "axis out of range: %d %s", rc, tool_err);
    rc = run_tool(NULL, "bench", "--dtype", "f16", NULL);
    TEST_CHECK(rc == 2, "bad dtype: %d %s", rc, tool_err);
}

static void test_devices(void)
{
    int rc = run_tool(NULL, "devices", NULL);
    TEST_CHECK(rc == 0 && strstr(tool_out, "[0] ") != NULL &&
                   strstr(tool_out, "auto picks: ") != NULL,
               "devices: %d %s %s", rc, tool_out, tool_err);
}

void test_register_tool(void)
{
    CU_pSuite s = CU_add_suite("tool", tool_suite_init, tool_suite_clean);
    CU_add_test(s, "round trips (cpu)", test_round_trips);
    CU_add_test(s, "worked example (cpu)", test_worked_example);
    CU_add_test(s, "in place, file mode", test_in_place_and_mode);
    CU_add_test(s, "malformed files", test_malformed_files);
    CU_add_test(s, "bad options", test_bad_options);
    CU_add_test(s, "library error", test_library_error);
    CU_add_test(s, "environment", test_environment);
    CU_add_test(s, "commands and usage", test_commands);
    CU_add_test(s, "demo (cpu)", test_demo);
    CU_add_test(s, "bench (cpu)", test_bench);

    CU_pSuite o = CU_add_suite("tool_opencl", tool_opencl_suite_init, tool_suite_clean);
    CU_add_test(o, "round trips (opencl)", test_round_trips);
    CU_add_test(o, "worked example (opencl)", test_worked_example);
    CU_add_test(o, "in place (opencl)", test_in_place_and_mode);
    CU_add_test(o, "devices", test_devices);
    CU_add_test(o, "demo (opencl)", test_demo);
    CU_add_test(o, "bench (opencl)", test_bench);
}
