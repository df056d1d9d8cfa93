//! The card (`dvt-model.md` §6), rendered from an [`Assessment`]. Pure.
//!
//! Every statement in the detail points to the resource it came from; the
//! `dvt-assessment` extension is the machine-readable twin of the detail.
//!
//! - [`text`]: the words (summary, detail, labels), every number from the mappings.

pub mod text;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::assessment::{Assessment, Category, HookInput, Suggestion, SuggestionKind};
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
pub fn card_uuid(hook_instance: &str, category: Category) -> String {
    Uuid::new_v5(
        &namespace(),
        format!("{hook_instance}\n{}", category.as_str()).as_bytes(),
    )
    .to_string()
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

fn suggestion(m: &Mappings, input: &HookInput, a: &Assessment, s: &Suggestion) -> Option<Value> {
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
                text::threshold_text(a, m, a.suggested_d_dimer_kind)
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
    Some(json!({
        "label": label,
        "uuid": uuid.to_string(),
        "isRecommended": s.is_recommended,
        "actions": [{
            "type": "create",
            "description": format!("Draft order: {}", spec.text),
            "resource": resource,
        }],
    }))
}

fn extension(m: &Mappings, input: &HookInput, a: &Assessment) -> Value {
    let cat = a.category.map(|c| c.as_str()).unwrap_or("");
    let items: Vec<Value> = a
        .wells
        .items
        .iter()
        .map(|i| {
            let mut o = Map::new();
            o.insert("id".into(), json!(i.id));
            o.insert("points".into(), json!(i.points));
            o.insert("status".into(), json!(i.status.as_str()));
            if !i.evidence.is_empty() {
                o.insert("evidence".into(), json!(i.evidence));
            }
            Value::Object(o)
        })
        .collect();
    let findings: Vec<Value> = a
        .findings()
        .into_iter()
        .map(|f| {
            let mut o = Map::new();
            o.insert("concept".into(), json!(f.concept));
            o.insert("evidence".into(), json!(f.evidence));
            if let Some(d) = f.date {
                o.insert("date".into(), json!(d.to_string()));
            }
            if let Some(s) = f.side {
                o.insert("side".into(), json!(s.as_str()));
            }
            Value::Object(o)
        })
        .collect();
    let mut ext = Map::new();
    ext.insert("category".into(), json!(cat));
    ext.insert(
        "wells".into(),
        json!({"documented": a.wells.documented, "possible": a.wells.possible, "items": items}),
    );
    let mut put_list = |k: &str, v: Vec<&str>| {
        if !v.is_empty() {
            ext.insert(k.into(), json!(v));
        }
    };
    put_list("riskFactors", a.risk_factors.clone());
    put_list(
        "warningSigns",
        a.concepts.warning_signs.iter().map(|f| f.concept).collect(),
    );
    put_list(
        "alternatives",
        a.concepts.alternatives.iter().map(|f| f.concept).collect(),
    );
    if !findings.is_empty() {
        ext.insert("findings".into(), Value::Array(findings));
    }
    ext.insert("anticoagulated".into(), json!(a.anticoagulated()));
    if let Some(dd) = &a.d_dimer {
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
                if let Some(u) = &dd.d.raw_unit {
                    o.insert("unit".into(), json!(u));
                }
            }
        }
        o.insert("kind".into(), json!(dd.d.kind.as_str()));
        o.insert("threshold".into(), json_num(dd.threshold));
        o.insert("result".into(), json!(dd.result.as_str()));
        ext.insert("dDimer".into(), Value::Object(o));
    }
    if let Some(pe) = &a.wells_pe {
        let items: Vec<Value> = pe
            .items
            .iter()
            .map(|i| {
                let mut o = Map::new();
                o.insert("id".into(), json!(i.id));
                o.insert("points".into(), json_num(f64::from(i.tenths) / 10.0));
                o.insert("status".into(), json!(i.status.as_str()));
                if !i.evidence.is_empty() {
                    o.insert("evidence".into(), json!(i.evidence));
                }
                Value::Object(o)
            })
            .collect();
        ext.insert(
            "wellsPe".into(),
            json!({"documented": json_num(f64::from(pe.documented_tenths) / 10.0), "items": items}),
        );
    }
    // §6: the call's notes first (e.g. paging cut short), then the record's.
    let quality: Vec<Value> = input
        .data_quality
        .iter()
        .chain(a.data_quality.iter())
        .map(|n| json!({"code": n.code.as_str(), "evidence": n.evidence}))
        .collect();
    if !quality.is_empty() {
        ext.insert("dataQuality".into(), Value::Array(quality));
    }
    ext.insert(
        "mappings".into(),
        json!({"name": m.id, "version": m.version}),
    );
    json!({ "dvt-assessment": ext })
}

/// Render the card (§6), or `None` when the assessment gives no card.
pub fn render(m: &Mappings, input: &HookInput, a: &Assessment) -> Option<Value> {
    let category = a.category?;
    let mut card = Map::new();
    card.insert(
        "uuid".into(),
        json!(card_uuid(&input.hook_instance, category)),
    );
    card.insert("summary".into(), json!(fit(text::summary(a, m))));
    card.insert("indicator".into(), json!(a.indicator.as_str()));
    card.insert("detail".into(), json!(text::detail(a, m)));
    let src = &m.model.source;
    card.insert(
        "source".into(),
        json!({
            "label": src.label,
            "url": src.url,
            "topic": {"system": src.topic_system, "code": category.as_str(), "display": topic_display(category)},
        }),
    );
    let suggestions: Vec<Value> = a
        .suggestions
        .iter()
        .filter_map(|s| suggestion(m, input, a, s))
        .collect();
    if !suggestions.is_empty() {
        card.insert("suggestions".into(), Value::Array(suggestions));
        card.insert("selectionBehavior".into(), json!("at-most-one"));
    }
    let reasons: Vec<Value> = m
        .model
        .override_reasons
        .iter()
        .map(|r| json!({"system": r.system, "code": r.code, "display": r.display}))
        .collect();
    card.insert("overrideReasons".into(), Value::Array(reasons));
    if !m.model.links.is_empty() {
        let links: Vec<Value> = m
            .model
            .links
            .iter()
            .map(|l| json!({"label": l.label, "url": l.url, "type": "absolute"}))
            .collect();
        card.insert("links".into(), Value::Array(links));
    }
    card.insert("extension".into(), extension(m, input, a));
    Some(Value::Object(card))
}

fn topic_display(c: Category) -> &'static str {
    match c {
        Category::PeWarningSigns => "Leg symptoms with pulmonary embolism warning signs",
        Category::Pregnancy => "Possible DVT in pregnancy or postpartum",
        Category::DvtLikely => "DVT likely (Wells 2 or more)",
        Category::DvtUnlikely => "DVT unlikely (Wells 1 or less, negative D-dimer)",
        Category::DvtEvaluation => "Possible DVT with a risk factor: D-dimer first",
        Category::FollowUp => "Leg symptoms without DVT risk factors: follow-up",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
