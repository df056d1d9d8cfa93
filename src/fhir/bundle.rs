//! What the FHIR layer reads of typed resources ([`crate::record::resource`]): a
//! Bundle's resources, its paging link, the date a search window applies to, the patient
//! a resource is about (pure: no I/O).
//!
//! Real servers and EHR prefetch omit `Bundle.type` and `search.mode`, so an odd entry
//! is skipped, never fatal (contract.md, "Talking to the FHIR server").

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::record::resource::{self, Field, Period, Resource};

/// The resources of a Bundle it owns, moved out of it by the one flattener
/// ([`resource::flatten`]: outcome entries and OperationOutcomes skipped, nested Bundles
/// flattened). Entries without a readable resource and resources without a
/// `resourceType` are left out here; they are not the patient's data.
pub fn resources(bundle: Box<Resource>) -> Vec<Box<Resource>> {
    let mut out = Vec::with_capacity(bundle.bundle.entry.count());
    let mut unreadable = 0;
    resource::flatten(bundle, None, &mut unreadable, &mut |r, _| {
        if r.resource_type().is_some() {
            out.push(r);
        }
    });
    out
}

/// The URL of the Bundle's `next` link (a blank one is none).
pub fn next_link(bundle: &Resource) -> Option<&str> {
    resource::next_link(bundle).filter(|u| !u.trim().is_empty())
}

/// `Type/id` of a resource, for de-duplication (no id: `None`).
pub fn type_and_id(resource: &Resource) -> Option<(&str, &str)> {
    Some((resource.resource_type()?.as_str(), resource.id()?))
}

/// Whether the resource names, as its `subject` (or `patient`), a Patient other than
/// `patient_id`. A server that ignores `patient=` returns everyone's resources: those
/// must never reach the assessment. Missing or non-Patient references are not judged.
pub fn about_other_patient(resource: &Resource, patient_id: &str) -> bool {
    let reference = [&resource.subject, &resource.patient]
        .into_iter()
        .find_map(|r| r.get()?.reference.as_str());
    let Some(reference) = reference else {
        return false;
    };
    let reference = crate::mappings::trim(reference);
    if let Some(id) = crate::record::plain_patient_id(reference) {
        return id != patient_id;
    }
    // `https://x/fhir/Patient/1`, `Patient/1/_history/2`.
    let reference = without_history(reference);
    let (rest, id) = split_last(reference);
    rest.is_some_and(|rest| split_last(rest).1 == "Patient") && id != patient_id
}

/// A reference's text before its last `/` (`None` without one), and after it. Byte loops,
/// not `rsplit`: a searcher built per call was a tenth of the prefetch's combining.
fn split_last(reference: &str) -> (Option<&str>, &str) {
    match reference.bytes().rposition(|b| b == b'/') {
        Some(slash) => (Some(&reference[..slash]), &reference[slash + 1..]),
        None => (None, reference),
    }
}

/// A reference up to its last `_history` segment (the whole of it when there is none).
fn without_history(reference: &str) -> &str {
    let mut rest = reference;
    loop {
        match split_last(rest) {
            (Some(before), "_history") => return before,
            (Some(before), _) => rest = before,
            (None, "_history") => return "",
            (None, _) => return reference,
        }
    }
}

/// Whether a resource is certainly older than `since` in the element the live search
/// narrows on (`date_param` of the resource type). Unknown or unreadable dates are
/// kept: this only ever drops what a `date=ge` search would also leave out, so prefetch
/// and live queries give the assessment the same resources.
pub fn before_window(resource: &Resource, date_param: &str, since: DateTime<Utc>) -> bool {
    let latest = match date_param {
        "authored" => resource
            .medication
            .authored_on
            .as_str()
            .and_then(upper_bound),
        _ => latest_of_choice(resource),
    };
    latest.is_some_and(|t| t < since)
}

/// One element of a choice, as [`latest_of_choice`] weighs it.
enum Choice<'a> {
    DateTime(&'a Field<resource::Text>),
    Period(&'a Field<Period>),
}

/// The latest instant of `effective[x]`, `performed[x]` or `period` (the `date`
/// search parameter of Observation, DiagnosticReport, Procedure and Encounter).
fn latest_of_choice(r: &Resource) -> Option<DateTime<Utc>> {
    // In this order: the first element present decides (a dateTime that is not a
    // string is passed over).
    let choices = [
        Choice::DateTime(&r.observation.effective_date_time),
        Choice::DateTime(&r.observation.effective_instant),
        Choice::Period(&r.observation.effective_period),
        Choice::DateTime(&r.event.performed_date_time),
        Choice::DateTime(&r.event.performed_instant),
        Choice::Period(&r.event.performed_period),
    ];
    for choice in choices {
        match choice {
            Choice::Period(p) if p.is_present() => return period_end(p),
            Choice::DateTime(Field::Value(s)) => return upper_bound(s),
            Choice::Period(_) | Choice::DateTime(_) => {}
        }
    }
    period_end(&r.event.period)
}

/// A Period's latest instant; an open end (ongoing) has none.
fn period_end(period: &Field<Period>) -> Option<DateTime<Utc>> {
    period.get()?.end.as_str().and_then(upper_bound)
}

/// The latest instant a FHIR date or dateTime can mean: a partial date covers the whole
/// day, month or year, and a date without time zone may be up to 14 h behind UTC.
pub fn upper_bound(s: &str) -> Option<DateTime<Utc>> {
    let s = crate::mappings::trim(s);
    if s.len() > 10 {
        if let Some(t) = crate::record::parse_utc_seconds(s) {
            return Some(t);
        }
        return DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    // `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (at most 10 bytes; a fourth part is not read).
    let (year, rest) = cut_at_dash(s);
    let year: i32 = year.parse().ok()?;
    let (month, day) = match rest.map(cut_at_dash) {
        None => (None, None),
        Some((m, rest)) => (Some(m.parse::<u32>().ok()?), rest.map(|d| cut_at_dash(d).0)),
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

/// A text before its first `-`, and after it (`None` without one). A byte loop: a `char`
/// searcher cost more than reading the date's numbers.
fn cut_at_dash(s: &str) -> (&str, Option<&str>) {
    match s.bytes().position(|b| b == b'-') {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn typed(v: Value) -> Resource {
        match resource::from_value(&v) {
            Field::Value(r) => r,
            _ => panic!("not a resource: {v}"),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_bundles_resources_move_out_flattened_readable_and_typed_only() {
        let b = typed(json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Condition", "id": "a"}},
            {"resource": {"resourceType": "Bundle", "entry": [
                {"resource": {"resourceType": "Observation", "id": "b"}}]}},
            {"resource": {"id": "no type"}},
            {"search": {"mode": "outcome"}, "resource": {"resourceType": "OperationOutcome"}},
            {"fullUrl": "urn:uuid:no-resource"},
            {"resource": "not an object"}
        ]}));
        let ids: Vec<_> = resources(Box::new(b))
            .iter()
            .map(|r| type_and_id(r).unwrap())
            .map(|(t, i)| format!("{t}/{i}"))
            .collect();
        assert_eq!(ids, ["Condition/a", "Observation/b"]);
    }

    #[test]
    fn next_link_found_among_links() {
        let b = typed(
            json!({"link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "b"}]}),
        );
        assert_eq!(next_link(&b), Some("b"));
        assert_eq!(
            next_link(&typed(json!({"link": [{"relation": "self", "url": "a"}]}))),
            None
        );
        assert_eq!(
            next_link(&typed(json!({"link": [{"relation": "next", "url": " "}]}))),
            None
        );
    }

    #[test]
    fn other_patients_are_recognised() {
        let r = |reference: &str| {
            typed(json!({"resourceType": "Condition", "subject": {"reference": reference}}))
        };
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
            &typed(json!({"resourceType": "Condition"})),
            "p1"
        ));
        let ms = typed(json!({"resourceType": "Account", "patient": {"reference": "Patient/p9"}}));
        assert!(about_other_patient(&ms, "p1"));
    }

    /// The reading `about_other_patient` had with `str::rsplit`, as the oracle.
    fn other_patient_by_rsplit(reference: &str, patient_id: &str) -> bool {
        let reference = reference.trim();
        let mut rest = reference;
        let reference = loop {
            match rest.rsplit_once('/') {
                Some((before, "_history")) => break before,
                Some((before, _)) => rest = before,
                None if rest == "_history" => break "",
                None => break reference,
            }
        };
        let mut parts = reference.rsplit('/');
        matches!((parts.next(), parts.next()), (Some(id), Some("Patient")) if id != patient_id)
    }

    proptest::proptest! {
        #[test]
        fn other_patients_by_bytes_as_by_rsplit(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["Patient", "p1", "p2", "_history", "", "1", " ", "x/"]),
                0..7,
            ),
            pad in proptest::sample::select(vec!["", " ", "\n"]),
        ) {
            let reference = format!("{pad}{}{pad}", parts.join("/"));
            let r = typed(json!({"resourceType": "Condition", "subject": {"reference": reference}}));
            proptest::prop_assert_eq!(
                about_other_patient(&r, "p1"),
                other_patient_by_rsplit(&reference, "p1"),
                "{:?}", reference
            );
        }
    }

    /// Partial dates read the obvious way (`split`), for the property below.
    fn upper_bound_by_split(s: &str) -> Option<DateTime<Utc>> {
        let mut it = s.split('-');
        let year: i32 = it.next()?.parse().ok()?;
        let end_day = match (it.next(), it.next()) {
            (None, _) => NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
            (Some(m), None) => NaiveDate::from_ymd_opt(year, m.parse().ok()?, 1)?
                .checked_add_months(chrono::Months::new(1))?,
            (Some(m), Some(d)) => {
                NaiveDate::from_ymd_opt(year, m.parse().ok()?, d.parse().ok()?)?.succ_opt()?
            }
        };
        Some(end_day.and_hms_opt(0, 0, 0)?.and_utc() + Duration::hours(14))
    }

    proptest::proptest! {
        #[test]
        fn partial_dates_are_read_as_split_reads_them(
            s in "[0-9]{0,4}(-[0-9]{0,2}){0,3}|[0-9-]{0,10}"
        ) {
            proptest::prop_assume!(s.len() <= 10);
            proptest::prop_assert_eq!(upper_bound(&s), upper_bound_by_split(&s));
        }
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
            typed(o)
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
        let enc = typed(
            json!({"resourceType": "Encounter", "period": {"start": "2025-01-01", "end": "2025-01-05"}}),
        );
        assert!(before_window(&enc, "date", since));
        let proc_ = typed(json!({"resourceType": "Procedure", "performedDateTime": "2025-01-01"}));
        assert!(before_window(&proc_, "date", since));
        let sr = typed(json!({"resourceType": "ServiceRequest", "authoredOn": "2025-01-01"}));
        assert!(before_window(&sr, "authored", since));
        assert!(!before_window(&sr, "authored", t("2024-01-01T00:00:00Z")));
    }
}
