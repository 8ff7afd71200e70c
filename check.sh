#!/usr/bin/env bash
# Second command: build everything (CLI, tests, micro benchmark) and run every test through CTest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
# Tests that time things run one at a time; two cores cannot host two timing tests honestly.
ctest --test-dir build --output-on-failure --timeout 600
