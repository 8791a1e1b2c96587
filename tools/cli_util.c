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

const char* cli_backend_label(const clsoftmax_context* ctx)
{
    return clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_OPENCL ? "OpenCL" : "CPU";
}

/* ---- output files ---------------------------------------------------------- */

/* The temporary file to remove if a signal ends the process before the rename. */
static volatile sig_atomic_t temp_armed = 0;
static char* temp_path_for_signal = NULL;

static void remove_temp_on_signal(int sig)
{
    /* unlink, signal and raise are async-signal-safe. */
    if (temp_armed)
        unlink(temp_path_for_signal);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signal_cleanup(char* path)
{
    temp_path_for_signal = path;
    temp_armed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = remove_temp_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
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
    install_signal_cleanup(out->temp_path);
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

int cli_output_commit(cli_output* out, npy_dtype dtype, size_t ndim, const size_t* dims,
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
    if (rename(out->temp_path, out->path) != 0) {
        fprintf(stderr, "clsoftmax %s: cannot rename %s to %s: %s\n", out->command, out->temp_path,
                out->path, strerror(errno));
        cli_output_abort(out);
        return EXIT_USAGE;
    }
    temp_armed = 0;
    free(out->temp_path);
    out->temp_path = NULL;
    return 0;
}

void cli_output_abort(cli_output* out)
{
    if (out->fd >= 0)
        close(out->fd);
    out->fd = -1;
    if (out->temp_path != NULL) {
        temp_armed = 0;
        unlink(out->temp_path);
        free(out->temp_path);
        out->temp_path = NULL;
    }
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
