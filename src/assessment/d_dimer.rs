//! `dvt-model.md` §5: the D-dimer threshold (age-adjusted, by the test's kind) and the
//! judged result; §4 modifiers and §1: when a D-dimer cannot be used at all.

use super::concepts::{Concepts, DDimer, DDimerKind, DDimerResult};
use crate::mappings::{CodeSet, CodeSets, Mappings};

/// Why a D-dimer cannot be used (§4 rule 1, modifiers; §1 possibly anticoagulated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DDimerBlock {
    Anticoagulated,
    PossiblyAnticoagulated,
    Pregnancy,
    Postpartum,
}

/// The D-dimer as judged for this card (§5).
#[derive(Debug, Clone, PartialEq)]
pub struct DDimerJudged {
    pub d: DDimer,
    pub threshold: f64,
    pub age_adjusted: bool,
    pub result: DDimerResult,
}

/// §4, §1: why a D-dimer cannot be used, the strongest reason first.
pub(super) fn d_dimer_block(c: &Concepts) -> Option<DDimerBlock> {
    if c.anticoagulated.is_some() {
        Some(DDimerBlock::Anticoagulated)
    } else if c.possibly_anticoagulated.is_some() {
        Some(DDimerBlock::PossiblyAnticoagulated)
    } else if c.pregnancy.is_some() {
        Some(DDimerBlock::Pregnancy)
    } else if c.postpartum.is_some() {
        Some(DDimerBlock::Postpartum)
    } else {
        None
    }
}

/// §5: a D-dimer's kind from its code sets (`None`: the code does not say, e.g. CPT 85379).
pub(super) fn d_dimer_kind(codes: CodeSets) -> Option<DDimerKind> {
    match (
        codes.contains(CodeSet::DDimerFeu),
        codes.contains(CodeSet::DDimerDdu),
    ) {
        (true, false) => Some(DDimerKind::Feu),
        (false, true) => Some(DDimerKind::Ddu),
        _ => None,
    }
}

/// §5: the kind of the D-dimer this service suggests, from the codings of `[orders.d-dimer]`
/// (a site that suggests a DDU test gets DDU thresholds on its cards).
pub(super) fn suggested_d_dimer_kind(m: &Mappings) -> Option<DDimerKind> {
    let mut codes = CodeSets::default();
    for c in &m.model.orders.d_dimer.codings {
        codes = codes.union(m.classify(&c.system, &c.code));
    }
    d_dimer_kind(codes)
}

/// §5: judge a D-dimer against the (age-adjusted) threshold.
pub(super) fn judge(
    m: &Mappings,
    d: &DDimer,
    age: Option<u32>,
    age_adjusted: bool,
) -> DDimerJudged {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::record::quality::DataQualityCode;

    #[test]
    fn d_dimer_kind_of_drafts_and_suggestions() {
        let cases = [
            (CPT, "85379", None),
            (LOINC, "48065-7", Some(DDimerKind::Feu)),
            (LOINC, "48066-5", Some(DDimerKind::Ddu)),
        ];
        for (system, code, kind) in cases {
            let a = run_order(vec![patient(40), pain()], vec![draft("dd", system, code)]);
            assert_eq!(a.drafts.d_dimer_kind, kind, "{code}");
        }
        // The shipped D-dimer order is coded LOINC 48065-7: FEU.
        assert_eq!(suggested_d_dimer_kind(m()), Some(DDimerKind::Feu));
    }

    #[test]
    fn unknown_age_is_a_data_quality_note_and_fixed_thresholds() {
        let a = run(vec![
            json!({"resourceType": "Patient", "id": "p"}),
            pain(),
            procedure("s", 10),
            obs_qty("dd", "48065-7", 600.0, "ug/L", 1),
        ]);
        assert!(
            a.data_quality
                .iter()
                .any(|n| n.code == DataQualityCode::UnknownAge)
        );
        let dd = a.d_dimer.unwrap();
        assert_eq!(dd.threshold, 500.0);
        assert_eq!(dd.result, DDimerResult::Positive);
    }

    fn unresolved_medication() -> Value {
        json!({"resourceType": "MedicationRequest", "id": "um", "status": "active", "intent": "order",
               "medicationReference": {"reference": "Medication/not-sent"},
               "subject": {"reference": "Patient/p"}, "authoredOn": day(20)})
    }

    #[test]
    fn possibly_anticoagulated_blocks_d_dimers_and_rule_6() {
        type Case = (
            &'static str,
            Vec<Value>,
            Option<Category>,
            Vec<(SuggestionKind, bool)>,
        );
        let cases: Vec<Case> = vec![
            (
                "negative D-dimer: not dvt-unlikely (rule 8 without a D-dimer)",
                vec![
                    patient(40),
                    pain(),
                    unresolved_medication(),
                    obs_qty("dd", "48065-7", 300.0, "ug/L", 1),
                ],
                Some(Category::FollowUp),
                vec![],
            ),
            (
                "rule 7: no D-dimer, and no ultrasound in its place",
                vec![
                    patient(40),
                    pain(),
                    procedure("s", 10),
                    unresolved_medication(),
                ],
                Some(Category::DvtEvaluation),
                vec![],
            ),
            (
                "rule 1: CTPA",
                vec![patient(40), pain(), sob(), unresolved_medication()],
                Some(Category::PeWarningSigns),
                vec![(Ctpa, true)],
            ),
        ];
        for (name, resources, category, want) in cases {
            let a = run(resources);
            assert_eq!(a.category, category, "{name}");
            assert_eq!(
                a.d_dimer_block,
                Some(DDimerBlock::PossiblyAnticoagulated),
                "{name}"
            );
            assert!(
                !a.anticoagulated(),
                "{name}: not the anticoagulated modifier"
            );
            assert_eq!(kinds(&a), want, "{name}");
            assert!(
                a.data_quality
                    .iter()
                    .any(|n| n.code == DataQualityCode::UnresolvedMedication),
                "{name}"
            );
        }
    }
}
