/* cli_util.h - what every subcommand of the clsoftmax tool shares: parsing, output files, timing.
 */
#ifndef CLSOFTMAX_CLI_UTIL_H
#define CLSOFTMAX_CLI_UTIL_H

#include "clsoftmax.h"
#include "npy.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Exit statuses: 1 when the work itself failed, 2 when the request was wrong, 3 when the data
 * hold a bad row and `--nonfinite error` asked to stop there.
 */
#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NONFINITE 3

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
int cli_parse_dtype(const char* text, clsoftmax_dtype* dtype); /* f32, f64, f16 or bf16 */
int cli_parse_long_long(const char* text, long long* value);

/* "f32", "f64", "f16" or "bf16". */
const char* cli_dtype_name(clsoftmax_dtype dtype);
/* The .npy dtype a tensor of dtype is stored as: '<f4', '<f8', '<f2', or '<u2' for bfloat16. */
npy_dtype cli_npy_dtype(clsoftmax_dtype dtype);

/*
 * The library dtype of a .npy file's data: requested (a --dtype value) when has_requested,
 * which must match the file ('<u2' for bf16: the file holds the raw words), else the file's own
 * ('<u2' then needs --dtype bf16, since NumPy has no bfloat16 and uint16 could be anything).
 * Integer files are refused. Prints "clsoftmax COMMAND: PATH: problem" and returns EXIT_USAGE,
 * or returns 0.
 */
int cli_resolve_dtype(const char* command, const char* path, npy_dtype file, int has_requested,
                      clsoftmax_dtype requested, clsoftmax_dtype* dtype);

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
 * Commands with several outputs call write for each, then finish for each, so
 * that a failed write leaves no output at all. At most CLI_MAX_OUTPUTS are open.
 */
#define CLI_MAX_OUTPUTS 4

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
/* commit in two steps: write the array to the temporary file and close it; rename it. */
int cli_output_write(cli_output* out, npy_dtype dtype, size_t ndim, const size_t* dims,
                     const void* data);
int cli_output_finish(cli_output* out);

/* Exact IEEE binary16 and bfloat16 conversions, round to nearest even (for test data). */
float cli_f16_to_f32(uint16_t h);
uint16_t cli_f32_to_f16(float f);
float cli_bf16_to_f32(uint16_t h);
uint16_t cli_f32_to_bf16(float f);

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
int cmd_xent(int argc, char** argv);      /* cmd_xent.c */

#endif /* CLSOFTMAX_CLI_UTIL_H */
