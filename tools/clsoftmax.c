/* clsoftmax.c - the `clsoftmax` tool: devices, run (softmax and its backward on .npy), demo. */
#include "cli_util.h"
#include "clsoftmax.h"
#include "npy.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage_commands[] =
    "usage: clsoftmax <command> [options]\n"
    "\n"
    "commands:\n"
    "  devices     list OpenCL platforms and devices, and the one `auto` picks\n"
    "  run [options] IN.npy OUT.npy\n"
    "              softmax of IN along one axis, written to OUT with the same dtype and shape\n"
    "  run --backward [options] Y.npy DY.npy OUT.npy\n"
    "              the gradient DX of the softmax (--log: log-softmax) whose output is Y,\n"
    "              given DY = dL/dY; Y, DY and OUT share one shape and dtype\n"
    "      --axis A      the axis; negative counts from the end (default -1)\n"
    "      --log         log-softmax instead of softmax\n"
    "      --scale S     softmax(S * x); any finite number (default 1)\n"
    "      --dtype T     f32, f64, f16 or bf16; default: the input file's ('<f4', '<f8',\n"
    "                    '<f2'). bf16 reads and writes '<u2' files of raw bfloat16 words\n"
    "                    (NumPy has no bfloat16: save x.view(np.uint16)); a '<u2' file needs\n"
    "                    --dtype bf16. --dtype never converts: a mismatch is an error\n"
    "      --alpha A     OUT = A * result + B * OUT (default 1)\n"
    "      --beta B      (default 0). B != 0 reads the existing OUT.npy as the blend input:\n"
    "                    it must exist with the result's shape and dtype. In the compute\n"
    "                    precision, rounded once\n"
    "      --nonfinite P what a bad row (t = S * x holds NaN or +inf, or is -inf throughout)\n"
    "                    gives: nan (default: NaN throughout), zero (0 throughout), or error\n"
    "                    (exit 3, the first bad row named, nothing written). Forward only\n"
    "      --report      print the count of bad rows and the first one to stderr (forward)\n"
    "                    rows are numbered o * inner + i: o over the extents before the\n"
    "                    axis, i over those after it (row r of a 2-D tensor over axis -1)\n"
    "      --backend B   auto, cpu or opencl\n"
    "      --device SEL  an index from `clsoftmax devices`, or a case-insensitive\n"
    "                    substring of \"platform / device\"\n"
    "  xent LOGITS.npy LABELS.npy OUT.npy [--grad GRAD.npy] [--probs] [--reduction R] ...\n"
    "              softmax cross-entropy of logits [.., classes] and labels, as PyTorch's\n"
    "              cross_entropy (`clsoftmax xent --help`)\n";

/* Two parts: C99 promises string literals of 4095 characters only. */
static const char usage_rest[] =
    "  demo [--backend B] [--device SEL] [--rows R] [--cols C]\n"
    "              softmax over an R x C float32 batch (default 16384 x 1000) on the\n"
    "              default device: first-call time, median of 7 runs, effective GB/s,\n"
    "              and a check against the CPU backend\n"
    "  bench [--op forward|backward|xent] [--dtype f32|f64|f16|bf16] [--backend cpu|opencl|all]\n"
    "        [--shapes LIST] [--runs N] [--csv]\n"
    "              throughput per shape (median of N runs, default 7) beside a copy\n"
    "              of the same bytes on the same device; `clsoftmax bench --help` for more\n"
    "  tune [--device SEL] [--quick] [--out FILE]\n"
    "              time kernel parameters on the OpenCL device and write the device's\n"
    "              parameter file, which contexts load at creation (`tune --help`)\n"
    "  attention Q.npy K.npy V.npy OUT.npy [--causal] [--mask M.npy] [--scale S] [--backend B]\n"
    "              scaled-dot-product attention (`clsoftmax attention --help`)\n"
    "  head X.npy W.npy OUT.npy [--bias B.npy] [--topk K] [--log] [--scale S] [--backend B]\n"
    "              classifier head softmax(X . W^T + B), optionally top-K (`clsoftmax head "
    "--help`)\n"
    "  bench-ops --op attention|head [--backend B] [--quick]\n"
    "              time the head and attention (GEMM vs softmax split, GFLOP/s)\n"
    "  --help, --version\n"
    "\n"
    "Options may come before or after the file names; `--opt=value` works too.\n"
    "Without --backend and --device, CLSOFTMAX_BACKEND and CLSOFTMAX_DEVICE choose\n"
    "(else auto: a GPU, then any OpenCL device, then the CPU fallback); with either\n"
    "option the environment is ignored.\n"
    "\n"
    "Input files: NumPy format 1.0, 2.0 or 3.0, C order, 1 to 8 dimensions; '<f4', '<f8',\n"
    "'<f2', or '<u2' (bfloat16 words, with --dtype bf16); xent's index labels '<i8'.\n"
    "attention and head take '<f4' and '<f8' only.\n"
    "Each output is written to a temporary file beside it and renamed when every output\n"
    "is complete: on any failure no output appears and existing ones are left unchanged.\n"
    "\n"
    "exit status:\n"
    "  0  success\n"
    "  1  the work failed: a library or OpenCL error, out of memory, a write error,\n"
    "     or (demo) results that differ from the CPU backend\n"
    "  2  bad usage or bad input: an unknown option or command, a malformed or\n"
    "     unsupported .npy file, a --dtype that does not match the file, shapes that\n"
    "     do not match, an axis out of range for the tensor or an empty tensor (checked\n"
    "     before any device work), a label out of range, an output path that cannot be\n"
    "     created\n"
    "  3  `--nonfinite error` found a bad row (stderr names the first; nothing written)\n";

static void print_usage(FILE* stream)
{
    fputs(usage_commands, stream);
    fputs(usage_rest, stream);
}

/* ---- option parsing ------------------------------------------------------- */

typedef struct options {
    int axis;
    int log;
    double scale;
    int backend_set;
    clsoftmax_backend backend;
    const char* device;
    size_t rows;
    size_t cols;
    int help;
    int backward;
    int dtype_set;
    clsoftmax_dtype dtype;
    double alpha;
    double beta;
    int nonfinite_set;
    clsoftmax_nonfinite nonfinite;
    int report;
    const char* files[3];
    size_t file_count;
} options;

/* The flags (no value) of run. */
static int run_flag(const char* name, options* o)
{
    if (strcmp(name, "--log") == 0)
        o->log = 1;
    else if (strcmp(name, "--backward") == 0)
        o->backward = 1;
    else if (strcmp(name, "--report") == 0)
        o->report = 1;
    else
        return -1;
    return 0;
}

/* Whether run (demo: demo) has an option name that takes a value. */
static int takes_value(const char* name, int demo)
{
    static const char* const run_names[] = {"--axis",  "--scale", "--dtype",
                                            "--alpha", "--beta",  "--nonfinite"};
    if (strcmp(name, "--backend") == 0 || strcmp(name, "--device") == 0)
        return 1;
    if (demo)
        return strcmp(name, "--rows") == 0 || strcmp(name, "--cols") == 0;
    for (size_t i = 0; i < sizeof(run_names) / sizeof(run_names[0]); ++i)
        if (strcmp(name, run_names[i]) == 0)
            return 1;
    return 0;
}

/* Sets option name from value; prints the problem and returns -1 when value is bad. */
static int set_value(const char* command, const char* name, const char* value, options* o)
{
    if (strcmp(name, "--axis") == 0) {
        if (cli_parse_int(value, &o->axis) != 0) {
            cli_usage_error(command, "--axis '%s' is not an integer", value);
            return -1;
        }
    } else if (strcmp(name, "--scale") == 0 || strcmp(name, "--alpha") == 0 ||
               strcmp(name, "--beta") == 0) {
        double* target = name[2] == 's' ? &o->scale : name[2] == 'a' ? &o->alpha : &o->beta;
        if (cli_parse_finite_double(value, target) != 0) {
            cli_usage_error(command, "%s '%s' is not a finite number", name, value);
            return -1;
        }
    } else if (strcmp(name, "--dtype") == 0) {
        if (cli_parse_dtype(value, &o->dtype) != 0) {
            cli_usage_error(command, "--dtype '%s' is not one of f32, f64, f16, bf16", value);
            return -1;
        }
        o->dtype_set = 1;
    } else if (strcmp(name, "--nonfinite") == 0) {
        if (strcmp(value, "nan") == 0)
            o->nonfinite = CLSOFTMAX_NONFINITE_NAN;
        else if (strcmp(value, "zero") == 0)
            o->nonfinite = CLSOFTMAX_NONFINITE_ZERO;
        else if (strcmp(value, "error") == 0)
            o->nonfinite = CLSOFTMAX_NONFINITE_ERROR;
        else {
            cli_usage_error(command, "--nonfinite '%s' is not one of nan, zero, error", value);
            return -1;
        }
        o->nonfinite_set = 1;
    } else if (strcmp(name, "--backend") == 0) {
        if (cli_parse_backend(value, &o->backend) != 0) {
            cli_usage_error(command, "--backend '%s' is not one of auto, cpu, opencl", value);
            return -1;
        }
        o->backend_set = 1;
    } else if (strcmp(name, "--device") == 0) {
        o->device = value;
    } else {
        size_t* target = strcmp(name, "--rows") == 0 ? &o->rows : &o->cols;
        if (cli_parse_count(value, target) != 0) {
            cli_usage_error(command, "%s '%s' is not a positive integer", name, value);
            return -1;
        }
    }
    return 0;
}

/*
 * Parses argv[0..argc) of one command. demo selects the demo's options (rows,
 * cols) over run's (axis, log, scale, dtype, backward, blending, non-finite
 * rows, files). Prints the problem and returns -1 on bad usage.
 */
static int parse_options(const char* command, int argc, char** argv, int demo, options* o)
{
    int only_files = 0;
    for (int i = 0; i < argc; ++i) {
        const char* arg = argv[i];
        if (only_files || arg[0] != '-' || arg[1] == '\0') {
            if (demo) {
                cli_usage_error(command, "unexpected argument '%s'", arg);
                return -1;
            }
            if (o->file_count == 3) {
                cli_usage_error(command,
                                "too many file names ('%s'): run takes IN.npy OUT.npy, or "
                                "--backward Y.npy DY.npy OUT.npy",
                                arg);
                return -1;
            }
            o->files[o->file_count++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_files = 1;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            o->help = 1;
            continue;
        }
        /* --name=value or --name value */
        char name[32];
        const char* value = NULL;
        const char* eq = strchr(arg, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (name_len >= sizeof(name)) {
            cli_usage_error(command, "unknown option '%s'", arg);
            return -1;
        }
        memcpy(name, arg, name_len);
        name[name_len] = '\0';
        if (!demo && run_flag(name, o) == 0) {
            if (eq != NULL) {
                cli_usage_error(command, "option %s takes no value", name);
                return -1;
            }
            continue;
        }
        if (!takes_value(name, demo)) {
            cli_usage_error(command, "unknown option '%s'", arg);
            return -1;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            cli_usage_error(command, "option %s needs a value", name);
            return -1;
        }
        if (set_value(command, name, value, o) != 0)
            return -1;
    }
    return 0;
}

/* The context the options ask for; either option turns the environment off. */
static clsoftmax_status create_context(const options* o, clsoftmax_context** ctx)
{
    return cli_create_context(o->backend_set, o->backend, o->device, ctx);
}

/* ---- run ------------------------------------------------------------------- */

/* "axis 5 is out of range..." for the statuses clsoftmax_desc_validate returns. */
static void describe_invalid_desc(const clsoftmax_desc* desc, clsoftmax_status st, char* buf,
                                  size_t size)
{
    switch (st) {
    case CLSOFTMAX_INVALID_AXIS:
        snprintf(buf, size, "axis %d is out of range for a %zu-D tensor (valid: %d..%d)",
                 desc->axis, desc->ndim, -(int)desc->ndim, (int)desc->ndim - 1);
        break;
    case CLSOFTMAX_INVALID_SHAPE:
        snprintf(buf, size, "the tensor is empty (a zero extent) or has an unsupported rank");
        break;
    case CLSOFTMAX_INVALID_ARGUMENT:
        snprintf(buf, size, "--alpha or --beta is not finite once rounded to %s",
                 cli_dtype_name(desc->dtype));
        break;
    default:
        snprintf(buf, size, "%s", clsoftmax_status_string(st));
        break;
    }
}

/* Reads path; prints why and returns an exit status when that fails. */
static int read_input(const char* path, npy_array* a)
{
    char msg[1024];
    npy_result nr = npy_read(path, a, msg, sizeof(msg));
    if (nr == NPY_OK)
        return 0;
    fprintf(stderr, "clsoftmax run: %s\n", msg);
    return nr == NPY_ERR_MEMORY ? EXIT_RUN_FAILED : EXIT_USAGE;
}

/* Whether b has a's dtype and shape; prints the difference (naming b's path) when not. */
static int same_layout(const char* what, const char* a_path, const npy_array* a, const char* b_path,
                       const npy_array* b)
{
    if (a->dtype == b->dtype && a->ndim == b->ndim &&
        memcmp(a->dims, b->dims, a->ndim * sizeof(size_t)) == 0)
        return 1;
    char as[160] = "";
    char bs[160] = "";
    for (size_t d = 0; d < a->ndim; ++d)
        snprintf(as + strlen(as), sizeof(as) - strlen(as), d ? ", %zu" : "%zu", a->dims[d]);
    for (size_t d = 0; d < b->ndim; ++d)
        snprintf(bs + strlen(bs), sizeof(bs) - strlen(bs), d ? ", %zu" : "%zu", b->dims[d]);
    fprintf(stderr,
            "clsoftmax run: %s: %s must have the shape and dtype of %s: (%s) '%s' vs (%s) "
            "'%s'\n",
            b_path, what, a_path, bs, npy_dtype_descr(b->dtype), as, npy_dtype_descr(a->dtype));
    return 0;
}

static void print_report(const char* in_path, const clsoftmax_row_report* rep)
{
    if (rep->bad_rows == 0)
        fprintf(stderr, "clsoftmax run: %s: 0 bad rows\n", in_path);
    else
        fprintf(stderr,
                "clsoftmax run: %s: %zu bad row%s (NaN or +inf, or -inf throughout); the first "
                "is row %zu\n",
                in_path, rep->bad_rows, rep->bad_rows == 1 ? "" : "s", rep->first_bad_row);
}

static int cmd_run(int argc, char** argv)
{
    options o;
    memset(&o, 0, sizeof(o));
    o.axis = -1;
    o.scale = 1.0;
    o.alpha = 1.0;
    if (parse_options("run", argc, argv, 0, &o) != 0)
        return EXIT_USAGE;
    if (o.help) {
        print_usage(stdout);
        return 0;
    }
    const size_t want_files = o.backward ? 3 : 2;
    if (o.file_count != want_files) {
        cli_usage_error("run", "expected %s, got %zu file name%s",
                        o.backward ? "Y.npy DY.npy OUT.npy (--backward)" : "IN.npy and OUT.npy",
                        o.file_count, o.file_count == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    if (o.backward && (o.nonfinite_set || o.report)) {
        cli_usage_error("run", "--nonfinite and --report apply to the forward operation only; "
                               "the backward takes NaN where the data have it");
        return EXIT_USAGE;
    }
    const char* in_path = o.files[0];
    const char* dy_path = o.backward ? o.files[1] : NULL;
    const char* out_path = o.files[want_files - 1];

    int rc = EXIT_RUN_FAILED;
    npy_array array;
    npy_array dy;
    npy_array old;
    memset(&array, 0, sizeof(array));
    memset(&dy, 0, sizeof(dy));
    memset(&old, 0, sizeof(old));
    clsoftmax_context* ctx = NULL;
    cli_output out;
    int out_open = 0;
    char msg[1024];

    rc = read_input(in_path, &array);
    if (rc != 0)
        goto done;
    clsoftmax_dtype dtype;
    rc = cli_resolve_dtype("run", in_path, array.dtype, o.dtype_set, o.dtype, &dtype);
    if (rc != 0)
        goto done;
    if (o.backward) {
        rc = read_input(dy_path, &dy);
        if (rc == 0 && !same_layout("DY", in_path, &array, dy_path, &dy))
            rc = EXIT_USAGE;
        if (rc != 0)
            goto done;
    }

    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, dtype, array.ndim, array.dims, o.axis);
    desc.scale = o.scale;
    desc.op = o.log ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
    desc.alpha = o.alpha;
    desc.beta = o.beta;
    desc.nonfinite = o.nonfinite;
    /* A request the library would refuse for any backend is a usage error: say so up front. */
    clsoftmax_status st = clsoftmax_desc_validate(&desc, NULL);
    if (st != CLSOFTMAX_SUCCESS) {
        describe_invalid_desc(&desc, st, msg, sizeof(msg));
        fprintf(stderr, "clsoftmax run: %s: %s (%s)\n", in_path, msg, clsoftmax_status_name(st));
        rc = EXIT_USAGE;
        goto done;
    }
    /* beta != 0 blends into what OUT holds now, so OUT is an input too. */
    if (o.beta != 0.0) {
        npy_result nr = npy_read(out_path, &old, msg, sizeof(msg));
        if (nr != NPY_OK) {
            fprintf(stderr, "clsoftmax run: --beta %g reads OUT as the blend input: %s\n", o.beta,
                    msg);
            rc = nr == NPY_ERR_MEMORY ? EXIT_RUN_FAILED : EXIT_USAGE;
            goto done;
        }
        if (!same_layout("OUT (the --beta blend input)", in_path, &array, out_path, &old)) {
            rc = EXIT_USAGE;
            goto done;
        }
    }

    /* Fail on an unusable output path before spending time on the computation. */
    rc = cli_output_begin(&out, "run", out_path);
    if (rc != 0)
        goto done;
    out_open = 1;
    rc = EXIT_RUN_FAILED;

    st = create_context(&o, &ctx);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax run: cannot create a context: %s: %s\n",
                clsoftmax_status_name(st), clsoftmax_last_create_error());
        goto done;
    }
    clsoftmax_row_report rep = {0, SIZE_MAX};
    if (o.report || o.nonfinite == CLSOFTMAX_NONFINITE_ERROR)
        desc.report = &rep;
    /*
     * In place where the library allows it (beta == 0): a large file needs one buffer per
     * input, not one more for the result. With beta != 0 the result lands in OUT's old data.
     */
    void* result = o.beta != 0.0 ? old.data : o.backward ? dy.data : array.data;
    if (o.backward)
        st = clsoftmax_softmax_backward_host(ctx, &desc, array.data, dy.data, result);
    else
        st = clsoftmax_softmax_host(ctx, &desc, array.data, result);
    if (st == CLSOFTMAX_NONFINITE_ROW) {
        fprintf(stderr,
                "clsoftmax run: %s: row %zu is bad (NaN or +inf, or -inf throughout; %zu bad "
                "row%s in all) and --nonfinite is error: nothing written\n",
                in_path, rep.first_bad_row, rep.bad_rows, rep.bad_rows == 1 ? "" : "s");
        rc = EXIT_NONFINITE;
        goto done;
    }
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax run: %s on %s (%s) failed: %s: %s\n",
                o.backward ? "softmax backward" : "softmax", clsoftmax_context_device_name(ctx),
                cli_backend_label(ctx), clsoftmax_status_name(st),
                clsoftmax_context_last_error(ctx));
        goto done;
    }
    if (o.report)
        print_report(in_path, &rep);
    out_open = 0;
    rc = cli_output_commit(&out, array.dtype, array.ndim, array.dims, result);

done:
    if (out_open)
        cli_output_abort(&out);
    clsoftmax_context_free(ctx);
    npy_array_free(&old);
    npy_array_free(&dy);
    npy_array_free(&array);
    return rc;
}

/* ---- devices -------------------------------------------------------------- */

typedef struct device_list {
    cl_device_id* ids;
    size_t count;
    size_t capacity;
    int out_of_memory;
} device_list;

static void format_bytes(cl_ulong bytes, char* buf, size_t size)
{
    if (bytes >= (cl_ulong)1 << 30)
        snprintf(buf, size, "%.2f GiB", (double)bytes / (double)((cl_ulong)1 << 30));
    else if (bytes >= (cl_ulong)1 << 20)
        snprintf(buf, size, "%.1f MiB", (double)bytes / (double)((cl_ulong)1 << 20));
    else
        snprintf(buf, size, "%.0f KiB", (double)bytes / 1024.0);
}

static void format_type(cl_device_type type, char* buf, size_t size)
{
    static const struct {
        cl_device_type bit;
        const char* name;
    } names[] = {{CL_DEVICE_TYPE_CPU, "CPU"},
                 {CL_DEVICE_TYPE_GPU, "GPU"},
                 {CL_DEVICE_TYPE_ACCELERATOR, "accelerator"},
                 {CL_DEVICE_TYPE_CUSTOM, "custom"},
                 {CL_DEVICE_TYPE_DEFAULT, "default"}};
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        if ((type & names[i].bit) == 0)
            continue;
        int n = snprintf(buf + used, size - used, "%s%s", used > 0 ? ", " : "", names[i].name);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(buf, size, "unknown (0x%llx)", (unsigned long long)type);
}

static int print_device(const clsoftmax_device_info* info, void* user)
{
    device_list* list = user;
    if (list->count == list->capacity) {
        size_t cap = list->capacity == 0 ? 8 : list->capacity * 2;
        cl_device_id* ids = realloc(list->ids, cap * sizeof(*ids));
        if (ids == NULL) {
            list->out_of_memory = 1;
            return 1;
        }
        list->ids = ids;
        list->capacity = cap;
    }
    list->ids[list->count++] = info->device;

    char type[64];
    char global[32];
    char local[32];
    format_type(info->type, type, sizeof(type));
    format_bytes(info->global_mem_size, global, sizeof(global));
    format_bytes(info->local_mem_size, local, sizeof(local));
    printf("[%zu] %s / %s\n", info->index, info->platform_name, info->device_name);
    printf("    type:                %s\n", type);
    printf("    compute units:       %u\n", (unsigned)info->compute_units);
    printf("    global memory:       %s\n", global);
    printf("    local memory:        %s\n", local);
    printf("    max work-group size: %zu\n", info->max_work_group_size);
    printf("    float64 (fp64):      %s\n", info->has_fp64 ? "yes" : "no");
    printf("    unified memory:      %s\n", info->host_unified_memory ? "yes" : "no");
    printf("    OpenCL C:            %s\n", info->opencl_c_version);
    printf("    driver:              %s\n", info->driver_version);
    return 0;
}

static int cmd_devices(int argc, char** argv)
{
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout);
            return 0;
        }
        cli_usage_error("devices", "unexpected argument '%s'", argv[i]);
        return EXIT_USAGE;
    }

    device_list list = {NULL, 0, 0, 0};
    clsoftmax_status st = clsoftmax_devices_enumerate(print_device, &list);
    if (list.out_of_memory) {
        fprintf(stderr, "clsoftmax devices: out of memory\n");
        free(list.ids);
        return EXIT_RUN_FAILED;
    }
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax devices: enumeration failed: %s: %s\n",
                clsoftmax_status_name(st), clsoftmax_status_string(st));
        free(list.ids);
        return EXIT_RUN_FAILED;
    }
    if (list.count == 0)
        printf("no OpenCL platform or device found\n");

    const char* env_backend = getenv("CLSOFTMAX_BACKEND");
    const char* env_device = getenv("CLSOFTMAX_DEVICE");
    if ((env_backend != NULL && env_backend[0] != '\0') ||
        (env_device != NULL && env_device[0] != '\0'))
        printf("environment: CLSOFTMAX_BACKEND=%s CLSOFTMAX_DEVICE=%s\n",
               env_backend != NULL ? env_backend : "", env_device != NULL ? env_device : "");

    /* Ask the library itself rather than re-implementing its choice. */
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = CLSOFTMAX_BACKEND_AUTO;
    config.use_environment = 1;
    clsoftmax_context* ctx = NULL;
    st = clsoftmax_context_create(&config, &ctx);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax devices: auto cannot create a context: %s: %s\n",
                clsoftmax_status_name(st), clsoftmax_last_create_error());
        free(list.ids);
        return EXIT_RUN_FAILED;
    }
    if (clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_CPU) {
        const char* reason = clsoftmax_context_fallback_reason(ctx);
        printf("auto picks: CPU fallback (%s)\n",
               reason[0] != '\0' ? reason : "the CPU backend was requested");
    } else {
        cl_device_id chosen = clsoftmax_context_cl_device(ctx);
        size_t index = list.count;
        for (size_t i = 0; i < list.count; ++i)
            if (list.ids[i] == chosen)
                index = i;
        if (index < list.count)
            printf("auto picks: [%zu] %s\n", index, clsoftmax_context_device_name(ctx));
        else
            printf("auto picks: %s\n", clsoftmax_context_device_name(ctx));
    }
    clsoftmax_context_free(ctx);
    free(list.ids);
    return 0;
}

/* ---- demo ----------------------------------------------------------------- */

#define DEMO_RUNS 7

/*
 * Runs the softmax once (the first call, with any kernel build), then
 * DEMO_RUNS times; returns the status of the first failure.
 */
static clsoftmax_status time_softmax(clsoftmax_context* ctx, const clsoftmax_desc* desc,
                                     const float* in, float* out, double* first, double* median)
{
    double t0 = cli_now_seconds();
    clsoftmax_status st = clsoftmax_softmax_host(ctx, desc, in, out);
    *first = cli_now_seconds() - t0;
    if (st != CLSOFTMAX_SUCCESS)
        return st;
    double times[DEMO_RUNS];
    for (int r = 0; r < DEMO_RUNS; ++r) {
        t0 = cli_now_seconds();
        st = clsoftmax_softmax_host(ctx, desc, in, out);
        times[r] = cli_now_seconds() - t0;
        if (st != CLSOFTMAX_SUCCESS)
            return st;
    }
    *median = cli_median(times, DEMO_RUNS);
    return CLSOFTMAX_SUCCESS;
}

static int cmd_demo(int argc, char** argv)
{
    options o;
    memset(&o, 0, sizeof(o));
    o.rows = 16384;
    o.cols = 1000;
    if (parse_options("demo", argc, argv, 1, &o) != 0)
        return EXIT_USAGE;
    if (o.help) {
        print_usage(stdout);
        return 0;
    }
    const double rtol = 1e-5;
    const double atol = 1e-6;

    int rc = EXIT_RUN_FAILED;
    float* in = NULL;
    float* out = NULL;
    float* ref = NULL;
    clsoftmax_context* ctx = NULL;
    clsoftmax_context* cpu = NULL;

    size_t dims[2] = {o.rows, o.cols};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    size_t count = 0;
    clsoftmax_status st = clsoftmax_desc_validate(&desc, &count);
    if (st != CLSOFTMAX_SUCCESS || count > SIZE_MAX / sizeof(float)) {
        cli_usage_error("demo", "a %zu x %zu batch is too large", o.rows, o.cols);
        return EXIT_USAGE;
    }
    in = malloc(count * sizeof(float));
    out = malloc(count * sizeof(float));
    ref = malloc(count * sizeof(float));
    if (in == NULL || out == NULL || ref == NULL) {
        fprintf(stderr, "clsoftmax demo: out of memory for a %zu x %zu batch\n", o.rows, o.cols);
        goto done;
    }
    uint64_t seed = 20240229;
    for (size_t i = 0; i < count; ++i)
        in[i] = cli_normalish(&seed);

    st = create_context(&o, &ctx);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax demo: cannot create a context: %s: %s\n",
                clsoftmax_status_name(st), clsoftmax_last_create_error());
        goto done;
    }
    printf("clsoftmax %s demo: softmax over a %zu x %zu float32 batch (axis -1)\n",
           clsoftmax_version_string(), o.rows, o.cols);
    printf("device:        %s\n", clsoftmax_context_device_name(ctx));
    printf("backend:       %s", cli_backend_label(ctx));
    if (clsoftmax_context_fallback_reason(ctx)[0] != '\0')
        printf(" (fallback: %s)", clsoftmax_context_fallback_reason(ctx));
    printf("\n");
    fflush(stdout);

    double first = 0.0;
    double median = 0.0;
    st = time_softmax(ctx, &desc, in, out, &first, &median);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax demo: softmax failed: %s: %s\n", clsoftmax_status_name(st),
                clsoftmax_context_last_error(ctx));
        goto done;
    }
    double bytes = 2.0 * (double)count * (double)sizeof(float);
    printf("first call:    %.4g ms%s\n", first * 1e3,
           clsoftmax_context_backend(ctx) == CLSOFTMAX_BACKEND_OPENCL
               ? " (includes building the OpenCL program)"
               : "");
    printf("median of %d:   %.4g ms (host memory in and out, transfers included)\n", DEMO_RUNS,
           median * 1e3);
    printf("effective:     %.2f GB/s (2 x %zu elements x 4 bytes / median)\n",
           bytes / median * 1e-9, count);
    fflush(stdout);

    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = CLSOFTMAX_BACKEND_CPU;
    config.use_environment = 0;
    st = clsoftmax_context_create(&config, &cpu);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax demo: cannot create a CPU context: %s: %s\n",
                clsoftmax_status_name(st), clsoftmax_last_create_error());
        goto done;
    }
    double cpu_first = 0.0;
    double cpu_median = 0.0;
    st = time_softmax(cpu, &desc, in, ref, &cpu_first, &cpu_median);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax demo: CPU softmax failed: %s: %s\n", clsoftmax_status_name(st),
                clsoftmax_context_last_error(cpu));
        goto done;
    }
    printf("CPU backend:   median of %d %.4g ms, %.2f GB/s (%s)\n", DEMO_RUNS, cpu_median * 1e3,
           bytes / cpu_median * 1e-9, clsoftmax_context_device_name(cpu));

    double max_abs = 0.0;
    double max_rel = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < count; ++i) {
        double a = out[i];
        double b = ref[i];
        double diff = fabs(a - b);
        /* NaN compares false everywhere: count it as a failure explicitly. */
        if (!(diff <= atol + rtol * fabs(b)))
            ++bad;
        if (diff > max_abs)
            max_abs = diff;
        if (fabs(b) > atol && diff / fabs(b) > max_rel)
            max_rel = diff / fabs(b);
    }
    printf("check vs CPU:  max abs err %.3g, max rel err %.3g (rtol %g, atol %g): %s\n", max_abs,
           max_rel, rtol, atol, bad == 0 ? "PASS" : "FAIL");
    if (bad != 0) {
        fprintf(stderr, "clsoftmax demo: %zu of %zu elements differ from the CPU backend\n", bad,
                count);
        goto done;
    }
    rc = 0;

done:
    clsoftmax_context_free(cpu);
    clsoftmax_context_free(ctx);
    free(ref);
    free(out);
    free(in);
    return rc;
}

/* ---- main ----------------------------------------------------------------- */

int main(int argc, char** argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char* command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(command, "--version") == 0) {
        printf("clsoftmax %s\n", clsoftmax_version_string());
        return 0;
    }
    if (strcmp(command, "devices") == 0)
        return cmd_devices(argc - 2, argv + 2);
    if (strcmp(command, "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(command, "demo") == 0)
        return cmd_demo(argc - 2, argv + 2);
    if (strcmp(command, "bench") == 0)
        return cmd_bench(argc - 2, argv + 2);
    if (strcmp(command, "tune") == 0)
        return cmd_tune(argc - 2, argv + 2);
    if (strcmp(command, "attention") == 0)
        return cmd_attention(argc - 2, argv + 2);
    if (strcmp(command, "head") == 0)
        return cmd_head(argc - 2, argv + 2);
    if (strcmp(command, "bench-ops") == 0)
        return cmd_bench_ops(argc - 2, argv + 2);
    if (strcmp(command, "xent") == 0)
        return cmd_xent(argc - 2, argv + 2);
    fprintf(stderr, "clsoftmax: unknown command '%s'\n\n", command);
    print_usage(stderr);
    return EXIT_USAGE;
}
