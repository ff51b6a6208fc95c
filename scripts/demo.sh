#!/bin/sh
# Quick start: install dependencies, build promptd, run its demo end to end.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROMPTD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/promptd demo
