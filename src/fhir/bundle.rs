//! Lenient reading of FHIR JSON: Bundle entries, paging links, the date a search window
//! applies to, the patient a resource is about (pure: no I/O).
//!
//! Real servers and EHR prefetch omit `Bundle.type` and `search.mode`, so entries are
//! plain `serde_json::Value`s and one odd entry is skipped, never fatal (contract.md,
//! "Talking to the FHIR server").

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;

/// `resourceType` of a JSON value, when it is an object that has one.
pub fn resource_type(value: &Value) -> Option<&str> {
    value.get("resourceType")?.as_str()
}

/// The resources of a Bundle's entries: entries without a resource, resources without
/// a `resourceType`, `search.mode = outcome` entries and OperationOutcomes are skipped;
/// entries without `search.mode` are kept.
pub fn entries(bundle: &Value) -> Vec<Value> {
    let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| {
            e.get("search")
                .and_then(|s| s.get("mode"))
                .and_then(Value::as_str)
                != Some("outcome")
        })
        .filter_map(|e| e.get("resource"))
        .filter(|r| matches!(resource_type(r), Some(t) if t != "OperationOutcome"))
        .cloned()
        .collect()
}

/// [`entries`] of a Bundle it owns: the resources are moved out, not copied.
pub fn entries_owned(bundle: Value) -> Vec<Value> {
    let Value::Object(mut bundle) = bundle else {
        return Vec::new();
    };
    let Some(Value::Array(entries)) = bundle.remove("entry") else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| {
            e.get("search")
                .and_then(|s| s.get("mode"))
                .and_then(Value::as_str)
                != Some("outcome")
        })
        .filter_map(|e| match e {
            Value::Object(mut e) => e.remove("resource"),
            _ => None,
        })
        .filter(|r| matches!(resource_type(r), Some(t) if t != "OperationOutcome"))
        .collect()
}

/// The URL of the Bundle's `next` link.
pub fn next_link(bundle: &Value) -> Option<&str> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
        .filter(|u| !u.trim().is_empty())
}

/// `Type/id` of a resource, for de-duplication (no id: `None`).
pub fn type_and_id(resource: &Value) -> Option<(&str, &str)> {
    Some((resource_type(resource)?, resource.get("id")?.as_str()?))
}

/// Whether the resource names, as its `subject` (or `patient`), a Patient other than
/// `patient_id`. A server that ignores `patient=` returns everyone's resources: those
/// must never reach the assessment. Missing or non-Patient references are not judged.
pub fn about_other_patient(resource: &Value, patient_id: &str) -> bool {
    let reference = ["subject", "patient"]
        .iter()
        .find_map(|f| resource.get(*f)?.get("reference")?.as_str());
    let Some(reference) = reference else {
        return false;
    };
    // `Patient/1`, `https://x/fhir/Patient/1`, `Patient/1/_history/2`.
    let reference = reference.trim();
    let reference = without_history(reference);
    let mut parts = reference.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(id), Some("Patient")) => id != patient_id,
        _ => false,
    }
}

/// A reference up to its last `_history` segment (the whole of it when there is none).
fn without_history(reference: &str) -> &str {
    let mut rest = reference;
    loop {
        match rest.rsplit_once('/') {
            Some((before, "_history")) => return before,
            Some((before, _)) => rest = before,
            None if rest == "_history" => return "",
            None => return reference,
        }
    }
}

/// Whether a resource is certainly older than `since` in the element the live search
/// narrows on (`date_param` of the resource type). Unknown or unreadable dates are
/// kept: this only ever drops what a `date=ge` search would also leave out, so prefetch
/// and live queries give the assessment the same resources.
pub fn before_window(resource: &Value, date_param: &str, since: DateTime<Utc>) -> bool {
    let latest = match date_param {
        "authored" => resource
            .get("authoredOn")
            .and_then(Value::as_str)
            .and_then(upper_bound),
        _ => latest_of_choice(resource),
    };
    latest.is_some_and(|t| t < since)
}

/// The latest instant of `effective[x]`, `performed[x]` or `period` (the `date`
/// search parameter of Observation, DiagnosticReport, Procedure and Encounter).
fn latest_of_choice(resource: &Value) -> Option<DateTime<Utc>> {
    // In this order: the first element present decides.
    const CHOICES: [(&str, bool); 6] = [
        ("effectiveDateTime", false),
        ("effectiveInstant", false),
        ("effectivePeriod", true),
        ("performedDateTime", false),
        ("performedInstant", false),
        ("performedPeriod", true),
    ];
    for (field, is_period) in CHOICES {
        let Some(v) = resource.get(field) else {
            continue;
        };
        if is_period {
            return period_end(v);
        }
        if let Some(s) = v.as_str() {
            return upper_bound(s);
        }
    }
    resource.get("period").and_then(period_end)
}

/// A Period's latest instant; an open end (ongoing) has none.
fn period_end(period: &Value) -> Option<DateTime<Utc>> {
    period
        .get("end")
        .and_then(Value::as_str)
        .and_then(upper_bound)
}

/// The latest instant a FHIR date or dateTime can mean: a partial date covers the whole
/// day, month or year, and a date without time zone may be up to 14 h behind UTC.
pub fn upper_bound(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.len() > 10 {
        return DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    let mut it = s.split('-');
    let year: i32 = it.next()?.parse().ok()?;
    let (month, day) = match (it.next(), it.next()) {
        (None, _) => (None, None),
        (Some(m), d) => (Some(m.parse::<u32>().ok()?), d),
    };
    let end_day = match (month, day) {
        (None, _) => NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
        (Some(m), None) => {
            let first = NaiveDate::from_ymd_opt(year, m, 1)?;
            first.checked_add_months(chrono::Months::new(1))?
        }
        (Some(m), Some(d)) => NaiveDate::from_ymd_opt(year, m, d.parse().ok()?)?.succ_opt()?,
    };
    Some(end_day.and_hms_opt(0, 0, 0)?.and_utc() + Duration::hours(14))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_link_found_among_links() {
        let b =
            json!({"link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "b"}]});
        assert_eq!(next_link(&b), Some("b"));
        assert_eq!(
            next_link(&json!({"link": [{"relation": "self", "url": "a"}]})),
            None
        );
        assert_eq!(
            next_link(&json!({"link": [{"relation": "next", "url": " "}]})),
            None
        );
    }

    #[test]
    fn other_patients_are_recognised() {
        let r = |reference: &str| json!({"resourceType": "Condition", "subject": {"reference": reference}});
        assert!(!about_other_patient(&r("Patient/p1"), "p1"));
        assert!(!about_other_patient(&r("https://x/fhir/Patient/p1"), "p1"));
        assert!(!about_other_patient(&r("Patient/p1/_history/3"), "p1"));
        assert!(about_other_patient(&r("Patient/p2"), "p1"));
        assert!(about_other_patient(
            &r("https://x/fhir/Patient/p2/_history/1"),
            "p1"
        ));
        assert!(!about_other_patient(&r("Group/g1"), "p1"));
        assert!(!about_other_patient(
            &json!({"resourceType": "Condition"}),
            "p1"
        ));
        let ms = json!({"resourceType": "Account", "patient": {"reference": "Patient/p9"}});
        assert!(about_other_patient(&ms, "p1"));
    }

    #[test]
    fn upper_bounds_cover_partial_dates() {
        assert_eq!(
            upper_bound("2026-03-01T10:00:00+02:00"),
            Some(t("2026-03-01T08:00:00Z"))
        );
        assert_eq!(upper_bound("2026-03-01"), Some(t("2026-03-02T14:00:00Z")));
        assert_eq!(upper_bound("2026-02"), Some(t("2026-03-01T14:00:00Z")));
        assert_eq!(upper_bound("2026"), Some(t("2027-01-01T14:00:00Z")));
        assert_eq!(upper_bound("2026-13"), None);
        assert_eq!(upper_bound("yesterday"), None);
    }

    #[test]
    fn window_drops_only_what_is_certainly_older() {
        let since = t("2026-01-01T00:00:00Z");
        let obs = |v: Value| {
            let mut o = json!({"resourceType": "Observation"});
            o.as_object_mut()
                .unwrap()
                .extend(v.as_object().unwrap().clone());
            o
        };
        assert!(before_window(
            &obs(json!({"effectiveDateTime": "2025-06-01T00:00:00Z"})),
            "date",
            since
        ));
        assert!(!before_window(
            &obs(json!({"effectiveDateTime": "2026-02-01T00:00:00Z"})),
            "date",
            since
        ));
        assert!(!before_window(
            &obs(json!({"effectiveDateTime": "2025-12-31"})),
            "date",
            since
        ));
        assert!(before_window(
            &obs(json!({"effectivePeriod": {"start": "2025-01-01", "end": "2025-02-01"}})),
            "date",
            since
        ));
        assert!(!before_window(
            &obs(json!({"effectivePeriod": {"start": "2025-01-01"}})),
            "date",
            since
        ));
        assert!(before_window(
            &obs(json!({"effectiveInstant": "2025-01-01T00:00:00Z"})),
            "date",
            since
        ));
        // No date, or an unreadable one: kept.
        assert!(!before_window(
            &obs(json!({"issued": "2020-01-01T00:00:00Z"})),
            "date",
            since
        ));
        assert!(!before_window(
            &obs(json!({"effectiveDateTime": "garbage"})),
            "date",
            since
        ));
        let enc = json!({"resourceType": "Encounter", "period": {"start": "2025-01-01", "end": "2025-01-05"}});
        assert!(before_window(&enc, "date", since));
        let proc_ = json!({"resourceType": "Procedure", "performedDateTime": "2025-01-01"});
        assert!(before_window(&proc_, "date", since));
        let sr = json!({"resourceType": "ServiceRequest", "authoredOn": "2025-01-01"});
        assert!(before_window(&sr, "authored", since));
        assert!(!before_window(&sr, "authored", t("2024-01-01T00:00:00Z")));
    }
}
