//! The verifier's clock, and the UTC date-time text every airlock format
//! uses (`airlock_format::time`).

pub use airlock_format::time::{format, parse};

/// The host clock, in seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
