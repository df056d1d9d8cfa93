//! The card (`dvt-model.md` §6), rendered from an [`Assessment`]. Pure.
//!
//! Every statement in the detail points to the resource it came from; the
//! `dvt-assessment` extension is the machine-readable twin of the detail.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::assessment::{
    Assessment, Category, DDimerResult, Finding, HookInput, Suggestion, SuggestionKind,
};
use crate::mappings::{Mappings, OrderSpec, Side};
use crate::record::quality::DataQualityCode;

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

fn label(concept: &str) -> &'static str {
    match concept {
        "leg-pain" => "Calf or lower-leg pain",
        "leg-swelling" => "Leg swelling or oedema",
        "recent-surgery" => "Major surgery within 12 weeks",
        "bedridden" => "Bedridden 3 days or more",
        "paralysis-or-cast" => "Paralysis, paresis or recent leg cast",
        "active-cancer" => "Active cancer",
        "previous-vte" => "Previous DVT or PE",
        "current-dvt" => "DVT already diagnosed (within 90 days)",
        "pregnancy" => "Pregnant",
        "postpartum" => "Within 6 weeks after delivery",
        "estrogen-use" => "Oestrogen or hormonal contraception",
        "anticoagulated" => "Currently anticoagulated",
        "long-haul-travel" => "Long-haul travel within 8 weeks",
        "dyspnoea" => "Breathlessness",
        "chest-pain" => "Chest pain",
        "cough" => "Cough",
        "haemoptysis" => "Coughing up blood",
        "syncope" => "Fainting",
        "dizziness" => "Dizziness or light-headedness",
        "hypoxaemia" => "Oxygen saturation below 95 %",
        "tachycardia" => "Heart rate 100 /min or more",
        "dvt-imaging" => "Leg-vein ultrasound ordered or done",
        "baker-cyst" => "Baker cyst",
        "calf-muscle-strain" => "Calf muscle strain or tear",
        "knee-ligament-or-meniscus-injury" => "Knee ligament or meniscus injury",
        "nerve-compression" => "Nerve compression (sciatica, radiculopathy)",
        "arterial-disease" => "Peripheral arterial disease",
        "superficial-thrombophlebitis" => "Superficial thrombophlebitis",
        "cellulitis" => "Cellulitis or another local cause",
        _ => "Finding",
    }
}

fn short(concept: &str) -> &'static str {
    match concept {
        "recent-surgery" => "recent surgery",
        "bedridden" => "bed rest",
        "paralysis-or-cast" => "paralysis or leg cast",
        "long-haul-travel" => "long-haul travel",
        "dyspnoea" => "breathlessness",
        "chest-pain" => "chest pain",
        "cough" => "cough",
        "haemoptysis" => "haemoptysis",
        "syncope" => "syncope",
        "dizziness" => "dizziness",
        "hypoxaemia" => "low SpO2",
        "baker-cyst" => "Baker cyst",
        "calf-muscle-strain" => "calf muscle strain",
        "knee-ligament-or-meniscus-injury" => "knee ligament/meniscus injury",
        "nerve-compression" => "nerve compression",
        "arterial-disease" => "arterial disease",
        "superficial-thrombophlebitis" => "superficial thrombophlebitis",
        "cellulitis" => "cellulitis",
        _ => "",
    }
}

fn side_prefix(side: Option<Side>) -> &'static str {
    match side {
        Some(Side::Left) => "left ",
        Some(Side::Right) => "right ",
        Some(Side::Bilateral) => "bilateral ",
        None => "",
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
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

fn threshold_text(a: &Assessment, m: &Mappings) -> String {
    // The suggested D-dimer is FEU (LOINC 48065-7): §5 FEU threshold.
    let t = m.model.thresholds.d_dimer_feu.threshold(a.age, true);
    match a.age {
        Some(age) if age > m.model.thresholds.d_dimer_feu.age_limit => {
            format!("{} µg/L FEU, age-adjusted for {age} years", fmt_num(t))
        }
        _ => format!("{} µg/L FEU", fmt_num(t)),
    }
}

fn summary(a: &Assessment, m: &Mappings) -> String {
    let c = &a.concepts;
    let cat = a.category.unwrap_or(Category::FollowUp);
    let n = a.wells.documented;
    let leg = side_prefix(a.side);
    let imaging_date = c
        .dvt_imaging
        .as_ref()
        .map(|f| f.date.map(|d| format!(" ({d})")).unwrap_or_default());
    let s = match cat {
        Category::PeWarningSigns => {
            let signs: Vec<&str> = c
                .warning_signs
                .iter()
                .take(2)
                .map(|f| short(f.concept))
                .collect();
            format!(
                "PE warning signs ({}) with {leg}leg symptoms: assess now; consider CT pulmonary angiography.",
                signs.join(", ")
            )
        }
        Category::Pregnancy => {
            let who = if c.pregnancy.is_some() {
                "Pregnant"
            } else {
                "Postpartum"
            };
            match imaging_date {
                Some(d) => format!(
                    "{who}, {leg}leg symptoms: possible DVT. Leg-vein ultrasound already ordered or done{d}."
                ),
                None => format!(
                    "{who}, {leg}leg symptoms: possible DVT. Compression duplex ultrasound (urgent)."
                ),
            }
        }
        Category::DvtLikely => match imaging_date {
            Some(d) => format!(
                "Possible {leg}DVT: Wells {n} from the record (likely). Ultrasound already ordered or done{d}: review it."
            ),
            None => format!(
                "Possible {leg}DVT: Wells {n} from the record (likely). Leg-vein ultrasound within 4 h."
            ),
        },
        Category::DvtUnlikely => {
            format!(
                "DVT unlikely: Wells {n} from the record and a negative D-dimer. Consider other causes of the leg symptoms."
            )
        }
        Category::DvtEvaluation => {
            let risk = a
                .risk_factors
                .iter()
                .find(|r| {
                    matches!(
                        **r,
                        "recent-surgery" | "bedridden" | "paralysis-or-cast" | "long-haul-travel"
                    )
                })
                .map(|r| short(r))
                .unwrap_or("a risk factor");
            let positive = a
                .d_dimer
                .as_ref()
                .is_some_and(|d| d.result == DDimerResult::Positive);
            if positive {
                match imaging_date {
                    Some(d) => format!(
                        "Possible {leg}DVT ({risk}), D-dimer positive. Ultrasound already ordered or done{d}."
                    ),
                    None => format!(
                        "Possible {leg}DVT ({risk}), D-dimer positive: leg-vein ultrasound."
                    ),
                }
            } else if a.anticoagulated() {
                format!(
                    "Possible {leg}DVT ({risk}), Wells {n}; on anticoagulation, D-dimer unreliable: clinical review."
                )
            } else {
                format!(
                    "Possible {leg}DVT ({risk}), Wells {n} from the record: D-dimer, positive at {}.",
                    threshold_text(a, m)
                )
            }
        }
        Category::FollowUp => {
            let what = match (c.leg_pain.is_some(), c.leg_swelling.is_some()) {
                (true, false) => "pain",
                (false, true) => "swelling",
                (true, true) => "symptoms",
                // §7: only a drafted VTE test made this an index presentation.
                (false, false) => "",
            };
            let head = if what.is_empty() {
                "DVT suspected (order)".to_string()
            } else {
                let mut h = format!("{leg}leg {what}");
                h[..1].make_ascii_uppercase();
                h
            };
            match c.alternatives.first() {
                Some(alt) => format!(
                    "{head}: Wells {n} from the record, coded {}. Examine; safety-net advice.",
                    short(alt.concept)
                ),
                None => format!(
                    "{head}: Wells {n} from the record; no surgery, immobility or travel found. Examine; safety-net advice."
                ),
            }
        }
    };
    fit(s)
}

fn refs(evidence: &[String]) -> String {
    evidence.join(", ")
}

fn finding_line(f: &Finding) -> String {
    let mut s = format!("- **{}**", label(f.concept));
    if let Some(side) = f.side {
        let _ = write!(s, " ({})", side.as_str());
    }
    if let Some(d) = f.date {
        let _ = write!(s, ", {d}");
    }
    let _ = write!(s, ": {}", refs(&f.references()));
    s
}

fn points(tenths: i32) -> String {
    if tenths % 10 == 0 {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

fn detail(a: &Assessment, m: &Mappings) -> String {
    let c = &a.concepts;
    let cat = a.category.unwrap_or(Category::FollowUp);
    let mut d = String::new();

    // 1. Why this card.
    d.push_str("### Why this card\n\n");
    for f in a.findings().iter().filter(|f| f.concept != "d-dimer") {
        d.push_str(&finding_line(f));
        d.push('\n');
    }
    if let Some(r) = &a.drafts.d_dimer {
        let _ = writeln!(d, "- **D-dimer being ordered**: {r}");
    }
    if let Some(r) = &a.drafts.ctpa {
        let _ = writeln!(d, "- **CT pulmonary angiography being ordered**: {r}");
    }
    if let Some(dd) = &a.d_dimer {
        let value = match (dd.d.raw_value, &dd.d.raw_unit) {
            (Some(v), Some(u)) => format!(
                "{}{} {u}",
                dd.d.comparator.as_deref().unwrap_or(""),
                fmt_num(v)
            ),
            (Some(v), None) => format!("{} (no unit)", fmt_num(v)),
            _ => "no value".to_string(),
        };
        let date = dd.d.date.map(|x| format!(", {x}")).unwrap_or_default();
        let _ = writeln!(
            d,
            "- **D-dimer ({})** {value}{date}: {}, threshold {} µg/L{}: {}",
            dd.d.kind.as_str(),
            dd.result.as_str(),
            fmt_num(dd.threshold),
            if dd.age_adjusted && a.age.is_some_and(|x| x > 50) {
                " (age-adjusted)"
            } else {
                ""
            },
            dd.d.reference
        );
    }
    match a.age {
        Some(age) => {
            let _ = writeln!(d, "- Age {age} years (Patient.birthDate).");
        }
        None => {
            d.push_str("- Age unknown (no readable Patient.birthDate): assessed as an adult.\n")
        }
    }

    // 2. The score table.
    if let Some(left) = &a.left {
        let _ = write!(
            d,
            "\n### LEFt items (Wells is not validated in pregnancy): {} from the record\n\n| Item | Points | Status | Evidence |\n|---|---|---|---|\n",
            left.documented
        );
        for i in &left.items {
            let _ = writeln!(
                d,
                "| {} | 1 | {} | {} |",
                i.label,
                i.status.as_str(),
                refs(&i.evidence)
            );
        }
    } else {
        let _ = write!(
            d,
            "\n### Wells score for DVT (2003): {} from the record, up to {} after examination\n\n| Item | Points | Status | Evidence |\n|---|---|---|---|\n",
            a.wells.documented, a.wells.possible
        );
        for i in &a.wells.items {
            let _ = writeln!(
                d,
                "| {} | {} | {} | {} |",
                i.label,
                i.points,
                i.status.as_str(),
                refs(&i.evidence)
            );
        }
        d.push_str(
            "\nExamination items are not held in coded data: examine the leg and add them.\n",
        );
    }
    if cat == Category::PeWarningSigns {
        let total: i32 = a
            .wells_pe
            .iter()
            .filter(|i| i.present)
            .map(|i| i.tenths)
            .sum();
        let _ = write!(
            d,
            "\n### Wells PE items the record supports: {}\n\n| Item | Points | Status | Evidence |\n|---|---|---|---|\n",
            points(total)
        );
        for i in &a.wells_pe {
            let status = if i.present { "present" } else { "not-found" };
            let _ = writeln!(
                d,
                "| {} | {} | {status} | {} |",
                i.label,
                points(i.tenths),
                refs(&i.evidence)
            );
        }
        d.push_str("| PE the most likely diagnosis | 3 | not-documented | |\n");
    }

    // 3. The next step.
    d.push_str("\n### Next step\n\n");
    let imaging = c.dvt_imaging.as_ref();
    let imaging_line = imaging.map(|f| {
        // §7: a draft ultrasound of this order hook is being ordered, not yet done.
        if f.evidence.first().map(|e| &e.reference) == a.drafts.ultrasound.as_ref()
            && f.evidence.len() == 1
        {
            format!("Leg-vein ultrasound being ordered: {}.", refs(&f.references()))
        } else {
            format!(
                "Leg-vein ultrasound already ordered or done{}: {}. Review it rather than ordering another.",
                f.date.map(|x| format!(" ({x})")).unwrap_or_default(),
                refs(&f.references())
            )
        }
    });
    match cat {
        Category::PeWarningSigns => {
            d.push_str("Warning signs of pulmonary embolism: assess the patient now. Consider CT pulmonary angiography (stat). ");
            d.push_str("In pregnancy or when contrast is contraindicated, V/Q scanning may be preferred per local protocol. ");
            d.push_str("This applies even when anticoagulated or when a DVT is already known.\n");
        }
        Category::Pregnancy => {
            d.push_str(
                "Pregnancy or the postpartum period: the Wells score is not validated here. ",
            );
            match &imaging_line {
                Some(l) => d.push_str(l),
                None => d.push_str("Compression duplex ultrasound of the leg veins (urgent)."),
            }
            d.push_str(" A D-dimer is not suggested (not reliable in pregnancy).\n");
        }
        Category::DvtLikely => {
            match &imaging_line {
                Some(l) => d.push_str(l),
                None => d.push_str("DVT likely (Wells 2 or more): proximal leg-vein ultrasound with the result within 4 hours."),
            }
            d.push_str(" If the scan cannot be done within 4 hours, NICE advises a D-dimer and interim anticoagulation. A negative D-dimer does not set aside DVT here.\n");
        }
        Category::DvtUnlikely => {
            d.push_str("Wells 1 or less from the record and a negative D-dimer: DVT is unlikely. Consider the other causes below. Complete the examination: exam findings can raise the Wells score.\n");
        }
        Category::DvtEvaluation => {
            let positive = a
                .d_dimer
                .as_ref()
                .is_some_and(|x| x.result == DDimerResult::Positive);
            if positive {
                match &imaging_line {
                    Some(l) => d.push_str(l),
                    None => d.push_str(
                        "D-dimer positive with Wells 1 or less: proximal leg-vein ultrasound.",
                    ),
                }
            } else if a.anticoagulated() {
                d.push_str("A risk factor for DVT with Wells 1 or less, but the patient is anticoagulated: a D-dimer is unreliable and is not suggested. If DVT is still suspected after examination, imaging is the test.");
            } else if a.drafts.d_dimer.is_some() {
                let _ = write!(
                    d,
                    "D-dimer being ordered: positive at {}.",
                    threshold_text(a, m)
                );
            } else {
                let _ = write!(
                    d,
                    "A risk factor for DVT with Wells 1 or less: D-dimer, positive at {} (age-adjusted: {} × age above {} years). If positive, leg-vein ultrasound.",
                    threshold_text(a, m),
                    fmt_num(m.model.thresholds.d_dimer_feu.per_year_of_age),
                    m.model.thresholds.d_dimer_feu.age_limit
                );
            }
            d.push('\n');
        }
        Category::FollowUp => {
            d.push_str("None of the article's risk factors (recent surgery, bed rest, paralysis or leg cast, long-haul travel) was found in the record. Examine the leg: if DVT is still suspected after the examination, ");
            if a.anticoagulated() {
                d.push_str("imaging is the test (a D-dimer is unreliable on anticoagulants).");
            } else {
                let _ = write!(
                    d,
                    "a D-dimer (positive at {}) can be ordered.",
                    threshold_text(a, m)
                );
            }
            d.push('\n');
        }
    }
    if a.anticoagulated() {
        d.push_str(
            "\nThe patient is anticoagulated: a D-dimer is unreliable and is not suggested.\n",
        );
    }
    if !matches!(
        cat,
        Category::Pregnancy | Category::DvtLikely | Category::DvtEvaluation
    ) && let Some(l) = &imaging_line
    {
        let _ = writeln!(d, "\n{l}");
    }
    for p in &a.pathway {
        let _ = writeln!(d, "\n**Order check:** {p}");
    }

    // 4. Other causes.
    d.push_str("\n### Other causes to consider\n\n");
    d.push_str("Baker cyst, calf muscle strain or tear, knee ligament (PCL) or meniscus injury, nerve compression (sciatica), peripheral arterial disease, superficial thrombophlebitis, cellulitis.\n");
    if !c.alternatives.is_empty() {
        d.push_str("\nCoded in the record (possible Wells −2 evidence; the clinician decides, it is not subtracted):\n\n");
        for f in &c.alternatives {
            d.push_str(&finding_line(f));
            d.push('\n');
        }
    }

    // 5. When to seek immediate care.
    d.push_str("\n### When to seek immediate care\n\n");
    d.push_str("Come back at once for pain that is sudden, severe, worsening or persistent, difficulty walking, or breathlessness, chest pain, coughing (especially blood), fainting or dizziness: these can be signs of a pulmonary embolism.\n");

    // What the service could not see (§1 data quality).
    let mut q: Vec<String> = Vec::new();
    let n = &a.notes;
    if n.malformed > 0 {
        q.push(format!(
            "{} malformed entr{} skipped.",
            n.malformed,
            if n.malformed == 1 { "y" } else { "ies" }
        ));
    }
    if n.other_patient > 0 {
        q.push(format!(
            "{} resource(s) of another patient ignored.",
            n.other_patient
        ));
    }
    // Minimal v2 rendering of the data-quality notes; v2-decide owns the wording.
    for note in &c.data_quality {
        let what = match note.code {
            DataQualityCode::UnreadableUnit => "value(s) whose unit could not be read; not used",
            DataQualityCode::FutureDate => "resource(s) with a future date: the date was ignored",
            DataQualityCode::UnreadableDate => "resource(s) without a usable date",
            DataQualityCode::UnresolvedMedication => {
                "current medication(s) whose reference could not be resolved"
            }
            DataQualityCode::PagingCutShort => "the record was cut short",
            DataQualityCode::EncounterWithoutEnd => "finished encounter(s) without an end",
            DataQualityCode::UnknownAge => "age unknown (no usable Patient.birthDate)",
        };
        if note.evidence.is_empty() {
            q.push(format!("{}: {what}.", note.code.as_str()));
        } else {
            q.push(format!(
                "{}: {what}: {}.",
                note.code.as_str(),
                note.evidence.join(", ")
            ));
        }
    }
    if !q.is_empty() {
        d.push_str("\n### Data quality\n\n");
        for line in q {
            let _ = writeln!(d, "- {line}");
        }
    }
    d
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
            dd_label = format!("Order a D-dimer (positive at {})", threshold_text(a, m));
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

fn extension(a: &Assessment) -> Value {
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
            o.insert("evidence".into(), json!(f.references()));
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
    card.insert("summary".into(), json!(summary(a, m)));
    card.insert("indicator".into(), json!(a.indicator.as_str()));
    card.insert("detail".into(), json!(detail(a, m)));
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
    card.insert("extension".into(), extension(a));
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
