/* onednn_softmax.c - oneDNN's softmax through its C API, timed like `clsoftmax bench`.
 *
 * Built by tools/bench/peers.sh (not by CMake) against Debian's libdnnl-dev (oneDNN 2.x):
 *   cc -O2 onednn_softmax.c -o onednn_softmax -ldnnl
 * Usage: onednn_softmax RUNS SHAPE...   (SHAPE as in `clsoftmax bench --shapes`: 16384x1000,
 * 1000x16384:0). For each shape prints "onednn,f32,SHAPE,AXIS,MEDIAN_MS": the median of RUNS
 * timed executions after one warm-up, float32, forward inference, out of place. Threads come
 * from OMP_NUM_THREADS (Debian builds oneDNN on OpenMP).
 */
#define _POSIX_C_SOURCE 200809L
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "onednn_softmax: %s failed (%d)\n", #call, (int)s_);                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void* a, const void* b)
{
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

/* Plain row-major tags for 1 to 6 dimensions. */
static const dnnl_format_tag_t plain_tags[7] = {
    dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef};

static void run_shape(dnnl_engine_t engine, dnnl_stream_t stream, const char* text, int runs)
{
    char buf[256];
    dnnl_dims_t dims;
    int ndims = 0;
    int axis = -1;
    snprintf(buf, sizeof buf, "%s", text);
    char* colon = strchr(buf, ':');
    if (colon != NULL) {
        *colon = '\0';
        axis = atoi(colon + 1);
    }
    for (char* p = strtok(buf, "x"); p != NULL && ndims < 6; p = strtok(NULL, "x"))
        dims[ndims++] = atoll(p);
    if (axis < 0)
        axis += ndims;
    size_t count = 1;
    for (int d = 0; d < ndims; d++)
        count *= (size_t)dims[d];

    dnnl_memory_desc_t md;
    CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, plain_tags[ndims]));
    dnnl_softmax_desc_t sd;
    CHECK(dnnl_softmax_forward_desc_init(&sd, dnnl_forward_inference, &md, axis));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &sd, NULL, engine, NULL));
    dnnl_primitive_t prim;
    CHECK(dnnl_primitive_create(&prim, pd));

    float* in = malloc(count * sizeof *in);
    float* out = malloc(count * sizeof *out);
    if (in == NULL || out == NULL) {
        fprintf(stderr, "onednn_softmax: out of memory\n");
        exit(1);
    }
    unsigned long long state = 20240229;
    for (size_t i = 0; i < count; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        in[i] = (float)((double)(state >> 11) * 0x1.0p-53 * 16.0 - 8.0);
    }
    memset(out, 0, count * sizeof *out);
    dnnl_memory_t src, dst;
    CHECK(dnnl_memory_create(&src, &md, engine, in));
    CHECK(dnnl_memory_create(&dst, &md, engine, out));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};

    double* times = malloc((size_t)runs * sizeof *times);
    for (int r = -1; r < runs; r++) {
        double t0 = now();
        CHECK(dnnl_primitive_execute(prim, stream, 2, args));
        CHECK(dnnl_stream_wait(stream));
        if (r >= 0)
            times[r] = now() - t0;
    }
    qsort(times, (size_t)runs, sizeof *times, cmp_double);
    double median = runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
    char shape[256];
    snprintf(shape, sizeof shape, "%s", text);
    colon = strchr(shape, ':');
    if (colon != NULL)
        *colon = '\0';
    printf("onednn,f32,%s,%d,%.4f\n", shape, axis, median * 1e3);
    fflush(stdout);

    free(times);
    dnnl_memory_destroy(src);
    dnnl_memory_destroy(dst);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    free(in);
    free(out);
}

int main(int argc, char** argv)
{
    if (argc < 3 || atoi(argv[1]) < 1) {
        fprintf(stderr, "usage: onednn_softmax RUNS SHAPE...\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    for (int i = 2; i < argc; i++)
        run_shape(engine, stream, argv[i], runs);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
