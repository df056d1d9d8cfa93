//! `dvt-model.md` §2: the concepts the record supports, each with its evidence.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::mappings::{CodeSet, Mappings, Side, UCUM, normalise_icd};
use crate::record::quality::{self, DataQualityCode, DataQualityNote};
use crate::record::{Fact, Kind, Record, When, cmp_references, reference};

/// One resource behind a finding (§6: every statement points to the resource it came
/// from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// `Condition/7`.
    pub reference: String,
    /// The matched coding's display, else the code's text, else another coding's
    /// display; a medication: the Medication's name.
    pub name: Option<String>,
    /// The clinically relevant date as written in the resource (§1 partial dates:
    /// `2026-11` stays `2026-11`).
    pub date: Option<String>,
}

impl Evidence {
    /// Evidence known only by its reference (a draft order, a vital sign).
    pub fn of(reference: impl Into<String>) -> Evidence {
        Evidence {
            reference: reference.into(),
            name: None,
            date: None,
        }
    }
}

/// A concept the record supports (§6 `findings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub concept: &'static str,
    /// Most recent first.
    pub evidence: Vec<Evidence>,
    /// First day of the most recent evidence's date (a partial date: its first day;
    /// the card shows `evidence[0].date`, as written).
    pub date: Option<NaiveDate>,
    pub side: Option<Side>,
}

impl Finding {
    /// The evidence's references, in order.
    pub fn references(&self) -> Vec<String> {
        self.evidence.iter().map(|e| e.reference.clone()).collect()
    }
}

/// Evidence of one concept. References are built only for what survives the dedupe,
/// not for every matching resource (they were the derive step's main allocation).
#[derive(Default)]
struct Collect<'a> {
    items: Vec<Item<'a>>,
}

/// (date, kind, id, side, name) of one piece of evidence.
type Item<'a> = (
    Option<When<'a>>,
    Kind,
    &'a str,
    Option<Side>,
    Option<&'a str>,
);

impl<'a> Collect<'a> {
    fn add(&mut self, f: &Fact<'a>) {
        self.items.push((f.date, f.kind, f.id, f.side, f.name));
    }
    fn extend(&mut self, other: &Collect<'a>) {
        self.items.extend(other.items.iter().copied());
    }
    fn is_empty(&self) -> bool {
        self.items.is_empty()
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
            evidence: self
                .items
                .iter()
                .map(|i| Evidence {
                    reference: reference(i.1, i.2),
                    name: i.4.map(str::to_string),
                    date: i.0.map(|w| w.written.to_string()),
                })
                .collect(),
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

/// The latest D-dimer in the window (§2 `d-dimer`, §5 units): the newest readable one,
/// else the newest one (then uninterpretable).
#[derive(Debug, Clone, PartialEq)]
pub struct DDimer {
    pub reference: String,
    pub date: Option<NaiveDate>,
    /// The code's kind (§5); a unit naming the other kind makes the result
    /// uninterpretable (§1).
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
    /// §1 Deceased: no card (§4 rule 2).
    pub deceased: bool,
    pub leg_pain: Option<Finding>,
    pub leg_swelling: Option<Finding>,
    pub recent_surgery: Option<Finding>,
    /// Surgery within the Wells PE window (§4 rule 1).
    pub surgery_for_pe: bool,
    pub bedridden: Option<Finding>,
    pub paralysis_or_cast: Option<Finding>,
    /// §2 active-cancer: an active cancer Condition with activity within the window.
    pub active_cancer: Option<Finding>,
    /// An active cancer Condition (or cancer treatment) without the rest of §2
    /// active-cancer: the Wells row is `to-confirm` (§3).
    pub cancer_to_confirm: Option<Finding>,
    /// §2 previous-dvt: the Wells DVT item.
    pub previous_dvt: Option<Finding>,
    /// §2 previous-vte (DVT or PE): rule 7, Wells PE.
    pub previous_vte: Option<Finding>,
    /// §2 current-dvt: a DVT or PE diagnosed now (rule 3).
    pub current_vte: Option<Finding>,
    pub pregnancy: Option<Finding>,
    pub postpartum: Option<Finding>,
    pub first_trimester: Option<Finding>,
    pub estrogen_use: Option<Finding>,
    pub anticoagulated: Option<Finding>,
    /// §1: current medication reference(s) that could not be resolved.
    pub possibly_anticoagulated: Option<Finding>,
    pub long_haul_travel: Option<Finding>,
    /// dyspnoea, chest-pain, cough, haemoptysis, syncope, dizziness, hypoxaemia (in order).
    pub warning_signs: Vec<Finding>,
    pub tachycardia: Option<Finding>,
    pub heart_rate: Option<Vital>,
    pub spo2: Option<Vital>,
    pub d_dimer: Option<DDimer>,
    pub dvt_imaging: Option<Finding>,
    pub alternatives: Vec<Finding>,
    /// §6 data-quality notes of the record and of the concepts, one per code.
    pub data_quality: Vec<DataQualityNote>,
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

/// §1: a window that raises a card or a risk factor (any part of the date inside).
fn within(f: &Fact<'_>, now: DateTime<Utc>, days: u32) -> bool {
    f.date.is_some_and(|d| d.within_days(now, days))
}

/// §1: a window that suppresses or downgrades a card (the whole date inside).
fn wholly_within(f: &Fact<'_>, now: DateTime<Utc>, days: u32) -> bool {
    f.date.is_some_and(|d| d.wholly_within_days(now, days))
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

/// §1 units: UCUM is case-sensitive except that `l` and `L` are both the litre; `ug`,
/// `µg`, `mcg` are the microgram. The unit in its one spelling (`ug/mL`), annotations
/// removed.
fn canonical_unit(unit: &str) -> String {
    let (unit, _) = split_annotations(unit);
    let (num, den) = match unit.split_once('/') {
        Some((n, d)) => (n.to_string(), Some(d.to_string())),
        None => (unit.clone(), None),
    };
    let num = match num.as_str() {
        "µg" | "μg" | "mcg" => "ug".to_string(),
        _ => num,
    };
    let den = den.map(|d| match d.as_str() {
        "l" => "L".to_string(),
        "ml" => "mL".to_string(),
        "dl" => "dL".to_string(),
        _ => d,
    });
    match den {
        Some(d) => format!("{num}/{d}"),
        None => num,
    }
}

/// §1 D-dimer units: a trailing ` FEU` / ` DDU` or an annotation `{FEU}` / `{DDU}` says
/// the kind; the rest is read as UCUM. (unit without the kind, the kind it names).
/// `None` when the text names two kinds or an annotation that is not a kind.
fn d_dimer_unit(unit: &str) -> Option<(String, Option<DDimerKind>)> {
    let kind_of = |s: &str| match s.trim().to_ascii_uppercase().as_str() {
        "FEU" => Some(DDimerKind::Feu),
        "DDU" => Some(DDimerKind::Ddu),
        _ => None,
    };
    let mut rest = unit.trim();
    let mut kinds = Vec::new();
    if let Some((head, tail)) = rest.rsplit_once(' ')
        && let Some(k) = kind_of(tail)
    {
        kinds.push(k);
        rest = head.trim_end();
    }
    let (bare, notes) = split_annotations(rest);
    for n in notes {
        kinds.push(kind_of(&n)?);
    }
    kinds.dedup();
    if kinds.len() > 1 {
        return None;
    }
    Some((canonical_unit(&bare), kinds.first().copied()))
}

/// §5 units: ug/L = ng/mL; mg/L = ug/mL = 1000 ug/L; anything else cannot be read. A unit
/// text naming the other kind than the code's (`ng/mL DDU` on a FEU code) is a
/// contradiction: uninterpretable (§1).
fn to_ugl(value: f64, unit: &str, kind: DDimerKind) -> Option<f64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let (unit, named) = d_dimer_unit(unit)?;
    if named.is_some_and(|k| k != kind) {
        return None;
    }
    match unit.as_str() {
        "ug/L" | "ng/mL" => Some(value),
        "mg/L" | "ug/mL" => Some(value * 1000.0),
        _ => None,
    }
}

/// (value, unit as recorded, comparator) of the quantity for this code set: the
/// Observation's own `valueQuantity`, or the matching component's (§1 panels).
fn quantity(
    m: &Mappings,
    f: &Fact<'_>,
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

/// The Observations (own code or panel component) in the window, newest first.
fn newest_first<'r, 'a>(
    rec: &'r Record<'a>,
    sets: &[CodeSet],
    now: DateTime<Utc>,
    days: u32,
) -> Vec<&'r Fact<'a>> {
    let mut out: Vec<&Fact<'a>> = rec
        .facts
        .iter()
        .filter(|f| {
            f.kind == Kind::Observation
                && sets
                    .iter()
                    .any(|&s| f.codes.contains(s) || f.component_codes.contains(s))
                && within(f, now, days)
        })
        .collect();
    out.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.id.cmp(b.id)));
    out
}

/// §1 vital signs: the most recent READABLE Observation in the window (a value in a
/// known unit); each newer unreadable one is noted and never hides an older readable one.
fn latest_vital(
    m: &Mappings,
    rec: &Record<'_>,
    notes: &mut Vec<DataQualityNote>,
    set: CodeSet,
    days: u32,
    now: DateTime<Utc>,
    accepts: &[&str],
) -> Option<Vital> {
    for f in newest_first(rec, &[set], now, days) {
        let Some((value, unit, _)) = quantity(m, f, set) else {
            continue;
        };
        let unit_ok = unit
            .as_deref()
            .is_some_and(|u| accepts.contains(&canonical_unit(u).as_str()));
        match value {
            Some(v) if unit_ok && v.is_finite() => {
                return Some(Vital {
                    reference: f.reference(),
                    date: f.date.map(|d| d.date()),
                    value: v,
                });
            }
            _ => quality::note(notes, DataQualityCode::UnreadableUnit, Some(f.reference())),
        }
    }
    None
}

/// §2 d-dimer: the newest readable result in the window (FEU or DDU code, own value or
/// component); newer unreadable ones are noted. With none readable, the newest one,
/// uninterpretable.
fn latest_d_dimer(
    m: &Mappings,
    rec: &Record<'_>,
    notes: &mut Vec<DataQualityNote>,
    now: DateTime<Utc>,
) -> Option<DDimer> {
    let mut first: Option<DDimer> = None;
    let days = m.model.windows.d_dimer;
    for f in newest_first(rec, &[CodeSet::DDimerFeu, CodeSet::DDimerDdu], now, days) {
        let (kind, set) = if f.codes.contains(CodeSet::DDimerFeu)
            || (!f.codes.contains(CodeSet::DDimerDdu)
                && f.component_codes.contains(CodeSet::DDimerFeu))
        {
            (DDimerKind::Feu, CodeSet::DDimerFeu)
        } else {
            (DDimerKind::Ddu, CodeSet::DDimerDdu)
        };
        let (raw_value, raw_unit, comparator) = quantity(m, f, set).unwrap_or((None, None, None));
        let value_ugl = raw_value
            .zip(raw_unit.as_deref())
            .and_then(|(v, u)| to_ugl(v, u, kind));
        let d = DDimer {
            reference: f.reference(),
            date: f.date.map(|d| d.date()),
            kind,
            value_ugl,
            raw_value,
            raw_unit,
            comparator,
        };
        if d.value_ugl.is_some() {
            return Some(d);
        }
        quality::note(
            notes,
            DataQualityCode::UnreadableUnit,
            Some(d.reference.clone()),
        );
        first.get_or_insert(d);
    }
    first
}

/// Does a bodySite or reason of this resource name an upper limb (§2 dvt-imaging)?
fn names_upper_limb(m: &Mappings, r: &Value) -> bool {
    ["bodySite", "reasonCode"].iter().any(|k| {
        let list: &[Value] = match r.get(*k) {
            Some(Value::Array(a)) => a,
            Some(other) => std::slice::from_ref(other),
            None => &[],
        };
        list.iter().any(|cc| {
            crate::record::concept_codes(m, Some(cc))
                .0
                .contains(CodeSet::UpperLimbSite)
        })
    })
}

/// A qualitative test's value: positive (`positive-values`, or the text "positive" /
/// "detected"), negative (`absent-values`, or "negative" / "not detected"), or neither.
fn qualitative(m: &Mappings, r: &Value) -> Option<bool> {
    let value = r.get("valueCodeableConcept");
    let rules = &m.model.record;
    if crate::record::has_coding(value, &rules.positive_values) {
        return Some(true);
    }
    if crate::record::has_coding(value, &rules.absent_values) {
        return Some(false);
    }
    let s = r.get("valueString").and_then(Value::as_str)?.trim();
    if s.eq_ignore_ascii_case("positive") || s.eq_ignore_ascii_case("detected") {
        Some(true)
    } else if s.eq_ignore_ascii_case("negative") || s.eq_ignore_ascii_case("not detected") {
        Some(false)
    } else {
        None
    }
}

/// Does this (system, code) name a cancer only through Z85 (history)? The data
/// excludes Z85 from the cancer set; this keeps the rule when a site's data does not.
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

/// §2 bedridden: an inpatient stay of ≥ 3 days that ended ≤ 28 days ago or is ongoing
/// (§1 Encounters decide "ongoing" and when a finished one ended).
fn bedridden_stay(m: &Mappings, f: &Fact<'_>, now: DateTime<Utc>) -> bool {
    let Some(period) = f.date else { return false };
    let min_days = i64::from(m.model.thresholds.bedridden_stay_min_days);
    // The longest the stay can have lasted (§1: a raising window takes any part).
    let span = |end: DateTime<Utc>| -> i64 {
        if period.date_only {
            (end.date_naive() - period.start.date_naive()).num_days()
        } else {
            (end - period.start).num_hours() / 24
        }
    };
    if f.ongoing {
        return span(now) >= min_days;
    }
    match f.end {
        Some(end) => {
            span(end.end) >= min_days && end.within_days(now, m.model.windows.bedridden_stay_ended)
        }
        None => false,
    }
}

/// Derive every §2 concept from the record.
pub fn derive(m: &Mappings, rec: &Record<'_>, now: DateTime<Utc>) -> Concepts {
    let w = &m.model.windows;
    let mut c = Concepts {
        deceased: rec.deceased,
        data_quality: rec.quality.clone(),
        ..Concepts::default()
    };
    let (mut pain, mut swelling, mut surgery, mut bedridden, mut paralysis) = (
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
    );
    // §2 active-cancer: the cancer Conditions, and what shows activity.
    let (mut cancers, mut activity) = (Collect::default(), Collect::default());
    let mut cancer_active_alone = false;
    let (mut prev_dvt, mut prev_pe, mut cur_vte, mut postpartum, mut estrogen) = (
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
    );
    let (mut anticoag, mut possibly, mut travel, mut imaging, mut trimester, mut hypox) = (
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
        Collect::default(),
    );
    let mut signs: Vec<Collect> = WARNING_SIGNS.iter().map(|_| Collect::default()).collect();
    let mut alts: Vec<Collect> = ALTERNATIVES.iter().map(|_| Collect::default()).collect();
    // §2 pregnancy: evidence, and what ends it (a later delivery, loss, postpartum
    // evidence or negative test).
    let mut preg_evidence: Vec<&Fact<'_>> = Vec::new();
    let mut preg_ends: Vec<When<'_>> = Vec::new();

    for f in &rec.facts {
        let codes = f.codes;
        let windowed = codes.contains(CodeSet::LegPain)
            || codes.contains(CodeSet::LegSwelling)
            || WARNING_SIGNS.iter().any(|(s, _)| codes.contains(*s));
        if windowed && f.date.is_none() && matches!(f.kind, Kind::Condition | Kind::Observation) {
            // A symptom without a usable date cannot be placed in its window; a future
            // one is already noted as such.
            let r = f.reference();
            let future = c
                .data_quality
                .iter()
                .any(|n| n.code == DataQualityCode::FutureDate && n.evidence.contains(&r));
            if !future {
                quality::note(
                    &mut c.data_quality,
                    DataQualityCode::UnreadableDate,
                    Some(r),
                );
            }
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
                    && symptom_present(f)
                    && within(f, now, w.long_haul_travel)
                {
                    travel.add(f);
                }
            }
            _ => {}
        }
        match f.kind {
            Kind::Condition => {
                // §2 bedridden / paralysis-or-cast: active Condition.
                if f.active && codes.contains(CodeSet::Bedridden) {
                    bedridden.add(f);
                }
                if f.active && codes.contains(CodeSet::Paralysis) {
                    paralysis.add(f);
                }
                // §2 hypoxaemia: an active R09.02 Condition ≤ 3 days.
                if f.active && codes.contains(CodeSet::Hypoxaemia) && within(f, now, w.warning_sign)
                {
                    hypox.add(f);
                }
                // §2 active-cancer: an active cancer Condition (never Z85, C44 BCC/SCC,
                // D37–D49: excluded by the data); metastatic or haematological counts
                // without more; else onset ≤ 183 days (recordedDate only when onset is
                // absent).
                let metastatic = codes.contains(CodeSet::MetastaticCancer)
                    || codes.contains(CodeSet::HaematologicalCancer);
                if f.active && (metastatic || (codes.contains(CodeSet::Cancer) && !only_z85(m, f)))
                {
                    cancers.add(f);
                    if metastatic || (!f.onset_unusable && within(f, now, w.cancer_activity)) {
                        cancer_active_alone = true;
                    }
                }
                // §2 active-cancer: treatment (Z51.0, Z51.1x) or palliative care ≤ 183 days.
                if (codes.contains(CodeSet::CancerTreatment)
                    || codes.contains(CodeSet::PalliativeCare))
                    && within(f, now, w.cancer_activity)
                {
                    activity.add(f);
                }
                // §2 previous-dvt / previous-vte: DVT or PE recorded > 90 days ago or not
                // active (any part of a partial date older: it raises a risk factor);
                // chronic DVT is always history; the history codes.
                let dvt = codes.contains(CodeSet::Dvt) || codes.contains(CodeSet::DvtChronic);
                let old = !f.active || !wholly_within(f, now, w.current_dvt);
                if (dvt && (old || codes.contains(CodeSet::DvtChronic)))
                    || codes.contains(CodeSet::DvtHistory)
                {
                    prev_dvt.add(f);
                }
                if (codes.contains(CodeSet::Pe) && old) || codes.contains(CodeSet::PeHistory) {
                    prev_pe.add(f);
                }
                // §2 current-dvt: an active acute DVT or PE (never chronic I82.5-) whose
                // whole date lies within 90 days (it suppresses the card).
                let acute = (codes.contains(CodeSet::Dvt) && !codes.contains(CodeSet::DvtChronic))
                    || codes.contains(CodeSet::Pe);
                if f.active && acute && wholly_within(f, now, w.current_dvt) {
                    cur_vte.add(f);
                }
                // §2 pregnancy: active Condition, evidence ≤ 294 days.
                if f.active
                    && codes.contains(CodeSet::Pregnancy)
                    && within(f, now, w.pregnancy_evidence)
                {
                    preg_evidence.push(f);
                }
                if codes.contains(CodeSet::PregnancyLoss)
                    && let Some(d) = f.date
                {
                    preg_ends.push(d);
                }
                if codes.contains(CodeSet::FirstTrimester) && still_first_trimester(m, f, now) {
                    trimester.add(f);
                }
                // §2 postpartum: Condition ≤ 42 days (it also ends a pregnancy).
                if codes.contains(CodeSet::Postpartum) {
                    if let Some(d) = f.date {
                        preg_ends.push(d);
                    }
                    if within(f, now, w.postpartum) {
                        postpartum.add(f);
                    }
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
                // §2 pregnancy: the pregnancy-status Observation (pregnant / not
                // pregnant) and a qualitative hCG (positive / negative).
                let Some(d) = f.date else { continue };
                if codes.contains(CodeSet::PregnancyStatus) {
                    let value = f.resource.get("valueCodeableConcept");
                    if crate::record::has_coding(
                        value,
                        std::slice::from_ref(&m.model.record.pregnant_value),
                    ) {
                        if within(f, now, w.pregnancy_evidence) {
                            preg_evidence.push(f);
                        }
                    } else if crate::record::has_coding(
                        value,
                        std::slice::from_ref(&m.model.record.not_pregnant_value),
                    ) {
                        preg_ends.push(d);
                    }
                }
                if codes.contains(CodeSet::Hcg) {
                    match qualitative(m, f.resource) {
                        Some(true) if within(f, now, w.pregnancy_evidence) => preg_evidence.push(f),
                        Some(false) => preg_ends.push(d),
                        _ => {}
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
                // §2 postpartum: a delivery ≤ 42 days; it ends a pregnancy.
                if codes.contains(CodeSet::Delivery) {
                    if let Some(d) = f.date {
                        preg_ends.push(d);
                    }
                    if within(f, now, w.postpartum) {
                        postpartum.add(f);
                    }
                }
                // §2 active-cancer: cancer treatment or palliative care ≤ 183 days.
                if (codes.contains(CodeSet::CancerTreatment)
                    || codes.contains(CodeSet::PalliativeCare))
                    && within(f, now, w.cancer_activity)
                {
                    activity.add(f);
                }
            }
            Kind::MedicationRequest | Kind::MedicationStatement => {
                if f.active && codes.contains(CodeSet::Estrogen) {
                    estrogen.add(f);
                }
                if f.active && codes.contains(CodeSet::Anticoagulant) {
                    anticoag.add(f);
                }
                // §1: a current medication that could not be resolved.
                if f.unresolved_medication && !codes.contains(CodeSet::Anticoagulant) {
                    possibly.add(f);
                }
                // §2 active-cancer: an antineoplastic prescribed ≤ 183 days ago (stopped
                // or completed still says it was given).
                if codes.contains(CodeSet::Antineoplastic) && within(f, now, w.cancer_activity) {
                    activity.add(f);
                }
            }
            Kind::Encounter => {
                // §2 bedridden: inpatient stay ≥ 3 days, ended ≤ 28 days ago or ongoing.
                if f.inpatient && bedridden_stay(m, f, now) {
                    bedridden.add(f);
                }
                // §2 active-cancer: Encounter reason cancer treatment / palliative care.
                if (f.reason_codes.contains(CodeSet::CancerTreatment)
                    || f.reason_codes.contains(CodeSet::PalliativeCare))
                    && within(f, now, w.cancer_activity)
                {
                    activity.add(f);
                }
            }
            // §2 dvt-imaging: ServiceRequest (active / completed), DiagnosticReport or
            // ImagingStudy with a leg-vein ultrasound code, not of an upper limb, wholly
            // ≤ 7 days (it suppresses a suggestion).
            Kind::ServiceRequest | Kind::DiagnosticReport | Kind::ImagingStudy
                if f.active
                    && codes.contains(CodeSet::LegVeinUltrasound)
                    && wholly_within(f, now, w.dvt_imaging)
                    && !names_upper_limb(m, f.resource) =>
            {
                imaging.add(f);
            }
            _ => {}
        }
    }

    // §2 pregnancy: evidence with nothing ending it on or after its date.
    let mut preg = Collect::default();
    for f in preg_evidence {
        if let Some(d) = f.date
            && !preg_ends.iter().any(|e| e.start >= d.start)
        {
            preg.add(f);
        }
    }

    // §2 active-cancer: a cancer Condition with activity; else to confirm (§3), with
    // its evidence. Treatment without a cancer Condition is to confirm too.
    if !cancers.is_empty() && (cancer_active_alone || !activity.is_empty()) {
        cancers.extend(&activity);
        c.active_cancer = cancers.finish("active-cancer");
    } else {
        cancers.extend(&activity);
        c.cancer_to_confirm = cancers.finish("active-cancer");
    }

    // §2 previous-vte: previous-dvt, or PE the same way.
    let mut prev_vte = Collect::default();
    prev_vte.extend(&prev_dvt);
    prev_vte.extend(&prev_pe);

    c.leg_pain = pain.finish("leg-pain");
    c.leg_swelling = swelling.finish("leg-swelling");
    c.recent_surgery = surgery.finish("recent-surgery");
    c.bedridden = bedridden.finish("bedridden");
    c.paralysis_or_cast = paralysis.finish("paralysis-or-cast");
    c.previous_dvt = prev_dvt.finish("previous-dvt");
    c.previous_vte = prev_vte.finish("previous-vte");
    c.current_vte = cur_vte.finish("current-dvt");
    c.pregnancy = preg.finish("pregnancy");
    c.postpartum = postpartum.finish("postpartum");
    c.first_trimester = trimester.finish("first-trimester");
    c.estrogen_use = estrogen.finish("estrogen-use");
    c.anticoagulated = anticoag.finish("anticoagulated");
    c.possibly_anticoagulated = possibly.finish("possibly-anticoagulated");
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

    // §2 hypoxaemia: latest readable SpO2 ≤ 1 day, < 95 %; or an active R09.02 ≤ 3 days.
    let mut dq = std::mem::take(&mut c.data_quality);
    c.spo2 = latest_vital(m, rec, &mut dq, CodeSet::Spo2, w.vital_sign, now, &["%"]);
    let mut hypoxaemia = hypox.finish("hypoxaemia");
    if let Some(v) = &c.spo2
        && v.value < m.model.thresholds.spo2_below
    {
        let h = hypoxaemia.get_or_insert_with(|| Finding {
            concept: "hypoxaemia",
            evidence: vec![],
            date: v.date,
            side: None,
        });
        h.evidence.insert(0, Evidence::of(v.reference.clone()));
        h.date = h.date.max(v.date);
    }
    c.warning_signs.extend(hypoxaemia);
    // §2 tachycardia: latest readable heart rate ≤ 1 day, ≥ 100 /min.
    c.heart_rate = latest_vital(
        m,
        rec,
        &mut dq,
        CodeSet::HeartRate,
        w.vital_sign,
        now,
        &["/min", "beats/min"],
    );
    if let Some(v) = &c.heart_rate
        && v.value >= m.model.thresholds.heart_rate_at_least
    {
        c.tachycardia = Some(Finding {
            concept: "tachycardia",
            evidence: vec![Evidence::of(v.reference.clone())],
            date: v.date,
            side: None,
        });
    }
    c.d_dimer = latest_d_dimer(m, rec, &mut dq, now);
    c.data_quality = dq;
    c
}
