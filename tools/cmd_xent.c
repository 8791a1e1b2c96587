/* cmd_xent.c - `clsoftmax xent`: softmax cross-entropy (and its gradient) of .npy logits. */
#include "cli_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char xent_usage[] =
    "usage: clsoftmax xent LOGITS.npy LABELS.npy OUT.npy [--grad GRAD.npy] [--probs]\n"
    "                      [--ignore-index N] [--smoothing E] [--weights W.npy]\n"
    "                      [--reduction none|sum|mean] [--dtype T] [--backend B] [--device SEL]\n"
    "  Softmax cross-entropy with logits, as PyTorch's F.cross_entropy (and TensorFlow's\n"
    "  softmax_cross_entropy_with_logits): LOGITS [.., classes] holds one row of logits per\n"
    "  sample over its last axis (rows: the product of the other extents; 1-D is one row).\n"
    "  LABELS        class indices, '<i8', one per row (the shape of LOGITS without its last\n"
    "                axis; (1,) for 1-D logits); with --probs, probabilities of LOGITS' shape\n"
    "                and dtype\n"
    "  OUT           the loss, LOGITS' dtype: per row (LOGITS' shape without its last axis)\n"
    "                with --reduction none, else one element, shape (1,)\n"
    "  --grad GRAD   also write the gradient of the (reduced) loss with respect to LOGITS,\n"
    "                LOGITS' shape and dtype, from the same pass\n"
    "  --probs       LABELS are probability rows instead of indices\n"
    "  --ignore-index N  rows labelled N have loss 0 and gradient 0, and MEAN leaves them out\n"
    "                of its divisor (default -100, PyTorch's); index labels only\n"
    "  --smoothing E label smoothing, 0 <= E <= 1 (default 0)\n"
    "  --weights W   per-class weights [classes], LOGITS' dtype (default all 1)\n"
    "  --reduction R none, sum or mean (default mean: divided by the sum of the rows' label\n"
    "                weights, PyTorch's rule)\n"
    "  --dtype T     f32, f64, f16 or bf16 as for `clsoftmax run` (bf16: '<u2' files)\n"
    "  An index label outside [0, classes) that is not the ignore index is exit 2, naming\n"
    "  its row. OUT and GRAD appear together or not at all.\n";

typedef struct xent_options {
    const char* files[3];
    size_t file_count;
    const char* grad;
    const char* weights;
    int probs;
    int ignore_set;
    long long ignore_index;
    double smoothing;
    clsoftmax_reduction reduction;
    int dtype_set;
    clsoftmax_dtype dtype;
    int backend_set;
    clsoftmax_backend backend;
    const char* device;
} xent_options;

static int set_option(const char* name, const char* value, xent_options* o)
{
    if (strcmp(name, "--grad") == 0) {
        o->grad = value;
    } else if (strcmp(name, "--weights") == 0) {
        o->weights = value;
    } else if (strcmp(name, "--ignore-index") == 0) {
        if (cli_parse_long_long(value, &o->ignore_index) != 0) {
            cli_usage_error("xent", "--ignore-index '%s' is not an integer", value);
            return -1;
        }
        o->ignore_set = 1;
    } else if (strcmp(name, "--smoothing") == 0) {
        if (cli_parse_finite_double(value, &o->smoothing) != 0 || o->smoothing < 0.0 ||
            o->smoothing > 1.0) {
            cli_usage_error("xent", "--smoothing '%s' is not a number from 0 to 1", value);
            return -1;
        }
    } else if (strcmp(name, "--reduction") == 0) {
        if (strcmp(value, "none") == 0)
            o->reduction = CLSOFTMAX_REDUCTION_NONE;
        else if (strcmp(value, "sum") == 0)
            o->reduction = CLSOFTMAX_REDUCTION_SUM;
        else if (strcmp(value, "mean") == 0)
            o->reduction = CLSOFTMAX_REDUCTION_MEAN;
        else {
            cli_usage_error("xent", "--reduction '%s' is not one of none, sum, mean", value);
            return -1;
        }
    } else if (strcmp(name, "--dtype") == 0) {
        if (cli_parse_dtype(value, &o->dtype) != 0) {
            cli_usage_error("xent", "--dtype '%s' is not one of f32, f64, f16, bf16", value);
            return -1;
        }
        o->dtype_set = 1;
    } else if (strcmp(name, "--backend") == 0) {
        if (cli_parse_backend(value, &o->backend) != 0) {
            cli_usage_error("xent", "--backend '%s' is not one of auto, cpu, opencl", value);
            return -1;
        }
        o->backend_set = 1;
    } else {
        o->device = value;
    }
    return 0;
}

/* Parses argv; returns 0, 1 for --help, or -1 after a usage error. */
static int parse(int argc, char** argv, xent_options* o)
{
    static const char* const valued[] = {"--grad",      "--weights",   "--ignore-index",
                                         "--smoothing", "--reduction", "--dtype",
                                         "--backend",   "--device"};
    for (int i = 0; i < argc; i++) {
        const char* arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (o->file_count == 3) {
                cli_usage_error("xent",
                                "too many file names ('%s'): xent takes LOGITS.npy "
                                "LABELS.npy OUT.npy",
                                arg);
                return -1;
            }
            o->files[o->file_count++] = arg;
            continue;
        }
        char name[32];
        const char* eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name) {
            cli_usage_error("xent", "unknown option '%s'", arg);
            return -1;
        }
        memcpy(name, arg, len);
        name[len] = '\0';
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
            return 1;
        if (strcmp(name, "--probs") == 0) {
            if (eq != NULL) {
                cli_usage_error("xent", "option --probs takes no value");
                return -1;
            }
            o->probs = 1;
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
            known |= strcmp(name, valued[k]) == 0;
        if (!known) {
            cli_usage_error("xent", "unknown option '%s'", arg);
            return -1;
        }
        const char* value;
        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            cli_usage_error("xent", "option %s needs a value", name);
            return -1;
        }
        if (set_option(name, value, o) != 0)
            return -1;
    }
    return 0;
}

static int read_npy(const char* path, npy_array* a)
{
    char msg[1024];
    npy_result r = npy_read(path, a, msg, sizeof msg);
    if (r == NPY_OK)
        return 0;
    fprintf(stderr, "clsoftmax xent: %s\n", msg);
    return r == NPY_ERR_MEMORY ? EXIT_RUN_FAILED : EXIT_USAGE;
}

/* "(2, 3)" of a's shape. */
static void shape_text(const size_t* dims, size_t ndim, char* buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "(");
    for (size_t d = 0; d < ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ", %zu" : "%zu", dims[d]);
    if (n < size)
        snprintf(buf + n, size - n, ndim == 1 ? ",)" : ")");
}

/* Whether a has the shape dims[0..ndim) and npy dtype want; prints why not. */
static int expect_layout(const char* what, const char* path, const npy_array* a, npy_dtype want,
                         size_t ndim, const size_t* dims)
{
    if (a->dtype == want && a->ndim == ndim && memcmp(a->dims, dims, ndim * sizeof(size_t)) == 0)
        return 1;
    char got[200];
    char need[200];
    shape_text(a->dims, a->ndim, got, sizeof got);
    shape_text(dims, ndim, need, sizeof need);
    fprintf(stderr, "clsoftmax xent: %s: %s must be %s '%s', not %s '%s'\n", path, what, need,
            npy_dtype_descr(want), got, npy_dtype_descr(a->dtype));
    return 0;
}

static int usage_status(clsoftmax_status st)
{
    switch (st) {
    case CLSOFTMAX_INVALID_ARGUMENT:
    case CLSOFTMAX_INVALID_SHAPE:
    case CLSOFTMAX_INVALID_DTYPE:
        return EXIT_USAGE;
    default:
        return EXIT_RUN_FAILED;
    }
}

int cmd_xent(int argc, char** argv)
{
    xent_options o;
    memset(&o, 0, sizeof o);
    o.ignore_index = -100;
    o.reduction = CLSOFTMAX_REDUCTION_MEAN;
    int p = parse(argc, argv, &o);
    if (p != 0) {
        if (p > 0)
            fputs(xent_usage, stdout);
        return p > 0 ? 0 : EXIT_USAGE;
    }
    if (o.file_count != 3) {
        cli_usage_error("xent", "expected LOGITS.npy LABELS.npy OUT.npy, got %zu file name%s",
                        o.file_count, o.file_count == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    if (o.probs && o.ignore_set) {
        cli_usage_error("xent", "--ignore-index applies to index labels, not --probs");
        return EXIT_USAGE;
    }
    if (o.grad != NULL && strcmp(o.grad, o.files[2]) == 0) {
        cli_usage_error("xent", "--grad and OUT are the same file '%s'", o.grad);
        return EXIT_USAGE;
    }

    npy_array logits, labels, weights;
    memset(&logits, 0, sizeof logits);
    memset(&labels, 0, sizeof labels);
    memset(&weights, 0, sizeof weights);
    void* loss = NULL;
    void* grad = NULL;
    clsoftmax_context* ctx = NULL;
    cli_output out_loss, out_grad;
    int loss_open = 0;
    int grad_open = 0;
    int rc = read_npy(o.files[0], &logits);
    if (rc != 0)
        goto done;
    clsoftmax_dtype dtype;
    rc = cli_resolve_dtype("xent", o.files[0], logits.dtype, o.dtype_set, o.dtype, &dtype);
    if (rc != 0)
        goto done;
    const size_t classes = logits.dims[logits.ndim - 1];
    if (logits.count == 0) {
        fprintf(stderr, "clsoftmax xent: %s: the logits are empty (a zero extent)\n", o.files[0]);
        rc = EXIT_USAGE;
        goto done;
    }
    const size_t rows = logits.count / classes;
    /* The per-row shape: LOGITS' without its last axis, (1,) for one 1-D row. */
    size_t row_ndim = logits.ndim > 1 ? logits.ndim - 1 : 1;
    size_t row_dims[NPY_MAX_DIMS] = {1};
    if (logits.ndim > 1)
        memcpy(row_dims, logits.dims, row_ndim * sizeof(size_t));

    rc = read_npy(o.files[1], &labels);
    if (rc != 0)
        goto done;
    if (o.probs
            ? !expect_layout("--probs labels", o.files[1], &labels, logits.dtype, logits.ndim,
                             logits.dims)
            : !expect_layout("index labels", o.files[1], &labels, NPY_INT64, row_ndim, row_dims)) {
        rc = EXIT_USAGE;
        goto done;
    }
    /* The library checks too; here the message can name the file and the exit status is 2. */
    for (size_t r = 0; !o.probs && r < rows; r++) {
        long long y = (long long)((const int64_t*)labels.data)[r];
        if (y != o.ignore_index && (y < 0 || (unsigned long long)y >= classes)) {
            fprintf(stderr,
                    "clsoftmax xent: %s: row %zu has label %lld, outside [0, %zu) and not the "
                    "ignore index %lld\n",
                    o.files[1], r, y, classes, o.ignore_index);
            rc = EXIT_USAGE;
            goto done;
        }
    }
    if (o.weights != NULL) {
        rc = read_npy(o.weights, &weights);
        if (rc != 0)
            goto done;
        if (!expect_layout("--weights", o.weights, &weights, logits.dtype, 1, &classes)) {
            rc = EXIT_USAGE;
            goto done;
        }
    }

    const size_t es = npy_dtype_size(logits.dtype);
    const size_t loss_count = o.reduction == CLSOFTMAX_REDUCTION_NONE ? rows : 1;
    loss = malloc(loss_count * es);
    if (o.grad != NULL)
        grad = malloc(logits.count * es);
    if (loss == NULL || (o.grad != NULL && grad == NULL)) {
        fprintf(stderr, "clsoftmax xent: out of memory\n");
        rc = EXIT_RUN_FAILED;
        goto done;
    }
    rc = cli_output_begin(&out_loss, "xent", o.files[2]);
    if (rc != 0)
        goto done;
    loss_open = 1;
    if (o.grad != NULL) {
        rc = cli_output_begin(&out_grad, "xent", o.grad);
        if (rc != 0)
            goto done;
        grad_open = 1;
    }
    rc = EXIT_RUN_FAILED;
    clsoftmax_status st = cli_create_context(o.backend_set, o.backend, o.device, &ctx);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax xent: cannot create a context: %s: %s\n",
                clsoftmax_status_name(st), clsoftmax_last_create_error());
        goto done;
    }
    clsoftmax_cross_entropy_desc d;
    clsoftmax_cross_entropy_desc_init(&d, dtype, rows, classes);
    d.labels = o.probs ? CLSOFTMAX_LABELS_PROBS : CLSOFTMAX_LABELS_INDEX;
    d.ignore_index = o.ignore_index;
    d.label_smoothing = o.smoothing;
    d.reduction = o.reduction;
    st = clsoftmax_cross_entropy_host(ctx, &d, logits.data, labels.data,
                                      o.weights != NULL ? weights.data : NULL, loss, grad);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax xent: cross-entropy on %s (%s) failed: %s: %s\n",
                clsoftmax_context_device_name(ctx), cli_backend_label(ctx),
                clsoftmax_status_name(st), clsoftmax_context_last_error(ctx));
        rc = usage_status(st);
        goto done;
    }
    /* Both files are complete before either is renamed into place. */
    const size_t one = 1;
    rc = cli_output_write(&out_loss, logits.dtype,
                          o.reduction == CLSOFTMAX_REDUCTION_NONE ? row_ndim : 1,
                          o.reduction == CLSOFTMAX_REDUCTION_NONE ? row_dims : &one, loss);
    if (rc == 0 && grad_open)
        rc = cli_output_write(&out_grad, logits.dtype, logits.ndim, logits.dims, grad);
    if (rc == 0 && grad_open) {
        rc = cli_output_finish(&out_grad);
        grad_open = 0;
    }
    if (rc == 0) {
        rc = cli_output_finish(&out_loss);
        loss_open = 0;
    }

done:
    if (grad_open)
        cli_output_abort(&out_grad);
    if (loss_open)
        cli_output_abort(&out_loss);
    clsoftmax_context_free(ctx);
    free(grad);
    free(loss);
    npy_array_free(&weights);
    npy_array_free(&labels);
    npy_array_free(&logits);
    return rc;
}
