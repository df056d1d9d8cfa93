//! Prometheus metrics, rendered in the text exposition format (0.0.4) at `GET /metrics`.
//! A small in-process registry: a handful of fixed families with bounded label values
//! (routes, service ids, statuses, indicators), so no dependency is needed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::cds_hooks::Indicator;

/// Latency buckets in seconds. A call answered from its prefetch takes well under a
/// millisecond in a release build (BENCHMARKS.md), and `/healthz` less: the first buckets
/// (100 µs to 1 ms) tell those apart; the last reach past `--deadline`'s maximum for
/// FHIR gathers that wait on a slow server.
const BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
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

/// `dvt_cds_build_info`: always 1, its labels say which build and which clinical content
/// answer (the mapping set loaded: the embedded one or `--mappings DIR`), so a dashboard
/// can join them to every other series.
pub fn render_build_info(out: &mut String, mappings: &crate::mappings::Mappings) {
    let _ = write!(
        out,
        "# HELP dvt_cds_build_info The running build: crate version and the mapping set that answers.\n\
         # TYPE dvt_cds_build_info gauge\n\
         dvt_cds_build_info{{{}}} 1\n",
        labels(&[
            ("version", env!("CARGO_PKG_VERSION")),
            ("mapping_set", &mappings.id),
            ("mapping_version", &mappings.version),
        ])
    );
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

    /// A call answered in 300 µs falls in the 0.0005 s bucket and not the 0.00025 s one:
    /// sub-millisecond calls are told apart (the first bucket used to be 5 ms).
    #[test]
    fn sub_millisecond_latencies_are_resolved() {
        let m = Metrics::default();
        m.request("/healthz", "-", 200, 0.00005);
        m.request("/healthz", "-", 200, 0.0003);
        m.request("/healthz", "-", 200, 0.0009);
        let text = m.render();
        let bucket = |le: &str| {
            let prefix = format!(
                "dvt_cds_http_request_duration_seconds_bucket{{route=\"/healthz\",service=\"-\",le=\"{le}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("no bucket le={le} in\n{text}"))
                .to_string()
        };
        assert_eq!(bucket("0.0001"), "1");
        assert_eq!(bucket("0.00025"), "1");
        assert_eq!(bucket("0.0005"), "2");
        assert_eq!(bucket("0.001"), "3");
        assert_eq!(bucket("30"), "3");
        assert_eq!(bucket("+Inf"), "3");
    }

    #[test]
    fn build_info_names_the_version_and_the_mapping_set() {
        let mappings = crate::mappings::Mappings::embedded().expect("shipped mappings");
        let mut text = String::new();
        render_build_info(&mut text, &mappings);
        let line = format!(
            "dvt_cds_build_info{{version=\"{}\",mapping_set=\"{}\",mapping_version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION"),
            mappings.id,
            mappings.version
        );
        assert!(text.contains(&line), "{text}");
        assert!(text.contains("# TYPE dvt_cds_build_info gauge\n"), "{text}");
    }
}
