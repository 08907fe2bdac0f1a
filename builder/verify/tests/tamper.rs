//! The tamper matrix: every way the verifier says no, one row each, over a
//! bundle the fixture writes from scratch (no root, no mkfs, no network).
//! Each row changes one thing (the bundle after it was sealed, a stage
//! before a later seal vouches for it, or the host) and names the
//! rejection kind it must produce and a field of the rejection that shows
//! what was found. A test checks that every kind the verifier has is
//! produced by at least one row.

mod fixture;

use std::collections::BTreeSet;
use std::path::Path;

use airlock_verify::{Rejection, RejectionKind};
use fixture::{Host, Model, SPLIT, approvers, rejection, revoked};
use serde_json::{Value, json};

/// One tamper: a name, what it changes, the kind it must produce, and a
/// field of the rejection with its expected value.
struct Row {
    name: &'static str,
    change: fn(&mut Model, &mut Host),
    kind: &'static str,
    field: (&'static str, Value),
}

fn after(model: &mut Model, change: impl Fn(&Path) + 'static) {
    model.after.push(Box::new(change));
}

fn cdx(model: &mut Model, change: impl Fn(&mut Value) + 'static) {
    model.edit_cyclonedx.push(Box::new(change));
}

fn spdx(model: &mut Model, change: impl Fn(&mut Value) + 'static) {
    model.edit_spdx.push(Box::new(change));
}

fn spdx3(model: &mut Model, change: impl Fn(&mut Value) + 'static) {
    model.edit_spdx3.push(Box::new(change));
}

fn statement(model: &mut Model, change: impl Fn(&mut Value) + 'static) {
    model.edit_statement.push(Box::new(change));
}

fn envelope(model: &mut Model, change: impl Fn(&mut Value) + 'static) {
    model.edit_envelope.push(Box::new(change));
}

fn manifest(model: &mut Model, change: impl Fn(&mut Value) + 'static) {
    model.edit_manifest.push(Box::new(change));
}

fn zeros() -> String {
    "0".repeat(64)
}

/// Every row. Grouped by step, in the verifier's order.
fn rows() -> Vec<Row> {
    vec![
        // 1. Signatures.
        Row {
            name: "manifest.json removed",
            change: |m, _| {
                after(m, |d| {
                    std::fs::remove_file(d.join("manifest.json")).unwrap()
                })
            },
            kind: "no-manifest",
            field: ("kind", json!("no-manifest")),
        },
        Row {
            name: "signature file removed",
            change: |m, _| {
                after(m, |d| {
                    std::fs::remove_file(d.join("manifest.json.asc")).unwrap()
                })
            },
            kind: "unsigned",
            field: ("kind", json!("unsigned")),
        },
        Row {
            name: "signature file is not OpenPGP",
            change: |m, _| {
                after(m, |d| {
                    std::fs::write(d.join("manifest.json.asc"), b"\x01\x02garbage").unwrap()
                })
            },
            kind: "bad-signature-file",
            field: ("kind", json!("bad-signature-file")),
        },
        Row {
            name: "bytes appended to the signature file",
            change: |m, _| {
                after(m, |d| {
                    let path = d.join("manifest.json.asc");
                    let mut bytes = std::fs::read(&path).unwrap();
                    bytes.extend_from_slice(b"riding along");
                    std::fs::write(&path, bytes).unwrap();
                })
            },
            kind: "signature-file-extra-data",
            field: ("kind", json!("signature-file-extra-data")),
        },
        Row {
            name: "manifest changed after signing",
            change: |m, _| {
                after(m, |d| {
                    let path = d.join("manifest.json");
                    let text = std::fs::read_to_string(&path).unwrap();
                    std::fs::write(&path, text.replace("\"version\":7", "\"version\":8")).unwrap();
                })
            },
            kind: "bad-signature",
            field: ("kind", json!("bad-signature")),
        },
        Row {
            name: "an approver's certificate revoked",
            change: |_, h| h.release[1] = revoked(&approvers()["bob"]).strip_secret_key_material(),
            kind: "revoked-signer",
            field: ("have", json!(1)),
        },
        Row {
            name: "an approver's certificate expired before signing",
            change: |m, h| {
                h.release[1] = approvers()["dave"].clone();
                m.signers = vec!["alice", "dave"];
            },
            kind: "expired-signer",
            field: ("need", json!(2)),
        },
        Row {
            name: "signed by a key the host does not pin",
            change: |m, _| m.signers = vec!["alice", "eve"],
            kind: "untrusted-signer",
            field: ("have", json!(1)),
        },
        Row {
            name: "one approver signed twice",
            change: |m, _| m.signers = vec!["alice", "alice"],
            kind: "duplicate-signer",
            field: ("have", json!(1)),
        },
        Row {
            name: "one signature of two",
            change: |m, _| m.signers = vec!["carol"],
            kind: "below-threshold",
            field: ("have", json!(1)),
        },
        Row {
            name: "signed manifest of another format version",
            change: |m, _| manifest(m, |v| v["schema"] = json!(2)),
            kind: "malformed-manifest",
            field: ("kind", json!("malformed-manifest")),
        },
        // 2. Rollback and freeze.
        Row {
            name: "the host already accepted this version",
            change: |_, h| h.recorded = Some(7),
            kind: "rollback",
            field: ("recorded", json!(7)),
        },
        Row {
            name: "expired before the host's clock",
            change: |m, _| m.expires = "2026-05-01T00:00:00Z".to_owned(),
            kind: "expired",
            field: ("expires", json!("2026-05-01T00:00:00Z")),
        },
        // 3. Every byte.
        Row {
            name: "a listed file removed",
            change: |m, _| after(m, |d| std::fs::remove_file(d.join("lock.toml")).unwrap()),
            kind: "missing-file",
            field: ("path", json!("lock.toml")),
        },
        Row {
            name: "a file added",
            change: |m, _| {
                after(m, |d| {
                    std::fs::write(d.join("extra.sh"), b"#!/bin/sh\n").unwrap()
                })
            },
            kind: "unlisted-file",
            field: ("path", json!("extra.sh")),
        },
        Row {
            name: "a symlink added",
            change: |m, _| {
                after(m, |d| {
                    std::os::unix::fs::symlink("/etc/shadow", d.join("link")).unwrap()
                })
            },
            kind: "not-a-file",
            field: ("path", json!("link")),
        },
        Row {
            name: "a byte appended",
            change: |m, _| {
                after(m, |d| {
                    std::fs::write(d.join("lock.toml"), b"version = 1\n#").unwrap()
                })
            },
            kind: "size-mismatch",
            field: ("actual", json!(13)),
        },
        Row {
            name: "a byte flipped",
            change: |m, _| {
                after(m, |d| {
                    std::fs::write(d.join("lock.toml"), b"version = 2\n").unwrap()
                })
            },
            kind: "digest-mismatch",
            field: ("expected", json!(fixture::sha256(b"version = 1\n"))),
        },
        Row {
            name: "two chunks swapped",
            change: |m, _| {
                after(m, |d| {
                    let a = d.join(airlock_verify::manifest::chunk_path(SPLIT, 0));
                    let b = d.join(airlock_verify::manifest::chunk_path(SPLIT, 1));
                    let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
                    std::fs::write(&a, y).unwrap();
                    std::fs::write(&b, x).unwrap();
                })
            },
            kind: "chunks-swapped",
            field: ("belongs_at", json!(1)),
        },
        // 4. Provenance.
        Row {
            name: "the manifest names another provenance",
            change: |m, _| manifest(m, |v| v["provenance"] = json!(zeros())),
            kind: "provenance-digest",
            field: ("expected", json!(zeros())),
        },
        Row {
            name: "the envelope's payload is not base64",
            change: |m, _| envelope(m, |v| v["payload"] = json!("!!!")),
            kind: "provenance-envelope",
            field: ("kind", json!("provenance-envelope")),
        },
        Row {
            name: "the envelope holds another payload type",
            change: |m, _| envelope(m, |v| v["payloadType"] = json!("text/plain")),
            kind: "provenance-payload-type",
            field: ("actual", json!("text/plain")),
        },
        Row {
            name: "signed by another builder key",
            change: |m, _| m.builder_seed = 2,
            kind: "provenance-signature",
            field: ("signed_by", json!(["?"])),
        },
        Row {
            name: "the payload is not a statement",
            change: |m, _| statement(m, |v| *v = json!(["not", "a", "statement"])),
            kind: "provenance-statement",
            field: ("kind", json!("provenance-statement")),
        },
        Row {
            name: "an older statement type",
            change: |m, _| {
                statement(m, |v| {
                    v["_type"] = json!("https://in-toto.io/Statement/v0.1")
                })
            },
            kind: "provenance-type",
            field: ("field", json!("_type")),
        },
        Row {
            name: "a subject that is not in the bundle",
            change: |m, _| {
                statement(m, |v| {
                    v["subject"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"name": "artifacts/backdoor", "digest": {"sha256": zeros()}}))
                })
            },
            kind: "provenance-subject-unknown",
            field: ("name", json!("artifacts/backdoor")),
        },
        Row {
            name: "a subject with another digest",
            change: |m, _| statement(m, |v| v["subject"][0]["digest"]["sha256"] = json!(zeros())),
            kind: "provenance-subject-digest",
            field: ("expected", json!(zeros())),
        },
        Row {
            name: "an artifact missing from the subjects",
            change: |m, _| {
                statement(m, |v| {
                    v["subject"].as_array_mut().unwrap().remove(0);
                })
            },
            kind: "provenance-subject-missing",
            field: ("name", json!("artifacts/root.erofs")),
        },
        Row {
            name: "built from another lock",
            change: |m, _| {
                statement(m, |v| {
                    v["predicate"]["buildDefinition"]["externalParameters"]["lock"]["digest"]["sha256"] =
                        json!(zeros())
                })
            },
            kind: "provenance-input",
            field: ("input", json!("lock")),
        },
        Row {
            name: "provenance naming another SPDX 3 SBOM",
            change: |m, _| {
                statement(m, |v| {
                    v["predicate"]["runDetails"]["byproducts"][2]["digest"]["sha256"] =
                        json!(zeros())
                })
            },
            kind: "provenance-input",
            field: ("input", json!("sbom.spdx3.json")),
        },
        Row {
            name: "a build report that is not one",
            change: |m, _| {
                m.edit_report.push(Box::new(|r| r["schema"] = json!("one")));
            },
            kind: "report-unreadable",
            field: ("kind", json!("report-unreadable")),
        },
        Row {
            name: "the UKI left out",
            change: |m, _| m.omit.push("artifacts/uki.efi"),
            kind: "disk-part-missing",
            field: ("path", json!("artifacts/uki.efi")),
        },
        Row {
            name: "signed boot files without the db certificate",
            change: |m, _| m.omit.push("artifacts/secure-boot/db.crt"),
            kind: "disk-part-missing",
            field: ("path", json!("artifacts/secure-boot/db.crt")),
        },
        Row {
            name: "another systemd-boot, sealed by the manifest and provenance",
            change: |m, _| {
                m.raw.insert(
                    "artifacts/systemd-bootx64.efi".to_owned(),
                    fixture::disk::pe(3_001, 9),
                );
            },
            kind: "disk-part-digest",
            field: (
                "actual",
                json!(fixture::sha256(&fixture::disk::pe(3_001, 9))),
            ),
        },
        Row {
            name: "boot files with a report that describes no disk",
            change: |m, _| {
                m.edit_report.push(Box::new(|r| {
                    r.as_object_mut().unwrap().remove("disk");
                }));
            },
            kind: "disk-part-unexpected",
            field: ("path", json!("artifacts/secure-boot/db.crt")),
        },
        Row {
            name: "a signed UKI with one byte changed beside its signature",
            change: |m, _| {
                let mut changed = fixture::disk::signed(&fixture::disk::uki());
                changed[4_000] ^= 0xFF;
                m.raw
                    .insert("artifacts/secure-boot/uki.efi".to_owned(), changed);
            },
            kind: "disk-signature",
            field: (
                "reason",
                json!("the signed image differs from the unsigned one at byte 4000"),
            ),
        },
        // 6. SBOMs.
        Row {
            name: "the manifest names another SBOM",
            change: |m, _| manifest(m, |v| v["sbom"]["spdx"] = json!(zeros())),
            kind: "sbom-digest",
            field: ("path", json!("sbom.spdx.json")),
        },
        Row {
            name: "an SBOM that is not JSON",
            change: |m, _| {
                m.raw
                    .insert("sbom.cdx.json".to_owned(), b"{not json".to_vec());
            },
            kind: "sbom-not-json",
            field: ("path", json!("sbom.cdx.json")),
        },
        Row {
            name: "an older CycloneDX",
            change: |m, _| cdx(m, |v| v["specVersion"] = json!("1.5")),
            kind: "sbom-format",
            field: ("actual", json!("CycloneDX 1.5")),
        },
        Row {
            name: "the SBOMs disagree about a version",
            change: |m, _| spdx(m, |v| v["packages"][2]["versionInfo"] = json!("9.9")),
            kind: "sboms-disagree",
            field: ("spdx", json!("9.9")),
        },
        Row {
            name: "the SPDX 3 SBOM disagrees about a version",
            change: |m, _| {
                spdx3(m, |v| {
                    v["@graph"][3]["software_packageVersion"] = json!("9.9")
                })
            },
            kind: "sboms-disagree",
            field: ("path", json!("sbom.spdx3.json")),
        },
        Row {
            name: "the SPDX 3 SBOM gives the model another digest",
            change: |m, _| {
                spdx3(m, |v| {
                    let graph = v["@graph"].as_array_mut().unwrap();
                    graph.last_mut().unwrap()["verifiedUsing"][0]["hashValue"] = json!(zeros());
                })
            },
            kind: "sboms-disagree",
            field: ("package", json!("model tiny")),
        },
        Row {
            name: "an SPDX 2 document where SPDX 3 belongs",
            change: |m, _| spdx3(m, |v| v["@context"] = json!("https://example.org/other")),
            kind: "sbom-format",
            field: ("path", json!("sbom.spdx3.json")),
        },
        Row {
            name: "no tar root to check against",
            change: |m, _| m.tar = false,
            kind: "sbom-no-image",
            field: ("path", json!("artifacts/rootfs.tar.zst")),
        },
        Row {
            name: "a tar root that is not zstd",
            change: |m, _| {
                m.raw.insert(
                    "artifacts/rootfs.tar.zst".to_owned(),
                    b"plain bytes".to_vec(),
                );
            },
            kind: "image-unreadable",
            field: ("kind", json!("image-unreadable")),
        },
        Row {
            name: "a package the SBOMs hide",
            change: |m, _| {
                let mut status = String::new();
                for p in &m.packages {
                    status += &format!(
                        "Package: {}\nStatus: install ok installed\nVersion: {}\n\n",
                        p.name, p.version
                    );
                }
                status += "Package: netcat\nStatus: install ok installed\nVersion: 1.10\n\n";
                m.status = Some(status);
            },
            kind: "sbom-package-unlisted",
            field: ("package", json!("netcat")),
        },
        Row {
            name: "every SBOM lies about a version",
            change: |m, _| {
                cdx(m, |v| v["components"][2]["version"] = json!("1.3.5"));
                spdx(m, |v| v["packages"][2]["versionInfo"] = json!("1.3.5"));
                spdx3(m, |v| {
                    v["@graph"][3]["software_packageVersion"] = json!("1.3.5")
                });
            },
            kind: "sbom-package-version",
            field: ("expected", json!("1.3.5")),
        },
        Row {
            name: "both SBOMs list a package the image lacks",
            change: |m, _| {
                m.status = Some(
                    "Package: login\nStatus: install ok installed\nVersion: 1:4.13+dfsg1-1\n\n\
                     Package: mawk\nStatus: install ok installed\nVersion: 1.3.4.20200120-3.1\n\n\
                     Package: nftables\nStatus: install ok installed\nVersion: 1.0.6-2+deb12u2\n\n"
                        .to_owned(),
                );
            },
            kind: "sbom-package-absent",
            field: ("package", json!("auditd")),
        },
        Row {
            name: "a model whose file is not in the image",
            change: |m, _| m.entries.retain(|e| e.path != "opt/models/tiny.gguf"),
            kind: "sbom-model-missing",
            field: ("model", json!("tiny")),
        },
        Row {
            name: "a model digest that lies",
            change: |m, _| {
                cdx(m, |v| {
                    v["components"][4]["hashes"][0]["content"] = json!(zeros())
                });
                spdx3(m, |v| {
                    let graph = v["@graph"].as_array_mut().unwrap();
                    graph.last_mut().unwrap()["verifiedUsing"][0]["hashValue"] = json!(zeros());
                })
            },
            kind: "sbom-model-digest",
            field: ("expected", json!(zeros())),
        },
        Row {
            name: "a component whose file is not in the image",
            change: |m, _| m.entries.retain(|e| e.path != "usr/bin/host-tool"),
            kind: "sbom-component-missing",
            field: ("component", json!("host-tool")),
        },
        Row {
            name: "a component's file swapped for another",
            change: |m, _| {
                for entry in &mut m.entries {
                    if entry.path == "usr/bin/host-tool" {
                        entry.data = b"#!/bin/sh\nrm -rf /\n".to_vec();
                    }
                }
            },
            kind: "sbom-component-digest",
            field: ("component", json!("host-tool")),
        },
        Row {
            name: "SPDX 3 pins another component digest than CycloneDX",
            change: |m, _| {
                spdx3(m, |v| {
                    let graph = v["@graph"].as_array_mut().unwrap();
                    let n = graph.len() - 2;
                    graph[n]["verifiedUsing"][0]["hashValue"] = json!(zeros());
                })
            },
            kind: "sboms-disagree",
            field: ("package", json!("component host-tool")),
        },
        Row {
            name: "an unreadable privilege line",
            change: |m, _| m.privileges.push("no separator".to_owned()),
            kind: "sbom-privilege-unreadable",
            field: ("line", json!("no separator")),
        },
        Row {
            name: "a capability the inventory hides",
            change: |m, _| m.privileges.retain(|l| !l.starts_with("/usr/bin/ping")),
            kind: "sbom-privilege-unlisted",
            field: ("kinds", json!("capabilities")),
        },
        Row {
            name: "setuid called setgid",
            change: |m, _| {
                for line in &mut m.privileges {
                    *line = line.replace("/usr/bin/su: setuid", "/usr/bin/su: setgid");
                }
            },
            kind: "sbom-privilege-kinds",
            field: ("actual", json!("setuid")),
        },
        Row {
            name: "a privilege the image's file does not have",
            change: |m, _| {
                m.privileges
                    .push("/usr/bin/true: setuid (4755 0:0, coreutils)".to_owned())
            },
            kind: "sbom-privilege-absent",
            field: ("path", json!("/usr/bin/true")),
        },
        // 6. Policy.
        Row {
            name: "setuid not allowed",
            change: |_, h| h.policy.allowed_setuid = Some(Vec::new()),
            kind: "policy-setuid",
            field: ("mode", json!("4755")),
        },
        Row {
            name: "file capabilities denied",
            change: |_, h| h.policy.deny_file_capabilities = true,
            kind: "policy-file-capability",
            field: ("path", json!("/usr/bin/ping")),
        },
        Row {
            name: "device nodes denied",
            change: |_, h| h.policy.deny_device_nodes = true,
            kind: "policy-device-node",
            field: ("device", json!("c 1,5")),
        },
        Row {
            name: "a denied package",
            change: |_, h| h.policy.denied_packages = vec!["mawk".to_owned()],
            kind: "policy-denied-package",
            field: ("version", json!("1.3.4.20200120-3.1")),
        },
        Row {
            name: "a component with no license",
            change: |m, h| {
                m.packages[2].license = None;
                h.policy.allowed_licenses = ["GPL-2.0-only", "GPL-2.0-or-later", "Apache-2.0"]
                    .map(String::from)
                    .to_vec();
            },
            kind: "policy-unknown-license",
            field: ("component", json!("mawk")),
        },
        Row {
            name: "a license not allowed",
            change: |_, h| {
                h.policy.allowed_licenses =
                    vec!["GPL-2.0-or-later".to_owned(), "Apache-2.0".to_owned()];
            },
            kind: "policy-license",
            field: ("expression", json!("GPL-2.0-only")),
        },
        Row {
            name: "a license expression that does not parse",
            change: |m, h| {
                m.packages[2].license = Some("GPL-2.0-only AND (".to_owned());
                h.policy.allowed_licenses = ["GPL-2.0-only", "GPL-2.0-or-later", "Apache-2.0"]
                    .map(String::from)
                    .to_vec();
            },
            kind: "policy-license-unreadable",
            field: ("component", json!("mawk")),
        },
        Row {
            name: "recipe.json is not JSON",
            change: |m, h| {
                m.raw
                    .insert("recipe.json".to_owned(), b"[firewall]".to_vec());
                h.policy.require_audit = true;
            },
            kind: "policy-recipe-unreadable",
            field: ("kind", json!("policy-recipe-unreadable")),
        },
        Row {
            name: "recipe.json missing, and not listed",
            change: |m, h| {
                m.omit.push("recipe.json");
                h.policy.require_audit = true;
            },
            kind: "missing-file",
            field: ("path", json!("recipe.json")),
        },
        Row {
            name: "no firewall",
            change: |m, h| {
                m.recipe.as_object_mut().unwrap().remove("firewall");
                h.policy.require_default_deny_firewall = true;
            },
            kind: "policy-no-firewall",
            field: ("kind", json!("policy-no-firewall")),
        },
        Row {
            name: "a chain that accepts",
            change: |m, h| {
                m.recipe["firewall"]["output"] = json!("accept");
                h.policy.require_default_deny_firewall = true;
            },
            kind: "policy-firewall-chain",
            field: ("chain", json!("output")),
        },
        Row {
            name: "no nftables to load the firewall",
            change: |m, h| {
                m.without_package("nftables");
                h.policy.require_default_deny_firewall = true;
            },
            kind: "policy-not-installed",
            field: ("package", json!("nftables")),
        },
        Row {
            name: "no audit section",
            change: |m, h| {
                m.recipe.as_object_mut().unwrap().remove("audit");
                h.policy.require_audit = true;
            },
            kind: "policy-no-audit",
            field: ("kind", json!("policy-no-audit")),
        },
        Row {
            name: "no audit rules",
            change: |m, h| {
                m.recipe["audit"]["rules"] = json!([]);
                h.policy.require_audit = true;
            },
            kind: "policy-no-audit-rules",
            field: ("kind", json!("policy-no-audit-rules")),
        },
    ]
}

/// Runs one row on a fresh bundle.
fn run(row: &Row) -> Rejection {
    let (mut model, mut host) = (Model::new(), Host::new());
    (row.change)(&mut model, &mut host);
    let dir = tempfile::tempdir().unwrap();
    model.write(dir.path());
    rejection(host.verify(dir.path()))
}

/// The kinds no row produces.
fn uncovered(produced: &BTreeSet<&str>) -> Vec<&'static str> {
    RejectionKind::all()
        .map(RejectionKind::code)
        .filter(|kind| !produced.contains(kind))
        .collect()
}

#[test]
fn the_untampered_fixture_verifies_with_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    Model::new().write(dir.path());
    let mut host = Host::new();
    host.policy.allowed_setuid = Some(vec!["/usr/bin/su".to_owned()]);
    host.policy.denied_packages = vec!["netcat".to_owned()];
    host.policy.allowed_licenses = ["GPL-2.0-only", "GPL-2.0-or-later", "Apache-2.0"]
        .map(String::from)
        .to_vec();
    host.policy.require_default_deny_firewall = true;
    host.policy.require_audit = true;
    let verified = host.verify(dir.path()).expect("the fixture verifies");
    assert_eq!(verified.name, "fixture");
    assert_eq!(verified.packages, 4);
    assert_eq!(verified.models, 1);
    assert_eq!(verified.signers.len(), 2);
    assert!(verified.disk && verified.secure_boot);
    assert_eq!(
        verified.policy,
        [
            "allowed_setuid",
            "denied_packages",
            "allowed_licenses",
            "require_default_deny_firewall",
            "require_audit"
        ]
    );
}

#[test]
fn every_row_is_rejected_with_its_kind_and_values() {
    let mut failures = Vec::new();
    for row in rows() {
        let rejection = run(&row);
        let json = rejection.to_json();
        let (field, want) = &row.field;
        if rejection.kind() != row.kind || json[field] != *want || json["kind"] != row.kind {
            failures.push(format!(
                "{}: expected {} with {field} = {want}, got {json}",
                row.name, row.kind
            ));
        }
        assert_eq!(json["message"], rejection.to_string());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rejection_kind_has_a_row() {
    let produced: BTreeSet<&str> = rows().iter().map(|r| r.kind).collect();
    assert_eq!(uncovered(&produced), Vec::<&str>::new());
    // And the rows name only kinds that exist.
    let known: BTreeSet<&str> = RejectionKind::all().map(RejectionKind::code).collect();
    assert!(
        produced.is_subset(&known),
        "{:?}",
        produced.difference(&known)
    );
}

#[test]
fn a_kind_without_a_row_is_caught() {
    let mut produced: BTreeSet<&str> = rows().iter().map(|r| r.kind).collect();
    produced.remove("chunks-swapped");
    assert_eq!(uncovered(&produced), ["chunks-swapped"]);
}

#[test]
fn docs_list_every_kind() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/trust.md"))
        .unwrap();
    let missing: Vec<&str> = RejectionKind::all()
        .map(RejectionKind::code)
        .filter(|kind| !docs.contains(&format!("| `{kind}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/trust.md does not list {missing:?}"
    );
}
