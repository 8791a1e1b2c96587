/* npy.c - the strict .npy reader and the version 1.0 writer declared in npy.h. */
#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

#if defined(__GNUC__)
#define NPY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NPY_PRINTF(f, a)
#endif

static void set_msg(char* msg, size_t msg_size, const char* path, const char* fmt, ...)
    NPY_PRINTF(4, 5);

/* "PATH: problem"; every error message of this file goes through here. */
static void set_msg(char* msg, size_t msg_size, const char* path, const char* fmt, ...)
{
    if (msg == NULL || msg_size == 0)
        return;
    int n = snprintf(msg, msg_size, "%s: ", path != NULL ? path : "(npy)");
    if (n < 0 || (size_t)n >= msg_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, msg_size - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Indexed by npy_dtype. */
static const struct {
    const char* descr;
    size_t size;
} npy_dtypes[] = {{"<f4", 4}, {"<f8", 8}, {"<f2", 2}, {"<u2", 2}, {"<i8", 8}};

#define NPY_DTYPE_COUNT (sizeof(npy_dtypes) / sizeof(npy_dtypes[0]))

size_t npy_dtype_size(npy_dtype dtype)
{
    return (size_t)dtype < NPY_DTYPE_COUNT ? npy_dtypes[dtype].size : 0;
}

const char* npy_dtype_descr(npy_dtype dtype)
{
    return (size_t)dtype < NPY_DTYPE_COUNT ? npy_dtypes[dtype].descr : "?";
}

void npy_array_free(npy_array* array)
{
    if (array == NULL)
        return;
    free(array->data);
    memset(array, 0, sizeof(*array));
}

/* ---- byte order ----------------------------------------------------------- */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static void swap_elements(unsigned char* bytes, size_t count, size_t elem_size)
{
    for (size_t i = 0; i < count; ++i) {
        unsigned char* e = bytes + i * elem_size;
        for (size_t a = 0, b = elem_size - 1; a < b; ++a, --b) {
            unsigned char t = e[a];
            e[a] = e[b];
            e[b] = t;
        }
    }
}

/*
 * The product of the extents, or -1 when it overflows size_t. Any zero extent
 * makes it 0 (NumPy's arbitrary-precision product agrees), even after huge ones.
 */
static int element_count(size_t ndim, const size_t* dims, size_t* count)
{
    *count = 0;
    for (size_t d = 0; d < ndim; ++d)
        if (dims[d] == 0)
            return 0;
    size_t n = 1;
    for (size_t d = 0; d < ndim; ++d) {
        if (n > SIZE_MAX / dims[d])
            return -1;
        n *= dims[d];
    }
    *count = n;
    return 0;
}

/* ---- the header dict ------------------------------------------------------ */

/*
 * The header is a Python dict literal. NumPy parses it with ast.literal_eval;
 * we accept the subset NumPy (any version) writes and hand-written variants of
 * it (either quote, any spacing, trailing commas), and reject the rest with a
 * message instead of guessing.
 */
typedef struct header_parser {
    const char* p;
    const char* end;
    char* err; /* the problem, without the file name */
    size_t err_size;
} header_parser;

typedef struct header_info {
    int have_descr;
    int have_fortran;
    int have_shape;
    npy_dtype dtype;
    size_t ndim;
    size_t dims[NPY_MAX_DIMS];
} header_info;

static int parse_fail(header_parser* ps, const char* fmt, ...) NPY_PRINTF(2, 3);

static int parse_fail(header_parser* ps, const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err, ps->err_size, fmt, ap);
    va_end(ap);
    return -1;
}

/* A short printable excerpt of the text at the cursor, for messages. */
static const char* excerpt(const header_parser* ps, char* buf, size_t buf_size)
{
    size_t n = 0;
    for (const char* q = ps->p; q < ps->end && n + 1 < buf_size && n < 24; ++q, ++n) {
        buf[n] = '?';
        if (*q >= 0x20 && *q < 0x7f)
            buf[n] = *q;
    }
    buf[n] = '\0';
    return n > 0 ? buf : "(end of header)";
}

static void skip_space(header_parser* ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
                               *ps->p == '\r' || *ps->p == '\f' || *ps->p == '\v'))
        ++ps->p;
}

static int is_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A quoted string without escapes into out (NUL-terminated, at most out_size - 1 chars). */
static int parse_string(header_parser* ps, char* out, size_t out_size, const char* what)
{
    char ex[32];
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return parse_fail(ps, "header: expected a quoted %s, found '%s'", what,
                          excerpt(ps, ex, sizeof(ex)));
    char quote = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != quote) {
        if (*ps->p == '\\')
            return parse_fail(ps, "header: escape sequences in strings are not supported");
        if (n + 1 >= out_size)
            return parse_fail(ps, "header: %s string is too long", what);
        out[n++] = *ps->p++;
    }
    if (ps->p >= ps->end)
        return parse_fail(ps, "header: unterminated string");
    ++ps->p;
    out[n] = '\0';
    return 0;
}

static int parse_descr(header_parser* ps, header_info* info)
{
    char descr[64];
    if (ps->p < ps->end && *ps->p != '\'' && *ps->p != '"')
        return parse_fail(ps, "header: 'descr' is not a dtype string (structured dtypes are not "
                              "supported; only '<f4', '<f8', '<f2', '<u2' and '<i8')");
    if (parse_string(ps, descr, sizeof(descr), "'descr'") != 0)
        return -1;
    for (size_t i = 0; i < NPY_DTYPE_COUNT; ++i) {
        if (strcmp(descr, npy_dtypes[i].descr) == 0) {
            info->dtype = (npy_dtype)i;
            return 0;
        }
    }
    return parse_fail(ps,
                      "unsupported dtype '%s': only little-endian float32 '<f4', float64 '<f8', "
                      "float16 '<f2', uint16 '<u2' (raw bfloat16) and int64 '<i8' are accepted",
                      descr);
}

static int parse_fortran(header_parser* ps)
{
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 5 && memcmp(ps->p, "False", 5) == 0 && (left == 5 || !is_ident_char(ps->p[5]))) {
        ps->p += 5;
        return 0;
    }
    if (left >= 4 && memcmp(ps->p, "True", 4) == 0 && (left == 4 || !is_ident_char(ps->p[4])))
        return parse_fail(ps, "fortran_order is True: only C-order arrays are accepted "
                              "(save with np.ascontiguousarray)");
    char ex[32];
    return parse_fail(ps, "header: 'fortran_order' must be True or False, found '%s'",
                      excerpt(ps, ex, sizeof(ex)));
}

/* One non-negative decimal dimension, overflow-checked against size_t. */
static int parse_dim(header_parser* ps, size_t* dim)
{
    char ex[32];
    if (ps->p < ps->end && *ps->p == '-') {
        const char* q = ps->p + 1;
        while (q < ps->end && q - ps->p < 24 && *q >= '0' && *q <= '9')
            ++q;
        return parse_fail(ps, "shape has a negative dimension %.*s", (int)(q - ps->p), ps->p);
    }
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return parse_fail(ps, "header: expected a dimension in 'shape', found '%s'",
                          excerpt(ps, ex, sizeof(ex)));
    const char* start = ps->p;
    size_t value = 0;
    int overflow = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        size_t digit = (size_t)(*ps->p - '0');
        if (value > (SIZE_MAX - digit) / 10)
            overflow = 1;
        else
            value = value * 10 + digit;
        ++ps->p;
    }
    if (overflow) {
        int len = (int)(ps->p - start);
        return parse_fail(ps, "shape dimension %.*s%s is too large (more than SIZE_MAX)",
                          len > 40 ? 40 : len, start, len > 40 ? "..." : "");
    }
    /* Python 2 era NumPy wrote long integers as 3L. */
    if (ps->p < ps->end && *ps->p == 'L')
        ++ps->p;
    *dim = value;
    return 0;
}

static int parse_shape(header_parser* ps, header_info* info)
{
    char ex[32];
    if (ps->p >= ps->end || *ps->p != '(')
        return parse_fail(ps, "header: 'shape' is not a tuple, found '%s'",
                          excerpt(ps, ex, sizeof(ex)));
    ++ps->p;
    info->ndim = 0;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ')') {
        ++ps->p;
        return 0;
    }
    for (;;) {
        size_t dim = 0;
        if (parse_dim(ps, &dim) != 0)
            return -1;
        if (info->ndim == NPY_MAX_DIMS)
            return parse_fail(ps, "shape has more than %d dimensions (at most %d are supported)",
                              NPY_MAX_DIMS, NPY_MAX_DIMS);
        info->dims[info->ndim++] = dim;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ')') {
            /* (5) is the integer 5 in Python, not a tuple: NumPy refuses it too. */
            if (info->ndim == 1)
                return parse_fail(ps,
                                  "header: 'shape' (%zu) is not a tuple; a 1-D shape is "
                                  "written (%zu,)",
                                  dim, dim);
            ++ps->p;
            return 0;
        }
        if (ps->p >= ps->end || *ps->p != ',')
            return parse_fail(ps, "header: expected ',' or ')' in 'shape', found '%s'",
                              excerpt(ps, ex, sizeof(ex)));
        ++ps->p;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ')') {
            ++ps->p;
            return 0;
        }
    }
}

static int parse_header(const char* text, size_t len, header_info* info, char* err, size_t err_size)
{
    header_parser ps = {text, text + len, err, err_size};
    char ex[32];
    memset(info, 0, sizeof(*info));

    skip_space(&ps);
    if (ps.p >= ps.end || *ps.p != '{')
        return parse_fail(&ps, "header is not a Python dict: expected '{', found '%s'",
                          excerpt(&ps, ex, sizeof(ex)));
    ++ps.p;
    for (;;) {
        skip_space(&ps);
        if (ps.p < ps.end && *ps.p == '}') {
            ++ps.p;
            break;
        }
        char key[32];
        if (parse_string(&ps, key, sizeof(key), "key") != 0)
            return -1;
        skip_space(&ps);
        if (ps.p >= ps.end || *ps.p != ':')
            return parse_fail(&ps, "header: expected ':' after '%s', found '%s'", key,
                              excerpt(&ps, ex, sizeof(ex)));
        ++ps.p;
        skip_space(&ps);
        int* seen = strcmp(key, "descr") == 0           ? &info->have_descr
                    : strcmp(key, "fortran_order") == 0 ? &info->have_fortran
                    : strcmp(key, "shape") == 0         ? &info->have_shape
                                                        : NULL;
        if (seen == NULL)
            return parse_fail(&ps,
                              "header: unexpected key '%s' (the keys are 'descr', "
                              "'fortran_order' and 'shape')",
                              key);
        if (*seen)
            return parse_fail(&ps, "header: duplicate key '%s'", key);
        int rc = seen == &info->have_descr     ? parse_descr(&ps, info)
                 : seen == &info->have_fortran ? parse_fortran(&ps)
                                               : parse_shape(&ps, info);
        if (rc != 0)
            return -1;
        *seen = 1;
        skip_space(&ps);
        if (ps.p < ps.end && *ps.p == ',') {
            ++ps.p;
            continue;
        }
        if (ps.p < ps.end && *ps.p == '}') {
            ++ps.p;
            break;
        }
        return parse_fail(&ps, "header: expected ',' or '}' in the dict, found '%s'",
                          excerpt(&ps, ex, sizeof(ex)));
    }
    skip_space(&ps);
    if (ps.p < ps.end)
        return parse_fail(&ps, "header: unexpected text after the dict: '%s'",
                          excerpt(&ps, ex, sizeof(ex)));
    if (!info->have_descr || !info->have_fortran || !info->have_shape)
        return parse_fail(&ps, "header dict lacks the key '%s'",
                          !info->have_descr     ? "descr"
                          : !info->have_fortran ? "fortran_order"
                                                : "shape");
    if (info->ndim == 0)
        return parse_fail(&ps, "0-d array (shape ()) is not accepted: softmax needs at least "
                               "one dimension");
    return 0;
}

/* ---- reading -------------------------------------------------------------- */

static size_t read_le(const unsigned char* b, size_t n)
{
    size_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | b[i];
    return v;
}

npy_result npy_read(const char* path, npy_array* array, char* msg, size_t msg_size)
{
    npy_result result = NPY_ERR_FORMAT;
    if (msg != NULL && msg_size > 0)
        msg[0] = '\0';
    memset(array, 0, sizeof(*array));

    FILE* f = fopen(path, "rb");
    if (f == NULL) {
        set_msg(msg, msg_size, path, "cannot open: %s", strerror(errno));
        return NPY_ERR_IO;
    }
    /* The file size decides everything below before anything large is allocated. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        set_msg(msg, msg_size, path, "cannot stat: %s", strerror(errno));
        result = NPY_ERR_IO;
    } else if (!S_ISREG(st.st_mode)) {
        set_msg(msg, msg_size, path, "not a regular file");
        result = NPY_ERR_IO;
    } else if (st.st_size < 0 || (uintmax_t)st.st_size > SIZE_MAX) {
        set_msg(msg, msg_size, path, "file is too large for this host");
    } else {
        result = npy_read_stream(f, (size_t)st.st_size, path, array, msg, msg_size);
    }
    fclose(f);
    return result;
}

npy_result npy_read_stream(FILE* f, size_t file_size, const char* path, npy_array* array, char* msg,
                           size_t msg_size)
{
    npy_result result = NPY_ERR_FORMAT;
    char* header = NULL;
    void* data = NULL;
    char err[256];

    if (msg != NULL && msg_size > 0)
        msg[0] = '\0';
    memset(array, 0, sizeof(*array));

    unsigned char prefix[12];
    size_t got = fread(prefix, 1, file_size < 8 ? file_size : 8, f);
    if (got < 6 || memcmp(prefix, npy_magic, 6) != 0) {
        if (ferror(f)) {
            set_msg(msg, msg_size, path, "read failed: %s", strerror(errno));
            result = NPY_ERR_IO;
        } else {
            set_msg(msg, msg_size, path,
                    "not a .npy file (the magic string \"\\x93NUMPY\" is missing)");
        }
        goto done;
    }
    if (got < 8) {
        set_msg(msg, msg_size, path, "file ends inside the .npy version (%zu bytes)", file_size);
        goto done;
    }
    unsigned major = prefix[6];
    unsigned minor = prefix[7];
    if (major < 1 || major > 3 || minor != 0) {
        set_msg(msg, msg_size, path,
                "unsupported .npy format version %u.%u (versions 1.0, 2.0 and 3.0 are read)", major,
                minor);
        goto done;
    }
    size_t len_size = major == 1 ? 2 : 4;
    size_t prefix_size = 8 + len_size;
    if (file_size < prefix_size || fread(prefix + 8, 1, len_size, f) != len_size) {
        set_msg(msg, msg_size, path, "file ends inside the header length (%zu bytes)", file_size);
        goto done;
    }
    size_t header_len = read_le(prefix + 8, len_size);
    if (header_len > NPY_MAX_HEADER_LEN) {
        set_msg(msg, msg_size, path, "header length %zu exceeds the limit of %zu bytes", header_len,
                NPY_MAX_HEADER_LEN);
        goto done;
    }
    if (header_len > file_size - prefix_size) {
        set_msg(msg, msg_size, path,
                "header length %zu runs past the end of the file (%zu bytes after the %zu-byte "
                "prefix): truncated file",
                header_len, file_size - prefix_size, prefix_size);
        goto done;
    }
    header = malloc(header_len + 1);
    if (header == NULL) {
        set_msg(msg, msg_size, path, "out of memory for the header");
        result = NPY_ERR_MEMORY;
        goto done;
    }
    if (fread(header, 1, header_len, f) != header_len) {
        set_msg(msg, msg_size, path, "read failed in the header: %s",
                ferror(f) ? strerror(errno) : "the file shrank while being read");
        result = NPY_ERR_IO;
        goto done;
    }
    header[header_len] = '\0';

    header_info info;
    if (parse_header(header, header_len, &info, err, sizeof(err)) != 0) {
        set_msg(msg, msg_size, path, "%s", err);
        goto done;
    }
    size_t count;
    if (element_count(info.ndim, info.dims, &count) != 0) {
        set_msg(msg, msg_size, path, "shape's element count overflows size_t");
        goto done;
    }
    size_t elem_size = npy_dtype_size(info.dtype);
    if (count > SIZE_MAX / elem_size) {
        set_msg(msg, msg_size, path, "shape's byte count overflows size_t");
        goto done;
    }
    size_t bytes = count * elem_size;
    size_t remaining = file_size - prefix_size - header_len;
    if (remaining < bytes) {
        set_msg(msg, msg_size, path,
                "truncated data: the header says %zu bytes (%zu x %zu), the file holds %zu", bytes,
                count, elem_size, remaining);
        goto done;
    }
    if (remaining > bytes) {
        set_msg(msg, msg_size, path,
                "%zu trailing byte%s after the data (the header says %zu data bytes, the file "
                "holds %zu)",
                remaining - bytes, remaining - bytes == 1 ? "" : "s", bytes, remaining);
        goto done;
    }

    /* malloc'd separately (not inside one file buffer) so the data are aligned for doubles. */
    data = malloc(bytes > 0 ? bytes : 1);
    if (data == NULL) {
        set_msg(msg, msg_size, path, "out of memory for %zu bytes of data", bytes);
        result = NPY_ERR_MEMORY;
        goto done;
    }
    if (fread(data, 1, bytes, f) != bytes) {
        set_msg(msg, msg_size, path, "read failed in the data: %s",
                ferror(f) ? strerror(errno) : "the file shrank while being read");
        result = NPY_ERR_IO;
        goto done;
    }
    if (fgetc(f) != EOF) {
        set_msg(msg, msg_size, path, "trailing bytes after the data (the file grew while read)");
        goto done;
    }
    if (!host_is_little_endian())
        swap_elements(data, count, elem_size);

    array->dtype = info.dtype;
    array->ndim = info.ndim;
    memcpy(array->dims, info.dims, sizeof(info.dims));
    array->count = count;
    array->data = data;
    data = NULL;
    result = NPY_OK;

done:
    free(data);
    free(header);
    return result;
}

/* ---- writing -------------------------------------------------------------- */

npy_result npy_write_stream(FILE* stream, const char* name, npy_dtype dtype, size_t ndim,
                            const size_t* dims, const void* data, char* msg, size_t msg_size)
{
    if (ndim > NPY_MAX_DIMS || (ndim > 0 && dims == NULL)) {
        set_msg(msg, msg_size, name, "cannot write %zu dimensions", ndim);
        return NPY_ERR_FORMAT;
    }
    size_t count;
    if (element_count(ndim, dims, &count) != 0) {
        set_msg(msg, msg_size, name, "element count overflows size_t");
        return NPY_ERR_FORMAT;
    }
    size_t elem_size = npy_dtype_size(dtype);
    if (elem_size == 0) {
        set_msg(msg, msg_size, name, "cannot write dtype %d", (int)dtype);
        return NPY_ERR_FORMAT;
    }
    if (count > SIZE_MAX / elem_size) {
        set_msg(msg, msg_size, name, "byte count overflows size_t");
        return NPY_ERR_FORMAT;
    }

    /* 8 dims of 20 digits fit with room to spare; the +64 leaves room for the padding. */
    char header[512 + 64];
    int len = snprintf(header, 512, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       npy_dtype_descr(dtype));
    for (size_t d = 0; d < ndim; ++d)
        len += snprintf(header + len, 512 - (size_t)len, d + 1 < ndim ? "%zu, " : "%zu", dims[d]);
    len += snprintf(header + len, 512 - (size_t)len, "%s), }", ndim == 1 ? "," : "");
    /* NumPy pads with spaces and ends with '\n' so the data start 64-byte aligned. */
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(header + len, ' ', pad);
    header[(size_t)len + pad] = '\n';
    size_t header_len = (size_t)len + pad + 1;

    unsigned char prefix[10];
    memcpy(prefix, npy_magic, 6);
    prefix[6] = 1;
    prefix[7] = 0;
    prefix[8] = (unsigned char)(header_len & 0xff);
    prefix[9] = (unsigned char)(header_len >> 8);
    if (fwrite(prefix, 1, sizeof(prefix), stream) != sizeof(prefix) ||
        fwrite(header, 1, header_len, stream) != header_len)
        goto write_error;

    if (host_is_little_endian()) {
        if (count > 0 && fwrite(data, elem_size, count, stream) != count)
            goto write_error;
    } else {
        unsigned char chunk[8192];
        const unsigned char* src = data;
        size_t per_chunk = sizeof(chunk) / elem_size;
        for (size_t done = 0; done < count;) {
            size_t n = count - done < per_chunk ? count - done : per_chunk;
            memcpy(chunk, src + done * elem_size, n * elem_size);
            swap_elements(chunk, n, elem_size);
            if (fwrite(chunk, elem_size, n, stream) != n)
                goto write_error;
            done += n;
        }
    }
    return NPY_OK;

write_error:
    set_msg(msg, msg_size, name, "write failed: %s", strerror(errno));
    return NPY_ERR_IO;
}

npy_result npy_write(const char* path, const npy_array* array, char* msg, size_t msg_size)
{
    FILE* f = fopen(path, "wb");
    if (f == NULL) {
        set_msg(msg, msg_size, path, "cannot create: %s", strerror(errno));
        return NPY_ERR_IO;
    }
    npy_result r = npy_write_stream(f, path, array->dtype, array->ndim, array->dims, array->data,
                                    msg, msg_size);
    if (fclose(f) != 0 && r == NPY_OK) {
        set_msg(msg, msg_size, path, "write failed: %s", strerror(errno));
        r = NPY_ERR_IO;
    }
    return r;
}
