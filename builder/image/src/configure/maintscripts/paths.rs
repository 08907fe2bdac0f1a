//! Whose a file-system step's paths are: a module of airlock's (which then
//! does what the step would), the literal steps' ([`literal`]), or nobody's
//! (a gap).

use super::super::{certificates, defaults, literal};
use super::{Command, Verdict};

/// The module that writes `path` (absolute) itself, if one does.
pub(crate) fn writer(path: &str) -> Option<&'static str> {
    let relative = path.trim_start_matches('/');
    if matches!(
        relative,
        "etc/passwd" | "etc/group" | "etc/shadow" | "etc/gshadow"
    ) {
        Some("accounts")
    } else if matches!(
        relative,
        "etc/localtime" | "etc/localtime.dpkg-new" | "etc/timezone" | "etc/machine-id"
    ) {
        Some("system (time zone and identity)")
    } else if matches!(relative, "var/lib/ucf/hashfile" | "var/lib/ucf/registry") {
        Some("ucf")
    } else if matches!(relative, "etc/shells" | "var/lib/shells.state") {
        Some("shells (update-shells)")
    } else if certificates::covers(relative) {
        Some("certificates (update-ca-certificates)")
    } else if defaults::covers(relative) {
        Some("defaults (base-files' first-install table)")
    } else {
        None
    }
}

/// A literal file-system step (`mkdir`, `chown`, `echo … > FILE`, …): the
/// module's when every path it changes is one a module writes, done by
/// [`literal`] when it is exact, a gap when it is not.
pub(super) fn file_step(command: &Command, step: Result<literal::Op, String>) -> Verdict {
    // The step read already says what it changes; only a step that was
    // refused is read again for its paths.
    let targets: Vec<String> = match &step {
        Ok(op) => op.targets().into_iter().map(str::to_owned).collect(),
        Err(_) => literal::targets(command).unwrap_or_default(),
    };
    if let Some(module) = only_writer(&targets) {
        return Verdict::Native(module);
    }
    if let Some(why) = targets.iter().find_map(|p| left_to_the_initrd(p)) {
        return Verdict::Inert(why);
    }
    if scratch_only(&targets) {
        return Verdict::Inert(
            "on the script's own scratch files, which airlock removes once every step is done",
        );
    }
    if let Some((path, module)) = targets.iter().find_map(|p| writer(p).map(|m| (p, m))) {
        return Verdict::Unhandled(format!(
            "{path} is written by airlock's {module} module, and the step's other paths are not"
        ));
    }
    match step {
        Ok(literal::Op::Touch(paths)) if paths.is_empty() => {
            Verdict::Inert("only sets timestamps; every file of the image carries the build's time")
        }
        Ok(op) if op.at_runtime_only() => Verdict::Inert(
            "its paths are on a file system the image mounts fresh at boot (/run, /dev, …)",
        ),
        Ok(_) => Verdict::Native("literal (the script's own file-system step)"),
        Err(why) => Verdict::Unhandled(why),
    }
}

/// initramfs-tools' own configuration: airlock builds the initrd itself
/// and never reads it.
fn left_to_the_initrd(path: &str) -> Option<&'static str> {
    path.starts_with("/etc/initramfs-tools/").then_some(
        "initramfs-tools' configuration, which nothing reads: airlock builds the image's \
         initrd itself",
    )
}

/// Whether every path of `paths` (and there is one) is one of the script's
/// scratch files (`$(mktemp)`), which airlock removes once every step is
/// done.
pub(super) fn scratch_only(paths: &[String]) -> bool {
    !paths.is_empty()
        && paths
            .iter()
            .all(|p| p.starts_with(airlock_maintscript::SCRATCH))
}

/// The one module that writes every path of `paths`, if there is one.
pub(super) fn only_writer(paths: &[String]) -> Option<&'static str> {
    let mut modules = paths.iter().map(|p| writer(p));
    let first = modules.next()??;
    modules.all(|m| m == Some(first)).then_some(first)
}
