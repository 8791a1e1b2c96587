#!/usr/bin/env bash
# run.sh - installs a clsoftmax build into a temporary prefix, moves that prefix, and builds and
# runs the consumer in this folder against it twice: through find_package(clsoftmax CONFIG) and
# through pkg-config. Moving the prefix proves the CMake package and clsoftmax.pc are
# relocatable.
#
# Usage: run.sh BUILD_DIR [SOURCE_DIR]
#   BUILD_DIR   a configured and built clsoftmax build tree
#   SOURCE_DIR  this consumer project (default: the folder holding this script)
# Exit status 0 when both consumers build and print the right value.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 BUILD_DIR [SOURCE_DIR]" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "${2:-$(dirname "$0")}" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/clsoftmax-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== install into $work/staged"
cmake --install "$build_dir" --prefix "$work/staged" >"$work/install.log" ||
    { cat "$work/install.log" >&2; exit 1; }
# After the move nothing may still point at the install prefix.
mv "$work/staged" "$work/moved"
prefix=$work/moved

pc_file=$(find "$prefix" -name clsoftmax.pc -print -quit)
config_file=$(find "$prefix" -name clsoftmaxConfig.cmake -print -quit)
[ -n "$pc_file" ] || { echo "no clsoftmax.pc under $prefix" >&2; exit 1; }
[ -n "$config_file" ] || { echo "no clsoftmaxConfig.cmake under $prefix" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc_file")")

echo "== CMake consumer: find_package(clsoftmax CONFIG)"
# The package registry and system prefixes stay out, so only the moved prefix can satisfy it.
cmake -S "$source_dir" -B "$work/build-cmake" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
    -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" ||
    { cat "$work/cmake.log" >&2; exit 1; }
found_dir=$(sed -n 's/^clsoftmax_DIR:PATH=//p' "$work/build-cmake/CMakeCache.txt")
case "$found_dir" in
"$prefix"/*) ;;
*)
    echo "find_package found clsoftmax in '$found_dir', not under $prefix" >&2
    exit 1
    ;;
esac
cmake --build "$work/build-cmake" >"$work/cmake-build.log" ||
    { cat "$work/cmake-build.log" >&2; exit 1; }
"$work/build-cmake/consumer"

echo "== pkg-config consumer: cc main.c \$(pkg-config --cflags --libs clsoftmax)"
# Only the moved prefix's .pc, plus the system's for OpenCL (Requires: OpenCL).
export PKG_CONFIG_PATH="$libdir/pkgconfig"
static=()
if [ ! -e "$libdir/libclsoftmax.so" ]; then
    static=(--static)
fi
pc_flags=$(pkg-config "${static[@]}" --cflags --libs clsoftmax)
case "$pc_flags" in
*"$prefix"*) ;;
*)
    echo "pkg-config flags do not point into $prefix: $pc_flags" >&2
    exit 1
    ;;
esac
# shellcheck disable=SC2086 # the flags are meant to split into words
"${CC:-cc}" -o "$work/consumer-pc" "$source_dir/main.c" $pc_flags -lm
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/consumer-pc"

echo "consumer: both builds ok"
