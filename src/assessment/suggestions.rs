//! `dvt-model.md` §4: the tests a card suggests (rules 1, 4–8) and the modifiers that
//! take a suggestion away (a D-dimer that cannot be used, imaging already done, §7 an
//! order already drafted).

use super::assess::Assessment;
use super::category::Category;
use super::drafts::DraftOrders;
use super::wells_pe::PePathway;

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

/// §4 rule 1 suggestions (`at-most-one`). On the D-dimer-first path CTPA is offered too,
/// not recommended: if the clinician judges PE the most likely diagnosis, Wells PE rises by
/// 3 and CTPA is the test. Drafted orders suppress their own suggestion (§7).
fn pe_suggestions(p: PePathway, drafts: &DraftOrders) -> Vec<Suggestion> {
    use dvt_fhir::DraftPriority::Stat;
    let ctpa = |is_recommended| Suggestion {
        kind: SuggestionKind::Ctpa,
        priority: Stat,
        is_recommended,
    };
    let mut s = match p {
        PePathway::KnownVte => vec![],
        PePathway::Ctpa(_) => vec![ctpa(true)],
        PePathway::DDimerFirst => vec![
            Suggestion {
                kind: SuggestionKind::DDimer,
                priority: Stat,
                is_recommended: true,
            },
            ctpa(false),
        ],
    };
    s.retain(|x| match x.kind {
        SuggestionKind::Ctpa => drafts.ctpa.is_none(),
        SuggestionKind::DDimer => drafts.d_dimer.is_none(),
        SuggestionKind::Ultrasound => true,
    });
    s
}

/// §4 rules 4–8 suggestions, before the modifiers.
fn dvt_suggestions(
    category: Category,
    anticoagulated: bool,
    positive_d_dimer: bool,
) -> Vec<Suggestion> {
    use SuggestionKind::{DDimer, Ultrasound};
    use dvt_fhir::DraftPriority::{Routine, Urgent};
    let ultrasound = Suggestion {
        kind: Ultrasound,
        priority: Urgent,
        is_recommended: true,
    };
    match category {
        Category::PeWarningSigns | Category::DvtUnlikely => vec![],
        Category::Pregnancy | Category::DvtLikely => vec![ultrasound],
        // §4 rule 7; modifier anticoagulated: the ultrasound replaces the D-dimer.
        Category::DvtEvaluation if positive_d_dimer || anticoagulated => vec![ultrasound],
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
    }
}

/// The suggestions of a decided assessment (its category, PE pathway and judged D-dimer
/// set), after the §4 modifiers.
pub(super) fn suggest(a: &Assessment, category: Category) -> Vec<Suggestion> {
    let mut s = match a.pe_pathway {
        Some(p) => pe_suggestions(p, &a.drafts),
        None => dvt_suggestions(category, a.anticoagulated(), a.positive_d_dimer()),
    };
    // §4 modifiers: no D-dimer when it cannot be used (anticoagulated, possibly
    // anticoagulated, pregnant) or is already drafted (§7); no ultrasound when leg-vein
    // imaging is ordered or done within the window.
    let dd_blocked = a.d_dimer_block.is_some();
    let imaging = a.concepts.dvt_imaging.is_some();
    s.retain(|x| match x.kind {
        SuggestionKind::DDimer => !dd_blocked && a.drafts.d_dimer.is_none(),
        SuggestionKind::Ultrasound => !imaging,
        SuggestionKind::Ctpa => a.drafts.ctpa.is_none(),
    });
    s
}
