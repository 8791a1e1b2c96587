/* test_files.h - shared test helpers for files: scratch directories, raw bytes, malformed .npy. */
#ifndef CLSOFTMAX_TEST_FILES_H
#define CLSOFTMAX_TEST_FILES_H

#include <stddef.h>
#include <stdint.h>

/* ---- scratch directories -------------------------------------------------- */

/*
 * Makes a fresh private directory $TMPDIR/clsoftmax-<tag>-XXXXXX (/tmp when
 * TMPDIR is unset or empty) and writes its path into dir. 0 on success, -1 on
 * failure (including a path longer than size).
 */
int test_dir_make_temp(char* dir, size_t size, const char* tag);

/* Removes everything below dir, recursively, without following links; dir itself stays. */
void test_dir_empty(const char* dir);

/* test_dir_empty, then dir itself: 0 when dir is gone, -1 otherwise. */
int test_dir_remove(const char* dir);

/* buf = "dir/name", truncated to size. */
void test_path_join(char* buf, size_t size, const char* dir, const char* name);

/* ---- files ---------------------------------------------------------------- */

/* Replaces path with len bytes: 0 on success, -1 when opening, writing or closing fails. */
int test_write_bytes(const char* path, const void* bytes, size_t len);

/*
 * Writes a .npy file by hand, for layouts npy.c would never write: magic (6 bytes; NULL: the
 * real "\x93NUMPY"), version major.minor, the header text, the header length field (len when
 * use_len, else the text's length: 4 bytes for majors 2 and 3, 2 bytes otherwise), then
 * data_bytes of data: copied from data, or with data NULL float32 1.0 repeated (bytes past
 * a whole element stay 0). 0 on success, -1 on failure.
 */
int test_write_npy_raw(const char* path, const char* magic, unsigned major, unsigned minor,
                       const char* header, int use_len, uint32_t len, const void* data,
                       size_t data_bytes);

/* ---- malformed .npy files ------------------------------------------------- */

/* One malformed file: how test_write_npy_raw makes it, and what the reader's message mentions. */
typedef struct test_bad_npy {
    const char* name;
    const char* magic;
    unsigned major;
    unsigned minor;
    const char* header;
    int use_len;
    uint32_t len;
    size_t data_bytes;
    const char* needle;
} test_bad_npy;

/*
 * Every malformed file the reader must refuse with NPY_ERR_FORMAT: the npy suite reads each,
 * the tool suite feeds each to `clsoftmax run`, and both expect the message to name the file
 * and mention needle (the tool prints the reader's message as it is).
 */
extern const test_bad_npy test_bad_npy_cases[];
extern const size_t test_bad_npy_count;

/* Writes case b to path with test_write_npy_raw. */
int test_write_bad_npy(const char* path, const test_bad_npy* b);

#endif /* CLSOFTMAX_TEST_FILES_H */
