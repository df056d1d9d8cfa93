//! `dvt-model.md` §3 (Wells from the record), §4 (decision and modifiers), §5 (D-dimer
//! threshold) and §7 (order hooks).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;

use super::HookInput;
use super::concepts::{
    self, Concepts, DDimerKind, DDimerResult, Finding, combine_sides, unique_refs,
};
use crate::mappings::{CodeSet, Mappings, Side};
use crate::record::{self, DataNotes, Kind};

/// The card category (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    PeWarningSigns,
    Pregnancy,
    DvtLikely,
    DvtUnlikely,
    DvtEvaluation,
    FollowUp,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::PeWarningSigns => "pe-warning-signs",
            Category::Pregnancy => "pregnancy",
            Category::DvtLikely => "dvt-likely",
            Category::DvtUnlikely => "dvt-unlikely",
            Category::DvtEvaluation => "dvt-evaluation",
            Category::FollowUp => "follow-up",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
    Info,
    Warning,
    Critical,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::Info => "info",
            Indicator::Warning => "warning",
            Indicator::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellsStatus {
    Present,
    NotFound,
    NotDocumented,
}

impl WellsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WellsStatus::Present => "present",
            WellsStatus::NotFound => "not-found",
            WellsStatus::NotDocumented => "not-documented",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WellsItem {
    pub id: &'static str,
    pub label: &'static str,
    pub points: i32,
    pub status: WellsStatus,
    pub evidence: Vec<String>,
}

/// §3: the Wells score the record supports.
#[derive(Debug, Clone, PartialEq)]
pub struct Wells {
    pub documented: i32,
    pub possible: i32,
    pub items: Vec<WellsItem>,
}

/// §4 rule 1: a Wells PE item the record supports (points in tenths, 15 = 1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct WellsPeItem {
    pub label: &'static str,
    pub tenths: i32,
    pub present: bool,
    pub evidence: Vec<String>,
}

/// §4 rule 4: the LEFt items.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftItem {
    pub label: &'static str,
    pub status: WellsStatus,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    pub items: Vec<LeftItem>,
    pub documented: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestionKind {
    Ultrasound,
    Ctpa,
    DDimer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub kind: SuggestionKind,
    pub priority: dvt_fhir::DraftPriority,
    pub is_recommended: bool,
}

/// Draft orders of an order hook (§7), by what they order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DraftOrders {
    pub ultrasound: Option<String>,
    pub d_dimer: Option<String>,
    pub ctpa: Option<String>,
}

/// The D-dimer as judged for this card (§5).
#[derive(Debug, Clone, PartialEq)]
pub struct DDimerJudged {
    pub d: concepts::DDimer,
    pub threshold: f64,
    pub age_adjusted: bool,
    pub result: DDimerResult,
}

/// Everything the card shows.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// `None`: no card.
    pub category: Option<Category>,
    pub indicator: Indicator,
    /// Why there is no card (for tests and logs; never shown).
    pub no_card_reason: Option<&'static str>,
    pub concepts: Concepts,
    pub wells: Wells,
    pub wells_pe: Vec<WellsPeItem>,
    pub left: Option<Left>,
    pub d_dimer: Option<DDimerJudged>,
    pub age: Option<u32>,
    /// Side of the index presentation.
    pub side: Option<Side>,
    /// Condition / Observation references of the index presentation (suggestion reasons).
    pub index_refs: Vec<String>,
    pub drafts: DraftOrders,
    pub suggestions: Vec<Suggestion>,
    /// §7 pathway notes.
    pub pathway: Vec<&'static str>,
    /// Risk factors the record supports (§2), in a fixed order.
    pub risk_factors: Vec<&'static str>,
    pub notes: DataNotes,
    pub now: DateTime<Utc>,
}

impl Assessment {
    /// §6 `findings`: every §2 concept the record supports, in §2 order.
    pub fn findings(&self) -> Vec<Finding> {
        let c = &self.concepts;
        let mut out: Vec<&Finding> = [
            &c.leg_pain,
            &c.leg_swelling,
            &c.recent_surgery,
            &c.bedridden,
            &c.paralysis_or_cast,
            &c.active_cancer,
            &c.previous_vte,
            &c.current_vte,
            &c.pregnancy,
            &c.postpartum,
            &c.estrogen_use,
            &c.anticoagulated,
            &c.long_haul_travel,
        ]
        .into_iter()
        .flatten()
        .collect();
        out.extend(c.warning_signs.iter());
        out.extend(c.tachycardia.iter());
        let mut out: Vec<Finding> = out.into_iter().cloned().collect();
        if let Some(d) = &c.d_dimer {
            out.push(Finding {
                concept: "d-dimer",
                evidence: vec![concepts::Evidence::of(d.reference.clone())],
                date: d.date,
                side: None,
            });
        }
        out.extend(c.dvt_imaging.iter().cloned());
        out.extend(c.alternatives.iter().cloned());
        out
    }

    pub fn anticoagulated(&self) -> bool {
        self.concepts.anticoagulated.is_some()
    }
}

fn age_at(birth: NaiveDate, now: DateTime<Utc>) -> Option<u32> {
    let today = now.date_naive();
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// §7: what the draft orders of an order hook order.
fn read_drafts(m: &Mappings, input: &HookInput) -> DraftOrders {
    let mut d = DraftOrders::default();
    if !input.hook.is_order_hook() {
        return d;
    }
    let mut flat = Vec::new();
    let mut skipped = 0;
    record::flatten(&input.draft_orders, &mut flat, &mut skipped);
    for r in flat {
        let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
        let codes = record::concept_codes(m, r.get("code")).0;
        let reference = match r.get("id").and_then(Value::as_str) {
            Some(id) => format!("{rt}/{id}"),
            None => format!("{rt} (draft)"),
        };
        if codes.contains(CodeSet::LegVeinUltrasound) && d.ultrasound.is_none() {
            d.ultrasound = Some(reference.clone());
        }
        if (codes.contains(CodeSet::DDimerOrder)
            || codes.contains(CodeSet::DDimerFeu)
            || codes.contains(CodeSet::DDimerDdu))
            && d.d_dimer.is_none()
        {
            d.d_dimer = Some(reference.clone());
        }
        if codes.contains(CodeSet::Ctpa) && d.ctpa.is_none() {
            d.ctpa = Some(reference);
        }
    }
    d
}

/// §3: the Wells score from the record.
fn wells(c: &Concepts) -> Wells {
    let ev = |f: &Option<Finding>| f.as_ref().map(Finding::references);
    let coded = |id, label, e: Option<Vec<String>>| match e {
        Some(evidence) => WellsItem {
            id,
            label,
            points: 1,
            status: WellsStatus::Present,
            evidence,
        },
        None => WellsItem {
            id,
            label,
            points: 1,
            status: WellsStatus::NotFound,
            evidence: vec![],
        },
    };
    let exam = |id, label| WellsItem {
        id,
        label,
        points: 1,
        status: WellsStatus::NotDocumented,
        evidence: vec![],
    };
    let bed_or_surgery = match (ev(&c.bedridden), ev(&c.recent_surgery)) {
        (None, None) => None,
        (a, b) => Some(unique_refs(a.into_iter().chain(b).flatten())),
    };
    let items = vec![
        coded(
            "active-cancer",
            "Active cancer (treatment within 6 months or palliative)",
            ev(&c.active_cancer),
        ),
        coded(
            "paralysis-or-cast",
            "Paralysis, paresis or recent plaster cast of the leg",
            ev(&c.paralysis_or_cast),
        ),
        coded(
            "bedridden-or-surgery",
            "Bedridden 3 days or more, or major surgery within 12 weeks",
            bed_or_surgery,
        ),
        exam(
            "deep-vein-tenderness",
            "Localised tenderness along the deep veins",
        ),
        exam("entire-leg-swollen", "Entire leg swollen"),
        exam(
            "calf-swelling-3cm",
            "Calf swelling 3 cm or more than the other leg",
        ),
        exam(
            "pitting-oedema",
            "Pitting oedema confined to the symptomatic leg",
        ),
        exam(
            "collateral-veins",
            "Collateral superficial veins (non-varicose)",
        ),
        coded(
            "previous-dvt",
            "Previously documented DVT",
            ev(&c.previous_dvt),
        ),
        // §3: an alternative diagnosis is clinician judgement: never subtracted; coded
        // alternatives are shown as its evidence.
        WellsItem {
            id: "alternative-diagnosis",
            label: "Alternative diagnosis at least as likely as DVT",
            points: -2,
            status: WellsStatus::NotDocumented,
            evidence: unique_refs(c.alternatives.iter().flat_map(Finding::references)),
        },
    ];
    let documented = items
        .iter()
        .filter(|i| i.status == WellsStatus::Present)
        .map(|i| i.points)
        .sum();
    let missing_plus = items
        .iter()
        .filter(|i| i.points == 1 && i.status != WellsStatus::Present)
        .count() as i32;
    Wells {
        documented,
        possible: documented + missing_plus,
        items,
    }
}

/// §4 rule 1: the partial Wells PE items the record supports.
fn wells_pe(c: &Concepts, m: &Mappings) -> Vec<WellsPeItem> {
    let ev = |f: &Option<Finding>| f.as_ref().map(Finding::references).unwrap_or_default();
    let both = c.leg_pain.is_some() && c.leg_swelling.is_some();
    let hr = c
        .heart_rate
        .as_ref()
        .filter(|v| v.value > m.model.thresholds.pe_heart_rate_above);
    let surgery_pe = c.surgery_for_pe;
    let imm = surgery_pe || c.bedridden.is_some();
    let mut imm_ev = ev(&c.bedridden);
    if surgery_pe {
        imm_ev = unique_refs(imm_ev.into_iter().chain(ev(&c.recent_surgery)));
    }
    let haem = c.warning_signs.iter().find(|f| f.concept == "haemoptysis");
    vec![
        WellsPeItem {
            label: "Clinical signs of DVT (leg pain and swelling both documented)",
            tenths: 30,
            present: both,
            evidence: if both {
                unique_refs(ev(&c.leg_pain).into_iter().chain(ev(&c.leg_swelling)))
            } else {
                vec![]
            },
        },
        WellsPeItem {
            label: "Heart rate over 100 /min",
            tenths: 15,
            present: hr.is_some(),
            evidence: hr.map(|v| vec![v.reference.clone()]).unwrap_or_default(),
        },
        WellsPeItem {
            label: "Surgery within 4 weeks or bedridden 3 days or more",
            tenths: 15,
            present: imm,
            evidence: if imm { imm_ev } else { vec![] },
        },
        WellsPeItem {
            label: "Previous DVT or PE",
            tenths: 15,
            present: c.previous_vte.is_some(),
            evidence: ev(&c.previous_vte),
        },
        WellsPeItem {
            label: "Haemoptysis",
            tenths: 10,
            present: haem.is_some(),
            evidence: haem.map(Finding::references).unwrap_or_default(),
        },
        WellsPeItem {
            label: "Active cancer",
            tenths: 10,
            present: c.active_cancer.is_some(),
            evidence: ev(&c.active_cancer),
        },
    ]
}

/// §4 rule 4: the LEFt items (left leg, calf circumference, first trimester).
fn left(c: &Concepts, side: Option<Side>) -> Left {
    let index_ev = unique_refs(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .filter(|f| matches!(f.side, Some(Side::Left | Side::Bilateral)))
            .flat_map(Finding::references),
    );
    let l = match side {
        Some(Side::Left | Side::Bilateral) => LeftItem {
            label: "Left leg symptoms",
            status: WellsStatus::Present,
            evidence: index_ev,
        },
        Some(Side::Right) => LeftItem {
            label: "Left leg symptoms",
            status: WellsStatus::NotFound,
            evidence: vec![],
        },
        None => LeftItem {
            label: "Left leg symptoms",
            status: WellsStatus::NotDocumented,
            evidence: vec![],
        },
    };
    let e = LeftItem {
        label: "Calf circumference difference 2 cm or more",
        status: WellsStatus::NotDocumented,
        evidence: vec![],
    };
    let ft = match &c.first_trimester {
        Some(f) => LeftItem {
            label: "First trimester",
            status: WellsStatus::Present,
            evidence: f.references(),
        },
        None => LeftItem {
            label: "First trimester",
            status: WellsStatus::NotFound,
            evidence: vec![],
        },
    };
    let items = vec![l, e, ft];
    let documented = items
        .iter()
        .filter(|i| i.status == WellsStatus::Present)
        .count() as i32;
    Left { items, documented }
}

/// §5: judge a D-dimer against the (age-adjusted) threshold.
fn judge(m: &Mappings, d: &concepts::DDimer, age: Option<u32>, age_adjusted: bool) -> DDimerJudged {
    let t = match d.kind {
        DDimerKind::Feu => &m.model.thresholds.d_dimer_feu,
        DDimerKind::Ddu => &m.model.thresholds.d_dimer_ddu,
    };
    let threshold = t.threshold(age, age_adjusted);
    let result = match d.value_ugl {
        None => DDimerResult::Uninterpretable,
        // A comparator bounds the value: judge only when the bound decides it.
        Some(v) => match d.comparator.as_deref().map(str::trim) {
            None | Some("") => {
                if v >= threshold {
                    DDimerResult::Positive
                } else {
                    DDimerResult::Negative
                }
            }
            Some("<") if v <= threshold => DDimerResult::Negative,
            Some("<=") if v < threshold => DDimerResult::Negative,
            Some(">" | ">=") if v >= threshold => DDimerResult::Positive,
            _ => DDimerResult::Uninterpretable,
        },
    };
    DDimerJudged {
        d: d.clone(),
        threshold,
        age_adjusted,
        result,
    }
}

/// Assess one hook call (§1–§5, §7).
pub fn assess(
    m: &Mappings,
    input: &HookInput,
    resources: &[Value],
    now: DateTime<Utc>,
) -> Assessment {
    let rec = record::read(m, &input.patient_id, resources, now);
    let mut c = concepts::derive(m, &rec, now);

    // §2 index presentation: the hook's Encounter reasonCode counts too.
    if let Some(enc_id) = input.encounter_id.as_deref() {
        for f in rec
            .facts
            .iter()
            .filter(|f| f.kind == Kind::Encounter && f.id == enc_id)
        {
            for (set, slot, name) in [
                (CodeSet::LegPain, &mut c.leg_pain, "leg-pain"),
                (CodeSet::LegSwelling, &mut c.leg_swelling, "leg-swelling"),
            ] {
                if f.reason_codes.contains(set) {
                    let finding = slot.get_or_insert_with(|| Finding {
                        concept: name,
                        evidence: vec![],
                        date: f.date.map(|d| d.date()),
                        side: None,
                    });
                    // The hook's Encounter may also come in a search Bundle: once only.
                    let r = f.reference();
                    if !finding.evidence.iter().any(|e| e.reference == r) {
                        finding.evidence.push(concepts::Evidence::of(r));
                    }
                    finding.side = combine_sides(finding.side.into_iter().chain(f.side));
                }
            }
        }
    }
    let drafts = read_drafts(m, input);
    // §7: a draft ultrasound counts as dvt-imaging.
    if let Some(r) = &drafts.ultrasound {
        let f = c.dvt_imaging.get_or_insert_with(|| Finding {
            concept: "dvt-imaging",
            evidence: vec![],
            date: Some(now.date_naive()),
            side: None,
        });
        if !f.evidence.iter().any(|e| &e.reference == r) {
            f.evidence.insert(0, concepts::Evidence::of(r.clone()));
        }
    }
    let order_index =
        drafts.ultrasound.is_some() || drafts.d_dimer.is_some() || drafts.ctpa.is_some();
    let index = c.leg_pain.is_some() || c.leg_swelling.is_some() || order_index;

    let age = rec.birth_date.and_then(|b| age_at(b, now));
    let side = combine_sides(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .filter_map(|f| f.side),
    );
    let index_refs = unique_refs(
        c.leg_pain
            .iter()
            .chain(c.leg_swelling.iter())
            .flat_map(|f| f.evidence.iter())
            .map(|e| e.reference.clone())
            .filter(|r| r.starts_with("Condition/") || r.starts_with("Observation/")),
    );
    let w = wells(&c);
    let anticoagulated = c.anticoagulated.is_some();
    let mut risk_factors = Vec::new();
    for (f, name) in [
        (&c.recent_surgery, "recent-surgery"),
        (&c.bedridden, "bedridden"),
        (&c.paralysis_or_cast, "paralysis-or-cast"),
        (&c.long_haul_travel, "long-haul-travel"),
        (&c.active_cancer, "active-cancer"),
        (&c.previous_vte, "previous-vte"),
        (&c.pregnancy, "pregnancy"),
        (&c.postpartum, "postpartum"),
        (&c.estrogen_use, "estrogen-use"),
    ] {
        if f.is_some() {
            risk_factors.push(name);
        }
    }

    let mut a = Assessment {
        category: None,
        indicator: Indicator::Info,
        no_card_reason: None,
        wells_pe: vec![],
        left: None,
        d_dimer: None,
        age,
        side,
        index_refs,
        drafts,
        suggestions: vec![],
        pathway: vec![],
        risk_factors,
        notes: rec.notes.clone(),
        now,
        wells: w,
        concepts: c,
    };

    // §4: nothing fires without an index presentation.
    if !index {
        a.no_card_reason = Some("no index presentation");
        return a;
    }
    let c = &a.concepts;
    let likely_at = m.model.thresholds.wells_likely_at_least;
    let category = if !c.warning_signs.is_empty() {
        // §4 rule 1: any age, even anticoagulated or with a known DVT.
        Category::PeWarningSigns
    } else if age.is_some_and(|x| x < m.model.thresholds.adult_age) {
        // §4 rule 2: out of scope (unknown age counts as adult).
        a.no_card_reason = Some("age under 18");
        return a;
    } else if c.current_vte.is_some() {
        // §4 rule 3: already diagnosed.
        a.no_card_reason = Some("DVT already diagnosed");
        return a;
    } else if c.pregnancy.is_some() || c.postpartum.is_some() {
        Category::Pregnancy // §4 rule 4
    } else if a.wells.documented >= likely_at {
        Category::DvtLikely // §4 rule 5
    } else {
        Category::DvtUnlikely // placeholder: rules 6-8 below
    };

    // §5: age-adjusted thresholds only in the Wells ≤ 1 categories (not in pregnancy).
    let age_adjusted = a.wells.documented < likely_at && category != Category::Pregnancy;
    a.d_dimer = c.d_dimer.as_ref().map(|d| judge(m, d, age, age_adjusted));
    let dd_result = a.d_dimer.as_ref().map(|d| d.result);

    let category = if category == Category::DvtUnlikely {
        let article_risk = c.recent_surgery.is_some()
            || c.bedridden.is_some()
            || c.paralysis_or_cast.is_some()
            || c.long_haul_travel.is_some();
        // §4 rule 6 (a negative D-dimer is not used while anticoagulated: unreliable).
        if dd_result == Some(DDimerResult::Negative) && !anticoagulated {
            Category::DvtUnlikely
        } else if article_risk {
            Category::DvtEvaluation // §4 rule 7
        } else {
            Category::FollowUp // §4 rule 8
        }
    } else {
        category
    };
    a.category = Some(category);
    a.indicator = match category {
        Category::PeWarningSigns => Indicator::Critical,
        Category::Pregnancy | Category::DvtLikely | Category::DvtEvaluation => Indicator::Warning,
        Category::DvtUnlikely | Category::FollowUp => Indicator::Info,
    };
    // §4 modifier anticoagulated: a warning becomes info; critical stays critical.
    if anticoagulated && a.indicator == Indicator::Warning {
        a.indicator = Indicator::Info;
    }
    if category == Category::PeWarningSigns {
        a.wells_pe = wells_pe(c, m);
    }
    if category == Category::Pregnancy {
        a.left = Some(left(c, a.side));
    }

    use SuggestionKind::{Ctpa, DDimer, Ultrasound};
    use dvt_fhir::DraftPriority::{Routine, Stat, Urgent};
    let positive_dd = dd_result == Some(DDimerResult::Positive);
    let mut s: Vec<Suggestion> = match category {
        Category::PeWarningSigns => vec![Suggestion {
            kind: Ctpa,
            priority: Stat,
            is_recommended: true,
        }],
        Category::Pregnancy | Category::DvtLikely => {
            vec![Suggestion {
                kind: Ultrasound,
                priority: Urgent,
                is_recommended: true,
            }]
        }
        Category::DvtUnlikely => vec![],
        Category::DvtEvaluation if positive_dd => {
            vec![Suggestion {
                kind: Ultrasound,
                priority: Urgent,
                is_recommended: true,
            }]
        }
        Category::DvtEvaluation => vec![Suggestion {
            kind: DDimer,
            priority: Urgent,
            is_recommended: true,
        }],
        Category::FollowUp => vec![Suggestion {
            kind: DDimer,
            priority: Routine,
            is_recommended: false,
        }],
    };
    // §4 modifiers: no D-dimer when anticoagulated or already drafted (§7); no ultrasound
    // when leg-vein imaging is ordered or done within 7 days; no CTPA already drafted.
    let imaging = c.dvt_imaging.is_some();
    s.retain(|x| match x.kind {
        DDimer => !anticoagulated && a.drafts.d_dimer.is_none(),
        Ultrasound => !imaging,
        Ctpa => a.drafts.ctpa.is_none(),
    });
    a.suggestions = s;

    // §7: does the drafted order fit the pathway?
    if a.drafts.ultrasound.is_some()
        && a.wells.documented < likely_at
        && a.d_dimer.is_none()
        && !anticoagulated
        && matches!(category, Category::DvtEvaluation | Category::FollowUp)
    {
        a.pathway.push("Ultrasound ordered with Wells 1 or less from the record and no D-dimer in the last 3 days: consider a D-dimer first.");
    }
    if a.drafts.d_dimer.is_some() && a.wells.documented >= likely_at {
        a.pathway
            .push("A D-dimer alone cannot exclude DVT here: ultrasound is the first test.");
    }
    if a.drafts.d_dimer.is_some() && anticoagulated {
        a.pathway.push("D-dimer is unreliable on anticoagulants.");
    }
    a
}
