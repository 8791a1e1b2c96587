/* cmd_tune.c - `clsoftmax tune`: measures kernel parameters on a device, writes its parameter file.
 */
#include "cli_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char tune_usage[] =
    "usage: clsoftmax tune [--device SEL] [--quick] [--out FILE]\n"
    "  Times softmax on a few representative float32 shapes of the OpenCL device for\n"
    "  candidate values of each kernel parameter (vector_width, rows_per_group,\n"
    "  work_group_size, short_row_limit, split_row_min), one parameter at a time,\n"
    "  keeps the fastest, and writes the values that beat the device's defaults to\n"
    "  the device's parameter file, which contexts load at creation:\n"
    "  ${CLSOFTMAX_PARAMS_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/clsoftmax}/<device>.params\n"
    "      --device SEL  the device (as for `clsoftmax run`); default: auto\n"
    "      --quick       smaller shapes, fewer runs and candidates (a few seconds)\n"
    "      --out FILE    write FILE instead of the device's parameter file\n"
    "  Progress goes to stderr; the chosen values to stdout.\n";

typedef struct shape {
    size_t rows;
    size_t cols;
    int axis;
} shape;

/* Each kind of row the strategies tell apart, and a non-last axis. */
static const shape full_shapes[] = {
    {524288, 8, 1}, {262144, 16, 1}, {32768, 128, 1}, {4096, 1000, 1},
    {64, 65536, 1}, {1, 4194304, 1}, {4, 1048576, 1}, {1000, 4096, 0},
};
static const shape quick_shapes[] = {
    {65536, 8, 1}, {8192, 128, 1}, {1024, 1000, 1}, {1, 1048576, 1}, {250, 4096, 0},
};

typedef struct candidates {
    clsoftmax_param param;
    size_t values[6]; /* 0-terminated after the first; the first is always 0 (the default) */
} candidates;

static const candidates full_candidates[] = {
    {CLSOFTMAX_PARAM_VECTOR_WIDTH, {0, 1, 4, 8, 16}},
    {CLSOFTMAX_PARAM_ROWS_PER_GROUP, {0, 1, 16, 64, 256}},
    {CLSOFTMAX_PARAM_WORK_GROUP_SIZE, {0, 32, 64, 128}},
    {CLSOFTMAX_PARAM_SHORT_ROW_LIMIT, {0, 16, 64, 128}},
    {CLSOFTMAX_PARAM_SPLIT_ROW_MIN, {0, 65536, 262144, 4194304}},
};
static const candidates quick_candidates[] = {
    {CLSOFTMAX_PARAM_VECTOR_WIDTH, {0, 4}},
    {CLSOFTMAX_PARAM_ROWS_PER_GROUP, {0, 1}},
    {CLSOFTMAX_PARAM_SPLIT_ROW_MIN, {0, 65536}},
};

typedef struct bench_data {
    clsoftmax_context* ctx;
    cl_mem in;
    cl_mem out;
    size_t shape_count;
    const shape* shapes;
    int reps;
} bench_data;

/* Seconds of one run of a shape; <0 on failure (the reason on stderr). */
static double run_once(bench_data* b, const shape* s)
{
    const size_t dims[2] = {s->rows, s->cols};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, s->axis);
    cl_command_queue q = clsoftmax_context_cl_queue(b->ctx);
    double t0 = cli_now_seconds();
    clsoftmax_status st =
        clsoftmax_softmax_buffer(b->ctx, &desc, b->in, 0, b->out, 0, NULL, 0, NULL, NULL);
    if (st != CLSOFTMAX_SUCCESS || clFinish(q) != CL_SUCCESS) {
        fprintf(stderr, "\nclsoftmax tune: %s: %s\n", clsoftmax_status_name(st),
                clsoftmax_context_last_error(b->ctx));
        return -1;
    }
    return cli_now_seconds() - t0;
}

/*
 * Time of param = value relative to param = current (the others as they are), the mean over
 * the shapes of the ratio of medians. The two alternate run by run, after a warm-up of each
 * (which compiles), so a machine busy with other work slows both alike. <0 on failure.
 */
static double compare(bench_data* b, clsoftmax_param param, size_t current, size_t value)
{
    double total = 0;
    for (size_t i = 0; i < b->shape_count; ++i) {
        double ta[16];
        double tb[16];
        for (int r = -1; r < b->reps; ++r) {
            clsoftmax_context_set_param(b->ctx, param, current);
            double a = run_once(b, &b->shapes[i]);
            clsoftmax_context_set_param(b->ctx, param, value);
            double c = run_once(b, &b->shapes[i]);
            if (a < 0 || c < 0)
                return -1;
            if (r >= 0) {
                ta[r] = a;
                tb[r] = c;
            }
        }
        total += cli_median(tb, (size_t)b->reps) / cli_median(ta, (size_t)b->reps);
    }
    clsoftmax_context_set_param(b->ctx, param, current);
    return total / (double)b->shape_count;
}

/* Creates the folders of path's directory (mkdir -p); 0 or -1. */
static int make_parent_dirs(const char* path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char* slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
        return 0;
    *slash = '\0';
    for (char* p = buf + 1; *p != '\0'; ++p) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* Writes the file through a temporary beside it and a rename: whole or not at all. */
static int write_params(const char* path, const char* device, const size_t* best, double gain)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (make_parent_dirs(path) != 0) {
        fprintf(stderr, "clsoftmax tune: cannot create the folder of %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    FILE* f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "clsoftmax tune: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tmv;
    if (gmtime_r(&now, &tmv) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    fprintf(f, "# clsoftmax kernel parameters for %s\n", device);
    fprintf(f, "# written by clsoftmax tune %s at %s: %.1f%% of the defaults' time\n",
            clsoftmax_version_string(), when, 100.0 * gain);
    fprintf(f, "# name=value; parameters not listed are left to the device\n");
    for (int p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p) {
        if (best[p] != 0)
            fprintf(f, "%s=%zu\n", clsoftmax_param_name((clsoftmax_param)p), best[p]);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "clsoftmax tune: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cmd_tune(int argc, char** argv)
{
    const char* device = NULL;
    const char* out_path = NULL;
    int quick = 0;
    for (int i = 0; i < argc; ++i) {
        const char* a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(tune_usage, stdout);
            return 0;
        } else if (strcmp(a, "--quick") == 0) {
            quick = 1;
        } else if (strcmp(a, "--device") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) {
                cli_usage_error("tune", "option %s needs a value", a);
                return EXIT_USAGE;
            }
            if (strcmp(a, "--device") == 0)
                device = argv[++i];
            else
                out_path = argv[++i];
        } else if (strncmp(a, "--device=", 9) == 0) {
            device = a + 9;
        } else if (strncmp(a, "--out=", 6) == 0) {
            out_path = a + 6;
        } else {
            cli_usage_error("tune", "unexpected argument '%s'", a);
            return EXIT_USAGE;
        }
    }

    /* --backend opencl, so neither CLSOFTMAX_PARAMS nor an old parameter file steers. */
    clsoftmax_context* ctx = NULL;
    if (cli_create_context(1, CLSOFTMAX_BACKEND_OPENCL, device, &ctx) != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax tune: no OpenCL device: %s\n", clsoftmax_last_create_error());
        return EXIT_RUN_FAILED;
    }
    char path[4096];
    if (out_path != NULL) {
        snprintf(path, sizeof path, "%s", out_path);
    } else if (clsoftmax_context_params_file(ctx, path, sizeof path) != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax tune: no folder for the parameter file (set "
                        "CLSOFTMAX_PARAMS_DIR or HOME), or use --out FILE\n");
        clsoftmax_context_free(ctx);
        return EXIT_USAGE;
    }

    bench_data b = {ctx, NULL, NULL, 0, NULL, quick ? 3 : 7};
    b.shapes = quick ? quick_shapes : full_shapes;
    b.shape_count = quick ? sizeof quick_shapes / sizeof quick_shapes[0]
                          : sizeof full_shapes / sizeof full_shapes[0];
    const candidates* cand = quick ? quick_candidates : full_candidates;
    const size_t cand_count = quick ? sizeof quick_candidates / sizeof quick_candidates[0]
                                    : sizeof full_candidates / sizeof full_candidates[0];
    size_t most = 0;
    for (size_t i = 0; i < b.shape_count; ++i) {
        size_t c = b.shapes[i].rows * b.shapes[i].cols;
        most = c > most ? c : most;
    }

    int rc = EXIT_RUN_FAILED;
    size_t best[CLSOFTMAX_PARAM_COUNT] = {0};
    float* host = malloc(most * sizeof *host);
    cl_int err = CL_SUCCESS;
    if (host == NULL) {
        fprintf(stderr, "clsoftmax tune: out of memory\n");
        goto done;
    }
    uint64_t seed = 12345;
    for (size_t i = 0; i < most; ++i)
        host[i] = cli_normalish(&seed);
    b.in = clCreateBuffer(clsoftmax_context_cl_context(ctx),
                          CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, most * sizeof *host, host, &err);
    if (err == CL_SUCCESS)
        b.out = clCreateBuffer(clsoftmax_context_cl_context(ctx), CL_MEM_WRITE_ONLY,
                               most * sizeof *host, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clsoftmax tune: clCreateBuffer failed (%d)\n", (int)err);
        goto done;
    }

    size_t total_steps = 0;
    for (size_t c = 0; c < cand_count; ++c) {
        for (size_t v = 1; v < 6 && cand[c].values[v] != 0; ++v)
            ++total_steps;
    }
    size_t step = 0;
    fprintf(stderr, "clsoftmax tune: %s, %zu shapes, %d runs each\n",
            clsoftmax_context_device_name(ctx), b.shape_count, b.reps);
    /* One parameter at a time, each kept at its best before the next is tried. */
    double best_score = 1; /* the chosen set's time relative to the defaults' */
    for (size_t c = 0; c < cand_count; ++c) {
        const clsoftmax_param p = cand[c].param;
        const char* name = clsoftmax_param_name(p);
        double param_best = 1;
        for (size_t v = 1; v < 6 && cand[c].values[v] != 0; ++v) {
            ++step;
            fprintf(stderr, "\r\033[K[%zu/%zu] %s=%zu (so far %.1f%% of the defaults' time)", step,
                    total_steps, name, cand[c].values[v], 100.0 * best_score);
            size_t before = 0;
            clsoftmax_context_get_param(ctx, p, &before);
            if (clsoftmax_context_set_param(ctx, p, cand[c].values[v]) != CLSOFTMAX_SUCCESS)
                continue; /* not a value this device takes */
            double r = compare(&b, p, before, cand[c].values[v]);
            if (r < 0)
                goto done;
            /* 3% better at least: the machine's noise must not pick a value. */
            if (r < 0.97) {
                best[p] = cand[c].values[v];
                param_best *= r;
            }
            clsoftmax_context_set_param(ctx, p, best[p]);
        }
        best_score *= param_best;
    }
    fprintf(stderr, "\r\033[K[%zu/%zu] done: %.1f%% of the defaults' time\n", total_steps,
            total_steps, 100.0 * best_score);

    if (write_params(path, clsoftmax_context_device_name(ctx), best, best_score) != 0)
        goto done;
    printf("wrote %s\n", path);
    for (int p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p) {
        if (best[p] != 0)
            printf("  %s=%zu\n", clsoftmax_param_name((clsoftmax_param)p), best[p]);
    }
    rc = 0;

done:
    if (b.in != NULL)
        clReleaseMemObject(b.in);
    if (b.out != NULL)
        clReleaseMemObject(b.out);
    free(host);
    clsoftmax_context_free(ctx);
    return rc;
}
