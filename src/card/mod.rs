//! The card (`dvt-model.md` §6), rendered from an [`Assessment`]. Pure.
//!
//! Every statement in the detail points to the resource it came from; the
//! `dvt-assessment` extension is the machine-readable twin of the detail.
//!
//! - [`text`]: the words (summary, detail, labels), every number from the mappings.

pub mod text;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::assessment::concepts::Evidence;
use crate::assessment::{Assessment, Category, HookInput, Suggestion, SuggestionKind, WellsPe};
use crate::cds_hooks::{self, ActionType, Card, Coding, LinkType, SelectionBehavior};
use crate::mappings::{Mappings, OrderSpec};

/// §6 summary: fewer than 140 characters.
pub const SUMMARY_MAX_CHARS: usize = 139;

/// Namespace of card uuids (uuid v5 of hookInstance and category, §6).
fn namespace() -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        b"https://dvt-cds.example.org/cds-services/card",
    )
}

/// §6 uuid: deterministic for the same hookInstance and category.
pub fn card_uuid(hook_instance: &str, category: Category) -> Uuid {
    Uuid::new_v5(
        &namespace(),
        format!("{hook_instance}\n{}", category.as_str()).as_bytes(),
    )
}

/// The extension's evidence: references only (§6).
fn references(evidence: &[Evidence]) -> Vec<&str> {
    evidence.iter().map(|e| e.reference.as_str()).collect()
}

fn json_num(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Cut to at most `SUMMARY_MAX_CHARS` characters (a last guard; summaries are written
/// to fit).
fn fit(s: String) -> String {
    if s.chars().count() <= SUMMARY_MAX_CHARS {
        return s;
    }
    let mut out: String = s.chars().take(SUMMARY_MAX_CHARS - 1).collect();
    out.push('…');
    out
}

fn suggestion(
    m: &Mappings,
    input: &HookInput,
    a: &Assessment,
    s: &Suggestion,
) -> Option<cds_hooks::Suggestion> {
    let dd_label;
    let (spec, label): (&OrderSpec, &str) = match s.kind {
        SuggestionKind::Ultrasound => (
            &m.model.orders.ultrasound,
            "Order compression duplex ultrasound of the leg veins",
        ),
        SuggestionKind::Ctpa => (&m.model.orders.ctpa, "Order CT pulmonary angiography"),
        SuggestionKind::DDimer => {
            // §4 rule 7: the threshold written out.
            dd_label = format!(
                "Order a D-dimer (positive at {})",
                text::short_threshold(a, m, a.suggested_d_dimer_kind)
            );
            (&m.model.orders.d_dimer, dd_label.as_str())
        }
    };
    let draft = dvt_fhir::Draft {
        patient_id: input.patient_id.clone(),
        encounter_id: input.encounter_id.clone(),
        codings: spec
            .codings
            .iter()
            .map(|c| dvt_fhir::DraftCoding {
                system: c.system.clone(),
                code: c.code.clone(),
                display: c.display.clone(),
            })
            .collect(),
        text: spec.text.clone(),
        category: spec.category.as_ref().map(|c| dvt_fhir::DraftCoding {
            system: c.system.clone(),
            code: c.code.clone(),
            display: c.display.clone(),
        }),
        priority: s.priority,
        reason_references: a.index_refs.clone(),
        patient_instruction: None,
    };
    let resource = dvt_fhir::draft_service_request(&draft).ok()?;
    let cat = a.category?.as_str();
    let kind = match s.kind {
        SuggestionKind::Ultrasound => "ultrasound",
        SuggestionKind::Ctpa => "ctpa",
        SuggestionKind::DDimer => "d-dimer",
    };
    let uuid = Uuid::new_v5(
        &namespace(),
        format!("{}\n{cat}\n{kind}", input.hook_instance).as_bytes(),
    );
    Some(cds_hooks::Suggestion {
        actions: vec![cds_hooks::Action {
            description: format!("Draft order: {}", spec.text),
            resource,
            kind: ActionType::Create,
        }],
        is_recommended: s.is_recommended,
        label: label.to_string(),
        uuid,
    })
}

/// The `dvt-assessment` extension (§6): the detail's machine-readable twin. No empty
/// value is written (the JSON rule): lists and optional members only when they have
/// something.
fn extension(m: &Mappings, a: &Assessment) -> Value {
    let cat = a.category.map(|c| c.as_str()).unwrap_or("");
    let mut ext = Map::new();
    ext.insert("category".into(), json!(cat));
    ext.insert(
        "wells".into(),
        json!({"documented": a.wells.documented, "possible": a.wells.possible, "items": wells_items(a)}),
    );
    let mut put_list = |k: &str, v: Vec<&str>| {
        if !v.is_empty() {
            ext.insert(k.into(), json!(v));
        }
    };
    put_list(
        "riskFactors",
        a.risk_factors.iter().map(|c| c.as_str()).collect(),
    );
    put_list(
        "warningSigns",
        a.concepts
            .warning_signs
            .iter()
            .map(|f| f.concept.as_str())
            .collect(),
    );
    put_list(
        "alternatives",
        a.concepts
            .alternatives
            .iter()
            .map(|f| f.concept.as_str())
            .collect(),
    );
    let findings = findings(a);
    if !findings.is_empty() {
        ext.insert("findings".into(), Value::Array(findings));
    }
    ext.insert("anticoagulated".into(), json!(a.anticoagulated()));
    if let Some(dd) = d_dimer(a) {
        ext.insert("dDimer".into(), dd);
    }
    if let Some(pe) = &a.wells_pe {
        ext.insert("wellsPe".into(), wells_pe(pe));
    }
    let quality = data_quality(a);
    if !quality.is_empty() {
        ext.insert("dataQuality".into(), Value::Array(quality));
    }
    ext.insert(
        "mappings".into(),
        json!({"name": m.id, "version": m.version}),
    );
    json!({ "dvt-assessment": ext })
}

/// `wells.items`: each item's points, status and evidence (references only).
fn wells_items(a: &Assessment) -> Vec<Value> {
    a.wells
        .items
        .iter()
        .map(|i| {
            let mut o = Map::new();
            o.insert("id".into(), json!(i.id.as_str()));
            o.insert("points".into(), json!(i.points));
            o.insert("status".into(), json!(i.status.as_str()));
            if !i.evidence.is_empty() {
                o.insert("evidence".into(), json!(references(&i.evidence)));
            }
            Value::Object(o)
        })
        .collect()
}

/// `findings`: every concept found, with its evidence, date and side.
fn findings(a: &Assessment) -> Vec<Value> {
    a.findings()
        .into_iter()
        .map(|f| {
            let mut o = Map::new();
            o.insert("concept".into(), json!(f.concept.as_str()));
            if !f.evidence.is_empty() {
                o.insert("evidence".into(), json!(references(&f.evidence)));
            }
            if let Some(d) = f.date {
                o.insert("date".into(), json!(d.to_string()));
            }
            if let Some(s) = f.side {
                o.insert("side".into(), json!(s.as_str()));
            }
            Value::Object(o)
        })
        .collect()
}

/// `dDimer`: the value in µg/L when it converts, else as written; kind, threshold
/// and result (§5).
fn d_dimer(a: &Assessment) -> Option<Value> {
    let dd = a.d_dimer.as_ref()?;
    let mut o = Map::new();
    match dd.d.value_ugl {
        Some(v) => {
            o.insert("value".into(), json_num(v));
            o.insert("unit".into(), json!("ug/L"));
        }
        None => {
            if let Some(v) = dd.d.raw_value {
                o.insert("value".into(), json_num(v));
            }
            if let Some(u) = dd.d.raw_unit.as_ref().filter(|u| !u.is_empty()) {
                o.insert("unit".into(), json!(u));
            }
        }
    }
    o.insert("kind".into(), json!(dd.d.kind.as_str()));
    o.insert("threshold".into(), json_num(dd.threshold));
    o.insert("result".into(), json!(dd.result.as_str()));
    Some(Value::Object(o))
}

/// `wellsPe`: the Wells PE score and its items (points in halves: 1.5).
fn wells_pe(pe: &WellsPe) -> Value {
    let items: Vec<Value> = pe
        .items
        .iter()
        .map(|i| {
            let mut o = Map::new();
            o.insert("id".into(), json!(i.id.as_str()));
            o.insert("points".into(), json_num(f64::from(i.tenths) / 10.0));
            o.insert("status".into(), json!(i.status.as_str()));
            if !i.evidence.is_empty() {
                o.insert("evidence".into(), json!(references(&i.evidence)));
            }
            Value::Object(o)
        })
        .collect();
    json!({"documented": json_num(f64::from(pe.documented_tenths) / 10.0), "items": items})
}

/// `dataQuality` (§6): the call's notes first (e.g. paging cut short), then the record's.
fn data_quality(a: &Assessment) -> Vec<Value> {
    a.data_quality
        .iter()
        .map(|n| {
            let mut o = Map::new();
            o.insert("code".into(), json!(n.code.as_str()));
            // A note without evidence (e.g. paging cut short) has no `evidence`: the
            // JSON rule allows no empty list.
            if !n.evidence.is_empty() {
                o.insert("evidence".into(), json!(n.evidence));
            }
            Value::Object(o)
        })
        .collect()
}

/// Render the card (§6), or `None` when the assessment gives no card.
pub fn render(m: &Mappings, input: &HookInput, a: &Assessment) -> Option<Card> {
    let category = a.category?;
    let src = &m.model.source;
    let suggestions: Vec<cds_hooks::Suggestion> = a
        .suggestions
        .iter()
        .filter_map(|s| suggestion(m, input, a, s))
        .collect();
    Some(Card {
        detail: text::detail(a, m),
        extension: extension(m, a),
        indicator: a.indicator,
        links: m
            .model
            .links
            .iter()
            .map(|l| cds_hooks::Link {
                label: l.label.clone(),
                kind: LinkType::Absolute,
                url: l.url.clone(),
            })
            .collect(),
        override_reasons: m
            .model
            .override_reasons
            .iter()
            .map(|r| Coding {
                code: r.code.clone(),
                display: r.display.clone(),
                system: r.system.clone(),
            })
            .collect(),
        // One draft order at most: the suggestions are alternatives.
        selection_behavior: (!suggestions.is_empty()).then_some(SelectionBehavior::AtMostOne),
        source: cds_hooks::Source {
            label: src.label.clone(),
            topic: Coding {
                code: category.as_str().to_string(),
                display: topic_display(m, category),
                system: src.topic_system.clone(),
            },
            url: src.url.clone(),
        },
        suggestions,
        summary: fit(text::summary(a, m)),
        uuid: card_uuid(&input.hook_instance, category),
    })
}

/// `source.topic` display: the category in words (its Wells level from the mappings).
fn topic_display(m: &Mappings, c: Category) -> String {
    let likely = m.model.thresholds.wells_likely_at_least;
    match c {
        Category::PeWarningSigns => "Leg symptoms with pulmonary embolism warning signs".into(),
        Category::Pregnancy => "Possible DVT in pregnancy or postpartum".into(),
        Category::DvtLikely => format!("DVT likely (Wells {likely} or more)"),
        Category::DvtUnlikely => format!(
            "DVT unlikely (Wells {} or less, negative D-dimer)",
            likely - 1
        ),
        Category::DvtEvaluation => "Possible DVT with a risk factor: D-dimer first".into(),
        Category::FollowUp => "Leg symptoms without DVT risk factors: follow-up".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assessment::assess;
    use crate::cds_hooks::Hook;
    use crate::record::quality::{DataQualityCode, DataQualityNote};

    const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    const LOINC: &str = "http://loinc.org";
    const CPT: &str = "http://www.ama-assn.org/go/cpt";
    const SCT: &str = "http://snomed.info/sct";

    use crate::test_support::{day, now, shipped};
    fn patient(age: Option<i32>) -> Value {
        let mut p = json!({"resourceType": "Patient", "id": "p"});
        if let Some(a) = age {
            p["birthDate"] = json!(format!("{}-06-01", 2026 - a));
        }
        p
    }
    fn cond(id: &str, code: &str, days: i64) -> Value {
        json!({"resourceType": "Condition", "id": id,
               "code": {"coding": [{"system": ICD, "code": code}]},
               "subject": {"reference": "Patient/p"}, "onsetDateTime": day(days)})
    }
    fn procedure(id: &str, days: i64) -> Value {
        json!({"resourceType": "Procedure", "id": id, "status": "completed",
               "code": {"coding": [{"system": SCT, "code": "10002003"}]},
               "subject": {"reference": "Patient/p"}, "performedDateTime": day(days)})
    }
    fn draft(system: &str, code: &str) -> Value {
        json!({"resourceType": "ServiceRequest", "id": "draft", "status": "draft", "intent": "proposal",
               "code": {"coding": [{"system": system, "code": code}]},
               "subject": {"reference": "Patient/p"}})
    }
    fn input(hook: Hook, drafts: Vec<Value>) -> HookInput {
        HookInput {
            hook,
            hook_instance: "t".into(),
            patient_id: "p".into(),
            encounter_id: None,
            draft_orders: crate::record::resource::from_values(&drafts),
            data_quality: vec![],
        }
    }
    fn render_with(m: &Mappings, i: &HookInput, resources: &[Value]) -> Option<Card> {
        let resources = crate::record::resource::from_values(resources);
        render(m, i, &assess(m, i, &resources, now()))
    }
    /// The card as JSON (`null` when there is none).
    fn card_with(m: &Mappings, i: &HookInput, resources: &[Value]) -> Value {
        serde_json::to_value(render_with(m, i, resources)).unwrap()
    }
    fn card(resources: &[Value]) -> Value {
        card_with(shipped(), &input(Hook::PatientView, vec![]), resources)
    }
    fn detail(c: &Value) -> String {
        c["detail"].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn fit_cuts_long_summaries_to_139_chars() {
        let s = fit("x".repeat(300));
        assert_eq!(s.chars().count(), SUMMARY_MAX_CHARS);
        assert_eq!(fit("short".into()), "short");
    }

    #[test]
    fn uuid_depends_on_instance_and_category_only() {
        let a = card_uuid("i1", Category::DvtLikely);
        assert_eq!(a, card_uuid("i1", Category::DvtLikely));
        assert_ne!(a, card_uuid("i2", Category::DvtLikely));
        assert_ne!(a, card_uuid("i1", Category::FollowUp));
    }

    #[test]
    fn windows_are_said_as_a_clinician_says_them() {
        for (days, want) in [
            (183, "6 months"),
            (365, "12 months"),
            (84, "12 weeks"),
            (28, "4 weeks"),
            (42, "6 weeks"),
            (294, "42 weeks"),
            (90, "90 days"),
            (14, "14 days"),
            (3, "3 days"),
            (1, "1 day"),
        ] {
            assert_eq!(text::days_text(days), want);
        }
    }

    /// §6: a site that changes a window or a threshold gets a card that states its values.
    #[test]
    fn card_states_the_loaded_mappings_values() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mut files: Vec<(String, String)> = vec![];
        for e in std::fs::read_dir(root.join("valuesets")).unwrap() {
            let p = e.unwrap().path();
            let name = format!("valuesets/{}", p.file_name().unwrap().to_string_lossy());
            files.push((name, std::fs::read_to_string(&p).unwrap()));
        }
        let model = std::fs::read_to_string(root.join("model.toml")).unwrap();
        let edits = [
            ("recent-surgery = 84", "recent-surgery = 70"),
            ("cancer-activity = 183", "cancer-activity = 365"),
            ("ultrasound-within-hours = 4", "ultrasound-within-hours = 6"),
            ("base = 500.0", "base = 450.0"),
        ];
        let mut changed = model.clone();
        for (from, to) in edits {
            assert!(changed.contains(from), "model.toml lacks {from}");
            changed = changed.replacen(from, to, 1);
        }
        files.push(("model.toml".into(), changed));
        let site = Mappings::from_files("site", &files).expect("edited set loads");
        let i = input(Hook::PatientView, vec![]);
        let pain = cond("pain", "M79.662", 2);

        // dvt-likely: surgery window, ultrasound hours.
        let c = card_with(
            &site,
            &i,
            &[
                patient(Some(40)),
                pain.clone(),
                procedure("s", 60),
                cond("ca", "C78.00", 30),
            ],
        );
        let d = detail(&c);
        assert!(d.contains("major surgery within 10 weeks"), "{d}");
        assert!(d.contains("within 12 months or palliative"), "{d}");
        assert!(d.contains("within 6 hours"), "{d}");
        assert!(c["summary"].as_str().unwrap().contains("within 6 h."));
        assert!(!d.contains("12 weeks") && !d.contains("4 hours"), "{d}");

        // dvt-evaluation: the FEU threshold.
        let c = card_with(&site, &i, &[patient(Some(40)), pain, procedure("s", 60)]);
        assert!(
            c["summary"].as_str().unwrap().contains("450 µg/L FEU"),
            "{c}"
        );
        assert!(!detail(&c).contains("500 µg/L FEU"));
    }

    #[test]
    fn thresholds_are_stated_in_the_tested_kind() {
        let pain = cond("pain", "M79.662", 2);
        let risk = procedure("s", 10);
        // (draft coding, must contain, must not contain)
        let cases = [
            (
                (LOINC, "48066-5"),
                vec!["300 µg/L DDU (5 × 60 years, age-adjusted)"],
                vec!["FEU"],
            ),
            (
                (LOINC, "48065-7"),
                vec!["600 µg/L FEU (10 × 60 years, age-adjusted)"],
                vec!["DDU"],
            ),
            ((CPT, "85379"), vec!["600 µg/L FEU", "300 µg/L DDU"], vec![]),
        ];
        for ((system, code), yes, no) in cases {
            let i = input(Hook::OrderSelect, vec![draft(system, code)]);
            let c = card_with(
                shipped(),
                &i,
                &[patient(Some(60)), pain.clone(), risk.clone()],
            );
            let next = detail(&c);
            let next = next
                .split("### Next step")
                .nth(1)
                .unwrap()
                .split("###")
                .next()
                .unwrap();
            for y in yes {
                assert!(next.contains(y), "{code}: {next}");
            }
            for n in no {
                assert!(!next.contains(n), "{code}: {next}");
            }
        }
        // Age unknown: fixed thresholds, said in data quality.
        let c = card(&[patient(None), pain, risk]);
        let d = detail(&c);
        assert!(c["summary"].as_str().unwrap().contains("500 µg/L FEU"));
        assert!(d.contains("fixed: age unknown"), "{d}");
        assert!(d.contains("### Data quality"), "{d}");
        assert_eq!(
            c["extension"]["dvt-assessment"]["dataQuality"][0]["code"],
            "unknown-age"
        );
    }

    #[test]
    fn rule1_summary_names_signs_and_the_real_trigger() {
        let sob = cond("sob", "R06.02", 1);
        let pain = cond("pain", "M79.662", 2);
        // (drafts, resources, summary contains, summary must not contain)
        let cases: Vec<(Vec<Value>, Vec<Value>, &str, &str)> = vec![
            (
                vec![],
                vec![patient(Some(40)), pain.clone(), sob.clone()],
                "(breathlessness) with left leg symptoms",
                "CTPA being ordered",
            ),
            (
                vec![draft(CPT, "71275")],
                vec![patient(Some(40)), sob.clone()],
                "with a drafted CTPA",
                "leg symptoms",
            ),
            (
                vec![draft(CPT, "85379")],
                vec![patient(Some(40)), sob.clone()],
                "with a drafted D-dimer",
                "leg symptoms",
            ),
            (
                vec![],
                vec![
                    patient(Some(40)),
                    pain.clone(),
                    sob.clone(),
                    cond("dvt", "I82.402", 10),
                ],
                "known VTE: assess for progression or treatment failure",
                "CTPA",
            ),
        ];
        for (drafts, resources, yes, no) in cases {
            let hook = if drafts.is_empty() {
                Hook::PatientView
            } else {
                Hook::OrderSign
            };
            let c = card_with(shipped(), &input(hook, drafts), &resources);
            let s = c["summary"].as_str().unwrap();
            assert!(s.contains(yes), "{s}");
            assert!(!s.contains(no), "{s}");
            assert!(s.chars().count() <= SUMMARY_MAX_CHARS);
            let ext = &c["extension"]["dvt-assessment"];
            assert!(
                ext["wellsPe"]["items"].as_array().unwrap().len() == 7,
                "{ext}"
            );
        }
        // The D-dimer path says what a positive result and clinical judgement lead to.
        let c = card(&[patient(Some(40)), pain, sob]);
        let d = detail(&c);
        assert!(d.contains("a positive D-dimer leads to CTPA; if PE is judged the most likely diagnosis, Wells PE rises by 3: CTPA"), "{d}");
        assert!(d.contains("V/Q"));
        assert_eq!(c["extension"]["dvt-assessment"]["wellsPe"]["documented"], 0);
    }

    #[test]
    fn card_cites_the_article_and_keeps_advice_levels_apart() {
        let c = card(&[patient(Some(40)), cond("pain", "M79.662", 2)]);
        let d = detail(&c);
        assert!(d.contains(
            "\"Causes of Pain at the Top of the Calf\", reviewed by Tina M. St. John, MD"
        ));
        assert!(d.contains("NICE NG158"));
        let soon = d.find("**See a doctor soon**").unwrap();
        let now = d.find("**Seek immediate care**").unwrap();
        let added = d.find("**Added from the guidelines**").unwrap();
        assert!(soon < now && now < added);
        assert!(d.contains("Advise the patient to see a doctor soon"));
        assert!(d.contains("Advise the patient to seek immediate care"));
        // Clinician-addressed: no "come back" addressed to the patient.
        assert!(!d.contains("Come back"));
        let ext = &c["extension"]["dvt-assessment"];
        assert_eq!(ext["mappings"]["name"], "dvt-cds-default");
        assert_eq!(ext["mappings"]["version"], shipped().version.as_str());
    }

    #[test]
    fn rule5_drops_interim_anticoagulation_when_anticoagulated() {
        let pain = cond("pain", "M79.662", 2);
        let base = vec![
            patient(Some(40)),
            pain,
            procedure("s", 10),
            cond("ca", "C78.00", 30),
        ];
        let sentence = "If the scan cannot be done within 4 h, NICE advises a D-dimer and interim anticoagulation.";
        let c = card(&base);
        assert!(detail(&c).contains(sentence));
        let mut anticoagulated = base.clone();
        anticoagulated.push(json!({"resourceType": "MedicationRequest", "id": "ac", "status": "active",
            "intent": "order", "subject": {"reference": "Patient/p"}, "authoredOn": day(20),
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1037045"}]}}));
        let c = card(&anticoagulated);
        assert_eq!(c["indicator"], "warning");
        assert!(
            !detail(&c).contains("interim anticoagulation"),
            "{}",
            detail(&c)
        );
    }

    #[test]
    fn evidence_says_what_the_record_calls_it() {
        let mut ca = cond("ca", "C78.00", 30);
        ca["code"]["coding"][0]["display"] = json!("Secondary malignant neoplasm of lung");
        let c = card(&[patient(Some(40)), cond("pain", "M79.662", 2), ca]);
        let d = detail(&c);
        assert!(
            d.contains(&format!(
                "Secondary malignant neoplasm of lung, {} (Condition/ca)",
                day(30)
            )),
            "{d}"
        );
        // The extension keeps references only.
        let items = &c["extension"]["dvt-assessment"]["wells"]["items"];
        assert_eq!(items[0]["evidence"][0], "Condition/ca");
    }

    /// §6: summaries are written to fit 139 characters (never cut) in the longest cases.
    #[test]
    fn longest_summaries_fit_without_cutting() {
        let signs: Vec<Value> = ["R06.02", "R07.89", "R05", "R04.2", "R55", "R42", "R09.02"]
            .iter()
            .enumerate()
            .map(|(i, c)| cond(&format!("s{i}"), c, 0))
            .collect();
        let mut pe = vec![
            patient(None),
            cond("l", "M79.661", 2),
            cond("r", "M79.662", 2),
        ];
        pe.extend(signs);
        let low = vec![
            patient(Some(90)),
            cond("l", "M79.661", 2),
            cond("r", "R22.42", 2),
            json!({"resourceType": "Encounter", "id": "stay", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                   "subject": {"reference": "Patient/p"},
                   "period": {"start": day(12), "end": day(6)}}),
        ];
        for hook_drafts in [
            vec![],
            vec![draft(CPT, "85379")],
            vec![draft(CPT, "71275")],
            vec![draft(CPT, "93971")],
        ] {
            for resources in [&pe, &low] {
                let hook = if hook_drafts.is_empty() {
                    Hook::PatientView
                } else {
                    Hook::OrderSign
                };
                let c = card_with(shipped(), &input(hook, hook_drafts.clone()), resources);
                let s = c["summary"].as_str().unwrap();
                assert!(!s.ends_with('…'), "cut: {s}");
                assert!(s.chars().count() <= SUMMARY_MAX_CHARS, "{s}");
            }
        }
    }

    #[test]
    fn data_quality_lists_the_calls_notes_first() {
        let mut i = input(Hook::PatientView, vec![]);
        i.data_quality = vec![DataQualityNote {
            code: DataQualityCode::PagingCutShort,
            evidence: vec![],
        }];
        let c = card_with(shipped(), &i, &[patient(None), cond("pain", "M79.662", 2)]);
        let codes: Vec<&str> = c["extension"]["dvt-assessment"]["dataQuality"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, vec!["paging-cut-short", "unknown-age"]);
        let d = detail(&c);
        let q = d.split("### Data quality").nth(1).unwrap();
        assert!(
            q.find("paging").unwrap() < q.find("age unknown").unwrap(),
            "{q}"
        );
    }

    /// The JSON rule by construction: a card without draft orders has neither
    /// `suggestions` nor `selectionBehavior`; a data-quality note without evidence has
    /// no `evidence`; nothing in the card is empty.
    #[test]
    fn empty_parts_of_the_card_are_left_out() {
        // follow-up, its D-dimer drafted already (§7): nothing to suggest.
        let mut i = input(Hook::OrderSelect, vec![draft(CPT, "85379")]);
        i.data_quality = vec![DataQualityNote {
            code: DataQualityCode::PagingCutShort,
            evidence: vec![],
        }];
        let typed = render_with(
            shipped(),
            &i,
            &[patient(Some(40)), cond("pain", "M79.662", 2)],
        )
        .expect("a card");
        assert!(typed.suggestions.is_empty());
        let c = serde_json::to_value(&typed).unwrap();
        assert!(c.get("suggestions").is_none() && c.get("selectionBehavior").is_none());
        let note = &c["extension"]["dvt-assessment"]["dataQuality"][0];
        assert_eq!(note, &json!({"code": "paging-cut-short"}));
        assert!(crate::cds_hooks::violations(&c).is_empty(), "{c}");

        // With suggestions: at most one of them is chosen.
        let c = card(&[
            patient(Some(40)),
            cond("pain", "M79.662", 2),
            procedure("s", 10),
        ]);
        assert_eq!(c["selectionBehavior"], "at-most-one", "{c}");
        assert_eq!(c["suggestions"][0]["actions"][0]["type"], "create");
        assert!(crate::cds_hooks::violations(&c).is_empty(), "{c}");
    }

    /// The typed card writes the bytes the card built as a sorted JSON map wrote (its
    /// fields are declared in key order), so no EHR sees a change.
    #[test]
    fn typed_card_bytes_are_those_of_the_sorted_json() {
        let i = input(Hook::OrderSelect, vec![draft(CPT, "71275")]);
        for resources in [
            vec![
                patient(Some(40)),
                cond("pain", "M79.662", 2),
                procedure("s", 10),
            ],
            vec![patient(Some(40)), cond("sob", "R06.02", 1)],
        ] {
            let typed = render_with(shipped(), &i, &resources).expect("a card");
            assert!(!typed.suggestions.is_empty() && !typed.links.is_empty());
            let text = serde_json::to_string(&typed).unwrap();
            let sorted = serde_json::to_value(&typed).unwrap();
            assert_eq!(text, serde_json::to_string(&sorted).unwrap());
        }
    }
}
