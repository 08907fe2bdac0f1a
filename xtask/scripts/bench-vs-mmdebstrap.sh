#!/usr/bin/env bash
# Benchmark (`cargo xtask bench`): a warm-store `airlock build` of
# recipes/reference.toml against mmdebstrap building the same package set
# into a tar from a local copy:// repository of the same .debs (so neither
# downloads), plus airlock with every emitter (mkfs.erofs's lz4hc, and
# airlock's own uncompressed EROFS writer) and the floor: decompressing
# every .deb's data member on all cores. Needs root (mmdebstrap --mode=root),
# mmdebstrap, hyperfine and dpkg-dev. Results: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

airlock=target/release/airlock
work=${BENCH_DIR:-/tmp/airlock-bench}
store=${AIRLOCK_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock}
runs=${BENCH_RUNS:-3}
export AIRLOCK_STORE=$store

"$airlock" fetch recipes/reference.toml
"$airlock" fetch recipes/reference-all.toml
"$airlock" fetch recipes/reference-native.toml

rm -rf "$work"
mkdir -p "$work/flat"
# The locked .debs, under Debian file names, and each one's Priority from
# the host's package lists (without it mmdebstrap's minbase takes Priority
# from the .deb and silently drops packages).
awk -F' = ' '
    /^\[\[package\]\]/ { in_package = 1 }
    in_package && /^name = /         { gsub(/"/, "", $2); name = $2 }
    in_package && /^version = /      { gsub(/"/, "", $2); version = $2 }
    in_package && /^architecture = / { gsub(/"/, "", $2); arch = $2 }
    in_package && /^sha256 = /       { gsub(/"/, "", $2); print name, version, arch, $2 }
' recipes/reference.lock | while read -r name version arch sha; do
    cp "$store/sha256/${sha:0:2}/$sha" "$work/flat/${name}_${version//:/%3a}_${arch}.deb"
    priority=$(apt-cache show --no-all-versions "$name=$version" 2>/dev/null |
        awk '/^Priority:/ { print $2; exit }')
    if [ -z "$priority" ]; then
        priority=$(dpkg-deb -f "$work/flat/${name}_${version//:/%3a}_${arch}.deb" Priority)
    fi
    echo "$name ${priority:-optional} misc" >> "$work/override"
done
(
    cd "$work/flat"
    dpkg-scanpackages --multiversion . ../override > Packages 2>/dev/null
    {
        echo "Suite: bookworm"
        echo "Codename: bookworm"
        echo "Architectures: amd64 all"
        echo "SHA256:"
        echo " $(sha256sum Packages | cut -d' ' -f1) $(stat -c%s Packages) Packages"
    } > Release
)
echo "$(ls "$work/flat"/*.deb | wc -l) packages, $(du -sh "$work/flat" | cut -f1) of .debs"

include=systemd-sysv,nftables,auditd,bubblewrap,busybox-static,linux-image-cloud-amd64,ca-certificates,python3-minimal,dmsetup
hyperfine --runs "$runs" --export-markdown "$work/results.md" \
    --prepare "rm -rf $work/images" -n "airlock build (tar)" \
    "$airlock build recipes/reference.toml --offline -o $work/images" \
    --prepare "rm -f $work/mmdebstrap.tar" -n "mmdebstrap (tar)" \
    "mmdebstrap --quiet --mode=root --variant=minbase --include=$include bookworm $work/mmdebstrap.tar 'deb [trusted=yes] copy://$work/flat ./'" \
    --prepare "rm -rf $work/images" -n "airlock build (all emitters)" \
    "$airlock build recipes/reference-all.toml --offline -o $work/images" \
    --prepare "rm -rf $work/images" -n "airlock build (all emitters, native)" \
    "$airlock build recipes/reference-native.toml --offline -o $work/images" \
    --prepare "true" -n "decompress every data member (2 jobs)" \
    "ls $work/flat/*.deb | xargs -P$(nproc) -n1 sh -c 'dpkg-deb --fsys-tarfile \"\$0\" > /dev/null'"
cat "$work/results.md"
# Peak memory of the native build (GNU time), and a rebuild with nothing
# changed (a cache hit).
rm -rf "$work/images"
/usr/bin/time -f "all emitters, native: %e s, max RSS %M KiB" \
    "$airlock" build recipes/reference-native.toml --offline -o "$work/images" 2>&1 | tail -n 1
hyperfine --runs "$runs" -n "rebuild, nothing changed" \
    "$airlock build recipes/reference-native.toml --offline -o $work/images"
