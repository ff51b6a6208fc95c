#!/bin/sh
# The whole test suite: install dependencies, build with AddressSanitizer and
# UndefinedBehaviorSanitizer, run every unit and integration test (CTest).
# Spec data is read from ../shared (override with PROMPTD_SHARED_DIR).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh --test
shared="${PROMPTD_SHARED_DIR:-$(pwd)/../shared}"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DPROMPTD_SANITIZE=ON \
      -DPROMPTD_SHARED_DIR="$shared" >/dev/null
cmake --build build-test -j"$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd build-test
ctest --output-on-failure -j"$(nproc)"
