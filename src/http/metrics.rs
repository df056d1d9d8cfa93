//! Prometheus metrics, rendered in the text exposition format (0.0.4) at `GET /metrics`.
//! A small in-process registry: a handful of fixed families with bounded label values
//! (routes, service ids, statuses, indicators), so no dependency is needed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::cds_hooks::Indicator;

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const REQUESTS: Family = Family {
    name: "dvt_cds_http_requests_total",
    kind: "counter",
    help: "HTTP requests by route, service and status.",
};
const LATENCY: Family = Family {
    name: "dvt_cds_http_request_duration_seconds",
    kind: "histogram",
    help: "HTTP request latency by route and service.",
};
const CARDS: Family = Family {
    name: "dvt_cds_cards_total",
    kind: "counter",
    help: "Cards returned by service and indicator.",
};
const FHIR_LATENCY: Family = Family {
    name: "dvt_cds_fhir_gather_duration_seconds",
    kind: "histogram",
    help: "Time to gather the FHIR data of a hook call (prefetch and live queries).",
};
const FHIR_FAILURES: Family = Family {
    name: "dvt_cds_fhir_failures_total",
    kind: "counter",
    help: "Hook calls whose FHIR data could not be gathered, by reason (unavailable, deadline).",
};
const FHIR_LIVE: Family = Family {
    name: "dvt_cds_fhir_live_queries_total",
    kind: "counter",
    help: "Prefetch keys fetched live from the FHIR server.",
};
const FHIR_MEDICATION_READS: Family = Family {
    name: "dvt_cds_fhir_medication_reads_total",
    kind: "counter",
    help: "Medications read live for unresolved medicationReferences, by outcome (read, failed, skipped).",
};
const FEEDBACK: Family = Family {
    name: "dvt_cds_feedback_total",
    kind: "counter",
    help: "Feedback entries received by service and outcome (duplicates included).",
};

const FAMILIES: [&Family; 8] = [
    &REQUESTS,
    &LATENCY,
    &CARDS,
    &FHIR_LATENCY,
    &FHIR_FAILURES,
    &FHIR_LIVE,
    &FHIR_MEDICATION_READS,
    &FEEDBACK,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Registry>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s
}

impl Metrics {
    fn reg(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn inc(&self, f: &Family, l: String, by: u64) {
        *self.reg().counters.entry((f.name, l)).or_default() += by;
    }

    fn observe(&self, f: &Family, l: String, secs: f64) {
        let mut reg = self.reg();
        let h = reg.histograms.entry((f.name, l)).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn request(&self, route: &str, service: &str, status: u16, secs: f64) {
        let status = status.to_string();
        self.inc(
            &REQUESTS,
            labels(&[("route", route), ("service", service), ("status", &status)]),
            1,
        );
        self.observe(
            &LATENCY,
            labels(&[("route", route), ("service", service)]),
            secs,
        );
    }

    pub fn card(&self, service: &str, indicator: Indicator) {
        self.inc(
            &CARDS,
            labels(&[("service", service), ("indicator", indicator.as_str())]),
            1,
        );
    }

    pub fn fhir_gather(&self, service: &str, secs: f64) {
        self.observe(&FHIR_LATENCY, labels(&[("service", service)]), secs);
    }

    pub fn fhir_failure(&self, service: &str, reason: &str) {
        self.inc(
            &FHIR_FAILURES,
            labels(&[("service", service), ("reason", reason)]),
            1,
        );
    }

    pub fn fhir_live_query(&self, key: &str) {
        self.inc(&FHIR_LIVE, labels(&[("key", key)]), 1);
    }

    /// Live Medication reads of one call ([`crate::fhir::MedicationReads`]).
    pub fn fhir_medication_reads(&self, reads: &crate::fhir::MedicationReads) {
        for (outcome, n) in [
            ("read", reads.read),
            ("failed", reads.failed),
            ("skipped", reads.skipped),
        ] {
            if n > 0 {
                self.inc(
                    &FHIR_MEDICATION_READS,
                    labels(&[("outcome", outcome)]),
                    n as u64,
                );
            }
        }
    }

    pub fn feedback(&self, service: &str, outcome: &str) {
        self.inc(
            &FEEDBACK,
            labels(&[("service", service), ("outcome", outcome)]),
            1,
        );
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let reg = self.reg();
        let mut out = String::new();
        for f in FAMILIES {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            for ((name, l), v) in reg.counters.iter().filter(|((n, _), _)| *n == f.name) {
                let _ = writeln!(out, "{name}{{{l}}} {v}");
            }
            for ((name, l), h) in reg.histograms.iter().filter(|((n, _), _)| *n == f.name) {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "{name}_bucket{{{l},le=\"{b}\"}} {}", h.counts[i]);
                }
                let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/cds-services/{id}", "dvt-patient-view", 412, 0.02);
        m.request("/cds-services/{id}", "dvt-patient-view", 412, 0.3);
        let text = m.render();
        assert!(text.contains(
            "dvt_cds_http_requests_total{route=\"/cds-services/{id}\",service=\"dvt-patient-view\",status=\"412\"} 2"
        ), "{text}");
        assert!(text.contains("le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("le=\"0.5\"} 2"), "{text}");
        assert!(text.contains("dvt_cds_http_request_duration_seconds_count{route=\"/cds-services/{id}\",service=\"dvt-patient-view\"} 2"));
    }
}
