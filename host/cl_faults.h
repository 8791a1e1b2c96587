/* cl_faults.h - every OpenCL call of host/ goes through a wrapper: fault injection and live counts.
 *
 * Included at the end of internal.h, so every host file that includes it calls
 * clsoftmax__fi_clFoo() when it writes clFoo(): the function-like macros below redirect the
 * calls without touching a call site (code merged later is covered as it stands). The wrappers
 * live in cl_faults.c, which defines CLSOFTMAX__FAULTS_NO_MACROS to reach the real functions.
 *
 * Unarmed, a wrapper costs one relaxed atomic load before the real call, plus one atomic add
 * when it creates, retains or releases an object. Tests arm it through the clsoftmax__fault_*
 * functions (internal symbols: the fault-test runner links the library's objects statically).
 * Releases are never failed: releasing a valid object cannot fail, and no caller could recover.
 */
#ifndef CLSOFTMAX_CL_FAULTS_H
#define CLSOFTMAX_CL_FAULTS_H

#include "clsoftmax.h"

/* ---- the injector's control (tests only) --------------------------------- */

/* Kinds of OpenCL object whose references the library holds, counted by the wrappers. */
typedef enum clsoftmax__live_kind {
    CLSOFTMAX__LIVE_CONTEXT = 0,
    CLSOFTMAX__LIVE_QUEUE,
    CLSOFTMAX__LIVE_BUFFER, /* buffers and sub-buffers */
    CLSOFTMAX__LIVE_PROGRAM,
    CLSOFTMAX__LIVE_KERNEL,
    CLSOFTMAX__LIVE_EVENT,
    CLSOFTMAX__LIVE_DEVICE, /* retained devices */
    CLSOFTMAX__LIVE_MAP,    /* mapped regions not yet unmapped */
    CLSOFTMAX__LIVE_COUNT
} clsoftmax__live_kind;

/*
 * Fails the nth OpenCL call counted from now (1: the next one) with err; the calls before it
 * and after it run normally. n 0 disarms. Resets the call and fired counters.
 */
void clsoftmax__fault_cl_nth(unsigned long n, cl_int err);
/* Fails every call of the named function (e.g. "clBuildProgram") with err until reset.
   Returns 0 when the library does not wrap that function. Resets the counters. */
int clsoftmax__fault_cl_every(const char* function, cl_int err);
/* Disarms OpenCL faults and zeroes the call and fired counters (live counts stay). */
void clsoftmax__fault_cl_reset(void);
/* OpenCL calls made while armed (releases are not counted). */
unsigned long clsoftmax__fault_cl_calls(void);
/* Injected failures since armed, and the name of the last call failed ("" if none). */
unsigned long clsoftmax__fault_cl_fired(void);
const char* clsoftmax__fault_cl_last(void);
/* References of the kind created or retained minus released, since the process started. */
long clsoftmax__fault_live(clsoftmax__live_kind kind);
/* "contexts", "queues", ... for messages. */
const char* clsoftmax__fault_live_name(clsoftmax__live_kind kind);

/* ---- the wrappers ----------------------------------------------------------- */

cl_int clsoftmax__fi_clGetPlatformIDs(cl_uint num_entries, cl_platform_id* platforms,
                                      cl_uint* num_platforms);
cl_int clsoftmax__fi_clGetPlatformInfo(cl_platform_id platform, cl_platform_info param_name,
                                       size_t param_value_size, void* param_value,
                                       size_t* param_value_size_ret);
cl_int clsoftmax__fi_clGetDeviceIDs(cl_platform_id platform, cl_device_type device_type,
                                    cl_uint num_entries, cl_device_id* devices,
                                    cl_uint* num_devices);
cl_int clsoftmax__fi_clGetDeviceInfo(cl_device_id device, cl_device_info param_name,
                                     size_t param_value_size, void* param_value,
                                     size_t* param_value_size_ret);
cl_context clsoftmax__fi_clCreateContext(const cl_context_properties* properties,
                                         cl_uint num_devices, const cl_device_id* devices,
                                         void(CL_CALLBACK* pfn_notify)(const char*, const void*,
                                                                       size_t, void*),
                                         void* user_data, cl_int* errcode_ret);
cl_int clsoftmax__fi_clGetContextInfo(cl_context context, cl_context_info param_name,
                                      size_t param_value_size, void* param_value,
                                      size_t* param_value_size_ret);
cl_command_queue clsoftmax__fi_clCreateCommandQueue(cl_context context, cl_device_id device,
                                                    cl_command_queue_properties properties,
                                                    cl_int* errcode_ret);
cl_int clsoftmax__fi_clGetCommandQueueInfo(cl_command_queue command_queue,
                                           cl_command_queue_info param_name,
                                           size_t param_value_size, void* param_value,
                                           size_t* param_value_size_ret);
cl_mem clsoftmax__fi_clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                    void* host_ptr, cl_int* errcode_ret);
cl_mem clsoftmax__fi_clCreateSubBuffer(cl_mem buffer, cl_mem_flags flags,
                                       cl_buffer_create_type buffer_create_type,
                                       const void* buffer_create_info, cl_int* errcode_ret);
cl_int clsoftmax__fi_clGetMemObjectInfo(cl_mem memobj, cl_mem_info param_name,
                                        size_t param_value_size, void* param_value,
                                        size_t* param_value_size_ret);
cl_program clsoftmax__fi_clCreateProgramWithSource(cl_context context, cl_uint count,
                                                   const char** strings, const size_t* lengths,
                                                   cl_int* errcode_ret);
cl_program clsoftmax__fi_clCreateProgramWithBinary(cl_context context, cl_uint num_devices,
                                                   const cl_device_id* device_list,
                                                   const size_t* lengths,
                                                   const unsigned char** binaries,
                                                   cl_int* binary_status, cl_int* errcode_ret);
cl_int clsoftmax__fi_clBuildProgram(cl_program program, cl_uint num_devices,
                                    const cl_device_id* device_list, const char* options,
                                    void(CL_CALLBACK* pfn_notify)(cl_program, void*),
                                    void* user_data);
cl_int clsoftmax__fi_clGetProgramInfo(cl_program program, cl_program_info param_name,
                                      size_t param_value_size, void* param_value,
                                      size_t* param_value_size_ret);
cl_int clsoftmax__fi_clGetProgramBuildInfo(cl_program program, cl_device_id device,
                                           cl_program_build_info param_name,
                                           size_t param_value_size, void* param_value,
                                           size_t* param_value_size_ret);
cl_kernel clsoftmax__fi_clCreateKernel(cl_program program, const char* kernel_name,
                                       cl_int* errcode_ret);
cl_int clsoftmax__fi_clGetKernelInfo(cl_kernel kernel, cl_kernel_info param_name,
                                     size_t param_value_size, void* param_value,
                                     size_t* param_value_size_ret);
cl_int clsoftmax__fi_clGetKernelWorkGroupInfo(cl_kernel kernel, cl_device_id device,
                                              cl_kernel_work_group_info param_name,
                                              size_t param_value_size, void* param_value,
                                              size_t* param_value_size_ret);
cl_int clsoftmax__fi_clSetKernelArg(cl_kernel kernel, cl_uint arg_index, size_t arg_size,
                                    const void* arg_value);
cl_event clsoftmax__fi_clCreateUserEvent(cl_context context, cl_int* errcode_ret);
cl_int clsoftmax__fi_clSetUserEventStatus(cl_event event, cl_int execution_status);
cl_int clsoftmax__fi_clWaitForEvents(cl_uint num_events, const cl_event* event_list);
cl_int clsoftmax__fi_clGetEventInfo(cl_event event, cl_event_info param_name,
                                    size_t param_value_size, void* param_value,
                                    size_t* param_value_size_ret);
cl_int clsoftmax__fi_clGetEventProfilingInfo(cl_event event, cl_profiling_info param_name,
                                             size_t param_value_size, void* param_value,
                                             size_t* param_value_size_ret);
cl_int clsoftmax__fi_clSetEventCallback(cl_event event, cl_int command_exec_callback_type,
                                        void(CL_CALLBACK* pfn_notify)(cl_event, cl_int, void*),
                                        void* user_data);
cl_int clsoftmax__fi_clFlush(cl_command_queue command_queue);
cl_int clsoftmax__fi_clFinish(cl_command_queue command_queue);
cl_int clsoftmax__fi_clEnqueueReadBuffer(cl_command_queue command_queue, cl_mem buffer,
                                         cl_bool blocking_read, size_t offset, size_t size,
                                         void* ptr, cl_uint num_events_in_wait_list,
                                         const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueWriteBuffer(cl_command_queue command_queue, cl_mem buffer,
                                          cl_bool blocking_write, size_t offset, size_t size,
                                          const void* ptr, cl_uint num_events_in_wait_list,
                                          const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueReadBufferRect(cl_command_queue command_queue, cl_mem buffer,
                                             cl_bool blocking_read, const size_t* buffer_origin,
                                             const size_t* host_origin, const size_t* region,
                                             size_t buffer_row_pitch, size_t buffer_slice_pitch,
                                             size_t host_row_pitch, size_t host_slice_pitch,
                                             void* ptr, cl_uint num_events_in_wait_list,
                                             const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueWriteBufferRect(cl_command_queue command_queue, cl_mem buffer,
                                              cl_bool blocking_write, const size_t* buffer_origin,
                                              const size_t* host_origin, const size_t* region,
                                              size_t buffer_row_pitch, size_t buffer_slice_pitch,
                                              size_t host_row_pitch, size_t host_slice_pitch,
                                              const void* ptr, cl_uint num_events_in_wait_list,
                                              const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueCopyBuffer(cl_command_queue command_queue, cl_mem src_buffer,
                                         cl_mem dst_buffer, size_t src_offset, size_t dst_offset,
                                         size_t size, cl_uint num_events_in_wait_list,
                                         const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueFillBuffer(cl_command_queue command_queue, cl_mem buffer,
                                         const void* pattern, size_t pattern_size, size_t offset,
                                         size_t size, cl_uint num_events_in_wait_list,
                                         const cl_event* event_wait_list, cl_event* event);
void* clsoftmax__fi_clEnqueueMapBuffer(cl_command_queue command_queue, cl_mem buffer,
                                       cl_bool blocking_map, cl_map_flags map_flags, size_t offset,
                                       size_t size, cl_uint num_events_in_wait_list,
                                       const cl_event* event_wait_list, cl_event* event,
                                       cl_int* errcode_ret);
cl_int clsoftmax__fi_clEnqueueUnmapMemObject(cl_command_queue command_queue, cl_mem memobj,
                                             void* mapped_ptr, cl_uint num_events_in_wait_list,
                                             const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueNDRangeKernel(cl_command_queue command_queue, cl_kernel kernel,
                                            cl_uint work_dim, const size_t* global_work_offset,
                                            const size_t* global_work_size,
                                            const size_t* local_work_size,
                                            cl_uint num_events_in_wait_list,
                                            const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueMarkerWithWaitList(cl_command_queue command_queue,
                                                 cl_uint num_events_in_wait_list,
                                                 const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clEnqueueBarrierWithWaitList(cl_command_queue command_queue,
                                                  cl_uint num_events_in_wait_list,
                                                  const cl_event* event_wait_list, cl_event* event);
cl_int clsoftmax__fi_clRetainContext(cl_context context);
cl_int clsoftmax__fi_clReleaseContext(cl_context context);
cl_int clsoftmax__fi_clRetainCommandQueue(cl_command_queue command_queue);
cl_int clsoftmax__fi_clReleaseCommandQueue(cl_command_queue command_queue);
cl_int clsoftmax__fi_clRetainMemObject(cl_mem memobj);
cl_int clsoftmax__fi_clReleaseMemObject(cl_mem memobj);
cl_int clsoftmax__fi_clRetainProgram(cl_program program);
cl_int clsoftmax__fi_clReleaseProgram(cl_program program);
cl_int clsoftmax__fi_clRetainKernel(cl_kernel kernel);
cl_int clsoftmax__fi_clReleaseKernel(cl_kernel kernel);
cl_int clsoftmax__fi_clRetainEvent(cl_event event);
cl_int clsoftmax__fi_clReleaseEvent(cl_event event);
cl_int clsoftmax__fi_clRetainDevice(cl_device_id device);
cl_int clsoftmax__fi_clReleaseDevice(cl_device_id device);

#ifndef CLSOFTMAX__FAULTS_NO_MACROS
#define clGetPlatformIDs(...) clsoftmax__fi_clGetPlatformIDs(__VA_ARGS__)
#define clGetPlatformInfo(...) clsoftmax__fi_clGetPlatformInfo(__VA_ARGS__)
#define clGetDeviceIDs(...) clsoftmax__fi_clGetDeviceIDs(__VA_ARGS__)
#define clGetDeviceInfo(...) clsoftmax__fi_clGetDeviceInfo(__VA_ARGS__)
#define clCreateContext(...) clsoftmax__fi_clCreateContext(__VA_ARGS__)
#define clGetContextInfo(...) clsoftmax__fi_clGetContextInfo(__VA_ARGS__)
#define clCreateCommandQueue(...) clsoftmax__fi_clCreateCommandQueue(__VA_ARGS__)
#define clGetCommandQueueInfo(...) clsoftmax__fi_clGetCommandQueueInfo(__VA_ARGS__)
#define clCreateBuffer(...) clsoftmax__fi_clCreateBuffer(__VA_ARGS__)
#define clCreateSubBuffer(...) clsoftmax__fi_clCreateSubBuffer(__VA_ARGS__)
#define clGetMemObjectInfo(...) clsoftmax__fi_clGetMemObjectInfo(__VA_ARGS__)
#define clCreateProgramWithSource(...) clsoftmax__fi_clCreateProgramWithSource(__VA_ARGS__)
#define clCreateProgramWithBinary(...) clsoftmax__fi_clCreateProgramWithBinary(__VA_ARGS__)
#define clBuildProgram(...) clsoftmax__fi_clBuildProgram(__VA_ARGS__)
#define clGetProgramInfo(...) clsoftmax__fi_clGetProgramInfo(__VA_ARGS__)
#define clGetProgramBuildInfo(...) clsoftmax__fi_clGetProgramBuildInfo(__VA_ARGS__)
#define clCreateKernel(...) clsoftmax__fi_clCreateKernel(__VA_ARGS__)
#define clGetKernelInfo(...) clsoftmax__fi_clGetKernelInfo(__VA_ARGS__)
#define clGetKernelWorkGroupInfo(...) clsoftmax__fi_clGetKernelWorkGroupInfo(__VA_ARGS__)
#define clSetKernelArg(...) clsoftmax__fi_clSetKernelArg(__VA_ARGS__)
#define clCreateUserEvent(...) clsoftmax__fi_clCreateUserEvent(__VA_ARGS__)
#define clSetUserEventStatus(...) clsoftmax__fi_clSetUserEventStatus(__VA_ARGS__)
#define clWaitForEvents(...) clsoftmax__fi_clWaitForEvents(__VA_ARGS__)
#define clGetEventInfo(...) clsoftmax__fi_clGetEventInfo(__VA_ARGS__)
#define clGetEventProfilingInfo(...) clsoftmax__fi_clGetEventProfilingInfo(__VA_ARGS__)
#define clSetEventCallback(...) clsoftmax__fi_clSetEventCallback(__VA_ARGS__)
#define clFlush(...) clsoftmax__fi_clFlush(__VA_ARGS__)
#define clFinish(...) clsoftmax__fi_clFinish(__VA_ARGS__)
#define clEnqueueReadBuffer(...) clsoftmax__fi_clEnqueueReadBuffer(__VA_ARGS__)
#define clEnqueueWriteBuffer(...) clsoftmax__fi_clEnqueueWriteBuffer(__VA_ARGS__)
#define clEnqueueReadBufferRect(...) clsoftmax__fi_clEnqueueReadBufferRect(__VA_ARGS__)
#define clEnqueueWriteBufferRect(...) clsoftmax__fi_clEnqueueWriteBufferRect(__VA_ARGS__)
#define clEnqueueCopyBuffer(...) clsoftmax__fi_clEnqueueCopyBuffer(__VA_ARGS__)
#define clEnqueueFillBuffer(...) clsoftmax__fi_clEnqueueFillBuffer(__VA_ARGS__)
#define clEnqueueMapBuffer(...) clsoftmax__fi_clEnqueueMapBuffer(__VA_ARGS__)
#define clEnqueueUnmapMemObject(...) clsoftmax__fi_clEnqueueUnmapMemObject(__VA_ARGS__)
#define clEnqueueNDRangeKernel(...) clsoftmax__fi_clEnqueueNDRangeKernel(__VA_ARGS__)
#define clEnqueueMarkerWithWaitList(...) clsoftmax__fi_clEnqueueMarkerWithWaitList(__VA_ARGS__)
#define clEnqueueBarrierWithWaitList(...) clsoftmax__fi_clEnqueueBarrierWithWaitList(__VA_ARGS__)
#define clRetainContext(...) clsoftmax__fi_clRetainContext(__VA_ARGS__)
#define clReleaseContext(...) clsoftmax__fi_clReleaseContext(__VA_ARGS__)
#define clRetainCommandQueue(...) clsoftmax__fi_clRetainCommandQueue(__VA_ARGS__)
#define clReleaseCommandQueue(...) clsoftmax__fi_clReleaseCommandQueue(__VA_ARGS__)
#define clRetainMemObject(...) clsoftmax__fi_clRetainMemObject(__VA_ARGS__)
#define clReleaseMemObject(...) clsoftmax__fi_clReleaseMemObject(__VA_ARGS__)
#define clRetainProgram(...) clsoftmax__fi_clRetainProgram(__VA_ARGS__)
#define clReleaseProgram(...) clsoftmax__fi_clReleaseProgram(__VA_ARGS__)
#define clRetainKernel(...) clsoftmax__fi_clRetainKernel(__VA_ARGS__)
#define clReleaseKernel(...) clsoftmax__fi_clReleaseKernel(__VA_ARGS__)
#define clRetainEvent(...) clsoftmax__fi_clRetainEvent(__VA_ARGS__)
#define clReleaseEvent(...) clsoftmax__fi_clReleaseEvent(__VA_ARGS__)
#define clRetainDevice(...) clsoftmax__fi_clRetainDevice(__VA_ARGS__)
#define clReleaseDevice(...) clsoftmax__fi_clReleaseDevice(__VA_ARGS__)
#endif /* CLSOFTMAX__FAULTS_NO_MACROS */

#endif /* CLSOFTMAX_CL_FAULTS_H */
