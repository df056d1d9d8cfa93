//! The example requests under cds-hooks/examples/ produce exactly their example
//! responses at the fixed now 2026-11-20T12:00:00Z (cds-hooks/examples/README.md).
//! Regenerate after a reviewed change with `UPDATE_EXAMPLES=1`.

mod clinical_common;

use std::path::Path;

use clinical_common::{mappings, now};
use dvt_cds::cds_hooks::RequestBody;
use dvt_cds::evaluate::evaluate_request;
use serde_json::Value;

/// A request as `evaluate` reads it from its file.
fn body(req: &Value) -> RequestBody {
    RequestBody::from_slice(&serde_json::to_vec(req).unwrap()).unwrap()
}

fn examples() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/examples");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("examples dir") {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".request.json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            out.push((stem.to_string(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_example_request_gives_its_example_response() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/examples");
    let all = examples();
    assert!(all.len() >= 8, "{} examples", all.len());
    for (stem, req) in all {
        // The service's pipeline, offline (what `dvt-cds evaluate --request` runs).
        let got = evaluate_request(mappings(), None, body(&req), now())
            .map(|r| serde_json::to_value(r).unwrap())
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let path = dir.join(format!("{stem}.response.json"));
        if std::env::var_os("UPDATE_EXAMPLES").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        }
        let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{stem}.response.json: {e}"));
        assert_eq!(
            got, want,
            "{stem}: response differs from {stem}.response.json"
        );
    }
}

#[test]
fn examples_cover_every_hook_and_category() {
    let mut hooks = std::collections::BTreeSet::new();
    let mut categories = std::collections::BTreeSet::new();
    for (stem, req) in examples() {
        hooks.insert(req["hook"].as_str().unwrap().to_string());
        let got =
            serde_json::to_value(evaluate_request(mappings(), None, body(&req), now()).unwrap())
                .unwrap();
        match got["cards"].as_array().unwrap().first() {
            Some(c) => {
                let cat = c["extension"]["dvt-assessment"]["category"]
                    .as_str()
                    .unwrap()
                    .to_string();
                // The file name says what the example shows.
                assert!(
                    stem.starts_with(&cat) || stem.starts_with("order-"),
                    "{stem} gave {cat}"
                );
                categories.insert(cat);
            }
            None => {
                assert_eq!(stem, "no-card");
                categories.insert("no-card".to_string());
            }
        }
    }
    for h in [
        "patient-view",
        "encounter-start",
        "order-select",
        "order-sign",
    ] {
        assert!(hooks.contains(h), "no example for {h}");
    }
    for c in [
        "pe-warning-signs",
        "pregnancy",
        "dvt-likely",
        "dvt-unlikely",
        "dvt-evaluation",
        "follow-up",
        "no-card",
    ] {
        assert!(categories.contains(c), "no example for {c}");
    }
}

fn evaluate_args() -> dvt_cds::evaluate::EvaluateArgs {
    dvt_cds::evaluate::EvaluateArgs {
        now: Some(now()),
        ..Default::default()
    }
}

#[test]
fn evaluate_reads_a_request_file_like_the_service() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/examples");
    let mut args = evaluate_args();
    args.request = Some(dir.join("pregnancy.request.json"));
    let got = serde_json::to_value(dvt_cds::evaluate::evaluate_command(&args).unwrap()).unwrap();
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("pregnancy.response.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(got, want);
}

#[test]
fn evaluate_reads_a_bundle_and_picks_the_patient() {
    let tmp = tempfile::tempdir().unwrap();
    let mut entries = vec![];
    for (pid, code) in [("a", "M79.662"), ("b", "I10")] {
        entries.push(serde_json::json!({"resource": {"resourceType": "Patient", "id": pid, "birthDate": "1980-01-01"}}));
        entries.push(
            serde_json::json!({"resource": {"resourceType": "Condition", "id": format!("c-{pid}"),
            "subject": {"reference": format!("Patient/{pid}")},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]},
            "onsetDateTime": "2026-11-19"}}),
        );
    }
    let path = tmp.path().join("b.json");
    std::fs::write(
        &path,
        serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
            .to_string(),
    )
    .unwrap();
    let mut args = evaluate_args();
    args.bundle = Some(path.clone());
    let e = dvt_cds::evaluate::evaluate_command(&args).unwrap_err();
    assert!(e.contains("--patient"), "{e}");
    args.patient = Some("a".into());
    let r = serde_json::to_value(dvt_cds::evaluate::evaluate_command(&args).unwrap()).unwrap();
    assert_eq!(
        r["cards"][0]["extension"]["dvt-assessment"]["category"],
        "follow-up"
    );
    args.patient = Some("b".into());
    let r = serde_json::to_value(dvt_cds::evaluate::evaluate_command(&args).unwrap()).unwrap();
    assert_eq!(r, serde_json::json!({"cards": []}));
}

#[test]
fn evaluate_refuses_unreadable_input_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.json");
    std::fs::write(&path, "{not json").unwrap();
    let mut args = evaluate_args();
    args.request = Some(path.clone());
    assert!(
        dvt_cds::evaluate::evaluate_command(&args)
            .unwrap_err()
            .contains("not valid JSON")
    );
    args.request = None;
    args.bundle = Some(tmp.path().join("missing.json"));
    assert!(
        dvt_cds::evaluate::evaluate_command(&args)
            .unwrap_err()
            .contains("cannot read")
    );
    std::fs::write(&path, r#"{"resourceType": "Patient", "id": "p"}"#).unwrap();
    args.bundle = Some(path);
    assert!(
        dvt_cds::evaluate::evaluate_command(&args)
            .unwrap_err()
            .contains("not a FHIR Bundle")
    );
}
