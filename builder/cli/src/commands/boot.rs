//! `airlock boot IMAGE_DIR`: the image in QEMU, the serial console on this
//! terminal.

use std::path::PathBuf;

use airlock_boot::{Console, Image, Options};
use anyhow::Context;

use crate::exit::Exit;
use crate::shared::say;

/// Boot a built image in QEMU (direct kernel boot, dm-verity root).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image folder written by `airlock build` (images/NAME/VERSION-DIGEST).
    image: PathBuf,
    /// A writable disk for /var (raw; created sparse when missing). Without
    /// one, /var is a tmpfs and nothing persists.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Size of a data disk that has to be created, in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    data_size: u64,
    /// Guest memory in MiB.
    #[arg(long, short = 'm', default_value_t = 1024)]
    memory: u32,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Use KVM instead of TCG (only when /dev/kvm works; TCG is the default
    /// because KVM is not reliable everywhere).
    #[arg(long)]
    kvm: bool,
    /// Attach a user-mode network and write every packet to this pcap file.
    #[arg(long, value_name = "FILE")]
    net_dump: Option<PathBuf>,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let image = Image::open(&self.image)?;
        let options = Options {
            memory_mib: self.memory,
            cpus: self.cpus,
            kvm: self.kvm,
            data: self.data.clone(),
            data_size: self.data_size << 20,
            console: Console::Terminal,
            network_dump: self.net_dump.clone(),
            ..Options::default()
        };
        let mut command = airlock_boot::command(&image, &options)?;
        say(&format!(
            "booting {} {} under {} ({} MiB, {} CPUs); /var is {}.",
            image.name,
            image.version,
            if self.kvm { "KVM" } else { "TCG" },
            self.memory,
            self.cpus,
            match &self.data {
                Some(data) => format!("on {}", data.display()),
                None => "a tmpfs".to_owned(),
            }
        ));
        say(
            "The serial console follows; quit with Ctrl-A X, or power the guest off. Every \
             account of a production image is locked, so it offers no login. Test images \
             (built with qemu-tests/recipes/test-channel.toml) log root in on the serial \
             console and carry the test harness's command channel.",
        );
        let status = command.status().with_context(|| {
            format!(
                "starting {} (Debian: apt-get install qemu-system-x86)",
                airlock_boot::QEMU
            )
        })?;
        if status.success() {
            say("the guest powered off");
            Ok(Exit::Ok)
        } else {
            anyhow::bail!("{} exited with {status}", airlock_boot::QEMU)
        }
    }
}
