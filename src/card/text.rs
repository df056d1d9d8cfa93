//! The card's words (`dvt-model.md` §6): summary, detail and labels. Every number stated
//! (windows, thresholds, ages, hours) is rendered from the loaded [`Mappings`], so a site
//! that changes a window gets a card that states its window. The text speaks to the
//! clinician; advice for the patient is marked "Advise the patient to ...".

use std::fmt::Write as _;

use crate::assessment::concepts::Evidence;

use crate::assessment::{
    Assessment, Category, Concept, CtpaReason, DDimerBlock, DDimerJudged, DDimerKind, DDimerResult,
    Finding, LeftCriterion, PathwayNote, PePathway, WellsCriterion, WellsPeCriterion, WellsStatus,
};
use crate::mappings::{Mappings, Side};
use crate::record::quality::{DataQualityCode, DataQualityNote};

/// A window in days as a clinician says it: 183 -> "6 months", 84 -> "12 weeks",
/// 3 -> "3 days". Months from about five months up (a month is 30.44 days on average),
/// weeks for whole weeks from four weeks up, days otherwise.
pub fn days_text(days: u32) -> String {
    let d = f64::from(days);
    let months = (d / 30.44).round();
    if days >= 150 && (months * 30.44 - d).abs() <= 2.0 {
        format!("{months} months")
    } else if days >= 28 && days.is_multiple_of(7) {
        format!("{} weeks", days / 7)
    } else if days == 1 {
        "1 day".to_string()
    } else {
        format!("{days} days")
    }
}

/// A number as written by a person: `95` not `95.0`.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Wells PE points in tenths, as written: 15 -> "1.5".
pub fn tenths(t: i32) -> String {
    if t % 10 == 0 {
        format!("{}", t / 10)
    } else {
        format!("{}.{}", t / 10, (t % 10).abs())
    }
}

/// §2 `active-cancer` window (onset, treatment and palliative care).
fn cancer_window(m: &Mappings) -> u32 {
    m.model.windows.cancer_activity
}

/// §6: the article, cited by title and reviewer.
pub fn article(m: &Mappings) -> String {
    let s = &m.model.source;
    format!(
        "\"{}\", reviewed by {}",
        s.article_title, s.article_reviewer
    )
}

/// The highest Wells score of the "unlikely" level (`wells-likely-at-least` − 1).
fn unlikely_max(m: &Mappings) -> i32 {
    m.model.thresholds.wells_likely_at_least - 1
}

/// §3 / §2 "to-confirm" wording for a cancer without recorded activity.
pub fn cancer_to_confirm_text(m: &Mappings) -> String {
    format!(
        "on the problem list, no treatment recorded in {}: confirm",
        days_text(cancer_window(m))
    )
}

/// What a §2 concept is called on the card.
pub fn concept_label(m: &Mappings, concept: Concept) -> String {
    let w = &m.model.windows;
    let t = &m.model.thresholds;
    match concept {
        Concept::LegPain => "Calf or lower-leg pain".into(),
        Concept::LegSwelling => "Leg swelling or oedema".into(),
        Concept::RecentSurgery => format!("Major surgery within {}", days_text(w.recent_surgery)),
        Concept::Bedridden => format!(
            "Bedridden {} days or more (or an inpatient stay that ended within {})",
            t.bedridden_stay_min_days,
            days_text(w.bedridden_stay_ended)
        ),
        Concept::ParalysisOrCast => format!(
            "Paralysis, paresis or leg cast (cast within {})",
            days_text(w.leg_cast)
        ),
        Concept::ActiveCancer => format!(
            "Active cancer (activity within {} or palliative)",
            days_text(cancer_window(m))
        ),
        Concept::PreviousDvt => "Previous DVT (also a previous VTE)".into(),
        Concept::PreviousVte => "Previous DVT or PE".into(),
        Concept::CurrentDvt => format!(
            "Known VTE (DVT or PE recorded within {})",
            days_text(w.current_dvt)
        ),
        Concept::Pregnancy => "Pregnant".into(),
        Concept::Postpartum => format!("Within {} after delivery", days_text(w.postpartum)),
        // Shown in the LEFt table, never as a finding line.
        Concept::FirstTrimester => "First trimester".into(),
        Concept::EstrogenUse => "Oestrogen or hormonal contraception".into(),
        Concept::Anticoagulated => "Currently anticoagulated".into(),
        // Shown on its own line ("Possibly anticoagulated"), never as a finding line.
        Concept::PossiblyAnticoagulated => "Possibly anticoagulated".into(),
        Concept::LongHaulTravel => {
            format!("Long-haul travel within {}", days_text(w.long_haul_travel))
        }
        Concept::Dyspnoea => "Shortness of breath or difficulty breathing".into(),
        Concept::ChestPain => "Chest pain".into(),
        Concept::Cough => "Sudden cough".into(),
        Concept::Haemoptysis => {
            "Coughing up blood (haemoptysis; a sign added from the guidelines)".into()
        }
        Concept::Syncope => "Fainting".into(),
        Concept::Dizziness => "Dizziness or light-headedness".into(),
        Concept::Hypoxaemia => format!(
            "SpO2 below {} % (a sign added from the guidelines)",
            num(t.spo2_below)
        ),
        Concept::Tachycardia => format!("Heart rate {} /min or more", num(t.heart_rate_at_least)),
        Concept::DvtImaging => format!(
            "Leg-vein ultrasound ordered or done within {}",
            days_text(w.dvt_imaging)
        ),
        Concept::DDimer => "D-dimer".into(),
        Concept::BakerCyst => "Baker cyst".into(),
        Concept::CalfMuscleStrain => "Calf muscle strain or tear".into(),
        Concept::KneeLigamentOrMeniscusInjury => "Knee ligament or meniscus injury".into(),
        Concept::NerveCompression => "Nerve compression (sciatica, radiculopathy)".into(),
        Concept::ArterialDisease => "Peripheral arterial disease".into(),
        Concept::SuperficialThrombophlebitis => "Superficial thrombophlebitis".into(),
        Concept::Cellulitis => "Cellulitis or another local cause".into(),
    }
}

/// A §2 concept in a summary: the risk factors, warning signs and alternatives a summary
/// names; `None` for the rest (a summary never names them).
fn short(concept: Concept) -> Option<&'static str> {
    match concept {
        Concept::RecentSurgery => Some("recent surgery"),
        Concept::Bedridden => Some("bed rest"),
        Concept::ParalysisOrCast => Some("paralysis or leg cast"),
        Concept::LongHaulTravel => Some("long-haul travel"),
        Concept::ActiveCancer => Some("active cancer"),
        Concept::PreviousVte => Some("previous VTE"),
        Concept::Dyspnoea => Some("breathlessness"),
        Concept::ChestPain => Some("chest pain"),
        Concept::Cough => Some("sudden cough"),
        Concept::Haemoptysis => Some("haemoptysis"),
        Concept::Syncope => Some("fainting"),
        Concept::Dizziness => Some("dizziness"),
        Concept::Hypoxaemia => Some("low SpO2"),
        Concept::BakerCyst => Some("Baker cyst"),
        Concept::CalfMuscleStrain => Some("calf muscle strain"),
        Concept::KneeLigamentOrMeniscusInjury => Some("knee ligament/meniscus injury"),
        Concept::NerveCompression => Some("nerve compression"),
        Concept::ArterialDisease => Some("arterial disease"),
        Concept::SuperficialThrombophlebitis => Some("superficial thrombophlebitis"),
        Concept::Cellulitis => Some("cellulitis"),
        // Not risk factors a summary names (rule 7's list), nor signs or alternatives.
        Concept::LegPain
        | Concept::LegSwelling
        | Concept::PreviousDvt
        | Concept::CurrentDvt
        | Concept::Pregnancy
        | Concept::Postpartum
        | Concept::FirstTrimester
        | Concept::EstrogenUse
        | Concept::Anticoagulated
        | Concept::PossiblyAnticoagulated
        | Concept::Tachycardia
        | Concept::DDimer
        | Concept::DvtImaging => None,
    }
}

/// §3 Wells item labels.
pub fn wells_label(m: &Mappings, id: WellsCriterion) -> String {
    let w = &m.model.windows;
    let t = &m.model.thresholds;
    match id {
        WellsCriterion::ActiveCancer => format!(
            "Active cancer (treatment within {} or palliative)",
            days_text(cancer_window(m))
        ),
        WellsCriterion::ParalysisOrCast => {
            "Paralysis, paresis or recent plaster cast of the leg".into()
        }
        WellsCriterion::BedriddenOrSurgery => format!(
            "Bedridden {} days or more, or major surgery within {}",
            t.bedridden_stay_min_days,
            days_text(w.recent_surgery)
        ),
        WellsCriterion::DeepVeinTenderness => "Localised tenderness along the deep veins".into(),
        WellsCriterion::EntireLegSwollen => "Entire leg swollen".into(),
        WellsCriterion::CalfSwelling3cm => "Calf swelling 3 cm or more than the other leg".into(),
        WellsCriterion::PittingOedema => "Pitting oedema confined to the symptomatic leg".into(),
        WellsCriterion::CollateralVeins => "Collateral superficial veins (non-varicose)".into(),
        WellsCriterion::PreviousDvt => "Previously documented DVT".into(),
        WellsCriterion::AlternativeDiagnosis => {
            "Alternative diagnosis at least as likely as DVT".into()
        }
    }
}

/// §4 rule 1 Wells PE item labels.
pub fn wells_pe_label(m: &Mappings, id: WellsPeCriterion) -> String {
    let w = &m.model.windows;
    let t = &m.model.thresholds;
    match id {
        WellsPeCriterion::DvtSigns => {
            "Clinical signs of DVT (leg pain and swelling both documented)".into()
        }
        WellsPeCriterion::HeartRate => {
            format!("Heart rate over {} /min", num(t.pe_heart_rate_above))
        }
        WellsPeCriterion::ImmobilisationOrSurgery => format!(
            "Surgery within {} or bedridden {} days or more",
            days_text(w.pe_surgery),
            t.bedridden_stay_min_days
        ),
        WellsPeCriterion::PreviousVte => "Previous DVT or PE".into(),
        WellsPeCriterion::Haemoptysis => "Haemoptysis".into(),
        WellsPeCriterion::ActiveCancer => "Active cancer".into(),
        WellsPeCriterion::PeMostLikely => {
            "PE the most likely diagnosis (clinician judgement)".into()
        }
    }
}

/// §4 rule 4 LEFt item labels.
pub fn left_label(id: LeftCriterion) -> &'static str {
    match id {
        LeftCriterion::LeftLeg => "Left leg symptoms",
        LeftCriterion::CalfCircumference => "Calf circumference difference 2 cm or more",
        LeftCriterion::FirstTrimester => "First trimester",
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

/// Evidence as the card shows it: what the record calls it, its date as written, and its
/// reference ("Malignant neoplasm of breast, 2026-01-05 (Condition/7)").
pub fn evidence_text(evidence: &[Evidence]) -> String {
    evidence
        .iter()
        .map(|e| match (&e.name, &e.date) {
            (Some(n), Some(d)) => format!("{n}, {d} ({})", e.reference),
            (Some(n), None) => format!("{n} ({})", e.reference),
            (None, Some(d)) => format!("{}, {d}", e.reference),
            (None, None) => e.reference.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// §5: the threshold(s) stated for a D-dimer test of `kind` (`None`: the kind is unknown,
/// both are written out). Never a FEU threshold for a DDU test.
pub fn threshold_text(a: &Assessment, m: &Mappings, kind: Option<DDimerKind>) -> String {
    let t = &m.model.thresholds;
    let how = |k: DDimerKind| {
        let t = match k {
            DDimerKind::Feu => &t.d_dimer_feu,
            DDimerKind::Ddu => &t.d_dimer_ddu,
        };
        match a.age {
            Some(age) if a.age_adjusted && age > t.age_limit => {
                format!("{} × {age} years, age-adjusted", num(t.per_year_of_age))
            }
            // Age 50 or under, or a pathway without age adjustment: the base threshold.
            Some(_) => String::new(),
            None => "fixed: age unknown".to_string(),
        }
    };
    let with = |k: DDimerKind| match how(k) {
        h if h.is_empty() => short_threshold(a, m, Some(k)),
        h => format!("{} ({h})", short_threshold(a, m, Some(k))),
    };
    match kind {
        Some(k) => with(k),
        None => format!(
            "{} or {}, by the kind the laboratory reports",
            with(DDimerKind::Feu),
            with(DDimerKind::Ddu)
        ),
    }
}

/// What triggered the card: leg symptoms, or the drafted order of an order hook (§4 rule 1).
fn trigger(a: &Assessment) -> String {
    let c = &a.concepts;
    if c.leg_pain.is_some() || c.leg_swelling.is_some() {
        format!("{}leg symptoms", side_prefix(a.side))
    } else if a.drafts.ctpa.is_some() {
        "a drafted CTPA".into()
    } else if a.drafts.d_dimer.is_some() {
        "a drafted D-dimer".into()
    } else if a.drafts.ultrasound.is_some() {
        "a drafted leg-vein ultrasound".into()
    } else {
        "suspected VTE".into()
    }
}

fn positive_d_dimer(a: &Assessment) -> bool {
    a.d_dimer
        .as_ref()
        .is_some_and(|d| d.result == DDimerResult::Positive)
}

/// The leg-vein imaging for a summary: being ordered (this order hook's draft only), or
/// already ordered or done, with its date.
fn imaging_phrase(a: &Assessment) -> Option<String> {
    let f = a.concepts.dvt_imaging.as_ref()?;
    if draft_only(a, f) {
        return Some("ultrasound being ordered".into());
    }
    Some(format!(
        "ultrasound already ordered or done{}",
        f.date.map(|d| format!(" ({d})")).unwrap_or_default()
    ))
}

/// §7: the imaging evidence is only the draft ultrasound of this order hook.
fn draft_only(a: &Assessment, f: &Finding) -> bool {
    f.evidence.len() == 1
        && f.evidence.first().map(|e| &e.reference) == a.drafts.ultrasound.as_ref()
}

/// §6 summary (the caller cuts it to 139 characters as a last guard; it is written to fit).
pub fn summary(a: &Assessment, m: &Mappings) -> String {
    let n = a.wells.documented;
    let leg = side_prefix(a.side);
    let hours = m.model.thresholds.ultrasound_within_hours;
    match a.category.unwrap_or(Category::FollowUp) {
        Category::PeWarningSigns => pe_summary(a),
        Category::Pregnancy => pregnancy_summary(a),
        Category::DvtLikely => match imaging_phrase(a) {
            Some(i) => format!(
                "Possible {leg}DVT: Wells {n} from the record (likely). Leg-vein {i}: the first test."
            ),
            None => format!(
                "Possible {leg}DVT: Wells {n} from the record (likely). Leg-vein ultrasound within {hours} h."
            ),
        },
        Category::DvtUnlikely => format!(
            "DVT unlikely if the examination keeps Wells ≤ {}: Wells {n} from the record, negative D-dimer. Consider other causes.",
            unlikely_max(m)
        ),
        Category::DvtEvaluation => evaluation_summary(a, m),
        Category::FollowUp => follow_up_summary(a),
    }
}

/// §4 rule 1 summary: the first two signs, the trigger, the PE pathway's next step.
fn pe_summary(a: &Assessment) -> String {
    let c = &a.concepts;
    let mut signs: Vec<&str> = c
        .warning_signs
        .iter()
        .take(2)
        .map(|f| short(f.concept).unwrap_or_default())
        .collect();
    let more = c.warning_signs.len().saturating_sub(2);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    if signs.is_empty() {
        signs.push("warning signs");
    }
    let next = match a.pe_pathway {
        Some(PePathway::KnownVte) => {
            "known VTE: assess for progression or treatment failure".to_string()
        }
        Some(PePathway::Ctpa(_)) if a.drafts.ctpa.is_some() => {
            "assess now; CTPA being ordered".to_string()
        }
        Some(PePathway::Ctpa(_)) => "assess now; CT pulmonary angiography (stat)".into(),
        Some(PePathway::DDimerFirst) if a.drafts.d_dimer.is_some() => {
            "assess now; D-dimer being ordered, CTPA if positive".into()
        }
        Some(PePathway::DDimerFirst) | None => {
            "assess now; D-dimer (stat), CTPA if positive".into()
        }
    };
    let sep = if a.pe_pathway == Some(PePathway::KnownVte) {
        "; "
    } else {
        ": "
    };
    format!(
        "PE warning signs ({}{more}) with {}{sep}{next}.",
        signs.join(", "),
        trigger(a)
    )
}

/// §4 rule 4 summary.
fn pregnancy_summary(a: &Assessment) -> String {
    let who = if a.concepts.pregnancy.is_some() {
        "Pregnant"
    } else {
        "Postpartum"
    };
    match imaging_phrase(a) {
        Some(i) => format!("{who}, {}: possible DVT. Leg-vein {i}.", trigger(a)),
        None => format!(
            "{who}, {}: possible DVT. Compression duplex ultrasound (urgent).",
            trigger(a)
        ),
    }
}

/// §4 rule 7 summary: the first risk factor a summary names, then what the D-dimer (or
/// its block) leads to.
fn evaluation_summary(a: &Assessment, m: &Mappings) -> String {
    let n = a.wells.documented;
    let leg = side_prefix(a.side);
    let risk = a
        .risk_factors
        .iter()
        .find_map(|&r| short(r))
        .unwrap_or("a risk factor");
    let ultrasound = imaging_phrase(a).unwrap_or_else(|| "leg-vein ultrasound (urgent)".into());
    if positive_d_dimer(a) {
        format!("Possible {leg}DVT ({risk}), D-dimer positive: {ultrasound}.")
    } else if a.d_dimer_block == Some(DDimerBlock::Anticoagulated) {
        format!(
            "Possible {leg}DVT ({risk}), Wells {n}; anticoagulated, D-dimer unreliable: {ultrasound}."
        )
    } else if a.d_dimer_block == Some(DDimerBlock::PossiblyAnticoagulated) {
        format!(
            "Possible {leg}DVT ({risk}), Wells {n}: possibly anticoagulated; check the medication before a D-dimer."
        )
    } else if a.drafts.d_dimer.is_some() {
        format!(
            "Possible {leg}DVT ({risk}), Wells {n} from the record: D-dimer being ordered; if positive, ultrasound."
        )
    } else {
        format!(
            "Possible {leg}DVT ({risk}), Wells {n} from the record: D-dimer, positive at {}.",
            short_threshold(a, m, a.suggested_d_dimer_kind)
        )
    }
}

/// §4 rule 8 summary: what the leg shows, and a coded alternative if there is one.
fn follow_up_summary(a: &Assessment) -> String {
    let c = &a.concepts;
    let n = a.wells.documented;
    let leg = side_prefix(a.side);
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
            short(alt.concept).unwrap_or_default()
        ),
        None => format!(
            "{head}: Wells {n} from the record; no DVT risk factor found. Examine; safety-net advice."
        ),
    }
}

/// The threshold for a summary: the value and kind only.
pub fn short_threshold(a: &Assessment, m: &Mappings, kind: Option<DDimerKind>) -> String {
    let one = |k: DDimerKind| {
        let t = match k {
            DDimerKind::Feu => &m.model.thresholds.d_dimer_feu,
            DDimerKind::Ddu => &m.model.thresholds.d_dimer_ddu,
        };
        format!(
            "{} µg/L {}",
            num(t.threshold(a.age, a.age_adjusted)),
            k.as_str()
        )
    };
    match kind {
        Some(k) => one(k),
        None => format!("{} or {}", one(DDimerKind::Feu), one(DDimerKind::Ddu)),
    }
}

fn finding_line(m: &Mappings, f: &Finding) -> String {
    let mut s = format!("- **{}**", concept_label(m, f.concept));
    if let Some(side) = f.side {
        let _ = write!(s, " ({})", side.as_str());
    }
    // The evidence carries its own dates as written; a finding without one shows its own.
    if let Some(d) = f.date
        && f.evidence.iter().all(|e| e.date.is_none())
    {
        let _ = write!(s, ", {d}");
    }
    let _ = write!(s, ": {}", evidence_text(&f.evidence));
    s
}

/// Why a D-dimer cannot be used, for the card.
fn block_text(b: DDimerBlock) -> &'static str {
    match b {
        DDimerBlock::Anticoagulated => "the patient is anticoagulated (a D-dimer is unreliable)",
        DDimerBlock::PossiblyAnticoagulated => {
            "a current medication could not be identified: the patient may be anticoagulated (a D-dimer would be unreliable)"
        }
        DDimerBlock::Pregnancy => "pregnancy",
        DDimerBlock::Postpartum => "the postpartum period",
    }
}

/// One data-quality note, for the clinician.
fn quality_line(m: &Mappings, n: &DataQualityNote) -> String {
    let what = match n.code {
        DataQualityCode::UnreadableUnit => "a value whose unit could not be read: not used".to_string(),
        DataQualityCode::FutureDate => "a future date: ignored".to_string(),
        DataQualityCode::UnreadableDate => {
            "a date that could not be read, or no usable date: not used where a window needs one"
                .to_string()
        }
        DataQualityCode::UnresolvedMedication => "a current medication that could not be identified (its medicationReference was not found): the patient may be anticoagulated".to_string(),
        DataQualityCode::PagingCutShort => {
            "the record was read only in part (paging stopped at a limit): findings may be missing".to_string()
        }
        DataQualityCode::EncounterWithoutEnd => {
            "a finished encounter without an end date: its last known date was used".to_string()
        }
        DataQualityCode::UnknownAge => format!(
            "age unknown (no readable Patient.birthDate): assessed as an adult; fixed D-dimer thresholds {} µg/L FEU, {} µg/L DDU",
            num(m.model.thresholds.d_dimer_feu.base),
            num(m.model.thresholds.d_dimer_ddu.base)
        ),
    };
    if n.evidence.is_empty() {
        format!("- {what}.")
    } else {
        format!("- {what}: {}.", n.evidence.join(", "))
    }
}

/// §6 detail: why this card, the score table, the next step, other causes, when to seek
/// care; then what the service could not see, and the sources.
pub fn detail(a: &Assessment, m: &Mappings) -> String {
    let mut d = String::new();
    why(&mut d, a, m);
    scores(&mut d, a, m);
    next_step(&mut d, a, m);
    other_causes(&mut d, a, m);
    seek_care(&mut d, m);
    data_quality(&mut d, a, m);
    let _ = write!(
        d,
        "\n### Sources\n\nNICE NG158 (venous thromboembolic diseases); {}.\n",
        article(m)
    );
    d
}

/// §5: the judged D-dimer as the card states it (value as recorded, result, threshold).
fn d_dimer_line(a: &Assessment, m: &Mappings, dd: &DDimerJudged) -> String {
    let value = match (dd.d.raw_value, &dd.d.raw_unit) {
        (Some(v), Some(u)) => {
            format!("{}{} {u}", dd.d.comparator.as_deref().unwrap_or(""), num(v))
        }
        (Some(v), None) => format!("{} (no unit)", num(v)),
        _ => "no value".to_string(),
    };
    let date = dd.d.date.map(|x| format!(", {x}")).unwrap_or_default();
    let adjusted = match a.age {
        Some(age) if dd.age_adjusted && age > m.model.thresholds.d_dimer_feu.age_limit => {
            " (age-adjusted)"
        }
        _ => "",
    };
    format!(
        "- **D-dimer ({})** {value}{date}: {}, threshold {} µg/L {}{adjusted}: {}",
        dd.d.kind.as_str(),
        dd.result.as_str(),
        num(dd.threshold),
        dd.d.kind.as_str(),
        dd.d.reference
    )
}

fn why(d: &mut String, a: &Assessment, m: &Mappings) {
    d.push_str("### Why this card\n\n");
    // A previous VTE that is the previous DVT itself is said once.
    let same_history = |f: &Finding| {
        f.concept == Concept::PreviousVte
            && a.concepts
                .previous_dvt
                .as_ref()
                .is_some_and(|p| p.evidence == f.evidence)
    };
    for f in a
        .findings()
        .iter()
        .filter(|f| f.concept != Concept::DDimer && !same_history(f))
    {
        d.push_str(&finding_line(m, f));
        d.push('\n');
    }
    if let Some(f) = &a.concepts.cancer_to_confirm {
        let _ = writeln!(
            d,
            "- **Cancer** ({}): {}",
            cancer_to_confirm_text(m),
            evidence_text(&f.evidence)
        );
    }
    if let Some(f) = a.possibly_anticoagulated() {
        let _ = writeln!(
            d,
            "- **Possibly anticoagulated** (a current medication could not be identified): {}",
            evidence_text(&f.evidence)
        );
    }
    if let Some(r) = &a.drafts.d_dimer {
        let _ = writeln!(d, "- **D-dimer being ordered**: {r}");
    }
    if let Some(r) = &a.drafts.ctpa {
        let _ = writeln!(d, "- **CT pulmonary angiography being ordered**: {r}");
    }
    if let Some(dd) = &a.d_dimer {
        let _ = writeln!(d, "{}", d_dimer_line(a, m, dd));
    }
    match a.age {
        Some(age) => {
            let _ = writeln!(d, "- Age {age} years (Patient.birthDate).");
        }
        None => {
            let _ = writeln!(
                d,
                "- Age unknown (no readable Patient.birthDate): assessed as an adult (rule: under {} is out of scope).",
                m.model.thresholds.adult_age
            );
        }
    }
}

fn scores(d: &mut String, a: &Assessment, m: &Mappings) {
    let cat = a.category.unwrap_or(Category::FollowUp);
    if cat == Category::Pregnancy {
        match &a.left {
            Some(left) => {
                let _ = write!(
                    d,
                    "\n### LEFt items (Wells is not validated in pregnancy): {} from the record\n\n| Item | Points | Status | Evidence |\n|---|---|---|---|\n",
                    left.documented
                );
                for i in &left.items {
                    let _ = writeln!(
                        d,
                        "| {} | 1 | {} | {} |",
                        left_label(i.id),
                        i.status.as_str(),
                        evidence_text(&i.evidence)
                    );
                }
            }
            None => d.push_str(
                "\n### Score\n\nNeither Wells nor LEFt is validated after delivery: no score is given.\n",
            ),
        }
    } else {
        let _ = write!(
            d,
            "\n### Wells score for DVT (2003): {} from the record, up to {} after examination\n\n| Item | Points | Status | Evidence |\n|---|---|---|---|\n",
            a.wells.documented, a.wells.possible
        );
        for i in &a.wells.items {
            let mut ev = evidence_text(&i.evidence);
            if i.status == WellsStatus::ToConfirm {
                let _ = write!(ev, " ({})", cancer_to_confirm_text(m));
            }
            let _ = writeln!(
                d,
                "| {} | {} | {} | {} |",
                wells_label(m, i.id),
                i.points,
                i.status.as_str(),
                ev
            );
        }
        d.push_str(
            "\nExamination items are not held in coded data: examine the leg and add them.\n",
        );
    }
    if let Some(pe) = &a.wells_pe {
        let _ = write!(
            d,
            "\n### Wells PE items the record supports: {}\n\n| Item | Points | Status | Evidence |\n|---|---|---|---|\n",
            tenths(pe.documented_tenths)
        );
        for i in &pe.items {
            let _ = writeln!(
                d,
                "| {} | {} | {} | {} |",
                wells_pe_label(m, i.id),
                tenths(i.tenths),
                i.status.as_str(),
                evidence_text(&i.evidence)
            );
        }
    }
}

fn imaging_line(a: &Assessment) -> Option<String> {
    let f = a.concepts.dvt_imaging.as_ref()?;
    // §7: a draft ultrasound of this order hook is being ordered, not yet done.
    Some(if draft_only(a, f) {
        format!(
            "Leg-vein ultrasound being ordered: {}.",
            evidence_text(&f.evidence)
        )
    } else {
        format!(
            "Leg-vein ultrasound already ordered or done{}: {}. Review it rather than ordering another.",
            f.date.map(|x| format!(" ({x})")).unwrap_or_default(),
            evidence_text(&f.evidence)
        )
    })
}

fn next_step(d: &mut String, a: &Assessment, m: &Mappings) {
    let cat = a.category.unwrap_or(Category::FollowUp);
    d.push_str("\n### Next step\n\n");
    let imaging = imaging_line(a);
    match cat {
        Category::PeWarningSigns => pe_next_step(d, a, m),
        Category::Pregnancy => {
            d.push_str(
                "Pregnancy or the postpartum period: the Wells score is not validated here. ",
            );
            match &imaging {
                Some(l) => d.push_str(l),
                None => d.push_str("Compression duplex ultrasound of the leg veins (urgent)."),
            }
            d.push_str(
                " A D-dimer is not suggested (not reliable in pregnancy or after delivery).\n",
            );
        }
        Category::DvtLikely => likely_next_step(d, a, m, imaging.as_deref()),
        Category::DvtUnlikely => {
            let _ = writeln!(
                d,
                "Wells {} from the record and a negative D-dimer: DVT is unlikely if the examination keeps Wells ≤ {}. Examine the leg (examination findings can raise the score) and consider the other causes below. No test is suggested.",
                a.wells.documented,
                unlikely_max(m)
            );
        }
        Category::DvtEvaluation => evaluation_next_step(d, a, m, imaging.as_deref()),
        Category::FollowUp => follow_up_next_step(d, a, m),
    }
    block_note(d, a);
    if !matches!(
        cat,
        Category::Pregnancy | Category::DvtLikely | Category::DvtEvaluation
    ) && let Some(l) = &imaging
    {
        let _ = writeln!(d, "\n{l}");
    }
    order_checks(d, a, m);
}

/// §4 rule 5: the ultrasound first; the interim-anticoagulation advice unless
/// anticoagulated (modifier).
fn likely_next_step(d: &mut String, a: &Assessment, m: &Mappings, imaging: Option<&str>) {
    let t = &m.model.thresholds;
    let hours = t.ultrasound_within_hours;
    match imaging {
        Some(l) => d.push_str(l),
        None => {
            let _ = write!(
                d,
                "DVT likely (Wells {} or more from the record): proximal leg-vein ultrasound with the result within {hours} hours.",
                t.wells_likely_at_least
            );
        }
    }
    // §4 modifier anticoagulated: the interim-anticoagulation sentence is dropped.
    if !a.anticoagulated() {
        let _ = write!(
            d,
            " If the scan cannot be done within {hours} h, NICE advises a D-dimer and interim anticoagulation."
        );
    }
    d.push_str(" A negative D-dimer does not set aside DVT here.");
    if positive_d_dimer(a) {
        d.push_str(" A positive D-dimer is on record: the ultrasound stays the next test (NICE: scan first).");
    }
    d.push('\n');
}

/// §4 rule 7: the D-dimer, or the ultrasound when it is positive or cannot be used.
fn evaluation_next_step(d: &mut String, a: &Assessment, m: &Mappings, imaging: Option<&str>) {
    let low = unlikely_max(m);
    if positive_d_dimer(a) {
        match imaging {
            Some(l) => d.push_str(l),
            None => {
                let _ = write!(
                    d,
                    "D-dimer positive with Wells ≤ {low}: proximal leg-vein ultrasound (urgent)."
                );
            }
        }
    } else if a.anticoagulated() {
        let _ = write!(
            d,
            "A risk factor for DVT with Wells ≤ {low}, on anticoagulation: a D-dimer is unreliable. "
        );
        match imaging {
            Some(l) => d.push_str(l),
            None => d.push_str("Leg-vein ultrasound (urgent) instead."),
        }
    } else if a.d_dimer_block == Some(DDimerBlock::PossiblyAnticoagulated) {
        let _ = write!(
            d,
            "A risk factor for DVT with Wells ≤ {low}. Check the current medication first: if the patient is anticoagulated, leg-vein ultrasound; if not, a D-dimer (positive at {}), then ultrasound if positive.",
            threshold_text(a, m, a.suggested_d_dimer_kind)
        );
    } else if a.drafts.d_dimer.is_some() {
        let _ = write!(
            d,
            "D-dimer being ordered: positive at {}. If positive, leg-vein ultrasound.",
            threshold_text(a, m, a.drafts.d_dimer_kind)
        );
    } else {
        let _ = write!(
            d,
            "A risk factor for DVT with Wells ≤ {low}: D-dimer, positive at {}. If positive, leg-vein ultrasound.",
            threshold_text(a, m, a.suggested_d_dimer_kind)
        );
    }
    d.push('\n');
}

/// §4 rule 8: examine; the D-dimer if DVT is still suspected (or imaging, anticoagulated).
fn follow_up_next_step(d: &mut String, a: &Assessment, m: &Mappings) {
    d.push_str("No DVT risk factor (recent surgery, bed rest, paralysis or leg cast, long-haul travel, active cancer, previous VTE) was found in the record. Examine the leg: if DVT is still suspected after the examination, ");
    match a.d_dimer_block {
        Some(DDimerBlock::Anticoagulated) => {
            d.push_str("imaging is the test (a D-dimer is unreliable on anticoagulants).")
        }
        Some(DDimerBlock::PossiblyAnticoagulated) => d.push_str(
            "check the current medication first: on anticoagulation imaging is the test, otherwise a D-dimer.",
        ),
        Some(DDimerBlock::Pregnancy | DDimerBlock::Postpartum) | None => {
            let kind = if a.drafts.d_dimer.is_some() {
                a.drafts.d_dimer_kind
            } else {
                a.suggested_d_dimer_kind
            };
            let _ = write!(
                d,
                "a D-dimer can be ordered: positive at {}.",
                threshold_text(a, m, kind)
            );
        }
    }
    d.push('\n');
}

/// Why a D-dimer is not suggested (§4 modifier anticoagulated, §1 possibly anticoagulated).
fn block_note(d: &mut String, a: &Assessment) {
    match a.d_dimer_block {
        Some(DDimerBlock::Anticoagulated) => d.push_str(
            "\nThe patient is anticoagulated: a D-dimer is unreliable and is not suggested.\n",
        ),
        Some(DDimerBlock::PossiblyAnticoagulated) => {
            let refs = a
                .possibly_anticoagulated()
                .map(|f| evidence_text(&f.evidence))
                .unwrap_or_default();
            let _ = writeln!(
                d,
                "\nPossibly anticoagulated: a current medication could not be identified{}. A D-dimer is not suggested and a negative one is not used to set DVT aside until the medication is checked.",
                if refs.is_empty() {
                    String::new()
                } else {
                    format!(" ({refs})")
                }
            );
        }
        Some(DDimerBlock::Pregnancy | DDimerBlock::Postpartum) | None => {}
    }
}

/// §7: whether the drafted orders fit the pathway.
fn order_checks(d: &mut String, a: &Assessment, m: &Mappings) {
    let low = unlikely_max(m);
    for p in &a.pathway {
        let text = match p {
            PathwayNote::DDimerMaySpareScan => format!(
                "ultrasound ordered with Wells {} from the record and no D-dimer within {}: if the examination keeps Wells ≤ {low}, a D-dimer first may spare the scan (NICE).",
                a.wells.documented,
                days_text(m.model.windows.d_dimer)
            ),
            PathwayNote::DDimerCannotExclude => {
                "a D-dimer alone cannot exclude DVT here; ultrasound is the first test.".to_string()
            }
            PathwayNote::DDimerUnreliable => "D-dimer is unreliable on anticoagulants.".to_string(),
        };
        let _ = writeln!(d, "\n**Order check:** {text}");
    }
}

fn pe_next_step(d: &mut String, a: &Assessment, m: &Mappings) {
    let pe = a
        .wells_pe
        .as_ref()
        .map(|p| p.documented_tenths)
        .unwrap_or(0);
    let above = num(m.model.thresholds.wells_pe_likely_above);
    d.push_str("Warning signs of pulmonary embolism: assess the patient now. This applies at any age, even when anticoagulated or when a VTE is already known.\n\n");
    match a.pe_pathway {
        Some(PePathway::KnownVte) => {
            let known = a.current_vte();
            let what = known
                .map(|f| evidence_text(&f.evidence))
                .unwrap_or_default();
            let _ = writeln!(
                d,
                "Known VTE ({what}): assess for progression or treatment failure. No test is suggested."
            );
        }
        Some(PePathway::Ctpa(reason)) => {
            let why = match reason {
                CtpaReason::WellsPe => {
                    format!("Wells PE from the record is {}, above {above}", tenths(pe))
                }
                CtpaReason::DDimerBlocked(b) => {
                    format!("a D-dimer cannot be used: {}", block_text(b))
                }
                CtpaReason::PositiveDDimer => format!(
                    "a positive D-dimer within {}",
                    days_text(m.model.windows.d_dimer)
                ),
            };
            match &a.drafts.ctpa {
                Some(r) => {
                    let _ = writeln!(
                        d,
                        "CT pulmonary angiography being ordered ({r}): it fits the pathway ({why})."
                    );
                }
                None => {
                    let _ = writeln!(d, "CT pulmonary angiography (stat): {why} (NICE NG158).");
                }
            }
        }
        Some(PePathway::DDimerFirst) | None => {
            let kind = if a.drafts.d_dimer.is_some() {
                a.drafts.d_dimer_kind
            } else {
                a.suggested_d_dimer_kind
            };
            let _ = writeln!(
                d,
                "Wells PE from the record is {} ({above} or less): D-dimer (stat), positive at {}; a positive D-dimer leads to CTPA; if PE is judged the most likely diagnosis, Wells PE rises by 3: CTPA.",
                tenths(pe),
                threshold_text(a, m, kind)
            );
            if let Some(r) = &a.drafts.ctpa {
                let _ = writeln!(
                    d,
                    "\n**Order check:** CT pulmonary angiography being ordered ({r}) with Wells PE {} from the record: NICE tests a D-dimer first unless PE is judged the most likely diagnosis.",
                    tenths(pe)
                );
            }
        }
    }
    d.push_str("\nPregnancy or a contrast contraindication may call for V/Q scanning instead of CTPA (local protocol).\n");
}

fn other_causes(d: &mut String, a: &Assessment, m: &Mappings) {
    let _ = write!(
        d,
        "\n### Other causes to consider\n\nFrom {}: Baker cyst, calf muscle strain or tear, knee ligament (PCL) or meniscus injury, nerve compression (sciatica), peripheral arterial disease; also superficial thrombophlebitis and cellulitis.\n",
        article(m)
    );
    if !a.concepts.alternatives.is_empty() {
        d.push_str("\nCoded in the record (possible Wells −2 evidence; the clinician decides, it is not subtracted):\n\n");
        for f in &a.concepts.alternatives {
            d.push_str(&finding_line(m, f));
            d.push('\n');
        }
    }
}

/// §6: the article's two levels kept apart; guideline-added signs labelled.
fn seek_care(d: &mut String, m: &Mappings) {
    d.push_str("\n### When to seek care\n\n");
    d.push_str("- **See a doctor soon** (the article). Advise the patient to see a doctor soon for calf pain that is sudden, severe, worsening or persistent, or an injury that makes walking difficult.\n");
    d.push_str("- **Seek immediate care** (the article). Advise the patient to seek immediate care for shortness of breath or difficulty breathing, chest pain, a sudden cough, dizziness, lightheadedness or fainting.\n");
    let _ = writeln!(
        d,
        "- **Added from the guidelines** (NICE NG158, Wells PE; not in the article). Advise the patient to seek immediate care for coughing up blood. An SpO2 below {} % is a warning sign on examination.",
        num(m.model.thresholds.spo2_below)
    );
}

fn data_quality(d: &mut String, a: &Assessment, m: &Mappings) {
    let mut q: Vec<String> = a.data_quality.iter().map(|n| quality_line(m, n)).collect();
    let n = &a.notes;
    if n.malformed > 0 {
        q.push(format!(
            "- {} malformed entr{} skipped.",
            n.malformed,
            if n.malformed == 1 { "y" } else { "ies" }
        ));
    }
    if n.other_patient > 0 {
        q.push(format!(
            "- {} resource(s) of another patient ignored.",
            n.other_patient
        ));
    }
    if !q.is_empty() {
        d.push_str("\n### Data quality\n\n");
        for line in q {
            d.push_str(&line);
            d.push('\n');
        }
    }
}
