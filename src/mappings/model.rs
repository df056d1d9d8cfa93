//! `mappings/model.toml`: windows, thresholds, order codes, override reasons, links.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{MappingError, err};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Model {
    pub model: ModelInfo,
    /// Code set key -> value set ids.
    pub codesets: BTreeMap<String, Vec<String>>,
    pub windows: Windows,
    pub thresholds: Thresholds,
    pub record: RecordRules,
    pub laterality: Laterality,
    pub orders: Orders,
    pub override_reasons: Vec<OverrideReason>,
    pub links: Vec<Link>,
    pub source: Source,
    /// `[medication-names]`: code set key (a medication concept) -> the generic and brand
    /// names that match a medication known only by text (`dvt-model.md` §1 Medications).
    #[serde(default)]
    pub medication_names: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModelInfo {
    /// The mapping set's id: `dvt-cds-default` for the shipped set; a site that edits
    /// its copy gives it its own id, so that cards and discovery say whose knowledge spoke.
    pub id: String,
    /// What the set is, for people.
    pub name: String,
    /// The mapping set's version (the shipped set follows `dvt-model.md`'s version).
    pub version: String,
}

/// Windows in days before now (`dvt-model.md` §1, §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Windows {
    pub index_presentation: u32,
    pub recent_surgery: u32,
    pub leg_cast: u32,
    pub bedridden_stay_ended: u32,
    /// §2 active-cancer: onset, treatment and palliative care all count within it.
    pub cancer_activity: u32,
    pub current_dvt: u32,
    pub pregnancy_evidence: u32,
    pub postpartum: u32,
    pub long_haul_travel: u32,
    pub warning_sign: u32,
    pub vital_sign: u32,
    pub d_dimer: u32,
    pub dvt_imaging: u32,
    pub alternative: u32,
    pub pe_surgery: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Thresholds {
    pub adult_age: u32,
    pub bedridden_stay_min_days: u32,
    pub spo2_below: f64,
    pub heart_rate_at_least: f64,
    pub pe_heart_rate_above: f64,
    pub wells_likely_at_least: i32,
    /// §4 rule 1: a documented Wells PE above this makes CTPA the test (NICE NG158).
    pub wells_pe_likely_above: f64,
    /// §4 rule 5: the leg-vein ultrasound result within this many hours (NICE NG158).
    pub ultrasound_within_hours: u32,
    pub d_dimer_feu: DDimerThreshold,
    pub d_dimer_ddu: DDimerThreshold,
}

/// `dvt-model.md` §5: positive when value ≥ `base` µg/L up to `age_limit`, above it
/// ≥ age × `per_year_of_age` µg/L.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DDimerThreshold {
    pub base: f64,
    pub age_limit: u32,
    pub per_year_of_age: f64,
}

impl DDimerThreshold {
    /// The threshold in µg/L; `age_adjusted` false (or unknown age) gives `base`.
    pub fn threshold(&self, age: Option<u32>, age_adjusted: bool) -> f64 {
        match age {
            Some(a) if age_adjusted && a > self.age_limit => f64::from(a) * self.per_year_of_age,
            _ => self.base,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleCoding {
    pub system: String,
    pub code: String,
    #[serde(default)]
    pub display: Option<String>,
}

impl SimpleCoding {
    pub fn matches(&self, system: &str, code: &str) -> bool {
        self.system == system.trim() && self.code == code.trim()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecordRules {
    pub surgery_categories: Vec<SimpleCoding>,
    pub inpatient_classes: Vec<String>,
    pub absent_values: Vec<SimpleCoding>,
    /// §1: a symptom Observation whose `valueString` is one of these words
    /// (case-insensitive) means the symptom is absent.
    pub absent_words: Vec<String>,
    /// §2 pregnancy: values of a qualitative hCG Observation that mean positive.
    pub positive_values: Vec<SimpleCoding>,
    pub pregnant_value: SimpleCoding,
    pub not_pregnant_value: SimpleCoding,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Laterality {
    pub right: Vec<String>,
    pub left: Vec<String>,
    pub bilateral: Vec<String>,
    pub body_site_right: Vec<String>,
    pub body_site_left: Vec<String>,
    pub body_site_bilateral: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Orders {
    pub ultrasound: OrderSpec,
    pub ctpa: OrderSpec,
    pub d_dimer: OrderSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OrderSpec {
    pub text: String,
    pub category: Option<SimpleCoding>,
    pub codings: Vec<SimpleCoding>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OverrideReason {
    pub system: String,
    pub code: String,
    pub display: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Link {
    pub label: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Source {
    pub label: String,
    pub url: String,
    pub topic_system: String,
    /// §6: the article the card cites, and its medical reviewer.
    pub article_title: String,
    pub article_reviewer: String,
}

impl Model {
    pub(super) fn parse(file: &str, text: &str) -> Result<Model, MappingError> {
        let model: Model = toml::from_str(text).map_err(|e| {
            let entry = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].lines().count().max(1);
                    let src = text.lines().nth(line - 1).unwrap_or("").trim();
                    format!("line {line} `{src}`")
                })
                .unwrap_or_default();
            err(file, entry, e.message().to_string())
        })?;
        model.validate(file)?;
        Ok(model)
    }

    /// The checks serde's types cannot express; the first problem found is the error.
    fn validate(&self, file: &str) -> Result<(), MappingError> {
        self.validate_identity(file)?;
        self.validate_thresholds(file)?;
        self.validate_orders(file)?;
        self.validate_override_reasons(file)?;
        self.validate_links(file)?;
        self.validate_source(file)?;
        self.validate_absent_words(file)
    }

    /// `[model]` id and version are shown in discovery, on cards and in logs: a short
    /// token, never free text.
    fn validate_identity(&self, file: &str) -> Result<(), MappingError> {
        for (name, v) in [
            ("[model] id", &self.model.id),
            ("[model] version", &self.model.version),
        ] {
            let token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+');
            if v.is_empty() || v.len() > 64 || !v.chars().all(token) {
                return Err(err(
                    file,
                    name,
                    format!(
                        "\"{v}\" must be 1 to 64 letters, digits, '.', '-', '_' or '+' \
                         (e.g. id = \"dvt-cds-default\", version = \"2.0.0\")"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every threshold read as a decimal number is positive and finite.
    fn validate_thresholds(&self, file: &str) -> Result<(), MappingError> {
        let t = &self.thresholds;
        for (name, v) in [
            ("[thresholds] spo2-below", t.spo2_below),
            ("[thresholds] heart-rate-at-least", t.heart_rate_at_least),
            ("[thresholds] pe-heart-rate-above", t.pe_heart_rate_above),
            (
                "[thresholds] wells-pe-likely-above",
                t.wells_pe_likely_above,
            ),
            ("[thresholds.d-dimer-feu] base", t.d_dimer_feu.base),
            (
                "[thresholds.d-dimer-feu] per-year-of-age",
                t.d_dimer_feu.per_year_of_age,
            ),
            ("[thresholds.d-dimer-ddu] base", t.d_dimer_ddu.base),
            (
                "[thresholds.d-dimer-ddu] per-year-of-age",
                t.d_dimer_ddu.per_year_of_age,
            ),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(err(file, name, "must be a positive number"));
            }
        }
        Ok(())
    }

    /// Each order a card suggests has text and at least one coding with a system and a
    /// code.
    fn validate_orders(&self, file: &str) -> Result<(), MappingError> {
        for (name, o) in [
            ("[orders.ultrasound]", &self.orders.ultrasound),
            ("[orders.ctpa]", &self.orders.ctpa),
            ("[orders.d-dimer]", &self.orders.d_dimer),
        ] {
            if o.text.trim().is_empty() {
                return Err(err(file, format!("{name} text"), "is empty"));
            }
            if o.codings.is_empty() {
                return Err(err(file, format!("{name} codings"), "lists no coding"));
            }
            for c in &o.codings {
                if c.system.trim().is_empty() || c.code.trim().is_empty() {
                    return Err(err(
                        file,
                        format!("{name} codings"),
                        "a coding has an empty system or code",
                    ));
                }
            }
        }
        Ok(())
    }

    /// A card offers at least one override reason, each fully coded and displayed.
    fn validate_override_reasons(&self, file: &str) -> Result<(), MappingError> {
        if self.override_reasons.is_empty() {
            return Err(err(file, "[[override-reasons]]", "at least one is needed"));
        }
        for (i, r) in self.override_reasons.iter().enumerate() {
            if r.code.trim().is_empty() || r.display.trim().is_empty() || r.system.trim().is_empty()
            {
                return Err(err(
                    file,
                    format!("[[override-reasons]] #{}", i + 1),
                    "system, code and display must not be empty",
                ));
            }
        }
        Ok(())
    }

    /// Card links must be absolute http(s) URLs.
    fn validate_links(&self, file: &str) -> Result<(), MappingError> {
        for (i, l) in self.links.iter().enumerate() {
            if !(l.url.starts_with("https://") || l.url.starts_with("http://")) {
                return Err(err(
                    file,
                    format!("[[links]] #{}", i + 1),
                    "url must be absolute (http or https)",
                ));
            }
        }
        Ok(())
    }

    /// The card's source names itself, its article and the article's reviewer.
    fn validate_source(&self, file: &str) -> Result<(), MappingError> {
        for (name, v) in [
            ("[source] label", &self.source.label),
            ("[source] article-title", &self.source.article_title),
            ("[source] article-reviewer", &self.source.article_reviewer),
        ] {
            if v.trim().is_empty() {
                return Err(err(file, name, "is empty"));
            }
        }
        Ok(())
    }

    /// An empty absent word would read a blank `valueString` as the symptom absent.
    fn validate_absent_words(&self, file: &str) -> Result<(), MappingError> {
        for (i, w) in self.record.absent_words.iter().enumerate() {
            if w.trim().is_empty() {
                return Err(err(
                    file,
                    format!("[record] absent-words #{}", i + 1),
                    "is empty",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Model {
        Model::parse("m", include_str!("../../mappings/model.toml")).unwrap()
    }

    #[test]
    fn a_decimal_threshold_must_be_positive_and_finite() {
        assert!(shipped().validate_thresholds("m").is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut m = shipped();
            m.thresholds.d_dimer_ddu.per_year_of_age = bad;
            let e = m.validate_thresholds("m").unwrap_err();
            assert_eq!(e.entry, "[thresholds.d-dimer-ddu] per-year-of-age", "{bad}");
            assert_eq!(e.problem, "must be a positive number");
        }
    }
}
