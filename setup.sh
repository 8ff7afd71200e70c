#!/usr/bin/env bash
# First command on a fresh machine: install what is missing, build the CLI, run the default suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build --target attnbench -j"$(nproc)"
./build/attnbench run suites/quick.json -o runs/quick.h5 --overwrite
