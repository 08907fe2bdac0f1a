use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};

use super::*;

const BASE: &str = r#"
schema = 1

[image]
name = "demo"
version = 3
epoch = 1700000000

[archive]
suites = ["bookworm"]
keyring = "keys/debian.pgp"

[packages]
install = ["systemd-sysv", "nftables (>= 1.0)"]
"#;

/// Loads `root` from an in-memory tree of files.
fn load_from(files: &[(&str, &str)], root: &str) -> Result<LoadedRecipe, RecipeError> {
    let map: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), text.to_string()))
        .collect();
    load(Path::new(root), &mut |path: &Path| {
        map.get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    })
}

fn check_error(files: &[(&str, &str)], expect: Expect) {
    let error = load_from(files, "r/main.toml").expect_err("the recipe must be rejected");
    expect.assert_eq(&error.to_string());
}

#[test]
fn loads_a_plain_recipe() {
    let loaded = load_from(&[("r/main.toml", BASE)], "r/main.toml").unwrap();
    assert_eq!(loaded.recipe.image.name.as_str(), "demo");
    assert_eq!(loaded.recipe.archive.components_or_default(), ["main"]);
    assert_eq!(loaded.recipe.packages.base, crate::BaseSet::Minbase);
    assert_eq!(loaded.base_dir, Path::new("r"));
    assert_eq!(
        loaded.host_path("keys/debian.pgp"),
        Path::new("r/keys/debian.pgp")
    );
}

#[test]
fn digest_ignores_comments_whitespace_and_key_order() {
    let reordered = r#"
# a comment that must not matter
[packages]
install = [ "systemd-sysv",   "nftables (>= 1.0)" ]

[archive]
keyring = "keys/debian.pgp"   # trailing comment
suites = ["bookworm"]

[image]
epoch = 1_700_000_000
version = 3
name = "demo"

"#;
    let reordered = format!("schema = 1\n{reordered}");
    let a = load_from(&[("r/main.toml", BASE)], "r/main.toml").unwrap();
    let b = load_from(&[("r/main.toml", &reordered)], "r/main.toml").unwrap();
    assert_eq!(a.digest, b.digest);

    let changed = BASE.replace("version = 3", "version = 4");
    let c = load_from(&[("r/main.toml", &changed)], "r/main.toml").unwrap();
    assert_ne!(a.digest, c.digest);
}

#[test]
fn includes_merge_scalars_lists_and_tables() {
    let common = r#"
schema = 1
[image]
name = "from-include"
description = "shared"
[packages]
install = ["bash"]
[files.inline."/etc/motd"]
content = "included\n"
[files.inline."/etc/issue"]
content = "issue\n"
[[users]]
name = "ops"
"#;
    let main = format!(
        "include = [\"common.toml\"]\n{BASE}\n[files.inline.\"/etc/motd\"]\ncontent = \"main\\n\"\n[[users]]\nname = \"agent\"\n"
    );
    let loaded = load_from(
        &[("r/main.toml", &main), ("r/common.toml", common)],
        "r/main.toml",
    )
    .unwrap();
    let recipe = &loaded.recipe;
    // scalars: the including file wins; an unset scalar comes from the include
    assert_eq!(recipe.image.name.as_str(), "demo");
    assert_eq!(recipe.image.description, "shared");
    // lists: the include's entries first, then the including file's
    let install: Vec<_> = recipe.packages.install.iter().map(|r| r.as_str()).collect();
    assert_eq!(install, ["bash", "systemd-sysv", "nftables (>= 1.0)"]);
    let users: Vec<_> = recipe.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(users, ["ops", "agent"]);
    // tables: merged key by key
    let motd = &recipe.files.inline[&"/etc/motd".parse().unwrap()];
    assert_eq!(motd.content, "main\n");
    assert_eq!(recipe.files.inline.len(), 2);
    assert_eq!(
        loaded.files,
        [PathBuf::from("r/main.toml"), PathBuf::from("r/common.toml")]
    );
}

#[test]
fn splitting_into_includes_keeps_the_digest() {
    let single = load_from(&[("r/main.toml", BASE)], "r/main.toml").unwrap();
    let head = "schema = 1\n[archive]\nsuites = [\"bookworm\"]\nkeyring = \"keys/debian.pgp\"\n";
    let rest = "include = [\"head.toml\"]\nschema = 1\n[image]\nname = \"demo\"\nversion = 3\nepoch = 1700000000\n[packages]\ninstall = [\"systemd-sysv\", \"nftables (>= 1.0)\"]\n";
    let split = load_from(
        &[("r/main.toml", rest), ("r/head.toml", head)],
        "r/main.toml",
    )
    .unwrap();
    assert_eq!(single.digest, split.digest);
}

#[test]
fn relative_paths_in_includes_are_rebased_to_the_top_recipe() {
    let shared = "schema = 1\n[archive]\nkeyring = \"../keys/debian.pgp\"\n[[files.tree]]\nsource = \"overlay\"\n";
    let main = "include = [\"shared/base.toml\"]\nschema = 1\n[image]\nname = \"x\"\nversion = 1\nepoch = 1\n[archive]\nsuites = [\"bookworm\"]\n";
    let loaded = load_from(
        &[("r/main.toml", main), ("r/shared/base.toml", shared)],
        "r/main.toml",
    )
    .unwrap();
    assert_eq!(
        loaded.recipe.archive.keyring.as_ref().unwrap().as_str(),
        "keys/debian.pgp"
    );
    assert_eq!(
        loaded.recipe.files.tree[0].source.as_str(),
        "shared/overlay"
    );
}

#[test]
fn unknown_key_is_rejected_with_its_location() {
    let text = BASE.replace("epoch = 1700000000", "epoch = 1700000000\nepoc = 1");
    check_error(
        &[("r/main.toml", &text)],
        expect![
            "r/main.toml:8:1: unknown field `epoc`, expected one of `name`, `version`, `epoch`, `description`, `hostname`, `timezone`, `supplier`, `license`, `copyright`"
        ],
    );
}

#[test]
fn wrong_type_is_rejected_with_its_location() {
    let text = BASE.replace("version = 3", "version = \"3\"");
    check_error(
        &[("r/main.toml", &text)],
        expect![[r#"r/main.toml:6:11: invalid type: string "3", expected u64"#]],
    );
}

#[test]
fn invalid_values_say_what_was_expected() {
    let text = format!(
        "{BASE}\n[[models]]\nname = \"m\"\nsha256 = \"abc\"\npath = \"m.gguf\"\ndestination = \"/models/m.gguf\"\nlicense = \"MIT\"\n"
    );
    check_error(
        &[("r/main.toml", &text)],
        expect![[
            r#"r/main.toml:18:10: expected a sha256 digest as 64 lowercase hex digits, got "abc""#
        ]],
    );
    let text = format!("{BASE}\n[files.inline.\"etc/motd\"]\ncontent = \"x\"\n");
    check_error(
        &[("r/main.toml", &text)],
        expect![[
            r#"r/main.toml:16:15: invalid image path "etc/motd": expected an absolute, normalized path such as "/etc/motd" (no ".", "..", "//" or trailing "/")"#
        ]],
    );
    let text = BASE.replace("schema = 1", "schema = 2");
    check_error(
        &[("r/main.toml", &text)],
        expect![[
            r#"r/main.toml:2:10: unsupported recipe schema 2: this airlock reads schema = 1"#
        ]],
    );
}

#[test]
fn syntax_errors_have_a_location() {
    check_error(
        &[("r/main.toml", "schema = 1\n[image\nname = 1\n")],
        expect![[r#"r/main.toml:2:7: unclosed table, expected `]`"#]],
    );
}

#[test]
fn include_loop_is_reported_with_the_chain() {
    let a = format!("include = [\"b.toml\"]\n{BASE}");
    let b = "include = [\"./a.toml\"]\nschema = 1\n";
    let error = load_from(&[("r/a.toml", &a), ("r/b.toml", b)], "r/a.toml").unwrap_err();
    expect![[r#"r/b.toml:1:12: include loop: r/a.toml -> r/b.toml -> r/a.toml"#]]
        .assert_eq(&error.to_string());
}

#[test]
fn missing_include_names_the_file() {
    let a = format!("include = [\"gone.toml\"]\n{BASE}");
    let error = load_from(&[("r/a.toml", &a)], "r/a.toml").unwrap_err();
    expect![[r#"r/gone.toml: cannot read recipe: no such file"#]].assert_eq(&error.to_string());
}

#[test]
fn missing_required_keys_are_all_listed() {
    check_error(
        &[("r/main.toml", "schema = 1\n[image]\nname = \"x\"\n")],
        expect![[
            r#"r/main.toml: [image] version must be a release number of at least 1; missing [image] epoch: the SOURCE_DATE_EPOCH of every timestamp, in seconds; [archive] suites must name at least one suite; missing [archive] keyring: the OpenPGP keyring that signs the suites"#
        ]],
    );
}

#[test]
fn cross_key_rules_are_checked_after_merging() {
    let text = format!(
        "{BASE}\n[signing]\nthreshold = 3\nsigners = [{{ name = \"a\", fingerprint = \"{}\" }}]\n",
        "A".repeat(40)
    );
    check_error(
        &[("r/main.toml", &text)],
        expect![[
            r#"r/main.toml: [signing] threshold = 3 must be between 1 and the number of signers (1)"#
        ]],
    );
}

#[test]
fn output_levels_are_bounded() {
    let text = format!("{BASE}\n[output]\nzstd_level = 20\nostree_deflate_level = 10\n");
    check_error(
        &[("r/main.toml", &text)],
        expect![[
            r#"r/main.toml: [output] zstd_level = 20 must be between 1 and 19; [output] ostree_deflate_level = 10 must be between 0 and 9"#
        ]],
    );
    let text = format!("{BASE}\n[output]\nostree_deflate_level = 9\n");
    let loaded = load_from(&[("r/main.toml", &text)], "r/main.toml").unwrap();
    assert_eq!(loaded.recipe.output.ostree_deflate_level, Some(9));
    // Unset, the key is not in the canonical form: digests stay as they were.
    let plain = load_from(&[("r/main.toml", BASE)], "r/main.toml").unwrap();
    let json = serde_json::to_string(&plain.recipe).unwrap();
    assert!(!json.contains("ostree_deflate_level"), "{json}");
}

#[test]
fn normalize_and_relative_paths_are_lexical() {
    assert_eq!(normalize(Path::new("a/./b/../c")), Path::new("a/c"));
    assert_eq!(normalize(Path::new("../a/../../b")), Path::new("../../b"));
    assert_eq!(normalize(Path::new("/../a")), Path::new("/a"));
    assert_eq!(
        relative_to(Path::new("r"), Path::new("r/shared")),
        Path::new("shared")
    );
    assert_eq!(
        relative_to(Path::new("r/x"), Path::new("r/y")),
        Path::new("../y")
    );
}

#[test]
fn an_agent_needs_a_firewall_and_audit_and_a_safe_sandbox() {
    let text = format!(
        r#"{BASE}
[[users]]
name = "agent"

[agent]
user = "agent"
command = ["python3", "run.py"]
writable_paths = ["/srv/agent"]
read_only_paths = ["/opt/my agent"]
system_call_filter = ["@debug; rm"]
environment = {{ "A-B" = "x" }}
egress = [{{ address = "10.0.2.2", port = 0 }}]
"#
    );
    let error = load_from(&[("r/main.toml", &text)], "r/main.toml")
        .unwrap_err()
        .to_string();
    for expected in [
        "the program \"python3\" must be an absolute path",
        "path \"/opt/my agent\": no whitespace",
        "writable_paths \"/srv/agent\": the image's root is read-only",
        "system_call_filter \"@debug; rm\"",
        "environment: \"A-B\" is not a variable name",
        "egress 10.0.2.2: port 0 is not a port",
        "[agent] needs a [firewall] section",
        "[agent] needs an [audit] section",
        "[agent] user agent: airlock makes the agent's user",
    ] {
        assert!(error.contains(expected), "{expected:?} not in {error}");
    }
    let good = format!(
        "{BASE}\n[agent]\nuser = \"agent\"\ncommand = [\"/usr/bin/agent\"]\nwritable_paths = [\"/var/lib/agent\"]\n[firewall]\n[audit]\n"
    );
    let recipe = load_from(&[("r/main.toml", &good)], "r/main.toml").unwrap();
    let firewall = recipe
        .recipe
        .firewall
        .expect("an empty [firewall] is a firewall");
    assert_eq!(firewall.output, crate::Policy::Drop);
    assert!(recipe.recipe.audit.expect("an empty [audit]").agent_rules);
}

#[test]
fn firewall_comments_and_audit_rules_cannot_break_their_files() {
    let text = format!(
        "{BASE}\n[firewall]\nallow = [{{ direction = \"in\", port = 22, comment = \"a \\\" b\" }}]\n[audit]\nrules = [\"-w /etc\\n-D\"]\n"
    );
    let error = load_from(&[("r/main.toml", &text)], "r/main.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("[[firewall.allow]] #1: comment"), "{error}");
    assert!(
        error.contains("must be one non-empty auditctl line"),
        "{error}"
    );
}

/// Loads `root` with every path reading as `text`, as the recipe fuzz
/// target serves includes: the paths never repeat, so only the limits stop
/// the recursion.
fn load_everywhere(text: &str) -> Result<LoadedRecipe, RecipeError> {
    let mut reads = 0usize;
    let result = load(Path::new("r/fuzz.toml"), &mut |_: &Path| {
        reads += 1;
        Ok(text.to_owned())
    });
    assert!(reads <= MAX_INCLUDED_FILES, "{reads} files read");
    result
}

/// Found by fuzzing (fuzz/regressions/recipe/include-descends-forever):
/// each file includes one a folder deeper, so no path repeats and the
/// loader recursed until the fuzzer's 30 s timeout (on a real disk, a
/// folder symlinked into itself does the same).
#[test]
fn fuzz_timeout_an_include_that_descends_forever_is_refused() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/recipe/include-descends-forever"
    ))
    .unwrap();
    let error = load_everywhere(&text).unwrap_err();
    assert!(
        matches!(error, RecipeError::IncludeLimit { depth: 17, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("at most 16 deep and 256 files"),
        "{error}"
    );
}

#[test]
fn includes_that_fan_out_stop_at_the_file_limit() {
    let names: Vec<String> = (0..MAX_INCLUDED_FILES)
        .map(|i| format!("part{i}.toml"))
        .collect();
    let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let main = format!("include = [{}]\n{BASE}", list.join(", "));
    let mut files: Vec<(String, String)> = vec![("r/main.toml".to_owned(), main)];
    files.extend(
        names
            .iter()
            .map(|n| (format!("r/{n}"), "schema = 1\n".to_owned())),
    );
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let error = load_from(&borrowed, "r/main.toml").unwrap_err();
    assert!(
        matches!(
            error,
            RecipeError::IncludeLimit {
                files: MAX_INCLUDED_FILES,
                depth: 2,
                ..
            }
        ),
        "{error}"
    );
    // One fewer include is within the limit.
    let main = format!("include = [{}]\n{BASE}", list[1..].join(", "));
    files[0].1 = main;
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        load_from(&borrowed, "r/main.toml").unwrap().files.len(),
        MAX_INCLUDED_FILES
    );
}

#[test]
fn includes_just_inside_the_depth_limit_load() {
    // r/main.toml -> r/d/l1.toml -> ... 15 levels of includes: 16 files.
    let mut files: Vec<(String, String)> = Vec::new();
    let mut path = "r/main.toml".to_owned();
    for level in 1..MAX_INCLUDE_DEPTH {
        files.push((path.clone(), format!("include = [\"d/l{level}.toml\"]\n")));
        let dir = path.rsplit_once('/').unwrap().0.to_owned();
        path = format!("{dir}/d/l{level}.toml");
    }
    files.push((path, BASE.to_owned()));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let loaded = load_from(&borrowed, "r/main.toml").unwrap();
    assert_eq!(loaded.files.len(), MAX_INCLUDE_DEPTH);
}

/// A well-formed ed25519 public key (its 32 key bytes are 0..32).
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@lab";

#[test]
fn authorized_keys_must_be_openssh_public_keys_with_a_home() {
    let user = |keys: &str, rest: &str| {
        format!("{BASE}\n[[users]]\nname = \"ops\"\n{rest}authorized_keys = [{keys}]\n")
    };
    let good = user(&format!("\"{KEY}\""), "system = false\n");
    let loaded = load_from(&[("r/main.toml", &good)], "r/main.toml").unwrap();
    assert_eq!(loaded.recipe.users[0].authorized_keys, [KEY]);
    check_error(
        &[(
            "r/main.toml",
            &user(
                &format!(
                    "\"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\", \"from=\\\"10.0.0.1\\\" {KEY}\", \"ssh-ed25519 !!!\", \"{KEY}\""
                ),
                "",
            ),
        )],
        expect![[
            r#"r/main.toml: [[users]] ops authorized_keys[0]: the key's blob is not a ssh-rsa key; [[users]] ops authorized_keys[1]: "from=\"10.0.0.1\"" is not an OpenSSH public key type (options before the key are not accepted); [[users]] ops authorized_keys[2]: the key is not base64; [[users]] ops: authorized_keys need a home; give `home`"#
        ]],
    );
}

#[test]
fn a_disk_needs_the_erofs_root_a_kernel_and_sizes_it_can_hold() {
    check_error(
        &[(
            "r/main.toml",
            &format!(
                "{BASE}\n[output]\nformats = [\"disk\"]\n[disk]\nesp_mib = 16\nvar_mib = 8\nroot_mib = 0\n"
            ),
        )],
        expect![[
            r#"r/main.toml: [output] formats: "disk" holds the EROFS root: add "erofs"; [output] formats: "disk" boots a kernel: set [kernel] package; [disk] esp_mib = 16 must be between 34 (FAT32's least) and 4096; [disk] var_mib = 8 must be between 16 and 16777216; [disk] root_mib must be between 1 and 16777216"#
        ]],
    );
    check_error(
        &[("r/main.toml", &format!("{BASE}\n[disk]\nslot_b = false\n"))],
        expect![[r#"r/main.toml: [disk] is set but [output] formats has no "disk""#]],
    );
    let disk = format!(
        "{BASE}\n[kernel]\npackage = \"linux-image-cloud-amd64\"\n[output]\nformats = [\"erofs\", \"disk\"]\n"
    );
    let loaded = load_from(&[("r/main.toml", &disk)], "r/main.toml").unwrap();
    assert_eq!(loaded.recipe.disk, None, "defaults when [disk] is absent");
    let plain = load_from(&[("r/main.toml", BASE)], "r/main.toml").unwrap();
    let text = serde_json::to_string(&plain.recipe).unwrap();
    assert!(
        !text.contains("\"disk\""),
        "no [disk], no key: old digests hold"
    );
}

const FP_A: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
const FP_B: &str = "89ABCDEF0123456789ABCDEF0123456789ABCDEF";

/// `[signing]` naming key files, as a file included from `r/keys/`.
fn signing(threshold: u32) -> String {
    format!(
        "schema = 1\n[signing]\nthreshold = {threshold}\nsigners = [\n  {{ name = \"alice\", fingerprint = \"{FP_A}\", certificate_file = \"alice.asc\" }},\n  {{ name = \"bob\", fingerprint = \"{FP_B}\", certificate_file = \"/abs/bob.asc\" }},\n]\nbuilders = [{{ name = \"ci\", key_file = \"builder.pub\" }}]\n"
    )
}

#[test]
fn signing_keys_are_read_from_files_relative_to_the_file_naming_them() {
    let main = format!("include = [\"keys/signing.toml\"]\n{BASE}");
    let signing = signing(2);
    let files = |alice: &'static str| {
        vec![
            ("r/main.toml", main.clone()),
            ("r/keys/signing.toml", signing.clone()),
            ("r/keys/alice.asc", alice.to_owned()),
            ("/abs/bob.asc", "BOB CERT\n".to_owned()),
            ("r/keys/builder.pub", "BUILDER KEY\n".to_owned()),
        ]
    };
    let load = |files: &[(&str, String)]| {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        load_from(&files, "r/main.toml").unwrap()
    };
    let loaded = load(&files("ALICE CERT\n"));
    let signing = &loaded.recipe.signing;
    assert!(signing.anchors());
    assert_eq!(
        signing.signers[0].certificate.as_deref(),
        Some("ALICE CERT\n")
    );
    assert_eq!(signing.signers[0].certificate_file, None);
    assert_eq!(
        signing.signers[1].certificate.as_deref(),
        Some("BOB CERT\n")
    );
    assert_eq!(signing.builders[0].key.as_deref(), Some("BUILDER KEY\n"));
    for read in ["r/keys/alice.asc", "/abs/bob.asc", "r/keys/builder.pub"] {
        assert!(loaded.files.contains(&PathBuf::from(read)), "{read}");
    }
    // The merged recipe carries the keys, not the paths, and the digest
    // covers their bytes.
    let json = serde_json::to_string(&loaded.recipe).unwrap();
    assert!(
        json.contains("ALICE CERT") && !json.contains("certificate_file"),
        "{json}"
    );
    let other = load(&files("ANOTHER ALICE CERT\n"));
    assert_ne!(loaded.digest, other.digest);
    // Without [signing] keys, the canonical form (and so every existing
    // lock's recipe digest) is unchanged: no empty builders list.
    let plain = load_from(&[("r/main.toml", BASE)], "r/main.toml").unwrap();
    assert!(
        !serde_json::to_string(&plain.recipe)
            .unwrap()
            .contains("builders")
    );
}

#[test]
fn signing_key_files_refused() {
    let with = |signing: String| format!("{BASE}{}", signing.replace("schema = 1\n", ""));
    let keys = |main: String| {
        vec![
            ("r/main.toml", main),
            ("r/alice.asc", "A\n".to_owned()),
            ("/abs/bob.asc", "B\n".to_owned()),
            ("r/builder.pub", "K\n".to_owned()),
        ]
    };
    let error = |files: Vec<(&'static str, String)>| {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        load_from(&files, "r/main.toml").unwrap_err().to_string()
    };
    // A key file that is not there is named.
    let mut missing = keys(with(signing(2)));
    missing.retain(|(p, _)| *p != "r/alice.asc");
    let message = error(missing);
    assert!(message.contains("r/alice.asc"), "{message}");
    // Both the file and the inline key.
    let both = with(signing(2)).replace(
        "certificate_file = \"alice.asc\"",
        "certificate_file = \"alice.asc\", certificate = \"X\"",
    );
    let message = error(keys(both));
    assert!(
        message.contains("[signing] signers alice: give certificate_file or certificate, not both"),
        "{message}"
    );
    // Half the anchors: bob without a certificate, no builder key, a name
    // that cannot be a file name.
    let half = with(signing(2))
        .replace(", certificate_file = \"/abs/bob.asc\"", "")
        .replace(
            "builders = [{ name = \"ci\", key_file = \"builder.pub\" }]\n",
            "",
        )
        .replace("name = \"alice\"", "name = \"../alice\"");
    let message = error(keys(half));
    for part in [
        "[signing] signers bob: the other signers give a certificate, so must this one",
        "need the builders' public keys too",
        "[signing] signers name \"../alice\" names a file in the image",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
}

const COMPONENT: &str = r#"
[[components]]
name = "host-tool"
version = "1.2.3"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
path = "../bin/host-tool"
destination = "/usr/bin/host-tool"
executable = true
license = "MIT"
"#;

#[test]
fn components_are_pinned_files_beside_the_models() {
    // An included file's component path is rebased like a model's.
    let main = format!("include = [\"parts/tool.toml\"]\n{BASE}");
    let part = format!("schema = 1\n{COMPONENT}");
    let loaded = load_from(
        &[("r/main.toml", &main), ("r/parts/tool.toml", &part)],
        "r/main.toml",
    )
    .unwrap();
    let component = &loaded.recipe.components[0];
    assert_eq!(component.path.as_ref().unwrap().as_str(), "bin/host-tool");
    assert_eq!(component.mode(), 0o555);
    let pinned: Vec<_> = loaded.recipe.pinned().collect();
    assert_eq!(pinned.len(), 1);
    assert_eq!((pinned[0].kind, pinned[0].name), ("component", "host-tool"));
    assert_eq!(pinned[0].section(), "[[components]]");
    // A recipe without components keeps the digest it had before
    // components existed: the empty list is not serialized.
    let plain = load_from(&[("r/main.toml", BASE)], "r/main.toml").unwrap();
    let json = serde_json::to_value(&plain.recipe).unwrap();
    assert!(json.get("components").is_none(), "{json}");
    assert_ne!(plain.digest, loaded.digest);
    // Its source goes into the SBOMs as a link: a URL, nothing else.
    let text = format!("{BASE}{COMPONENT}source = \"this checkout\"\n");
    let error = load_from(&[("r/main.toml", &text)], "r/main.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid URL \"this checkout\""), "{error}");
}

#[test]
fn a_component_needs_one_source_a_version_and_its_own_name() {
    let text = format!(
        "{BASE}{}\n[[models]]\nname = \"host-tool\"\nsha256 = \"{}\"\npath = \"m.gguf\"\ndestination = \"/usr/bin/host-tool\"\nlicense = \"MIT\"\n",
        COMPONENT
            .replace("version = \"1.2.3\"", "version = \"1 2\"")
            .replace(
                "path = \"../bin/host-tool\"",
                "url = \"https://example.org/t\"\npath = \"t\""
            ),
        "9".repeat(64)
    );
    check_error(
        &[("r/main.toml", &text)],
        expect![[
            r#"r/main.toml: [[models]] and [[components]] name "host-tool" appears twice; [[models]] and [[components]] destination "/usr/bin/host-tool" appears twice; [[components]] host-tool: give exactly one of `path` (a file on the build host) or `url`; [[components]] host-tool: version "1 2" must be one word (the SBOMs list it)"#
        ]],
    );
}
