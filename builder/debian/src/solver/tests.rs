use super::*;
use crate::packages::read_packages;
use crate::relation::parse_relations;

/// A universe from compact entries: `name version [field: value]...`, with
/// fields separated by `;`.
fn universe(entries: &[&str]) -> Universe {
    let mut text = String::new();
    for entry in entries {
        let mut parts = entry.split(';');
        let head: Vec<&str> = parts.next().unwrap().split_whitespace().collect();
        let (name, version) = (head[0], head[1]);
        text.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {}\n",
            "0".repeat(64)
        ));
        for field in parts {
            text.push_str(field.trim());
            text.push('\n');
        }
        text.push('\n');
    }
    let mut universe = Universe::new("amd64");
    read_packages(text.as_bytes(), |p| universe.add(p, "test")).unwrap();
    universe.finish();
    universe
}

fn request(install: &[&str]) -> Request {
    Request {
        base: BaseSet::None,
        install: install
            .iter()
            .map(|r| parse_relations(r).unwrap().remove(0))
            .collect(),
        exclude: Vec::new(),
    }
}

fn solve(universe: &Universe, request: &Request) -> Result<Vec<String>, SolveError> {
    resolve(universe, request).map(|ids| {
        ids.into_iter()
            .map(|id| universe.candidate(id).package.name.clone())
            .collect()
    })
}

#[test]
fn depends_and_pre_depends_close_transitively() {
    let u = universe(&[
        "app 1.0; Depends: libx (>= 2)",
        "libx 2.1; Pre-Depends: libc",
        "libc 2.36",
        "unrelated 1",
    ]);
    assert_eq!(
        solve(&u, &request(&["app"])).unwrap(),
        ["app", "libc", "libx"]
    );
}

#[test]
fn first_installable_alternative_wins() {
    let u = universe(&["app 1; Depends: a | b", "a 1", "b 1"]);
    assert_eq!(solve(&u, &request(&["app"])).unwrap(), ["a", "app"]);

    let u = universe(&["app 1; Depends: a (>= 2) | b", "a 1", "b 1"]);
    assert_eq!(solve(&u, &request(&["app"])).unwrap(), ["app", "b"]);

    let mut excluded = request(&["app"]);
    excluded.exclude = vec!["a".to_owned()];
    let u = universe(&["app 1; Depends: a | b", "a 1", "b 1"]);
    assert_eq!(solve(&u, &excluded).unwrap(), ["app", "b"]);
}

#[test]
fn virtual_packages_are_satisfied_by_providers() {
    let u = universe(&[
        "app 1; Depends: mail-transport-agent",
        "zmta 1; Provides: mail-transport-agent; Priority: optional",
        "exim 1; Provides: mail-transport-agent; Priority: standard",
    ]);
    // the more important provider wins, whatever its name
    assert_eq!(solve(&u, &request(&["app"])).unwrap(), ["app", "exim"]);
}

#[test]
fn versioned_provides_match_versioned_relations() {
    let u = universe(&[
        "app 1; Depends: api (>= 2)",
        "old 1; Provides: api (= 1)",
        "new 1; Provides: api (= 2)",
        "plain 1; Provides: api",
    ]);
    assert_eq!(solve(&u, &request(&["app"])).unwrap(), ["app", "new"]);
}

#[test]
fn conflicts_steer_the_choice_and_block_impossible_requests() {
    let u = universe(&[
        "app 1; Depends: x | y",
        "x 1; Conflicts: other",
        "y 1",
        "other 1",
    ]);
    assert_eq!(
        solve(&u, &request(&["app", "other"])).unwrap(),
        ["app", "other", "y"]
    );

    let u = universe(&["a 1; Conflicts: b", "b 1"]);
    let error = solve(&u, &request(&["a", "b"])).unwrap_err();
    assert!(
        error.explanation.contains('a') && error.explanation.contains('b'),
        "{error}"
    );
}

#[test]
fn conflicts_through_a_virtual_name_but_never_with_itself() {
    // Debian's pattern for "only one MTA": Provides + Conflicts on the same name
    let u = universe(&[
        "exim 1; Provides: mta; Conflicts: mta",
        "postfix 1; Provides: mta; Conflicts: mta",
    ]);
    assert_eq!(solve(&u, &request(&["exim"])).unwrap(), ["exim"]);
    assert!(solve(&u, &request(&["exim", "postfix"])).is_err());
}

#[test]
fn versioned_breaks_only_hit_matching_versions() {
    let u = universe(&["new 2; Breaks: old (<< 2)", "old 1"]);
    assert!(solve(&u, &request(&["new", "old"])).is_err());
    let u = universe(&["new 2; Breaks: old (<< 2)", "old 2"]);
    assert_eq!(
        solve(&u, &request(&["new", "old"])).unwrap(),
        ["new", "old"]
    );
}

#[test]
fn unsatisfiable_requests_name_the_package_and_relation() {
    let u = universe(&["app 1; Depends: libx (>= 3)", "libx 2"]);
    let error = solve(&u, &request(&["app"])).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("libx"), "{text}");
    assert!(text.contains(">= 3"), "{text}");
    assert!(
        text.contains("libx 2"),
        "the rejected candidate is named: {text}"
    );
    expect_test::expect![[r#"
        cannot satisfy the package request:
        app * cannot be installed because there are no viable options:
        └─ app 1 would require
           └─ libx (>= 3), for which no candidates were found.
        relations that no candidate satisfies:
          app 1 needs libx (>= 3): rejected libx 2 (version does not match)
    "#]]
    .assert_eq(&text);

    let error = solve(&u, &request(&["ghost"])).unwrap_err();
    assert!(error.to_string().contains("ghost"), "{error}");
}

#[test]
fn base_sets_follow_mmdebstrap_variants() {
    let u = universe(&[
        "base-files 1; Essential: yes; Priority: required",
        "mawk 1; Priority: required",
        "apt 1; Priority: important",
        "less 1; Priority: important",
        "vim 1; Priority: optional",
    ]);
    let names = |base| base_packages(&u, base);
    assert_eq!(names(BaseSet::None), Vec::<&str>::new());
    assert_eq!(names(BaseSet::Essential), ["base-files"]);
    assert_eq!(names(BaseSet::Minbase), ["apt", "base-files", "mawk"]);
    assert_eq!(
        names(BaseSet::Important),
        ["apt", "base-files", "less", "mawk"]
    );

    let mut request = request(&["vim"]);
    request.base = BaseSet::Minbase;
    request.exclude = vec!["mawk".to_owned()];
    assert_eq!(solve(&u, &request).unwrap(), ["apt", "base-files", "vim"]);
}

#[test]
fn merging_suites_keeps_the_highest_version() {
    let mut u = Universe::new("amd64");
    let entry = |version: &str, arch: &str| {
        format!(
            "Package: p\nVersion: {version}\nArchitecture: {arch}\nFilename: f\nSize: 1\nSHA256: {}\n",
            "0".repeat(64)
        )
    };
    read_packages(entry("1.0-1", "amd64").as_bytes(), |p| u.add(p, "bookworm")).unwrap();
    read_packages(entry("1.0-1+deb12u1", "amd64").as_bytes(), |p| {
        u.add(p, "bookworm-security")
    })
    .unwrap();
    read_packages(entry("9", "arm64").as_bytes(), |p| u.add(p, "other")).unwrap();
    read_packages(entry("0.9", "all").as_bytes(), |p| u.add(p, "older")).unwrap();
    u.finish();
    let candidate = u.candidate(u.get("p").unwrap());
    assert_eq!(candidate.package.version_text, "1.0-1+deb12u1");
    assert_eq!(candidate.suite, "bookworm-security");
}

#[test]
fn resolution_is_deterministic() {
    let u = universe(&[
        "app 1; Depends: a | b, v",
        "a 1; Depends: c | d",
        "b 1",
        "c 1; Conflicts: d",
        "d 1",
        "p1 1; Provides: v",
        "p2 1; Provides: v",
    ]);
    let first = solve(&u, &request(&["app"])).unwrap();
    for _ in 0..5 {
        assert_eq!(solve(&u, &request(&["app"])).unwrap(), first);
    }
    assert_eq!(first, ["a", "app", "c", "p1"]);
}
