//! A build report written by `airlock build` before the report had a type
//! (the example agent node's, from `cargo xtask demo`) reads with the type
//! and is written back to the same bytes: giving the report a type changed
//! nothing in image folders.

use airlock_format::report::Report;

#[test]
fn a_report_from_before_the_type_reads_and_writes_back_byte_for_byte() {
    let bytes = include_bytes!("data/agent-node.build-report.json");
    let report = Report::parse(bytes).unwrap();
    assert_eq!(report.name, "agent-node");
    assert!(report.verity.is_some() && report.cmdline.is_some());
    assert!(report.artifact("rootfs.tar.zst").is_some());
    assert!(!report.privileges.is_empty());
    assert_eq!(report.to_json().as_bytes(), bytes);
}
