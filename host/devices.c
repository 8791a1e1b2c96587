/* devices.c - enumerates OpenCL platforms and devices, reads capabilities, applies selectors. */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct device_entry {
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char platform_name[CLSOFTMAX__NAME_MAX];
    char device_name[CLSOFTMAX__NAME_MAX];
} device_entry;

/* A string property, truncated to fit; "" when the query fails. */
static void device_string(cl_device_id device, cl_device_info what, char* buf, size_t size)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(device, what, size, buf, NULL) != CL_SUCCESS) {
        /* CL_INVALID_VALUE when the value is longer than buf: read it whole. */
        size_t need = 0;
        if (clGetDeviceInfo(device, what, 0, NULL, &need) == CL_SUCCESS && need > 0) {
            char* tmp = malloc(need);
            if (tmp != NULL && clGetDeviceInfo(device, what, need, tmp, NULL) == CL_SUCCESS)
                snprintf(buf, size, "%s", tmp);
            free(tmp);
        }
    }
    buf[size - 1] = '\0';
}

static void platform_string(cl_platform_id platform, cl_platform_info what, char* buf, size_t size)
{
    buf[0] = '\0';
    if (clGetPlatformInfo(platform, what, size, buf, NULL) != CL_SUCCESS)
        buf[0] = '\0';
    buf[size - 1] = '\0';
}

/*
 * Every device of every platform, in platform order then device order. No
 * platform at all (the ICD loader's CL_PLATFORM_NOT_FOUND_KHR) is an empty
 * list, not an error. *list is malloc'ed; free it.
 */
static cl_int list_devices(device_entry** list, size_t* count, const char** call)
{
    *list = NULL;
    *count = 0;
    *call = "clGetPlatformIDs";
    cl_uint num_platforms = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &num_platforms);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && num_platforms == 0))
        return CL_SUCCESS;
    if (err != CL_SUCCESS)
        return err;

    cl_platform_id* platforms = malloc(num_platforms * sizeof *platforms);
    *call = "allocating the platform list";
    if (platforms == NULL)
        return CL_OUT_OF_HOST_MEMORY;
    *call = "clGetPlatformIDs";
    err = clGetPlatformIDs(num_platforms, platforms, NULL);
    if (err != CL_SUCCESS)
        goto done;

    for (cl_uint p = 0; p < num_platforms; ++p) {
        cl_uint num_devices = 0;
        cl_int derr = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &num_devices);
        /* Only CL_DEVICE_NOT_FOUND means "none here": any other error is one (not an empty
           platform, which would turn a failing driver into NO_DEVICE). */
        if (derr == CL_DEVICE_NOT_FOUND || (derr == CL_SUCCESS && num_devices == 0))
            continue;
        if (derr != CL_SUCCESS) {
            *call = "clGetDeviceIDs";
            err = derr;
            goto done;
        }
        cl_device_id* devices = malloc(num_devices * sizeof *devices);
        device_entry* grown = realloc(*list, (*count + num_devices) * sizeof **list);
        if (devices == NULL || grown == NULL) {
            *call = "allocating the device list";
            free(devices);
            if (grown != NULL)
                *list = grown;
            err = CL_OUT_OF_HOST_MEMORY;
            goto done;
        }
        *list = grown;
        derr = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, num_devices, devices, NULL);
        if (derr != CL_SUCCESS) {
            *call = "clGetDeviceIDs";
            free(devices);
            err = derr;
            goto done;
        }
        for (cl_uint d = 0; d < num_devices; ++d) {
            device_entry* e = &(*list)[(*count)++];
            e->platform = platforms[p];
            e->device = devices[d];
            e->type = 0;
            clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof e->type, &e->type, NULL);
            platform_string(platforms[p], CL_PLATFORM_NAME, e->platform_name,
                            sizeof e->platform_name);
            device_string(devices[d], CL_DEVICE_NAME, e->device_name, sizeof e->device_name);
        }
        free(devices);
    }
done:
    free(platforms);
    if (err != CL_SUCCESS) {
        free(*list);
        *list = NULL;
        *count = 0;
    }
    return err;
}

cl_int clsoftmax__device_caps_query(cl_device_id device, clsoftmax__device_caps* caps)
{
    memset(caps, 0, sizeof *caps);
    cl_int err = clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof caps->type, &caps->type, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof caps->compute_units,
                              &caps->compute_units, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                              sizeof caps->max_work_group_size, &caps->max_work_group_size, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof caps->local_mem_size,
                              &caps->local_mem_size, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof caps->max_mem_alloc_size,
                              &caps->max_mem_alloc_size, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_ADDRESS_BITS, sizeof caps->address_bits,
                              &caps->address_bits, NULL);
    if (err != CL_SUCCESS)
        return err;

    /* At least 3 dimensions on every device; only the first two are used. */
    size_t item_sizes[16] = {0};
    if (clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof item_sizes, item_sizes,
                        NULL) == CL_SUCCESS)
        memcpy(caps->max_work_item_sizes, item_sizes, sizeof caps->max_work_item_sizes);

    /* CL_DEVICE_DOUBLE_FP_CONFIG is non-zero exactly when doubles are supported
       (an OpenCL 1.2 core query; the extension string says the same). */
    cl_device_fp_config fp64 = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) != CL_SUCCESS)
        fp64 = 0;
    caps->has_fp64 = fp64 != 0;

    /* Deprecated in OpenCL 2.0 but still answered by every driver we know. */
    cl_bool unified = CL_FALSE;
    if (clGetDeviceInfo(device, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) !=
        CL_SUCCESS)
        unified = CL_FALSE;
    caps->host_unified_memory = unified == CL_TRUE;

    /* Vector widths steer the kernels' vector loads; unknown (0) means scalar. */
    if (clGetDeviceInfo(device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof caps->native_vw_float,
                        &caps->native_vw_float, NULL) != CL_SUCCESS)
        caps->native_vw_float = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE, sizeof caps->native_vw_double,
                        &caps->native_vw_double, NULL) != CL_SUCCESS)
        caps->native_vw_double = 0;
    return CL_SUCCESS;
}

static int contains_nocase(const char* haystack, const char* needle)
{
    size_t n = strlen(needle);
    for (const char* h = haystack; *h != '\0'; ++h) {
        size_t i = 0;
        while (i < n && h[i] != '\0' &&
               tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            ++i;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static int is_index(const char* s, size_t* value)
{
    if (*s == '\0')
        return 0;
    size_t v = 0;
    for (; *s != '\0'; ++s) {
        if (!isdigit((unsigned char)*s) || v > ((size_t)-1 - 9) / 10)
            return 0;
        v = v * 10 + (size_t)(*s - '0');
    }
    *value = v;
    return 1;
}

clsoftmax_status clsoftmax__device_select(const char* selector, cl_platform_id* platform,
                                          cl_device_id* device, char* name, size_t name_size,
                                          cl_int* cl_err, char* msg, size_t msg_size)
{
    device_entry* list = NULL;
    size_t count = 0;
    const char* call = "";
    *cl_err = list_devices(&list, &count, &call);
    if (*cl_err != CL_SUCCESS) {
        snprintf(msg, msg_size, "enumerating OpenCL devices: %s failed with %s (%d)", call,
                 clsoftmax__cl_error_name(*cl_err), (int)*cl_err);
        return clsoftmax__status_from_cl(*cl_err) == CLSOFTMAX_OUT_OF_MEMORY
                   ? CLSOFTMAX_OUT_OF_MEMORY
                   : CLSOFTMAX_OPENCL_ERROR;
    }

    size_t pick = count;
    if (count == 0) {
        snprintf(msg, msg_size, "no OpenCL platform or device is installed");
    } else if (selector == NULL || selector[0] == '\0') {
        for (size_t i = 0; i < count && pick == count; ++i)
            if (list[i].type & CL_DEVICE_TYPE_GPU)
                pick = i;
        if (pick == count)
            pick = 0;
    } else {
        size_t index;
        if (is_index(selector, &index)) {
            if (index < count)
                pick = index;
            else
                snprintf(msg, msg_size, "device index %zu is out of range: %zu device(s) found",
                         index, count);
        } else {
            char full[2 * CLSOFTMAX__NAME_MAX + 4];
            for (size_t i = 0; i < count && pick == count; ++i) {
                snprintf(full, sizeof full, "%s / %s", list[i].platform_name, list[i].device_name);
                if (contains_nocase(full, selector))
                    pick = i;
            }
            if (pick == count)
                snprintf(msg, msg_size, "no OpenCL device name contains '%s' (%zu device(s) found)",
                         selector, count);
        }
    }
    if (pick == count) {
        free(list);
        return CLSOFTMAX_NO_DEVICE;
    }
    *platform = list[pick].platform;
    *device = list[pick].device;
    snprintf(name, name_size, "%s / %s", list[pick].platform_name, list[pick].device_name);
    free(list);
    return CLSOFTMAX_SUCCESS;
}

clsoftmax_status clsoftmax_devices_enumerate(int (*visit)(const clsoftmax_device_info*, void*),
                                             void* user)
{
    if (visit == NULL)
        return CLSOFTMAX_INVALID_ARGUMENT;
    device_entry* list = NULL;
    size_t count = 0;
    const char* call = "";
    cl_int err = list_devices(&list, &count, &call);
    if (err != CL_SUCCESS)
        return clsoftmax__status_from_cl(err) == CLSOFTMAX_OUT_OF_MEMORY ? CLSOFTMAX_OUT_OF_MEMORY
                                                                         : CLSOFTMAX_OPENCL_ERROR;
    for (size_t i = 0; i < count; ++i) {
        clsoftmax__device_caps caps;
        char version[128];
        char driver[128];
        if (clsoftmax__device_caps_query(list[i].device, &caps) != CL_SUCCESS)
            memset(&caps, 0, sizeof caps);
        device_string(list[i].device, CL_DEVICE_OPENCL_C_VERSION, version, sizeof version);
        device_string(list[i].device, CL_DRIVER_VERSION, driver, sizeof driver);
        cl_ulong global_mem = 0;
        clGetDeviceInfo(list[i].device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global_mem, &global_mem,
                        NULL);
        clsoftmax_device_info info = {
            .index = i,
            .platform = list[i].platform,
            .device = list[i].device,
            .platform_name = list[i].platform_name,
            .device_name = list[i].device_name,
            .type = list[i].type,
            .compute_units = caps.compute_units,
            .global_mem_size = global_mem,
            .local_mem_size = caps.local_mem_size,
            .max_work_group_size = caps.max_work_group_size,
            .has_fp64 = caps.has_fp64,
            .host_unified_memory = caps.host_unified_memory,
            .opencl_c_version = version,
            .driver_version = driver,
        };
        if (visit(&info, user) != 0)
            break;
    }
    free(list);
    return CLSOFTMAX_SUCCESS;
}
