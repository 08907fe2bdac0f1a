//! `airlock keygen --builder | --release NAME`: the keys of the trust
//! chain. Secret keys are written 0600 and never overwritten.

use std::path::PathBuf;

use crate::exit::Exit;
use crate::shared::{key_password, say};

/// Make a builder key (provenance) or a release approver's key (manifest).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["builder", "release"])))]
pub struct Args {
    /// A builder key: ECDSA P-256 in cosign's key format (NAME.key, NAME.pub);
    /// it signs the provenance of what this machine builds.
    #[arg(long)]
    builder: bool,
    /// A release approver's OpenPGP key, named NAME (NAME.key, NAME.asc,
    /// NAME.rev); it signs manifests with `airlock sign`.
    #[arg(long, value_name = "NAME")]
    release: Option<String>,
    /// The approver's user id, e.g. "Ada Lovelace <ada@example.org>"
    /// [default: NAME].
    #[arg(long, value_name = "USERID", requires = "release")]
    user_id: Option<String>,
    /// How long a release key is valid, in days. Approvers re-key after it.
    #[arg(long, default_value_t = 730, value_name = "DAYS")]
    valid_days: u64,
    /// Where the files go.
    #[arg(long, default_value = "keys", value_name = "DIR")]
    out: PathBuf,
    /// File name of a builder key (without extension).
    #[arg(long, default_value = "builder", value_name = "NAME")]
    name: String,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let password = key_password()?;
        let generated = if self.builder {
            if password.is_none() {
                say(
                    "AIRLOCK_KEY_PASSWORD is not set: the builder key is encrypted with an empty password",
                );
            }
            airlock_release::keys::generate_builder(
                &self.out,
                &self.name,
                password.as_deref().unwrap_or(b""),
            )?
        } else {
            let name = self.release.clone().expect("clap requires one of the two");
            if self.valid_days == 0 {
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
                std::time::Duration::from_secs(self.valid_days * 86400),
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
