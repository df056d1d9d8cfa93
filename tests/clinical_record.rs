//! Table-driven black-box cases of what version 2 changed in reading the record
//! (`dvt-model.md` §1, §2, §8), through `pipeline::respond_to`: each case names the line it
//! checks and looks only at what the card's extension says (category, findings, risk
//! factors, anticoagulated), not at its wording.

mod clinical_common;

use clinical_common::*;
use serde_json::{Value, json};

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn cc(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

/// Calf pain (M79.662) 2 days ago: the index presentation.
fn pain() -> Value {
    leg_pain("pain", "M79.662", 2)
}

fn finding<'a>(r: &'a Value, concept: &str) -> Option<&'a Value> {
    card(r)?["extension"]["dvt-assessment"]["findings"]
        .as_array()?
        .iter()
        .find(|f| f["concept"] == concept)
}

fn risk_factors(r: &Value) -> Vec<String> {
    card(r)
        .and_then(|c| c["extension"]["dvt-assessment"]["riskFactors"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

type Check = fn(&Value) -> bool;

#[test]
fn version_2_record_reading() {
    let cases: Vec<(&str, Vec<Value>, Check)> = vec![
        // §1 partial dates.
        (
            "§1 pain with onset this month is recent",
            vec![with(
                cond("a", ICD, "M79.662", 0),
                "onsetDateTime",
                json!("2026-11"),
            )],
            |r| finding(r, "leg-pain").is_some(),
        ),
        (
            "§1 pain with onset 2019 recorded today is not",
            vec![with(
                with(cond("a", ICD, "M79.662", 0), "onsetDateTime", json!("2019")),
                "recordedDate",
                json!(day(0)),
            )],
            |r| card(r).is_none(),
        ),
        // §1 generic finding + body site; symptom values; negative answers.
        (
            "§1 pain (22253000) on the left lower leg is leg pain, on the left",
            vec![with(
                cond("a", SCT, "22253000", 1),
                "bodySite",
                json!([cc(SCT, "48979004")]),
            )],
            |r| finding(r, "leg-pain").is_some_and(|f| f["side"] == "left"),
        ),
        (
            "§1 pain on an arm is not",
            vec![with(
                cond("a", SCT, "22253000", 1),
                "bodySite",
                json!([cc(SCT, "53120007")]),
            )],
            |r| card(r).is_none(),
        ),
        (
            "§1 Symptom (75325-1) whose value is calf pain",
            vec![with(
                obs("o", LOINC, "75325-1", &day(1)),
                "valueCodeableConcept",
                cc(SCT, "300954003"),
            )],
            |r| finding(r, "leg-pain").is_some(),
        ),
        (
            "§1 calf pain answered \"No\"",
            vec![with(
                obs("o", SCT, "300954003", &day(1)),
                "valueString",
                json!("No"),
            )],
            |r| card(r).is_none(),
        ),
        (
            "§1 calf pain answered LA32-8 (No)",
            vec![with(
                obs("o", SCT, "300954003", &day(1)),
                "valueCodeableConcept",
                cc(LOINC, "LA32-8"),
            )],
            |r| card(r).is_none(),
        ),
        // §2 previous / current VTE.
        (
            "§2 PE 10 days ago: current VTE, no card",
            vec![pain(), cond("pe", ICD, "I26.99", 10)],
            |r| card(r).is_none(),
        ),
        (
            "§2 PE 400 days ago: previous VTE",
            vec![pain(), cond("pe", ICD, "I26.99", 400)],
            |r| risk_factors(r).contains(&"previous-vte".to_string()),
        ),
        // §1 encounters.
        (
            "§1 in-progress inpatient stay of 5 days: bedridden",
            vec![
                pain(),
                with(
                    encounter("e", "IMP", 5, None),
                    "status",
                    json!("in-progress"),
                ),
            ],
            |r| risk_factors(r).contains(&"bedridden".to_string()),
        ),
        (
            "§1 finished inpatient stay without an end: not ongoing",
            vec![
                pain(),
                with(encounter("e", "IMP", 10, None), "status", json!("finished")),
            ],
            |r| !risk_factors(r).contains(&"bedridden".to_string()),
        ),
        // §1 medications.
        (
            "§1 contained Medication (apixaban)",
            vec![pain(), {
                let mut m = med_request("m", "1364430", "active");
                m.as_object_mut()
                    .unwrap()
                    .remove("medicationCodeableConcept");
                m["medicationReference"] = json!({"reference": "#med"});
                m["contained"] =
                    json!([{"resourceType": "Medication", "id": "med", "code": cc(RX, "1364430")}]);
                m
            }],
            |r| ext(r)["anticoagulated"] == true,
        ),
        (
            "§1 Medication/id in the record (warfarin)",
            vec![
                pain(),
                {
                    let mut m = med_request("m", "11289", "active");
                    m.as_object_mut()
                        .unwrap()
                        .remove("medicationCodeableConcept");
                    m["medicationReference"] = json!({"reference": "Medication/w"});
                    m
                },
                json!({"resourceType": "Medication", "id": "w", "code": cc(RX, "11289")}),
            ],
            |r| ext(r)["anticoagulated"] == true,
        ),
        // §2 pregnancy and postpartum windows.
        (
            "§2 pregnant 294 days ago",
            vec![
                pain(),
                with(
                    obs("s", LOINC, "82810-3", &day(294)),
                    "valueCodeableConcept",
                    cc(SCT, "77386006"),
                ),
            ],
            |r| category(r).as_deref() == Some("pregnancy"),
        ),
        (
            "§2 pregnant 295 days ago",
            vec![
                pain(),
                with(
                    obs("s", LOINC, "82810-3", &day(295)),
                    "valueCodeableConcept",
                    cc(SCT, "77386006"),
                ),
            ],
            |r| category(r).as_deref() != Some("pregnancy"),
        ),
        (
            "§2 birth (386216000) 42 days ago",
            vec![pain(), procedure("b", SCT, "386216000", 42)],
            |r| finding(r, "postpartum").is_some(),
        ),
        (
            "§2 birth 43 days ago",
            vec![pain(), procedure("b", SCT, "386216000", 43)],
            |r| finding(r, "postpartum").is_none(),
        ),
        // §2 active cancer.
        (
            "§2 cancer on the list 400 days, no activity",
            vec![pain(), cond("ca", ICD, "C50.911", 400)],
            |r| !risk_factors(r).contains(&"active-cancer".to_string()),
        ),
        (
            "§2 cancer 400 days with chemotherapy 100 days ago",
            vec![
                pain(),
                cond("ca", ICD, "C50.911", 400),
                procedure("t", SCT, "367336001", 100),
            ],
            |r| risk_factors(r).contains(&"active-cancer".to_string()),
        ),
    ];
    let mut failed = Vec::new();
    for (name, mut resources, check) in cases {
        resources.insert(0, adult());
        let r = run(&resources);
        if !check(&r) {
            failed.push(format!("{name}: {r:#}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
