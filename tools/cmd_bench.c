/* cmd_bench.c - `clsoftmax bench`: forward, backward and cross-entropy speed against a copy. */
#include "cli_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Softmax is memory-bound: its floor is reading the input once and writing the output once,
 * the traffic of a copy of the same bytes. So every result is quoted beside a copy of the
 * tensor measured on the same device in the same run (the machine's load changes from run to
 * run, the ratio much less): an OpenCL kernel b[i] = a[i] for the OpenCL backend, a threaded
 * memcpy for the CPU backend. Effective GB/s counts each tensor an operation reads or writes
 * once: forward 2 x elements x element size (x in, y out), backward 3 x (y, dy in, dx out),
 * cross-entropy 2 x plus the labels and the loss (logits in, gradient out, mean reduction).
 * "of copy" is that rate over the copy's (2 x the tensor's bytes / its median).
 */
#define BENCH_MAX_SHAPES 64
#define BENCH_DEFAULT_RUNS 7

typedef struct bench_shape {
    size_t ndim;
    size_t dims[CLSOFTMAX_MAX_DIMS];
    int axis;
} bench_shape;

/* The eight shapes of issue 3's table; cross-entropy's rows lie along the last axis only. */
static const char* const default_shapes =
    "1000000x8,65536x128,8192x1024,16384x1000,256x32000,32x262144,4x4194304,1000x16384:0";
static const char* const default_xent_shapes =
    "1000000x8,65536x128,8192x1024,16384x1000,256x32000,32x262144,4x4194304";

static const char* const bench_usage =
    "usage: clsoftmax bench [--op forward|backward|xent] [--dtype f32|f64|f16|bf16]\n"
    "                       [--backend cpu|opencl|all] [--device SEL] [--shapes LIST]\n"
    "                       [--runs N] [--csv]\n"
    "  --op OP        forward: softmax (default); backward: softmax backward from y and dy;\n"
    "                 xent: cross-entropy with index labels, mean loss and the gradient\n"
    "  --dtype T      f32 (default), f64, f16 or bf16 (16-bit storage, float compute)\n"
    "  --shapes LIST  comma-separated shapes, extents joined by 'x', ':A' for an axis\n"
    "                 other than the last, e.g. 16384x1000,1000x16384:0 (default: the eight\n"
    "                 shapes of the performance table in README.md; xent: the seven with\n"
    "                 the last axis, which holds the classes)\n"
    "  --runs N       timed runs per result after warm-up; the median is reported (default 7)\n"
    "  --csv          one line per result: backend,path,dtype,shape,axis,median_ms,gbps,\n"
    "                 pct_of_copy,op (path: buffer, host or copy)\n"
    "  GB/s counts every tensor read or written once: forward 2 x the tensor's bytes,\n"
    "  backward 3 x, xent 2 x plus the labels (8 bytes a row); 'of copy' is that rate over\n"
    "  a copy of the tensor on the same device in the same run.\n";

typedef enum bench_op { BENCH_FORWARD = 0, BENCH_BACKWARD = 1, BENCH_XENT = 2 } bench_op;

static const char* op_name(bench_op op)
{
    return op == BENCH_BACKWARD ? "backward" : op == BENCH_XENT ? "xent" : "forward";
}

/* Parses "AxBxC[:axis]" into s; 0 or -1. */
static int parse_shape(const char* text, size_t len, bench_shape* s)
{
    char buf[256];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    s->axis = -1;
    char* colon = strchr(buf, ':');
    if (colon != NULL) {
        *colon = '\0';
        if (cli_parse_int(colon + 1, &s->axis) != 0)
            return -1;
    }
    s->ndim = 0;
    char* p = buf;
    for (;;) {
        char* x = strchr(p, 'x');
        if (x != NULL)
            *x = '\0';
        if (s->ndim == CLSOFTMAX_MAX_DIMS || cli_parse_count(p, &s->dims[s->ndim]) != 0)
            return -1;
        s->ndim++;
        if (x == NULL)
            break;
        p = x + 1;
    }
    return 0;
}

static int parse_shapes(const char* list, bench_shape* shapes, size_t* count)
{
    *count = 0;
    const char* p = list;
    while (*p != '\0') {
        const char* comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (*count == BENCH_MAX_SHAPES || parse_shape(p, len, &shapes[*count]) != 0)
            return -1;
        (*count)++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return *count > 0 ? 0 : -1;
}

static void shape_text(const bench_shape* s, char* buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t d = 0; d < s->ndim && len < size; d++) {
        int n = snprintf(buf + len, size - len, d ? "x%zu" : "%zu", s->dims[d]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* ---- the copy baselines ---------------------------------------------------- */

typedef struct copy_part {
    const unsigned char* src;
    unsigned char* dst;
    size_t bytes;
} copy_part;

static void* copy_worker(void* arg)
{
    copy_part* part = arg;
    memcpy(part->dst, part->src, part->bytes);
    return NULL;
}

/* One memcpy of bytes split over threads, as the CPU backend splits its rows. */
static void threaded_copy(const void* src, void* dst, size_t bytes, unsigned threads)
{
    pthread_t tid[64];
    int started[64] = {0};
    copy_part parts[64];
    if (threads > 64)
        threads = 64;
    size_t per = (bytes / threads + 63) / 64 * 64; /* whole cache lines per thread */
    for (unsigned t = 0; t < threads; t++) {
        size_t begin = per * t < bytes ? per * t : bytes;
        size_t end = per * (t + 1) < bytes ? per * (t + 1) : bytes;
        parts[t].src = (const unsigned char*)src + begin;
        parts[t].dst = (unsigned char*)dst + begin;
        parts[t].bytes = end - begin;
        /* The calling thread takes part 0; a thread that cannot start is done inline. */
        if (t > 0)
            started[t] = pthread_create(&tid[t], NULL, copy_worker, &parts[t]) == 0;
        if (t > 0 && !started[t])
            copy_worker(&parts[t]);
    }
    copy_worker(&parts[0]);
    for (unsigned t = 1; t < threads; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
}

static double median_of(double* times, int runs) { return cli_median(times, (size_t)runs); }

/* Median seconds of a threaded memcpy of bytes. */
static double time_cpu_copy(const void* src, void* dst, size_t bytes, unsigned threads, int runs)
{
    double times[256];
    threaded_copy(src, dst, bytes, threads); /* warm-up: page faults, caches */
    for (int r = 0; r < runs; r++) {
        double t0 = cli_now_seconds();
        threaded_copy(src, dst, bytes, threads);
        times[r] = cli_now_seconds() - t0;
    }
    return median_of(times, runs);
}

/* Element-wise copy; float4 where the byte count allows, else uint, else ushort (an odd count
   of 16-bit elements). PoCL vectorises the work-items of each across its SIMD lanes. */
static const char* const copy_source =
    "__kernel void copy4(__global const float4* a, __global float4* b) {\n"
    "    size_t i = get_global_id(0); b[i] = a[i];\n"
    "}\n"
    "__kernel void copy1(__global const uint* a, __global uint* b) {\n"
    "    size_t i = get_global_id(0); b[i] = a[i];\n"
    "}\n"
    "__kernel void copy2(__global const ushort* a, __global ushort* b) {\n"
    "    size_t i = get_global_id(0); b[i] = a[i];\n"
    "}\n";

typedef struct cl_copy {
    cl_program program;
    cl_kernel k4;
    cl_kernel k1;
    cl_kernel k2;
} cl_copy;

static int cl_copy_init(clsoftmax_context* ctx, cl_copy* c)
{
    cl_int err = CL_SUCCESS;
    cl_device_id dev = clsoftmax_context_cl_device(ctx);
    const char* src = copy_source;
    memset(c, 0, sizeof *c);
    c->program = clCreateProgramWithSource(clsoftmax_context_cl_context(ctx), 1, &src, NULL, &err);
    if (err != CL_SUCCESS)
        return -1;
    if (clBuildProgram(c->program, 1, &dev, "-cl-std=CL1.2", NULL, NULL) != CL_SUCCESS)
        return -1;
    c->k4 = clCreateKernel(c->program, "copy4", &err);
    if (err != CL_SUCCESS)
        return -1;
    c->k1 = clCreateKernel(c->program, "copy1", &err);
    if (err != CL_SUCCESS)
        return -1;
    c->k2 = clCreateKernel(c->program, "copy2", &err);
    return err == CL_SUCCESS ? 0 : -1;
}

static void cl_copy_free(cl_copy* c)
{
    if (c->k4 != NULL)
        clReleaseKernel(c->k4);
    if (c->k1 != NULL)
        clReleaseKernel(c->k1);
    if (c->k2 != NULL)
        clReleaseKernel(c->k2);
    if (c->program != NULL)
        clReleaseProgram(c->program);
}

/* Median seconds of the copy kernel over bytes; < 0 on an OpenCL failure. */
static double time_cl_copy(clsoftmax_context* ctx, cl_copy* c, cl_mem a, cl_mem b, size_t bytes,
                           int runs)
{
    cl_command_queue q = clsoftmax_context_cl_queue(ctx);
    size_t unit = bytes % 16 == 0 ? 16 : bytes % 4 == 0 ? 4 : 2;
    cl_kernel k = unit == 16 ? c->k4 : unit == 4 ? c->k1 : c->k2;
    size_t global = bytes / unit;
    double times[256];
    if (clSetKernelArg(k, 0, sizeof a, &a) != CL_SUCCESS ||
        clSetKernelArg(k, 1, sizeof b, &b) != CL_SUCCESS)
        return -1.0;
    for (int r = -2; r < runs; r++) { /* two warm-ups: PoCL compiles at the first launch */
        double t0 = cli_now_seconds();
        if (clEnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, NULL) != CL_SUCCESS ||
            clFinish(q) != CL_SUCCESS)
            return -1.0;
        if (r >= 0)
            times[r] = cli_now_seconds() - t0;
    }
    return median_of(times, runs);
}

/* ---- results ---------------------------------------------------------------- */

typedef struct bench_opts {
    int csv;
    int runs;
    clsoftmax_dtype dtype;
    bench_op op;
} bench_opts;

/* traffic: bytes the operation moves; copy_gbps: the copy's rate, for the share. */
static void report(const bench_opts* o, const char* backend, const char* path, const bench_shape* s,
                   int axis, double traffic, double seconds, double copy_gbps)
{
    char shape[128];
    shape_text(s, shape, sizeof shape);
    const char* dtype = cli_dtype_name(o->dtype);
    double gbps = traffic / seconds * 1e-9;
    double pct = 100.0 * gbps / copy_gbps;
    if (o->csv)
        printf("%s,%s,%s,%s,%d,%.4f,%.3f,%.1f,%s\n", backend, path, dtype, shape, axis,
               seconds * 1e3, gbps, pct, op_name(o->op));
    else
        printf("%-7s %-7s %-4s %-8s %-14s %4d %11.3f %9.2f %7.1f%%\n", backend, path, dtype,
               op_name(o->op), shape, axis, seconds * 1e3, gbps, pct);
    fflush(stdout);
}

/*
 * One operation's tensors: forward x, y; backward y, dy, dx; xent logits, labels, loss, grad.
 * Inputs come first; each has host memory and, on OpenCL, a device buffer.
 */
#define BENCH_SLOTS 4

typedef struct op_data {
    bench_op op;
    clsoftmax_desc desc;
    clsoftmax_cross_entropy_desc xent;
    size_t nslots;
    size_t bytes[BENCH_SLOTS];
    void* host[BENCH_SLOTS];
    cl_mem buf[BENCH_SLOTS];
} op_data;

static clsoftmax_status run_host(clsoftmax_context* ctx, op_data* d)
{
    switch (d->op) {
    case BENCH_BACKWARD:
        return clsoftmax_softmax_backward_host(ctx, &d->desc, d->host[0], d->host[1], d->host[2]);
    case BENCH_XENT:
        return clsoftmax_cross_entropy_host(ctx, &d->xent, d->host[0], d->host[1], NULL, d->host[2],
                                            d->host[3]);
    default:
        return clsoftmax_softmax_host(ctx, &d->desc, d->host[0], d->host[1]);
    }
}

static clsoftmax_status run_buffer(clsoftmax_context* ctx, op_data* d)
{
    switch (d->op) {
    case BENCH_BACKWARD:
        return clsoftmax_softmax_backward_buffer(ctx, &d->desc, d->buf[0], 0, d->buf[1], 0,
                                                 d->buf[2], 0, NULL, 0, NULL, NULL);
    case BENCH_XENT:
        return clsoftmax_cross_entropy_buffer(ctx, &d->xent, d->buf[0], 0, d->buf[1], 0, NULL, 0,
                                              d->buf[2], 0, d->buf[3], 0, NULL, 0, NULL, NULL);
    default:
        return clsoftmax_softmax_buffer(ctx, &d->desc, d->buf[0], 0, d->buf[1], 0, NULL, 0, NULL,
                                        NULL);
    }
}

/*
 * Median seconds of the host entry point (*host_s) and, on OpenCL, of the buffer entry point
 * (*buffer_s), after one warm-up call of each (and clsoftmax_prepare for the forward). The two
 * alternate run by run, so a change in the machine's load hits both alike and their ratio
 * holds. 0, or -1 when a call fails.
 */
static int time_paths(clsoftmax_context* ctx, op_data* d, int is_cl, int runs, double* host_s,
                      double* buffer_s)
{
    double host[256];
    double buffer[256];
    cl_command_queue q = clsoftmax_context_cl_queue(ctx);
    if (d->op == BENCH_FORWARD && clsoftmax_prepare(ctx, &d->desc) != CLSOFTMAX_SUCCESS)
        return -1;
    for (int r = -1; r < runs; r++) {
        if (is_cl) {
            double t0 = cli_now_seconds();
            if (run_buffer(ctx, d) != CLSOFTMAX_SUCCESS || clFinish(q) != CL_SUCCESS)
                return -1;
            if (r >= 0)
                buffer[r] = cli_now_seconds() - t0;
        }
        double t0 = cli_now_seconds();
        if (run_host(ctx, d) != CLSOFTMAX_SUCCESS)
            return -1;
        if (r >= 0)
            host[r] = cli_now_seconds() - t0;
    }
    *host_s = median_of(host, runs);
    if (is_cl)
        *buffer_s = median_of(buffer, runs);
    return 0;
}

/* Stores v in element i of a dtype array. */
static void store(clsoftmax_dtype dtype, void* data, size_t i, float v)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        ((double*)data)[i] = v;
        break;
    case CLSOFTMAX_FLOAT16:
        ((uint16_t*)data)[i] = cli_f32_to_f16(v);
        break;
    case CLSOFTMAX_BFLOAT16:
        ((uint16_t*)data)[i] = cli_f32_to_bf16(v);
        break;
    default:
        ((float*)data)[i] = v;
        break;
    }
}

/*
 * Sets up d for shape s (count elements): sizes, host memory with inputs (a fixed seed),
 * zeroed outputs. 0, or -1 when out of memory.
 */
static int op_data_init(op_data* d, const bench_opts* o, const bench_shape* s, size_t count)
{
    const size_t es = clsoftmax_dtype_size(o->dtype);
    memset(d, 0, sizeof *d);
    d->op = o->op;
    clsoftmax_desc_init(&d->desc, o->dtype, s->ndim, s->dims, s->axis);
    const size_t classes = s->dims[s->ndim - 1];
    const size_t rows = count / classes;
    clsoftmax_cross_entropy_desc_init(&d->xent, o->dtype, rows, classes);
    switch (o->op) {
    case BENCH_BACKWARD:
        d->nslots = 3;
        d->bytes[0] = d->bytes[1] = d->bytes[2] = count * es;
        break;
    case BENCH_XENT:
        d->nslots = 4;
        d->bytes[0] = d->bytes[3] = count * es;
        d->bytes[1] = rows * sizeof(cl_long);
        d->bytes[2] = es;
        break;
    default:
        d->nslots = 2;
        d->bytes[0] = d->bytes[1] = count * es;
        break;
    }
    for (size_t k = 0; k < d->nslots; k++) {
        d->host[k] = calloc(1, d->bytes[k]);
        if (d->host[k] == NULL)
            return -1;
    }
    uint64_t seed = 20240229;
    for (size_t k = 0; k < count; k++) {
        float v = cli_normalish(&seed);
        /* The backward's y is a probability; any value does, the traffic is the same. */
        store(o->dtype, d->host[0], k, o->op == BENCH_BACKWARD ? (v < 0 ? -v : v) / 8.0f : v);
        if (o->op == BENCH_BACKWARD)
            store(o->dtype, d->host[1], k, cli_normalish(&seed));
    }
    for (size_t r = 0; o->op == BENCH_XENT && r < rows; r++)
        ((cl_long*)d->host[1])[r] = (cl_long)(cli_next_random(&seed) % classes);
    return 0;
}

static void op_data_free(op_data* d)
{
    for (size_t k = 0; k < BENCH_SLOTS; k++) {
        if (d->buf[k] != NULL)
            clReleaseMemObject(d->buf[k]);
        free(d->host[k]);
    }
}

/* Runs every shape on one backend; 0, or an exit status after printing why. */
static int bench_backend(const bench_opts* o, clsoftmax_backend backend, const char* device,
                         int optional, const bench_shape* shapes, size_t nshapes)
{
    clsoftmax_context* ctx = NULL;
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = backend;
    config.device_selector = device;
    config.use_environment = 0;
    clsoftmax_status st = clsoftmax_context_create(&config, &ctx);
    const char* label = backend == CLSOFTMAX_BACKEND_CPU ? "cpu" : "opencl";
    if (st == CLSOFTMAX_NO_DEVICE && optional) {
        fprintf(stderr, "clsoftmax bench: no OpenCL device; OpenCL skipped\n");
        return 0;
    }
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax bench: no %s context: %s: %s\n", label,
                clsoftmax_status_name(st), clsoftmax_last_create_error());
        return EXIT_RUN_FAILED;
    }
    if (o->dtype == CLSOFTMAX_FLOAT64 && !clsoftmax_context_supports_float64(ctx)) {
        fprintf(stderr, "clsoftmax bench: %s does not support float64; skipped\n",
                clsoftmax_context_device_name(ctx));
        clsoftmax_context_free(ctx);
        return 0;
    }
    if (!o->csv)
        printf("# %s: %s\n", label, clsoftmax_context_device_name(ctx));

    int rc = 0;
    cl_copy copy;
    memset(&copy, 0, sizeof copy);
    const int is_cl = backend == CLSOFTMAX_BACKEND_OPENCL;
    if (is_cl && cl_copy_init(ctx, &copy) != 0) {
        fprintf(stderr, "clsoftmax bench: cannot build the OpenCL copy kernel\n");
        rc = EXIT_RUN_FAILED;
        goto done;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cores > 0 ? (unsigned)cores : 1;
    const size_t es = clsoftmax_dtype_size(o->dtype);

    for (size_t i = 0; i < nshapes && rc == 0; i++) {
        const bench_shape* s = &shapes[i];
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, o->dtype, s->ndim, s->dims, s->axis);
        size_t count = 0;
        st = clsoftmax_desc_validate(&desc, &count);
        const int axis = s->axis < 0 ? s->axis + (int)s->ndim : s->axis;
        const size_t bytes = count * es;
        op_data d;
        if (op_data_init(&d, o, s, count) != 0) {
            fprintf(stderr, "clsoftmax bench: out of memory for %zu bytes\n", bytes);
            rc = EXIT_RUN_FAILED;
            goto next;
        }
        double traffic = 0.0;
        for (size_t k = 0; k < d.nslots; k++)
            traffic += (double)d.bytes[k];

        double copy_s = 0.0;
        if (is_cl) {
            cl_int err = CL_SUCCESS;
            cl_context cl = clsoftmax_context_cl_context(ctx);
            for (size_t k = 0; k < d.nslots && err == CL_SUCCESS; k++)
                d.buf[k] = clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, d.bytes[k],
                                          d.host[k], &err);
            if (err != CL_SUCCESS) {
                fprintf(stderr, "clsoftmax bench: clCreateBuffer of %zu bytes failed (%d)\n", bytes,
                        (int)err);
                rc = EXIT_RUN_FAILED;
                goto next;
            }
            /* Into the last buffer, an output as large as the tensor in every op. */
            copy_s = time_cl_copy(ctx, &copy, d.buf[0], d.buf[d.nslots - 1], bytes, o->runs);
        } else {
            copy_s = time_cpu_copy(d.host[0], d.host[d.nslots - 1], bytes, threads, o->runs);
        }
        if (copy_s <= 0.0) {
            fprintf(stderr, "clsoftmax bench: the copy baseline failed\n");
            rc = EXIT_RUN_FAILED;
            goto next;
        }
        const double copy_gbps = 2.0 * (double)bytes / copy_s * 1e-9;
        report(o, label, "copy", s, axis, 2.0 * (double)bytes, copy_s, copy_gbps);

        double host_s = 0.0, buffer_s = 0.0;
        if (time_paths(ctx, &d, is_cl, o->runs, &host_s, &buffer_s) != 0) {
            fprintf(stderr, "clsoftmax bench: %s failed: %s\n", op_name(o->op),
                    clsoftmax_context_last_error(ctx));
            rc = EXIT_RUN_FAILED;
            goto next;
        }
        if (is_cl)
            report(o, label, "buffer", s, axis, traffic, buffer_s, copy_gbps);
        report(o, label, "host", s, axis, traffic, host_s, copy_gbps);
    next:
        op_data_free(&d);
    }
done:
    cl_copy_free(&copy);
    clsoftmax_context_free(ctx);
    return rc;
}

int cmd_bench(int argc, char** argv)
{
    bench_opts o = {0, BENCH_DEFAULT_RUNS, CLSOFTMAX_FLOAT32, BENCH_FORWARD};
    const char* backend = "all";
    const char* device = NULL;
    const char* shape_list = NULL;
    for (int i = 0; i < argc; i++) {
        const char* arg = argv[i];
        const char* value = NULL;
        char name[32];
        const char* eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name) {
            cli_usage_error("bench", "unknown option '%s'", arg);
            return EXIT_USAGE;
        }
        memcpy(name, arg, len);
        name[len] = '\0';
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            fputs(bench_usage, stdout);
            return 0;
        }
        if (strcmp(name, "--csv") == 0 && eq == NULL) {
            o.csv = 1;
            continue;
        }
        int takes = strcmp(name, "--backend") == 0 || strcmp(name, "--device") == 0 ||
                    strcmp(name, "--shapes") == 0 || strcmp(name, "--dtype") == 0 ||
                    strcmp(name, "--runs") == 0 || strcmp(name, "--op") == 0;
        if (!takes) {
            cli_usage_error("bench", "unknown option '%s'", arg);
            return EXIT_USAGE;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            cli_usage_error("bench", "%s needs a value", name);
            return EXIT_USAGE;
        }
        if (strcmp(name, "--backend") == 0) {
            backend = value;
            if (strcmp(value, "cpu") != 0 && strcmp(value, "opencl") != 0 &&
                strcmp(value, "all") != 0) {
                cli_usage_error("bench", "--backend must be cpu, opencl or all, not '%s'", value);
                return EXIT_USAGE;
            }
        } else if (strcmp(name, "--device") == 0) {
            device = value;
        } else if (strcmp(name, "--shapes") == 0) {
            shape_list = value;
        } else if (strcmp(name, "--dtype") == 0) {
            if (cli_parse_dtype(value, &o.dtype) != 0) {
                cli_usage_error("bench", "--dtype must be f32, f64, f16 or bf16, not '%s'", value);
                return EXIT_USAGE;
            }
        } else if (strcmp(name, "--op") == 0) {
            if (strcmp(value, "forward") == 0)
                o.op = BENCH_FORWARD;
            else if (strcmp(value, "backward") == 0)
                o.op = BENCH_BACKWARD;
            else if (strcmp(value, "xent") == 0)
                o.op = BENCH_XENT;
            else {
                cli_usage_error("bench", "--op must be forward, backward or xent, not '%s'", value);
                return EXIT_USAGE;
            }
        } else {
            size_t runs = 0;
            if (cli_parse_count(value, &runs) != 0 || runs > 255) {
                cli_usage_error("bench", "--runs must be 1 to 255, not '%s'", value);
                return EXIT_USAGE;
            }
            o.runs = (int)runs;
        }
    }

    if (shape_list == NULL)
        shape_list = o.op == BENCH_XENT ? default_xent_shapes : default_shapes;
    bench_shape shapes[BENCH_MAX_SHAPES];
    size_t nshapes = 0;
    if (parse_shapes(shape_list, shapes, &nshapes) != 0) {
        cli_usage_error("bench",
                        "cannot read the shape list '%s' (expected e.g. 16384x1000,1000x16384:0)",
                        shape_list);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < nshapes; i++) {
        clsoftmax_desc desc;
        clsoftmax_desc_init(&desc, o.dtype, shapes[i].ndim, shapes[i].dims, shapes[i].axis);
        size_t count = 0;
        clsoftmax_status st = clsoftmax_desc_validate(&desc, &count);
        char shape[128];
        shape_text(&shapes[i], shape, sizeof shape);
        if (st != CLSOFTMAX_SUCCESS) {
            cli_usage_error("bench", "shape %s axis %d: %s", shape, shapes[i].axis,
                            clsoftmax_status_string(st));
            return EXIT_USAGE;
        }
        if (count > SIZE_MAX / 8) {
            cli_usage_error("bench", "shape %s is too large", shape);
            return EXIT_USAGE;
        }
        const int last = shapes[i].axis == -1 || shapes[i].axis == (int)shapes[i].ndim - 1;
        if (o.op == BENCH_XENT && !last) {
            cli_usage_error("bench", "shape %s axis %d: xent takes the classes along the last axis",
                            shape, shapes[i].axis);
            return EXIT_USAGE;
        }
    }

    if (o.csv)
        printf("backend,path,dtype,shape,axis,median_ms,gbps,pct_of_copy,op\n");
    else
        printf("%-7s %-7s %-4s %-8s %-14s %4s %11s %9s %8s\n", "backend", "path", "type", "op",
               "shape", "axis", "median_ms", "GB/s", "of copy");
    int rc = 0;
    if (strcmp(backend, "cpu") == 0 || strcmp(backend, "all") == 0)
        rc = bench_backend(&o, CLSOFTMAX_BACKEND_CPU, NULL, 0, shapes, nshapes);
    if (rc == 0 && (strcmp(backend, "opencl") == 0 || strcmp(backend, "all") == 0)) {
        /* "all" on a machine without OpenCL still reports the CPU backend. */
        rc = bench_backend(&o, CLSOFTMAX_BACKEND_OPENCL, device, strcmp(backend, "all") == 0,
                           shapes, nshapes);
    }
    return rc;
}
