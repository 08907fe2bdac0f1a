#!/usr/bin/env bash
# Benchmark (`cargo xtask bench-disk`): what the "disk" format adds to a
# build. A warm-store `airlock build` of recipes/minimal.toml as it is
# (tar, erofs, ostree, disk) against the same recipe without "disk", each
# into a fresh output folder (so neither is a cache hit), with hyperfine.
# Needs root (the EROFS root and the ostree commit carry the image's file
# owners) and hyperfine. Results: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

airlock=$PWD/target/release/airlock
work=${BENCH_DIR:-/tmp/airlock-bench-disk}
runs=${BENCH_RUNS:-5}

"$airlock" fetch recipes/minimal.toml
rm -rf "$work"
mkdir -p "$work/recipes" "$work/keys"
cp -r keys/debian "$work/keys/"
cp recipes/minimal.toml "$work/recipes/with-disk.toml"
cp recipes/minimal.lock "$work/recipes/with-disk.lock"
sed 's/^formats = \["tar", "erofs", "ostree", "disk"\]$/formats = ["tar", "erofs", "ostree"]/' \
    recipes/minimal.toml > "$work/recipes/without-disk.toml"
cp recipes/minimal.lock "$work/recipes/without-disk.lock"
if cmp -s "$work/recipes/with-disk.toml" "$work/recipes/without-disk.toml"; then
    echo "bench-disk: recipes/minimal.toml's formats line is not the one this script edits" >&2
    exit 2
fi

hyperfine --runs "$runs" --warmup 1 \
    --prepare "rm -rf $work/out" \
    --export-markdown "$work/results.md" \
    -n 'with "disk"' "$airlock build $work/recipes/with-disk.toml --offline --output $work/out" \
    -n 'without "disk"' "$airlock build $work/recipes/without-disk.toml --offline --output $work/out"
cat "$work/results.md"
