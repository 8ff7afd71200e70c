#!/usr/bin/env bash
# Runs the tiny context-parallel suite under `mpirun -n 2 attnbench run` and checks with `attnbench report`
# that every distributed cell that is not refused is ok, within 1e-5 of the oracle, and reports its counters.
set -euo pipefail
mpirun=$1
attnbench=$2
manifest=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$mpirun" -n 2 --oversubscribe "$attnbench" run "$manifest" -o "$work/cp.h5" -q
csv=$("$attnbench" report "$work/cp.h5" --format csv)
echo "$csv"
header=$(head -1 <<<"$csv")
col() {  # the 1-based index of column $1 of the summary CSV
  tr ',' '\n' <<<"$header" | grep -nx "$1" | cut -d: -f1
}
for c in status rel_l2 ranks comm_bytes_per_rank comm_s compute_s busy_s_max busy_s_mean imbalance; do
  [[ -n $(col "$c") ]] || { echo "FAIL: no column '$c' in the report"; exit 1; }
done
status=$(col status) rel=$(col rel_l2) imb=$(col imbalance) bytes=$(col comm_bytes_per_rank)
# Method names and shapes carry no commas here, so plain field splitting is exact.
awk -F, -v s="$status" -v r="$rel" -v i="$imb" -v b="$bytes" '
  NR == 1 { next }
  $1 ~ /^(ring|striped|ulysses|tree_decode)/ {
    if ($s == "failed") { print "FAIL: " $0; bad = 1; next }
    if ($s != "ok") next
    ok[$1]++
    if ($r == "" || $r > 1e-5) { print "FAIL: rel_l2 " $r " > 1e-5: " $0; bad = 1 }
    if ($i == "" || $i < 1) { print "FAIL: imbalance " $i ": " $0; bad = 1 }
    if ($b == "" || $b <= 0) { print "FAIL: comm_bytes_per_rank " $b ": " $0; bad = 1 }
  }
  END {
    split("ring striped ulysses tree_decode", m, " ")
    for (k in m) if (!ok[m[k]]) { print "FAIL: no ok cell of " m[k]; bad = 1 }
    exit bad
  }' <<<"$csv"
md=$("$attnbench" report "$work/cp.h5")
grep -q "context parallel" <<<"$md" || { echo "FAIL: no context parallel table in the Markdown report"; exit 1; }
"$attnbench" report "$work/cp.h5" --metric imbalance >/dev/null
"$attnbench" report "$work/cp.h5" --metric comm_bytes_per_rank >/dev/null
echo "context parallel suite: every distributed cell ok within 1e-5, counters reported"
