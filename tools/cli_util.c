/* cli_util.c - option parsing, atomic output files, timing and test data for the clsoftmax tool. */
#include "cli_util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void cli_usage_error(const char* command, const char* fmt, ...)
{
    va_list ap;
    fprintf(stderr, "clsoftmax%s%s: ", command != NULL ? " " : "", command != NULL ? command : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'clsoftmax --help'.\n");
}

int cli_parse_int(const char* text, int* value)
{
    char* end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX)
        return -1;
    *value = (int)v;
    return 0;
}

int cli_parse_finite_double(const char* text, double* value)
{
    char* end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *value = v;
    return 0;
}

/* strtoull alone would accept "-1" as a huge number. */
int cli_parse_count(const char* text, size_t* value)
{
    char* end;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE || v == 0 || v > SIZE_MAX)
        return -1;
    *value = (size_t)v;
    return 0;
}

int cli_parse_backend(const char* text, clsoftmax_backend* backend)
{
    if (strcmp(text, "auto") == 0)
        *backend = CLSOFTMAX_BACKEND_AUTO;
    else if (strcmp(text, "cpu") == 0)
        *backend = CLSOFTMAX_BACKEND_CPU;
    else if (strcmp(text, "opencl") == 0)
        *backend = CLSOFTMAX_BACKEND_OPENCL;
    else
        return -1;
    return 0;
}

clsoftmax_status cli_create_context(int backend_set, clsoftmax_backend backend, const char* device,
                                    clsoftmax_context** ctx)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    if (backend_set || device != NULL) {
        config.use_environment = 0;
        config.backend = backend_set ? backend : CLSOFTMAX_BACKEND_AUTO;
        config.device_selector = device;
    }
    return clsoftmax_context_create(&config, ctx);
}

int cli_parse_dtype(const char* text, clsoftmax_dtype* dtype)
{
    static const clsoftmax_dtype all[4] = {CLSOFTMAX_FLOAT32, CLSOFTMAX_FLOAT64, CLSOFTMAX_FLOAT16,
                                           CLSOFTMAX_BFLOAT16};
    for (size_t i = 0; i < 4; ++i) {
        if (strcmp(text, cli_dtype_name(all[i])) == 0) {
            *dtype = all[i];
            return 0;
        }
    }
    return -1;
}

int cli_parse_long_long(const char* text, long long* value)
{
    char* end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE)
        return -1;
    *value = v;
    return 0;
}

const char* cli_dtype_name(clsoftmax_dtype dtype)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        return "f64";
    case CLSOFTMAX_FLOAT16:
        return "f16";
    case CLSOFTMAX_BFLOAT16:
        return "bf16";
    default:
        return "f32";
    }
}

npy_dtype cli_npy_dtype(clsoftmax_dtype dtype)
{
    switch (dtype) {
    case CLSOFTMAX_FLOAT64:
        return NPY_FLOAT64;
    case CLSOFTMAX_FLOAT16:
        return NPY_FLOAT16;
    case CLSOFTMAX_BFLOAT16:
        return NPY_UINT16;
    default:
        return NPY_FLOAT32;
    }
}

int cli_resolve_dtype(const char* command, const char* path, npy_dtype file, int has_requested,
                      clsoftmax_dtype requested, clsoftmax_dtype* dtype)
{
    if (file == NPY_INT64) {
        fprintf(stderr,
                "clsoftmax %s: %s: dtype '<i8' (int64) holds labels, not values to take a "
                "softmax of\n",
                command, path);
        return EXIT_USAGE;
    }
    if (has_requested) {
        if (cli_npy_dtype(requested) != file) {
            fprintf(
                stderr,
                "clsoftmax %s: %s: dtype mismatch: --dtype %s reads '%s' files%s, this one "
                "is '%s' (the tool converts nothing)\n",
                command, path, cli_dtype_name(requested), npy_dtype_descr(cli_npy_dtype(requested)),
                requested == CLSOFTMAX_BFLOAT16 ? " (raw bfloat16 words: x.view(np.uint16))" : "",
                npy_dtype_descr(file));
            return EXIT_USAGE;
        }
        *dtype = requested;
        return 0;
    }
    switch (file) {
    case NPY_FLOAT64:
        *dtype = CLSOFTMAX_FLOAT64;
        return 0;
    case NPY_FLOAT16:
        *dtype = CLSOFTMAX_FLOAT16;
        return 0;
    case NPY_UINT16:
        fprintf(stderr,
                "clsoftmax %s: %s: dtype '<u2' (uint16) is read only as raw bfloat16 words, "
                "with --dtype bf16\n",
                command, path);
        return EXIT_USAGE;
    default:
        *dtype = CLSOFTMAX_FLOAT32;
        return 0;
    }
}

const char* cli_backend_label(const clsoftmax_context* ctx)
{
    return clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_OPENCL ? "OpenCL" : "CPU";
}

/* ---- output files ---------------------------------------------------------- */

/* The temporary files to remove if a signal ends the process before their rename. */
static char* temp_paths[CLI_MAX_OUTPUTS];
static volatile sig_atomic_t temp_armed[CLI_MAX_OUTPUTS];

static void remove_temp_on_signal(int sig)
{
    /* unlink, signal and raise are async-signal-safe. */
    for (size_t i = 0; i < CLI_MAX_OUTPUTS; ++i)
        if (temp_armed[i])
            unlink(temp_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Arms a free slot for path; -1 when all CLI_MAX_OUTPUTS are taken. */
static int install_signal_cleanup(char* path)
{
    for (size_t i = 0; i < CLI_MAX_OUTPUTS; ++i) {
        if (temp_armed[i])
            continue;
        temp_paths[i] = path;
        temp_armed[i] = 1;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = remove_temp_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        return 0;
    }
    return -1;
}

static void disarm_signal_cleanup(const char* path)
{
    for (size_t i = 0; i < CLI_MAX_OUTPUTS; ++i)
        if (temp_armed[i] && temp_paths[i] == path)
            temp_armed[i] = 0;
}

int cli_output_begin(cli_output* out, const char* command, const char* path)
{
    out->command = command;
    out->path = path;
    out->temp_path = NULL;
    out->fd = -1;

    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "clsoftmax %s: %s: is a directory\n", command, path);
        return EXIT_USAGE;
    }
    size_t len = strlen(path);
    out->temp_path = malloc(len + sizeof(".tmpXXXXXX"));
    if (out->temp_path == NULL) {
        fprintf(stderr, "clsoftmax %s: out of memory\n", command);
        return EXIT_RUN_FAILED;
    }
    memcpy(out->temp_path, path, len);
    memcpy(out->temp_path + len, ".tmpXXXXXX", sizeof(".tmpXXXXXX"));
    out->fd = mkstemp(out->temp_path);
    if (out->fd < 0) {
        fprintf(stderr, "clsoftmax %s: %s: cannot create a temporary file beside it: %s\n", command,
                path, strerror(errno));
        free(out->temp_path);
        out->temp_path = NULL; /* nothing of ours to remove */
        return EXIT_USAGE;
    }
    if (install_signal_cleanup(out->temp_path) != 0) {
        fprintf(stderr, "clsoftmax %s: more than %d output files\n", command, CLI_MAX_OUTPUTS);
        cli_output_abort(out);
        return EXIT_RUN_FAILED;
    }
    /* mkstemp creates mode 0600; give the result the mode a plain fopen would. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(out->fd, 0666 & ~mask) != 0) {
        fprintf(stderr, "clsoftmax %s: %s: chmod failed: %s\n", command, out->temp_path,
                strerror(errno));
        cli_output_abort(out);
        return EXIT_RUN_FAILED;
    }
    return 0;
}

int cli_output_write(cli_output* out, npy_dtype dtype, size_t ndim, const size_t* dims,
                     const void* data)
{
    char msg[1024];
    FILE* stream = fdopen(out->fd, "wb");
    if (stream == NULL) {
        fprintf(stderr, "clsoftmax %s: %s: %s\n", out->command, out->temp_path, strerror(errno));
        cli_output_abort(out);
        return EXIT_RUN_FAILED;
    }
    out->fd = -1;
    npy_result nr = npy_write_stream(stream, out->path, dtype, ndim, dims, data, msg, sizeof(msg));
    int close_failed = fclose(stream) != 0;
    if (nr != NPY_OK || close_failed) {
        if (nr == NPY_OK)
            snprintf(msg, sizeof(msg), "%s: write failed: %s", out->path, strerror(errno));
        fprintf(stderr, "clsoftmax %s: %s\n", out->command, msg);
        cli_output_abort(out);
        return EXIT_RUN_FAILED;
    }
    return 0;
}

int cli_output_finish(cli_output* out)
{
    if (rename(out->temp_path, out->path) != 0) {
        fprintf(stderr, "clsoftmax %s: cannot rename %s to %s: %s\n", out->command, out->temp_path,
                out->path, strerror(errno));
        cli_output_abort(out);
        return EXIT_USAGE;
    }
    disarm_signal_cleanup(out->temp_path);
    free(out->temp_path);
    out->temp_path = NULL;
    return 0;
}

int cli_output_commit(cli_output* out, npy_dtype dtype, size_t ndim, const size_t* dims,
                      const void* data)
{
    int rc = cli_output_write(out, dtype, ndim, dims, data);
    return rc != 0 ? rc : cli_output_finish(out);
}

void cli_output_abort(cli_output* out)
{
    if (out->fd >= 0)
        close(out->fd);
    out->fd = -1;
    if (out->temp_path != NULL) {
        disarm_signal_cleanup(out->temp_path);
        unlink(out->temp_path);
        free(out->temp_path);
        out->temp_path = NULL;
    }
}

/* ---- 16-bit floats ------------------------------------------------------------ */

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

float cli_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* inf, or NaN made quiet (as F16C's vcvtph2ps) */
        return bits_float(sign | 0x7f800000u | (man << 13) | (man != 0 ? 0x400000u : 0u));
    if (exp == 0) /* zero or subnormal: man * 2^-24, exact in float */
        return (sign ? -1.0f : 1.0f) * (float)man * 5.9604644775390625e-8f;
    return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t cli_f32_to_f16(float f)
{
    uint32_t u = float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: keep it quiet */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* rounds to 65520 or more: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: subnormal; rint rounds half to even */
        float scaled = bits_float(a) * 16777216.0f; /* exact: in units of 2^-24 */
        return (uint16_t)(sign | (uint16_t)rintf(scaled));
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u); /* round to nearest even at bit 13 */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

float cli_bf16_to_f32(uint16_t h) { return bits_float((uint32_t)h << 16); }

uint16_t cli_f32_to_bf16(float f)
{
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---- timing and test data ---------------------------------------------------- */

double cli_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t cli_next_random(uint64_t* state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float cli_normalish(uint64_t* state)
{
    double sum = 0.0;
    for (int i = 0; i < 4; ++i)
        sum += (double)(cli_next_random(state) >> 11) * (1.0 / 9007199254740992.0);
    return (float)((sum - 2.0) * 4.0);
}

static int compare_doubles(const void* a, const void* b)
{
    double x = *(const double*)a;
    double y = *(const double*)b;
    return (x > y) - (x < y);
}

double cli_median(double* values, size_t n)
{
    qsort(values, n, sizeof(values[0]), compare_doubles);
    return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}
