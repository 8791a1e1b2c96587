#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets with clang and runs each for SECONDS (default 60) on a
# copy of its seed corpus (tests/fuzz/corpus/NAME). Exits non-zero when a target finds a crash.
# Usage: tools/fuzz.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
build=${2:-build-fuzz}
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLSOFTMAX_BUILD_FUZZERS=ON \
    -DCLSOFTMAX_BUILD_TESTS=OFF -DCLSOFTMAX_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" -j >/dev/null

for name in npy desc; do
    corpus=$(mktemp -d)
    cp tests/fuzz/corpus/"$name"/* "$corpus"/
    echo "== fuzz_$name for $seconds s"
    log=$(mktemp)
    status=0
    # -print_final_stats reports the executions; a crash leaves its input in the build folder.
    "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$build/fuzz_$name-" "$corpus" >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY)' "$log" ||
        true
    rm -f "$log"
    rm -rf "$corpus"
    if [ "$status" -ne 0 ]; then
        echo "== fuzz_$name FAILED (status $status); reproducer in $build/"
        exit 1
    fi
done
echo "== fuzzers passed"
