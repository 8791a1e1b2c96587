# install.cmake - installs the header, the library, a CMake package (with a version
# file) and a relocatable clsoftmax.pc.

include(CMakePackageConfigHelpers)

set(CLSOFTMAX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/clsoftmax)

install(TARGETS clsoftmax EXPORT clsoftmaxTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/clsoftmax.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT clsoftmaxTargets NAMESPACE clsoftmax:: DESTINATION ${CLSOFTMAX_CMAKE_DIR})

configure_package_config_file(cmake/clsoftmaxConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/clsoftmaxConfig.cmake
    INSTALL_DESTINATION ${CLSOFTMAX_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/clsoftmaxConfigVersion.cmake
    COMPATIBILITY SameMajorVersion)
install(FILES
    ${CMAKE_CURRENT_BINARY_DIR}/clsoftmaxConfig.cmake
    ${CMAKE_CURRENT_BINARY_DIR}/clsoftmaxConfigVersion.cmake
    DESTINATION ${CLSOFTMAX_CMAKE_DIR})

# pkg-config: prefix is computed from the .pc file's own location, so the
# installed tree can be moved.
file(RELATIVE_PATH CLSOFTMAX_PC_TO_PREFIX
    ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" CLSOFTMAX_PC_TO_PREFIX "${CLSOFTMAX_PC_TO_PREFIX}")
# A static library's users must not expect dllimport/visibility decorations.
if(CLSOFTMAX_BUILD_SHARED)
    set(CLSOFTMAX_PC_CFLAGS "")
else()
    set(CLSOFTMAX_PC_CFLAGS "-DCLSOFTMAX_STATIC_DEFINE")
endif()
# What a static link needs beside us, as pkg-config modules (Debian ships both .pc files).
set(CLSOFTMAX_PC_REQUIRES_PRIVATE "clblast")
if(CLSOFTMAX_CBLAS_TARGET STREQUAL "PkgConfig::OPENBLAS")
    string(APPEND CLSOFTMAX_PC_REQUIRES_PRIVATE " openblas")
endif()
configure_file(cmake/clsoftmax.pc.in ${CMAKE_CURRENT_BINARY_DIR}/clsoftmax.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/clsoftmax.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
