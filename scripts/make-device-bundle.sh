#!/usr/bin/env bash
# Builds, here, what a lent GPU machine runs, and gathers it into .device-bundle/ for the device tool's
# `carry`. The lent machine has CUDA, CMake and PyTorch, its description names none of our Debian
# libraries (HDF5, Boost, nlohmann-json, Catch2, Google Benchmark), and it can fetch nothing, so building
# there may be impossible; a bundle spares both that risk and the device minutes of a build.
#
#   scripts/make-device-bundle.sh           # then: run(command="OUT=$OUT BUNDLE=.device-bundle scripts/gpu-check.sh",
#                                           #           carry=[".device-bundle"])
#
# What it holds: ./attnbench and ./attnbench_cuda_tests, launchers of bin/attnbench and
# bin/attnbench_cuda_tests built for CUDA architecture $BUNDLE_CUDA_ARCH
# (default 90: H100/H200) and the CPU target $BUNDLE_MARCH (default x86-64-v3, not this machine's
# -march=native, which the other CPU may lack), without MPI; lib/ the shared libraries they need beyond
# glibc and the CUDA driver/toolkit (cuBLAS is the device's own); lib-std/ this compiler's libstdc++,
# libgcc_s and libgomp, used there only when the machine's own are missing or older. BUNDLE.txt says
# from which revision and with which flags it was built.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${BUNDLE_CUDA_ARCH:-90}
MARCH=${BUNDLE_MARCH:-x86-64-v3}
BUILD=${BUNDLE_BUILD:-build-bundle}
DEST=.device-bundle
LIMIT_MB=${BUNDLE_LIMIT_MB:-48}  # the device tool carries 64 MiB with the working tree

dirty=""
git diff --quiet HEAD -- . 2>/dev/null || dirty=" (with uncommitted changes)"
[ -z "$dirty" ] || echo "warning: the working tree has uncommitted changes; results will not name a clean revision"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DATTNBENCH_MARCH="$MARCH" \
  -DATTNBENCH_MPI=OFF -DATTNBENCH_BUILD_BENCH=OFF -DATTNBENCH_BUILD_TESTS=ON >"$BUILD.configure.log" 2>&1 \
  || { tail -30 "$BUILD.configure.log"; exit 1; }
grep -q "attnbench: CUDA ON" "$BUILD.configure.log" || { echo "no CUDA compiler found: nothing to bundle"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target attnbench attnbench_cuda_tests

rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/lib" "$DEST/lib-std"
cp "$BUILD/attnbench" "$BUILD/tests/attnbench_cuda_tests" "$DEST/bin/"
strip --strip-unneeded "$DEST/bin/"*  # host symbols only: the CUDA fat binaries are allocated sections and stay

# The shared libraries, by what the dynamic linker resolves here.
for bin in "$DEST/bin/"*; do
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
  case "$name" in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;  # glibc
    libcuda.so.* | libnvidia-*) ;;                                                                       # the driver
    libcublas*.so.* | libcudart.so.*) ;;  # the device's CUDA toolkit has them (cudart is linked statically)
    libstdc++.so.* | libgcc_s.so.* | libgomp.so.*) cp -L "$path" "$DEST/lib-std/$name" ;;
    *) cp -L "$path" "$DEST/lib/$name" ;;
  esac
done
strip --strip-unneeded "$DEST/lib/"* "$DEST/lib-std/"* 2>/dev/null || true

# Launchers: the libraries reach our binaries only, never the machine's own programs (python3, torch,
# nvidia-smi), whose newer system libraries the bundle's would shadow. BUNDLE_EXTRA_LD adds folders
# (cuBLAS, the driver); BUNDLE_LIB_STD=1 adds lib-std.
for name in attnbench attnbench_cuda_tests; do
  cat >"$DEST/$name" <<LAUNCHER
#!/bin/sh
here=\$(cd "\$(dirname "\$0")" && pwd)
LD_LIBRARY_PATH="\$here/lib\${BUNDLE_LIB_STD:+:\$here/lib-std}\${BUNDLE_EXTRA_LD:+:\$BUNDLE_EXTRA_LD}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" \\
  exec "\$here/bin/$name" "\$@"
LAUNCHER
  chmod +x "$DEST/$name"
done

{
  echo "attnbench device bundle"
  echo "revision: $(git rev-parse HEAD)$dirty"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "cuda architectures: $ARCH; -march=$MARCH; MPI off"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -1)"
  echo "c++: $(c++ --version | head -1)"
  echo "glibc here: $(ldd --version | head -1)"
} >"$DEST/BUNDLE.txt"
cat "$DEST/BUNDLE.txt"
du -sh "$DEST/bin" "$DEST/lib" "$DEST/lib-std"
size_mb=$(du -sm "$DEST" | cut -f1)
if [ "$size_mb" -gt "$LIMIT_MB" ]; then
  echo "the bundle is $size_mb MiB, over $LIMIT_MB MiB: the device tool carries 64 MiB with the working tree"
  exit 1
fi
echo "bundle: $DEST ($size_mb MiB)"
