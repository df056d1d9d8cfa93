//! Snapshots of the full card JSON (dvt-model.md §6), one patient per category.

mod clinical_common;

use clinical_common::*;
use dvt_cds::cds_hooks::Hook;
use insta::assert_json_snapshot;
use serde_json::json;

fn pain() -> serde_json::Value {
    leg_pain("pain", "M79.662", 2)
}

#[test]
fn pe_warning_signs_card() {
    let r = run(&[
        adult(),
        pain(),
        cond("sob", ICD, "R06.02", 0),
        procedure("s", SCT, "10002003", 20),
    ]);
    assert_json_snapshot!("pe_warning_signs", r);
}

#[test]
fn pregnancy_card() {
    let r = run(&[
        adult(),
        pain(),
        cond("preg", ICD, "Z33.1", 40),
        cond("ga", ICD, "Z3A.10", 20),
    ]);
    assert_json_snapshot!("pregnancy", r);
}

#[test]
fn dvt_likely_card() {
    let r = run(&[
        adult(),
        pain(),
        cond("ca", ICD, "C50.911", 90),
        procedure("s", SCT, "10002003", 30),
    ]);
    assert_json_snapshot!("dvt_likely", r);
}

#[test]
fn dvt_unlikely_card() {
    let r = run(&[
        patient(Some(&born(65))),
        pain(),
        procedure("s", SCT, "10002003", 30),
        d_dimer("dd", "48065-7", 620.0, "ug/L", 1),
    ]);
    assert_json_snapshot!("dvt_unlikely", r);
}

#[test]
fn dvt_evaluation_card() {
    let r = run(&[adult(), pain(), encounter("stay", "IMP", 12, Some(6))]);
    assert_json_snapshot!("dvt_evaluation", r);
}

#[test]
fn follow_up_card() {
    let r = run(&[adult(), pain(), cond("bc", ICD, "M71.22", 3)]);
    assert_json_snapshot!("follow_up", r);
}

#[test]
fn order_sign_card() {
    let mut i = input(Hook::OrderSign);
    i.draft_orders = from_values(&[
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": service_request("draft-us", CPT, "93971", "draft", 0)}]}),
    ]);
    let r = run_with(&i, &[adult(), pain()]);
    assert_json_snapshot!("order_sign_ultrasound", r);
}

// Spec v2 cards (§4 rule 1 paths, modifiers, §3 to-confirm, data quality).

#[test]
fn pe_warning_signs_ctpa_card() {
    // Wells PE 4.5 from the record (DVT signs 3, heart rate 1.5): CTPA.
    let r = run(&[
        adult(),
        pain(),
        cond("sw", ICD, "R22.42", 2),
        cond("sob", ICD, "R06.02", 0),
        qty(obs("hr", LOINC, "8867-4", &hours(2)), json!(112), "/min"),
    ]);
    assert_json_snapshot!("pe_warning_signs_ctpa", r);
}

#[test]
fn pe_warning_signs_known_vte_card() {
    let r = run(&[
        adult(),
        pain(),
        cond("sob", ICD, "R06.02", 0),
        cond("dvt", ICD, "I82.412", 20),
    ]);
    assert_json_snapshot!("pe_warning_signs_known_vte", r);
}

#[test]
fn pe_warning_signs_on_a_drafted_ctpa_card() {
    // No leg symptoms: the drafted CTPA is the trigger; it is not suggested again.
    let mut i = input(Hook::OrderSelect);
    i.draft_orders = from_values(&[service_request("draft-ct", CPT, "71275", "draft", 0)]);
    let r = run_with(&i, &[adult(), cond("cp", ICD, "R07.89", 0)]);
    assert_json_snapshot!("pe_warning_signs_drafted_ctpa", r);
}

#[test]
fn dvt_evaluation_anticoagulated_card() {
    // Anticoagulated: the ultrasound replaces rule 7's D-dimer; the indicator stays.
    let r = run(&[
        adult(),
        pain(),
        procedure("s", SCT, "10002003", 30),
        med_request("ac", "1037045", "active"),
    ]);
    assert_json_snapshot!("dvt_evaluation_anticoagulated", r);
}

#[test]
fn cancer_to_confirm_card() {
    // A cancer on the problem list with no activity in 183 days: to-confirm, not counted.
    let r = run(&[
        adult(),
        pain(),
        cond("ca", ICD, "C50.911", 400),
        procedure("s", SCT, "10002003", 30),
    ]);
    assert_json_snapshot!("cancer_to_confirm", r);
}

#[test]
fn possibly_anticoagulated_card() {
    // A current medication whose reference cannot be resolved: no D-dimer, rule 6 blocked.
    let mut med = med_request("m", "1037045", "active");
    let obj = med.as_object_mut().unwrap();
    obj.remove("medicationCodeableConcept");
    obj.insert(
        "medicationReference".into(),
        json!({"reference": "Medication/unknown-1"}),
    );
    let r = run(&[
        adult(),
        pain(),
        med,
        d_dimer("dd", "48065-7", 300.0, "ug/L", 1),
    ]);
    assert_json_snapshot!("possibly_anticoagulated", r);
}

#[test]
fn postpartum_card() {
    let r = run(&[adult(), pain(), cond("pp", ICD, "O80", 12)]);
    assert_json_snapshot!("postpartum", r);
}
