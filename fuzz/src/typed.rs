//! Target `typed_resource`: the typed parser of FHIR resources (`record::resource`,
//! issue 11), structure-aware. The fuzzer's bytes choose a JSON-like text built from the
//! element names the parser reads (every key of `Resource` and of its nested structs),
//! with values of right and wrong JSON types, nesting past every depth limit (resources
//! in resources, arrays in read and in skipped elements), string escapes (escaped keys,
//! lone surrogates), repeated keys, odd numbers, and now and then a mangled byte.
//!
//! Checks, for every text:
//! - `from_slice` does not panic;
//! - what is not JSON at all (`serde_json::from_slice::<IgnoredAny>` refuses it) is an
//!   error of `from_slice` too;
//! - where the text parses into a `serde_json::Value`, `from_slice` parses it too and
//!   agrees with `from_value` of that tree (the two entry points read alike);
//! - `from_slice` refuses JSON that the scan accepts only where the tree refuses it too:
//!   serde_json decodes what the typed parser reads (strings, numbers, keys) and only
//!   scans what it skips, so a lone surrogate escape or a number out of `f64`'s range is
//!   an error where it is read (as in the `Value` tree), not where it is skipped;
//! - under `within_allowance` the parse reads the same or is refused as a whole;
//! - the Bundle flattener and the paging link read any parsed form without panic.

use std::fmt::Write;

use serde::de::IgnoredAny;
use serde_json::Value;

use dvt_cds::record::resource::{self, Field};

use crate::harness::Bytes;

/// Texts are cut here (the HTTP layer limits bodies anyway; small texts run faster).
const MAX_TEXT: usize = 64 * 1024;

/// Every JSON key the typed parser reads (`Resource` and its nested structs).
const ELEMENTS: &[&str] = &[
    "resourceType",
    "id",
    "status",
    "code",
    "subject",
    "patient",
    "clinicalStatus",
    "verificationStatus",
    "category",
    "bodySite",
    "component",
    "reasonCode",
    "procedureCode",
    "class",
    "interpretation",
    "dataAbsentReason",
    "valueBoolean",
    "valueCodeableConcept",
    "valueString",
    "valueQuantity",
    "medicationCodeableConcept",
    "medicationReference",
    "contained",
    "ingredient",
    "period",
    "onsetDateTime",
    "onsetPeriod",
    "onsetAge",
    "onsetString",
    "onsetRange",
    "abatementDateTime",
    "abatementPeriod",
    "abatementAge",
    "abatementRange",
    "abatementString",
    "abatementBoolean",
    "recordedDate",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveInstant",
    "issued",
    "performedDateTime",
    "performedPeriod",
    "authoredOn",
    "dateAsserted",
    "started",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
    "entry",
    "link",
    "system",
    "display",
    "url",
    "coding",
    "text",
    "extension",
    "reference",
    "value",
    "comparator",
    "unit",
    "start",
    "end",
    "relation",
    "itemCodeableConcept",
    "mode",
    "fullUrl",
    "resource",
    "search",
];

/// Elements FHIR has that the parser skips (read by `IgnoredAny`).
const SKIPPED: &[&str] = &[
    "meta",
    "identifier",
    "note",
    "div",
    "type",
    "",
    "resourcetype",
];

const STRINGS: &[&str] = &[
    "Bundle",
    "Condition",
    "Observation",
    "Patient",
    "Medication",
    "MedicationRequest",
    "Encounter",
    "Procedure",
    "OperationOutcome",
    "outcome",
    "match",
    "next",
    "self",
    "searchset",
    "http://loinc.org",
    "http://snomed.info/sct",
    "48065-7",
    "M79.662",
    "2026-11-30T10:00:00Z",
    "2026-11",
    "Patient/p1",
    "#med",
    "urn:uuid:1",
    "final",
    "active",
    "",
];

/// Escapes as the fuzzer may write them inside a string or key.
const ESCAPES: &[&str] = &[
    "\\n",
    "\\\"",
    "\\\\",
    "\\/",
    "\\u00e9",
    "\\u0000",
    "\\ud83d\\ude00",
    "\\ud800",
    "\\udc00x",
    "\\u12",
];

/// Target `typed_resource`: build a text from the bytes, then [`typed_text`].
pub fn typed_resource(data: &[u8]) {
    let mut b = Bytes::new(data);
    let mut out = String::new();
    if b.chance(4) {
        value(&mut b, &mut out, 0);
    } else {
        object(&mut b, &mut out, 0);
    }
    let mut text = out.into_bytes();
    mangle(&mut b, &mut text);
    typed_text(&text);
}

/// The checks of one text (see the module's comment).
pub fn typed_text(text: &[u8]) {
    let typed = resource::from_slice(text);
    let scan = serde_json::from_slice::<IgnoredAny>(text);
    let tree = serde_json::from_slice::<Value>(text);
    if scan.is_err() {
        assert!(
            typed.is_err(),
            "from_slice accepted a text that is not JSON"
        );
    }
    match (&typed, &tree) {
        (Ok(parsed), Ok(tree)) => {
            assert_eq!(
                *parsed,
                resource::from_value(tree),
                "from_slice != from_value"
            )
        }
        (Err(e), Ok(_)) => panic!("from_slice refused JSON that the Value tree reads: {e}"),
        (Ok(_) | Err(_), Err(_)) => {}
    }
    if let Ok(parsed) = &typed {
        // The service's allowance for the text's length refuses the parse as a whole,
        // or reads the same.
        let cost = resource::allowance_for(text.len());
        if let Ok(bounded) = resource::within_allowance(cost, || resource::from_slice(text)) {
            let bounded = bounded.expect("the same text parsed before");
            assert_eq!(bounded, *parsed, "the allowance changed the reading");
        }
    }
    if let Ok(Field::Value(r)) = &typed {
        let mut malformed = 0;
        let mut seen = 0usize;
        resource::flatten(r, None, &mut malformed, &mut |_, _| seen += 1);
        let _ = resource::next_link(r);
    }
}

/// Now and then a byte replaced, inserted or the text cut: the error paths.
fn mangle(b: &mut Bytes<'_>, text: &mut Vec<u8>) {
    if text.is_empty() || !b.chance(12) {
        return;
    }
    let at = b.below(text.len());
    match b.below(3) {
        0 => text[at] = b.byte(),
        1 => text.insert(
            at,
            b.pick(&[b'{', b'}', b'[', b']', b',', b':', b'"', b'\\', 0xff]),
        ),
        _ => text.truncate(at),
    }
}

fn value(b: &mut Bytes<'_>, out: &mut String, depth: usize) {
    if out.len() > MAX_TEXT {
        out.push_str("null");
        return;
    }
    // Byte 0 (the input used up) is a leaf, so every input ends.
    match b.below(12) {
        0 => out.push_str(b.pick(&["null", "true", "false"])),
        1 | 2 => string(b, out),
        3 => number(b, out),
        4..=6 if depth < 24 => object(b, out, depth + 1),
        7 | 8 if depth < 24 => array(b, out, depth + 1),
        9 => nested(b, out),
        10 => resources_in_resources(b, out),
        _ => string(b, out),
    }
}

fn object(b: &mut Bytes<'_>, out: &mut String, depth: usize) {
    out.push('{');
    let n = b.below(8);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        whitespace(b, out);
        key(b, out);
        out.push(':');
        value(b, out, depth);
    }
    out.push('}');
}

fn array(b: &mut Bytes<'_>, out: &mut String, depth: usize) {
    out.push('[');
    let n = b.below(6);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        value(b, out, depth);
    }
    out.push(']');
}

/// A key: mostly one the parser reads (sometimes escaped, which must match alike), else
/// one it skips or the fuzzer's own.
fn key(b: &mut Bytes<'_>, out: &mut String) {
    let name = match b.below(8) {
        0 => b.pick(SKIPPED).to_string(),
        1 => b
            .raw_str()
            .chars()
            .filter(|c| *c != '"' && *c != '\\')
            .collect(),
        _ => b.pick(ELEMENTS).to_string(),
    };
    out.push('"');
    for c in name.chars() {
        if c.is_control() || b.chance(16) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    if b.chance(32) {
        out.push_str(b.pick(ESCAPES));
    }
    out.push('"');
}

fn string(b: &mut Bytes<'_>, out: &mut String) {
    out.push('"');
    match b.below(4) {
        0 => {
            for c in b.raw_str().chars() {
                match c {
                    '"' | '\\' => out.push_str(b.pick(ESCAPES)),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
        }
        1 => out.push_str(b.pick(ESCAPES)),
        _ => out.push_str(b.pick(STRINGS)),
    }
    out.push('"');
}

fn number(b: &mut Bytes<'_>, out: &mut String) {
    let n = b.pick(&[
        "0",
        "-0",
        "1",
        "-1",
        "0.62",
        "108",
        "1e3",
        "-2.5E-3",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "1e400",
        "-1e400",
        "1.0",
        "0e0",
        "123456789012345678901234567890",
    ]);
    out.push_str(n);
}

fn whitespace(b: &mut Bytes<'_>, out: &mut String) {
    if b.chance(8) {
        out.push_str(b.pick(&[" ", "\n", "\t", "\r\n  "]));
    }
}

/// Arrays or objects nested past serde_json's recursion limit (128), in whichever
/// element the surrounding key names (read or skipped).
fn nested(b: &mut Bytes<'_>, out: &mut String) {
    let depth = 1 + b.below(300);
    let (open, close) = b.pick(&[("[", "]"), ("{\"coding\":", "}"), ("{\"\":", "}")]);
    for _ in 0..depth {
        out.push_str(open);
    }
    out.push('0');
    for _ in 0..depth {
        out.push_str(close);
    }
}

/// Resources nested past `MAX_RESOURCE_DEPTH`: contained ones, or Bundles in entries.
fn resources_in_resources(b: &mut Bytes<'_>, out: &mut String) {
    let depth = 1 + b.below(40);
    let bundle = b.chance(2);
    for _ in 0..depth {
        if bundle {
            out.push_str(r#"{"resourceType":"Bundle","entry":[{"resource":"#);
        } else {
            out.push_str(r#"{"resourceType":"Medication","id":"m","contained":["#);
        }
    }
    out.push_str(r#"{"resourceType":"Condition","id":"c"}"#);
    for _ in 0..depth {
        out.push_str(if bundle { "}]}" } else { "]}" });
    }
}
