//! `dvt-model.md` §4: the decision. Rules 1–5 in their order (the first that applies
//! decides), rules 6–8 once the D-dimer is judged (§5), and the indicator each rule sets.

use super::assess::Assessment;
use super::concepts::{Concepts, DDimerResult};
use crate::mappings::Mappings;

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

/// The card's indicator is decided here (§4) and written as CDS Hooks spells it.
pub use crate::cds_hooks::Indicator;

/// Why there is no card (§1, §4 rules 2–3; for tests and logs, never shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCard {
    /// §1 Deceased: checked before every rule.
    Deceased,
    /// §4: no leg symptoms and no drafted VTE test.
    NoIndexPresentation,
    /// §4 rule 2: under the adult age.
    UnderAge,
    /// §4 rule 3: a current DVT or PE is already diagnosed.
    VteAlreadyDiagnosed,
}

impl NoCard {
    pub fn as_str(self) -> &'static str {
        match self {
            NoCard::Deceased => "deceased",
            NoCard::NoIndexPresentation => "no index presentation",
            NoCard::UnderAge => "age under 18",
            NoCard::VteAlreadyDiagnosed => "VTE already diagnosed",
        }
    }
}

/// §4 rules 1–5, in order. `Ok(None)`: Wells ≤ 1 from the record and not pregnant, rules
/// 6–8 decide once the D-dimer is judged ([`low_wells_category`]).
pub(super) fn rules_1_to_5(m: &Mappings, a: &Assessment) -> Result<Option<Category>, NoCard> {
    let c = &a.concepts;
    let t = &m.model.thresholds;
    // §1, §4: a deceased patient gets no card; this check comes before every rule.
    if c.deceased {
        return Err(NoCard::Deceased);
    }
    // §4: nothing fires without an index presentation.
    if !a.has_index_presentation() {
        return Err(NoCard::NoIndexPresentation);
    }
    if !c.warning_signs.is_empty() {
        // §4 rule 1: any age, even anticoagulated or with a known VTE.
        Ok(Some(Category::PeWarningSigns))
    } else if a.age.is_some_and(|x| x < t.adult_age) {
        // §4 rule 2: out of scope (unknown age counts as adult).
        Err(NoCard::UnderAge)
    } else if c.current_vte.is_some() {
        // §4 rule 3: a current DVT or PE: already diagnosed.
        Err(NoCard::VteAlreadyDiagnosed)
    } else if c.pregnancy.is_some() || c.postpartum.is_some() {
        Ok(Some(Category::Pregnancy)) // §4 rule 4
    } else if a.wells.documented >= t.wells_likely_at_least {
        Ok(Some(Category::DvtLikely)) // §4 rule 5
    } else {
        Ok(None)
    }
}

/// §4 rules 6–8 (Wells ≤ 1 from the record, not pregnant).
pub(super) fn low_wells_category(c: &Concepts, d_dimer: Option<DDimerResult>) -> Category {
    // §4 rule 7 risk factors: the article's, and Wells's active cancer and previous VTE.
    let risk = c.recent_surgery.is_some()
        || c.bedridden.is_some()
        || c.paralysis_or_cast.is_some()
        || c.long_haul_travel.is_some()
        || c.active_cancer.is_some()
        || c.previous_vte.is_some();
    // §4 rule 6: a negative D-dimer is not used on (possible) anticoagulation: unreliable.
    let usable = c.anticoagulated.is_none() && c.possibly_anticoagulated.is_none();
    if d_dimer == Some(DDimerResult::Negative) && usable {
        Category::DvtUnlikely
    } else if risk {
        Category::DvtEvaluation
    } else {
        Category::FollowUp
    }
}

/// §4: every indicator stays as the rule set it (anticoagulated too: a clot on
/// anticoagulation is a prophylaxis or treatment failure, still urgent).
pub(super) fn indicator(category: Category) -> Indicator {
    match category {
        Category::PeWarningSigns => Indicator::Critical,
        Category::Pregnancy | Category::DvtLikely | Category::DvtEvaluation => Indicator::Warning,
        Category::DvtUnlikely | Category::FollowUp => Indicator::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn rules_2_3_and_6_to_8() {
        type Case = (
            &'static str,
            Vec<Value>,
            Option<Category>,
            Vec<(SuggestionKind, bool)>,
        );
        let cases: Vec<Case> = vec![
            ("child: no card", vec![patient(12), pain()], None, vec![]),
            (
                "current DVT: no card",
                vec![patient(40), pain(), cond("dvt", ICD, "I82.402", 10)],
                None,
                vec![],
            ),
            (
                "current PE: no card (rule 3 covers any VTE)",
                vec![patient(40), pain(), cond("pe", ICD, "I26.99", 10)],
                None,
                vec![],
            ),
            (
                "negative D-dimer, Wells 0: dvt-unlikely",
                vec![
                    patient(40),
                    pain(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                Some(Category::DvtUnlikely),
                vec![],
            ),
            (
                "negative D-dimer but anticoagulated: not dvt-unlikely",
                vec![
                    patient(40),
                    pain(),
                    anticoagulant(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                Some(Category::FollowUp),
                vec![],
            ),
            (
                "rule 7 from active cancer (metastatic)",
                vec![patient(40), pain(), cond("ca", ICD, "C78.00", 400)],
                Some(Category::DvtEvaluation),
                vec![(DDimer, true)],
            ),
            (
                "rule 7 from a PE history (previous VTE)",
                vec![patient(40), pain(), cond("pe", ICD, "Z86.711", 400)],
                Some(Category::DvtEvaluation),
                vec![(DDimer, true)],
            ),
            (
                "rule 7 anticoagulated: ultrasound replaces the D-dimer, warning kept",
                vec![patient(40), pain(), procedure("s", 10), anticoagulant()],
                Some(Category::DvtEvaluation),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 7 positive D-dimer: ultrasound",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    obs_qty("dd", "48065-7", 900.0, "ug/L", 1),
                ],
                Some(Category::DvtEvaluation),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 5 anticoagulated stays a warning with the ultrasound",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    cond("ca", ICD, "C78.00", 30),
                    anticoagulant(),
                ],
                Some(Category::DvtLikely),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 5 with a prior positive D-dimer: ultrasound stays",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    cond("ca", ICD, "C78.00", 30),
                    obs_qty("dd", "48065-7", 900.0, "ug/L", 1),
                ],
                Some(Category::DvtLikely),
                vec![(Ultrasound, true)],
            ),
            (
                "rule 8: D-dimer not recommended",
                vec![patient(40), pain()],
                Some(Category::FollowUp),
                vec![(DDimer, false)],
            ),
            (
                "rule 8 anticoagulated: no D-dimer",
                vec![patient(40), pain(), anticoagulant()],
                Some(Category::FollowUp),
                vec![],
            ),
        ];
        for (name, resources, category, want) in cases {
            let a = run(resources);
            assert_eq!(a.category, category, "{name}");
            assert_eq!(kinds(&a), want, "{name}");
            if category == Some(Category::DvtEvaluation) || category == Some(Category::DvtLikely) {
                assert_eq!(a.indicator, Indicator::Warning, "{name}");
            }
        }
    }

    #[test]
    fn deceased_gets_no_card_before_every_rule() {
        for extra in [
            json!({"deceasedBoolean": true}),
            json!({"deceasedDateTime": day(1)}),
        ] {
            let mut p = patient(40);
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            // Warning signs would be rule 1 (before age and everything else).
            let a = run(vec![p, pain(), sob()]);
            assert_eq!(a.category, None, "{extra}");
            assert_eq!(a.no_card_reason, Some(NoCard::Deceased));
        }
    }
}
