//! airlock's hash trees against veritysetup's, byte for byte. veritysetup
//! (Debian's cryptsetup-bin) is required when AIRLOCK_REQUIRE_TOOLS=1, as in
//! CI; elsewhere the comparison is skipped when it is missing.

use std::path::Path;
use std::process::Command;

use airlock_verity::{Params, build};

fn veritysetup_available() -> bool {
    airlock_fixtures::gate::tool("veritysetup", "cryptsetup-bin")
}

/// Deterministic pseudo-random bytes (xorshift), so blocks differ.
fn data(blocks: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ blocks as u64;
    (0..blocks * 4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn veritysetup_format(
    data_path: &Path,
    hash_path: &Path,
    salt: &str,
    uuid: Option<&str>,
) -> String {
    let mut command = Command::new("veritysetup");
    command.args(["format", "--salt", salt]);
    match uuid {
        Some(uuid) => command.args(["--uuid", uuid]),
        None => command.arg("--no-superblock"),
    };
    let output = command.arg(data_path).arg(hash_path).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("Root hash:"))
        .unwrap_or_else(|| panic!("no root hash in {text}"))
        .trim()
        .to_owned()
}

#[test]
fn matches_veritysetup_byte_for_byte() {
    if !veritysetup_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let salt = "5a17".repeat(16); // 32 bytes, as airlock derives
    let uuid_text = "8f6a5c0e-2b1d-4e3f-9a7b-6c5d4e3f2a1b";
    let uuid: [u8; 16] = hex::decode(uuid_text.replace('-', ""))
        .unwrap()
        .try_into()
        .unwrap();
    // 1 level, 2 levels (with a partial block), 3 levels
    for blocks in [1usize, 128, 129, 300, 16_385] {
        let bytes = data(blocks);
        let data_path = dir.path().join(format!("data-{blocks}"));
        std::fs::write(&data_path, &bytes).unwrap();
        for with_superblock in [false, true] {
            let params = Params::new(hex::decode(&salt).unwrap(), with_superblock.then_some(uuid));
            let mut ours = Vec::new();
            let tree = build(
                &mut bytes.as_slice(),
                bytes.len() as u64,
                &params,
                &mut ours,
            )
            .unwrap();

            let hash_path = dir.path().join(format!("hash-{blocks}-{with_superblock}"));
            let root = veritysetup_format(
                &data_path,
                &hash_path,
                &salt,
                with_superblock.then_some(uuid_text),
            );
            assert_eq!(
                tree.root_hash_hex(),
                root,
                "{blocks} blocks, superblock {with_superblock}"
            );
            let theirs = std::fs::read(&hash_path).unwrap();
            assert_eq!(
                ours.len(),
                theirs.len(),
                "{blocks} blocks, superblock {with_superblock}"
            );
            assert!(
                ours == theirs,
                "hash device bytes differ: {blocks} blocks, superblock {with_superblock}"
            );
            assert_eq!(tree.hash_size, ours.len() as u64);

            // and veritysetup accepts our tree
            let ours_path = dir.path().join("ours");
            std::fs::write(&ours_path, &ours).unwrap();
            let mut verify = Command::new("veritysetup");
            verify.arg("verify");
            if !with_superblock {
                verify.args([
                    "--no-superblock",
                    "--salt",
                    &salt,
                    "--data-blocks",
                    &blocks.to_string(),
                ]);
            }
            let status = verify
                .arg(&data_path)
                .arg(&ours_path)
                .arg(&root)
                .status()
                .unwrap();
            assert!(
                status.success(),
                "veritysetup verify refused our tree for {blocks} blocks"
            );
        }
    }
}

/// Reproducibility: the tree does not depend on how many threads hash it.
#[test]
fn the_same_bytes_on_one_thread_and_on_two() {
    let bytes = data(5_000);
    let params = Params::new(vec![1, 2, 3], Some([9; 16]));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut out = Vec::new();
            let tree = build(&mut bytes.as_slice(), bytes.len() as u64, &params, &mut out).unwrap();
            (tree, out)
        })
    };
    assert_eq!(run(1), run(2));
}
