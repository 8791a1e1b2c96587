/* cmd_ops.c - `clsoftmax attention` and `clsoftmax head`: the pipeline operations on .npy files.
 *
 * attention Q.npy K.npy V.npy OUT.npy [--causal] [--mask M.npy] [--scale S] [--backend B]
 *   Q [.., seq_q, d], K [.., seq_k, d], V [.., seq_k, d_v] with the same 2 to 4 leading-padded
 *   dimensions [batch, heads, seq, features]; OUT is Q's shape with d_v features. M is
 *   [seq_q, seq_k], [mask_heads, seq_q, seq_k] or [mask_batch, mask_heads, seq_q, seq_k].
 * head X.npy W.npy OUT.npy [--bias B.npy] [--topk K] [--log] [--scale S] [--backend B]
 *   X [rows, in] (or [in]), W [classes, in], B [classes]. Without --topk OUT is [rows,
 *   classes]; with it OUT is [rows, K] probabilities and OUT.idx.npy (OUT's name with .npy
 *   replaced by .idx.npy) [rows, K] class indices stored as float64 ('<f8', exact below 2^53),
 *   so every .npy this tool writes stays float.
 */
#include "cli_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ops_options {
    int causal;
    int log;
    int has_scale;
    double scale;
    const char* mask;
    const char* bias;
    size_t topk;
    int backend_set;
    clsoftmax_backend backend;
    const char* device;
    const char* files[4];
    size_t file_count;
} ops_options;

/* Parses argv; returns 0, 1 for --help (usage printed), or -1 after a usage error. */
static int parse(const char* command, int argc, char** argv, size_t max_files, ops_options* o)
{
    for (int i = 0; i < argc; i++) {
        const char* arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
            if (o->file_count == max_files) {
                cli_usage_error(command, "too many file names ('%s')", arg);
                return -1;
            }
            o->files[o->file_count++] = arg;
            continue;
        }
        char name[32];
        const char* value = NULL;
        const char* eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name) {
            cli_usage_error(command, "unknown option '%s'", arg);
            return -1;
        }
        memcpy(name, arg, len);
        name[len] = '\0';
        if (strcmp(name, "--help") == 0)
            return 1;
        const int is_head = strcmp(command, "head") == 0;
        if ((!is_head && strcmp(name, "--causal") == 0) ||
            (is_head && strcmp(name, "--log") == 0)) {
            if (eq != NULL) {
                cli_usage_error(command, "option %s takes no value", name);
                return -1;
            }
            if (name[2] == 'c')
                o->causal = 1;
            else
                o->log = 1;
            continue;
        }
        int known = strcmp(name, "--scale") == 0 || strcmp(name, "--backend") == 0 ||
                    strcmp(name, "--device") == 0 ||
                    (strcmp(command, "attention") == 0 && strcmp(name, "--mask") == 0) ||
                    (strcmp(command, "head") == 0 &&
                     (strcmp(name, "--bias") == 0 || strcmp(name, "--topk") == 0));
        if (!known) {
            cli_usage_error(command, "unknown option '%s'", arg);
            return -1;
        }
        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            cli_usage_error(command, "option %s needs a value", name);
            return -1;
        }
        if (strcmp(name, "--scale") == 0) {
            if (cli_parse_finite_double(value, &o->scale) != 0) {
                cli_usage_error(command, "--scale '%s' is not a finite number", value);
                return -1;
            }
            o->has_scale = 1;
        } else if (strcmp(name, "--backend") == 0) {
            if (cli_parse_backend(value, &o->backend) != 0) {
                cli_usage_error(command, "--backend '%s' is not one of auto, cpu, opencl", value);
                return -1;
            }
            o->backend_set = 1;
        } else if (strcmp(name, "--device") == 0) {
            o->device = value;
        } else if (strcmp(name, "--mask") == 0) {
            o->mask = value;
        } else if (strcmp(name, "--bias") == 0) {
            o->bias = value;
        } else if (cli_parse_count(value, &o->topk) != 0 || o->topk > CLSOFTMAX_MAX_TOPK) {
            cli_usage_error(command, "--topk '%s' is not an integer from 1 to %d", value,
                            CLSOFTMAX_MAX_TOPK);
            return -1;
        }
    }
    return 0;
}

/*
 * Reads path, a float32 or float64 array (these operations take no 16-bit types); on failure
 * prints why and returns the exit status.
 */
static int read_npy(const char* command, const char* path, npy_array* a)
{
    char msg[1024];
    npy_result r = npy_read(path, a, msg, sizeof msg);
    if (r != NPY_OK) {
        fprintf(stderr, "clsoftmax %s: %s\n", command, msg);
        return r == NPY_ERR_MEMORY ? EXIT_RUN_FAILED : EXIT_USAGE;
    }
    if (a->dtype != NPY_FLOAT32 && a->dtype != NPY_FLOAT64) {
        fprintf(stderr, "clsoftmax %s: %s: dtype '%s': %s takes float32 '<f4' or float64 '<f8'\n",
                command, path, npy_dtype_descr(a->dtype), command);
        npy_array_free(a);
        return EXIT_USAGE;
    }
    return 0;
}

static int context_for(const char* command, const ops_options* o, clsoftmax_context** ctx)
{
    clsoftmax_status st = cli_create_context(o->backend_set, o->backend, o->device, ctx);
    if (st == CLSOFTMAX_SUCCESS)
        return 0;
    fprintf(stderr, "clsoftmax %s: cannot create a context: %s: %s\n", command,
            clsoftmax_status_name(st), clsoftmax_last_create_error());
    return EXIT_RUN_FAILED;
}

static int usage_status(clsoftmax_status st)
{
    switch (st) {
    case CLSOFTMAX_INVALID_ARGUMENT:
    case CLSOFTMAX_INVALID_SHAPE:
    case CLSOFTMAX_INVALID_SCALE:
    case CLSOFTMAX_INVALID_DTYPE:
        return EXIT_USAGE;
    default:
        return EXIT_RUN_FAILED;
    }
}

/* dims[0..4) = a's shape padded with leading 1s; 0 when a has more than 4 or fewer than 2. */
static int as4(const npy_array* a, size_t dims[4])
{
    if (a->ndim < 2 || a->ndim > 4)
        return 0;
    for (size_t i = 0; i < 4; i++)
        dims[i] = i < 4 - a->ndim ? 1 : a->dims[i - (4 - a->ndim)];
    return 1;
}

static const char attention_usage[] =
    "usage: clsoftmax attention Q.npy K.npy V.npy OUT.npy [--causal] [--mask M.npy]\n"
    "                           [--scale S] [--backend B] [--device SEL]\n"
    "  OUT = softmax(S * Q . K^T + M) . V over [batch, heads, seq, features] arrays\n"
    "  (2 to 4 dimensions, leading ones implied); S defaults to 1/sqrt(d); --causal hides\n"
    "  key j from query i when j > i + seq_k - seq_q; a query with no visible key gives 0.\n";

int cmd_attention(int argc, char** argv)
{
    ops_options o;
    memset(&o, 0, sizeof o);
    int p = parse("attention", argc, argv, 4, &o);
    if (p != 0) {
        if (p > 0)
            fputs(attention_usage, stdout);
        return p > 0 ? 0 : EXIT_USAGE;
    }
    if (o.file_count != 4) {
        cli_usage_error("attention", "expected Q.npy K.npy V.npy OUT.npy, got %zu file names",
                        o.file_count);
        return EXIT_USAGE;
    }
    npy_array q = {0}, k = {0}, v = {0}, m = {0};
    clsoftmax_context* ctx = NULL;
    void* out = NULL;
    cli_output output;
    int out_open = 0;
    int rc = read_npy("attention", o.files[0], &q);
    if (rc == 0)
        rc = read_npy("attention", o.files[1], &k);
    if (rc == 0)
        rc = read_npy("attention", o.files[2], &v);
    if (rc == 0 && o.mask != NULL)
        rc = read_npy("attention", o.mask, &m);
    if (rc != 0)
        goto done;
    size_t qd[4], kd[4], vd[4], md[4];
    if (!as4(&q, qd) || !as4(&k, kd) || !as4(&v, vd) || (o.mask != NULL && !as4(&m, md)) ||
        q.ndim != k.ndim || q.ndim != v.ndim) {
        fprintf(stderr, "clsoftmax attention: Q, K and V need the same rank, 2 to 4 "
                        "dimensions (a mask 2 to 4)\n");
        rc = EXIT_USAGE;
        goto done;
    }
    if (q.dtype != k.dtype || q.dtype != v.dtype || (o.mask != NULL && m.dtype != q.dtype)) {
        fprintf(stderr, "clsoftmax attention: Q, K, V (and the mask) need one dtype\n");
        rc = EXIT_USAGE;
        goto done;
    }
    if (kd[0] != qd[0] || vd[0] != qd[0] || kd[1] != qd[1] || vd[1] != qd[1] || kd[3] != qd[3] ||
        vd[2] != kd[2] || (o.mask != NULL && (md[2] != qd[2] || md[3] != kd[2]))) {
        fprintf(stderr,
                "clsoftmax attention: shapes do not match: Q [%zu,%zu,%zu,%zu], K "
                "[%zu,%zu,%zu,%zu], V [%zu,%zu,%zu,%zu]%s\n",
                qd[0], qd[1], qd[2], qd[3], kd[0], kd[1], kd[2], kd[3], vd[0], vd[1], vd[2], vd[3],
                o.mask != NULL ? " (or the mask's last two are not seq_q, seq_k)" : "");
        rc = EXIT_USAGE;
        goto done;
    }
    clsoftmax_attention_desc d;
    clsoftmax_attention_desc_init(&d,
                                  q.dtype == NPY_FLOAT64 ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32,
                                  qd[0], qd[1], qd[2], kd[2], qd[3], vd[3]);
    if (o.has_scale)
        d.scale = o.scale;
    d.causal = o.causal;
    if (o.mask != NULL) {
        d.mask_batch = md[0];
        d.mask_heads = md[1];
    }
    size_t count = qd[0] * qd[1] * qd[2] * vd[3];
    out = calloc(count, npy_dtype_size(q.dtype));
    if (out == NULL) {
        fprintf(stderr, "clsoftmax attention: out of memory\n");
        rc = EXIT_RUN_FAILED;
        goto done;
    }
    rc = cli_output_begin(&output, "attention", o.files[3]);
    if (rc != 0)
        goto done;
    out_open = 1;
    rc = context_for("attention", &o, &ctx);
    if (rc != 0)
        goto done;
    clsoftmax_status st =
        clsoftmax_attention_host(ctx, &d, q.data, k.data, v.data, o.mask ? m.data : NULL, out);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax attention: on %s (%s): %s: %s\n",
                clsoftmax_context_device_name(ctx), cli_backend_label(ctx),
                clsoftmax_status_name(st), clsoftmax_context_last_error(ctx));
        rc = usage_status(st);
        goto done;
    }
    size_t odims[4];
    memcpy(odims, q.dims, q.ndim * sizeof odims[0]);
    odims[q.ndim - 1] = vd[3];
    out_open = 0;
    rc = cli_output_commit(&output, q.dtype, q.ndim, odims, out);
done:
    if (out_open)
        cli_output_abort(&output);
    clsoftmax_context_free(ctx);
    free(out);
    npy_array_free(&q);
    npy_array_free(&k);
    npy_array_free(&v);
    npy_array_free(&m);
    return rc;
}

static const char head_usage[] =
    "usage: clsoftmax head X.npy W.npy OUT.npy [--bias B.npy] [--topk K] [--log]\n"
    "                      [--scale S] [--backend B] [--device SEL]\n"
    "  OUT = softmax(S * (X . W^T + B)) for X [rows, in], W [classes, in], B [classes].\n"
    "  --topk K: OUT [rows, K] the largest probabilities, sorted (ties: lower index), and\n"
    "  OUT.idx.npy [rows, K] their class indices as float64.\n";

int cmd_head(int argc, char** argv)
{
    ops_options o;
    memset(&o, 0, sizeof o);
    int p = parse("head", argc, argv, 3, &o);
    if (p != 0) {
        if (p > 0)
            fputs(head_usage, stdout);
        return p > 0 ? 0 : EXIT_USAGE;
    }
    if (o.file_count != 3) {
        cli_usage_error("head", "expected X.npy W.npy OUT.npy, got %zu file names", o.file_count);
        return EXIT_USAGE;
    }
    npy_array x = {0}, w = {0}, b = {0};
    clsoftmax_context* ctx = NULL;
    void* out = NULL;
    cl_long* idx = NULL;
    double* idx_f = NULL;
    char* idx_path = NULL;
    cli_output output, output_idx;
    int out_open = 0;
    int idx_open = 0;
    int rc = read_npy("head", o.files[0], &x);
    if (rc == 0)
        rc = read_npy("head", o.files[1], &w);
    if (rc == 0 && o.bias != NULL)
        rc = read_npy("head", o.bias, &b);
    if (rc != 0)
        goto done;
    const size_t rows = x.ndim == 1 ? 1 : x.dims[0];
    const size_t in = x.dims[x.ndim - 1];
    if (x.ndim > 2 || w.ndim != 2 || w.dims[1] != in ||
        (o.bias != NULL && (b.ndim != 1 || b.dims[0] != w.dims[0]))) {
        fprintf(stderr, "clsoftmax head: need X [rows, in], W [classes, in] and B [classes]\n");
        rc = EXIT_USAGE;
        goto done;
    }
    if (x.dtype != w.dtype || (o.bias != NULL && b.dtype != x.dtype)) {
        fprintf(stderr, "clsoftmax head: X, W (and B) need one dtype\n");
        rc = EXIT_USAGE;
        goto done;
    }
    clsoftmax_head_desc d;
    clsoftmax_head_desc_init(&d, x.dtype == NPY_FLOAT64 ? CLSOFTMAX_FLOAT64 : CLSOFTMAX_FLOAT32,
                             rows, in, w.dims[0]);
    if (o.has_scale)
        d.scale = o.scale;
    d.op = o.log ? CLSOFTMAX_OP_LOG_SOFTMAX : CLSOFTMAX_OP_SOFTMAX;
    d.topk = o.topk;
    if (d.topk > d.classes) {
        fprintf(stderr, "clsoftmax head: --topk %zu exceeds the %zu classes\n", d.topk, d.classes);
        rc = EXIT_USAGE;
        goto done;
    }
    const size_t cols = d.topk > 0 ? d.topk : d.classes;
    out = malloc(rows * cols * npy_dtype_size(x.dtype));
    if (d.topk > 0) {
        idx = malloc(rows * d.topk * sizeof *idx);
        idx_f = malloc(rows * d.topk * sizeof *idx_f);
        size_t len = strlen(o.files[2]);
        idx_path = malloc(len + 16);
        if (idx_path != NULL) {
            memcpy(idx_path, o.files[2], len + 1);
            if (len >= 4 && strcmp(idx_path + len - 4, ".npy") == 0)
                idx_path[len - 4] = '\0';
            strcat(idx_path, ".idx.npy");
        }
    }
    if (out == NULL || (d.topk > 0 && (idx == NULL || idx_f == NULL || idx_path == NULL))) {
        fprintf(stderr, "clsoftmax head: out of memory\n");
        rc = EXIT_RUN_FAILED;
        goto done;
    }
    rc = cli_output_begin(&output, "head", o.files[2]);
    if (rc != 0)
        goto done;
    out_open = 1;
    if (d.topk > 0) {
        rc = cli_output_begin(&output_idx, "head", idx_path);
        if (rc != 0)
            goto done;
        idx_open = 1;
    }
    rc = context_for("head", &o, &ctx);
    if (rc != 0)
        goto done;
    clsoftmax_status st =
        clsoftmax_linear_softmax_host(ctx, &d, x.data, w.data, o.bias ? b.data : NULL, out, idx);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "clsoftmax head: on %s (%s): %s: %s\n", clsoftmax_context_device_name(ctx),
                cli_backend_label(ctx), clsoftmax_status_name(st),
                clsoftmax_context_last_error(ctx));
        rc = usage_status(st);
        goto done;
    }
    const size_t odims[2] = {rows, cols};
    if (d.topk > 0 && idx != NULL && idx_f != NULL) {
        for (size_t e = 0; e < rows * d.topk; e++)
            idx_f[e] = (double)idx[e];
        idx_open = 0;
        rc = cli_output_commit(&output_idx, NPY_FLOAT64, 2, odims, idx_f);
        if (rc != 0)
            goto done;
    }
    out_open = 0;
    rc = cli_output_commit(&output, x.dtype, 2, odims, out);
done:
    if (out_open)
        cli_output_abort(&output);
    if (idx_open)
        cli_output_abort(&output_idx);
    clsoftmax_context_free(ctx);
    free(out);
    free(idx);
    free(idx_f);
    free(idx_path);
    npy_array_free(&x);
    npy_array_free(&w);
    npy_array_free(&b);
    return rc;
}
