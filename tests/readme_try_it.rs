//! README.md's "Try it" section, run as written: every `curl` in it goes to the real
//! binary in `--dev` (only the port is changed), from the repository root as the README
//! assumes, and must get a 2xx with the JSON the README promises; then its
//! `feedback export` must print what the feedback example stored. Breaking an example
//! (a wrong service, a missing file, bad quoting) fails this test.

mod common;

use common::*;
use serde_json::Value;

/// The fenced shell commands of the section headed `## {title}`, continuation lines
/// (ending in `\`) joined.
fn shell_commands(readme: &str, title: &str) -> Vec<String> {
    let heading = format!("## {title}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README.md has no \"{heading}\""))
        + heading.len();
    let section = &readme[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut commands = Vec::new();
    let mut in_code = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                commands.push(std::mem::take(&mut current).trim().to_string());
            }
        }
    }
    commands
}

/// Shell words of `command` up to the first unquoted `|` (the README pipes into `jq`
/// only to pretty-print): single quotes, double quotes and backslashes as `sh` reads them.
fn words_before_pipe(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '|' => break,
            ' ' | '\t' => {
                words.extend(word.take());
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        q => w.push(q),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn shell_words_are_read_as_sh_reads_them() {
    assert_eq!(
        words_before_pipe(r#"curl -s -H 'a: b' --data "{\"x\": 1}" url | jq ."#),
        ["curl", "-s", "-H", "a: b", "--data", r#"{"x": 1}"#, "url"]
    );
    let readme =
        "## Try it\n\n```sh\ncurl -s a \\\n     b | jq .\nls\n```\n\n## Next\n```sh\nx\n```\n";
    assert_eq!(
        shell_commands(readme, "Try it"),
        ["curl -s a      b | jq .", "ls"]
    );
}

/// What the README promises from each kind of URL.
fn check_answer(url: &str, status: u16, body: &str) {
    assert!((200..300).contains(&status), "{url}: {status} {body}");
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &path[path.find('/').unwrap_or(path.len())..];
    if path.ends_with("/feedback") {
        // The spec defines no body for feedback.
        assert!(body.trim().is_empty(), "{url}: {body}");
        return;
    }
    let json: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"));
    if path == "/cds-services" {
        let services = json["services"].as_array().expect("services array");
        assert_eq!(services.len(), 4, "{json}");
    } else if path.starts_with("/cds-services/") {
        assert!(json["cards"].is_array(), "{url}: {json}");
    } else {
        panic!("{url}: a README example this test does not know how to check");
    }
}

#[test]
fn every_curl_of_the_try_it_section_succeeds_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let app = TestApp::dev();
    let port = app.port().to_string();

    let mut curls = 0;
    let mut exports = 0;
    for command in shell_commands(&readme, "Try it") {
        let words = words_before_pipe(&command);
        if words.first().map(String::as_str) != Some("curl") {
            if command.starts_with("cargo run -- feedback export") {
                exports += 1;
                check_export(&app);
            }
            continue;
        }
        curls += 1;
        let args: Vec<String> = words[1..]
            .iter()
            .map(|w| w.replace("localhost:8080", &format!("localhost:{port}")))
            .collect();
        let url = args
            .iter()
            .find(|a| a.contains(&format!("localhost:{port}")))
            .unwrap_or_else(|| panic!("no localhost:8080 URL in: {command}"))
            .clone();
        // Files named with --data @FILE are relative to the repository root.
        for a in &args {
            if let Some(file) = a.strip_prefix('@') {
                assert!(
                    std::path::Path::new(root).join(file).is_file(),
                    "{command}: no file {file}"
                );
            }
        }
        let out = std::process::Command::new("curl")
            .args(&args)
            .args(["--max-time", "20", "--write-out", "\n%{http_code}"])
            .current_dir(root)
            .output()
            .expect("curl (the README's examples use it)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{command}: curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        let status: u16 = status.trim().parse().expect("curl's status code");
        check_answer(&url, status, body);
    }
    assert!(curls >= 3, "only {curls} curl examples found in \"Try it\"");
    assert_eq!(
        exports, 1,
        "the feedback export example is gone from \"Try it\""
    );
}

/// `feedback export` (the README runs it with the default database path, as `serve`
/// has) prints the feedback the examples posted, one JSON object per line.
fn check_export(app: &TestApp) {
    let db = app.dir.path().join("feedback.sqlite3");
    let out = command()
        .args(["feedback", "export", "--feedback-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        !rows.is_empty(),
        "nothing exported after the feedback example"
    );
    for row in rows {
        assert!(
            row["serviceId"].is_string() && row["card"].is_string(),
            "{row}"
        );
    }
}
