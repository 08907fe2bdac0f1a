//! The example agent node's model: a small file in the GGUF format (version
//! 3, as llama.cpp writes it) whose tensors are random numbers from a fixed
//! seed. The same seed always gives the same bytes, so the recipe can pin
//! the file's sha256 and every checkout can make it again; nothing is
//! downloaded and the numbers mean nothing.
//!
//! Layout: the header (magic `GGUF`, version, tensor count, metadata
//! count), the metadata key/value pairs, the tensor descriptions (name,
//! dimensions, type F32, offset), zero padding to `general.alignment`, then
//! the tensors' data. Written through a buffer; never held whole in memory.

use std::io::{self, Write};
use std::path::Path;

/// The seed the example recipe's model is made from.
pub const SEED: u64 = 0x4149_524c_4f43_4b31; // "AIRLOCK1"

/// Tensor data alignment (GGUF's default).
pub const ALIGNMENT: u64 = 32;

/// The tensors: name and dimensions (F32, innermost dimension first).
pub const TENSORS: &[(&str, [u64; 2])] = &[
    ("token_embd.weight", [256, 512]),
    ("output.weight", [512, 256]),
];

/// GGUF metadata value types used here.
const STRING: u32 = 8;
const UINT32: u32 = 4;
const UINT64: u32 = 10;
/// ggml's F32 tensor type.
const F32: u32 = 0;

/// splitmix64: a tiny generator whose output is fixed by its definition
/// (a crate's generator may change between versions; this cannot).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [-1, 1) from the top 24 bits.
    fn weight(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0
    }
}

fn string(out: &mut impl Write, text: &str) -> io::Result<()> {
    out.write_all(&(text.len() as u64).to_le_bytes())?;
    out.write_all(text.as_bytes())
}

enum Value<'a> {
    Str(&'a str),
    U32(u32),
    U64(u64),
}

fn pair(out: &mut impl Write, key: &str, value: Value<'_>) -> io::Result<()> {
    string(out, key)?;
    match value {
        Value::Str(text) => {
            out.write_all(&STRING.to_le_bytes())?;
            string(out, text)
        }
        Value::U32(n) => {
            out.write_all(&UINT32.to_le_bytes())?;
            out.write_all(&n.to_le_bytes())
        }
        Value::U64(n) => {
            out.write_all(&UINT64.to_le_bytes())?;
            out.write_all(&n.to_le_bytes())
        }
    }
}

/// Counts what goes through, to place the padding.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the model made from `seed` to `out`.
pub fn write(out: impl Write, seed: u64) -> io::Result<()> {
    let mut out = Counted {
        inner: out,
        written: 0,
    };
    let metadata: Vec<(&str, Value<'_>)> = vec![
        ("general.architecture", Value::Str("airlock-example")),
        ("general.name", Value::Str("airlock example agent model")),
        (
            "general.description",
            Value::Str(
                "Seeded random weights for the airlock agent-node example; not a usable model.",
            ),
        ),
        ("general.license", Value::Str("CC0-1.0")),
        ("general.alignment", Value::U32(ALIGNMENT as u32)),
        ("airlock.seed", Value::U64(seed)),
    ];
    out.write_all(b"GGUF")?;
    out.write_all(&3u32.to_le_bytes())?;
    out.write_all(&(TENSORS.len() as u64).to_le_bytes())?;
    out.write_all(&(metadata.len() as u64).to_le_bytes())?;
    for (key, value) in metadata {
        pair(&mut out, key, value)?;
    }
    let mut offset = 0u64;
    for (name, dims) in TENSORS {
        string(&mut out, name)?;
        out.write_all(&(dims.len() as u32).to_le_bytes())?;
        for dim in dims {
            out.write_all(&dim.to_le_bytes())?;
        }
        out.write_all(&F32.to_le_bytes())?;
        out.write_all(&offset.to_le_bytes())?;
        let size = dims.iter().product::<u64>() * 4;
        offset += size.div_ceil(ALIGNMENT) * ALIGNMENT;
    }
    let pad = (ALIGNMENT - out.written % ALIGNMENT) % ALIGNMENT;
    out.write_all(&vec![0u8; pad as usize])?;
    let mut rng = SplitMix64(seed);
    for (_, dims) in TENSORS {
        let count = dims.iter().product::<u64>();
        for _ in 0..count {
            out.write_all(&rng.weight().to_le_bytes())?;
        }
        let size = count * 4;
        let pad = size.div_ceil(ALIGNMENT) * ALIGNMENT - size;
        out.write_all(&vec![0u8; pad as usize])?;
    }
    out.flush()
}

/// Writes the example model to `path` (through a temporary file beside it,
/// renamed into place, so a half-written model is never left there).
pub fn write_file(path: &Path, seed: u64) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial)?;
    write(io::BufWriter::with_capacity(1 << 16, &file), seed)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn bytes(seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, seed).unwrap();
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_does_not() {
        assert_eq!(bytes(SEED), bytes(SEED));
        assert_ne!(bytes(SEED), bytes(SEED + 1));
    }

    #[test]
    fn the_example_model_has_the_digest_the_recipe_pins() {
        let recipe = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes/agent-node.toml"),
        )
        .unwrap();
        let digest = hex::encode(sha2::Sha256::digest(bytes(SEED)));
        assert!(
            recipe.contains(&format!("sha256 = \"{digest}\"")),
            "recipes/agent-node.toml must pin the example model's sha256 {digest}"
        );
    }

    #[test]
    fn the_header_is_gguf_v3_and_the_tensors_are_aligned() {
        let data = bytes(SEED);
        assert_eq!(&data[..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(data[4..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(data[8..16].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(data[16..24].try_into().unwrap()), 6);
        let tensor_bytes: u64 = TENSORS
            .iter()
            .map(|(_, d)| d.iter().product::<u64>() * 4)
            .sum();
        let header = data.len() as u64 - tensor_bytes;
        assert_eq!(header % ALIGNMENT, 0, "tensor data starts aligned");
        // The first weight is the first splitmix64 output, scaled.
        let first = f32::from_le_bytes(data[header as usize..][..4].try_into().unwrap());
        assert!((-1.0..1.0).contains(&first));
        assert_eq!(first, SplitMix64(SEED).weight());
    }

    #[test]
    fn write_file_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m/model.gguf");
        write_file(&path, SEED).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes(SEED));
        assert!(!path.with_extension("partial").exists());
    }
}
