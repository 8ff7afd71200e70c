#!/usr/bin/env bash
# Installs attnbench into a scratch prefix, builds kernels/examples/my_method against it with
# find_package(attnbench), and checks that the installed CLI loads, lists and runs the plugin.
set -euo pipefail
build_dir=$1
src_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$src_dir/kernels/examples/my_method" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" >/dev/null
plugin="$work/build/libmy_method.so"
test -f "$plugin"
# Captured first: grep -q would close the pipe early and pipefail would blame attnbench for SIGPIPE.
listing=$("$work/prefix/bin/attnbench" list methods --plugin "$plugin")
grep -q "^my_method \[exact" <<<"$listing"
cat > "$work/suite.json" <<'JSON'
{"name": "plugin", "seed": 1, "timing": {"warmup": 0, "min_samples": 2, "max_time_s": 0.05},
 "methods": [{"name": "my_method"}, {"name": "flash"}],
 "tasks": [{"name": "synthetic", "params": {"heads": 2, "seq_len": 24, "head_dim": 16, "causal": true}}]}
JSON
"$work/prefix/bin/attnbench" run "$work/suite.json" --plugin "$plugin" -o "$work/r.h5" -q
report=$("$work/prefix/bin/attnbench" report "$work/r.h5" --format csv)
grep -q "^my_method," <<<"$report"
echo "find_package(attnbench) plugin: built, listed, run and reported"
