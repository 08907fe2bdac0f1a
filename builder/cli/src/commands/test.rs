//! `airlock test RECIPE|IMAGE_DIR|BUNDLE`: the cases of a test file, run
//! against the image booted in QEMU (see docs/testing.md).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use airlock_testing::report;
use anyhow::Context;

use crate::exit::Exit;
use crate::shared::{MirrorArgs, StoreArgs, say};

/// Boot an image in QEMU and run the cases of a test file against it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A recipe (built first, as `airlock build` would), an image folder,
    /// or a transfer bundle (verified first with --trust).
    input: PathBuf,
    /// The test file [default for a recipe DIR/NAME.toml: DIR/tests/NAME.toml].
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// Write the results as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Machines run at once (each boots its own QEMU; under TCG each wants
    /// a core or two).
    #[arg(long, short = 'j', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Keep the serial console, the guest's journal, the network dump and
    /// the cases' output of every machine with a failed case, in
    /// DIR/MACHINE/.
    #[arg(long, value_name = "DIR")]
    keep_failed: Option<PathBuf>,
    /// Use KVM instead of TCG.
    #[arg(long)]
    kvm: bool,
    /// Boot the image's disk image through UEFI firmware (OVMF) as a host
    /// does, instead of the kernel directly. Its command line is sealed in
    /// the unified kernel image, so the test channel cannot be attached
    /// from outside: only images that carry it themselves (test images)
    /// can be tested this way.
    #[arg(long)]
    uefi: bool,
    /// With a recipe: where image folders go.
    #[arg(long, short = 'o', default_value = "images", value_name = "DIR")]
    output: PathBuf,
    /// With a recipe: use no network, every input must be in the store.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    trust: crate::commands::verify::TrustArgs,
    #[command(flatten)]
    mirror: MirrorArgs,
    #[command(flatten)]
    store: StoreArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<Exit> {
        let is_recipe = self.input.extension().is_some_and(|e| e == "toml") && self.input.is_file();
        let tests = match (&self.tests, is_recipe) {
            (Some(tests), _) => tests.clone(),
            (None, true) => default_tests(&self.input),
            (None, false) => anyhow::bail!(
                "{}: name the test file with --tests FILE (only a recipe has a default)",
                self.input.display()
            ),
        };
        let plan = airlock_testing::spec::load(&tests)?;
        let mut _assembled = None;
        let dir = if is_recipe {
            self.build()?
        } else if crate::commands::boot::is_bundle(&self.input) {
            let (dir, temp) =
                crate::commands::boot::consume_bundle(&self.input, &self.trust, false, false)?;
            _assembled = Some(temp);
            dir
        } else {
            self.input.clone()
        };
        let image = airlock_boot::Image::open(&dir)?;
        if self.kvm {
            airlock_boot::kvm_usable().map_err(airlock_boot::BootError::NoKvm)?;
        }
        ctrlc::set_handler(|| {
            airlock_boot::machine::kill_all();
            eprintln!("\nairlock: interrupted; every machine was stopped");
            std::process::exit(130);
        })
        .context("handling Ctrl-C")?;
        let relay = std::env::current_exe().context("finding this airlock binary")?;
        let settings = airlock_testing::Settings {
            jobs: usize::from(self.jobs),
            kvm: self.kvm,
            keep_failed: self.keep_failed.clone(),
            relay: vec![relay.display().to_string(), RELAY.to_owned()],
            uefi: self
                .uefi
                .then(|| PathBuf::from(airlock_boot::uefi::OVMF_DIR)),
            base: tests
                .parent()
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    }
                })
                .unwrap_or(Path::new("."))
                .to_owned(),
        };
        say(&format!(
            "testing {} {}{} with {}: {} cases on {} machines, {} at a time, under {}",
            image.name,
            image.version,
            if self.uefi { " (UEFI)" } else { "" },
            tests.display(),
            plan.case_count(),
            plan.machines.len(),
            self.jobs,
            if self.kvm { "KVM" } else { "TCG" },
        ));
        let started = std::time::Instant::now();
        let results = airlock_testing::run::run(&image, &plan, &settings, &|result| {
            eprintln!("{}", report::line(result));
        });
        let (passed, failed, errors) = report::counts(&results);
        let suite = tests
            .file_stem()
            .map_or("tests".to_owned(), |s| s.to_string_lossy().into_owned());
        if let Some(junit) = &self.junit {
            std::fs::write(junit, report::junit(&suite, &results))
                .with_context(|| format!("writing {}", junit.display()))?;
        }
        if self.json {
            let mut stdout = std::io::stdout();
            writeln!(stdout, "{}", report::json(&results))?;
        }
        say(&format!(
            "{passed} passed, {failed} failed, {errors} could not be checked, in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        if failed + errors > 0 {
            if let Some(keep) = &self.keep_failed {
                say(&format!(
                    "the failed machines' logs are in {}",
                    keep.display()
                ));
            }
            return Err(crate::exit::Failure(format!(
                "{} of {} cases did not pass",
                failed + errors,
                results.len()
            ))
            .into());
        }
        Ok(Exit::Ok)
    }

    fn build(&self) -> anyhow::Result<PathBuf> {
        let build = crate::commands::build::Args {
            recipe: self.input.clone(),
            output: self.output.clone(),
            offline: self.offline,
            jobs: 8,
            json: false,
            mirror: MirrorArgs {
                mirrors: self.mirror.mirrors.clone(),
            },
            store: StoreArgs {
                store: self.store.store.clone(),
            },
        };
        Ok(build.build()?.dir)
    }
}

/// The hidden subcommand QEMU runs for each connection the guest opens to
/// a listener.
pub const RELAY: &str = "__relay";

/// `airlock __relay ADDRESS`: copies stdin to a TCP connection to ADDRESS
/// and the connection to stdout (QEMU hands the guest's connection to a
/// listener over as stdin and stdout).
pub fn relay(address: &str) -> anyhow::Result<Exit> {
    let stream = std::net::TcpStream::connect(address)
        .with_context(|| format!("connecting to {address}"))?;
    let mut to_host = stream.try_clone()?;
    let mut from_host = stream;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_host);
        let _ = to_host.shutdown(std::net::Shutdown::Write);
    });
    // Done when the listener is: the guest's side needs no more.
    let _ = std::io::copy(&mut from_host, &mut std::io::stdout().lock());
    Ok(Exit::Ok)
}

/// QEMU's guest forwards for (guest address, host port) pairs: each
/// connection runs this binary's relay to 127.0.0.1:PORT.
pub fn relays(
    forwards: &[(std::net::SocketAddrV4, u16)],
) -> anyhow::Result<Vec<(std::net::SocketAddrV4, String)>> {
    if forwards.is_empty() {
        return Ok(Vec::new());
    }
    let exe = std::env::current_exe().context("finding this airlock binary")?;
    let exe = exe.display().to_string();
    if exe.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        anyhow::bail!("{exe}: QEMU cannot run a relay from a path with spaces or quotes");
    }
    Ok(forwards
        .iter()
        .map(|(guest, port)| (*guest, format!("{exe} {RELAY} 127.0.0.1:{port}")))
        .collect())
}

/// DIR/tests/NAME.toml for the recipe DIR/NAME.toml.
fn default_tests(recipe: &Path) -> PathBuf {
    let name = recipe.file_name().unwrap_or_default();
    recipe
        .parent()
        .unwrap_or(Path::new("."))
        .join("tests")
        .join(name)
}
