//! Booting a built image in QEMU: direct kernel boot with the image's
//! kernel, initrd and command line (which carries the dm-verity root hash),
//! the EROFS root and its hash tree as read-only virtio disks, and an
//! optional writable data disk for /var; or, with [`Options::uefi`], the
//! disk image through UEFI firmware as a host boots it ([`uefi`]). TCG
//! unless KVM is asked for and usable. Used by `airlock boot` and by the
//! qemu-tests harness.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

mod console;
pub mod machine;
pub mod uefi;

pub use console::{ConsoleLog, Waited, strip_escapes};

use airlock_format::names::image as names;
use airlock_format::report;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// Why an image cannot be booted.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The folder is not a built image, or misses an artifact.
    #[error("{dir}: {message}")]
    NotAnImage {
        /// The folder.
        dir: PathBuf,
        /// What is missing.
        message: String,
    },
    /// KVM was asked for but does not work here.
    #[error("KVM was asked for, but /dev/kvm cannot be opened ({0}); boot without --kvm (TCG)")]
    NoKvm(std::io::Error),
    /// A file could not be made or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The address in the user-mode network whose ports lead to
/// [`Options::guest_forward`]'s commands.
pub const GUEST_FORWARD_ADDRESS: &str = "10.0.2.100";

/// What booting needs from a transfer bundle: (bundle path, the name an
/// image folder gives it).
pub fn bundle_files() -> Vec<(String, &'static str)> {
    let mut files = vec![(
        airlock_format::names::bundle::REPORT.to_owned(),
        names::REPORT,
    )];
    files.extend(names::BOOT.iter().map(|name| {
        (
            format!("{}/{name}", airlock_format::names::bundle::ARTIFACTS),
            *name,
        )
    }));
    files
}

/// A built image folder, checked to hold what booting needs.
#[derive(Clone, Debug)]
pub struct Image {
    /// The folder.
    pub dir: PathBuf,
    /// Image name.
    pub name: String,
    /// Release.
    pub version: u64,
    /// The kernel command line from the build report.
    pub cmdline: String,
    /// The disk image, when the image has one.
    pub disk: Option<report::Disk>,
}

impl Image {
    /// Reads `dir/build-report.json` and checks the artifacts exist.
    pub fn open(dir: &Path) -> Result<Image, BootError> {
        let not = |message: String| BootError::NotAnImage {
            dir: dir.to_owned(),
            message,
        };
        let text = std::fs::read(dir.join(report::FILE)).map_err(|e| {
            not(format!(
                "no {} ({e}); is this an image folder from `airlock build`?",
                report::FILE
            ))
        })?;
        let report =
            report::Report::parse(&text).map_err(|e| not(format!("{}: {e}", report::FILE)))?;
        let cmdline = report.cmdline.ok_or_else(|| {
            not("the image has no kernel command line: build it with a [kernel] and \"erofs\" in [output] formats".to_owned())
        })?;
        for artifact in names::BOOT {
            if !dir.join(artifact).is_file() {
                return Err(not(format!("{artifact} is missing")));
            }
        }
        Ok(Image {
            dir: dir.to_owned(),
            name: report.name,
            version: report.version,
            cmdline,
            disk: report.disk,
        })
    }
}

/// Where the serial console goes.
#[derive(Clone, Debug)]
pub enum Console {
    /// This terminal (QEMU's -nographic; Ctrl-A X quits).
    Terminal,
    /// A file (for tests).
    File(PathBuf),
}

/// How QEMU is run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Use KVM (checked first).
    pub kvm: bool,
    /// A writable data disk for /var (raw; created sparse when missing).
    pub data: Option<PathBuf>,
    /// Size of a data disk that has to be created.
    pub data_size: u64,
    /// A root image to use instead of the image's root.erofs (tests use
    /// this to boot a corrupted copy with the original hash tree).
    pub root: Option<PathBuf>,
    /// The serial console.
    pub console: Console,
    /// A unix socket for a virtio-serial port named `airlock.test` (the
    /// test channel; only test images listen on it).
    pub channel: Option<PathBuf>,
    /// Start the guest's side of the channel from the kernel command line
    /// ([`machine::attach_words`]), for images that do not carry it: a
    /// direct boot of the production image, unchanged.
    pub attach_channel: bool,
    /// Cut the user-mode network off from the host and the world
    /// (`restrict=on`): the guest reaches only [`Options::guest_forward`]
    /// and is reached only through [`Options::forward`]. Attaches the
    /// network.
    pub restrict: bool,
    /// Connections the guest opens to an address in its network (such as
    /// [`GUEST_FORWARD_ADDRESS`]:PORT), each handed to a new run of the
    /// command (its stdin and stdout are the connection): (address,
    /// command). Attaches the network.
    pub guest_forward: Vec<(std::net::SocketAddrV4, String)>,
    /// Attach QEMU's user-mode network: the guest is 10.0.2.15, and
    /// 10.0.2.2 is the host's loopback (a connection to 10.0.2.2:PORT
    /// reaches a listener on the host's 127.0.0.1:PORT).
    pub network: bool,
    /// Attach the user-mode network and write its every packet to this pcap
    /// file.
    pub network_dump: Option<PathBuf>,
    /// Words added to the kernel command line.
    pub extra_cmdline: Vec<String>,
    /// TCP ports of the host's loopback forwarded into the guest through
    /// the user-mode network: (host port, guest port). Attaches the
    /// network.
    pub forward: Vec<(u16, u16)>,
    /// Read-only disks attached after the others, as removable media would
    /// be (an update's USB stick): /dev/vdb on from a UEFI boot.
    pub media: Vec<PathBuf>,
    /// Boot the disk image through UEFI firmware instead of the kernel
    /// directly (`data`, `root` and `extra_cmdline` do not apply: the disk
    /// holds /var, and the command line is the one sealed in the UKI).
    pub uefi: Option<uefi::Uefi>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memory_mib: 1024,
            cpus: 2,
            kvm: false,
            data: None,
            data_size: 1 << 30,
            root: None,
            console: Console::Terminal,
            channel: None,
            network: false,
            network_dump: None,
            extra_cmdline: Vec::new(),
            forward: Vec::new(),
            attach_channel: false,
            restrict: false,
            guest_forward: Vec::new(),
            media: Vec::new(),
            uefi: None,
        }
    }
}

/// Whether /dev/kvm can be opened for reading and writing.
pub fn kvm_usable() -> Result<(), std::io::Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
}

/// Makes a sparse raw disk of `size` bytes unless `path` exists.
pub fn ensure_data_disk(path: &Path, size: u64) -> Result<bool, BootError> {
    if path.exists() {
        return Ok(false);
    }
    let io = |source| BootError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create_new(path).map_err(io)?;
    file.set_len(size).map_err(io)?;
    Ok(true)
}

fn drive(path: &Path, readonly: bool) -> String {
    // QEMU's option syntax doubles commas inside values.
    let file = path.display().to_string().replace(',', ",,");
    format!(
        "file={file},format=raw,if=virtio,cache=unsafe{}",
        if readonly { ",readonly=on" } else { "" }
    )
}

/// The QEMU command for `image` (not started). The disks appear in the
/// guest as /dev/vda (root), /dev/vdb (hash tree), /dev/vdc (data), which
/// is what the initrd expects.
pub fn command(image: &Image, options: &Options) -> Result<Command, BootError> {
    if options.kvm {
        kvm_usable().map_err(BootError::NoKvm)?;
    }
    let mut command = Command::new(QEMU);
    let accel = if options.kvm { "kvm" } else { "tcg" };
    // Secure Boot's firmware keeps its variables in SMM.
    let smm = if options.uefi.as_ref().is_some_and(|u| u.secure) {
        ",smm=on"
    } else {
        ""
    };
    command
        .args(["-machine", &format!("q35,accel={accel}{smm}")])
        .args(["-cpu", if options.kvm { "host" } else { "max" }])
        .args(["-m", &options.memory_mib.to_string()])
        .args(["-smp", &options.cpus.to_string()])
        .args(["-no-reboot", "-nodefaults", "-no-user-config"]);
    match &options.uefi {
        Some(firmware) => {
            if image.disk.is_none() {
                return Err(BootError::NotAnImage {
                    dir: image.dir.clone(),
                    message: "the image has no disk image: add \"disk\" to [output] formats"
                        .to_owned(),
                });
            }
            if options.data.is_some()
                || options.root.is_some()
                || !options.extra_cmdline.is_empty()
                || options.attach_channel
            {
                return Err(BootError::NotAnImage {
                    dir: image.dir.clone(),
                    message: "a UEFI boot takes /var from the disk and the command line from the UKI: no data disk, root or extra command line".to_owned(),
                });
            }
            command.args(uefi::args(firmware));
        }
        None => direct(image, options, &mut command)?,
    }
    for media in &options.media {
        command.args(["-drive", &drive(media, true)]);
    }
    match &options.console {
        Console::Terminal => {
            command.args(["-nographic", "-serial", "mon:stdio"]);
        }
        Console::File(path) => {
            command.args(["-display", "none", "-serial"]);
            command.arg(format!("file:{}", path.display()));
        }
    }
    if let Some(socket) = &options.channel {
        command
            .arg("-chardev")
            .arg(format!(
                "socket,id=airlock-test,path={},server=on,wait=off",
                socket.display().to_string().replace(',', ",,")
            ))
            .args(["-device", "virtio-serial-pci"])
            .args([
                "-device",
                "virtserialport,chardev=airlock-test,name=airlock.test",
            ]);
    }
    if options.network
        || options.network_dump.is_some()
        || !options.forward.is_empty()
        || options.restrict
        || !options.guest_forward.is_empty()
    {
        let mut netdev = "user,id=net0".to_owned();
        if options.restrict {
            netdev.push_str(",restrict=on");
        }
        for (host, guest) in &options.forward {
            netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        for (address, run) in &options.guest_forward {
            netdev.push_str(&format!(
                ",guestfwd=tcp:{address}-cmd:{}",
                run.replace(',', ",,")
            ));
        }
        command
            .arg("-netdev")
            .arg(netdev)
            .args(["-device", "virtio-net-pci,netdev=net0"]);
        if let Some(pcap) = &options.network_dump {
            command.arg("-object").arg(format!(
                "filter-dump,id=dump0,netdev=net0,file={}",
                pcap.display().to_string().replace(',', ",,")
            ));
        }
    } else {
        command.args(["-nic", "none"]);
    }
    Ok(command)
}

/// Direct kernel boot: the kernel, the initrd, the command line, and the
/// disks in the order the initrd expects.
fn direct(image: &Image, options: &Options, command: &mut Command) -> Result<(), BootError> {
    if let Some(data) = &options.data {
        ensure_data_disk(data, options.data_size)?;
    }
    command
        .arg("-kernel")
        .arg(image.dir.join(names::KERNEL))
        .arg("-initrd")
        .arg(image.dir.join(names::INITRD));
    let mut cmdline = image.cmdline.clone();
    let attached = if options.attach_channel && options.channel.is_some() {
        machine::attach_words()
    } else {
        Vec::new()
    };
    for word in options.extra_cmdline.iter().chain(&attached) {
        cmdline.push(' ');
        cmdline.push_str(word);
    }
    // The guest powers off instead of hanging on a panic.
    cmdline.push_str(" panic=-1");
    command.args(["-append", &cmdline]);
    let root = options
        .root
        .clone()
        .unwrap_or_else(|| image.dir.join(names::EROFS));
    command.args(["-drive", &drive(&root, true)]);
    command.args(["-drive", &drive(&image.dir.join(names::VERITY), true)]);
    if let Some(data) = &options.data {
        command.args(["-drive", &drive(data, false)]);
    }
    Ok(())
}

/// Packets in a pcap file written by QEMU's filter-dump: (captured length,
/// bytes) of each. Errors on a malformed file.
pub fn pcap_packets(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.len() < 24 {
        return Err("shorter than a pcap header".to_owned());
    }
    let magic = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let little = match magic {
        0xa1b2_c3d4 => true,
        0xd4c3_b2a1 => false,
        other => return Err(format!("not a pcap file (magic {other:#x})")),
    };
    let read = |at: usize| -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        })
    };
    let mut packets = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let captured = read(at + 8).ok_or("truncated record header")? as usize;
        let start = at + 16;
        let data = bytes
            .get(start..start + captured)
            .ok_or("truncated packet")?;
        packets.push(data.to_vec());
        at = start + captured;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_gives_the_boot_its_report_and_the_four_boot_artifacts() {
        let files = bundle_files();
        assert_eq!(
            files[0],
            ("build-report.json".to_owned(), "build-report.json")
        );
        let artifacts: Vec<(&str, &str)> =
            files[1..].iter().map(|(p, n)| (p.as_str(), *n)).collect();
        assert_eq!(
            artifacts,
            [
                ("artifacts/vmlinuz", "vmlinuz"),
                ("artifacts/initrd.img", "initrd.img"),
                ("artifacts/root.erofs", "root.erofs"),
                ("artifacts/root.verity", "root.verity"),
            ]
        );
    }

    #[test]
    fn command_has_the_disks_in_the_order_the_initrd_expects() {
        let dir = tempfile::tempdir().unwrap();
        for artifact in ["vmlinuz", "initrd.img", "root.erofs", "root.verity"] {
            std::fs::write(dir.path().join(artifact), b"x").unwrap();
        }
        let report = report::Report {
            schema: report::SCHEMA,
            name: "t".into(),
            version: 2,
            epoch: 0,
            inputs: String::new(),
            recipe: String::new(),
            lock: String::new(),
            airlock: String::new(),
            packages: 0,
            artifacts: Vec::new(),
            verity: None,
            kernel: None,
            cmdline: Some("console=ttyS0 airlock.roothash=ab".into()),
            ostree_commit: None,
            ostree_branch: None,
            notes: Vec::new(),
            privileges: Vec::new(),
            first_boot: Vec::new(),
            disk: None,
        };
        std::fs::write(dir.path().join(report::FILE), report.to_json()).unwrap();
        let image = Image::open(dir.path()).unwrap();
        let data = dir.path().join("data,1.img");
        let options = Options {
            data: Some(data.clone()),
            data_size: 4096,
            ..Options::default()
        };
        let command = command(&image, &options).unwrap();
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let drives: Vec<&String> = args
            .iter()
            .zip(args.iter().skip(1))
            .filter(|(flag, _)| *flag == "-drive")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(drives.len(), 3);
        assert!(drives[0].contains("root.erofs") && drives[0].ends_with("readonly=on"));
        assert!(drives[1].contains("root.verity") && drives[1].ends_with("readonly=on"));
        assert!(drives[2].contains("data,,1.img") && !drives[2].contains("readonly"));
        assert!(args.contains(&"q35,accel=tcg".to_owned()));
        assert!(
            args.iter()
                .any(|a| a.ends_with("airlock.roothash=ab panic=-1"))
        );
        assert_eq!(
            std::fs::metadata(&data).unwrap().len(),
            4096,
            "sparse data disk made"
        );
        assert!(args.contains(&"none".to_owned()), "no network unless asked");
        let forwarded = Options {
            forward: vec![(2222, 22)],
            ..Options::default()
        };
        let args: Vec<String> = super::command(&image, &forwarded)
            .unwrap()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.contains(&"user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22".to_owned()),
            "{args:?}"
        );
    }

    #[test]
    fn a_folder_without_a_report_is_not_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let error = Image::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no build-report.json"), "{error}");
    }

    #[test]
    fn pcap_records_are_counted() {
        let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1];
        file.extend_from_slice(&[0; 20]);
        for length in [3u32, 1] {
            file.extend_from_slice(&[0; 8]);
            file.extend_from_slice(&length.to_le_bytes());
            file.extend_from_slice(&length.to_le_bytes());
            file.extend(std::iter::repeat_n(7u8, length as usize));
        }
        assert_eq!(pcap_packets(&file).unwrap(), vec![vec![7; 3], vec![7]]);
        assert!(pcap_packets(&file[..file.len() - 1]).is_err());
        assert!(pcap_packets(b"nope").is_err());
    }
}
