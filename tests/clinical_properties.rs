//! Property tests of the assessment's invariants (style.md, dvt-model.md §3, §4, §6).

mod clinical_common;

use clinical_common::*;
use dvt_cds::assessment::{assess, respond};
use dvt_cds::cds_hooks::Hook;
use proptest::prelude::*;
use serde_json::Value;

/// Risk factor resources the Wells items read (§3).
fn risk(i: usize) -> Value {
    match i % 7 {
        0 => procedure("s", SCT, "10002003", 20),
        1 => cond("ca", ICD, "C80.1", 100),
        2 => cond("pa", ICD, "G82.20", 100),
        3 => cond("b", ICD, "Z74.01", 5),
        4 => cond("v", ICD, "Z86.718", 900),
        5 => procedure("c", CPT, "29405", 10),
        _ => encounter("e", "IMP", 10, Some(5)),
    }
}

/// Any resource the model reads, at any date, incl. noise.
fn any_resource(kind: usize, days: i64) -> Value {
    match kind % 12 {
        0 => leg_pain("p", "M79.661", days),
        1 => cond("sw", SCT, "102572006", days),
        2 => cond("d", ICD, "R06.02", days),
        3 => d_dimer(
            "dd",
            "48065-7",
            (days.abs() * 37 % 1500) as f64,
            "ug/L",
            days.rem_euclid(5),
        ),
        4 => cond("preg", ICD, "Z33.1", days),
        5 => cond("dvt", ICD, "I82.402", days),
        6 => med_request("m", "1037045", "active"),
        7 => cond("bc", ICD, "M71.22", days),
        8 => service_request("us", CPT, "93971", "active", days),
        9 => qty(
            obs("hr", LOINC, "8867-4", &hours(days)),
            serde_json::json!(days * 3),
            "/min",
        ),
        10 => risk(days as usize),
        _ => serde_json::json!({"resourceType": "Condition", "code": 7}),
    }
}

fn record() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec((0usize..12, -5i64..120), 0..14).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (k, d))| {
                let mut r = any_resource(k, d);
                r["id"] = serde_json::json!(format!("r{i}"));
                r
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn adding_a_risk_factor_never_lowers_wells(base in record(), extra in 0usize..7, age in 10i32..95) {
        let mut rs = base.clone();
        rs.push(patient(Some(&born(age))));
        let before = assess(mappings(), &input(Hook::PatientView), &from_values(&rs), now()).wells.documented;
        let mut r = risk(extra);
        r["id"] = serde_json::json!("added");
        rs.push(r);
        let after = assess(mappings(), &input(Hook::PatientView), &from_values(&rs), now()).wells.documented;
        prop_assert!(after >= before, "{before} -> {after}");
    }

    #[test]
    fn summary_is_always_under_140_chars(rs in record(), age in 0i32..100, hook in 0usize..4) {
        let mut rs = rs;
        rs.push(patient(Some(&born(age))));
        let resp = respond(mappings(), &input(Hook::ALL[hook]), &from_values(&rs), now());
        if let Some(c) = card(&resp) {
            let s = c["summary"].as_str().unwrap();
            prop_assert!(s.chars().count() < 140, "{} chars: {s}", s.chars().count());
            prop_assert!(!s.is_empty());
        }
    }

    #[test]
    fn no_index_presentation_means_no_card(rs in record()) {
        // Drop the leg complaints (kinds 0 and 1): nothing else can fire a card.
        let rs: Vec<Value> = rs.into_iter().filter(|r| {
            let code = r["code"]["coding"][0]["code"].as_str().unwrap_or("");
            code != "M79.661" && code != "102572006"
        }).chain([adult()]).collect();
        let resp = respond(mappings(), &input(Hook::PatientView), &from_values(&rs), now());
        prop_assert_eq!(resp["cards"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn same_input_same_uuid(rs in record()) {
        let mut rs = rs;
        rs.push(leg_pain("idx", "M79.662", 1));
        rs.push(adult());
        let a = respond(mappings(), &input(Hook::PatientView), &from_values(&rs), now());
        let b = respond(mappings(), &input(Hook::PatientView), &from_values(&rs), now());
        prop_assert_eq!(&a, &b);
        if let Some(c) = card(&a) {
            prop_assert!(c["uuid"].as_str().is_some_and(|u| !u.is_empty()));
        }
    }
}
