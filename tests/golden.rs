//! Differential-test golden files (issue 11): the responses of the core as it stood before
//! the typed-core refactor, so the new core can be held to give the same answers.
//!
//! Two sets, one gzipped JSON object `{name: response}` each under `tests/golden/`:
//! - `examples.json.gz`: every `cds-hooks/examples/*.request.json` through
//!   `dvt-cds evaluate --request F --now 2026-11-20T12:00:00Z` (the real binary);
//! - `synthea.json.gz`: every committed Synthea patient (`tests/corpus/synthea/`, 200)
//!   with calf pain added (ICD-10-CM M79.662, active, onset 2 days before now), through
//!   what `dvt-cds evaluate --bundle F --now 2026-12-01T12:00:00Z` runs, in-process
//!   (`evaluate::from_bundle` then `assessment::respond`); three patients also go through
//!   the binary to show the in-process path answers as the command does.
//!
//! The clinical test patients (`tests/clinical_patients.rs`) pin their answers already.
//!
//! Record (only from a core whose answers are the reference):
//! `DVT_CDS_BLESS=1 cargo test --test golden`. Without it a missing golden file fails.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use dvt_cds::assessment::respond;
use dvt_cds::evaluate::{EvaluateArgs, from_bundle};
use dvt_cds::mappings::Mappings;
use serde_json::{Value, json};

/// The examples' date (cds-hooks/examples/README.md).
const EXAMPLES_NOW: &str = "2026-11-20T12:00:00Z";
/// The corpus' reference date (tests/corpus/README.md).
const CORPUS_NOW: &str = "2026-12-01T12:00:00Z";
/// Set to record the golden files from the current core.
const BLESS: &str = "DVT_CDS_BLESS";

type Responses = BTreeMap<String, Value>;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn golden_dir() -> PathBuf {
    root().join("tests/golden")
}

fn bless() -> bool {
    std::env::var_os(BLESS).is_some_and(|v| !v.is_empty() && v != "0")
}

// ---- the golden file: read, write, compare ----

fn golden_file(dir: &Path, set: &str) -> PathBuf {
    dir.join(format!("{set}.json.gz"))
}

fn write_golden(dir: &Path, set: &str, got: &Responses) {
    std::fs::create_dir_all(dir).unwrap();
    // GzEncoder writes mtime 0: the same responses give the same bytes.
    let file = std::fs::File::create(golden_file(dir, set)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    gz.write_all(&serde_json::to_vec_pretty(got).unwrap())
        .unwrap();
    gz.write_all(b"\n").unwrap();
    gz.finish().unwrap();
}

fn read_golden(dir: &Path, set: &str) -> Result<Responses, String> {
    let path = golden_file(dir, set);
    let file = std::fs::File::open(&path).map_err(|e| {
        format!(
            "{}: {e}. Record it from the current core with \
             `{BLESS}=1 cargo test --test golden` (only from a core whose answers are the \
             reference: the golden files are what the typed core must reproduce)",
            path.display()
        )
    })?;
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut text)
        .map_err(|e| format!("{}: not gzip: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// The first place where `got` and `want` differ, as a JSON path, with both values
/// (shortened).
fn first_difference(path: &str, got: &Value, want: &Value) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let keys: std::collections::BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}.{k}");
                match (g.get(k), w.get(k)) {
                    (Some(a), Some(b)) => first_difference(&p, a, b),
                    (Some(_), None) => Some(format!("{p}: not in the golden file")),
                    (None, _) => Some(format!("{p}: missing (the golden file has it)")),
                }
            })
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(&format!("{path}[{i}]"), a, b)),
        _ if got == want => None,
        _ => Some(format!(
            "{path}: got {}, golden {}",
            short(got),
            short(want)
        )),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// `got` against the golden set (or, blessing, `got` becomes it): every name missing,
/// added or answered differently, each differing one with its first differing path.
fn check(dir: &Path, set: &str, got: &Responses, bless: bool) -> Result<(), String> {
    if bless {
        write_golden(dir, set, got);
        eprintln!(
            "recorded {} ({} responses)",
            golden_file(dir, set).display(),
            got.len()
        );
        return Ok(());
    }
    let want = read_golden(dir, set)?;
    let mut problems = Vec::new();
    for name in want.keys().filter(|k| !got.contains_key(*k)) {
        problems.push(format!("{name}: in the golden file, not answered now"));
    }
    for (name, g) in got {
        match want.get(name) {
            None => problems.push(format!("{name}: answered now, not in the golden file")),
            Some(w) => {
                if let Some(d) = first_difference("$", g, w) {
                    problems.push(format!("{name}: {d}"));
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let total = problems.len();
    problems.truncate(20);
    Err(format!(
        "{set}: {total} of {} responses differ from {}:\n  {}{}",
        want.len().max(got.len()),
        golden_file(dir, set).display(),
        problems.join("\n  "),
        if total > 20 { "\n  …" } else { "" }
    ))
}

fn assert_golden(set: &str, got: &Responses) {
    if let Err(e) = check(&golden_dir(), set, got, bless()) {
        panic!("{e}");
    }
}

// ---- (a) the example requests, through the binary ----

fn evaluate_binary(flag: &str, file: &Path, now: &str) -> Value {
    let out = common::command()
        .args(["evaluate", flag, file.to_str().unwrap(), "--now", now])
        .output()
        .expect("run dvt-cds evaluate");
    if !out.status.success() {
        // A refusal is an answer too: pinned with its words.
        return json!({"refused": String::from_utf8_lossy(&out.stderr).trim_end()});
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{}: evaluate printed no JSON: {e}", file.display());
    })
}

#[test]
fn every_example_request_answers_as_recorded() {
    let dir = root().join("cds-hooks/examples");
    let mut got = Responses::new();
    for entry in std::fs::read_dir(&dir).expect("cds-hooks/examples") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".request.json") {
            got.insert(
                stem.to_string(),
                evaluate_binary("--request", &path, EXAMPLES_NOW),
            );
        }
    }
    assert!(got.len() >= 8, "only {} example requests", got.len());
    assert_golden("examples", &got);
}

// ---- (b) the Synthea corpus with calf pain, in-process ----

/// The committed corpus' files, by name (`p001` …).
fn corpus_files() -> Vec<(String, PathBuf)> {
    let dir = root().join("tests/corpus/synthea");
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .expect("tests/corpus/synthea")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".json.gz")?
                .to_string();
            Some((name, path))
        })
        .collect();
    files.sort();
    files
}

/// One corpus Bundle, decompressed, with calf pain added for its patient.
fn with_calf_pain(name: &str, gz: &Path) -> Value {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    let mut bundle: Value = serde_json::from_slice(&text).unwrap();
    let entries = bundle["entry"]
        .as_array_mut()
        .expect("a Bundle with entries");
    let patient = entries
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .unwrap_or_else(|| panic!("{name}: no Patient"));
    let url = match patient["fullUrl"].as_str() {
        Some(u) => u.to_string(),
        None => format!("Patient/{}", patient["resource"]["id"].as_str().unwrap()),
    };
    entries.push(common::calf_pain_entry(
        &format!("golden-calf-pain-{name}"),
        &url,
    ));
    bundle
}

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// What `dvt-cds evaluate --bundle F --now CORPUS_NOW` answers, without the process.
fn evaluate_in_process(mappings: &Mappings, bundle: &Value) -> Value {
    let args = EvaluateArgs {
        now: Some(instant(CORPUS_NOW)),
        ..EvaluateArgs::default()
    };
    match from_bundle(bundle, &args) {
        Ok((input, resources)) => respond(
            mappings,
            &input,
            &dvt_cds::record::resource::from_values(&resources),
            instant(CORPUS_NOW),
        ),
        Err(e) => json!({"refused": e}),
    }
}

#[test]
fn every_synthea_patient_with_calf_pain_answers_as_recorded() {
    let started = std::time::Instant::now();
    let mappings = Mappings::embedded().expect("embedded mappings");
    let files = corpus_files();
    assert_eq!(files.len(), 200, "tests/corpus/synthea holds 200 patients");
    let got = Mutex::new(Responses::new());
    let next = AtomicUsize::new(0);
    // Two at a time: the machine's cores.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some((name, path)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let answer = evaluate_in_process(&mappings, &with_calf_pain(name, path));
                    got.lock().unwrap().insert(name.clone(), answer);
                }
            });
        }
    });
    let got = got.into_inner().unwrap();
    eprintln!(
        "{} corpus patients evaluated in {:.1} s",
        got.len(),
        started.elapsed().as_secs_f64()
    );
    // The set must say something: most adults with calf pain get a card.
    let with_card = got
        .values()
        .filter(|v| v["cards"].as_array().is_some_and(|c| !c.is_empty()))
        .count();
    assert!(with_card >= 100, "only {with_card} of 200 got a card");
    assert_golden("synthea", &got);
}

#[test]
fn the_in_process_path_answers_as_evaluate_bundle_does() {
    let mappings = Mappings::embedded().expect("embedded mappings");
    let dir = tempfile::tempdir().unwrap();
    let files = corpus_files();
    for (name, path) in files.iter().step_by(99) {
        let bundle = with_calf_pain(name, path);
        let copy = dir.path().join(format!("{name}.json"));
        std::fs::write(&copy, serde_json::to_vec(&bundle).unwrap()).unwrap();
        assert_eq!(
            evaluate_in_process(&mappings, &bundle),
            evaluate_binary("--bundle", &copy, CORPUS_NOW),
            "{name}: the in-process answer differs from `dvt-cds evaluate --bundle`"
        );
    }
}

// ---- the comparison itself can fail ----

#[test]
fn a_missing_golden_file_fails_and_says_how_to_record_it() {
    let dir = tempfile::tempdir().unwrap();
    let got = Responses::from([("a".to_string(), json!({"cards": []}))]);
    let e = check(dir.path(), "none", &got, false).unwrap_err();
    assert!(
        e.contains("DVT_CDS_BLESS=1 cargo test --test golden"),
        "{e}"
    );
}

#[test]
fn a_changed_added_or_lost_response_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = Responses::from([
        (
            "a".to_string(),
            json!({"cards": [{"indicator": "warning"}]}),
        ),
        ("b".to_string(), json!({"cards": []})),
    ]);
    check(dir.path(), "set", &recorded, true).unwrap();
    check(dir.path(), "set", &recorded, false).unwrap();

    let mut changed = recorded.clone();
    changed.insert("a".into(), json!({"cards": [{"indicator": "info"}]}));
    let e = check(dir.path(), "set", &changed, false).unwrap_err();
    assert!(
        e.contains(r#"a: $.cards[0].indicator: got "info", golden "warning""#),
        "{e}"
    );

    let mut lost = recorded.clone();
    lost.remove("b");
    lost.insert("c".into(), json!({"cards": []}));
    let e = check(dir.path(), "set", &lost, false).unwrap_err();
    assert!(e.contains("b: in the golden file, not answered now"), "{e}");
    assert!(e.contains("c: answered now, not in the golden file"), "{e}");
}

#[test]
fn a_field_added_or_dropped_is_a_difference() {
    let a = json!({"cards": [{"summary": "s", "detail": "d"}]});
    let b = json!({"cards": [{"summary": "s"}]});
    assert_eq!(
        first_difference("$", &a, &b).as_deref(),
        Some("$.cards[0].detail: not in the golden file")
    );
    assert_eq!(
        first_difference("$", &b, &a).as_deref(),
        Some("$.cards[0].detail: missing (the golden file has it)")
    );
    assert_eq!(
        first_difference("$", &json!([1, 2]), &json!([1])).as_deref(),
        Some("$: got [1,2], golden [1]")
    );
    assert_eq!(first_difference("$", &a, &a.clone()), None);
}
