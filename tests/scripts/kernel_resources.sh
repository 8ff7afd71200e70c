#!/usr/bin/env bash
# The register-heavy CUDA kernels compile without spills or a stack frame: every entry function of
# kernels/cuda/flash_mma.cu (the tensor-core flash kernel's 32 instances) and decode_splitk.cu, for each
# architecture given, as ptxas reports it (-Xptxas -v). A spill turns shared-memory and register traffic
# into local-memory traffic and slows the kernel without changing a result, so the emulated and device
# tests cannot see it; this can.
# Usage: kernel_resources.sh NVCC SOURCE_DIR ARCH... (e.g. 80 90)
set -euo pipefail
nvcc=$1 src=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for arch in "$@"; do
  for f in kernels/cuda/flash_mma.cu kernels/cuda/decode_splitk.cu; do
    log="$work/$(basename "$f").sm_$arch.txt"
    if ! "$nvcc" -std=c++20 -arch="sm_$arch" --expt-relaxed-constexpr -I"$src" -I"$src/harness/include" \
      -Xptxas -v -c "$src/$f" -o "$work/out.o" 2> "$log"; then
      echo "FAIL: $f does not compile for sm_$arch:"
      cat "$log"
      exit 1
    fi
    entries=$(grep -c "Compiling entry function" "$log" || true)
    bad=$(grep "bytes stack frame" "$log" | grep -vc "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads" || true)
    most=$(grep -o "Used [0-9]* registers" "$log" | awk '{print $2}' | sort -n | tail -1)
    echo "$f sm_$arch: $entries entry functions, $bad with a stack frame or spills, at most $most registers"
    if [ "$entries" -eq 0 ]; then
      echo "FAIL: ptxas reported no entry functions for $f"
      status=1
    fi
    if [ "$bad" -ne 0 ]; then
      echo "FAIL: entries of $f with a stack frame or spills on sm_$arch:"
      grep -B1 "bytes stack frame" "$log" | grep -v "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads" | grep -v "^--$"
      status=1
    fi
  done
done
exit $status
