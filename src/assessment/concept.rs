//! The names of the `dvt-model.md` §2 concepts: one enum, so a misspelt concept is a
//! compile error and every label on the card is an exhaustive match ([`crate::card::text`]).
//! [`Concept::as_str`] is the wire id the card extension writes (`findings[].concept`,
//! `riskFactors`, `warningSigns`, `alternatives`).

use crate::mappings::CodeSet;

/// A §2 concept (and the §1 "possibly anticoagulated" state, the §4 rule 4 first
/// trimester, the vital-sign findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Concept {
    LegPain,
    LegSwelling,
    RecentSurgery,
    Bedridden,
    ParalysisOrCast,
    ActiveCancer,
    PreviousDvt,
    PreviousVte,
    /// §2 `current-dvt`: a DVT or PE diagnosed now (rule 3).
    CurrentDvt,
    Pregnancy,
    Postpartum,
    /// §4 rule 4 LEFt "first trimester".
    FirstTrimester,
    EstrogenUse,
    Anticoagulated,
    /// §1: a current medication reference that could not be resolved.
    PossiblyAnticoagulated,
    LongHaulTravel,
    // §2 warning signs, in their order.
    Dyspnoea,
    ChestPain,
    Cough,
    Haemoptysis,
    Syncope,
    Dizziness,
    Hypoxaemia,
    Tachycardia,
    DDimer,
    DvtImaging,
    // §2 alternatives, in their order.
    BakerCyst,
    CalfMuscleStrain,
    KneeLigamentOrMeniscusInjury,
    NerveCompression,
    ArterialDisease,
    SuperficialThrombophlebitis,
    Cellulitis,
}

impl Concept {
    /// Every concept, in declaration order.
    pub const ALL: [Concept; 33] = [
        Concept::LegPain,
        Concept::LegSwelling,
        Concept::RecentSurgery,
        Concept::Bedridden,
        Concept::ParalysisOrCast,
        Concept::ActiveCancer,
        Concept::PreviousDvt,
        Concept::PreviousVte,
        Concept::CurrentDvt,
        Concept::Pregnancy,
        Concept::Postpartum,
        Concept::FirstTrimester,
        Concept::EstrogenUse,
        Concept::Anticoagulated,
        Concept::PossiblyAnticoagulated,
        Concept::LongHaulTravel,
        Concept::Dyspnoea,
        Concept::ChestPain,
        Concept::Cough,
        Concept::Haemoptysis,
        Concept::Syncope,
        Concept::Dizziness,
        Concept::Hypoxaemia,
        Concept::Tachycardia,
        Concept::DDimer,
        Concept::DvtImaging,
        Concept::BakerCyst,
        Concept::CalfMuscleStrain,
        Concept::KneeLigamentOrMeniscusInjury,
        Concept::NerveCompression,
        Concept::ArterialDisease,
        Concept::SuperficialThrombophlebitis,
        Concept::Cellulitis,
    ];

    /// The §2 name, as the card extension writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Concept::LegPain => "leg-pain",
            Concept::LegSwelling => "leg-swelling",
            Concept::RecentSurgery => "recent-surgery",
            Concept::Bedridden => "bedridden",
            Concept::ParalysisOrCast => "paralysis-or-cast",
            Concept::ActiveCancer => "active-cancer",
            Concept::PreviousDvt => "previous-dvt",
            Concept::PreviousVte => "previous-vte",
            Concept::CurrentDvt => "current-dvt",
            Concept::Pregnancy => "pregnancy",
            Concept::Postpartum => "postpartum",
            Concept::FirstTrimester => "first-trimester",
            Concept::EstrogenUse => "estrogen-use",
            Concept::Anticoagulated => "anticoagulated",
            Concept::PossiblyAnticoagulated => "possibly-anticoagulated",
            Concept::LongHaulTravel => "long-haul-travel",
            Concept::Dyspnoea => "dyspnoea",
            Concept::ChestPain => "chest-pain",
            Concept::Cough => "cough",
            Concept::Haemoptysis => "haemoptysis",
            Concept::Syncope => "syncope",
            Concept::Dizziness => "dizziness",
            Concept::Hypoxaemia => "hypoxaemia",
            Concept::Tachycardia => "tachycardia",
            Concept::DDimer => "d-dimer",
            Concept::DvtImaging => "dvt-imaging",
            Concept::BakerCyst => "baker-cyst",
            Concept::CalfMuscleStrain => "calf-muscle-strain",
            Concept::KneeLigamentOrMeniscusInjury => "knee-ligament-or-meniscus-injury",
            Concept::NerveCompression => "nerve-compression",
            Concept::ArterialDisease => "arterial-disease",
            Concept::SuperficialThrombophlebitis => "superficial-thrombophlebitis",
            Concept::Cellulitis => "cellulitis",
        }
    }
}

/// §2 warning signs read from codes, in the card's order (hypoxaemia also comes from
/// SpO2 and follows them).
pub const WARNING_SIGNS: [(CodeSet, Concept); 6] = [
    (CodeSet::Dyspnoea, Concept::Dyspnoea),
    (CodeSet::ChestPain, Concept::ChestPain),
    (CodeSet::Cough, Concept::Cough),
    (CodeSet::Haemoptysis, Concept::Haemoptysis),
    (CodeSet::Syncope, Concept::Syncope),
    (CodeSet::Dizziness, Concept::Dizziness),
];

/// §2 alternatives (the Wells −2 item's evidence), in the card's order.
pub const ALTERNATIVES: [(CodeSet, Concept); 7] = [
    (CodeSet::BakerCyst, Concept::BakerCyst),
    (CodeSet::CalfMuscleStrain, Concept::CalfMuscleStrain),
    (
        CodeSet::KneeLigamentOrMeniscusInjury,
        Concept::KneeLigamentOrMeniscusInjury,
    ),
    (CodeSet::NerveCompression, Concept::NerveCompression),
    (CodeSet::ArterialDisease, Concept::ArterialDisease),
    (
        CodeSet::SuperficialThrombophlebitis,
        Concept::SuperficialThrombophlebitis,
    ),
    (CodeSet::Cellulitis, Concept::Cellulitis),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_are_distinct_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Concept::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{s}"
            );
        }
        assert_eq!(seen.len(), Concept::ALL.len());
    }
}
