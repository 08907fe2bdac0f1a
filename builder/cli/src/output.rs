//! Machine-readable output (`--json`), versioned. Every report is one JSON
//! object on stdout with `"schema": 1` and the command's name; human output
//! goes to stderr.

use serde::Serialize;

/// The `--json` schema version.
pub const SCHEMA: u32 = 1;

/// `airlock lock --json`.
#[derive(Debug, Serialize)]
pub struct LockReport {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// "lock".
    pub command: &'static str,
    /// The lock file.
    pub lock: String,
    /// "written", "unchanged" or "up-to-date".
    pub status: &'static str,
    /// The recipe's canonical digest.
    pub recipe_sha256: String,
    /// Locked packages.
    pub packages: usize,
    /// Locked models.
    pub models: usize,
}

/// `airlock fetch --json`.
#[derive(Debug, Serialize)]
pub struct FetchReport {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// "fetch".
    pub command: &'static str,
    /// Inputs the lock pins.
    pub inputs: usize,
    /// Downloaded now.
    pub downloaded: usize,
    /// Already in the store.
    pub present: usize,
    /// Bytes downloaded now.
    pub bytes: u64,
}

/// `airlock store verify --json`.
#[derive(Debug, Serialize)]
pub struct StoreVerifyReport {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// "store verify".
    pub command: &'static str,
    /// Entries that matched.
    pub ok: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Entries that did not match: path and actual digest.
    pub corrupt: Vec<CorruptEntry>,
}

/// One corrupt store entry.
#[derive(Debug, Serialize)]
pub struct CorruptEntry {
    /// Its path.
    pub path: String,
    /// What it hashes to now.
    pub actual_sha256: String,
}

/// `airlock gc --json`.
#[derive(Debug, Serialize)]
pub struct GcReport {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// "gc".
    pub command: &'static str,
    /// Whether nothing was removed.
    pub dry_run: bool,
    /// Entries kept.
    pub kept: usize,
    /// Entries removed.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub freed_bytes: u64,
}

/// Prints a report as one line of JSON on stdout.
pub fn print_json(report: &impl Serialize) {
    let text = serde_json::to_string(report).expect("reports always serialize");
    #[allow(clippy::print_stdout)]
    {
        println!("{text}");
    }
}
