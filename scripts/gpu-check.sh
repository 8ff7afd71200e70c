#!/usr/bin/env bash
# The one prepared GPU check, for a session lent an H100/H200 (or any CUDA GPU): takes the binaries of a
# bundle (scripts/make-device-bundle.sh) or else configures and builds with CUDA, runs the CUDA tests, runs
# suites/gpu.json twice on the device (cut to L <= 8K with a bundle, 2K when building, to fit a lent
# machine's time), the PyTorch baseline if torch is importable, and prints the device's
# clocks, power and performance state; with time to spare, an ncu profile of flash, flash_q64 and flash_sync at one
# shape (--clock-control none). It only reads GPU settings, never changes one (no nvidia-smi -pm, -ac,
# -lgc, -pl, no MIG change, no ncu clock locking), and ends within GPU_CHECK_BUDGET_S (default 450 s).
#
#   OUT=/some/dir scripts/gpu-check.sh     # everything it writes goes to $OUT (default runs/gpu-check)
#   BUNDLE=.device-bundle ...              # use binaries built elsewhere by scripts/make-device-bundle.sh
#                                          # (the lent machine lacks HDF5, Boost, ...); builds only if they fail
#   GPU_CHECK_MAX_LEN=32768 ...            # the whole suite (longer; the oracle checks every (L/1K)-th row)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
BUILD=${BUILD:-build-gpu}
BUNDLE=${BUNDLE:-}
BUDGET_S=${GPU_CHECK_BUDGET_S:-450}
JOBS=${GPU_CHECK_JOBS:-$(nproc)}
mkdir -p "$OUT"
# The device tool brings back at most 8 files of $OUT: it gets the log, env.json, the result files and the
# ncu report; scratch (build logs, cut manifests, CSVs) goes to $WORK.
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
exec > >(tee "$OUT/gpu-check.log") 2>&1
T0=$SECONDS
left() { echo $((BUDGET_S - (SECONDS - T0))); }
step() { echo; echo "== $* ($((SECONDS - T0)) s in, $(left) s left)"; }
# Runs "$@" with at most the budget left minus $1 seconds kept for the steps after it.
within() {
  local keep=$1
  shift
  local t=$(($(left) - keep))
  if [ "$t" -lt 10 ]; then
    echo "skipped (no time left): $*"
    return 124
  fi
  timeout --signal=INT --kill-after=10 "$t" "$@"
}

step "device and toolchain"
nvidia-smi -L || echo "nvidia-smi failed: no driver?"
nvidia-smi --query-gpu=name,driver_version,compute_cap,persistence_mode,power.limit,clocks.sm,clocks.max.sm,temperature.gpu \
  --format=csv || true
nvcc --version 2>/dev/null | tail -2 || ls /usr/local/cuda/bin/nvcc
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
ARCH=${GPU_CHECK_ARCH:-${cap:-90}}  # the device's own architecture only: half the compile time

export PATH=/usr/local/cuda/bin:$PATH
CLI="$BUILD/attnbench"
TESTS="$BUILD/tests/attnbench_cuda_tests"
bundled=0
if [ -n "$BUNDLE" ] && [ -x "$BUNDLE/attnbench" ]; then
  step "binaries from $BUNDLE"
  cat "$BUNDLE/BUNDLE.txt"
  # cuBLAS and the driver are the machine's own; the bundle's launchers add its libraries for our
  # binaries alone (python3 and nvidia-smi keep the machine's).
  cublas=$(find /usr/local /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -1)
  echo "cuBLAS: ${cublas:-not found}"
  export BUNDLE_EXTRA_LD="${cublas:+$(dirname "$cublas"):}/usr/local/nvidia/lib64:/usr/local/nvidia/lib"
  if ! "$BUNDLE/attnbench" list methods >/dev/null 2>"$WORK/bundle-check.log"; then
    cat "$WORK/bundle-check.log"
    echo "retrying with the bundle's libstdc++/libgomp"
    export BUNDLE_LIB_STD=1
  fi
  if "$BUNDLE/attnbench" list methods >/dev/null 2>"$WORK/bundle-check.log"; then
    bundled=1
    CLI="$BUNDLE/attnbench"
    TESTS="$BUNDLE/attnbench_cuda_tests"
    echo "using the bundle (BUNDLE_EXTRA_LD=$BUNDLE_EXTRA_LD${BUNDLE_LIB_STD:+, with lib-std})"
  else
    cat "$WORK/bundle-check.log"
    LD_LIBRARY_PATH="$BUNDLE/lib:$BUNDLE_EXTRA_LD" ldd "$BUNDLE/bin/attnbench" | grep -E "not found" || true
    echo "the bundle does not run here: building instead"
  fi
fi
# Without a build to wait for there is time for longer sequences.
MAX_LEN=${GPU_CHECK_MAX_LEN:-$([ $bundled = 1 ] && echo 8192 || echo 2048)}

if [ $bundled = 0 ]; then
  step "configure and build (CUDA architecture $ARCH)"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DATTNBENCH_BUILD_BENCH=OFF \
    >"$WORK/configure.log" 2>&1 || { tail -30 "$WORK/configure.log"; echo "configure failed"; }
  grep -E "attnbench: (CUDA|MPI)" "$WORK/configure.log"
  within 250 cmake --build "$BUILD" -j "$JOBS" --target attnbench attnbench_cuda_tests >"$WORK/build.log" 2>&1
  build_rc=$?
  tail -5 "$WORK/build.log"
  [ $build_rc -eq 0 ] || { grep -E "error|Error" "$WORK/build.log" | head -30; echo "build failed (rc $build_rc)"; }
fi
"$CLI" env >"$OUT/env.json" 2>&1 || true

step "emulator calibration: ldmatrix and mma.sync on the device against the CPU warp emulator"
if [ -x "$TESTS" ]; then
  within 250 timeout 60 "$TESTS" "[emulator]"  # a second on a device; 60 s at most
  echo "calibration exit code $? (0: the emulated kernel tests' indexing verdicts hold here; 77: no device)"
fi

step "CUDA tests"
if [ -x "$TESTS" ]; then
  within 190 "$TESTS" --durations yes
  echo "attnbench_cuda_tests exit code $? (0 pass, 77 skipped: no device)"
else
  echo "no $TESTS"
fi

step "suites/gpu.json (seq_len <= $MAX_LEN), twice, --device cuda"
SUITE=suites/gpu.json
if [ "$MAX_LEN" -lt 32768 ]; then
  SUITE="$WORK/gpu-cut.json"
  python3 - "$MAX_LEN" "$SUITE" <<'EOF'
import json, sys
limit, out = int(sys.argv[1]), sys.argv[2]
m = json.load(open("suites/gpu.json"))
m["name"] = "gpu"  # the same name, so that both runs and the full suite line up in a report
m["description"] = "suites/gpu.json cut to seq_len <= %d by scripts/gpu-check.sh" % limit
m["tasks"] = [t for t in m["tasks"] if t["params"]["seq_len"] <= limit]
m["timing"]["max_time_s"] = 0.5
json.dump(m, open(out, "w"), indent=1)
EOF
fi
for i in 1 2; do
  [ -x "$CLI" ] || break
  within $((200 - 65 * i)) "$CLI" run "$SUITE" --device cuda --overwrite -o "$OUT/gpu-$i.h5"
  echo "run $i exit code $?"
done
if [ -f "$OUT/gpu-1.h5" ] && [ -f "$OUT/gpu-2.h5" ]; then
  "$CLI" report "$OUT/gpu-1.h5" --metric latency_ms
  "$CLI" report "$OUT/gpu-1.h5" --metric tflops
  "$CLI" report "$OUT/gpu-1.h5" --metric discarded_samples 2>/dev/null || true
  # Run-to-run agreement of the medians, cell by cell (the issue's target: within 1%).
  "$CLI" compare "$OUT/gpu-1.h5" "$OUT/gpu-2.h5" --threshold 0.01
fi

step "PyTorch baseline (baselines/external/torch_sdpa.py)"
if python3 -c "import torch, h5py; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  lengths=$(python3 -c "print(' '.join(str(1024 << i) for i in range(6) if 1024 << i <= $MAX_LEN))")
  within 25 python3 baselines/external/torch_sdpa.py --overwrite -o "$OUT/torch.h5" --lengths $lengths --max-time 0.5 \
    --deadline-s $(($(left) - 75))
  echo "torch_sdpa.py exit code $?"
  if [ -f "$OUT/gpu-1.h5" ] && [ -f "$OUT/torch.h5" ]; then
    "$CLI" report "$OUT/gpu-1.h5" "$OUT/torch.h5" --metric latency_ms
    "$CLI" report "$OUT/gpu-1.h5" "$OUT/torch.h5" --metric speedup --baseline torch_flash  # the issue's target: >= 1.0
  fi
else
  echo "skipped: torch (with CUDA) or h5py is not importable by python3"
fi

step "profile of flash, flash_q64 and flash_sync (ncu, clocks left alone; only with time to spare)"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ -x "$CLI" ] && [ "$(left)" -gt 70 ]; then
  : >"$OUT/ncu.txt"
  # One manifest per variant and the first launch of each: one ncu run would see only the first method's.
  for variant in 'flash:{}' 'flash_q64:{"warp_rows": 16}' 'flash_sync:{}'; do
    label=${variant%%:*} params=${variant#*:} name=${label%_q64}
    cat >"$WORK/profile-$label.json" <<EOF
{"name": "profile", "seed": 5, "device": "cuda",
 "timing": {"warmup": 1, "min_samples": 1, "max_samples": 1, "max_time_s": 0},
 "methods": [{"name": "$name", "label": "$label", "params": $params}],
 "tasks": [{"name": "synthetic", "params": {"batch": 4, "heads": 16, "seq_len": 4096, "check_every": 64,
            "head_dim": 128, "dtype": "bf16", "causal": false}}]}
EOF
    echo "== $label" >>"$OUT/ncu.txt"
    # --clock-control none: ncu would otherwise lock the clocks to base for the profile.
    within 40 "$NCU" --clock-control none --target-processes all --kernel-name regex:flash_mma_kernel -c 1 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
      --section ComputeWorkloadAnalysis "$CLI" run "$WORK/profile-$label.json" --device cuda --overwrite -q \
      -o "$WORK/profile-$label.h5" >>"$OUT/ncu.txt" 2>&1
    echo "ncu ($label) exit code $?"
  done
  echo "(report in $OUT/ncu.txt)"
  grep -E "^== |Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Bank Conflicts" \
    "$OUT/ncu.txt" | head -45
else
  echo "skipped (${NCU:-no ncu}; $(left) s left)"
fi

step "device state (read only)"
nvidia-smi -q -d CLOCK,POWER,PERFORMANCE
echo
echo "gpu-check done in $((SECONDS - T0)) s; files in $OUT"
