//! `dvt-model.md` §4 rule 1 (NICE NG158 PE pathway): the partial Wells PE score the record
//! supports, and which test comes first.

use super::concept::Concept;
use super::concepts::{Concepts, Evidence, Finding, unique_evidence};
use super::d_dimer::DDimerBlock;
use super::wells::WellsStatus;
use crate::mappings::Mappings;

/// The items of the Wells PE score (§4 rule 1), in the card's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellsPeCriterion {
    DvtSigns,
    HeartRate,
    ImmobilisationOrSurgery,
    PreviousVte,
    Haemoptysis,
    ActiveCancer,
    PeMostLikely,
}

impl WellsPeCriterion {
    /// The item's id in the card extension (`wellsPe.items[].id`).
    pub fn as_str(self) -> &'static str {
        match self {
            WellsPeCriterion::DvtSigns => "dvt-signs",
            WellsPeCriterion::HeartRate => "heart-rate",
            WellsPeCriterion::ImmobilisationOrSurgery => "immobilisation-or-surgery",
            WellsPeCriterion::PreviousVte => "previous-vte",
            WellsPeCriterion::Haemoptysis => "haemoptysis",
            WellsPeCriterion::ActiveCancer => "active-cancer",
            WellsPeCriterion::PeMostLikely => "pe-most-likely",
        }
    }
}

/// §4 rule 1: a Wells PE item (points in tenths, 15 = 1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct WellsPeItem {
    pub id: WellsPeCriterion,
    pub tenths: i32,
    /// Present, not-found, or not-documented ("PE the most likely diagnosis").
    pub status: WellsStatus,
    pub evidence: Vec<Evidence>,
}

/// §4 rule 1: the partial Wells PE the record supports.
#[derive(Debug, Clone, PartialEq)]
pub struct WellsPe {
    /// Sum of the present items, in tenths.
    pub documented_tenths: i32,
    pub items: Vec<WellsPeItem>,
}

impl WellsPe {
    /// §4 rule 1: the documented Wells PE is above `wells-pe-likely-above` (PE likely).
    pub fn above_threshold(&self, m: &Mappings) -> bool {
        f64::from(self.documented_tenths) > m.model.thresholds.wells_pe_likely_above * 10.0
    }
}

/// Why rule 1 recommends CT pulmonary angiography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtpaReason {
    /// Documented Wells PE above the threshold.
    WellsPe,
    /// A D-dimer cannot be used.
    DDimerBlocked(DDimerBlock),
    /// A positive D-dimer within the D-dimer window.
    PositiveDDimer,
}

/// §4 rule 1 (NICE NG158 PE pathway): which test comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PePathway {
    /// A VTE is already known: assess for progression or treatment failure; no test.
    KnownVte,
    Ctpa(CtpaReason),
    /// Documented Wells PE at or below the threshold and a usable D-dimer.
    DDimerFirst,
}

/// An item read from coded data: present with its evidence, or not found.
fn item(id: WellsPeCriterion, tenths: i32, evidence: Option<Vec<Evidence>>) -> WellsPeItem {
    let (status, evidence) = match evidence {
        Some(e) => (WellsStatus::Present, e),
        None => (WellsStatus::NotFound, vec![]),
    };
    WellsPeItem {
        id,
        tenths,
        status,
        evidence,
    }
}

fn evidence_of(f: &Option<Finding>) -> Vec<Evidence> {
    f.as_ref().map(|f| f.evidence.clone()).unwrap_or_default()
}

/// Heart rate above `pe-heart-rate-above`: the latest readable heart rate as evidence.
fn fast_heart(c: &Concepts, m: &Mappings) -> Option<Vec<Evidence>> {
    let v = c
        .heart_rate
        .as_ref()
        .filter(|v| v.value > m.model.thresholds.pe_heart_rate_above)?;
    Some(vec![Evidence {
        reference: v.reference.clone(),
        name: None,
        date: v.date.map(|x| x.to_string()),
    }])
}

/// Surgery within the Wells PE window, or bedridden.
fn immobilised(c: &Concepts) -> Option<Vec<Evidence>> {
    (c.surgery_for_pe || c.bedridden.is_some()).then(|| {
        let mut e = evidence_of(&c.bedridden);
        if c.surgery_for_pe {
            e = unique_evidence(e.into_iter().chain(evidence_of(&c.recent_surgery)));
        }
        e
    })
}

/// §4 rule 1: the partial Wells PE items the record supports.
pub(super) fn wells_pe(c: &Concepts, m: &Mappings) -> WellsPe {
    use WellsPeCriterion::*;
    let both = (c.leg_pain.is_some() && c.leg_swelling.is_some()).then(|| {
        unique_evidence(
            evidence_of(&c.leg_pain)
                .into_iter()
                .chain(evidence_of(&c.leg_swelling)),
        )
    });
    let haem = c
        .warning_signs
        .iter()
        .find(|f| f.concept == Concept::Haemoptysis)
        .map(|h| h.evidence.clone());
    let items = vec![
        item(DvtSigns, 30, both),
        item(HeartRate, 15, fast_heart(c, m)),
        item(ImmobilisationOrSurgery, 15, immobilised(c)),
        item(
            PreviousVte,
            15,
            c.previous_vte.as_ref().map(|f| f.evidence.clone()),
        ),
        item(Haemoptysis, 10, haem),
        item(
            ActiveCancer,
            10,
            c.active_cancer.as_ref().map(|f| f.evidence.clone()),
        ),
        // Clinician judgement: never in coded data.
        WellsPeItem {
            id: PeMostLikely,
            tenths: 30,
            status: WellsStatus::NotDocumented,
            evidence: vec![],
        },
    ];
    let documented_tenths = items
        .iter()
        .filter(|i| i.status == WellsStatus::Present)
        .map(|i| i.tenths)
        .sum();
    WellsPe {
        documented_tenths,
        items,
    }
}

/// §4 rule 1: which test comes first on the NICE NG158 PE pathway.
pub(super) fn pe_pathway(
    known_vte: bool,
    wells_pe_above: bool,
    block: Option<DDimerBlock>,
    positive_d_dimer: bool,
) -> PePathway {
    if known_vte {
        PePathway::KnownVte
    } else if wells_pe_above {
        PePathway::Ctpa(CtpaReason::WellsPe)
    } else if let Some(b) = block {
        PePathway::Ctpa(CtpaReason::DDimerBlocked(b))
    } else if positive_d_dimer {
        PePathway::Ctpa(CtpaReason::PositiveDDimer)
    } else {
        PePathway::DDimerFirst
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    #[test]
    fn rule1_ctpa_or_d_dimer_by_wells_pe_and_d_dimer_use() {
        // (name, resources, drafts, pathway, suggestions (kind, recommended))
        type Case = (
            &'static str,
            Vec<Value>,
            Vec<Value>,
            PePathway,
            Vec<(SuggestionKind, bool)>,
        );
        let cases: Vec<Case> = vec![
            (
                "Wells PE 4 (signs 3 + haemoptysis 1): D-dimer first",
                vec![patient(40), pain(), swelling(), cond("h", ICD, "R04.2", 1)],
                vec![],
                PePathway::DDimerFirst,
                vec![(DDimer, true), (Ctpa, false)],
            ),
            (
                "Wells PE 4.5 (signs 3 + heart rate 1.5): CTPA",
                vec![patient(40), pain(), swelling(), heart_rate(110.0), sob()],
                vec![],
                PePathway::Ctpa(CtpaReason::WellsPe),
                vec![(Ctpa, true)],
            ),
            (
                "heart rate exactly 100 is not > 100: Wells PE 3, D-dimer",
                vec![patient(40), pain(), swelling(), heart_rate(100.0), sob()],
                vec![],
                PePathway::DDimerFirst,
                vec![(DDimer, true), (Ctpa, false)],
            ),
            (
                "anticoagulated: CTPA, no D-dimer",
                vec![patient(40), pain(), sob(), anticoagulant()],
                vec![],
                PePathway::Ctpa(CtpaReason::DDimerBlocked(DDimerBlock::Anticoagulated)),
                vec![(Ctpa, true)],
            ),
            (
                "pregnant: CTPA, no D-dimer",
                vec![patient(30), pain(), sob(), cond("preg", ICD, "Z33.1", 40)],
                vec![],
                PePathway::Ctpa(CtpaReason::DDimerBlocked(DDimerBlock::Pregnancy)),
                vec![(Ctpa, true)],
            ),
            (
                "postpartum: CTPA, no D-dimer",
                vec![patient(30), pain(), sob(), cond("pp", ICD, "O80", 10)],
                vec![],
                PePathway::Ctpa(CtpaReason::DDimerBlocked(DDimerBlock::Postpartum)),
                vec![(Ctpa, true)],
            ),
            (
                "positive D-dimer within 3 days: CTPA",
                vec![
                    patient(40),
                    pain(),
                    sob(),
                    obs_qty("dd", "48065-7", 900.0, "ug/L", 1),
                ],
                vec![],
                PePathway::Ctpa(CtpaReason::PositiveDDimer),
                vec![(Ctpa, true)],
            ),
            (
                "negative D-dimer: still D-dimer first (the clinician may repeat or go on)",
                vec![
                    patient(40),
                    pain(),
                    sob(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                vec![],
                PePathway::DDimerFirst,
                vec![(DDimer, true), (Ctpa, false)],
            ),
            (
                "drafted CTPA suppresses the CTPA suggestion",
                vec![patient(40), pain(), swelling(), heart_rate(120.0), sob()],
                vec![draft("ct", CPT, "71275")],
                PePathway::Ctpa(CtpaReason::WellsPe),
                vec![],
            ),
            (
                "drafted D-dimer suppresses the D-dimer suggestion only",
                vec![patient(40), pain(), sob()],
                vec![draft("dd", CPT, "85379")],
                PePathway::DDimerFirst,
                vec![(Ctpa, false)],
            ),
            (
                "known VTE: neither test",
                vec![patient(40), pain(), sob(), cond("dvt", ICD, "I82.402", 10)],
                vec![],
                PePathway::KnownVte,
                vec![],
            ),
        ];
        for (name, resources, drafts, pathway, want) in cases {
            let a = if drafts.is_empty() {
                run(resources)
            } else {
                run_order(resources, drafts)
            };
            assert_eq!(a.category, Some(Category::PeWarningSigns), "{name}");
            assert_eq!(a.indicator, Indicator::Critical, "{name}");
            assert_eq!(a.pe_pathway, Some(pathway), "{name}");
            assert_eq!(kinds(&a), want, "{name}");
            assert!(
                a.suggestions
                    .iter()
                    .all(|s| s.priority == dvt_fhir::DraftPriority::Stat),
                "{name}"
            );
        }
    }

    #[test]
    fn wells_pe_items_and_total() {
        let a = run(vec![
            patient(40),
            pain(),
            swelling(),
            heart_rate(101.0),
            procedure("s", 20),
            cond("h", ICD, "R04.2", 1),
            cond("ca", ICD, "C78.00", 30),
        ]);
        let pe = a.wells_pe.as_ref().unwrap();
        let present: Vec<(&str, i32)> = pe
            .items
            .iter()
            .filter(|i| i.status == WellsStatus::Present)
            .map(|i| (i.id.as_str(), i.tenths))
            .collect();
        assert_eq!(
            present,
            vec![
                ("dvt-signs", 30),
                ("heart-rate", 15),
                ("immobilisation-or-surgery", 15),
                ("haemoptysis", 10),
                ("active-cancer", 10),
            ]
        );
        assert_eq!(pe.documented_tenths, 80);
        let judged = pe
            .items
            .iter()
            .find(|i| i.id == WellsPeCriterion::PeMostLikely)
            .unwrap();
        assert_eq!(judged.status, WellsStatus::NotDocumented);
        // Surgery 30 days ago is outside the Wells PE 28 days: the item needs bed rest.
        let a = run(vec![patient(40), pain(), sob(), procedure("s", 30)]);
        let pe = a.wells_pe.unwrap();
        assert_eq!(pe.documented_tenths, 0);
    }

    #[test]
    fn pe_pathway_precedence() {
        use DDimerBlock::*;
        let cases = [
            (
                (true, true, Some(Anticoagulated), true),
                PePathway::KnownVte,
            ),
            (
                (false, true, Some(Anticoagulated), true),
                PePathway::Ctpa(CtpaReason::WellsPe),
            ),
            (
                (false, false, Some(PossiblyAnticoagulated), false),
                PePathway::Ctpa(CtpaReason::DDimerBlocked(PossiblyAnticoagulated)),
            ),
            (
                (false, false, None, true),
                PePathway::Ctpa(CtpaReason::PositiveDDimer),
            ),
            ((false, false, None, false), PePathway::DDimerFirst),
        ];
        for ((known, above, block, positive), want) in cases {
            assert_eq!(pe_pathway(known, above, block, positive), want);
        }
    }
}
