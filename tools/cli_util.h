/* cli_util.h - what every subcommand of the clsoftmax tool shares: parsing, output files, timing.
 */
#ifndef CLSOFTMAX_CLI_UTIL_H
#define CLSOFTMAX_CLI_UTIL_H

#include "clsoftmax.h"
#include "npy.h"

#include <stddef.h>
#include <stdint.h>

/* Exit statuses: 1 when the work itself failed, 2 when the request was wrong. */
#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2

/* "clsoftmax COMMAND: message\nTry 'clsoftmax --help'." on stderr. */
void cli_usage_error(const char* command, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Each returns 0, or -1 when text is not entirely a value of the kind. */
int cli_parse_int(const char* text, int* value);
int cli_parse_finite_double(const char* text, double* value);
int cli_parse_count(const char* text, size_t* value); /* a positive decimal integer */
int cli_parse_backend(const char* text, clsoftmax_backend* backend);

/*
 * The context a command's --backend / --device ask for: either one turns the
 * environment (CLSOFTMAX_BACKEND, CLSOFTMAX_DEVICE) off; neither leaves it on.
 */
clsoftmax_status cli_create_context(int backend_set, clsoftmax_backend backend, const char* device,
                                    clsoftmax_context** ctx);
/* "OpenCL" or "CPU". */
const char* cli_backend_label(const clsoftmax_context* ctx);

/*
 * An output file written all at once or not at all: begin creates a temporary
 * file beside path (so an unusable path fails before any work), commit writes
 * the array to it and renames it over path, abort removes it. A signal
 * (INT, TERM, HUP) between begin and commit/abort removes it too. Each
 * returns 0 or an exit status after printing "clsoftmax COMMAND: problem".
 */
typedef struct cli_output {
    const char* command;
    const char* path;
    char* temp_path;
    int fd;
} cli_output;

int cli_output_begin(cli_output* out, const char* command, const char* path);
int cli_output_commit(cli_output* out, npy_dtype dtype, size_t ndim, const size_t* dims,
                      const void* data);
void cli_output_abort(cli_output* out);

/* Monotonic seconds. */
double cli_now_seconds(void);
/* splitmix64: a fixed seed gives the same numbers on every machine. */
uint64_t cli_next_random(uint64_t* state);
/* Bell-shaped values in exactly [-8, 8] (Irwin-Hall of 4 uniforms). */
float cli_normalish(uint64_t* state);
/* Median of n values (sorts them in place); n >= 1. */
double cli_median(double* values, size_t n);

/* `clsoftmax bench` (cmd_bench.c). */
int cmd_bench(int argc, char** argv);
/* `clsoftmax tune` (cmd_tune.c) */
int cmd_tune(int argc, char** argv);
int cmd_attention(int argc, char** argv); /* cmd_ops.c */
int cmd_head(int argc, char** argv);      /* cmd_ops.c */
int cmd_bench_ops(int argc, char** argv); /* cmd_bench_ops.c */

#endif /* CLSOFTMAX_CLI_UTIL_H */
