//! Results for people and for CI: a summary line per case, JUnit XML (the
//! dialect Jenkins, GitLab and GitHub's report actions read: one
//! `testsuite` per machine, a `failure` per failed case with the expected
//! and actual values, an `error` per case that could not be checked), and
//! JSON.

use std::fmt::Write as _;

use crate::run::{CaseResult, Verdict};

/// One line for the terminal.
pub fn line(result: &CaseResult) -> String {
    let head = format!(
        "{} / {} ({:.1} s)",
        result.machine, result.name, result.seconds
    );
    match &result.verdict {
        Verdict::Passed => format!("PASS  {head}"),
        Verdict::Failed { expected, actual } => {
            format!("FAIL  {head}\n      expected: {expected}\n      actual:   {actual}")
        }
        Verdict::Error(why) => format!("ERROR {head}\n      {why}"),
    }
}

/// Counts: (passed, failed, errors).
pub fn counts(results: &[CaseResult]) -> (usize, usize, usize) {
    results
        .iter()
        .fold((0, 0, 0), |(p, f, e), r| match r.verdict {
            Verdict::Passed => (p + 1, f, e),
            Verdict::Failed { .. } => (p, f + 1, e),
            Verdict::Error(_) => (p, f, e + 1),
        })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to write most control characters.
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML for `results`; `suite` names the whole run (the test file).
pub fn junit(suite: &str, results: &[CaseResult]) -> String {
    let (_, failed, errors) = counts(results);
    let total: f64 = results.iter().map(|r| r.seconds).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"{errors}\" time=\"{total:.3}\">",
        escape(suite),
        results.len()
    );
    let mut machines: Vec<&str> = results.iter().map(|r| r.machine.as_str()).collect();
    machines.dedup();
    for machine in machines {
        let mine: Vec<&CaseResult> = results.iter().filter(|r| r.machine == machine).collect();
        let owned: Vec<CaseResult> = mine.iter().map(|r| (*r).clone()).collect();
        let (_, f, e) = counts(&owned);
        let time: f64 = mine.iter().map(|r| r.seconds).sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"0\" time=\"{time:.3}\">",
            escape(&format!("{suite}.{machine}")),
            mine.len()
        );
        for r in mine {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&format!("{suite}.{machine}")),
                escape(&r.name),
                r.seconds
            );
            match &r.verdict {
                Verdict::Passed if r.output.is_empty() => xml.push_str("/>\n"),
                Verdict::Passed => {
                    let _ = writeln!(
                        xml,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        escape(&r.output)
                    );
                }
                Verdict::Failed { expected, actual } => {
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{}\" type=\"mismatch\">expected: {}\nactual: {}\n\n{}</failure>\n    </testcase>",
                        escape(&format!("expected {expected}, got {actual}")),
                        escape(expected),
                        escape(actual),
                        escape(&r.output)
                    );
                }
                Verdict::Error(why) => {
                    let _ = writeln!(
                        xml,
                        ">\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>",
                        escape(why),
                        escape(&r.output)
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// The results as JSON: `{"passed": N, "failed": N, "errors": N, "cases": [...]}`.
pub fn json(results: &[CaseResult]) -> serde_json::Value {
    let (passed, failed, errors) = counts(results);
    let cases: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let mut case = serde_json::json!({
                "machine": r.machine,
                "name": r.name,
                "seconds": (r.seconds * 1000.0).round() / 1000.0,
                "output": r.output,
            });
            let extra = match &r.verdict {
                Verdict::Passed => serde_json::json!({"result": "passed"}),
                Verdict::Failed { expected, actual } => {
                    serde_json::json!({"result": "failed", "expected": expected, "actual": actual})
                }
                Verdict::Error(why) => serde_json::json!({"result": "error", "error": why}),
            };
            if let (Some(c), Some(e)) = (case.as_object_mut(), extra.as_object()) {
                c.extend(e.clone());
            }
            case
        })
        .collect();
    serde_json::json!({"passed": passed, "failed": failed, "errors": errors, "cases": cases})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, machine: &str, verdict: Verdict) -> CaseResult {
        CaseResult {
            machine: machine.to_owned(),
            name: name.to_owned(),
            verdict,
            seconds: 1.5,
            output: "out <&>\u{1}".to_owned(),
        }
    }

    #[test]
    fn junit_escapes_and_groups_by_machine() {
        let results = [
            result("a \"quoted\" <case>", "main", Verdict::Passed),
            result(
                "b",
                "main",
                Verdict::Failed {
                    expected: "exit status 0".to_owned(),
                    actual: "exit status 1".to_owned(),
                },
            ),
            result("c", "other", Verdict::Error("no boot".to_owned())),
        ];
        let xml = junit("minimal", &results);
        expect_test::expect_file!["../tests/snapshots/junit.xml"].assert_eq(&xml);
        let json = json(&results);
        assert_eq!(json["failed"], 1);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["cases"][1]["expected"], "exit status 0");
        assert_eq!(json["cases"][1]["actual"], "exit status 1");
    }
}
