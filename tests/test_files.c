/* test_files.c - shared test helpers for files: scratch directories, raw bytes, malformed .npy. */
#include "test_files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- scratch directories -------------------------------------------------- */

int test_dir_make_temp(char* dir, size_t size, const char* tag)
{
    const char* tmp = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/clsoftmax-%s-XXXXXX",
                     tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", tag);
    if (n < 0 || (size_t)n >= size)
        return -1;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

void test_dir_empty(const char* dir)
{
    DIR* d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent* e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        test_path_join(path, sizeof(path), dir, e->d_name);
        /* lstat: a link to a directory is removed, never what it points to. */
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            test_dir_remove(path);
        else
            remove(path);
    }
    closedir(d);
}

int test_dir_remove(const char* dir)
{
    test_dir_empty(dir);
    return rmdir(dir) == 0 ? 0 : -1;
}

void test_path_join(char* buf, size_t size, const char* dir, const char* name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* ---- files ---------------------------------------------------------------- */

int test_write_bytes(const char* path, const void* bytes, size_t len)
{
    FILE* f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = len > 0 ? fwrite(bytes, 1, len, f) : 0;
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

int test_write_npy_raw(const char* path, const char* magic, unsigned major, unsigned minor,
                       const char* header, int use_len, uint32_t len, const void* data,
                       size_t data_bytes)
{
    size_t hlen = strlen(header);
    size_t len_size = (major == 2 || major == 3) ? 4 : 2;
    size_t prefix = 8 + len_size + hlen;
    size_t total = prefix + data_bytes;
    unsigned char* buf = calloc(total, 1);
    if (buf == NULL)
        return -1;
    memcpy(buf, magic != NULL ? magic : "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = (unsigned char)minor;
    uint32_t field = use_len ? len : (uint32_t)hlen;
    for (size_t i = 0; i < len_size; ++i)
        buf[8 + i] = (unsigned char)(field >> (8 * i));
    memcpy(buf + 8 + len_size, header, hlen);
    if (data != NULL) {
        memcpy(buf + prefix, data, data_bytes);
    } else {
        /* Recognisable data: a reader that returns it shows 1.0f, not a lucky 0. */
        for (size_t i = 0; i + 4 <= data_bytes; i += 4)
            memcpy(buf + prefix + i, "\x00\x00\x80\x3f", 4);
    }
    int rc = test_write_bytes(path, buf, total);
    free(buf);
    return rc;
}

/* ---- malformed .npy files ------------------------------------------------- */

/* A version 1.0 header of NumPy's own form, for the cases where only one field is wrong. */
#define HEADER(descr, shape) "{'descr': " descr ", 'fortran_order': False, 'shape': " shape ", }\n"
#define GOOD_HEADER HEADER("'<f4'", "(2, 3)")

const test_bad_npy test_bad_npy_cases[] = {
    /* The prefix: magic, version, header length. */
    {"wrong magic", "\x93NUMPX", 1, 0, GOOD_HEADER, 0, 0, 24, "magic"},
    {"zip file", "PK\x03\x04\x14\x00", 1, 0, GOOD_HEADER, 0, 0, 24, "magic"},
    {"zero magic", "\0\0\0\0\0\0", 1, 0, "", 0, 0, 0, "magic"},
    {"version 4.0", NULL, 4, 0, GOOD_HEADER, 0, 0, 24, "version 4.0"},
    {"version 0.1", NULL, 0, 1, GOOD_HEADER, 0, 0, 24, "version 0.1"},
    {"version 1.1", NULL, 1, 1, GOOD_HEADER, 0, 0, 24, "version 1.1"},
    {"header length past the end (v1)", NULL, 1, 0, GOOD_HEADER, 1, 5000, 24, "past the end"},
    {"header length past the end (v1, 4000)", NULL, 1, 0, GOOD_HEADER, 1, 4000, 24,
     "header length"},
    {"header length past the end (v2)", NULL, 2, 0, GOOD_HEADER, 1, 70000, 24, "past the end"},
    {"huge header length", NULL, 2, 0, GOOD_HEADER, 1, 0xFFFFFFFFu, 24,
     "header length 4294967295 exceeds the limit"},
    /* The header dict: its syntax and keys. */
    {"header not a dict", NULL, 1, 0, "[('descr', '<f4')]\n", 0, 0, 24, "not a Python dict"},
    {"header a tuple", NULL, 1, 0, "(1, 2)\n", 0, 0, 24, "not a Python dict"},
    {"empty header", NULL, 1, 0, "", 0, 0, 24, "not a Python dict"},
    {"missing shape", NULL, 1, 0, "{'descr': '<f4', 'fortran_order': False}\n", 0, 0, 24,
     "lacks the key 'shape'"},
    {"missing descr", NULL, 1, 0, "{'fortran_order': False, 'shape': (2, 3)}\n", 0, 0, 24,
     "lacks the key 'descr'"},
    {"missing fortran_order", NULL, 1, 0, "{'descr': '<f4', 'shape': (2, 3)}\n", 0, 0, 24,
     "lacks the key 'fortran_order'"},
    {"unknown key", NULL, 1, 0,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}\n", 0, 0, 24,
     "unexpected key 'extra'"},
    {"duplicate key", NULL, 1, 0,
     "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", 0, 0, 24,
     "duplicate key 'descr'"},
    {"unterminated dict", NULL, 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 0,
     0, 24, "expected ',' or '}'"},
    {"text after the dict", NULL, 1, 0, GOOD_HEADER "junk", 0, 0, 24, "after the dict"},
    {"fortran_order True", NULL, 1, 0,
     "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 0, 0, 24, "fortran_order"},
    {"fortran_order 0", NULL, 1, 0, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }\n", 0,
     0, 24, "True or False"},
    /* descr: only little-endian float32, float64, float16, uint16 and int64. */
    {"big-endian >f4", NULL, 1, 0, HEADER("'>f4'", "(2, 3)"), 0, 0, 24, "'>f4'"},
    {"big-endian >f2", NULL, 1, 0, HEADER("'>f2'", "(2, 3)"), 0, 0, 12, "'>f2'"},
    {"big-endian >u2", NULL, 1, 0, HEADER("'>u2'", "(2, 3)"), 0, 0, 12, "'>u2'"},
    {"big-endian >i8", NULL, 1, 0, HEADER("'>i8'", "(2, 3)"), 0, 0, 48, "'>i8'"},
    {"int16 <i2", NULL, 1, 0, HEADER("'<i2'", "(2, 3)"), 0, 0, 12, "'<i2'"},
    {"bfloat16 by name", NULL, 1, 0, HEADER("'bfloat16'", "(2, 3)"), 0, 0, 12, "'bfloat16'"},
    {"uint64 <u8", NULL, 1, 0, HEADER("'<u8'", "(2, 3)"), 0, 0, 48, "'<u8'"},
    {"int32 <i4", NULL, 1, 0, HEADER("'<i4'", "(2, 3)"), 0, 0, 24, "'<i4'"},
    {"bytes |u1", NULL, 1, 0, HEADER("'|u1'", "(2, 3)"), 0, 0, 6, "'|u1'"},
    {"structured dtype", NULL, 1, 0, HEADER("[('a', '<f4')]", "(2, 3)"), 0, 0, 24, "structured"},
    /* shape. */
    {"negative dimension", NULL, 1, 0, HEADER("'<f4'", "(-2, 3)"), 0, 0, 24, "negative"},
    {"negative last dimension", NULL, 1, 0, HEADER("'<f4'", "(2, -3)"), 0, 0, 24, "negative"},
    {"absurd dimension", NULL, 1, 0, HEADER("'<f4'", "(99999999999999999999, 3)"), 0, 0, 24,
     "too large"},
    {"absurd 1-D dimension", NULL, 1, 0, HEADER("'<f4'", "(99999999999999999999,)"), 0, 0, 24,
     "too large"},
    {"9 dimensions", NULL, 1, 0, HEADER("'<f4'", "(1, 1, 1, 1, 1, 1, 1, 1, 6)"), 0, 0, 24,
     "more than 8 dimensions"},
    {"9 dimensions ending 2, 3", NULL, 1, 0, HEADER("'<f4'", "(1, 1, 1, 1, 1, 1, 1, 2, 3)"), 0, 0,
     24, "more than 8 dimensions"},
    {"0-d array", NULL, 1, 0, HEADER("'<f4'", "()"), 0, 0, 4, "0-d"},
    {"shape not a tuple", NULL, 1, 0, HEADER("'<f4'", "(6)"), 0, 0, 24, "not a tuple"},
    {"shape a list", NULL, 1, 0, HEADER("'<f4'", "[2, 3]"), 0, 0, 24, "not a tuple"},
    {"float dimension", NULL, 1, 0, HEADER("'<f4'", "(2.5, 3)"), 0, 0, 24, "expected ',' or ')'"},
    /* The data's length against the shape's. */
    {"truncated data", NULL, 1, 0, GOOD_HEADER, 0, 0, 23, "truncated data"},
    {"truncated by an element", NULL, 1, 0, GOOD_HEADER, 0, 0, 20, "truncated data"},
    {"no data", NULL, 1, 0, GOOD_HEADER, 0, 0, 0, "truncated data"},
    {"trailing data", NULL, 1, 0, GOOD_HEADER, 0, 0, 25, "trailing byte"},
    {"trailing element", NULL, 2, 0, GOOD_HEADER, 0, 0, 28, "trailing byte"},
    {"trailing elements (v2)", NULL, 2, 0, GOOD_HEADER, 0, 0, 32, "trailing bytes"},
    /* 2-byte elements: the data length counts 2 bytes each. */
    {"truncated float16", NULL, 1, 0, HEADER("'<f2'", "(2, 3)"), 0, 0, 11, "truncated data"},
    {"float16 read as 4-byte", NULL, 1, 0, HEADER("'<f2'", "(2, 3)"), 0, 0, 24, "trailing bytes"},
    {"trailing uint16 byte", NULL, 1, 0, HEADER("'<u2'", "(2, 3)"), 0, 0, 13, "trailing byte"},
    {"truncated int64", NULL, 2, 0, HEADER("'<i8'", "(2, 3)"), 0, 0, 40, "truncated data"},
};

const size_t test_bad_npy_count = sizeof(test_bad_npy_cases) / sizeof(test_bad_npy_cases[0]);

int test_write_bad_npy(const char* path, const test_bad_npy* b)
{
    return test_write_npy_raw(path, b->magic, b->major, b->minor, b->header, b->use_len, b->len,
                              NULL, b->data_bytes);
}
