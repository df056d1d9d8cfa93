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
    i.draft_orders = vec![
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": service_request("draft-us", CPT, "93971", "draft", 0)}]}),
    ];
    let r = run_with(&i, &[adult(), pain()]);
    assert_json_snapshot!("order_sign_ultrasound", r);
}
