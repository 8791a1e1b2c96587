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
#include "cpu/half_convert.h"
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

/* `bench --csv`: a header, then copy, (buffer,) host per shape with nine fields each. */
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
            bad += strcmp(line, "backend,path,dtype,shape,axis,median_ms,gbps,pct_of_copy,op") != 0;
            continue;
        }
        char* fields[10] = {NULL};
        int n = 0;
        char* fsave = NULL;
        for (char* f = strtok_r(line, ",", &fsave); f != NULL && n < 10;
             f = strtok_r(NULL, ",", &fsave))
            fields[n++] = f;
        int shape = (lines - 1) / per_shape;
        if (n != 9 || shape > 1 || strcmp(fields[8], "forward") != 0 ||
            strcmp(fields[0], tool_backend) != 0 || strcmp(fields[2], "f32") != 0 ||
            strcmp(fields[3], expect_shape[shape]) != 0 ||
            strcmp(fields[4], expect_axis[shape]) != 0 || !(atof(fields[5]) > 0.0))
            ++bad;
    }
    TEST_CHECK(bad == 0 && lines == 1 + 2 * per_shape, "bench csv: %d lines, %d bad", lines, bad);

    rc = run_tool(NULL, "bench", "--backend", tool_backend, "--shapes", "8xx3", NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "8xx3") != NULL, "bad shape list: %d %s", rc, tool_err);
    rc = run_tool(NULL, "bench", "--shapes", "8x3:2", NULL);
    TEST_CHECK(rc == 2, "axis out of range: %d %s", rc, tool_err);
    rc = run_tool(NULL, "bench", "--dtype", "f128", NULL);
    TEST_CHECK(rc == 2, "bad dtype: %d %s", rc, tool_err);
}

/* ---- issue 6: typed files, blending, bad rows, backward, cross-entropy -------------------- */

/* Storage of double values in dtype (16-bit types rounded to nearest even), and back. */
static void store_value(clsoftmax_dtype dtype, void* data, size_t i, double v)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        ((double*)data)[i] = v;
        break;
    case CLSOFTMAX_FLOAT16:
        ((uint16_t*)data)[i] = clsoftmax__f32_to_f16((float)v);
        break;
    case CLSOFTMAX_BFLOAT16:
        ((uint16_t*)data)[i] = clsoftmax__f32_to_bf16((float)v);
        break;
    default:
        ((float*)data)[i] = (float)v;
        break;
    }
}

static double load_value(clsoftmax_dtype dtype, const void* data, size_t i)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        return ((const double*)data)[i];
    case CLSOFTMAX_FLOAT16:
        return clsoftmax__f16_to_f32(((const uint16_t*)data)[i]);
    case CLSOFTMAX_BFLOAT16:
        return clsoftmax__bf16_to_f32(((const uint16_t*)data)[i]);
    default:
        return ((const float*)data)[i];
    }
}

static npy_dtype file_dtype(clsoftmax_dtype dtype)
{
    static const npy_dtype map[4] = {NPY_FLOAT32, NPY_FLOAT64, NPY_FLOAT16, NPY_UINT16};
    return map[dtype];
}

static const char* dtype_flag(clsoftmax_dtype dtype)
{
    static const char* const names[4] = {"f32", "f64", "f16", "bf16"};
    return names[dtype];
}

/*
 * Writes work_dir/name holding values stored as dtype ('<u2' for bfloat16) and rounds values
 * to what was stored, so references see the file's exact inputs. path receives the path.
 */
static void write_typed(const char* name, clsoftmax_dtype dtype, size_t ndim, const size_t* dims,
                        double* values, char* path, size_t size)
{
    work_path(path, size, name);
    npy_array a;
    memset(&a, 0, sizeof(a));
    a.dtype = file_dtype(dtype);
    a.ndim = ndim;
    memcpy(a.dims, dims, ndim * sizeof(size_t));
    a.count = product(ndim, dims);
    a.data = malloc(a.count * npy_dtype_size(a.dtype) + 1);
    CU_ASSERT_FATAL(a.data != NULL);
    for (size_t i = 0; i < a.count; ++i) {
        store_value(dtype, a.data, i, values[i]);
        values[i] = load_value(dtype, a.data, i);
    }
    char msg[512];
    npy_result r = npy_write(path, &a, msg, sizeof(msg));
    npy_array_free(&a);
    CU_ASSERT_FATAL(r == NPY_OK);
}

/* Writes work_dir/name: int64 labels of shape dims. */
static void write_labels(const char* name, size_t ndim, const size_t* dims, const int64_t* labels,
                         char* path, size_t size)
{
    work_path(path, size, name);
    npy_array a;
    memset(&a, 0, sizeof(a));
    a.dtype = NPY_INT64;
    a.ndim = ndim;
    memcpy(a.dims, dims, ndim * sizeof(size_t));
    a.count = product(ndim, dims);
    a.data = malloc(a.count * sizeof(int64_t) + 1);
    CU_ASSERT_FATAL(a.data != NULL);
    memcpy(a.data, labels, a.count * sizeof(int64_t));
    char msg[512];
    npy_result r = npy_write(path, &a, msg, sizeof(msg));
    npy_array_free(&a);
    CU_ASSERT_FATAL(r == NPY_OK);
}

/* Distance in ulps of the 16-bit type between two words (sign-magnitude order). */
static long ulps16(uint16_t a, uint16_t b)
{
    long ka = (a & 0x8000) ? -(long)(a & 0x7fff) : (long)a;
    long kb = (b & 0x8000) ? -(long)(b & 0x7fff) : (long)b;
    return ka > kb ? ka - kb : kb - ka;
}

/*
 * Checks path: dtype's file type, shape dims, values against ref (double or better). 16-bit
 * types: within max_ulps of ref rounded to the type (NaN where ref is NaN); float32: 1e-5
 * relative + 1e-6; float64: 1e-12 relative + 1e-14.
 */
static void check_typed(const char* path, clsoftmax_dtype dtype, size_t ndim, const size_t* dims,
                        const double* ref, long max_ulps, const char* what, unsigned line)
{
    npy_array y;
    char msg[512];
    npy_result r = npy_read(path, &y, msg, sizeof(msg));
    TEST_CHECK_AT(line, r == NPY_OK, "%s: output unreadable: %s", what, msg);
    if (r != NPY_OK)
        return;
    TEST_CHECK_AT(line,
                  y.dtype == file_dtype(dtype) && y.ndim == ndim &&
                      memcmp(y.dims, dims, ndim * sizeof(size_t)) == 0,
                  "%s: output is '%s' %zu-D, want '%s' %zu-D", what, npy_dtype_descr(y.dtype),
                  y.ndim, npy_dtype_descr(file_dtype(dtype)), ndim);
    size_t count = product(ndim, dims);
    size_t bad = 0;
    size_t first = 0;
    for (size_t i = 0; i < count && i < y.count && y.dtype == file_dtype(dtype); ++i) {
        double got = load_value(dtype, y.data, i);
        int ok;
        if (isnan(ref[i])) {
            ok = isnan(got);
        } else if (dtype == CLSOFTMAX_FLOAT16 || dtype == CLSOFTMAX_BFLOAT16) {
            uint16_t want = dtype == CLSOFTMAX_FLOAT16 ? clsoftmax__f32_to_f16((float)ref[i])
                                                       : clsoftmax__f32_to_bf16((float)ref[i]);
            ok = !isnan(got) && ulps16(((const uint16_t*)y.data)[i], want) <= max_ulps;
        } else {
            double rtol = dtype == CLSOFTMAX_FLOAT32 ? 1e-5 : 1e-12;
            double atol = dtype == CLSOFTMAX_FLOAT32 ? 1e-6 : 1e-14;
            ok = fabs(got - ref[i]) <= atol + rtol * fabs(ref[i]);
        }
        if (!ok && bad++ == 0)
            first = i;
    }
    TEST_CHECK_AT(line, bad == 0, "%s: %zu of %zu elements off, first [%zu] %.9g vs %.9g", what,
                  bad, count, first, bad ? load_value(dtype, y.data, first) : 0.0,
                  bad ? ref[first] : 0.0);
    npy_array_free(&y);
}

/* Softmax backward over axis in double, from the stored y and dy. */
static void reference_backward(const double* y, const double* dy, size_t ndim, const size_t* dims,
                               int axis, int log_op, double scale, double* dx)
{
    size_t ax = (size_t)(axis < 0 ? axis + (int)ndim : axis);
    size_t outer = product(ax, dims);
    size_t n = dims[ax];
    size_t inner = product(ndim - ax - 1, dims + ax + 1);
    for (size_t o = 0; o < outer; ++o) {
        for (size_t i = 0; i < inner; ++i) {
            long double sum = 0.0L;
            for (size_t k = 0; k < n; ++k) {
                size_t e = (o * n + k) * inner + i;
                sum += log_op ? (long double)dy[e] : (long double)dy[e] * y[e];
            }
            for (size_t k = 0; k < n; ++k) {
                size_t e = (o * n + k) * inner + i;
                dx[e] = log_op ? (double)(scale * (dy[e] - expl(y[e]) * sum))
                               : (double)(scale * y[e] * (dy[e] - sum));
            }
        }
    }
}

/* ---- argument errors of the new options (no computation reaches the library) -------- */

/* Runs the tool with args (NULL-terminated); expects want_rc, needle on stderr, files files. */
static void expect_fails(int want_rc, const char* needle, size_t files, const char* const* args,
                         unsigned line)
{
    char what[512] = "";
    for (size_t i = 0; args[i] != NULL; ++i) {
        const char* slash = strrchr(args[i], '/');
        strncat(what, slash != NULL ? slash + 1 : args[i], sizeof(what) - strlen(what) - 2);
        strcat(what, " ");
    }
    int rc = run_tool_argv(NULL, args);
    TEST_CHECK_AT(line, rc == want_rc, "[%s]: exit %d, want %d: %s", what, rc, want_rc, tool_err);
    TEST_CHECK_AT(line, strstr(tool_err, needle) != NULL, "[%s]: stderr '%s' lacks '%s'", what,
                  tool_err, needle);
    int tmp_left;
    size_t n = work_file_count(&tmp_left);
    TEST_CHECK_AT(line, n == files && !tmp_left, "[%s]: %zu files in the work directory, want %zu",
                  what, n, files);
}

#define FAILS(rc, needle, files, ...)                                                              \
    do {                                                                                           \
        const char* const args_[] = {__VA_ARGS__, NULL};                                           \
        expect_fails((rc), (needle), (files), args_, __LINE__);                                    \
    } while (0)

/* The inputs of the argument tests: f4, f2, u2 and i8 files of shape (2, 3), and (3, 2). */
typedef struct arg_files {
    char f4[1024], f2[1024], u2[1024], i8[1024], f4_32[1024], out[1024], grad[1024];
} arg_files;

static void make_arg_files(arg_files* f)
{
    double v[6] = {1, 2, 3, 4, 5, 6};
    static const size_t dims[2] = {2, 3};
    static const size_t dims32[2] = {3, 2};
    test_dir_empty(work_dir);
    write_typed("f4.npy", CLSOFTMAX_FLOAT32, 2, dims, v, f->f4, sizeof(f->f4));
    write_typed("f2.npy", CLSOFTMAX_FLOAT16, 2, dims, v, f->f2, sizeof(f->f2));
    write_typed("u2.npy", CLSOFTMAX_BFLOAT16, 2, dims, v, f->u2, sizeof(f->u2));
    write_typed("f4_32.npy", CLSOFTMAX_FLOAT32, 2, dims32, v, f->f4_32, sizeof(f->f4_32));
    static const int64_t labels[6] = {0, 1, 2, 0, 1, 2};
    write_labels("i8.npy", 2, dims, labels, f->i8, sizeof(f->i8));
    work_path(f->out, sizeof(f->out), "out.npy");
    work_path(f->grad, sizeof(f->grad), "grad.npy");
}

static void test_run_new_option_errors(void)
{
    arg_files f;
    make_arg_files(&f);
    const char* b = tool_backend;
    /* 5 inputs; no output may appear. */
    FAILS(2, "not one of f32, f64, f16, bf16", 5, "run", "--dtype", "f8", f.f4, f.out);
    FAILS(2, "needs a value", 5, "run", f.f4, f.out, "--dtype");
    FAILS(2, "dtype mismatch", 5, "run", "--backend", b, "--dtype", "f16", f.f4, f.out);
    FAILS(2, "dtype mismatch", 5, "run", "--backend", b, "--dtype", "bf16", f.f2, f.out);
    FAILS(2, "dtype mismatch", 5, "run", "--backend", b, "--dtype", "f32", f.u2, f.out);
    FAILS(2, "dtype mismatch", 5, "run", "--backend", b, "--dtype=f64", f.f4, f.out);
    FAILS(2, "--dtype bf16", 5, "run", "--backend", b, f.u2, f.out);
    FAILS(2, "labels", 5, "run", "--backend", b, f.i8, f.out);
    FAILS(2, "not one of nan, zero, error", 5, "run", "--nonfinite", "inf", f.f4, f.out);
    FAILS(2, "not one of nan, zero, error", 5, "run", "--nonfinite=", f.f4, f.out);
    FAILS(2, "--report takes no value", 5, "run", "--report=1", f.f4, f.out);
    FAILS(2, "--backward takes no value", 5, "run", "--backward=yes", f.f4, f.f4, f.out);
    FAILS(2, "--alpha 'nan' is not a finite number", 5, "run", "--alpha", "nan", f.f4, f.out);
    FAILS(2, "--alpha 'x' is not a finite number", 5, "run", "--alpha", "x", f.f4, f.out);
    FAILS(2, "--beta 'inf' is not a finite number", 5, "run", "--beta", "inf", f.f4, f.out);
    FAILS(2, "--beta '' is not a finite number", 5, "run", "--beta=", f.f4, f.out);
    /* Finite as a double, not once rounded to float: the library's validation refuses it. */
    FAILS(2, "INVALID_ARGUMENT", 5, "run", "--backend", b, "--alpha", "1e300", f.f4, f.out);
    FAILS(2, "INVALID_ARGUMENT", 5, "run", "--backend", b, "--beta", "-1e39", f.f4, f.out);
    /* --beta reads OUT: it must exist, with the input's shape and dtype. */
    FAILS(2, "blend input", 5, "run", "--backend", b, "--beta", "0.5", f.f4, f.out);
    FAILS(2, "shape and dtype", 5, "run", "--backend", b, "--beta", "0.5", f.f4, f.f4_32);
    FAILS(2, "shape and dtype", 5, "run", "--backend", b, "--beta", "0.5", f.f2, f.f4);
    FAILS(2, "'<i8'", 5, "run", "--backend", b, "--beta", "0.5", f.f4, f.i8);
    /* The backward form: three files, no non-finite options, Y and DY alike. */
    FAILS(2, "Y.npy DY.npy OUT.npy", 5, "run", "--backward", f.f4, f.out);
    FAILS(2, "IN.npy and OUT.npy", 5, "run", f.f4, f.f4, f.out);
    FAILS(2, "too many file names", 5, "run", "--backward", f.f4, f.f4, f.f4, f.out);
    FAILS(2, "forward operation only", 5, "run", "--backward", "--report", f.f4, f.f4, f.out);
    FAILS(2, "forward operation only", 5, "run", "--backward", "--nonfinite", "zero", f.f4, f.f4,
          f.out);
    FAILS(2, "shape and dtype", 5, "run", "--backend", b, "--backward", f.f4, f.f4_32, f.out);
    FAILS(2, "shape and dtype", 5, "run", "--backend", b, "--backward", f.f4, f.f2, f.out);
    FAILS(2, "dtype mismatch", 5, "run", "--backend", b, "--backward", "--dtype", "f16", f.f4, f.f4,
          f.out);
    FAILS(2, "axis 2", 5, "run", "--backend", b, "--backward", "--axis", "2", f.f4, f.f4, f.out);
    FAILS(2, "cannot open", 5, "run", "--backend", b, "--backward", f.f4, "missing.npy", f.out);
}

static void test_xent_option_errors(void)
{
    arg_files f;
    make_arg_files(&f);
    const char* b = tool_backend;
    char labels2[1024];
    char weights[1024];
    char empty[1024];
    static const size_t two[1] = {2};
    static const size_t three[1] = {3};
    static const size_t empty_dims[2] = {0, 3};
    static const int64_t good[2] = {2, 0};
    static const int64_t high[2] = {0, 3};
    static const int64_t negative[2] = {-1, 0};
    double w[3] = {1, 2, 3};
    write_labels("labels.npy", 1, two, good, labels2, sizeof(labels2));
    write_typed("w.npy", CLSOFTMAX_FLOAT32, 1, three, w, weights, sizeof(weights));
    write_typed("empty.npy", CLSOFTMAX_FLOAT32, 2, empty_dims, w, empty, sizeof(empty));
    /* 8 inputs. */
    FAILS(2, "LOGITS.npy LABELS.npy OUT.npy", 8, "xent", f.f4, labels2);
    FAILS(2, "too many file names", 8, "xent", f.f4, labels2, f.out, f.grad);
    FAILS(2, "unknown option '--bogus'", 8, "xent", "--bogus", f.f4, labels2, f.out);
    FAILS(2, "--probs takes no value", 8, "xent", "--probs=1", f.f4, labels2, f.out);
    FAILS(2, "needs a value", 8, "xent", f.f4, labels2, f.out, "--grad");
    FAILS(2, "index labels must be (2,) '<i8'", 8, "xent", "--backend", b, f.f4, f.i8, f.out);
    FAILS(2, "index labels must be (2,) '<i8'", 8, "xent", "--backend", b, f.f4, f.f4, f.out);
    FAILS(2, "--probs labels must be (2, 3) '<f4'", 8, "xent", "--backend", b, "--probs", f.f4,
          labels2, f.out);
    FAILS(2, "--probs labels must be (2, 3) '<f4'", 8, "xent", "--backend", b, "--probs", f.f4,
          f.f2, f.out);
    FAILS(2, "--weights must be (3,) '<f4'", 8, "xent", "--backend", b, "--weights", f.f4, f.f4,
          labels2, f.out);
    FAILS(2, "--weights must be (3,) '<f2'", 8, "xent", "--backend", b, "--weights", weights, f.f2,
          labels2, f.out);
    FAILS(2, "applies to index labels", 8, "xent", "--probs", "--ignore-index", "1", f.f4, f.f4,
          f.out);
    FAILS(2, "--ignore-index 'x' is not an integer", 8, "xent", "--ignore-index", "x", f.f4,
          labels2, f.out);
    FAILS(2, "from 0 to 1", 8, "xent", "--smoothing", "1.5", f.f4, labels2, f.out);
    FAILS(2, "from 0 to 1", 8, "xent", "--smoothing", "-0.1", f.f4, labels2, f.out);
    FAILS(2, "from 0 to 1", 8, "xent", "--smoothing", "nan", f.f4, labels2, f.out);
    FAILS(2, "not one of none, sum, mean", 8, "xent", "--reduction", "avg", f.f4, labels2, f.out);
    FAILS(2, "not one of f32, f64, f16, bf16", 8, "xent", "--dtype", "i8", f.f4, labels2, f.out);
    FAILS(2, "dtype mismatch", 8, "xent", "--backend", b, "--dtype", "bf16", f.f2, labels2, f.out);
    FAILS(2, "--dtype bf16", 8, "xent", "--backend", b, f.u2, labels2, f.out);
    FAILS(2, "same file", 8, "xent", "--grad", f.out, f.f4, labels2, f.out);
    FAILS(2, "empty", 8, "xent", "--backend", b, empty, labels2, f.out);
    /* Labels out of range are refused before anything runs, naming the row. */
    char bad[1024];
    write_labels("high.npy", 1, two, high, bad, sizeof(bad));
    FAILS(2, "row 1 has label 3", 9, "xent", "--backend", b, f.f4, bad, f.out, "--grad", f.grad);
    write_labels("negative.npy", 1, two, negative, bad, sizeof(bad));
    FAILS(2, "row 0 has label -1", 10, "xent", "--backend", b, f.f4, bad, f.out);
    FAILS(2, "row 0 has label -1", 10, "xent", "--backend", b, "--ignore-index", "0", f.f4, bad,
          f.out);
    FAILS(2, "cannot open", 10, "xent", "--backend", b, "--weights", "missing.npy", f.f4, labels2,
          f.out);
    FAILS(2, "holds labels", 10, "xent", "--backend", b, f.i8, labels2, f.out);
    /* An unusable --grad path: neither output appears. */
    FAILS(2, "temporary file", 10, "xent", "--backend", b, f.f4, labels2, f.out, "--grad",
          "/nonexistent-dir/grad.npy");
    /* A library error (no such device) after both outputs were begun leaves neither. */
    FAILS(1, "cannot create a context", 10, "xent", "--backend", "opencl", "--device",
          "no-such-device-xyzzy", f.f4, labels2, f.out, "--grad", f.grad);
}

/* The help texts name every option; bench's new option values are checked. */
static void test_new_usage(void)
{
    static const char* const run_words[] = {
        "--backward",  "--dtype",  "bf16", "'<u2'", "--alpha", "--beta",
        "--nonfinite", "--report", "xent", "  3  ", "--op",    "o * inner + i"};
    int rc = run_tool(NULL, "run", "--help", NULL);
    for (size_t i = 0; i < sizeof(run_words) / sizeof(run_words[0]); ++i)
        TEST_CHECK(rc == 0 && strstr(tool_out, run_words[i]) != NULL, "run --help lacks '%s'",
                   run_words[i]);
    static const char* const xent_words[] = {"--grad",      "--probs",   "--ignore-index",
                                             "--smoothing", "--weights", "--reduction",
                                             "'<i8'",       "-100",      "--dtype"};
    rc = run_tool(NULL, "xent", "--help", NULL);
    for (size_t i = 0; i < sizeof(xent_words) / sizeof(xent_words[0]); ++i)
        TEST_CHECK(rc == 0 && strstr(tool_out, xent_words[i]) != NULL, "xent --help lacks '%s'",
                   xent_words[i]);
    static const char* const bench_words[] = {"--op", "backward", "xent", "bf16", "f16"};
    rc = run_tool(NULL, "bench", "--help", NULL);
    for (size_t i = 0; i < sizeof(bench_words) / sizeof(bench_words[0]); ++i)
        TEST_CHECK(rc == 0 && strstr(tool_out, bench_words[i]) != NULL, "bench --help lacks '%s'",
                   bench_words[i]);
    rc = run_tool(NULL, "bench", "--op", "sideways", NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "sideways") != NULL, "bench --op sideways: %d %s", rc,
               tool_err);
    rc = run_tool(NULL, "bench", "--op", "xent", "--shapes", "8x16:0", NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "last axis") != NULL, "bench xent axis 0: %d %s", rc,
               tool_err);
    rc = run_tool(NULL, "bench", "--dtype", "f8", NULL);
    TEST_CHECK(rc == 2 && strstr(tool_err, "f8") != NULL, "bench --dtype f8: %d %s", rc, tool_err);
}

/* attention and head take float32 and float64 only: 16-bit and label files are exit 2. */
static void test_ops_refuse_new_dtypes(void)
{
    arg_files f;
    make_arg_files(&f);
    FAILS(2, "takes float32", 5, "head", "--backend", "cpu", f.f2, f.f2, f.out);
    FAILS(2, "takes float32", 5, "head", "--backend", "cpu", f.i8, f.i8, f.out);
    FAILS(2, "takes float32", 5, "attention", "--backend", "cpu", f.u2, f.u2, f.u2, f.out);
}

/* ---- end-to-end runs of the new modes, against references ----------------------------- */

/* Deterministic values in [lo, hi). */
static void fill_uniform(double* x, size_t count, double lo, double hi, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 99u;
    for (size_t i = 0; i < count; ++i) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * ((double)(s >> 8) / 16777216.0);
    }
}

/* Forward softmax and log-softmax of float16 and bfloat16 files: '<f2' / '<u2' out, 1 ulp. */
static void test_forward_half(void)
{
    static const size_t dims[3] = {3, 37, 5};
    enum { N = 3 * 37 * 5 };
    double x[N];
    double ref[N];
    char in[1024];
    char out[1024];
    for (int dt = CLSOFTMAX_FLOAT16; dt <= CLSOFTMAX_BFLOAT16; ++dt) {
        for (int log_op = 0; log_op < 2; ++log_op) {
            for (int axis = -1; axis <= 1; axis += 2) {
                test_dir_empty(work_dir);
                fill_uniform(x, N, -6.0, 6.0, (unsigned)(dt * 10 + log_op * 3 + axis + 2));
                write_typed("in.npy", (clsoftmax_dtype)dt, 3, dims, x, in, sizeof(in));
                work_path(out, sizeof(out), "out.npy");
                reference(x, 3, dims, axis, log_op, 0.5, ref);
                const char* args[16];
                size_t n = 0;
                args[n++] = "run";
                args[n++] = "--backend";
                args[n++] = tool_backend;
                args[n++] = "--axis";
                args[n++] = axis < 0 ? "-1" : "1";
                args[n++] = "--scale";
                args[n++] = "0.5";
                if (log_op)
                    args[n++] = "--log";
                /* --dtype only where the file needs it (bf16's '<u2'): f16 comes from '<f2'. */
                if (dt == CLSOFTMAX_BFLOAT16) {
                    args[n++] = "--dtype";
                    args[n++] = "bf16";
                }
                args[n++] = in;
                args[n++] = out;
                args[n] = NULL;
                char what[128];
                snprintf(what, sizeof(what), "%s %s axis %d", dtype_flag((clsoftmax_dtype)dt),
                         log_op ? "log-softmax" : "softmax", axis);
                int rc = run_tool_argv(NULL, args);
                TEST_CHECK(rc == 0, "%s: exit %d: %s", what, rc, tool_err);
                if (rc == 0)
                    check_typed(out, (clsoftmax_dtype)dt, 3, dims, ref, 1, what, __LINE__);
            }
        }
    }
}

/* --alpha and --beta: OUT = alpha * softmax + beta * OUT_old; beta 0 never reads OUT. */
static void test_blend(void)
{
    static const size_t dims[2] = {4, 9};
    enum { N = 36 };
    double x[N], old[N], ref[N], want[N];
    char in[1024];
    char out[1024];
    for (int dt = 0; dt < 4; ++dt) {
        if (dt == CLSOFTMAX_FLOAT64 && !tool_fp64)
            continue;
        clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        test_dir_empty(work_dir);
        fill_uniform(x, N, -4.0, 4.0, 7u + (unsigned)dt);
        fill_uniform(old, N, -1.0, 1.0, 8u + (unsigned)dt);
        write_typed("in.npy", dtype, 2, dims, x, in, sizeof(in));
        write_typed("out.npy", dtype, 2, dims, old, out, sizeof(out));
        reference(x, 2, dims, -1, 0, 1.0, ref);
        for (size_t i = 0; i < N; ++i)
            want[i] = 0.75 * ref[i] - 0.5 * old[i];
        int rc = run_tool(NULL, "run", "--backend", tool_backend, "--dtype", dtype_flag(dtype),
                          "--alpha", "0.75", "--beta=-0.5", in, out, NULL);
        TEST_CHECK(rc == 0, "blend %s: exit %d: %s", dtype_flag(dtype), rc, tool_err);
        if (rc == 0)
            check_typed(out, dtype, 2, dims, want, 1, "blend", __LINE__);
        /* beta 0: NaN in an existing OUT must not leak; alpha alone scales. */
        for (size_t i = 0; i < N; ++i)
            old[i] = NAN;
        write_typed("out.npy", dtype, 2, dims, old, out, sizeof(out));
        for (size_t i = 0; i < N; ++i)
            want[i] = 2.0 * ref[i];
        rc = run_tool(NULL, "run", "--backend", tool_backend, "--dtype", dtype_flag(dtype),
                      "--alpha", "2", in, out, NULL);
        TEST_CHECK(rc == 0, "alpha 2 %s: exit %d: %s", dtype_flag(dtype), rc, tool_err);
        if (rc == 0)
            check_typed(out, dtype, 2, dims, want, 1, "alpha only", __LINE__);
    }
}

/* Rows 1 and 3 of a 5 x 4 input are bad (a NaN; all -inf): the three policies and --report. */
static void test_nonfinite_policies(void)
{
    static const size_t dims[2] = {5, 4};
    enum { N = 20 };
    double x[N], ref[N];
    char in[1024];
    char out[1024];
    for (int dt = 0; dt < 4; ++dt) {
        if (dt == CLSOFTMAX_FLOAT64 && !tool_fp64)
            continue;
        clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        test_dir_empty(work_dir);
        fill_uniform(x, N, -3.0, 3.0, 11u);
        x[1 * 4 + 2] = NAN;
        for (size_t k = 0; k < 4; ++k)
            x[3 * 4 + k] = -INFINITY;
        write_typed("in.npy", dtype, 2, dims, x, in, sizeof(in));
        work_path(out, sizeof(out), "out.npy");
        reference(x, 2, dims, -1, 0, 1.0, ref);
        for (size_t k = 0; k < 4; ++k) {
            ref[1 * 4 + k] = NAN;
            ref[3 * 4 + k] = NAN;
        }
        const char* flag = dtype_flag(dtype);
        /* nan (the default), with the report on stderr. */
        int rc = run_tool(NULL, "run", "--backend", tool_backend, "--dtype", flag, "--report", in,
                          out, NULL);
        TEST_CHECK(rc == 0, "%s report: exit %d: %s", flag, rc, tool_err);
        TEST_CHECK(strstr(tool_err, "2 bad rows") != NULL && strstr(tool_err, "row 1") != NULL,
                   "%s report: stderr '%s'", flag, tool_err);
        if (rc == 0)
            check_typed(out, dtype, 2, dims, ref, 1, "nonfinite nan", __LINE__);
        /* zero. */
        for (size_t k = 0; k < 4; ++k) {
            ref[1 * 4 + k] = 0.0;
            ref[3 * 4 + k] = 0.0;
        }
        rc = run_tool(NULL, "run", "--backend", tool_backend, "--dtype", flag, "--nonfinite",
                      "zero", in, out, NULL);
        TEST_CHECK(rc == 0, "%s zero: exit %d: %s", flag, rc, tool_err);
        if (rc == 0)
            check_typed(out, dtype, 2, dims, ref, 1, "nonfinite zero", __LINE__);
        /* error: exit 3 naming row 1, the existing OUT unchanged, no temporary left. */
        struct stat before;
        CU_ASSERT_FATAL(stat(out, &before) == 0);
        rc = run_tool(NULL, "run", "--backend", tool_backend, "--dtype", flag, "--nonfinite",
                      "error", in, out, NULL);
        TEST_CHECK(rc == 3, "%s error: exit %d, want 3: %s", flag, rc, tool_err);
        TEST_CHECK(strstr(tool_err, "row 1") != NULL && strstr(tool_err, "nothing written"),
                   "%s error: stderr '%s'", flag, tool_err);
        if (rc == 3)
            check_typed(out, dtype, 2, dims, ref, 1, "OUT after error", __LINE__);
        int tmp_left;
        TEST_CHECK(work_file_count(&tmp_left) == 2 && !tmp_left, "%s error: stray files", flag);
        /* A clean input under error: exit 0, and the report says 0. */
        fill_uniform(x, N, -3.0, 3.0, 12u);
        write_typed("in.npy", dtype, 2, dims, x, in, sizeof(in));
        reference(x, 2, dims, -1, 0, 1.0, ref);
        rc = run_tool(NULL, "run", "--backend", tool_backend, "--dtype", flag, "--nonfinite",
                      "error", "--report", in, out, NULL);
        TEST_CHECK(rc == 0 && strstr(tool_err, "0 bad rows") != NULL, "%s clean: exit %d: %s", flag,
                   rc, tool_err);
        if (rc == 0)
            check_typed(out, dtype, 2, dims, ref, 1, "clean under error", __LINE__);
    }
}

/* run --backward Y DY OUT against the reference, each dtype, softmax and log-softmax. */
static void test_backward(void)
{
    static const size_t dims[3] = {2, 33, 3};
    enum { N = 2 * 33 * 3 };
    double x[N], y[N], dy[N], ref[N], old[N];
    char yp[1024], dyp[1024], out[1024];
    for (int dt = 0; dt < 4; ++dt) {
        if (dt == CLSOFTMAX_FLOAT64 && !tool_fp64)
            continue;
        clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        for (int log_op = 0; log_op < 2; ++log_op) {
            test_dir_empty(work_dir);
            fill_uniform(x, N, -3.0, 3.0, 21u + (unsigned)dt);
            reference(x, 3, dims, 1, log_op, 1.0, y);
            fill_uniform(dy, N, -1.0, 1.0, 22u + (unsigned)dt);
            write_typed("y.npy", dtype, 3, dims, y, yp, sizeof(yp));
            write_typed("dy.npy", dtype, 3, dims, dy, dyp, sizeof(dyp));
            work_path(out, sizeof(out), "dx.npy");
            reference_backward(y, dy, 3, dims, 1, log_op, 1.5, ref);
            const char* flag = dtype_flag(dtype);
            int rc =
                log_op
                    ? run_tool(NULL, "run", "--backward", "--log", "--backend", tool_backend,
                               "--dtype", flag, "--axis", "1", "--scale", "1.5", yp, dyp, out, NULL)
                    : run_tool(NULL, "run", yp, "--backward", dyp, out, "--backend", tool_backend,
                               "--dtype", flag, "--axis=1", "--scale=1.5", NULL);
            TEST_CHECK(rc == 0, "backward %s%s: exit %d: %s", flag, log_op ? " log" : "", rc,
                       tool_err);
            if (rc == 0)
                check_typed(out, dtype, 3, dims, ref, 2, log_op ? "backward log" : "backward",
                            __LINE__);
            /* --beta blends into the existing DX. */
            fill_uniform(old, N, -1.0, 1.0, 23u);
            write_typed("dx.npy", dtype, 3, dims, old, out, sizeof(out));
            for (size_t i = 0; i < N; ++i)
                ref[i] = -ref[i] + 0.25 * old[i];
            rc = run_tool(NULL, "run", "--backward", "--backend", tool_backend, "--dtype", flag,
                          "--axis", "1", "--scale", "1.5", "--alpha", "-1", "--beta", "0.25",
                          log_op ? "--log" : "--axis=1", yp, dyp, out, NULL);
            TEST_CHECK(rc == 0, "backward blend %s: exit %d: %s", flag, rc, tool_err);
            if (rc == 0)
                check_typed(out, dtype, 3, dims, ref, 2, "backward blend", __LINE__);
        }
    }
}

/* PyTorch's cross_entropy in long double, for index (labels) or probability (probs) labels. */
typedef struct xent_case {
    size_t rows, classes;
    const int64_t* labels; /* NULL: probs */
    const double* probs;
    const double* weights; /* NULL: 1 */
    double eps;
    long long ignore;
    int reduction; /* 0 none, 1 sum, 2 mean */
} xent_case;

static void reference_xent(const xent_case* c, const double* z, double* loss, double* grad)
{
    long double total = 0.0L;
    long double denom = 0.0L;
    size_t C = c->classes;
    for (size_t r = 0; r < c->rows; ++r) {
        long double m = -INFINITY;
        for (size_t j = 0; j < C; ++j)
            m = fmaxl(m, z[r * C + j]);
        long double s = 0.0L;
        for (size_t j = 0; j < C; ++j)
            s += expl(z[r * C + j] - m);
        long double lse = m + logl(s);
        long double l = 0.0L;
        long double wsum = 0.0L;
        int ignored = c->labels != NULL && c->labels[r] == c->ignore;
        for (size_t j = 0; j < C; ++j) {
            long double w = c->weights != NULL ? c->weights[j] : 1.0L;
            long double q = c->labels != NULL ? (c->labels[r] == (int64_t)j ? 1.0L : 0.0L)
                                              : (long double)c->probs[r * C + j];
            q = (1.0L - c->eps) * q + c->eps / (long double)C;
            if (ignored)
                q = 0.0L;
            l += w * q * (lse - z[r * C + j]);
            wsum += w * q;
            grad[r * C + j] = (double)(-w * q);
        }
        for (size_t j = 0; j < C; ++j)
            grad[r * C + j] += (double)(expl(z[r * C + j] - lse) * wsum);
        if (!ignored)
            denom +=
                c->labels != NULL ? (c->weights != NULL ? c->weights[c->labels[r]] : 1.0L) : 1.0L;
        loss[r] = (double)l;
        total += l;
    }
    long double div = c->reduction == 2 ? denom : 1.0L;
    if (c->reduction != 0)
        loss[0] = (double)(total / div);
    for (size_t e = 0; e < c->rows * C; ++e)
        grad[e] = (double)(grad[e] / div);
}

/* xent: index and probability labels, weights, smoothing, ignore index, each reduction. */
static void test_xent(void)
{
    enum { R = 6, C = 11 };
    static const size_t ldims[2] = {R, C};
    static const size_t rdims[1] = {R};
    static const size_t one[1] = {1};
    static const int64_t labels[R] = {3, 0, 10, -100, 7, 3};
    static const int64_t labels_ign[R] = {3, 5, 10, 1, 5, 3};
    static const char* const reductions[3] = {"none", "sum", "mean"};
    double z[R * C], probs[R * C], w[C], loss[R], grad[R * C];
    char zp[1024], lp[1024], pp[1024], wp[1024], out[1024], gp[1024];
    for (int dt = 0; dt < 4; ++dt) {
        if (dt == CLSOFTMAX_FLOAT64 && !tool_fp64)
            continue;
        clsoftmax_dtype dtype = (clsoftmax_dtype)dt;
        const char* flag = dtype_flag(dtype);
        for (int variant = 0; variant < 4; ++variant) {
            for (int red = 0; red < 3; ++red) {
                test_dir_empty(work_dir);
                fill_uniform(z, R * C, -4.0, 4.0, 31u + (unsigned)(dt * 7 + variant));
                write_typed("z.npy", dtype, 2, ldims, z, zp, sizeof(zp));
                work_path(out, sizeof(out), "loss.npy");
                work_path(gp, sizeof(gp), "grad.npy");
                xent_case c = {R, C, labels, NULL, NULL, 0.0, -100, red};
                const char* args[24];
                size_t n = 0;
                args[n++] = "xent";
                args[n++] = "--backend";
                args[n++] = tool_backend;
                args[n++] = "--dtype";
                args[n++] = flag;
                args[n++] = "--reduction";
                args[n++] = reductions[red];
                args[n++] = "--grad";
                args[n++] = gp;
                if (variant == 1) { /* weights and smoothing */
                    for (size_t j = 0; j < C; ++j)
                        w[j] = 0.5 + 0.125 * (double)j;
                    write_typed("w.npy", dtype, 1, &ldims[1], w, wp, sizeof(wp));
                    c.weights = w;
                    c.eps = 0.125;
                    args[n++] = "--weights";
                    args[n++] = wp;
                    args[n++] = "--smoothing";
                    args[n++] = "0.125";
                } else if (variant == 2) { /* another ignore index */
                    c.labels = labels_ign;
                    c.ignore = 5;
                    args[n++] = "--ignore-index";
                    args[n++] = "5";
                } else if (variant == 3) { /* probability labels, smoothed */
                    fill_uniform(probs, R * C, 0.0, 1.0, 41u);
                    for (size_t r = 0; r < R; ++r) {
                        double s = 0.0;
                        for (size_t j = 0; j < C; ++j)
                            s += probs[r * C + j];
                        for (size_t j = 0; j < C; ++j)
                            probs[r * C + j] /= s;
                    }
                    write_typed("p.npy", dtype, 2, ldims, probs, pp, sizeof(pp));
                    c.labels = NULL;
                    c.probs = probs;
                    c.eps = 0.25;
                    args[n++] = "--probs";
                    args[n++] = "--smoothing=0.25";
                }
                if (c.labels != NULL)
                    write_labels("labels.npy", 1, rdims, c.labels, lp, sizeof(lp));
                args[n++] = zp;
                args[n++] = c.labels != NULL ? lp : pp;
                args[n++] = out;
                args[n] = NULL;
                reference_xent(&c, z, loss, grad);
                char what[96];
                snprintf(what, sizeof(what), "xent %s variant %d %s", flag, variant,
                         reductions[red]);
                int rc = run_tool_argv(NULL, args);
                TEST_CHECK(rc == 0, "%s: exit %d: %s", what, rc, tool_err);
                if (rc != 0)
                    continue;
                check_typed(out, dtype, 1, red == 0 ? rdims : one, loss, 2, what, __LINE__);
                check_typed(gp, dtype, 2, ldims, grad, 2, what, __LINE__);
            }
        }
    }
    /* 1-D logits are one row: the loss is (1,), the gradient (classes,). */
    test_dir_empty(work_dir);
    fill_uniform(z, C, -2.0, 2.0, 51u);
    static const size_t cdims[1] = {C};
    write_typed("z.npy", CLSOFTMAX_FLOAT32, 1, cdims, z, zp, sizeof(zp));
    static const int64_t label[1] = {4};
    write_labels("labels.npy", 1, one, label, lp, sizeof(lp));
    work_path(out, sizeof(out), "loss.npy");
    work_path(gp, sizeof(gp), "grad.npy");
    xent_case c = {1, C, label, NULL, NULL, 0.0, -100, 0};
    reference_xent(&c, z, loss, grad);
    int rc = run_tool(NULL, "xent", "--backend", tool_backend, zp, lp, out, "--grad", gp,
                      "--reduction", "none", NULL);
    TEST_CHECK(rc == 0, "xent 1-D: exit %d: %s", rc, tool_err);
    if (rc == 0) {
        check_typed(out, CLSOFTMAX_FLOAT32, 1, one, loss, 0, "xent 1-D loss", __LINE__);
        check_typed(gp, CLSOFTMAX_FLOAT32, 1, cdims, grad, 0, "xent 1-D grad", __LINE__);
    }
}

/* bench --op backward and xent, f16 and bf16: nine CSV fields, the op last. */
static void test_bench_ops_dtypes(void)
{
    static const char* const ops[3] = {"forward", "backward", "xent"};
    static const char* const dtypes[2] = {"f16", "bf16"};
    const int per_shape = strcmp(tool_backend, "opencl") == 0 ? 3 : 2;
    for (size_t o = 0; o < 3; ++o) {
        for (size_t d = 0; d < 2; ++d) {
            int rc = run_tool(NULL, "bench", "--backend", tool_backend, "--op", ops[o], "--dtype",
                              dtypes[d], "--shapes", "8x16,5x3x33", "--runs", "1", "--csv", NULL);
            TEST_CHECK(rc == 0, "bench %s %s: %d %s", ops[o], dtypes[d], rc, tool_err);
            int lines = 0;
            int bad = 0;
            char* save = NULL;
            for (char* line = strtok_r(tool_out, "\n", &save); line != NULL;
                 line = strtok_r(NULL, "\n", &save), ++lines) {
                if (lines == 0)
                    continue;
                char* fields[10] = {NULL};
                int n = 0;
                char* fsave = NULL;
                for (char* f = strtok_r(line, ",", &fsave); f != NULL && n < 10;
                     f = strtok_r(NULL, ",", &fsave))
                    fields[n++] = f;
                if (n != 9 || strcmp(fields[2], dtypes[d]) != 0 || strcmp(fields[8], ops[o]) != 0 ||
                    !(atof(fields[5]) > 0.0))
                    ++bad;
            }
            TEST_CHECK(bad == 0 && lines == 1 + 2 * per_shape, "bench %s %s: %d lines, %d bad",
                       ops[o], dtypes[d], lines, bad);
        }
    }
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
    CU_add_test(s, "run: new option errors", test_run_new_option_errors);
    CU_add_test(s, "xent: option and input errors", test_xent_option_errors);
    CU_add_test(s, "usage of the new options", test_new_usage);
    CU_add_test(s, "head and attention refuse 16-bit files", test_ops_refuse_new_dtypes);
    CU_add_test(s, "forward float16/bfloat16 (cpu)", test_forward_half);
    CU_add_test(s, "alpha and beta (cpu)", test_blend);
    CU_add_test(s, "non-finite policies and report (cpu)", test_nonfinite_policies);
    CU_add_test(s, "backward (cpu)", test_backward);
    CU_add_test(s, "cross-entropy (cpu)", test_xent);
    CU_add_test(s, "bench ops and 16-bit dtypes (cpu)", test_bench_ops_dtypes);

    CU_pSuite o = CU_add_suite("tool_opencl", tool_opencl_suite_init, tool_suite_clean);
    CU_add_test(o, "round trips (opencl)", test_round_trips);
    CU_add_test(o, "worked example (opencl)", test_worked_example);
    CU_add_test(o, "in place (opencl)", test_in_place_and_mode);
    CU_add_test(o, "devices", test_devices);
    CU_add_test(o, "demo (opencl)", test_demo);
    CU_add_test(o, "bench (opencl)", test_bench);
    CU_add_test(o, "run: new option errors (opencl)", test_run_new_option_errors);
    CU_add_test(o, "xent: input errors (opencl)", test_xent_option_errors);
    CU_add_test(o, "forward float16/bfloat16 (opencl)", test_forward_half);
    CU_add_test(o, "alpha and beta (opencl)", test_blend);
    CU_add_test(o, "non-finite policies and report (opencl)", test_nonfinite_policies);
    CU_add_test(o, "backward (opencl)", test_backward);
    CU_add_test(o, "cross-entropy (opencl)", test_xent);
    CU_add_test(o, "bench ops and 16-bit dtypes (opencl)", test_bench_ops_dtypes);
}
