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

# CBLAS for the CPU backend's matrix products (head, attention): OpenBLAS through pkg-config,
# else CMake's FindBLAS with cblas.h found beside it. Only host/cpu/ includes <cblas.h>.
if(PKG_CONFIG_FOUND)
    pkg_check_modules(OPENBLAS IMPORTED_TARGET openblas)
endif()
if(OPENBLAS_FOUND)
    set(CLSOFTMAX_CBLAS_TARGET PkgConfig::OPENBLAS)
else()
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS)
    find_path(CLSOFTMAX_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas openblas-pthread)
    if(BLAS_FOUND AND CLSOFTMAX_CBLAS_INCLUDE_DIR)
        add_library(clsoftmax_cblas INTERFACE IMPORTED)
        set_target_properties(clsoftmax_cblas PROPERTIES
            INTERFACE_LINK_LIBRARIES "${BLAS_LIBRARIES}"
            INTERFACE_INCLUDE_DIRECTORIES "${CLSOFTMAX_CBLAS_INCLUDE_DIR}")
        set(CLSOFTMAX_CBLAS_TARGET clsoftmax_cblas)
    endif()
endif()
if(CLSOFTMAX_CBLAS_TARGET)
    message(STATUS "CBLAS: ${CLSOFTMAX_CBLAS_TARGET}")
else()
    message(FATAL_ERROR "OpenBLAS (CBLAS) not found: install libopenblas-dev (tools/install-deps.sh)")
endif()

if(CLSOFTMAX_BUILD_TESTS)
    if(NOT PKG_CONFIG_FOUND)
        message(FATAL_ERROR "pkg-config is needed to find CUnit (tools/install-deps.sh)")
    endif()
    pkg_check_modules(CUNIT REQUIRED IMPORTED_TARGET cunit)
endif()
