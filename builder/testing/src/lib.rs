//! `airlock test`: a test file (TOML, [`spec`]) names machines and cases;
//! [`run`] boots the image for each machine under QEMU, unchanged, with
//! the command channel attached from the kernel command line and a
//! user-mode network that reaches nothing but the listeners the file
//! declares, runs the cases in order, and [`report`] turns the results
//! into a summary, JUnit XML and JSON. The file format is documented in
//! docs/testing.md.

mod checks;
mod host;
pub mod net;
pub mod report;
pub mod run;
pub mod spec;

pub use run::{CaseResult, Settings, Verdict};
pub use spec::{Plan, SpecError};
