/* npy.h - a strict reader and writer of NumPy .npy files: little-endian floats, uint16, int64. */
#ifndef CLSOFTMAX_NPY_H
#define CLSOFTMAX_NPY_H

#include <stddef.h>
#include <stdio.h>

/*
 * What is read: the magic "\x93NUMPY", versions 1.0 (2-byte header length),
 * 2.0 and 3.0 (4-byte length, capped at NPY_MAX_HEADER_LEN before anything is
 * allocated), a header that is a Python dict literal with exactly the keys
 * 'descr', 'fortran_order' and 'shape' (any order, any spacing, a trailing
 * comma allowed), descr '<f4', '<f8', '<f2', '<u2' or '<i8', fortran_order False, 1 to
 * NPY_MAX_DIMS dimensions, and exactly element count * element size bytes after the header.
 * '<u2' is how bfloat16 travels (NumPy has no bfloat16 dtype: arrays are saved as the raw
 * 16-bit words, x.view(np.uint16)); '<i8' holds class labels. Which dtypes a command takes
 * is the command's business: the reader accepts these five.
 *
 * Rejected, each with a message naming the file and the problem: other dtypes
 * (big-endian, other integers, structured), Fortran order, 0-d arrays
 * (shape (): softmax needs an axis), more than NPY_MAX_DIMS dimensions, a
 * dimension or an element or byte count that overflows size_t, truncated data
 * and trailing bytes. A dimension of 0 is a valid (empty) array here; the
 * library rejects it later with INVALID_SHAPE.
 *
 * Data are converted from little-endian on big-endian hosts, so callers always
 * see native values (16-bit words as uint16_t, labels as int64_t).
 */

#define NPY_MAX_DIMS 8
/* NumPy itself refuses headers over 10 000 bytes by default; 1 MiB is generous. */
#define NPY_MAX_HEADER_LEN ((size_t)1 << 20)

typedef enum npy_dtype {
    NPY_FLOAT32 = 0, /* '<f4' */
    NPY_FLOAT64 = 1, /* '<f8' */
    NPY_FLOAT16 = 2, /* '<f2': IEEE binary16 */
    NPY_UINT16 = 3,  /* '<u2': raw 16-bit words (bfloat16 with `--dtype bf16`) */
    NPY_INT64 = 4    /* '<i8': class labels */
} npy_dtype;

typedef enum npy_result {
    NPY_OK = 0,
    NPY_ERR_IO = 1,     /* cannot open, read, write or stat the file */
    NPY_ERR_FORMAT = 2, /* not a .npy file this reader accepts */
    NPY_ERR_MEMORY = 3  /* out of host memory */
} npy_result;

/* A dense C-order array; data holds count elements of dtype, owned by the array. */
typedef struct npy_array {
    npy_dtype dtype;
    size_t ndim;
    size_t dims[NPY_MAX_DIMS];
    size_t count; /* elements: the product of dims */
    void* data;   /* malloc'd, count * npy_dtype_size(dtype) bytes (never NULL after a read) */
} npy_array;

/* Bytes per element: 2, 4 or 8. */
size_t npy_dtype_size(npy_dtype dtype);
/* The descr string: "<f4", "<f8", "<f2", "<u2" or "<i8". */
const char* npy_dtype_descr(npy_dtype dtype);

/*
 * Reads path into *array (overwritten; free with npy_array_free). The data are
 * read with one fread. On failure *array is left empty (data NULL) and msg
 * receives "PATH: problem" (truncated to msg_size; msg may be NULL when
 * msg_size is 0).
 */
npy_result npy_read(const char* path, npy_array* array, char* msg, size_t msg_size);

/*
 * The same from an open stream of file_size bytes positioned at its start
 * (npy_read after fopen and fstat; fuzzers use fmemopen). name is used in
 * messages only. Does not close the stream.
 */
npy_result npy_read_stream(FILE* stream, size_t file_size, const char* name, npy_array* array,
                           char* msg, size_t msg_size);

/*
 * Writes a version 1.0 file: the header padded with spaces and ended by '\n'
 * so that the data start at a multiple of 64 bytes (NumPy's rule), then the
 * data little-endian. name is used in messages only. Checks each fwrite but
 * neither flushes nor closes the stream: the caller does, and must check that
 * too. ndim must be 0..NPY_MAX_DIMS (0 writes shape (), which npy_read rejects).
 */
npy_result npy_write_stream(FILE* stream, const char* name, npy_dtype dtype, size_t ndim,
                            const size_t* dims, const void* data, char* msg, size_t msg_size);

/* Writes array to path (created or truncated) with npy_write_stream, closing and checking. */
npy_result npy_write(const char* path, const npy_array* array, char* msg, size_t msg_size);

/* Frees the data and empties the array; NULL and an empty array are no-ops. */
void npy_array_free(npy_array* array);

#endif /* CLSOFTMAX_NPY_H */
