#!/usr/bin/env bash
# Under mpirun the watchdog cannot restart the job: a hung cell is recorded, the run ends with exit 3, and
# the same command with --resume goes on past it. Three runs of tests/data/hang_mpi.json: stop at the
# hung plan, stop at the hung run, then finish; the file ends with 3 cells, 2 of them failed as hung.
set -euo pipefail
mpirun=$1
attnbench=$2
plugin=$3
manifest=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
expect=(3 3 0)
for k in 0 1 2; do
  rc=0
  timeout 120 "$mpirun" -n 2 --oversubscribe "$attnbench" run "$manifest" -o "$work/h.h5" --resume \
    --plugin "$plugin" >"$work/out" 2>"$work/err" || rc=$?
  if [[ $rc != "${expect[$k]}" ]]; then
    echo "FAIL: run $((k + 1)) exited $rc, expected ${expect[$k]}"
    cat "$work/err"
    exit 1
  fi
  if [[ $rc == 3 ]]; then
    grep -q "stopped at a hung cell" "$work/err" || { echo "FAIL: run $((k + 1)) did not say why it stopped"; exit 1; }
  fi
done
grep -q "3 cells: 1 ok, 2 failed, 0 unsupported" "$work/out" || { echo "FAIL: summary"; cat "$work/out"; exit 1; }
csv=$("$attnbench" report "$work/h.h5" --format csv)
echo "$csv"
[[ $(grep -c "hung: the method had not returned after 1 s (timing.hang_s); the run stopped here" <<<"$csv") == 2 ]] \
  || { echo "FAIL: two hung cells expected in the report"; exit 1; }
