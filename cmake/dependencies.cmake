# dependencies.cmake - finds OpenCL, CLBlast, threads and (for tests) CUnit; nothing is vendored.

find_package(OpenCL REQUIRED) # CMake's FindOpenCL: the ICD loader and Khronos headers
find_package(Threads REQUIRED)
find_package(PkgConfig)

# CLBlast: its CMake config first (Debian's 1.5.3 exports a plain `clblast`
# target and no version file, so no version is asked for), pkg-config second.
find_package(CLBlast CONFIG QUIET)
if(TARGET clblast)
    set(CLSOFTMAX_CLBLAST_TARGET clblast)
elseif(PKG_CONFIG_FOUND)
    pkg_check_modules(CLBLAST IMPORTED_TARGET clblast)
    if(CLBLAST_FOUND)
        set(CLSOFTMAX_CLBLAST_TARGET PkgConfig::CLBLAST)
    endif()
endif()
if(CLSOFTMAX_CLBLAST_TARGET)
    message(STATUS "CLBlast: ${CLSOFTMAX_CLBLAST_TARGET}")
else()
    message(FATAL_ERROR "CLBlast not found: install libclblast-dev (tools/install-deps.sh)")
endif()

if(CLSOFTMAX_BUILD_TESTS)
    if(NOT PKG_CONFIG_FOUND)
        message(FATAL_ERROR "pkg-config is needed to find CUnit (tools/install-deps.sh)")
    endif()
    pkg_check_modules(CUNIT REQUIRED IMPORTED_TARGET cunit)
endif()
