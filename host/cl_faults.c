/* cl_faults.c - the OpenCL wrappers behind cl_faults.h: injected failures and live-object counts.
 */
#define CLSOFTMAX__FAULTS_NO_MACROS
#include "cl_faults.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

/* One id per wrapped function, in the order of the wrappers below. */
enum {
    FI_clGetPlatformIDs,
    FI_clGetPlatformInfo,
    FI_clGetDeviceIDs,
    FI_clGetDeviceInfo,
    FI_clCreateContext,
    FI_clGetContextInfo,
    FI_clCreateCommandQueue,
    FI_clGetCommandQueueInfo,
    FI_clCreateBuffer,
    FI_clCreateSubBuffer,
    FI_clGetMemObjectInfo,
    FI_clCreateProgramWithSource,
    FI_clCreateProgramWithBinary,
    FI_clBuildProgram,
    FI_clGetProgramInfo,
    FI_clGetProgramBuildInfo,
    FI_clCreateKernel,
    FI_clGetKernelInfo,
    FI_clGetKernelWorkGroupInfo,
    FI_clSetKernelArg,
    FI_clCreateUserEvent,
    FI_clSetUserEventStatus,
    FI_clWaitForEvents,
    FI_clGetEventInfo,
    FI_clGetEventProfilingInfo,
    FI_clSetEventCallback,
    FI_clFlush,
    FI_clFinish,
    FI_clEnqueueReadBuffer,
    FI_clEnqueueWriteBuffer,
    FI_clEnqueueReadBufferRect,
    FI_clEnqueueWriteBufferRect,
    FI_clEnqueueCopyBuffer,
    FI_clEnqueueFillBuffer,
    FI_clEnqueueMapBuffer,
    FI_clEnqueueUnmapMemObject,
    FI_clEnqueueNDRangeKernel,
    FI_clEnqueueMarkerWithWaitList,
    FI_clEnqueueBarrierWithWaitList,
    FI_clRetainContext,
    FI_clReleaseContext,
    FI_clRetainCommandQueue,
    FI_clReleaseCommandQueue,
    FI_clRetainMemObject,
    FI_clReleaseMemObject,
    FI_clRetainProgram,
    FI_clReleaseProgram,
    FI_clRetainKernel,
    FI_clReleaseKernel,
    FI_clRetainEvent,
    FI_clReleaseEvent,
    FI_clRetainDevice,
    FI_clReleaseDevice,
    FI_COUNT
};
static const char* const fi_names[FI_COUNT] = {
    "clGetPlatformIDs",
    "clGetPlatformInfo",
    "clGetDeviceIDs",
    "clGetDeviceInfo",
    "clCreateContext",
    "clGetContextInfo",
    "clCreateCommandQueue",
    "clGetCommandQueueInfo",
    "clCreateBuffer",
    "clCreateSubBuffer",
    "clGetMemObjectInfo",
    "clCreateProgramWithSource",
    "clCreateProgramWithBinary",
    "clBuildProgram",
    "clGetProgramInfo",
    "clGetProgramBuildInfo",
    "clCreateKernel",
    "clGetKernelInfo",
    "clGetKernelWorkGroupInfo",
    "clSetKernelArg",
    "clCreateUserEvent",
    "clSetUserEventStatus",
    "clWaitForEvents",
    "clGetEventInfo",
    "clGetEventProfilingInfo",
    "clSetEventCallback",
    "clFlush",
    "clFinish",
    "clEnqueueReadBuffer",
    "clEnqueueWriteBuffer",
    "clEnqueueReadBufferRect",
    "clEnqueueWriteBufferRect",
    "clEnqueueCopyBuffer",
    "clEnqueueFillBuffer",
    "clEnqueueMapBuffer",
    "clEnqueueUnmapMemObject",
    "clEnqueueNDRangeKernel",
    "clEnqueueMarkerWithWaitList",
    "clEnqueueBarrierWithWaitList",
    "clRetainContext",
    "clReleaseContext",
    "clRetainCommandQueue",
    "clReleaseCommandQueue",
    "clRetainMemObject",
    "clReleaseMemObject",
    "clRetainProgram",
    "clReleaseProgram",
    "clRetainKernel",
    "clReleaseKernel",
    "clRetainEvent",
    "clReleaseEvent",
    "clRetainDevice",
    "clReleaseDevice",
};

/* Armed: a non-zero fail_nth or fail_every; the unarmed fast path reads only this. */
static atomic_int armed;
static atomic_ulong fail_nth;
static atomic_int fail_every = -1;
static atomic_int fail_err;
static atomic_ulong calls;
static atomic_ulong fired;
static _Atomic(const char*) last_fired;
static atomic_long live[CLSOFTMAX__LIVE_COUNT];

static const char* const live_names[CLSOFTMAX__LIVE_COUNT] = {
    "contexts", "queues", "buffers", "programs", "kernels", "events", "devices", "mapped regions"};

static cl_int fault_cl_slow(int id)
{
    unsigned long n = atomic_fetch_add(&calls, 1) + 1;
    if (n == atomic_load(&fail_nth) || id == atomic_load(&fail_every)) {
        atomic_fetch_add(&fired, 1);
        atomic_store(&last_fired, fi_names[id]);
        return (cl_int)atomic_load(&fail_err);
    }
    return CL_SUCCESS;
}

/* CL_SUCCESS, or the error to return instead of making the call. */
static cl_int fault_cl(int id)
{
    if (atomic_load_explicit(&armed, memory_order_relaxed) == 0)
        return CL_SUCCESS;
    return fault_cl_slow(id);
}

static void live_add(clsoftmax__live_kind kind, long delta)
{
    atomic_fetch_add_explicit(&live[kind], delta, memory_order_relaxed);
}

/* An enqueue that succeeded and handed out an event created one. */
static void count_event(cl_int err, const cl_event* event)
{
    if (err == CL_SUCCESS && event != NULL && *event != NULL)
        live_add(CLSOFTMAX__LIVE_EVENT, 1);
}

static void arm(unsigned long nth, int every, cl_int err)
{
    atomic_store(&armed, 0);
    atomic_store(&calls, 0);
    atomic_store(&fired, 0);
    atomic_store(&last_fired, "");
    atomic_store(&fail_nth, nth);
    atomic_store(&fail_every, every);
    atomic_store(&fail_err, (int)err);
    atomic_store(&armed, nth != 0 || every >= 0);
}

void clsoftmax__fault_cl_nth(unsigned long n, cl_int err) { arm(n, -1, err); }

int clsoftmax__fault_cl_every(const char* function, cl_int err)
{
    for (int id = 0; function != NULL && id < FI_COUNT; ++id) {
        if (strcmp(fi_names[id], function) == 0) {
            arm(0, id, err);
            return 1;
        }
    }
    return 0;
}

void clsoftmax__fault_cl_reset(void) { arm(0, -1, CL_SUCCESS); }

unsigned long clsoftmax__fault_cl_calls(void) { return atomic_load(&calls); }
unsigned long clsoftmax__fault_cl_fired(void) { return atomic_load(&fired); }

const char* clsoftmax__fault_cl_last(void)
{
    const char* name = atomic_load(&last_fired);
    return name != NULL ? name : "";
}

long clsoftmax__fault_live(clsoftmax__live_kind kind)
{
    return (unsigned)kind < CLSOFTMAX__LIVE_COUNT ? atomic_load(&live[kind]) : 0;
}

const char* clsoftmax__fault_live_name(clsoftmax__live_kind kind)
{
    return (unsigned)kind < CLSOFTMAX__LIVE_COUNT ? live_names[kind] : "?";
}

/* ---- the wrappers: check, call, count ---------------------------------------- */

cl_int clsoftmax__fi_clGetPlatformIDs(cl_uint num_entries, cl_platform_id* platforms,
                                      cl_uint* num_platforms)
{
    cl_int err = fault_cl(FI_clGetPlatformIDs);
    if (err != CL_SUCCESS)
        return err;
    return clGetPlatformIDs(num_entries, platforms, num_platforms);
}

cl_int clsoftmax__fi_clGetPlatformInfo(cl_platform_id platform, cl_platform_info param_name,
                                       size_t param_value_size, void* param_value,
                                       size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetPlatformInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetPlatformInfo(platform, param_name, param_value_size, param_value,
                             param_value_size_ret);
}

cl_int clsoftmax__fi_clGetDeviceIDs(cl_platform_id platform, cl_device_type device_type,
                                    cl_uint num_entries, cl_device_id* devices,
                                    cl_uint* num_devices)
{
    cl_int err = fault_cl(FI_clGetDeviceIDs);
    if (err != CL_SUCCESS)
        return err;
    return clGetDeviceIDs(platform, device_type, num_entries, devices, num_devices);
}

cl_int clsoftmax__fi_clGetDeviceInfo(cl_device_id device, cl_device_info param_name,
                                     size_t param_value_size, void* param_value,
                                     size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetDeviceInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetDeviceInfo(device, param_name, param_value_size, param_value, param_value_size_ret);
}

cl_context clsoftmax__fi_clCreateContext(const cl_context_properties* properties,
                                         cl_uint num_devices, const cl_device_id* devices,
                                         void(CL_CALLBACK* pfn_notify)(const char*, const void*,
                                                                       size_t, void*),
                                         void* user_data, cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateContext);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_context obj =
        clCreateContext(properties, num_devices, devices, pfn_notify, user_data, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_CONTEXT, 1);
    return obj;
}

cl_int clsoftmax__fi_clGetContextInfo(cl_context context, cl_context_info param_name,
                                      size_t param_value_size, void* param_value,
                                      size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetContextInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetContextInfo(context, param_name, param_value_size, param_value,
                            param_value_size_ret);
}

cl_command_queue clsoftmax__fi_clCreateCommandQueue(cl_context context, cl_device_id device,
                                                    cl_command_queue_properties properties,
                                                    cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateCommandQueue);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_command_queue obj = clCreateCommandQueue(context, device, properties, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_QUEUE, 1);
    return obj;
}

cl_int clsoftmax__fi_clGetCommandQueueInfo(cl_command_queue command_queue,
                                           cl_command_queue_info param_name,
                                           size_t param_value_size, void* param_value,
                                           size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetCommandQueueInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetCommandQueueInfo(command_queue, param_name, param_value_size, param_value,
                                 param_value_size_ret);
}

cl_mem clsoftmax__fi_clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                    void* host_ptr, cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateBuffer);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_mem obj = clCreateBuffer(context, flags, size, host_ptr, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_BUFFER, 1);
    return obj;
}

cl_mem clsoftmax__fi_clCreateSubBuffer(cl_mem buffer, cl_mem_flags flags,
                                       cl_buffer_create_type buffer_create_type,
                                       const void* buffer_create_info, cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateSubBuffer);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_mem obj =
        clCreateSubBuffer(buffer, flags, buffer_create_type, buffer_create_info, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_BUFFER, 1);
    return obj;
}

cl_int clsoftmax__fi_clGetMemObjectInfo(cl_mem memobj, cl_mem_info param_name,
                                        size_t param_value_size, void* param_value,
                                        size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetMemObjectInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetMemObjectInfo(memobj, param_name, param_value_size, param_value,
                              param_value_size_ret);
}

cl_program clsoftmax__fi_clCreateProgramWithSource(cl_context context, cl_uint count,
                                                   const char** strings, const size_t* lengths,
                                                   cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateProgramWithSource);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_program obj = clCreateProgramWithSource(context, count, strings, lengths, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_PROGRAM, 1);
    return obj;
}

cl_program clsoftmax__fi_clCreateProgramWithBinary(cl_context context, cl_uint num_devices,
                                                   const cl_device_id* device_list,
                                                   const size_t* lengths,
                                                   const unsigned char** binaries,
                                                   cl_int* binary_status, cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateProgramWithBinary);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_program obj = clCreateProgramWithBinary(context, num_devices, device_list, lengths, binaries,
                                               binary_status, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_PROGRAM, 1);
    return obj;
}

cl_int clsoftmax__fi_clBuildProgram(cl_program program, cl_uint num_devices,
                                    const cl_device_id* device_list, const char* options,
                                    void(CL_CALLBACK* pfn_notify)(cl_program, void*),
                                    void* user_data)
{
    cl_int err = fault_cl(FI_clBuildProgram);
    if (err != CL_SUCCESS)
        return err;
    return clBuildProgram(program, num_devices, device_list, options, pfn_notify, user_data);
}

cl_int clsoftmax__fi_clGetProgramInfo(cl_program program, cl_program_info param_name,
                                      size_t param_value_size, void* param_value,
                                      size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetProgramInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetProgramInfo(program, param_name, param_value_size, param_value,
                            param_value_size_ret);
}

cl_int clsoftmax__fi_clGetProgramBuildInfo(cl_program program, cl_device_id device,
                                           cl_program_build_info param_name,
                                           size_t param_value_size, void* param_value,
                                           size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetProgramBuildInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetProgramBuildInfo(program, device, param_name, param_value_size, param_value,
                                 param_value_size_ret);
}

cl_kernel clsoftmax__fi_clCreateKernel(cl_program program, const char* kernel_name,
                                       cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateKernel);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_kernel obj = clCreateKernel(program, kernel_name, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_KERNEL, 1);
    return obj;
}

cl_int clsoftmax__fi_clGetKernelInfo(cl_kernel kernel, cl_kernel_info param_name,
                                     size_t param_value_size, void* param_value,
                                     size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetKernelInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetKernelInfo(kernel, param_name, param_value_size, param_value, param_value_size_ret);
}

cl_int clsoftmax__fi_clGetKernelWorkGroupInfo(cl_kernel kernel, cl_device_id device,
                                              cl_kernel_work_group_info param_name,
                                              size_t param_value_size, void* param_value,
                                              size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetKernelWorkGroupInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetKernelWorkGroupInfo(kernel, device, param_name, param_value_size, param_value,
                                    param_value_size_ret);
}

cl_int clsoftmax__fi_clSetKernelArg(cl_kernel kernel, cl_uint arg_index, size_t arg_size,
                                    const void* arg_value)
{
    cl_int err = fault_cl(FI_clSetKernelArg);
    if (err != CL_SUCCESS)
        return err;
    return clSetKernelArg(kernel, arg_index, arg_size, arg_value);
}

cl_event clsoftmax__fi_clCreateUserEvent(cl_context context, cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clCreateUserEvent);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_event obj = clCreateUserEvent(context, errcode_ret);
    if (obj != NULL)
        live_add(CLSOFTMAX__LIVE_EVENT, 1);
    return obj;
}

cl_int clsoftmax__fi_clSetUserEventStatus(cl_event event, cl_int execution_status)
{
    cl_int err = fault_cl(FI_clSetUserEventStatus);
    if (err != CL_SUCCESS)
        return err;
    return clSetUserEventStatus(event, execution_status);
}

cl_int clsoftmax__fi_clWaitForEvents(cl_uint num_events, const cl_event* event_list)
{
    cl_int err = fault_cl(FI_clWaitForEvents);
    if (err != CL_SUCCESS)
        return err;
    return clWaitForEvents(num_events, event_list);
}

cl_int clsoftmax__fi_clGetEventInfo(cl_event event, cl_event_info param_name,
                                    size_t param_value_size, void* param_value,
                                    size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetEventInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetEventInfo(event, param_name, param_value_size, param_value, param_value_size_ret);
}

cl_int clsoftmax__fi_clGetEventProfilingInfo(cl_event event, cl_profiling_info param_name,
                                             size_t param_value_size, void* param_value,
                                             size_t* param_value_size_ret)
{
    cl_int err = fault_cl(FI_clGetEventProfilingInfo);
    if (err != CL_SUCCESS)
        return err;
    return clGetEventProfilingInfo(event, param_name, param_value_size, param_value,
                                   param_value_size_ret);
}

cl_int clsoftmax__fi_clSetEventCallback(cl_event event, cl_int command_exec_callback_type,
                                        void(CL_CALLBACK* pfn_notify)(cl_event, cl_int, void*),
                                        void* user_data)
{
    cl_int err = fault_cl(FI_clSetEventCallback);
    if (err != CL_SUCCESS)
        return err;
    return clSetEventCallback(event, command_exec_callback_type, pfn_notify, user_data);
}

cl_int clsoftmax__fi_clFlush(cl_command_queue command_queue)
{
    cl_int err = fault_cl(FI_clFlush);
    if (err != CL_SUCCESS)
        return err;
    return clFlush(command_queue);
}

cl_int clsoftmax__fi_clFinish(cl_command_queue command_queue)
{
    cl_int err = fault_cl(FI_clFinish);
    if (err != CL_SUCCESS)
        return err;
    return clFinish(command_queue);
}

cl_int clsoftmax__fi_clEnqueueReadBuffer(cl_command_queue command_queue, cl_mem buffer,
                                         cl_bool blocking_read, size_t offset, size_t size,
                                         void* ptr, cl_uint num_events_in_wait_list,
                                         const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueReadBuffer);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueReadBuffer(command_queue, buffer, blocking_read, offset, size, ptr,
                              num_events_in_wait_list, event_wait_list, event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueWriteBuffer(cl_command_queue command_queue, cl_mem buffer,
                                          cl_bool blocking_write, size_t offset, size_t size,
                                          const void* ptr, cl_uint num_events_in_wait_list,
                                          const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueWriteBuffer);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueWriteBuffer(command_queue, buffer, blocking_write, offset, size, ptr,
                               num_events_in_wait_list, event_wait_list, event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueReadBufferRect(cl_command_queue command_queue, cl_mem buffer,
                                             cl_bool blocking_read, const size_t* buffer_origin,
                                             const size_t* host_origin, const size_t* region,
                                             size_t buffer_row_pitch, size_t buffer_slice_pitch,
                                             size_t host_row_pitch, size_t host_slice_pitch,
                                             void* ptr, cl_uint num_events_in_wait_list,
                                             const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueReadBufferRect);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueReadBufferRect(command_queue, buffer, blocking_read, buffer_origin, host_origin,
                                  region, buffer_row_pitch, buffer_slice_pitch, host_row_pitch,
                                  host_slice_pitch, ptr, num_events_in_wait_list, event_wait_list,
                                  event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueWriteBufferRect(cl_command_queue command_queue, cl_mem buffer,
                                              cl_bool blocking_write, const size_t* buffer_origin,
                                              const size_t* host_origin, const size_t* region,
                                              size_t buffer_row_pitch, size_t buffer_slice_pitch,
                                              size_t host_row_pitch, size_t host_slice_pitch,
                                              const void* ptr, cl_uint num_events_in_wait_list,
                                              const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueWriteBufferRect);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueWriteBufferRect(command_queue, buffer, blocking_write, buffer_origin,
                                   host_origin, region, buffer_row_pitch, buffer_slice_pitch,
                                   host_row_pitch, host_slice_pitch, ptr, num_events_in_wait_list,
                                   event_wait_list, event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueCopyBuffer(cl_command_queue command_queue, cl_mem src_buffer,
                                         cl_mem dst_buffer, size_t src_offset, size_t dst_offset,
                                         size_t size, cl_uint num_events_in_wait_list,
                                         const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueCopyBuffer);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueCopyBuffer(command_queue, src_buffer, dst_buffer, src_offset, dst_offset, size,
                              num_events_in_wait_list, event_wait_list, event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueFillBuffer(cl_command_queue command_queue, cl_mem buffer,
                                         const void* pattern, size_t pattern_size, size_t offset,
                                         size_t size, cl_uint num_events_in_wait_list,
                                         const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueFillBuffer);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueFillBuffer(command_queue, buffer, pattern, pattern_size, offset, size,
                              num_events_in_wait_list, event_wait_list, event);
    count_event(err, event);
    return err;
}

void* clsoftmax__fi_clEnqueueMapBuffer(cl_command_queue command_queue, cl_mem buffer,
                                       cl_bool blocking_map, cl_map_flags map_flags, size_t offset,
                                       size_t size, cl_uint num_events_in_wait_list,
                                       const cl_event* event_wait_list, cl_event* event,
                                       cl_int* errcode_ret)
{
    cl_int err = fault_cl(FI_clEnqueueMapBuffer);
    if (err != CL_SUCCESS) {
        if (errcode_ret != NULL)
            *errcode_ret = err;
        return NULL;
    }
    cl_int real_err = CL_SUCCESS;
    void* ptr = clEnqueueMapBuffer(command_queue, buffer, blocking_map, map_flags, offset, size,
                                   num_events_in_wait_list, event_wait_list, event, &real_err);
    if (errcode_ret != NULL)
        *errcode_ret = real_err;
    if (real_err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_MAP, 1);
    count_event(real_err, event);
    return ptr;
}

cl_int clsoftmax__fi_clEnqueueUnmapMemObject(cl_command_queue command_queue, cl_mem memobj,
                                             void* mapped_ptr, cl_uint num_events_in_wait_list,
                                             const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueUnmapMemObject);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueUnmapMemObject(command_queue, memobj, mapped_ptr, num_events_in_wait_list,
                                  event_wait_list, event);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_MAP, -1);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueNDRangeKernel(cl_command_queue command_queue, cl_kernel kernel,
                                            cl_uint work_dim, const size_t* global_work_offset,
                                            const size_t* global_work_size,
                                            const size_t* local_work_size,
                                            cl_uint num_events_in_wait_list,
                                            const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueNDRangeKernel);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueNDRangeKernel(command_queue, kernel, work_dim, global_work_offset,
                                 global_work_size, local_work_size, num_events_in_wait_list,
                                 event_wait_list, event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueMarkerWithWaitList(cl_command_queue command_queue,
                                                 cl_uint num_events_in_wait_list,
                                                 const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueMarkerWithWaitList);
    if (err != CL_SUCCESS)
        return err;
    err =
        clEnqueueMarkerWithWaitList(command_queue, num_events_in_wait_list, event_wait_list, event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clEnqueueBarrierWithWaitList(cl_command_queue command_queue,
                                                  cl_uint num_events_in_wait_list,
                                                  const cl_event* event_wait_list, cl_event* event)
{
    cl_int err = fault_cl(FI_clEnqueueBarrierWithWaitList);
    if (err != CL_SUCCESS)
        return err;
    err = clEnqueueBarrierWithWaitList(command_queue, num_events_in_wait_list, event_wait_list,
                                       event);
    count_event(err, event);
    return err;
}

cl_int clsoftmax__fi_clRetainContext(cl_context context)
{
    cl_int err = fault_cl(FI_clRetainContext);
    if (err != CL_SUCCESS)
        return err;
    err = clRetainContext(context);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_CONTEXT, 1);
    return err;
}

cl_int clsoftmax__fi_clReleaseContext(cl_context context)
{
    /* Never failed on purpose: a release of a valid object cannot fail, and a caller
       can do nothing about it if it did. */
    cl_int err = clReleaseContext(context);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_CONTEXT, -1);
    return err;
}

cl_int clsoftmax__fi_clRetainCommandQueue(cl_command_queue command_queue)
{
    cl_int err = fault_cl(FI_clRetainCommandQueue);
    if (err != CL_SUCCESS)
        return err;
    err = clRetainCommandQueue(command_queue);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_QUEUE, 1);
    return err;
}

cl_int clsoftmax__fi_clReleaseCommandQueue(cl_command_queue command_queue)
{
    /* Never failed on purpose: a release of a valid object cannot fail, and a caller
       can do nothing about it if it did. */
    cl_int err = clReleaseCommandQueue(command_queue);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_QUEUE, -1);
    return err;
}

cl_int clsoftmax__fi_clRetainMemObject(cl_mem memobj)
{
    cl_int err = fault_cl(FI_clRetainMemObject);
    if (err != CL_SUCCESS)
        return err;
    err = clRetainMemObject(memobj);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_BUFFER, 1);
    return err;
}

cl_int clsoftmax__fi_clReleaseMemObject(cl_mem memobj)
{
    /* Never failed on purpose: a release of a valid object cannot fail, and a caller
       can do nothing about it if it did. */
    cl_int err = clReleaseMemObject(memobj);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_BUFFER, -1);
    return err;
}

cl_int clsoftmax__fi_clRetainProgram(cl_program program)
{
    cl_int err = fault_cl(FI_clRetainProgram);
    if (err != CL_SUCCESS)
        return err;
    err = clRetainProgram(program);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_PROGRAM, 1);
    return err;
}

cl_int clsoftmax__fi_clReleaseProgram(cl_program program)
{
    /* Never failed on purpose: a release of a valid object cannot fail, and a caller
       can do nothing about it if it did. */
    cl_int err = clReleaseProgram(program);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_PROGRAM, -1);
    return err;
}

cl_int clsoftmax__fi_clRetainKernel(cl_kernel kernel)
{
    cl_int err = fault_cl(FI_clRetainKernel);
    if (err != CL_SUCCESS)
        return err;
    err = clRetainKernel(kernel);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_KERNEL, 1);
    return err;
}

cl_int clsoftmax__fi_clReleaseKernel(cl_kernel kernel)
{
    /* Never failed on purpose: a release of a valid object cannot fail, and a caller
       can do nothing about it if it did. */
    cl_int err = clReleaseKernel(kernel);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_KERNEL, -1);
    return err;
}

cl_int clsoftmax__fi_clRetainEvent(cl_event event)
{
    cl_int err = fault_cl(FI_clRetainEvent);
    if (err != CL_SUCCESS)
        return err;
    err = clRetainEvent(event);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_EVENT, 1);
    return err;
}

cl_int clsoftmax__fi_clReleaseEvent(cl_event event)
{
    /* Never failed on purpose: a release of a valid object cannot fail, and a caller
       can do nothing about it if it did. */
    cl_int err = clReleaseEvent(event);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_EVENT, -1);
    return err;
}

cl_int clsoftmax__fi_clRetainDevice(cl_device_id device)
{
    cl_int err = fault_cl(FI_clRetainDevice);
    if (err != CL_SUCCESS)
        return err;
    err = clRetainDevice(device);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_DEVICE, 1);
    return err;
}

cl_int clsoftmax__fi_clReleaseDevice(cl_device_id device)
{
    /* Never failed on purpose: a release of a valid object cannot fail, and a caller
       can do nothing about it if it did. */
    cl_int err = clReleaseDevice(device);
    if (err == CL_SUCCESS)
        live_add(CLSOFTMAX__LIVE_DEVICE, -1);
    return err;
}
