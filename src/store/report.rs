//! `dvt-cds report`: the governance figures from the card log and the feedback (pure:
//! both stores hand the same rows to [`summarise`]).
//!
//! Per card category and indicator: cards shown in the period, how many got an
//! `accepted` and an `overridden` outcome, the override reasons given, and the median
//! time from the card to its first feedback (as received by the service).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::cds_hooks::Outcome;

/// A logged card, as the report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownCard {
    pub card: uuid::Uuid,
    pub category: String,
    pub indicator: String,
    pub shown_at: DateTime<Utc>,
}

/// One feedback entry about a card, as the report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CardFeedback {
    pub card: uuid::Uuid,
    pub outcome: Outcome,
    /// The override reason's `code` (`None`: no reason given).
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// The figures of one category and indicator.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReportRow {
    pub category: String,
    pub indicator: String,
    pub shown: u64,
    /// Cards with at least one `accepted` outcome.
    pub accepted: u64,
    /// Cards with at least one `overridden` outcome.
    pub overridden: u64,
    /// Override reason code -> entries giving it (`(none)`: no reason given).
    pub override_reasons: BTreeMap<String, u64>,
    /// Median over cards with feedback of (first feedback received - card shown), in
    /// seconds; `None` when no card got feedback.
    pub median_seconds_to_feedback: Option<f64>,
}

/// The rows of `cards`, joined with `feedback` on the card's uuid (feedback about cards
/// not in `cards` is ignored), sorted by category then indicator.
pub fn summarise(cards: &[ShownCard], feedback: &[CardFeedback]) -> Vec<ReportRow> {
    let mut by_card: BTreeMap<uuid::Uuid, Vec<&CardFeedback>> = BTreeMap::new();
    for f in feedback {
        by_card.entry(f.card).or_default().push(f);
    }
    let mut groups: BTreeMap<(String, String), (ReportRow, Vec<f64>)> = BTreeMap::new();
    for card in cards {
        let key = (card.category.clone(), card.indicator.clone());
        let (row, delays) = groups.entry(key).or_insert_with(|| {
            let row = ReportRow {
                category: card.category.clone(),
                indicator: card.indicator.clone(),
                shown: 0,
                accepted: 0,
                overridden: 0,
                override_reasons: BTreeMap::new(),
                median_seconds_to_feedback: None,
            };
            (row, Vec::new())
        });
        row.shown += 1;
        let Some(entries) = by_card.get(&card.card) else {
            continue;
        };
        let has = |o: Outcome| entries.iter().any(|f| f.outcome == o);
        row.accepted += u64::from(has(Outcome::Accepted));
        row.overridden += u64::from(has(Outcome::Overridden));
        for f in entries.iter().filter(|f| f.outcome == Outcome::Overridden) {
            let reason = f.reason.clone().unwrap_or_else(|| "(none)".into());
            *row.override_reasons.entry(reason).or_default() += 1;
        }
        if let Some(first) = entries.iter().map(|f| f.received_at).min() {
            delays.push((first - card.shown_at).num_milliseconds() as f64 / 1000.0);
        }
    }
    groups
        .into_values()
        .map(|(mut row, mut delays)| {
            row.median_seconds_to_feedback = median(&mut delays);
            row
        })
        .collect()
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// `--format` of `dvt-cds report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Csv,
    Json,
}

/// The rows in `format`. Override reasons in text and csv: `code=count` joined by `;`.
pub fn render(rows: &[ReportRow], format: ReportFormat) -> String {
    let reasons = |r: &ReportRow| {
        r.override_reasons
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    };
    let median = |r: &ReportRow| {
        r.median_seconds_to_feedback
            .map(|s| format!("{s:.1}"))
            .unwrap_or_default()
    };
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(rows).expect("report rows serialise"),
        ReportFormat::Csv => {
            let mut out = String::from(
                "category,indicator,shown,accepted,overridden,override_reasons,median_seconds_to_feedback\n",
            );
            for r in rows {
                out.push_str(&format!(
                    "{},{},{},{},{},\"{}\",{}\n",
                    csv_field(&r.category),
                    csv_field(&r.indicator),
                    r.shown,
                    r.accepted,
                    r.overridden,
                    reasons(r).replace('"', "\"\""),
                    median(r)
                ));
            }
            out
        }
        ReportFormat::Text => {
            let mut out = format!(
                "{:<24} {:<10} {:>7} {:>9} {:>11} {:>12}  override reasons\n",
                "category", "indicator", "shown", "accepted", "overridden", "median s"
            );
            for r in rows {
                out.push_str(&format!(
                    "{:<24} {:<10} {:>7} {:>9} {:>11} {:>12}  {}\n",
                    r.category,
                    r.indicator,
                    r.shown,
                    r.accepted,
                    r.overridden,
                    median(r),
                    reasons(r)
                ));
            }
            out
        }
    }
}

/// A csv field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + i64::from(s), 0).unwrap()
    }

    #[test]
    fn cards_are_counted_once_per_outcome_and_the_median_uses_first_feedback() {
        let id = |n: u128| uuid::Uuid::from_u128(n);
        let card = |n, category: &str, s| ShownCard {
            card: id(n),
            category: category.into(),
            indicator: "warning".into(),
            shown_at: at(s),
        };
        let cards = [
            card(1, "dvt", 0),
            card(2, "dvt", 0),
            card(3, "dvt", 0),
            card(4, "pe", 0),
        ];
        let fb = |n, outcome, reason: Option<&str>, s| CardFeedback {
            card: id(n),
            outcome,
            reason: reason.map(str::to_string),
            received_at: at(s),
        };
        let feedback = [
            fb(1, Outcome::Overridden, Some("not-relevant"), 10),
            fb(1, Outcome::Overridden, Some("not-relevant"), 50),
            fb(2, Outcome::Accepted, None, 30),
            fb(3, Outcome::Overridden, None, 40),
            // A card outside the period: ignored.
            fb(9, Outcome::Accepted, None, 5),
        ];
        let rows = summarise(&cards, &feedback);
        assert_eq!(rows.len(), 2);
        let dvt = &rows[0];
        assert_eq!((dvt.shown, dvt.accepted, dvt.overridden), (3, 1, 2));
        assert_eq!(dvt.override_reasons["not-relevant"], 2);
        assert_eq!(dvt.override_reasons["(none)"], 1);
        // First feedback per card: 10, 30, 40 s.
        assert_eq!(dvt.median_seconds_to_feedback, Some(30.0));
        let pe = &rows[1];
        assert_eq!((pe.shown, pe.accepted, pe.overridden), (1, 0, 0));
        assert_eq!(pe.median_seconds_to_feedback, None);
        let csv = render(&rows, ReportFormat::Csv);
        assert!(
            csv.contains("dvt,warning,3,1,2,\"(none)=1;not-relevant=2\",30.0"),
            "{csv}"
        );
    }
}
