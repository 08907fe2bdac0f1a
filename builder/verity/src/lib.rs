//! dm-verity hash trees (format 1, sha256), computed by airlock so the root
//! hash is known at build time and recorded in the manifest and on the
//! kernel command line. The output is byte for byte what
//! `veritysetup format` writes for the same data, salt and UUID (the tests
//! check this against veritysetup itself).
//!
//! Layout of the hash device (cryptsetup's lib/verity): an optional
//! superblock in the first hash block, then the tree's levels from the top
//! (one block) down to level 0 (the hashes of the data blocks). Each hash is
//! `sha256(salt || block)`; each level is packed into hash blocks and the
//! last block of a level is zero-padded. The root hash is the hash of the
//! top level's single block; with a single data block there are no levels
//! and the root hash is that block's hash.

use std::io::{self, Read, Write};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Size of a sha256 digest.
const DIGEST: usize = 32;
/// Superblock signature.
const SIGNATURE: &[u8; 8] = b"verity\0\0";
/// Bytes hashed per batch: large enough for both cores, small enough to stay
/// bounded whatever the image size.
const BATCH: usize = 8 << 20;

/// How to build the tree.
#[derive(Clone, Debug)]
pub struct Params {
    /// Data block size (4096, as veritysetup's default).
    pub data_block_size: u32,
    /// Hash block size (4096).
    pub hash_block_size: u32,
    /// Salt, at most 256 bytes; airlock derives it from the build inputs.
    pub salt: Vec<u8>,
    /// Write a superblock with this UUID; `None` for `--no-superblock`.
    pub uuid: Option<[u8; 16]>,
}

impl Params {
    /// 4096-byte blocks and the given salt, with a superblock.
    pub fn new(salt: Vec<u8>, uuid: Option<[u8; 16]>) -> Params {
        Params {
            data_block_size: 4096,
            hash_block_size: 4096,
            salt,
            uuid,
        }
    }
}

/// What was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// The root hash.
    pub root_hash: [u8; DIGEST],
    /// Data blocks covered.
    pub data_blocks: u64,
    /// Bytes written to the hash device.
    pub hash_size: u64,
}

impl Tree {
    /// The root hash in hex, as veritysetup prints it.
    pub fn root_hash_hex(&self) -> String {
        hex::encode(self.root_hash)
    }
}

/// Why a tree could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    /// Reading the data or writing the hash device failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The parameters or the data do not fit the format.
    #[error("{0}")]
    Invalid(String),
}

/// Builds the hash tree of `data` (exactly `data_size` bytes, a multiple of
/// the data block size) into `hash_device`. Reads the data once, in bounded
/// batches hashed on all cores; the tree itself (about 1/128 of the data)
/// is kept in memory until it is written.
pub fn build(
    data: &mut dyn Read,
    data_size: u64,
    params: &Params,
    hash_device: &mut dyn Write,
) -> Result<Tree, VerityError> {
    let data_block = params.data_block_size as usize;
    let hash_block = params.hash_block_size as usize;
    let valid_size = |size: u32| size.is_power_of_two() && (512..=(1 << 19)).contains(&size);
    if !valid_size(params.data_block_size) || !valid_size(params.hash_block_size) {
        return Err(VerityError::Invalid(
            "block sizes must be powers of two from 512 to 512 KiB".to_owned(),
        ));
    }
    if params.salt.len() > 256 {
        return Err(VerityError::Invalid(
            "the salt is longer than 256 bytes".to_owned(),
        ));
    }
    if data_size == 0 || !data_size.is_multiple_of(data_block as u64) {
        return Err(VerityError::Invalid(format!(
            "data size {data_size} is not a positive multiple of the {data_block}-byte block size"
        )));
    }
    let data_blocks = data_size / data_block as u64;

    // Level 0: the hashes of the data blocks, in order.
    let mut level = Vec::with_capacity(
        usize::try_from(data_blocks)
            .unwrap_or(0)
            .saturating_mul(DIGEST),
    );
    let mut buffer = vec![0u8; BATCH - BATCH % data_block];
    let mut remaining = data_size;
    while remaining > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        data.read_exact(&mut buffer[..want])?;
        remaining -= want as u64;
        let digests: Vec<[u8; DIGEST]> = buffer[..want]
            .par_chunks(data_block)
            .map(|block| salted_hash(&params.salt, block))
            .collect();
        for digest in digests {
            level.extend_from_slice(&digest);
        }
    }

    // Higher levels until one block holds them all. As in cryptsetup, a
    // single data block has no levels at all: its own hash is the root.
    let mut levels = Vec::new();
    let root_hash = if data_blocks == 1 {
        level[..DIGEST].try_into().expect("one digest")
    } else {
        levels.push(pad(level, hash_block));
        while levels.last().expect("level 0 exists").len() > hash_block {
            let below = levels.last().expect("level 0 exists");
            let digests: Vec<[u8; DIGEST]> = below
                .par_chunks(hash_block)
                .map(|block| salted_hash(&params.salt, block))
                .collect();
            levels.push(pad(digests.concat(), hash_block));
        }
        salted_hash(&params.salt, levels.last().expect("level 0 exists"))
    };

    let mut hash_size = 0u64;
    if let Some(uuid) = params.uuid {
        let superblock = superblock(params, uuid, data_blocks);
        let mut block = vec![0u8; hash_block.max(superblock.len())];
        block[..superblock.len()].copy_from_slice(&superblock);
        hash_device.write_all(&block)?;
        hash_size += block.len() as u64;
    }
    for level in levels.iter().rev() {
        hash_device.write_all(level)?;
        hash_size += level.len() as u64;
    }
    Ok(Tree {
        root_hash,
        data_blocks,
        hash_size,
    })
}

fn salted_hash(salt: &[u8], block: &[u8]) -> [u8; DIGEST] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(block);
    hasher.finalize().into()
}

/// Zero-pads `level` to whole hash blocks.
fn pad(mut level: Vec<u8>, hash_block: usize) -> Vec<u8> {
    let rest = level.len() % hash_block;
    if rest != 0 || level.is_empty() {
        level.resize(level.len() + hash_block - rest, 0);
    }
    level
}

/// The 512-byte superblock (struct verity_sb in cryptsetup), little-endian.
fn superblock(params: &Params, uuid: [u8; 16], data_blocks: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&1u32.to_le_bytes()); // superblock version
    out.extend_from_slice(&1u32.to_le_bytes()); // hash type 1: salt first
    out.extend_from_slice(&uuid);
    let mut algorithm = [0u8; 32];
    algorithm[..6].copy_from_slice(b"sha256");
    out.extend_from_slice(&algorithm);
    out.extend_from_slice(&params.data_block_size.to_le_bytes());
    out.extend_from_slice(&params.hash_block_size.to_le_bytes());
    out.extend_from_slice(&data_blocks.to_le_bytes());
    out.extend_from_slice(&(params.salt.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0u8; 6]);
    let mut salt = [0u8; 256];
    salt[..params.salt.len()].copy_from_slice(&params.salt);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&[0u8; 168]);
    debug_assert_eq!(out.len(), 512);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_block_has_no_levels() {
        let data = vec![7u8; 4096];
        let mut hash = Vec::new();
        let tree = build(
            &mut data.as_slice(),
            4096,
            &Params::new(b"salt".to_vec(), None),
            &mut hash,
        )
        .unwrap();
        assert_eq!(tree.data_blocks, 1);
        assert!(hash.is_empty());
        assert_eq!(tree.root_hash, salted_hash(b"salt", &data));
    }

    #[test]
    fn up_to_128_blocks_have_one_level() {
        let data = vec![7u8; 128 * 4096];
        let mut hash = Vec::new();
        let tree = build(
            &mut data.as_slice(),
            data.len() as u64,
            &Params::new(b"salt".to_vec(), None),
            &mut hash,
        )
        .unwrap();
        assert_eq!(hash.len(), 4096);
        let leaf = salted_hash(b"salt", &data[..4096]);
        assert!(hash.chunks(32).all(|digest| digest == leaf));
        assert_eq!(tree.root_hash, salted_hash(b"salt", &hash));
    }

    #[test]
    fn levels_are_written_top_first() {
        // 129 blocks: level 0 needs two hash blocks, level 1 one.
        let data: Vec<u8> = (0..129 * 4096).map(|i| (i / 4096) as u8).collect();
        let mut hash = Vec::new();
        let tree = build(
            &mut data.as_slice(),
            data.len() as u64,
            &Params::new(vec![], None),
            &mut hash,
        )
        .unwrap();
        assert_eq!(hash.len(), 3 * 4096);
        let level0 = &hash[4096..];
        assert_eq!(&hash[..32], &salted_hash(&[], &level0[..4096]));
        assert_eq!(&hash[32..64], &salted_hash(&[], &level0[4096..]));
        assert_eq!(tree.root_hash, salted_hash(&[], &hash[..4096]));
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mut hash = Vec::new();
        let params = Params::new(vec![], None);
        assert!(build(&mut &[0u8; 100][..], 100, &params, &mut hash).is_err());
        assert!(build(&mut &[][..], 0, &params, &mut hash).is_err());
        assert!(
            build(
                &mut &[0u8; 4096][..],
                4096,
                &Params::new(vec![0; 257], None),
                &mut hash
            )
            .is_err()
        );
        // the data ends before its announced size
        assert!(build(&mut &[0u8; 4096][..], 8192, &params, &mut hash).is_err());
    }
}
