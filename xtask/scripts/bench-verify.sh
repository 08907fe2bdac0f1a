#!/usr/bin/env bash
# Benchmark (`cargo xtask bench-verify`): `airlock verify` of a bundle that
# holds a 4 GiB model file (in the image's rootfs.tar.zst and, with
# --with-sources, as itself), against `sha256sum` of the same files in the
# same run, plus the verifier's peak memory (GNU time) for this bundle and
# for one without the model: it must not grow with file size. The model is
# pseudo-random bytes from a fixed key (AES-256-CTR over zeros), so every
# run hashes the same content. Needs openssl, hyperfine, GNU time and about
# 17 GiB of free disk below BENCH_DIR. Results: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

airlock=$PWD/target/release/airlock
work=${BENCH_DIR:-/tmp/airlock-bench-verify}
runs=${BENCH_RUNS:-3}
size=${BENCH_MODEL_SIZE:-4G}
export AIRLOCK_STORE=$work/store
export AIRLOCK_KEY_PASSWORD=bench

rm -rf "$work"
mkdir -p "$work/recipe"
echo "writing the $size model"
# openssl is stopped by SIGPIPE when head has enough: not a failure.
set +o pipefail
openssl enc -aes-256-ctr -nosalt -K "$(printf '%064d' 0)" -iv "$(printf '%032d' 0)" -in /dev/zero 2>/dev/null \
    | head -c "$size" > "$work/recipe/model.gguf"
set -o pipefail
model_sha=$(sha256sum "$work/recipe/model.gguf" | cut -d' ' -f1)
cp keys/debian/bookworm.pgp "$work/recipe/"
for with_model in yes no; do
    name=bench-$with_model
    {
        cat <<TOML
schema = 1

[image]
name = "$name"
version = 1
epoch = 1735689600

[archive]
suites = ["bookworm"]
keyring = "bookworm.pgp"

[packages]
base = "minbase"

[output]
formats = ["tar"]
zstd_level = 1
TOML
        if [ $with_model = yes ]; then
            cat <<TOML

[[models]]
name = "bench"
sha256 = "$model_sha"
path = "model.gguf"
destination = "/opt/models/bench.gguf"
license = "Apache-2.0"
TOML
        fi
    } > "$work/recipe/$name.toml"
    "$airlock" lock "$work/recipe/$name.toml"
    "$airlock" build "$work/recipe/$name.toml" -o "$work/images"
done
# The store holds the model now; the original only costs disk.
rm "$work/recipe/model.gguf"

"$airlock" keygen --builder --out "$work/keys" >/dev/null
for who in alice bob; do "$airlock" keygen --release $who --out "$work/keys" >/dev/null; done
mkdir -p "$work/trust/release" "$work/trust/builder"
cp "$work/keys/alice.asc" "$work/keys/bob.asc" "$work/trust/release/"
cp "$work/keys/builder.pub" "$work/trust/builder/"
echo 'threshold = 2' > "$work/trust/trust.toml"
for with_model in yes no; do
    "$airlock" export "$work"/images/bench-$with_model/1-* --to "$work/bundle-$with_model" \
        --expires 2099-01-01 --builder-key "$work/keys/builder.key" --with-sources
    "$airlock" sign "$work/bundle-$with_model" --key "$work/keys/alice.key"
    "$airlock" sign "$work/bundle-$with_model" --key "$work/keys/bob.key"
done
rm -rf "$work/images" "$work/store"

du -sh "$work/bundle-yes" "$work/bundle-no"
files=$(cd "$work/bundle-yes" && find . -type f | sort | tr '\n' ' ')
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/verify.md" \
    -n "airlock verify (bundle with a $size model)" \
    "$airlock verify $work/bundle-yes --trust $work/trust" \
    -n "sha256sum of the same files" \
    "cd $work/bundle-yes && sha256sum $files > /dev/null"
cat "$work/verify.md"
for with_model in yes no; do
    /usr/bin/time -f "peak RSS of airlock verify, bundle-$with_model ($(du -sh "$work/bundle-$with_model" | cut -f1)): %M KiB" \
        "$airlock" verify "$work/bundle-$with_model" --trust "$work/trust" 2>&1 | grep -E 'peak RSS|VERIFIED'
done
