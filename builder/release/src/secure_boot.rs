//! Secure Boot with the operator's own keys.
//!
//! `generate` makes the three keys UEFI Secure Boot chains (PK, the
//! platform owner; KEK, which may change db; db, which signs what boots) as
//! RSA-2048 keys with self-signed X.509 certificates (openssl), each also as
//! an EFI signature list (`.esl`, written here) and as a signed enrolment
//! update (`.auth`: PK and KEK signed by PK, db by KEK, with efitools'
//! sign-efi-sig-list) that firmware setup, `efi-updatevar` and
//! `virt-fw-vars` take.
//!
//! `sign` signs an EFI binary with the db key (sbsigntool's sbsign) and
//! checks the result with sbverify. It runs where the db key is kept, a
//! step apart from the build and from the builder key: the build's unsigned
//! artifacts stay bit-for-bit reproducible, and a signed binary is its
//! unsigned self with a signature appended (`sbattach --remove` gives the
//! unsigned bytes back).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ReleaseError, io};

/// The keys, in the order of the chain.
pub const KEYS: [&str; 3] = ["PK", "KEK", "db"];

/// EFI_CERT_X509_GUID, as GPT-style bytes.
const CERT_X509: [u8; 16] = [
    0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72,
];

/// What `generate` wrote.
#[derive(Debug)]
pub struct Generated {
    /// The folder.
    pub dir: PathBuf,
    /// The owner GUID in every signature list.
    pub owner: String,
}

fn tool(name: &str, package: &str, command: &mut Command) -> Result<String, ReleaseError> {
    let output = command.output().map_err(|e| ReleaseError::Tool {
        tool: name.to_owned(),
        message: format!("{e} (Debian: apt-get install {package})"),
    })?;
    if !output.status.success() {
        return Err(ReleaseError::Tool {
            tool: name.to_owned(),
            message: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// An EFI_SIGNATURE_LIST holding one X.509 certificate (DER) of `owner`.
pub fn signature_list(owner: [u8; 16], der: &[u8]) -> Vec<u8> {
    let signature_size = 16 + der.len() as u32;
    let mut list = Vec::with_capacity(28 + signature_size as usize);
    list.extend_from_slice(&CERT_X509);
    list.extend_from_slice(&(28 + signature_size).to_le_bytes());
    list.extend_from_slice(&0u32.to_le_bytes());
    list.extend_from_slice(&signature_size.to_le_bytes());
    list.extend_from_slice(&owner);
    list.extend_from_slice(der);
    list
}

/// A random GUID's text and its GPT-style bytes.
fn owner_guid() -> Result<(String, [u8; 16]), ReleaseError> {
    let text = fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map_err(io("/proc/sys/kernel/random/uuid"))?
        .trim()
        .to_owned();
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let big: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let b = &big;
    let bytes = [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ];
    Ok((text, bytes))
}

/// Makes PK, KEK and db in `dir` (which must not exist), each valid for
/// `valid_days`, named "`common_name` PK" and so on.
pub fn generate(dir: &Path, common_name: &str, valid_days: u64) -> Result<Generated, ReleaseError> {
    if common_name.contains('/') || common_name.contains('\n') {
        return Err(ReleaseError::Invalid(
            "the common name may not hold '/' or a line break".to_owned(),
        ));
    }
    fs::create_dir_all(dir.parent().unwrap_or(Path::new("."))).map_err(io(dir.display()))?;
    fs::create_dir(dir).map_err(|e| ReleaseError::Key {
        what: dir.display().to_string(),
        message: format!("{e} (keys are never overwritten: choose another --out or --name)"),
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir.display()))?;
    }
    let (owner, owner_bytes) = owner_guid()?;
    for key in KEYS {
        let path = |ext: &str| dir.join(format!("{key}.{ext}"));
        tool(
            "openssl",
            "openssl",
            Command::new("openssl")
                .args([
                    "req", "-new", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes",
                ])
                .args(["-days", &valid_days.to_string()])
                .args(["-subj", &format!("/CN={common_name} {key}/")])
                .arg("-keyout")
                .arg(path("key"))
                .arg("-out")
                .arg(path("crt")),
        )?;
        tool(
            "openssl",
            "openssl",
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(path("crt"))
                .arg("-out")
                .arg(path("cer")),
        )?;
        let der = fs::read(path("cer")).map_err(io(path("cer").display()))?;
        fs::write(path("esl"), signature_list(owner_bytes, &der))
            .map_err(io(path("esl").display()))?;
    }
    // PK signs its own enrolment and KEK's; KEK signs db's.
    for (key, signer) in [("PK", "PK"), ("KEK", "PK"), ("db", "KEK")] {
        tool(
            "sign-efi-sig-list",
            "efitools",
            Command::new("sign-efi-sig-list")
                .args(["-g", &owner, "-k"])
                .arg(dir.join(format!("{signer}.key")))
                .arg("-c")
                .arg(dir.join(format!("{signer}.crt")))
                .arg(key)
                .arg(dir.join(format!("{key}.esl")))
                .arg(dir.join(format!("{key}.auth"))),
        )?;
    }
    fs::write(dir.join("owner.txt"), format!("{owner}\n")).map_err(io(dir.display()))?;
    Ok(Generated {
        dir: dir.to_owned(),
        owner,
    })
}

/// Signs the EFI binary `input` with `key` and `cert` into `output`, and
/// checks it with sbverify against `cert`.
pub fn sign(input: &Path, key: &Path, cert: &Path, output: &Path) -> Result<(), ReleaseError> {
    tool(
        "sbsign",
        "sbsigntool",
        Command::new("sbsign")
            .arg("--key")
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .arg("--output")
            .arg(output)
            .arg(input),
    )?;
    tool(
        "sbverify",
        "sbsigntool",
        Command::new("sbverify").arg("--cert").arg(cert).arg(output),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_list_holds_one_x509_certificate_with_its_owner() {
        let list = signature_list([7; 16], b"DER!");
        assert_eq!(list.len(), 28 + 16 + 4);
        assert_eq!(&list[..16], &CERT_X509);
        assert_eq!(u32::from_le_bytes(list[16..20].try_into().unwrap()), 48);
        assert_eq!(u32::from_le_bytes(list[20..24].try_into().unwrap()), 0);
        assert_eq!(u32::from_le_bytes(list[24..28].try_into().unwrap()), 20);
        assert_eq!(&list[28..44], &[7; 16]);
        assert_eq!(&list[44..], b"DER!");
    }

    #[test]
    fn the_x509_type_guid_is_efi_cert_x509() {
        // a5c059a1-94e4-4aa7-87b5-ab155c2bf072, mixed-endian.
        assert_eq!(&CERT_X509[..4], &0xa5c0_59a1u32.to_le_bytes());
        assert_eq!(&CERT_X509[4..6], &0x94e4u16.to_le_bytes());
        assert_eq!(&CERT_X509[6..8], &0x4aa7u16.to_le_bytes());
        assert_eq!(
            &CERT_X509[8..],
            &[0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72]
        );
    }
}
