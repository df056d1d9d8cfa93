//! What `audit` counts and how it prints it. Each patient's outcome is read from the
//! rendered CDS Hooks response (the card's `indicator` and its `dvt-assessment`
//! extension), the same JSON an EHR receives, so that the audit reports what the service
//! would say and not an internal structure that could drift from it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::input::{InputKind, Unreadable};
use crate::cds_hooks::Response;

/// What one card says, as the audit counts it. Category, indicator and concept ids stay
/// the strings of the wire format: a value the audit does not know is still counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardDigest {
    pub category: String,
    pub indicator: String,
    /// `findings[].concept`, sorted, each once.
    pub findings: BTreeSet<String>,
    pub risk_factors: BTreeSet<String>,
    pub warning_signs: BTreeSet<String>,
    /// `dataQuality[].code`, each kind once.
    pub data_quality: BTreeSet<String>,
}

impl CardDigest {
    /// The card of a response, if there is one.
    pub fn from_response(response: &Response) -> Result<Option<CardDigest>, String> {
        let Some(card) = response.cards.first() else {
            return Ok(None);
        };
        let ext = card
            .extension
            .get("dvt-assessment")
            .ok_or("the card has no dvt-assessment extension")?;
        let strings = |key: &str| -> BTreeSet<String> {
            ext.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        let field_of = |key: &str, field: &str| -> BTreeSet<String> {
            ext.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|o| o.get(field).and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        };
        Ok(Some(CardDigest {
            category: ext
                .get("category")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            indicator: card.indicator.as_str().to_string(),
            findings: field_of("findings", "concept"),
            risk_factors: strings("riskFactors"),
            warning_signs: strings("warningSigns"),
            data_quality: field_of("dataQuality", "code"),
        }))
    }
}

/// One patient's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientOutcome {
    /// [`super::pseudonym::pseudonym`] of the patient id.
    pub pseudonym: String,
    pub living_adult: bool,
    pub card: Option<CardDigest>,
}

/// How many unreadable inputs the report names; the rest are counted only (a file of a
/// million bad lines must not fill memory or the screen).
pub const NAMED_UNREADABLE: usize = 100;

/// The running counts of an audit.
#[derive(Debug, Default)]
pub struct Tally {
    pub patients_read: u64,
    pub living_adults: u64,
    pub cards: u64,
    pub by_category: BTreeMap<String, u64>,
    pub by_indicator: BTreeMap<String, u64>,
    pub risk_factors: BTreeMap<String, u64>,
    pub findings: BTreeMap<String, u64>,
    pub warning_signs: BTreeMap<String, u64>,
    pub data_quality: BTreeMap<String, u64>,
    pub unreadable_count: u64,
    pub unreadable: Vec<Unreadable>,
}

impl Tally {
    pub fn add(&mut self, o: &PatientOutcome) {
        self.patients_read += 1;
        self.living_adults += u64::from(o.living_adult);
        let Some(card) = &o.card else { return };
        self.cards += 1;
        *self.by_category.entry(card.category.clone()).or_default() += 1;
        *self.by_indicator.entry(card.indicator.clone()).or_default() += 1;
        for (set, counts) in [
            (&card.risk_factors, &mut self.risk_factors),
            (&card.findings, &mut self.findings),
            (&card.warning_signs, &mut self.warning_signs),
            (&card.data_quality, &mut self.data_quality),
        ] {
            for key in set {
                *counts.entry(key.clone()).or_default() += 1;
            }
        }
    }

    pub fn unreadable(&mut self, u: Unreadable) {
        self.unreadable_count += 1;
        if self.unreadable.len() < NAMED_UNREADABLE {
            self.unreadable.push(u);
        }
    }
}

/// The run's settings, printed with the counts so that a report says what it measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub input: InputInfo,
    pub hook: String,
    pub now: String,
    pub mappings: MappingsInfo,
    /// "given-secret" or "random-per-run" (csv pseudonyms link across runs only with the
    /// same given secret).
    pub pseudonyms: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputInfo {
    pub kind: InputKind,
    pub files: usize,
    /// Files left aside (Synthea's hospital and practitioner Bundles, other files).
    pub skipped_files: usize,
    /// NDJSON lines that name no patient (Organization, Practitioner...).
    pub unlinked_lines: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MappingsInfo {
    pub id: String,
    pub version: String,
}

/// A count and its share of a denominator (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    pub patients: u64,
    pub share: f64,
}

fn share(n: u64, of: u64) -> Share {
    Share {
        patients: n,
        share: if of == 0 { 0.0 } else { n as f64 / of as f64 },
    }
}

/// The report (`--format json` prints it as is).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(flatten)]
    pub run: RunInfo,
    pub patients_read: u64,
    pub living_adults: u64,
    pub cards: u64,
    /// Cards over patients read.
    pub trigger_rate: f64,
    pub by_category: BTreeMap<String, u64>,
    pub by_indicator: BTreeMap<String, u64>,
    /// Each among carded patients (share: of `cards`).
    pub risk_factors: BTreeMap<String, Share>,
    pub findings: BTreeMap<String, Share>,
    pub warning_signs: BTreeMap<String, Share>,
    /// Carded patients with a data-quality note of each kind.
    pub data_quality: BTreeMap<String, Share>,
    pub unreadable: UnreadableReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnreadableReport {
    pub count: u64,
    /// The first [`NAMED_UNREADABLE`].
    pub named: Vec<Unreadable>,
}

impl Report {
    pub fn new(run: RunInfo, t: Tally) -> Report {
        let of_cards = |m: BTreeMap<String, u64>| -> BTreeMap<String, Share> {
            m.into_iter().map(|(k, n)| (k, share(n, t.cards))).collect()
        };
        Report {
            run,
            patients_read: t.patients_read,
            living_adults: t.living_adults,
            cards: t.cards,
            trigger_rate: share(t.cards, t.patients_read).share,
            risk_factors: of_cards(t.risk_factors),
            findings: of_cards(t.findings),
            warning_signs: of_cards(t.warning_signs),
            data_quality: of_cards(t.data_quality),
            by_category: t.by_category,
            by_indicator: t.by_indicator,
            unreadable: UnreadableReport {
                count: t.unreadable_count,
                named: t.unreadable,
            },
        }
    }

    pub fn to_json(&self) -> String {
        // A Report holds only strings, integers and finite floats: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let r = &self.run;
        let _ = writeln!(
            s,
            "dvt-cds audit: hook {}, now {}, mappings {} {}",
            r.hook, r.now, r.mappings.id, r.mappings.version
        );
        let kind = match r.input.kind {
            InputKind::Bundles => "Bundle files",
            InputKind::Ndjson => "NDJSON files",
        };
        let _ = writeln!(
            s,
            "input: {} {kind}, {} skipped{}",
            r.input.files,
            r.input.skipped_files,
            match r.input.kind {
                InputKind::Ndjson =>
                    format!(", {} lines naming no patient", r.input.unlinked_lines),
                InputKind::Bundles => String::new(),
            }
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<32}{:>8}", "patients read", self.patients_read);
        let _ = writeln!(s, "{:<32}{:>8}", "living adults", self.living_adults);
        let _ = writeln!(
            s,
            "{:<32}{:>8}   trigger rate {} of patients read",
            "cards",
            self.cards,
            percent(self.trigger_rate)
        );
        let counts = |s: &mut String, title: &str, m: &BTreeMap<String, u64>| {
            let _ = writeln!(s, "\n{title}");
            if m.is_empty() {
                let _ = writeln!(s, "  (none)");
            }
            for (k, n) in m {
                let _ = writeln!(s, "  {k:<30}{n:>8}");
            }
        };
        counts(&mut s, "cards by category", &self.by_category);
        counts(&mut s, "cards by indicator", &self.by_indicator);
        let shares = |s: &mut String, title: &str, m: &BTreeMap<String, Share>| {
            let _ = writeln!(s, "\n{title} (patients, share of carded patients)");
            if m.is_empty() {
                let _ = writeln!(s, "  (none)");
            }
            for (k, v) in m {
                let _ = writeln!(s, "  {k:<30}{:>8}   {}", v.patients, percent(v.share));
            }
        };
        shares(&mut s, "risk factors", &self.risk_factors);
        shares(&mut s, "findings", &self.findings);
        shares(&mut s, "warning signs", &self.warning_signs);
        shares(&mut s, "data-quality notes by kind", &self.data_quality);
        let _ = writeln!(s, "\nunreadable inputs: {}", self.unreadable.count);
        for u in &self.unreadable.named {
            let _ = writeln!(s, "  {}: {}", u.input, u.reason);
        }
        let unnamed = self.unreadable.count - self.unreadable.named.len() as u64;
        if unnamed > 0 {
            let _ = writeln!(s, "  ... and {unnamed} more");
        }
        s
    }
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// The csv header: one row per patient, no names, no ids (a pseudonym instead).
pub const CSV_HEADER: &str = "patient,living_adult,category,indicator,concepts,data_quality";

/// One csv row: the pseudonym, whether the patient is a living adult, the card's category
/// and indicator (`none` and empty without a card), the concepts found (`;`-separated),
/// and the data-quality kinds.
pub fn csv_row(o: &PatientOutcome) -> String {
    let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(";");
    let (category, indicator, concepts, quality) = match &o.card {
        Some(c) => {
            let concepts: BTreeSet<String> = c
                .findings
                .iter()
                .chain(&c.risk_factors)
                .chain(&c.warning_signs)
                .cloned()
                .collect();
            (
                c.category.as_str(),
                c.indicator.as_str(),
                join(&concepts),
                join(&c.data_quality),
            )
        }
        None => ("none", "", String::new(), String::new()),
    };
    [
        o.pseudonym.as_str(),
        if o.living_adult { "yes" } else { "no" },
        category,
        indicator,
        &concepts,
        &quality,
    ]
    .map(csv_field)
    .join(",")
}

/// RFC 4180 quoting, only where a field needs it.
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds_hooks::{Card, Coding, Indicator, Source};
    use serde_json::json;

    fn response() -> Response {
        let extension = json!({"dvt-assessment": {
            "category": "dvt-evaluation",
            "riskFactors": ["recent-surgery"],
            "warningSigns": [],
            "findings": [
                {"concept": "leg-pain", "evidence": ["Condition/c1"]},
                {"concept": "recent-surgery", "evidence": ["Procedure/p1"]},
                {"concept": "leg-pain", "evidence": ["Condition/c2"]}
            ],
            "dataQuality": [{"code": "unknown-age"}, {"code": "unknown-age"}]
        }});
        Response {
            cards: vec![Card {
                detail: String::new(),
                extension,
                indicator: Indicator::Warning,
                links: vec![],
                override_reasons: vec![],
                selection_behavior: None,
                source: Source {
                    label: "dvt-cds".into(),
                    topic: Coding {
                        code: "dvt-evaluation".into(),
                        display: String::new(),
                        system: String::new(),
                    },
                    url: String::new(),
                },
                suggestions: vec![],
                summary: "Calf pain in Jane Doe".into(),
                uuid: uuid::Uuid::nil(),
            }],
        }
    }

    fn outcome(card: Option<CardDigest>) -> PatientOutcome {
        PatientOutcome {
            pseudonym: "0123456789abcdef0123456789abcdef".into(),
            living_adult: true,
            card,
        }
    }

    #[test]
    fn the_digest_reads_the_rendered_card() {
        let d = CardDigest::from_response(&response()).unwrap().unwrap();
        assert_eq!(d.category, "dvt-evaluation");
        assert_eq!(d.indicator, "warning");
        assert_eq!(
            d.findings.iter().collect::<Vec<_>>(),
            ["leg-pain", "recent-surgery"]
        );
        assert_eq!(d.risk_factors.len(), 1);
        assert_eq!(d.data_quality.iter().collect::<Vec<_>>(), ["unknown-age"]);
        assert_eq!(
            CardDigest::from_response(&Response { cards: vec![] }).unwrap(),
            None
        );
        let mut no_extension = response();
        no_extension.cards[0].extension = json!({"other": {}});
        assert!(CardDigest::from_response(&no_extension).is_err());
    }

    #[test]
    fn the_tally_counts_patients_and_shares_of_carded_patients() {
        let d = CardDigest::from_response(&response()).unwrap();
        let mut t = Tally::default();
        t.add(&outcome(d.clone()));
        t.add(&outcome(None));
        t.add(&PatientOutcome {
            living_adult: false,
            ..outcome(None)
        });
        let r = Report::new(run(), t);
        assert_eq!((r.patients_read, r.living_adults, r.cards), (3, 2, 1));
        assert!((r.trigger_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.by_category["dvt-evaluation"], 1);
        assert_eq!(r.by_indicator["warning"], 1);
        assert_eq!(
            r.findings["leg-pain"],
            Share {
                patients: 1,
                share: 1.0
            }
        );
        assert_eq!(r.data_quality["unknown-age"].patients, 1);
        let text = r.to_text();
        assert!(text.contains("trigger rate 33.3 %"), "{text}");
        let j: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["patientsRead"], 3);
        assert_eq!(j["riskFactors"]["recent-surgery"]["patients"], 1);
        assert_eq!(j["input"]["kind"], "bundles");
    }

    #[test]
    fn unreadable_inputs_are_all_counted_and_the_first_ones_named() {
        let mut t = Tally::default();
        for i in 0..(NAMED_UNREADABLE + 5) {
            t.unreadable(Unreadable::new(format!("f line {i}"), "syntax error"));
        }
        let r = Report::new(run(), t);
        assert_eq!(r.unreadable.count, NAMED_UNREADABLE as u64 + 5);
        assert_eq!(r.unreadable.named.len(), NAMED_UNREADABLE);
        assert!(r.to_text().contains("... and 5 more"));
    }

    #[test]
    fn csv_rows_carry_a_pseudonym_and_concepts_and_no_names() {
        let d = CardDigest::from_response(&response()).unwrap();
        let row = csv_row(&outcome(d));
        assert_eq!(
            row,
            "0123456789abcdef0123456789abcdef,yes,dvt-evaluation,warning,\
             leg-pain;recent-surgery,unknown-age"
        );
        assert!(!row.contains("Jane") && !row.contains("Condition/"));
        assert_eq!(
            csv_row(&outcome(None)),
            "0123456789abcdef0123456789abcdef,yes,none,,,"
        );
        assert_eq!(CSV_HEADER.split(',').count(), row.split(',').count());
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    fn run() -> RunInfo {
        RunInfo {
            input: InputInfo {
                kind: InputKind::Bundles,
                files: 3,
                skipped_files: 0,
                unlinked_lines: 0,
            },
            hook: "patient-view".into(),
            now: "2026-12-01T12:00:00Z".into(),
            mappings: MappingsInfo {
                id: "dvt-cds-default".into(),
                version: "2.0.0".into(),
            },
            pseudonyms: "given-secret".into(),
        }
    }
}
