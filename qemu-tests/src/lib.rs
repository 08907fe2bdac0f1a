//! The boot-test harness: what the tests that need Rust around a guest
//! share. The machine itself (`airlock_boot::machine`: QEMU under TCG, its
//! serial console, the command channel) is airlock's, which `airlock test`
//! runs too; the test images here carry the channel as a unit
//! (`qemu-tests/recipes/test-channel.toml`), because UEFI boots cannot be
//! given it on the kernel command line.

pub mod oracle;
pub mod setup;

pub use airlock_boot::machine::{HarnessError, Machine, Outcome};
