//! The sha256 digest type shared by recipes, locks and the store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sha256 digest. Displayed and serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256(pub [u8; 32]);

/// Why a string is not a sha256 digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected a sha256 digest as 64 lowercase hex digits, got {got:?}")]
pub struct Sha256ParseError {
    /// The rejected text (cut to 80 characters).
    pub got: String,
}

impl Sha256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first `n` hex digits, for short names.
    pub fn short(&self, n: usize) -> String {
        let mut hex = self.to_hex();
        hex.truncate(n);
        hex
    }
}

impl FromStr for Sha256 {
    type Err = Sha256ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || Sha256ParseError {
            got: text.chars().take(80).collect(),
        };
        if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(error());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| error())?;
        Ok(Sha256(bytes))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_hex() {
        let digest = Sha256::of(b"abc");
        assert_eq!(
            digest.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest.to_hex().parse::<Sha256>(), Ok(digest));
        assert!("BA7816BF".parse::<Sha256>().is_err());
        assert!(digest.to_hex().to_uppercase().parse::<Sha256>().is_err());
        assert!(format!("{}0", digest).parse::<Sha256>().is_err());
        assert_eq!(digest.short(12), "ba7816bf8f01");
    }
}
