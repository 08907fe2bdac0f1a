#!/usr/bin/env bash
# Benchmark (`cargo xtask bench-disk`): what the "disk" format adds to a
# build. A warm-store `airlock build` of recipes/minimal.toml as it is
# (tar, erofs, ostree, disk) against the same recipe without "disk", each
# into a fresh output folder (so neither is a cache hit), with hyperfine.
# Both recipes are locked afresh, to the same package versions.
# Needs root (the EROFS root and the ostree commit carry the image's file
# owners) and hyperfine. Results: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

airlock=${AIRLOCK:-$PWD/target/release/airlock}
work=${BENCH_DIR:-/tmp/airlock-bench-disk}
runs=${BENCH_RUNS:-5}

rm -rf "$work"
mkdir -p "$work/recipes" "$work/keys"
cp -r keys/debian "$work/keys/"
cp recipes/minimal.toml "$work/recipes/with-disk.toml"
sed 's/^formats = \["tar", "erofs", "ostree", "disk"\]$/formats = ["tar", "erofs", "ostree"]/' \
    recipes/minimal.toml > "$work/recipes/without-disk.toml"
if cmp -s "$work/recipes/with-disk.toml" "$work/recipes/without-disk.toml"; then
    echo "bench-disk: recipes/minimal.toml's formats line is not the one this script edits" >&2
    exit 2
fi
# Both locked now against the host's apt sources (the lock names its
# recipe's digest), so both install the same package versions.
for recipe in with-disk without-disk; do
    "$airlock" lock "$work/recipes/$recipe.toml"
    "$airlock" fetch "$work/recipes/$recipe.toml"
done
if ! diff <(grep -v '^recipe' "$work/recipes/with-disk.lock") \
    <(grep -v '^recipe' "$work/recipes/without-disk.lock") > /dev/null; then
    echo "bench-disk: the two locks differ in more than their recipe digest" >&2
    exit 2
fi

hyperfine --runs "$runs" --warmup 1 \
    --prepare "rm -rf $work/out" \
    --export-markdown "$work/results.md" \
    -n 'with "disk"' "$airlock build $work/recipes/with-disk.toml --offline --output $work/out" \
    -n 'without "disk"' "$airlock build $work/recipes/without-disk.toml --offline --output $work/out"
cat "$work/results.md"
