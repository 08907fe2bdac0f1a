//! The `airlock` command: a thin shell over the libraries. Each subcommand is
//! a module in `commands/` with an `Args::run()`.

mod commands;
mod exit;
mod output;
mod shared;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

/// Reproducible, signed, sovereign OS images from a recipe and a lock.
#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit codes: 0 success; 1 verification or build failure (bad signature, digest \
                  mismatch, unsatisfiable request, stale lock, missing inputs offline); 2 usage \
                  or I/O error (bad arguments, invalid recipe, unreadable file, unreachable mirror)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve a recipe against the archive and write its lock file.
    Lock(commands::lock::Args),
    /// Download every input a lock pins into the store.
    Fetch(commands::fetch::Args),
    /// Build the image a recipe and its lock describe (pure, reproducible).
    Build(commands::build::Args),
    /// Boot a built image, or a verified bundle, in QEMU with its serial
    /// console on this terminal.
    Boot(commands::boot::Args),
    /// Make a builder key or a release approver's key.
    Keygen(commands::keygen::Args),
    /// Write a transfer bundle from an image folder.
    Export(commands::export::Args),
    /// Add an approver's signature to a bundle.
    Sign(commands::sign::Args),
    /// Sign an image's systemd-boot and UKI with a Secure Boot db key.
    SignBoot(commands::sign_boot::Args),
    /// Verify a bundle offline against this host's keys, state and policy.
    Verify(commands::verify::Args),
    /// Write the disk image of a verified bundle (raw for dd, or qcow2).
    DiskImage(commands::disk_image::Args),
    /// Install a verified bundle onto a disk (a host's, or a disk image
    /// file): GPT, EFI system partition, slot A, empty slot B, /var.
    Install(commands::install::Args),
    /// Boot an image in QEMU and run the cases of a test file against it
    /// (JUnit XML and JSON for CI).
    Test(commands::test::Args),
    /// Show what changed between two releases.
    Diff(commands::diff::Args),
    /// Rebuild a verified bundle's image from its own sources, offline, and
    /// compare every artifact with what was signed.
    Rebuild(commands::rebuild::Args),
    /// Inspect the store.
    #[command(subcommand)]
    Store(commands::store::Command),
    /// Remove store entries that no given lock references.
    Gc(commands::gc::Args),
    /// Check or export an agent runtime's signed action log, offline.
    #[command(subcommand)]
    Audit(commands::audit::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
    /// What QEMU runs for each connection a guest under `airlock test`
    /// opens to a listener (internal).
    #[command(name = "__relay", hide = true)]
    Relay {
        /// The listener's address.
        address: String,
    },
}

fn main() -> std::process::ExitCode {
    let parsed = <Cli as clap::CommandFactory>::command()
        .version(version())
        .try_get_matches()
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    let result = match cli.command {
        Command::Lock(args) => args.run(),
        Command::Fetch(args) => args.run(),
        Command::Build(args) => args.run(),
        Command::Boot(args) => args.run(),
        Command::Keygen(args) => args.run(),
        Command::Export(args) => args.run(),
        Command::Sign(args) => args.run(),
        Command::SignBoot(args) => args.run(),
        Command::Verify(args) => args.run(),
        Command::DiskImage(args) => args.run(),
        Command::Install(args) => args.run(),
        Command::Test(args) => args.run(),
        Command::Relay { address } => commands::test::relay(&address),
        Command::Diff(args) => args.run(),
        Command::Rebuild(args) => args.run(),
        Command::Store(command) => command.run(),
        Command::Gc(args) => args.run(),
        Command::Audit(command) => command.run(),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "airlock", &mut std::io::stdout());
            Ok(Exit::Ok)
        }
        Command::Man => clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
            .render(&mut std::io::stdout())
            .map(|()| Exit::Ok)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("error: {}", render(&error));
            exit::classify(&error).into()
        }
    }
}

/// What `--version` prints: the version and the sha256 of this binary, the
/// digest the provenance records and `cargo xtask release` reproduces. The
/// binary is hashed only when the version was asked for.
fn version() -> &'static str {
    let asked = std::env::args_os()
        .skip(1)
        .any(|arg| arg == "--version" || arg == "-V");
    if !asked {
        return env!("CARGO_PKG_VERSION");
    }
    let digest = shared::self_digest().unwrap_or_else(|error| format!("unknown: {error:#}"));
    Box::leak(format!("{} (sha256 {digest})", env!("CARGO_PKG_VERSION")).into_boxed_str())
}

/// The error and its causes, joined by ": ", without repeating a cause the
/// message before it already ends with (library errors often show their
/// source in their own message).
fn render(error: &anyhow::Error) -> String {
    let mut message = String::new();
    let mut last = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !last.is_empty() && last.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
        last = text;
    }
    message
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_already_in_a_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(airlock_recipe::RecipeError::Read {
            file: "r.toml".into(),
            source: io,
        })
        .context("building r.toml");
        assert_eq!(
            super::render(&error),
            "building r.toml: r.toml: cannot read recipe: no such file"
        );
    }
}
