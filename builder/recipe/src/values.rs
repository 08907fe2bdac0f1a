//! Validated value types. Each checks its value while it is deserialized, so
//! a bad value is reported at its own file:line:column with what was expected.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines a string newtype that is validated by `$check` on deserialization.
macro_rules! checked_string {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<String, String> = $check;
                check(text).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

checked_string!(
    /// An image name: lowercase letters, digits, `-`, `_`, `.`; starts with a
    /// letter or digit; at most 64 characters. Used in directory names.
    ImageName,
    |text| {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if valid {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid image name {text:?}: expected 1 to 64 of [a-z0-9-_.], starting with a letter or digit"
            ))
        }
    }
);

checked_string!(
    /// A Unix user or group name: `[a-z_][a-z0-9_-]*`, at most 32 characters.
    UnixName,
    |text| {
        let valid = !text.is_empty()
            && text.len() <= 32
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid user or group name {text:?}: expected [a-z_][a-z0-9_-]*, at most 32 characters"
            ))
        }
    }
);

checked_string!(
    /// A Debian package name as policy 5.6.1 defines it: lowercase letters,
    /// digits, `+`, `-`, `.`; at least two characters; starts with a letter
    /// or digit.
    PackageName,
    |text| {
        if is_package_name(text) {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid Debian package name {text:?}: expected [a-z0-9][a-z0-9+.-]+"
            ))
        }
    }
);

/// Whether `text` is a Debian package name (policy 5.6.1).
pub fn is_package_name(text: &str) -> bool {
    text.len() >= 2
        && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

checked_string!(
    /// A package request in Debian relation syntax: `name`, `name (>= 1.2)`,
    /// `a | b`. The syntax is checked fully when the recipe is locked; here
    /// only the characters are.
    PackageRequest,
    |text| {
        let valid = !text.trim().is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " +-.~:|()<>=_".contains(c));
        if valid {
            Ok(text.trim().to_owned())
        } else {
            Err(format!(
                "invalid package request {text:?}: expected Debian relation syntax such as \"name\", \"name (>= 1.0)\" or \"a | b\""
            ))
        }
    }
);

checked_string!(
    /// An absolute path inside the image: starts with `/`, no `.` or `..`
    /// components, no empty components, no trailing slash, no NUL.
    ImagePath,
    |text| {
        let valid = text.starts_with('/')
            && text.len() > 1
            && !text.ends_with('/')
            && !text.contains('\0')
            && text[1..].split('/').all(|part| !part.is_empty() && part != "." && part != "..");
        if valid {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid image path {text:?}: expected an absolute, normalized path such as \"/etc/motd\" (no \".\", \"..\", \"//\" or trailing \"/\")"
            ))
        }
    }
);

checked_string!(
    /// A directory inside the image: `/` or an [`ImagePath`].
    ImageDir,
    |text| {
        if text == "/" {
            Ok(text.to_owned())
        } else {
            text.parse::<ImagePath>()
                .map(|path| path.as_str().to_owned())
                .map_err(|_| format!("invalid image directory {text:?}: expected \"/\" or an absolute, normalized path such as \"/opt/agent\""))
        }
    }
);

impl ImageDir {
    /// The image root, `/`.
    pub fn root() -> ImageDir {
        ImageDir("/".to_owned())
    }
}

checked_string!(
    /// A path on the build host, relative to the recipe file that names it
    /// (or absolute). After loading, relative paths are relative to the
    /// top-level recipe's folder.
    HostPath,
    |text| {
        if text.is_empty() || text.contains('\0') {
            Err(format!("invalid path {text:?}: expected a non-empty path"))
        } else {
            Ok(text.to_owned())
        }
    }
);

checked_string!(
    /// An OpenPGP fingerprint: 40 (v4) or 64 (v6) hex digits, spaces allowed;
    /// stored as uppercase hex without spaces.
    Fingerprint,
    |text| {
        let compact: String = text.chars().filter(|c| *c != ' ').collect();
        let valid = matches!(compact.len(), 40 | 64) && compact.chars().all(|c| c.is_ascii_hexdigit());
        if valid {
            Ok(compact.to_ascii_uppercase())
        } else {
            Err(format!(
                "invalid OpenPGP fingerprint {text:?}: expected 40 or 64 hex digits"
            ))
        }
    }
);

checked_string!(
    /// A byte size in systemd's notation: digits with an optional K, M, G or
    /// T suffix (base 1024), e.g. `512M`.
    ByteSize,
    |text| {
        let digits = text.trim_end_matches(['K', 'M', 'G', 'T']);
        let valid = !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && text.len() - digits.len() <= 1;
        if valid {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid size {text:?}: expected digits with an optional K, M, G or T suffix, e.g. \"512M\""
            ))
        }
    }
);

impl ByteSize {
    /// The size in bytes (saturating at `u64::MAX`).
    pub fn bytes(&self) -> u64 {
        let text = self.as_str();
        let digits = text.trim_end_matches(['K', 'M', 'G', 'T']);
        let shift = match &text[digits.len()..] {
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            _ => 0,
        };
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
            .unwrap_or(u64::MAX)
    }
}

checked_string!(
    /// A CPU quota as systemd's CPUQuota= takes it: a percentage, e.g. `150%`.
    CpuQuota,
    |text| {
        let digits = text.strip_suffix('%').unwrap_or("");
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && digits != "0" {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid CPU quota {text:?}: expected a positive percentage such as \"50%\""
            ))
        }
    }
);

checked_string!(
    /// A time span in journald's notation: digits and one unit of `s`, `min`,
    /// `h`, `day`, `week`, `month` or `year`, e.g. `90day`.
    TimeSpan,
    |text| {
        let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
        let unit = &text[digits.len()..];
        let valid = !digits.is_empty() && matches!(unit, "s" | "min" | "h" | "day" | "week" | "month" | "year");
        if valid {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "invalid time span {text:?}: expected digits and one of s, min, h, day, week, month, year, e.g. \"90day\""
            ))
        }
    }
);

checked_string!(
    /// A URL fetched on the connected side: `http://` or `https://`.
    Url,
    |text| {
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !text.chars().any(char::is_whitespace) => {
                Ok(text.to_owned())
            }
            _ => Err(format!("invalid URL {text:?}: expected http:// or https:// and a host")),
        }
    }
);

/// An IP address or network (`10.0.2.2`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNetwork {
    /// The address.
    pub address: IpAddr,
    /// The prefix length (32 or 128 for a single address).
    pub prefix: u8,
}

impl FromStr for IpNetwork {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let error = || {
            format!(
                "invalid IP address or network {text:?}: expected e.g. \"10.0.2.2\" or \"10.0.0.0/8\" (names are not resolved)"
            )
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| error())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max && !prefix.starts_with('+'))
                .ok_or_else(error)?,
        };
        Ok(IpNetwork { address, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.address.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.address)
        } else {
            write!(f, "{}/{}", self.address, self.prefix)
        }
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A Unix file mode (permission bits only, at most 0o7777). Write it in TOML
/// as an octal integer: `mode = 0o644`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FileMode(pub u32);

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mode = i64::deserialize(deserializer)?;
        if (0..=0o7777).contains(&mode) {
            Ok(FileMode(mode as u32))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid file mode {mode:#o}: expected an octal integer from 0o0 to 0o7777, e.g. 0o644"
            )))
        }
    }
}

/// The recipe schema version. Only `1` exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchemaVersion(pub u32);

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = i64::deserialize(deserializer)?;
        if version == 1 {
            Ok(SchemaVersion(1))
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported recipe schema {version}: this airlock reads schema = 1"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_must_be_normalized_and_absolute() {
        for good in ["/etc/motd", "/a", "/usr/lib/x.so.1"] {
            assert!(good.parse::<ImagePath>().is_ok(), "{good}");
        }
        for bad in [
            "etc/motd", "/", "/etc/", "/a//b", "/a/../b", "/a/./b", "", "/a\0",
        ] {
            assert!(bad.parse::<ImagePath>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ip_networks_parse_and_print() {
        assert_eq!(
            "10.0.2.2".parse::<IpNetwork>().unwrap().to_string(),
            "10.0.2.2"
        );
        assert_eq!("10.0.0.0/8".parse::<IpNetwork>().unwrap().prefix, 8);
        assert_eq!(
            "fd00::/8".parse::<IpNetwork>().unwrap().to_string(),
            "fd00::/8"
        );
        for bad in [
            "10.0.0.0/33",
            "example.org",
            "10.0.0.1/",
            "10.0.0.1/+8",
            "::/129",
        ] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn small_validators() {
        assert!("512M".parse::<ByteSize>().is_ok());
        assert_eq!("512M".parse::<ByteSize>().unwrap().bytes(), 512 << 20);
        assert_eq!("7".parse::<ByteSize>().unwrap().bytes(), 7);
        assert_eq!("2G".parse::<ByteSize>().unwrap().bytes(), 2 << 30);
        assert_eq!(
            "99999999999T".parse::<ByteSize>().unwrap().bytes(),
            u64::MAX
        );
        assert!("512MM".parse::<ByteSize>().is_err());
        assert!("M".parse::<ByteSize>().is_err());
        assert!("50%".parse::<CpuQuota>().is_ok());
        assert!("0%".parse::<CpuQuota>().is_err());
        assert!("90day".parse::<TimeSpan>().is_ok());
        assert!("90d".parse::<TimeSpan>().is_err());
        assert!("root".parse::<UnixName>().is_ok());
        assert!("Root".parse::<UnixName>().is_err());
        assert!("libc6".parse::<PackageName>().is_ok());
        assert!("g".parse::<PackageName>().is_err());
        assert_eq!(
            "0123 4567 89AB CDEF 0123 4567 89ab cdef 0123 4567"
                .parse::<Fingerprint>()
                .unwrap()
                .as_str(),
            "0123456789ABCDEF0123456789ABCDEF01234567"
        );
        assert!("https://example.org/x".parse::<Url>().is_ok());
        assert!("ftp://example.org/x".parse::<Url>().is_err());
        assert!("https:///x".parse::<Url>().is_err());
    }
}
