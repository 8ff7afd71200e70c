#!/usr/bin/env bash
# A dry run of scripts/gpu-check.sh where there is no GPU, so that the one prepared device check cannot rot
# unseen: a bundle of this build's own binaries, a short budget; every GPU step must fail or skip the
# way it says, the suite must be cut, and $OUT must hold no more than the device tool brings back.
set -euo pipefail
attnbench=$1
cuda_tests=$2
src=$3
if nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIPPED: this machine has a GPU; run scripts/gpu-check.sh itself"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle"
for pair in "attnbench:$attnbench" "attnbench_cuda_tests:$cuda_tests"; do
  printf '#!/bin/sh\nexec "%s" "$@"\n' "${pair#*:}" >"$work/bundle/${pair%%:*}"
  chmod +x "$work/bundle/${pair%%:*}"
done
echo "test bundle: this build's own binaries" >"$work/bundle/BUNDLE.txt"
rc=0
OUT="$work/out" WORK="$work/scratch" BUNDLE="$work/bundle" GPU_CHECK_BUDGET_S=300 "$src/scripts/gpu-check.sh" \
  >"$work/stdout" 2>&1 || rc=$?
cat "$work/stdout"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" = 0 ] || fail "gpu-check.sh exited $rc"
for want in "using the bundle" "calibration exit code 77" "attnbench_cuda_tests exit code 77" "run 1 exit code 2" "run 2 exit code 2" \
  "gpu-check done"; do
  grep -q "$want" "$work/out/gpu-check.log" || fail "the log lacks '$want'"
done
n=$(find "$work/out" -type f | wc -l)
[ "$n" -le 8 ] || fail "$n files in OUT; the device tool brings back 8"
python3 - "$work/scratch/gpu-cut.json" "$src/suites/gpu.json" <<'PY' || fail "the cut suite"
import json, sys
cut, full = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert cut["name"] == full["name"] == "gpu", "the cut suite keeps the suite's name"
lengths = sorted({t["params"]["seq_len"] for t in cut["tasks"]})
assert lengths == [1024, 2048, 4096, 8192], lengths
assert cut["methods"] == full["methods"]
PY
echo "ok"
