//! `airlock boot IMAGE_DIR`: the image in QEMU, the serial console on this
//! terminal.

use std::path::PathBuf;

use airlock_boot::uefi::Uefi;
use airlock_boot::{Console, ConsoleLog, Image, Options, Waited};
use anyhow::Context;

use crate::exit::Exit;
use crate::shared::say;

/// Boot a built image in QEMU: direct kernel boot (dm-verity root), or with
/// --uefi its disk image through UEFI firmware, as a host boots it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image folder written by `airlock build` (images/NAME/VERSION-DIGEST),
    /// or a transfer bundle (directory or tar), which is verified first
    /// (--trust) and recorded in --state once verified.
    image: PathBuf,
    #[command(flatten)]
    trust: crate::commands::verify::TrustArgs,
    /// A writable disk for /var (raw; created sparse when missing). Without
    /// one, /var is a tmpfs and nothing persists. With --uefi: a folder for
    /// the machine's copy of the disk image and its firmware variables
    /// (made when missing, kept, so /var persists); without one they are
    /// made in a temporary folder and removed.
    #[arg(long, value_name = "FILE|DIR")]
    data: Option<PathBuf>,
    /// Boot the image's disk image (the "disk" format) through UEFI firmware
    /// (OVMF, from Debian's ovmf package): no kernel, initrd or command
    /// line from outside; systemd-boot on the disk starts the unified
    /// kernel image, whose command line is the only one.
    #[arg(long)]
    uefi: bool,
    /// With --uefi: enforce Secure Boot (OVMF's Secure Boot firmware) with
    /// the PK, KEK and db certificates of KEYS_DIR (from `airlock keygen
    /// --secure-boot`) enrolled, and boot the disk `airlock sign-boot` wrote
    /// (IMAGE_DIR/secure-boot/disk.raw). Enrolling needs virt-fw-vars
    /// (pip install virt-firmware) on PATH.
    #[arg(long, value_name = "KEYS_DIR", requires = "uefi")]
    secure_boot: Option<PathBuf>,
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
    /// Attach QEMU's user-mode network: the guest is 10.0.2.15 and reaches
    /// the host's loopback as 10.0.2.2 (and nothing else the host cannot).
    #[arg(long)]
    network: bool,
    /// Attach the user-mode network and write every packet to this pcap file.
    #[arg(long, value_name = "FILE")]
    net_dump: Option<PathBuf>,
    /// Connections the guest opens to GUEST (an IPv4 address and port in
    /// QEMU's 10.0.2.0/24, other than 10.0.2.2, such as 10.0.2.100:47180)
    /// go to the host's 127.0.0.1:HOST_PORT. Attaches the network;
    /// repeatable.
    #[arg(long, value_name = "GUEST=HOST_PORT", value_parser = parse_guest_forward)]
    guest_forward: Vec<(std::net::SocketAddrV4, u16)>,
    /// Run headless: print the console, and stop the guest (exit 0) as soon
    /// as it prints TEXT; fail if it powers off first or --timeout passes.
    /// For scripts and CI.
    #[arg(long, value_name = "TEXT")]
    until: Option<String>,
    /// With --until: how long to wait, in seconds.
    #[arg(
        long,
        default_value_t = 600,
        value_name = "SECONDS",
        requires = "until"
    )]
    timeout: u64,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let mut _assembled = None;
        let image = if is_bundle(&self.image) {
            let (dir, temp) = self.consume_bundle()?;
            _assembled = Some(temp);
            Image::open(&dir)?
        } else {
            Image::open(&self.image)?
        };
        let (uefi, _machine) = self.uefi(&image)?;
        let options = Options {
            memory_mib: self.memory,
            cpus: self.cpus,
            kvm: self.kvm,
            data: if uefi.is_some() {
                None
            } else {
                self.data.clone()
            },
            data_size: self.data_size << 20,
            console: Console::Terminal,
            network: self.network,
            network_dump: self.net_dump.clone(),
            guest_forward: crate::commands::test::relays(&self.guest_forward)?,
            uefi,
            ..Options::default()
        };
        if let Some(until) = &self.until {
            return self.run_until(&image, options, until);
        }
        let mut command = airlock_boot::command(&image, &options)?;
        say(&format!(
            "booting {} {} under {} ({} MiB, {} CPUs); /var is {}.",
            image.name,
            image.version,
            if self.kvm { "KVM" } else { "TCG" },
            self.memory,
            self.cpus,
            match (&options.uefi, &self.data) {
                (Some(uefi), _) => format!("on the disk image's copy {}", uefi.disk.display()),
                (None, Some(data)) => format!("on {}", data.display()),
                (None, None) => "a tmpfs".to_owned(),
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

impl Args {
    /// With --uefi: the firmware and the machine's writable copies (in
    /// --data, or a temporary folder returned to be kept while QEMU runs).
    fn uefi(
        &self,
        image: &Image,
    ) -> anyhow::Result<(Option<Uefi>, Option<airlock_store::workdir::WorkDir>)> {
        if !self.uefi {
            return Ok((None, None));
        }
        let Some(disk) = &image.disk else {
            anyhow::bail!(
                "{}: the image has no disk image: add \"disk\" to [output] formats",
                image.dir.display()
            );
        };
        let (dir, temp) = match &self.data {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("making {}", dir.display()))?;
                (dir.clone(), None)
            }
            None => {
                let temp = airlock_store::workdir::claim(&std::env::temp_dir(), "airlock-uefi-")?.0;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let firmware = std::path::Path::new(airlock_boot::uefi::OVMF_DIR);
        let uefi = match &self.secure_boot {
            None => Uefi::prepare(firmware, &image.dir.join(&disk.image.path), &dir)?,
            Some(keys) => {
                let signed = image
                    .dir
                    .join(airlock_format::names::image::SECURE_BOOT)
                    .join(airlock_format::names::image::DISK);
                if !signed.is_file() {
                    anyhow::bail!(
                        "{}: no signed disk image; sign it first with `airlock sign-boot {} --key db.key --cert db.crt`",
                        signed.display(),
                        image.dir.display()
                    );
                }
                Uefi::prepare_secure(
                    firmware,
                    &signed,
                    &dir,
                    keys,
                    std::path::Path::new("virt-fw-vars"),
                )?
            }
        };
        Ok((Some(uefi), temp))
    }

    /// Headless boot: the console goes to a file that is copied to stdout
    /// as it grows, until it shows `until`.
    fn run_until(&self, image: &Image, mut options: Options, until: &str) -> anyhow::Result<Exit> {
        use std::io::Write;
        use std::time::{Duration, Instant};
        let dir = airlock_store::workdir::claim(&std::env::temp_dir(), "airlock-boot-")?.0;
        let console = dir.path().join("console.log");
        std::fs::File::create(&console)?;
        options.console = Console::File(console.clone());
        let mut child = airlock_boot::command(image, &options)?
            .stdin(std::process::Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (Debian: apt-get install qemu-system-x86)",
                    airlock_boot::QEMU
                )
            })?;
        say(&format!(
            "booting {} {} headless under {}; waiting up to {} s for {until:?} on the console",
            image.name,
            image.version,
            if self.kvm { "KVM" } else { "TCG" },
            self.timeout
        ));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.timeout);
        let mut stdout = std::io::stdout();
        let waited =
            ConsoleLog::new(&console).wait_for(&mut child, &[until], deadline, &mut |bytes| {
                stdout.write_all(bytes)?;
                stdout.flush()
            })?;
        let outcome = match waited {
            Waited::Shown(_) => Ok(started.elapsed()),
            Waited::Exited(status) => Err(format!(
                "the guest stopped ({status}) before the console showed {until:?}"
            )),
            Waited::TimedOut => Err(format!(
                "the console did not show {until:?} within {} s",
                self.timeout
            )),
        };
        let _ = child.kill();
        let _ = child.wait();
        match outcome {
            Ok(elapsed) => {
                say(&format!(
                    "\nthe console showed {until:?} after {:.1} s; the guest was stopped",
                    elapsed.as_secs_f64()
                ));
                Ok(Exit::Ok)
            }
            Err(message) => Err(crate::exit::Failure(message).into()),
        }
    }
}

impl Args {
    fn consume_bundle(&self) -> anyhow::Result<(PathBuf, airlock_store::workdir::WorkDir)> {
        consume_bundle(
            &self.image,
            &self.trust,
            self.uefi,
            self.secure_boot.is_some(),
        )
    }
}

/// Verifies the bundle, copies what the boot needs into a private folder
/// (checking each byte against the verified manifest again, so a bundle
/// changed after verification is not booted), and records the release in
/// the host's state. The folder is an image folder.
pub(crate) fn consume_bundle(
    bundle: &std::path::Path,
    trust: &crate::commands::verify::TrustArgs,
    uefi: bool,
    secure_boot: bool,
) -> anyhow::Result<(PathBuf, airlock_store::workdir::WorkDir)> {
    let (opened, verified) = crate::commands::verify::verified_bundle(bundle, trust)?;
    let temp = airlock_store::workdir::claim(&std::env::temp_dir(), "airlock-boot-")?.0;
    if uefi {
        crate::commands::disk_image::assemble_verified(
            &opened.dir,
            &verified,
            temp.path(),
            secure_boot,
        )?;
    } else {
        match airlock_verify::consume::copy_verified(
            &opened.dir,
            &verified,
            &airlock_boot::bundle_files(),
            temp.path(),
        ) {
            Ok(()) => {}
            Err(airlock_verify::consume::ConsumeError::Missing(path)) => {
                anyhow::bail!("the bundle has no {path}: it was exported without an EROFS root")
            }
            Err(e @ airlock_verify::consume::ConsumeError::Changed(_)) => {
                return Err(crate::exit::Failure(e.to_string()).into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    crate::commands::verify::record_consumed(trust, &verified)?;
    Ok((temp.path().to_path_buf(), temp))
}

fn parse_guest_forward(text: &str) -> Result<(std::net::SocketAddrV4, u16), String> {
    let (guest, host) = text
        .split_once('=')
        .ok_or("expected GUEST_ADDRESS:PORT=HOST_PORT, e.g. 10.0.2.100:47180=47180")?;
    let guest: std::net::SocketAddrV4 = guest
        .parse()
        .map_err(|e| format!("{guest}: {e} (an IPv4 address and port)"))?;
    let host: u16 = host
        .parse()
        .map_err(|e| format!("{host}: {e} (a port on 127.0.0.1)"))?;
    if guest.ip().octets()[..3] != [10, 0, 2] || [2, 15].contains(&guest.ip().octets()[3]) {
        return Err(format!(
            "{guest}: the guest address must be in 10.0.2.0/24 and be neither QEMU's host (10.0.2.2) nor the guest (10.0.2.15)"
        ));
    }
    Ok((guest, host))
}

/// Whether `path` is a transfer bundle (a tar, or a folder with a
/// manifest) rather than an image folder.
pub(crate) fn is_bundle(path: &std::path::Path) -> bool {
    path.is_file() || path.join(airlock_verify::manifest::MANIFEST).is_file()
}
