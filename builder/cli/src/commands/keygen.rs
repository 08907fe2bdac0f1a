//! `airlock keygen --builder | --release NAME | --secure-boot`: the keys of
//! the trust chain. Secret keys are written 0600 and never overwritten.

use std::path::PathBuf;

use crate::exit::Exit;
use crate::shared::{key_password, say};

/// Make a builder key (provenance), a release approver's key (manifest) or
/// a Secure Boot key set (what the host's firmware boots).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["builder", "release", "secure_boot"])))]
pub struct Args {
    /// A builder key: ECDSA P-256 in cosign's key format (NAME.key, NAME.pub);
    /// it signs the provenance of what this machine builds.
    #[arg(long)]
    builder: bool,
    /// A release approver's OpenPGP key, named NAME (NAME.key, NAME.asc,
    /// NAME.rev); it signs manifests with `airlock sign`.
    #[arg(long, value_name = "NAME")]
    release: Option<String>,
    /// A Secure Boot key set in OUT/NAME (NAME defaults to secure-boot):
    /// PK, KEK and db, each an RSA-2048 key (.key), its X.509 certificate
    /// (.crt, .cer), an EFI signature list (.esl) and a signed enrolment
    /// update (.auth) for firmware setup, efi-updatevar or virt-fw-vars.
    /// db.key signs what boots (`airlock sign-boot`); keep PK.key and
    /// KEK.key offline. Needs openssl and efitools.
    #[arg(long)]
    secure_boot: bool,
    /// The approver's user id, e.g. "Ada Lovelace <ada@example.org>"
    /// [default: NAME]; with --secure-boot, the certificates' common name
    /// [default: airlock].
    #[arg(long, value_name = "USERID")]
    user_id: Option<String>,
    /// How long a release key (default 730) or a Secure Boot certificate
    /// (default 3650) is valid, in days.
    #[arg(long, value_name = "DAYS")]
    valid_days: Option<u64>,
    /// Where the files go.
    #[arg(long, default_value = "keys", value_name = "DIR")]
    out: PathBuf,
    /// File name of a builder key (without extension) [default: builder],
    /// or the folder of a Secure Boot key set [default: secure-boot].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        if self.secure_boot {
            return self.secure_boot();
        }
        if self.user_id.is_some() && self.release.is_none() {
            anyhow::bail!("--user-id is for --release and --secure-boot keys");
        }
        let valid_days = self.valid_days.unwrap_or(730);
        let password = key_password()?;
        let generated = if self.builder {
            if password.is_none() {
                say(
                    "AIRLOCK_KEY_PASSWORD is not set: the builder key is encrypted with an empty password",
                );
            }
            airlock_release::keys::generate_builder(
                &self.out,
                self.name.as_deref().unwrap_or("builder"),
                password.as_deref().unwrap_or(b""),
            )?
        } else {
            let name = self.release.clone().expect("clap requires one of the two");
            if valid_days == 0 {
                anyhow::bail!("--valid-days must be at least 1");
            }
            if password.is_none() {
                say(
                    "AIRLOCK_KEY_PASSWORD is not set: the secret key is not encrypted; keep it on removable media",
                );
            }
            airlock_release::keys::generate_release(
                &self.out,
                &name,
                self.user_id.as_deref().unwrap_or(&name),
                std::time::Duration::from_secs(valid_days * 86400),
                password.as_deref(),
            )?
        };
        say(&format!(
            "secret key: {} (keep it secret)\npublic key: {} (copy it into the hosts' trust directories)",
            generated.secret.display(),
            generated.public.display()
        ));
        if let Some(rev) = &generated.revocation {
            say(&format!("revocation certificate: {}", rev.display()));
        }
        say(&format!(
            "{}: {}",
            if self.builder {
                "key id"
            } else {
                "fingerprint"
            },
            generated.id
        ));
        #[allow(clippy::print_stdout)]
        {
            println!("{}", generated.id);
        }
        Ok(Exit::Ok)
    }
}

impl Args {
    fn secure_boot(&self) -> anyhow::Result<Exit> {
        let valid_days = self.valid_days.unwrap_or(3650);
        if valid_days == 0 {
            anyhow::bail!("--valid-days must be at least 1");
        }
        let dir = self.out.join(self.name.as_deref().unwrap_or("secure-boot"));
        let generated = airlock_release::secure_boot::generate(
            &dir,
            self.user_id.as_deref().unwrap_or("airlock"),
            valid_days,
        )?;
        say(&format!(
            "Secure Boot keys in {} (owner GUID {}), valid {valid_days} days:\n  \
             PK.key, KEK.key: keep offline; they only change what the firmware trusts\n  \
             db.key: signs systemd-boot and the UKI (airlock sign-boot); keep it apart from the builder key\n  \
             PK.auth, KEK.auth, db.auth (or the .crt files): enrol them in the host's firmware, PK last",
            generated.dir.display(),
            generated.owner
        ));
        Ok(Exit::Ok)
    }
}
