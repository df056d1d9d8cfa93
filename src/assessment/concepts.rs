//! `dvt-model.md` §2: the concepts the record supports, each with its evidence.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::mappings::{CodeSet, Mappings, Side, UCUM, normalise_icd};
use crate::record::{Fact, Kind, Record, When, cmp_references, reference};

/// A concept the record supports (§6 `findings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub concept: &'static str,
    /// References, most recent first.
    pub evidence: Vec<String>,
    /// Date of the most recent evidence.
    pub date: Option<NaiveDate>,
    pub side: Option<Side>,
}

/// Evidence of one concept. References are built only for what survives the dedupe,
/// not for every matching resource (they were the derive step's main allocation).
#[derive(Default)]
struct Collect<'a> {
    items: Vec<(Option<When>, Kind, &'a str, Option<Side>)>,
}

impl<'a> Collect<'a> {
    fn add(&mut self, f: &Fact<'a>) {
        self.items.push((f.date, f.kind, f.id, f.side));
    }
    fn finish(mut self, concept: &'static str) -> Option<Finding> {
        if self.items.is_empty() {
            return None;
        }
        // Most recent first; undated last; then by reference for determinism.
        self.items.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| cmp_references((a.1, a.2), (b.1, b.2)))
        });
        self.items.dedup_by(|a, b| (a.1, a.2) == (b.1, b.2));
        let date = self.items.iter().find_map(|i| i.0).map(|w| w.date());
        let side = combine_sides(self.items.iter().filter_map(|i| i.3));
        Some(Finding {
            concept,
            evidence: self.items.iter().map(|i| reference(i.1, i.2)).collect(),
            date,
            side,
        })
    }
}

/// References in first-seen order, each once (§6: an evidence list never repeats one).
pub fn unique_refs(refs: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in refs {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Left and right together make bilateral.
pub fn combine_sides(sides: impl Iterator<Item = Side>) -> Option<Side> {
    let mut out: Option<Side> = None;
    for s in sides {
        out = Some(match (out, s) {
            (None, s) => s,
            (Some(a), b) if a == b => a,
            _ => Side::Bilateral,
        });
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DDimerKind {
    Feu,
    Ddu,
}

impl DDimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DDimerKind::Feu => "FEU",
            DDimerKind::Ddu => "DDU",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DDimerResult {
    Positive,
    Negative,
    Uninterpretable,
}

impl DDimerResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DDimerResult::Positive => "positive",
            DDimerResult::Negative => "negative",
            DDimerResult::Uninterpretable => "uninterpretable",
        }
    }
}

/// The latest D-dimer in the window (§2 `d-dimer`, §5 units).
#[derive(Debug, Clone, PartialEq)]
pub struct DDimer {
    pub reference: String,
    pub date: Option<NaiveDate>,
    pub kind: DDimerKind,
    /// In µg/L when the unit could be read (§5).
    pub value_ugl: Option<f64>,
    /// As recorded.
    pub raw_value: Option<f64>,
    pub raw_unit: Option<String>,
    pub comparator: Option<String>,
}

/// A vital sign read from an Observation or a panel component.
#[derive(Debug, Clone, PartialEq)]
pub struct Vital {
    pub reference: String,
    pub date: Option<NaiveDate>,
    pub value: f64,
}

/// Everything §2 derives from one record.
#[derive(Debug, Clone, Default)]
pub struct Concepts {
    pub leg_pain: Option<Finding>,
    pub leg_swelling: Option<Finding>,
    pub recent_surgery: Option<Finding>,
    /// Surgery within the Wells PE window (§4 rule 1).
    pub surgery_for_pe: bool,
    pub bedridden: Option<Finding>,
    pub paralysis_or_cast: Option<Finding>,
    pub active_cancer: Option<Finding>,
    pub previous_vte: Option<Finding>,
    pub current_dvt: Option<Finding>,
    pub pregnancy: Option<Finding>,
    pub postpartum: Option<Finding>,
    pub first_trimester: Option<Finding>,
    pub estrogen_use: Option<Finding>,
    pub anticoagulated: Option<Finding>,
    pub long_haul_travel: Option<Finding>,
    /// dyspnoea, chest-pain, cough, haemoptysis, syncope, dizziness, hypoxaemia (in order).
    pub warning_signs: Vec<Finding>,
    pub tachycardia: Option<Finding>,
    pub heart_rate: Option<Vital>,
    pub spo2: Option<Vital>,
    pub d_dimer: Option<DDimer>,
    pub dvt_imaging: Option<Finding>,
    pub alternatives: Vec<Finding>,
    /// Observations whose unit could not be read (§1): (reference, what, unit).
    pub unreadable_units: Vec<(String, &'static str, String)>,
    /// Resources without a usable date that matched a time-windowed concept.
    pub undated: usize,
}

pub const WARNING_SIGNS: [(CodeSet, &str); 6] = [
    (CodeSet::Dyspnoea, "dyspnoea"),
    (CodeSet::ChestPain, "chest-pain"),
    (CodeSet::Cough, "cough"),
    (CodeSet::Haemoptysis, "haemoptysis"),
    (CodeSet::Syncope, "syncope"),
    (CodeSet::Dizziness, "dizziness"),
];

pub const ALTERNATIVES: [(CodeSet, &str); 7] = [
    (CodeSet::BakerCyst, "baker-cyst"),
    (CodeSet::CalfMuscleStrain, "calf-muscle-strain"),
    (
        CodeSet::KneeLigamentOrMeniscusInjury,
        "knee-ligament-or-meniscus-injury",
    ),
    (CodeSet::NerveCompression, "nerve-compression"),
    (CodeSet::ArterialDisease, "arterial-disease"),
    (
        CodeSet::SuperficialThrombophlebitis,
        "superficial-thrombophlebitis",
    ),
    (CodeSet::Cellulitis, "cellulitis"),
];

fn within(f: &Fact<'_>, now: DateTime<Utc>, days: u32) -> bool {
    f.date.is_some_and(|d| d.within_days(now, days))
}

/// A symptom is present: an active Condition, or an Observation not saying it is absent.
fn symptom_present(f: &Fact<'_>) -> bool {
    match f.kind {
        Kind::Condition => f.active,
        Kind::Observation => !f.absent,
        _ => false,
    }
}

/// Strip UCUM annotations (`{FEU}`) and return (unit, annotations).
fn split_annotations(unit: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut notes = Vec::new();
    let mut cur = None::<String>;
    for ch in unit.trim().chars() {
        match (ch, cur.as_mut()) {
            ('{', None) => cur = Some(String::new()),
            ('}', Some(_)) => notes.push(cur.take().unwrap_or_default()),
            (c, Some(n)) => n.push(c),
            (c, None) => out.push(c),
        }
    }
    (out, notes)
}

/// (value, unit as recorded, comparator) of the quantity for this code set: the
/// Observation's own `valueQuantity`, or the matching component's (§1 panels).
fn quantity<'a>(
    m: &Mappings,
    f: &Fact<'a>,
    set: CodeSet,
) -> Option<(Option<f64>, Option<String>, Option<String>)> {
    let holder: &Value = if f.codes.contains(set) {
        f.resource
    } else {
        f.resource
            .get("component")
            .and_then(Value::as_array)?
            .iter()
            .find(|c| {
                crate::record::concept_codes(m, c.get("code"))
                    .0
                    .contains(set)
            })?
    };
    let Some(q) = holder.get("valueQuantity") else {
        return Some((None, None, None));
    };
    let value = q.get("value").and_then(Value::as_f64);
    let code = q.get("code").and_then(Value::as_str).filter(|_| {
        q.get("system")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim() == UCUM)
    });
    let unit = code
        .or_else(|| q.get("unit").and_then(Value::as_str))
        .map(|u| u.trim().to_string());
    let comparator = q
        .get("comparator")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((value, unit, comparator))
}

/// The most recent Observation (own code or panel component) in the window.
fn latest<'r, 'a>(
    rec: &'r Record<'a>,
    set: CodeSet,
    now: DateTime<Utc>,
    days: u32,
) -> Option<&'r Fact<'a>> {
    rec.facts
        .iter()
        .filter(|f| {
            f.kind == Kind::Observation
                && (f.codes.contains(set) || f.component_codes.contains(set))
                && within(f, now, days)
        })
        .max_by(|a, b| a.date.cmp(&b.date).then_with(|| b.id.cmp(a.id)))
}

fn read_vital(
    m: &Mappings,
    c: &mut Concepts,
    f: &Fact<'_>,
    set: CodeSet,
    what: &'static str,
    accepts: &[&str],
) -> Option<Vital> {
    let (value, unit, _) = quantity(m, f, set)?;
    let unit_ok = unit
        .as_deref()
        .map(|u| split_annotations(u).0)
        .is_some_and(|u| accepts.contains(&u.as_str()));
    match value {
        Some(v) if unit_ok && v.is_finite() => Some(Vital {
            reference: f.reference(),
            date: f.date.map(|d| d.date()),
            value: v,
        }),
        _ => {
            c.unreadable_units.push((
                f.reference(),
                what,
                unit.unwrap_or_else(|| "no value or unit".to_string()),
            ));
            None
        }
    }
}

/// Derive every §2 concept from the record.
pub fn derive(m: &Mappings, rec: &Record<'_>, now: DateTime<Utc>) -> Concepts {
    let w = &m.model.windows;
    let mut c = Concepts::default();
    let (mut pain, mut swelling, mut surgery, mut bedridden, mut paralysis) = (
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
    );
    let (mut cancer, mut prev_vte, mut cur_dvt, mut postpartum, mut estrogen) = (
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
    );
    let (mut anticoag, mut travel, mut imaging, mut trimester) = (
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
    );
    let mut signs: Vec<Collect> = WARNING_SIGNS.iter().map(|_| Collect::default()).collect();
    let mut alts: Vec<Collect> = ALTERNATIVES.iter().map(|_| Collect::default()).collect();
    // §2 pregnancy: evidence dates, ended by a later "not pregnant" or a delivery.
    let mut preg_evidence: Vec<&Fact<'_>> = Vec::new();
    let mut preg_ends: Vec<When> = Vec::new();

    for f in &rec.facts {
        let codes = f.codes;
        if codes.is_empty() && f.reason_codes.is_empty() && !f.inpatient && !f.surgical_category {
            continue;
        }
        let windowed = codes.contains(CodeSet::LegPain)
            || codes.contains(CodeSet::LegSwelling)
            || WARNING_SIGNS.iter().any(|(s, _)| codes.contains(*s));
        if windowed && f.date.is_none() {
            c.undated += 1;
        }
        match f.kind {
            Kind::Condition | Kind::Observation => {
                // §2 leg-pain / leg-swelling: ≤ 14 days, present.
                if symptom_present(f) && within(f, now, w.index_presentation) {
                    if codes.contains(CodeSet::LegPain) {
                        pain.add(f);
                    }
                    if codes.contains(CodeSet::LegSwelling) {
                        swelling.add(f);
                    }
                }
                // §2 warning signs: ≤ 3 days, present.
                if symptom_present(f) && within(f, now, w.warning_sign) {
                    for (i, (set, _)) in WARNING_SIGNS.iter().enumerate() {
                        if codes.contains(*set) {
                            signs[i].add(f);
                        }
                    }
                }
                // §2 long-haul-travel: a site-mapped code, ≤ 56 days.
                if codes.contains(CodeSet::LongHaulTravel)
                    && !(f.kind == Kind::Observation && f.absent)
                    && within(f, now, w.long_haul_travel)
                {
                    travel.add(f);
                }
            }
            _ => {}
        }
        match f.kind {
            Kind::Condition => {
                // §2 bedridden: active Condition.
                if f.active && codes.contains(CodeSet::Bedridden) {
                    bedridden.add(f);
                }
                // §2 paralysis-or-cast: active Condition.
                if f.active && codes.contains(CodeSet::Paralysis) {
                    paralysis.add(f);
                }
                // §2 active-cancer: active Condition in the cancer set, never Z85.-.
                if f.active && codes.contains(CodeSet::Cancer) && !only_z85(m, f) {
                    cancer.add(f);
                }
                // §2 active-cancer: Z51.0 / Z51.11 within 183 days.
                if codes.contains(CodeSet::CancerTreatment) && within(f, now, w.cancer_activity) {
                    cancer.add(f);
                }
                // §2 previous-vte: VTE recorded > 90 days ago or not active; or history codes.
                // Placeholder until v2-record: DVT or PE where v1 had one VTE set.
                let vte = codes.contains(CodeSet::Dvt) || codes.contains(CodeSet::Pe);
                if vte && (!f.active || !within(f, now, w.current_dvt)) {
                    prev_vte.add(f);
                }
                if codes.contains(CodeSet::DvtHistory) || codes.contains(CodeSet::PeHistory) {
                    prev_vte.add(f);
                }
                // §2 current-dvt: active acute DVT recorded ≤ 90 days ago.
                // Placeholder until v2-record: v1's acute-dvt = DVT codes minus chronic ones.
                let acute_dvt =
                    codes.contains(CodeSet::Dvt) && !codes.contains(CodeSet::DvtChronic);
                if f.active && acute_dvt && within(f, now, w.current_dvt) {
                    cur_dvt.add(f);
                }
                // §2 pregnancy: active Condition, evidence ≤ 280 days.
                if f.active
                    && codes.contains(CodeSet::Pregnancy)
                    && within(f, now, w.pregnancy_evidence)
                {
                    preg_evidence.push(f);
                }
                if codes.contains(CodeSet::FirstTrimester) && still_first_trimester(m, f, now) {
                    trimester.add(f);
                }
                // §2 postpartum: Condition ≤ 42 days.
                if codes.contains(CodeSet::Postpartum) && within(f, now, w.postpartum) {
                    postpartum.add(f);
                }
                // §2 estrogen-use / anticoagulated: active Condition (Z79.3, Z79.890, Z79.01).
                if f.active && codes.contains(CodeSet::Estrogen) {
                    estrogen.add(f);
                }
                if f.active && codes.contains(CodeSet::Anticoagulant) {
                    anticoag.add(f);
                }
                // §2 alternatives: active or ≤ 30 days.
                for (i, (set, _)) in ALTERNATIVES.iter().enumerate() {
                    if codes.contains(*set) && (f.active || within(f, now, w.alternative)) {
                        alts[i].add(f);
                    }
                }
            }
            Kind::Observation => {
                if codes.contains(CodeSet::PregnancyStatus)
                    && let Some(d) = f.date
                    && d.within_days(now, w.pregnancy_evidence)
                {
                    let value = f.resource.get("valueCodeableConcept");
                    if crate::record::has_coding(
                        value,
                        std::slice::from_ref(&m.model.record.pregnant_value),
                    ) {
                        preg_evidence.push(f);
                    } else if crate::record::has_coding(
                        value,
                        std::slice::from_ref(&m.model.record.not_pregnant_value),
                    ) {
                        preg_ends.push(d);
                    }
                }
            }
            Kind::Procedure if f.active => {
                // §2 recent-surgery: completed / in-progress, code or category, ≤ 84 days.
                if (codes.contains(CodeSet::Surgery) || f.surgical_category)
                    && within(f, now, w.recent_surgery)
                {
                    surgery.add(f);
                    if within(f, now, w.pe_surgery) {
                        c.surgery_for_pe = true;
                    }
                }
                // §2 paralysis-or-cast: leg cast ≤ 84 days.
                if codes.contains(CodeSet::LegCast) && within(f, now, w.leg_cast) {
                    paralysis.add(f);
                }
                if codes.contains(CodeSet::Delivery) {
                    if let Some(d) = f.date {
                        preg_ends.push(d);
                    }
                    if within(f, now, w.postpartum) {
                        postpartum.add(f);
                    }
                }
            }
            Kind::MedicationRequest | Kind::MedicationStatement if f.active => {
                if codes.contains(CodeSet::Estrogen) {
                    estrogen.add(f);
                }
                if codes.contains(CodeSet::Anticoagulant) {
                    anticoag.add(f);
                }
            }
            Kind::Encounter => {
                // §2 bedridden: inpatient stay ≥ 3 days, ended ≤ 28 days ago or ongoing.
                if f.inpatient && bedridden_stay(m, f, now) {
                    bedridden.add(f);
                }
                // §2 active-cancer: Encounter reason Z51.0 / Z51.11 ≤ 183 days.
                if f.reason_codes.contains(CodeSet::CancerTreatment)
                    && within(f, now, w.cancer_activity)
                {
                    cancer.add(f);
                }
            }
            // §2 dvt-imaging: ServiceRequest (active / completed), DiagnosticReport or
            // ImagingStudy with a leg-vein ultrasound code, ≤ 7 days.
            Kind::ServiceRequest | Kind::DiagnosticReport | Kind::ImagingStudy
                if f.active
                    && codes.contains(CodeSet::LegVeinUltrasound)
                    && within(f, now, w.dvt_imaging) =>
            {
                imaging.add(f);
            }
            _ => {}
        }
    }

    // §2 pregnancy: evidence with no later "not pregnant" and no delivery since.
    let mut preg = Collect::default();
    for f in preg_evidence {
        if let Some(d) = f.date
            && !preg_ends.iter().any(|e| e.t >= d.t)
        {
            preg.add(f);
        }
    }

    c.leg_pain = pain.finish("leg-pain");
    c.leg_swelling = swelling.finish("leg-swelling");
    c.recent_surgery = surgery.finish("recent-surgery");
    c.bedridden = bedridden.finish("bedridden");
    c.paralysis_or_cast = paralysis.finish("paralysis-or-cast");
    c.active_cancer = cancer.finish("active-cancer");
    c.previous_vte = prev_vte.finish("previous-vte");
    c.current_dvt = cur_dvt.finish("current-dvt");
    c.pregnancy = preg.finish("pregnancy");
    c.postpartum = postpartum.finish("postpartum");
    c.first_trimester = trimester.finish("first-trimester");
    c.estrogen_use = estrogen.finish("estrogen-use");
    c.anticoagulated = anticoag.finish("anticoagulated");
    c.long_haul_travel = travel.finish("long-haul-travel");
    c.dvt_imaging = imaging.finish("dvt-imaging");
    for (col, (_, name)) in signs.into_iter().zip(WARNING_SIGNS) {
        if let Some(f) = col.finish(name) {
            c.warning_signs.push(f);
        }
    }
    for (col, (_, name)) in alts.into_iter().zip(ALTERNATIVES) {
        if let Some(f) = col.finish(name) {
            c.alternatives.push(f);
        }
    }

    // §2 hypoxaemia: latest SpO2 ≤ 1 day, < 95 %.
    if let Some(f) = latest(rec, CodeSet::Spo2, now, w.vital_sign) {
        c.spo2 = read_vital(m, &mut c, f, CodeSet::Spo2, "SpO2", &["%"]);
        if let Some(v) = &c.spo2
            && v.value < m.model.thresholds.spo2_below
        {
            c.warning_signs.push(Finding {
                concept: "hypoxaemia",
                evidence: vec![v.reference.clone()],
                date: v.date,
                side: None,
            });
        }
    }
    // §2 tachycardia: latest heart rate ≤ 1 day, ≥ 100 /min.
    if let Some(f) = latest(rec, CodeSet::HeartRate, now, w.vital_sign) {
        c.heart_rate = read_vital(
            m,
            &mut c,
            f,
            CodeSet::HeartRate,
            "heart rate",
            &["/min", "beats/min"],
        );
        if let Some(v) = &c.heart_rate
            && v.value >= m.model.thresholds.heart_rate_at_least
        {
            c.tachycardia = Some(Finding {
                concept: "tachycardia",
                evidence: vec![v.reference.clone()],
                date: v.date,
                side: None,
            });
        }
    }
    // §2 d-dimer: latest result ≤ 3 days (FEU or DDU code, own value or component).
    let feu = latest(rec, CodeSet::DDimerFeu, now, w.d_dimer);
    let ddu = latest(rec, CodeSet::DDimerDdu, now, w.d_dimer);
    let pick = match (feu, ddu) {
        (Some(a), Some(b)) if b.date > a.date => Some((b, DDimerKind::Ddu)),
        (Some(a), _) => Some((a, DDimerKind::Feu)),
        (None, Some(b)) => Some((b, DDimerKind::Ddu)),
        (None, None) => None,
    };
    if let Some((f, kind)) = pick {
        let set = if kind == DDimerKind::Feu {
            CodeSet::DDimerFeu
        } else {
            CodeSet::DDimerDdu
        };
        let (raw_value, raw_unit, comparator) = quantity(m, f, set).unwrap_or((None, None, None));
        let value_ugl = raw_value
            .zip(raw_unit.as_deref())
            .and_then(|(v, u)| to_ugl(v, u, kind));
        if value_ugl.is_none() {
            c.unreadable_units.push((
                f.reference(),
                "D-dimer",
                raw_unit
                    .clone()
                    .unwrap_or_else(|| "no value or unit".to_string()),
            ));
        }
        c.d_dimer = Some(DDimer {
            reference: f.reference(),
            date: f.date.map(|d| d.date()),
            kind,
            value_ugl,
            raw_value,
            raw_unit,
            comparator,
        });
    }
    c
}

/// §5 units: ug/L = ng/mL; mg/L = ug/mL = 1000 ug/L; anything else cannot be read. A UCUM
/// annotation is allowed when it names the code's own kind (`ng/mL{FEU}` on a FEU code).
fn to_ugl(value: f64, unit: &str, kind: DDimerKind) -> Option<f64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let (unit, notes) = split_annotations(unit);
    if notes.iter().any(|n| !n.eq_ignore_ascii_case(kind.as_str())) {
        return None;
    }
    match unit.as_str() {
        "ug/L" | "ng/mL" => Some(value),
        "mg/L" | "ug/mL" => Some(value * 1000.0),
        _ => None,
    }
}

/// §2 "never Z85.-": a cancer match only through Z85 codes does not count.
fn only_z85(m: &Mappings, f: &Fact<'_>) -> bool {
    let Some(codings) = f
        .resource
        .get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
    else {
        return false;
    };
    let mut any_other = false;
    for c in codings {
        let (Some(s), Some(k)) = (
            c.get("system").and_then(Value::as_str),
            c.get("code").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !m.classify(s, k).contains(CodeSet::Cancer) {
            continue;
        }
        let mut buf = [0u8; 16];
        let z85 = m.is_icd10cm(s)
            && normalise_icd(k, &mut buf).is_some_and(|n| n >= 3 && &buf[..3] == b"Z85");
        if !z85 {
            any_other = true;
        }
    }
    !any_other
}

/// §4 rule 4 LEFt "first trimester": a Z3A / first-trimester code whose gestation, carried
/// forward to now from its date (lower bound: Z3A.NN = NN weeks, others 0), is < 14 weeks.
fn still_first_trimester(m: &Mappings, f: &Fact<'_>, now: DateTime<Utc>) -> bool {
    let Some(d) = f.date else { return false };
    if d.is_future(now) {
        return false;
    }
    let days_since = (now.date_naive() - d.date()).num_days();
    let mut weeks = 0i64;
    if let Some(codings) = f
        .resource
        .get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
    {
        for c in codings {
            let (Some(s), Some(k)) = (
                c.get("system").and_then(Value::as_str),
                c.get("code").and_then(Value::as_str),
            ) else {
                continue;
            };
            let mut buf = [0u8; 16];
            if m.is_icd10cm(s)
                && let Some(n) = normalise_icd(k, &mut buf)
                && n == 5
                && &buf[..3] == b"Z3A"
                && let Ok(nn) = std::str::from_utf8(&buf[3..5]).unwrap_or("").parse::<i64>()
            {
                // Z3A.01 is "less than 8 weeks": lower bound 0.
                weeks = if nn == 1 { 0 } else { nn };
            }
        }
    }
    weeks * 7 + days_since < 14 * 7
}

/// §2 bedridden: an inpatient stay of ≥ 3 days that ended ≤ 28 days ago or is ongoing.
fn bedridden_stay(m: &Mappings, f: &Fact<'_>, now: DateTime<Utc>) -> bool {
    let Some(start) = f.date else { return false };
    let min_days = i64::from(m.model.thresholds.bedridden_stay_min_days);
    let span = |a: When, b: When| -> i64 {
        if a.date_only || b.date_only {
            (b.date() - a.date()).num_days()
        } else {
            (b.t - a.t).num_hours() / 24
        }
    };
    match f.end {
        Some(end) if !end.is_future(now) => {
            span(start, end) >= min_days
                && end.within_days(now, m.model.windows.bedridden_stay_ended)
        }
        // Ongoing (no end, or an end still ahead): measured up to now.
        _ => {
            let now_w = When {
                t: now,
                date_only: start.date_only,
            };
            span(start, now_w) >= min_days
        }
    }
}
