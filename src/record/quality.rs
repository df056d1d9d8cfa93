//! Data-quality notes (`dvt-model.md` §6): what the service could not see or read, so the
//! clinician knows. Collected by the record reader, the concepts and the FHIR layer; shown
//! in the card's "Data quality" section and as `dataQuality` in its extension.

/// What kind of problem a note reports. `as_str` is the stable code of the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataQualityCode {
    /// A value whose unit is not one the model reads (§1, §5).
    UnreadableUnit,
    /// A clinically relevant date after now, ignored (§1).
    FutureDate,
    /// A date that could not be read, or a resource with no date where a window needs one.
    UnreadableDate,
    /// A current medication whose `medicationReference` could not be resolved (§1).
    UnresolvedMedication,
    /// Live FHIR paging stopped before the last page (a limit was reached).
    PagingCutShort,
    /// A finished Encounter without a usable `period.end` (§1 Encounters).
    EncounterWithoutEnd,
    /// No usable `Patient.birthDate`: counted as an adult, fixed D-dimer thresholds (§4, §5).
    UnknownAge,
}

impl DataQualityCode {
    pub fn as_str(self) -> &'static str {
        match self {
            DataQualityCode::UnreadableUnit => "unreadable-unit",
            DataQualityCode::FutureDate => "future-date",
            DataQualityCode::UnreadableDate => "unreadable-date",
            DataQualityCode::UnresolvedMedication => "unresolved-medication",
            DataQualityCode::PagingCutShort => "paging-cut-short",
            DataQualityCode::EncounterWithoutEnd => "encounter-without-end",
            DataQualityCode::UnknownAge => "unknown-age",
        }
    }
}

/// One note: its kind and the resources it is about (`Observation/12`; empty when the note
/// is about the call, e.g. paging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataQualityNote {
    pub code: DataQualityCode,
    pub evidence: Vec<String>,
}

/// Adds `evidence` to the note of `code` (one note per code, each reference once;
/// an empty `evidence` only makes sure the note exists). Notes stay in code order.
pub fn note(notes: &mut Vec<DataQualityNote>, code: DataQualityCode, evidence: Option<String>) {
    let i = match notes.iter().position(|n| n.code == code) {
        Some(i) => i,
        None => {
            let at = notes.partition_point(|n| n.code < code);
            notes.insert(
                at,
                DataQualityNote {
                    code,
                    evidence: vec![],
                },
            );
            at
        }
    };
    if let Some(r) = evidence
        && !notes[i].evidence.contains(&r)
    {
        notes[i].evidence.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_merge_by_code_in_code_order_each_reference_once() {
        let mut n = Vec::new();
        note(
            &mut n,
            DataQualityCode::FutureDate,
            Some("Condition/1".into()),
        );
        note(
            &mut n,
            DataQualityCode::UnreadableUnit,
            Some("Observation/2".into()),
        );
        note(
            &mut n,
            DataQualityCode::FutureDate,
            Some("Condition/1".into()),
        );
        note(
            &mut n,
            DataQualityCode::FutureDate,
            Some("Condition/3".into()),
        );
        note(&mut n, DataQualityCode::UnknownAge, None);
        assert_eq!(
            n,
            vec![
                DataQualityNote {
                    code: DataQualityCode::UnreadableUnit,
                    evidence: vec!["Observation/2".into()]
                },
                DataQualityNote {
                    code: DataQualityCode::FutureDate,
                    evidence: vec!["Condition/1".into(), "Condition/3".into()]
                },
                DataQualityNote {
                    code: DataQualityCode::UnknownAge,
                    evidence: vec![]
                },
            ]
        );
    }

    #[test]
    fn codes_are_distinct_kebab_case() {
        let all = [
            DataQualityCode::UnreadableUnit,
            DataQualityCode::FutureDate,
            DataQualityCode::UnreadableDate,
            DataQualityCode::UnresolvedMedication,
            DataQualityCode::PagingCutShort,
            DataQualityCode::EncounterWithoutEnd,
            DataQualityCode::UnknownAge,
        ];
        let mut seen = std::collections::HashSet::new();
        for c in all {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-')
            );
        }
    }
}
