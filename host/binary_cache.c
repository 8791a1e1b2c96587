/* binary_cache.c - program binaries on disk, so a fresh process skips compiling the kernels.
 *
 * One file per key in ${CLSOFTMAX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clsoftmax}. The
 * key is the library version, "platform / device", CL_DRIVER_VERSION, CL_DEVICE_VERSION, the
 * build options and an FNV-1a 64 hash of the sources; the file name is the key's hash and the
 * file repeats the whole key, so a hash collision reads as a miss. Layout (little or big
 * endian as written, never moved between machines):
 *
 *   "CLSMXBIN" | u32 format | u64 key length | key | u64 binary length | u64 FNV-1a of binary
 *   | binary
 *
 * A file that is short, has another key, fails its checksum or whose binary the driver
 * refuses (clCreateProgramWithBinary or clBuildProgram) is removed, and the caller builds
 * from source and writes a new one. Files are written to a temporary name beside the final
 * one and renamed, so readers in other processes see a whole file or none.
 * The cache is an optimisation: every failure to read or write is silent.
 * CLSOFTMAX_NO_DISK_CACHE=1 (any value but "" and "0") turns it off.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "CLSMXBIN"
#define MAGIC_LEN 8
#define FORMAT_VERSION 1u
/* Far above any kernel binary seen (PoCL's are ~100 KiB): a larger file is corrupt. */
#define MAX_FILE_BYTES ((size_t)256 << 20)
#define PATH_BYTES 4096

static uint64_t fnv1a(uint64_t h, const void* data, size_t len)
{
    const unsigned char* p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

int clsoftmax__binary_cache_enabled(void)
{
    const char* off = getenv("CLSOFTMAX_NO_DISK_CACHE");
    return off == NULL || off[0] == '\0' || strcmp(off, "0") == 0;
}

/* The cache folder, created if missing; 0 on success. */
static int cache_dir(char* dir, size_t size)
{
    const char* over = getenv("CLSOFTMAX_CACHE_DIR");
    const char* xdg = getenv("XDG_CACHE_HOME");
    const char* home = getenv("HOME");
    int len;
    if (over != NULL && over[0] != '\0')
        len = snprintf(dir, size, "%s", over);
    else if (xdg != NULL && xdg[0] == '/') /* the XDG spec ignores relative paths */
        len = snprintf(dir, size, "%s/clsoftmax", xdg);
    else if (home != NULL && home[0] != '\0')
        len = snprintf(dir, size, "%s/.cache/clsoftmax", home);
    else
        return -1;
    if (len < 0 || (size_t)len >= size)
        return -1;
    /* mkdir -p: each prefix in turn; EEXIST is fine. */
    for (char* p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(dir, 0700);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* The key text and the file's path for these sources and options on ctx's device. */
static int make_key(clsoftmax_context* ctx, const char* const* sources, size_t count,
                    const char* options, char* key, size_t key_size, char* path, size_t path_size)
{
    char driver[CLSOFTMAX__NAME_MAX] = "";
    char version[CLSOFTMAX__NAME_MAX] = "";
    char dir[PATH_BYTES];
    if (clGetDeviceInfo(ctx->device, CL_DRIVER_VERSION, sizeof driver, driver, NULL) !=
            CL_SUCCESS ||
        clGetDeviceInfo(ctx->device, CL_DEVICE_VERSION, sizeof version, version, NULL) !=
            CL_SUCCESS)
        return -1;
    driver[sizeof driver - 1] = '\0';
    version[sizeof version - 1] = '\0';

    uint64_t src_hash = FNV_OFFSET;
    for (size_t s = 0; s < count; s++)
        src_hash = fnv1a(src_hash, sources[s], strlen(sources[s]) + 1); /* NUL separates */
    int len = snprintf(key, key_size,
                       "clsoftmax %s\ndevice %s\ndriver %s\nversion %s\noptions %s\n"
                       "sources %016llx\n",
                       clsoftmax_version_string(), ctx->device_name, driver, version, options,
                       (unsigned long long)src_hash);
    if (len < 0 || (size_t)len >= key_size)
        return -1;
    if (cache_dir(dir, sizeof dir) != 0)
        return -1;
    uint64_t name = fnv1a(FNV_OFFSET, key, (size_t)len);
    len = snprintf(path, path_size, "%s/%016llx.clbin", dir, (unsigned long long)name);
    return len < 0 || (size_t)len >= path_size ? -1 : 0;
}

/* Reads the whole file; NULL when missing, unreadable or larger than MAX_FILE_BYTES. */
static unsigned char* read_file(const char* path, size_t* size)
{
    FILE* f = fopen(path, "rb");
    unsigned char* data = NULL;
    long len = 0;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || (size_t)len > MAX_FILE_BYTES ||
        fseek(f, 0, SEEK_SET) != 0)
        goto done;
    data = malloc(len > 0 ? (size_t)len : 1);
    if (data != NULL && fread(data, 1, (size_t)len, f) != (size_t)len) {
        free(data);
        data = NULL;
    }
    *size = (size_t)len;
done:
    fclose(f);
    return data;
}

/* Takes n bytes at *pos of data[size] into dst; -1 when the file ends first. */
static int take(const unsigned char* data, size_t size, size_t* pos, void* dst, size_t n)
{
    if (n > size - *pos)
        return -1;
    memcpy(dst, data + *pos, n);
    *pos += n;
    return 0;
}

/* The binary inside a file's bytes if the file is whole and holds this key; else NULL. */
static const unsigned char* parse(const unsigned char* data, size_t size, const char* key,
                                  size_t* bin_len)
{
    size_t pos = 0;
    char magic[MAGIC_LEN];
    uint32_t format = 0;
    uint64_t key_len = 0, len = 0, sum = 0;
    if (take(data, size, &pos, magic, MAGIC_LEN) != 0 || memcmp(magic, MAGIC, MAGIC_LEN) != 0 ||
        take(data, size, &pos, &format, sizeof format) != 0 || format != FORMAT_VERSION ||
        take(data, size, &pos, &key_len, sizeof key_len) != 0 || key_len != strlen(key) ||
        key_len > size - pos || memcmp(data + pos, key, (size_t)key_len) != 0)
        return NULL;
    pos += (size_t)key_len;
    if (take(data, size, &pos, &len, sizeof len) != 0 ||
        take(data, size, &pos, &sum, sizeof sum) != 0 || len == 0 || len != size - pos ||
        fnv1a(FNV_OFFSET, data + pos, (size_t)len) != sum)
        return NULL;
    *bin_len = (size_t)len;
    return data + pos;
}

cl_program clsoftmax__binary_cache_load(clsoftmax_context* ctx, const char* const* sources,
                                        size_t count, const char* options)
{
    char key[2048];
    char path[PATH_BYTES];
    size_t size = 0;
    size_t bin_len = 0;
    cl_program program = NULL;
    if (!clsoftmax__binary_cache_enabled() ||
        make_key(ctx, sources, count, options, key, sizeof key, path, sizeof path) != 0)
        return NULL;
    unsigned char* data = read_file(path, &size);
    if (data == NULL)
        return NULL; /* a miss */

    const unsigned char* bin = parse(data, size, key, &bin_len);
    if (bin != NULL) {
        cl_int err = CL_SUCCESS;
        cl_int bin_status = CL_SUCCESS;
        program = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->device, &bin_len, &bin,
                                            &bin_status, &err);
        if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
            if (err == CL_SUCCESS)
                clReleaseProgram(program);
            program = NULL;
        } else if (clBuildProgram(program, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
            clReleaseProgram(program);
            program = NULL;
        }
    }
    free(data);
    if (program == NULL) {
        /* Stale or corrupt: drop it so the caller's rebuild writes a good one. */
        remove(path);
        ctx->disk_cache_rejects++;
        return NULL;
    }
    ctx->disk_cache_loads++;
    return program;
}

/* The binary of program for ctx->device (malloc'ed), or NULL. */
static unsigned char* program_binary(clsoftmax_context* ctx, cl_program program, size_t* len)
{
    cl_uint ndev = 0;
    cl_device_id* devs = NULL;
    size_t* sizes = NULL;
    unsigned char** bins = NULL;
    unsigned char* result = NULL;
    cl_uint mine = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS ||
        ndev == 0)
        return NULL;
    devs = calloc(ndev, sizeof *devs);
    sizes = calloc(ndev, sizeof *sizes);
    bins = calloc(ndev, sizeof *bins);
    if (devs == NULL || sizes == NULL || bins == NULL ||
        clGetProgramInfo(program, CL_PROGRAM_DEVICES, ndev * sizeof *devs, devs, NULL) !=
            CL_SUCCESS ||
        clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, ndev * sizeof *sizes, sizes, NULL) !=
            CL_SUCCESS)
        goto done;
    /* A borrowed cl_context may hold several devices; only ours was built. */
    mine = ndev;
    for (cl_uint d = 0; d < ndev; d++)
        if (devs[d] == ctx->device)
            mine = d;
    if (mine == ndev || sizes[mine] == 0 || sizes[mine] > MAX_FILE_BYTES / 2)
        goto done;
    bins[mine] = malloc(sizes[mine]);
    if (bins[mine] == NULL || clGetProgramInfo(program, CL_PROGRAM_BINARIES, ndev * sizeof *bins,
                                               bins, NULL) != CL_SUCCESS)
        goto done;
    result = bins[mine];
    bins[mine] = NULL;
    *len = sizes[mine];
done:
    if (bins != NULL && mine < ndev)
        free(bins[mine]);
    free(devs);
    free(sizes);
    free(bins);
    return result;
}

void clsoftmax__binary_cache_store(clsoftmax_context* ctx, const char* const* sources, size_t count,
                                   const char* options, cl_program program)
{
    char key[2048];
    char path[PATH_BYTES];
    char temp[PATH_BYTES + 16];
    size_t bin_len = 0;
    unsigned char* bin = NULL;
    FILE* f = NULL;
    int fd = -1;
    if (!clsoftmax__binary_cache_enabled() ||
        make_key(ctx, sources, count, options, key, sizeof key, path, sizeof path) != 0)
        return;
    bin = program_binary(ctx, program, &bin_len);
    if (bin == NULL)
        return;
    int len = snprintf(temp, sizeof temp, "%s.XXXXXX", path);
    if (len < 0 || (size_t)len >= sizeof temp || (fd = mkstemp(temp)) < 0)
        goto done;
    f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        remove(temp);
        goto done;
    }
    const uint32_t format = FORMAT_VERSION;
    const uint64_t key_len = strlen(key);
    const uint64_t blen = bin_len;
    const uint64_t sum = fnv1a(FNV_OFFSET, bin, bin_len);
    int ok = fwrite(MAGIC, 1, MAGIC_LEN, f) == MAGIC_LEN &&
             fwrite(&format, sizeof format, 1, f) == 1 &&
             fwrite(&key_len, sizeof key_len, 1, f) == 1 &&
             fwrite(key, 1, (size_t)key_len, f) == (size_t)key_len &&
             fwrite(&blen, sizeof blen, 1, f) == 1 && fwrite(&sum, sizeof sum, 1, f) == 1 &&
             fwrite(bin, 1, bin_len, f) == bin_len;
    ok = fclose(f) == 0 && ok;
    /* rename() replaces any old file in one step: readers see the old or the new, whole. */
    if (!ok || rename(temp, path) != 0) {
        remove(temp);
        goto done;
    }
    ctx->disk_cache_stores++;
done:
    free(bin);
}
