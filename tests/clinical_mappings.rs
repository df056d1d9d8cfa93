//! The shipped mappings load; a broken mapping file is refused with its file and entry
//! named; a site can map a local code (long-haul travel) without a rebuild.

mod clinical_common;

use std::path::Path;

use clinical_common::*;
use dvt_cds::assessment::respond;
use dvt_cds::cds_hooks::Hook;
use dvt_cds::mappings::{CodeSet, Mappings, check_command};
use serde_json::json;

fn copy_shipped(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    std::fs::create_dir_all(to.join("valuesets")).unwrap();
    std::fs::copy(from.join("model.toml"), to.join("model.toml")).unwrap();
    for e in std::fs::read_dir(from.join("valuesets")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join("valuesets").join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn shipped_mappings_load_with_every_code_set() {
    let m = Mappings::embedded().expect("embedded mappings");
    for &set in CodeSet::ALL {
        let info = m.info(set);
        assert!(!info.value_sets.is_empty(), "{}", set.key());
        if set != CodeSet::LongHaulTravel {
            // Version 2 has code sets made of ranges only (metastatic-cancer C77-C79).
            assert!(
                info.codes + info.is_a_roots + info.ranges > 0,
                "{} has no codes",
                set.key()
            );
        }
    }
    assert_eq!(m.model.windows.index_presentation, 14);
    assert_eq!(m.model.thresholds.d_dimer_feu.base, 500.0);
    // The directory on disk is the same set.
    let from_dir =
        Mappings::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings")).unwrap();
    assert_eq!(
        from_dir.info(CodeSet::Cancer).codes,
        m.info(CodeSet::Cancer).codes
    );
    let report = check_command(None).unwrap();
    assert!(report.contains("leg-pain"), "{report}");
    assert!(report.contains("long-haul-travel"));
}

#[test]
fn broken_value_set_is_refused_with_file_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    copy_shipped(dir.path());
    let path = dir.path().join("valuesets/leg-swelling.json");
    let mut vs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    vs["compose"]["include"][1]["filter"] =
        json!([{"property": "concept", "op": "is-a", "value": "R60"}]);
    vs["compose"]["include"][1]["concept"] = json!([{"code": "R60.0"}]);
    std::fs::write(&path, vs.to_string()).unwrap();
    let e = Mappings::load_dir(dir.path()).unwrap_err();
    assert!(e.file.ends_with("valuesets/leg-swelling.json"), "{e}");
    assert_eq!(e.entry, "compose.include[1]");
    let msg = check_command(Some(dir.path())).unwrap_err();
    assert!(
        msg.contains("leg-swelling.json: compose.include[1]: has both concept and filter"),
        "{msg}"
    );
}

#[test]
fn broken_model_is_refused_with_file_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    copy_shipped(dir.path());
    let path = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("recent-surgery = 84", "recent-surgery = -84");
    std::fs::write(&path, text).unwrap();
    let e = Mappings::load_dir(dir.path()).unwrap_err();
    assert!(e.file.ends_with("model.toml"));
    assert!(e.entry.contains("recent-surgery = -84"), "{e}");
}

#[test]
fn a_site_maps_a_local_long_haul_travel_code() {
    let dir = tempfile::tempdir().unwrap();
    copy_shipped(dir.path());
    let local = json!({
        "resourceType": "ValueSet", "id": "local-travel", "url": "https://hospital.example.org/fhir/ValueSet/local-travel",
        "compose": {"include": [{
            "extension": [{"url": "https://dvt-cds.example.org/fhir/StructureDefinition/source", "valueString": "site: travel questionnaire"}],
            "system": "https://hospital.example.org/codes", "concept": [{"code": "LHT4", "display": "Seated travel over 4 hours"}]
        }]}
    });
    std::fs::write(
        dir.path().join("valuesets/local-travel.json"),
        local.to_string(),
    )
    .unwrap();
    // Not yet listed in model.toml: refused, not silently ignored.
    let e = Mappings::load_dir(dir.path()).unwrap_err();
    assert!(e.file.ends_with("local-travel.json"), "{e}");
    let model = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&model).unwrap().replace(
        "long-haul-travel = [\"long-haul-travel\"]",
        "long-haul-travel = [\"long-haul-travel\", \"local-travel\"]",
    );
    std::fs::write(&model, text).unwrap();
    let m = Mappings::load_dir(dir.path()).unwrap();
    let travel = cond("t", "https://hospital.example.org/codes", "LHT4", 20);
    let r = respond(
        &m,
        &input(Hook::PatientView),
        &from_values(&[adult(), leg_pain("p", "M79.662", 1), travel.clone()]),
        now(),
    );
    assert_eq!(category(&r).as_deref(), Some("dvt-evaluation"));
    assert_eq!(strs(&ext(&r)["riskFactors"]), vec!["long-haul-travel"]);
    // Day 57 is outside the 56-day window.
    let mut old = travel;
    old["onsetDateTime"] = json!(day(57));
    let r = respond(
        &m,
        &input(Hook::PatientView),
        &from_values(&[adult(), leg_pain("p", "M79.662", 1), old]),
        now(),
    );
    assert_eq!(category(&r).as_deref(), Some("follow-up"));
}

/// A site's own set (`--mappings DIR`) may use the v2 format: a CPT range in `surgery`
/// makes a knee replacement coded in CPT recent surgery, and an exclude takes one code of
/// the range out again. The record reader sees both through the same classification.
#[test]
fn site_set_with_a_cpt_range_and_an_exclude_drives_the_assessment() {
    let dir = tempfile::tempdir().unwrap();
    copy_shipped(dir.path());
    let path = dir.path().join("valuesets/surgery.json");
    let mut vs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let source = json!([{"url": "https://dvt-cds.example.org/fhir/StructureDefinition/source",
                         "valueString": "site: CPT knee arthroplasty 27440-27447"}]);
    vs["compose"]["include"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "extension": source, "system": "http://www.ama-assn.org/go/cpt",
            "filter": [{"property": "code-range", "op": "=", "value": "27440-27447"}]
        }));
    vs["compose"]["exclude"] = json!([{
        "extension": source, "system": "http://www.ama-assn.org/go/cpt",
        "concept": [{"code": "27441", "display": "excluded for this test"}]
    }]);
    std::fs::write(&path, vs.to_string()).unwrap();
    let m = Mappings::load_dir(dir.path()).unwrap();
    let report = check_command(Some(dir.path())).unwrap();
    // The shipped surgery set has its own CPT ranges (spec v2 §2); the site adds one more.
    let shipped_ranges = mappings().info(dvt_cds::mappings::CodeSet::Surgery).ranges;
    assert!(
        report.contains(&format!("{:>3} ranges   1 excluded", shipped_ranges + 1)),
        "{report}"
    );

    let with = |code: &str| {
        let surgery = procedure("s", "http://www.ama-assn.org/go/cpt", code, 10);
        respond(
            &m,
            &input(Hook::PatientView),
            &from_values(&[adult(), leg_pain("p", "M79.662", 1), surgery]),
            now(),
        )
    };
    for code in ["27440", "27447"] {
        let r = with(code);
        assert_eq!(category(&r).as_deref(), Some("dvt-evaluation"), "{code}");
        assert_eq!(
            strs(&ext(&r)["riskFactors"]),
            vec!["recent-surgery"],
            "{code}"
        );
    }
    for code in ["27439", "27448", "27441"] {
        assert_eq!(
            category(&with(code)).as_deref(),
            Some("follow-up"),
            "{code}"
        );
    }
    // Version 2 ships the knee-arthroplasty range (§2 recent-surgery): the shipped set
    // sees the same knee replacement, and 27441 too (the exclude was the site's only).
    for code in ["27447", "27441"] {
        let surgery = procedure("s", "http://www.ama-assn.org/go/cpt", code, 10);
        let r = respond(
            mappings(),
            &input(Hook::PatientView),
            &from_values(&[adult(), leg_pain("p", "M79.662", 1), surgery]),
            now(),
        );
        assert_eq!(category(&r).as_deref(), Some("dvt-evaluation"), "{code}");
    }
}

/// A site's set names itself: its id and version reach `mappings check`, and a broken
/// range in it is refused naming the file and the entry.
#[test]
fn site_set_id_and_version_and_a_broken_range_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_shipped(dir.path());
    let model = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&model)
        .unwrap()
        .replace("id = \"dvt-cds-default\"", "id = \"stmary-dvt\"")
        .replace("version = \"2.0.0\"", "version = \"2026.3\"");
    std::fs::write(&model, text).unwrap();
    let m = Mappings::load_dir(dir.path()).unwrap();
    assert_eq!(
        (m.id.as_str(), m.version.as_str()),
        ("stmary-dvt", "2026.3")
    );
    let report = check_command(Some(dir.path())).unwrap();
    assert!(
        report.starts_with("mappings OK: stmary-dvt version 2026.3 ("),
        "{report}"
    );

    let path = dir.path().join("valuesets/leg-cast.json");
    let mut vs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    vs["compose"]["include"][0]["filter"] =
        json!([{"property": "code-range", "op": "=", "value": "29405-29345"}]);
    vs["compose"]["include"][0]
        .as_object_mut()
        .unwrap()
        .remove("concept");
    std::fs::write(&path, vs.to_string()).unwrap();
    let msg = check_command(Some(dir.path())).unwrap_err();
    assert!(
        msg.contains(
            "valuesets/leg-cast.json: compose.include[0].filter[0].value: \"29405\" comes after \"29345\""
        ),
        "{msg}"
    );
}

#[test]
fn mappings_check_into_a_closed_pipe_exits_cleanly() {
    // `dvt-cds mappings check | head -1`: the reader closes the pipe early. Rust ignores
    // SIGPIPE, so a plain println! would panic ("failed printing to stdout").
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_dvt-cds"))
        .args(["mappings", "check"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
