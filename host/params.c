/* params.c - tuning parameters: validation, set/get, the per-device file and CLSOFTMAX_PARAMS. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Indexed by clsoftmax_param: the enum names, lower-case, without the prefix. */
static const char* const param_names[CLSOFTMAX_PARAM_COUNT] = {
    "work_group_size", "vector_width",       "rows_per_group", "short_row_limit",
    "split_row_min",   "stream_chunk_bytes", "cpu_threads"};

/*
 * Upper bound of kernel extents on the CPU backend, which has no device to ask: the values
 * are only stored there (a context of that backend launches no kernel), but they must still be
 * values some device could take.
 */
#define NO_DEVICE_WG_MAX ((size_t)1 << 16)
/* The host path streams at least a page at a time. */
#define CHUNK_BYTES_MIN 4096
/* More threads than this is a typo, not a machine. */
#define CPU_THREADS_MAX 1024
/* Longest line of a parameter file that is taken seriously. */
#define LINE_MAX_LEN 512

const char* clsoftmax__param_name(clsoftmax_param param)
{
    if ((unsigned)param >= CLSOFTMAX_PARAM_COUNT)
        return NULL;
    return param_names[param];
}

const char* clsoftmax_param_name(clsoftmax_param param)
{
    const char* name = clsoftmax__param_name(param);
    return name != NULL ? name : "";
}

static int is_pow2(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

clsoftmax_status clsoftmax__param_check(const clsoftmax_context* ctx, clsoftmax_param param,
                                        size_t value, char* msg, size_t msg_size)
{
    const char* name = clsoftmax__param_name(param);
    if (name == NULL) {
        snprintf(msg, msg_size, "parameter %d is not a clsoftmax_param", (int)param);
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    if (value == 0)
        return CLSOFTMAX_SUCCESS; /* the device's choice, always valid */
    const size_t wg_max = ctx != NULL && ctx->caps.max_work_group_size > 0
                              ? ctx->caps.max_work_group_size
                              : NO_DEVICE_WG_MAX;
    switch (param) {
    case CLSOFTMAX_PARAM_WORK_GROUP_SIZE:
        if (!is_pow2(value) || value > wg_max) {
            snprintf(msg, msg_size,
                     "%s %zu: must be a power of two no larger than the device's %zu", name, value,
                     wg_max);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        break;
    case CLSOFTMAX_PARAM_VECTOR_WIDTH:
        if (!is_pow2(value) || value > 16) {
            snprintf(msg, msg_size, "%s %zu: must be 1, 2, 4, 8 or 16", name, value);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        break;
    case CLSOFTMAX_PARAM_ROWS_PER_GROUP:
        if (value > wg_max) {
            snprintf(msg, msg_size, "%s %zu: must be at most the device's work-group size %zu",
                     name, value, wg_max);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        break;
    case CLSOFTMAX_PARAM_SHORT_ROW_LIMIT:
        if (value > CLSOFTMAX__PRIVATE_MAX) {
            snprintf(msg, msg_size,
                     "%s %zu: the short-row kernel holds rows of at most %d elements", name, value,
                     CLSOFTMAX__PRIVATE_MAX);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        break;
    case CLSOFTMAX_PARAM_SPLIT_ROW_MIN:
        if (value < 2) {
            snprintf(msg, msg_size, "%s %zu: a row needs at least 2 elements to be split", name,
                     value);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        break;
    case CLSOFTMAX_PARAM_STREAM_CHUNK_BYTES:
        if (value < CHUNK_BYTES_MIN) {
            snprintf(msg, msg_size, "%s %zu: must be at least %d bytes (or 0)", name, value,
                     CHUNK_BYTES_MIN);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        break;
    case CLSOFTMAX_PARAM_CPU_THREADS:
        if (value > CPU_THREADS_MAX) {
            snprintf(msg, msg_size, "%s %zu: at most %d threads", name, value, CPU_THREADS_MAX);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        break;
    default:
        break;
    }
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax_context_set_param(clsoftmax_context* ctx, clsoftmax_param param,
                                             size_t value)
{
    char msg[256];
    if (ctx == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    clsoftmax_status status = clsoftmax__param_check(ctx, param, value, msg, sizeof msg);
    if (status != CLSOFTMAX_SUCCESS)
        return clsoftmax__error(ctx, status, "%s", msg);
    pthread_mutex_lock(&ctx->lock);
    ctx->params[param] = value;
    pthread_mutex_unlock(&ctx->lock);
    clsoftmax__error_clear(ctx);
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax_context_get_param(const clsoftmax_context* ctx, clsoftmax_param param,
                                             size_t* value)
{
    if (ctx == NULL || value == NULL || (unsigned)param >= CLSOFTMAX_PARAM_COUNT)
        return CLSOFTMAX_INVALID_ARGUMENT;
    *value = ctx->params[param];
    return CLSOFTMAX_SUCCESS;
}

const char* clsoftmax_context_params_source(const clsoftmax_context* ctx)
{
    return ctx != NULL ? ctx->params_source : "";
}

/* Parses a whole decimal size_t (no sign, no blanks, no suffix). */
static int parse_size(const char* text, size_t len, size_t* value)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; ++i) {
        if (!isdigit((unsigned char)buf[i]))
            return 0;
    }
    errno = 0;
    char* end = NULL;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v > (unsigned long long)SIZE_MAX)
        return 0;
    *value = (size_t)v;
    return 1;
}

/*
 * Applies one "name=value" (blanks around either ignored) to params after checking it against
 * ctx. Returns 1, or 0 with the reason in msg.
 */
static int apply_assignment(const clsoftmax_context* ctx, const char* text, size_t len,
                            size_t* params, char* msg, size_t msg_size)
{
    while (len > 0 && isspace((unsigned char)text[0])) {
        ++text;
        --len;
    }
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        --len;
    const char* eq = memchr(text, '=', len);
    if (eq == NULL) {
        snprintf(msg, msg_size, "'%.*s' is not name=value", (int)(len > 64 ? 64 : len), text);
        return 0;
    }
    size_t name_len = (size_t)(eq - text);
    while (name_len > 0 && isspace((unsigned char)text[name_len - 1]))
        --name_len;
    const char* val = eq + 1;
    size_t val_len = len - (size_t)(val - text);
    while (val_len > 0 && isspace((unsigned char)val[0])) {
        ++val;
        --val_len;
    }
    int param = -1;
    for (int p = 0; p < CLSOFTMAX_PARAM_COUNT; ++p) {
        if (strlen(param_names[p]) == name_len && strncmp(param_names[p], text, name_len) == 0)
            param = p;
    }
    if (param < 0) {
        snprintf(msg, msg_size,
                 "unknown parameter '%.*s' (known: work_group_size, vector_width, "
                 "rows_per_group, short_row_limit, split_row_min, stream_chunk_bytes, "
                 "cpu_threads)",
                 (int)(name_len > 64 ? 64 : name_len), text);
        return 0;
    }
    size_t value = 0;
    if (!parse_size(val, val_len, &value)) {
        snprintf(msg, msg_size, "%s: '%.*s' is not a non-negative whole number", param_names[param],
                 (int)(val_len > 32 ? 32 : val_len), val);
        return 0;
    }
    if (clsoftmax__param_check(ctx, (clsoftmax_param)param, value, msg, msg_size) !=
        CLSOFTMAX_SUCCESS)
        return 0;
    params[param] = value;
    return 1;
}

/* Appends the sanitised text to key: letters, digits, '.', '-' kept, runs of others as one '_'. */
static void key_append(char* key, size_t size, const char* text)
{
    size_t len = strlen(key);
    for (const char* t = text; *t != '\0' && len + 1 < size; ++t) {
        unsigned char ch = (unsigned char)*t;
        if (isalnum(ch) || ch == '.' || ch == '-') {
            key[len++] = (char)ch;
        } else if (len > 0 && key[len - 1] != '_') {
            key[len++] = '_';
        }
    }
    while (len > 0 && key[len - 1] == '_')
        --len;
    key[len] = '\0';
}

int clsoftmax__params_path(const clsoftmax_context* ctx, char* path, size_t path_size)
{
    if (ctx == NULL || ctx->device == NULL || path == NULL || path_size == 0)
        return 0;
    char dir[2048];
    const char* env = getenv("CLSOFTMAX_PARAMS_DIR");
    const char* xdg = getenv("XDG_CONFIG_HOME");
    const char* home = getenv("HOME");
    int len;
    if (env != NULL && env[0] != '\0')
        len = snprintf(dir, sizeof dir, "%s", env);
    else if (xdg != NULL && xdg[0] != '\0')
        len = snprintf(dir, sizeof dir, "%s/clsoftmax", xdg);
    else if (home != NULL && home[0] != '\0')
        len = snprintf(dir, sizeof dir, "%s/.config/clsoftmax", home);
    else
        return 0;
    if (len < 0 || (size_t)len >= sizeof dir)
        return 0;

    char platform_name[CLSOFTMAX__NAME_MAX] = "";
    char device_name[CLSOFTMAX__NAME_MAX] = "";
    char driver[CLSOFTMAX__NAME_MAX] = "";
    cl_platform_id platform = NULL;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL) ==
        CL_SUCCESS)
        clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof platform_name, platform_name, NULL);
    clGetDeviceInfo(ctx->device, CL_DEVICE_NAME, sizeof device_name, device_name, NULL);
    clGetDeviceInfo(ctx->device, CL_DRIVER_VERSION, sizeof driver, driver, NULL);
    platform_name[sizeof platform_name - 1] = '\0';
    device_name[sizeof device_name - 1] = '\0';
    driver[sizeof driver - 1] = '\0';

    /* Platform, device and driver: new drivers deserve a new tuning. */
    char key[200] = "";
    key_append(key, sizeof key, platform_name);
    key_append(key, sizeof key, "+");
    key_append(key, sizeof key, device_name);
    key_append(key, sizeof key, "+");
    key_append(key, sizeof key, driver);
    if (key[0] == '\0')
        snprintf(key, sizeof key, "device");
    len = snprintf(path, path_size, "%s/%s.params", dir, key);
    return len >= 0 && (size_t)len < path_size;
}

clsoftmax_status clsoftmax_context_params_file(const clsoftmax_context* ctx, char* path,
                                               size_t path_size)
{
    if (ctx == NULL || path == NULL || path_size == 0)
        return CLSOFTMAX_INVALID_ARGUMENT;
    if (ctx->backend != CLSOFTMAX_BACKEND_OPENCL) {
        path[0] = '\0';
        return CLSOFTMAX_UNSUPPORTED;
    }
    if (!clsoftmax__params_path(ctx, path, path_size)) {
        path[0] = '\0';
        return CLSOFTMAX_INVALID_ARGUMENT;
    }
    return CLSOFTMAX_SUCCESS;
}

/*
 * Reads the parameter file into params (all or nothing). Returns 1 when loaded, 0 when absent,
 * -1 when malformed (the reason in why).
 */
static int load_file(const clsoftmax_context* ctx, const char* path, size_t* params, char* why,
                     size_t why_size)
{
    FILE* f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t tmp[CLSOFTMAX_PARAM_COUNT];
    memcpy(tmp, params, sizeof tmp);
    char line[LINE_MAX_LEN + 2];
    unsigned lineno = 0;
    int result = 1;
    while (fgets(line, sizeof line, f) != NULL) {
        ++lineno;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
            snprintf(why, why_size, "line %u is longer than %d characters", lineno, LINE_MAX_LEN);
            result = -1;
            break;
        }
        const char* p = line;
        while (isspace((unsigned char)*p))
            ++p;
        if (*p == '\0' || *p == '#')
            continue;
        char reason[512];
        if (!apply_assignment(ctx, p, strlen(p), tmp, reason, sizeof reason)) {
            snprintf(why, why_size, "line %u: %s", lineno, reason);
            result = -1;
            break;
        }
    }
    if (result == 1 && ferror(f)) {
        snprintf(why, why_size, "read error");
        result = -1;
    }
    fclose(f);
    if (result == 1)
        memcpy(params, tmp, sizeof tmp);
    return result;
}

clsoftmax_status clsoftmax__params_load(clsoftmax_context* ctx, int use_env, char* msg,
                                        size_t msg_size)
{
    char path[4096];
    char why[768];
    size_t* params = ctx->params;

    if (!use_env) {
        snprintf(ctx->params_source, sizeof ctx->params_source,
                 "defaults (the environment and parameter files are ignored by this context's "
                 "configuration)");
        return CLSOFTMAX_SUCCESS;
    }
    if (ctx->backend != CLSOFTMAX_BACKEND_OPENCL) {
        snprintf(ctx->params_source, sizeof ctx->params_source,
                 "defaults (no parameter file for the CPU backend)");
    } else if (!clsoftmax__params_path(ctx, path, sizeof path)) {
        snprintf(ctx->params_source, sizeof ctx->params_source,
                 "defaults (no folder for parameter files: set CLSOFTMAX_PARAMS_DIR or HOME)");
    } else {
        int r = load_file(ctx, path, params, why, sizeof why);
        if (r > 0)
            snprintf(ctx->params_source, sizeof ctx->params_source, "file %.1000s", path);
        else if (r == 0)
            snprintf(ctx->params_source, sizeof ctx->params_source,
                     "defaults (no parameter file %.900s)", path);
        else
            snprintf(ctx->params_source, sizeof ctx->params_source,
                     "defaults (parameter file %.600s ignored: %.380s)", path, why);
    }

    const char* env = getenv("CLSOFTMAX_PARAMS");
    if (env == NULL || env[0] == '\0')
        return CLSOFTMAX_SUCCESS;
    size_t tmp[CLSOFTMAX_PARAM_COUNT];
    memcpy(tmp, params, sizeof tmp);
    const char* p = env;
    while (*p != '\0') {
        const char* comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (!apply_assignment(ctx, p, len, tmp, why, sizeof why)) {
            snprintf(msg, msg_size, "CLSOFTMAX_PARAMS='%.200s': %s", env, why);
            return CLSOFTMAX_INVALID_ARGUMENT;
        }
        p += len;
        if (*p == ',')
            ++p;
    }
    memcpy(params, tmp, sizeof tmp);
    size_t used = strlen(ctx->params_source);
    snprintf(ctx->params_source + used, sizeof ctx->params_source - used,
             ", then CLSOFTMAX_PARAMS");
    return CLSOFTMAX_SUCCESS;
}
