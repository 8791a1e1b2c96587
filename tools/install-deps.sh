#!/usr/bin/env bash
# install-deps.sh - installs the Debian 12 packages that building, testing and CI need.
#
# Idempotent: apt-get install leaves packages that are already there alone. Run as root, or as
# a user with sudo.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

packages=(
    build-essential
    cmake
    pkg-config
    ocl-icd-opencl-dev # the OpenCL ICD loader (libOpenCL.so) CMake's FindOpenCL links to
    opencl-headers
    pocl-opencl-icd # an OpenCL device on the CPU, so the OpenCL tests run without a GPU
    libclblast-dev
    libopenblas-dev # CBLAS for the CPU backend's head and attention products
    libcunit1-dev
    clinfo
    python3 # the conformance checker in .ci/run
    clang   # the sanitizer build and the libFuzzer targets (tools/fuzz.sh)
    libclang-rt-14-dev
    valgrind # memcheck over the CPU-backend suites in .ci/run
)

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
else
    echo "install-deps.sh: not root and no sudo: install as root: ${packages[*]}" >&2
    exit 1
fi

"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
