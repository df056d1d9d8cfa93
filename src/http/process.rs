//! The standard `process_*` metrics (the names and units of Prometheus's own client
//! libraries, so the usual dashboards and alerts work unchanged), read from `/proc` on
//! Linux at each scrape: resident and virtual memory, CPU seconds, open and allowed file
//! descriptors, start time. Elsewhere, or when `/proc` cannot be read, they are left out
//! (a missing series alerts; a made-up 0 would not).
//!
//! No crate for this: a few lines of `/proc` text, parsed by the pure functions below.

use std::fmt::Write;

/// Clock ticks per second of `/proc/[pid]/stat`'s times: the kernel reports them in
/// `USER_HZ`, which is 100 on every architecture Linux runs on today (Prometheus's own
/// procfs library makes the same assumption rather than call `sysconf`).
const USER_HZ: f64 = 100.0;

/// What `/proc/self/stat` says (the fields after the command name).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    /// User plus system CPU time, in seconds.
    cpu_seconds: f64,
    /// Clock ticks from boot to the process's start.
    start_ticks: u64,
    virtual_bytes: u64,
}

/// Parse `/proc/self/stat`. The command name (field 2, in parentheses) may hold spaces
/// and parentheses itself, so the fields are counted from its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `fields[0]` is field 3 (state): field N is `fields[N - 3]`.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / USER_HZ,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
    })
}

/// A `kB` line of `/proc/self/status` (e.g. `VmRSS:`), in bytes.
fn parse_status_bytes(text: &str, key: &str) -> Option<u64> {
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of open files from `/proc/self/limits`; `None` when unlimited.
fn parse_max_open_files(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One gauge or counter, with its HELP and TYPE lines.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

/// Append the `process_*` metrics that can be read now.
pub fn render_metrics(out: &mut String) {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let stat = read("/proc/self/stat").and_then(|t| parse_stat(&t));
    if let Some(s) = stat {
        metric(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            s.cpu_seconds,
        );
        metric(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            s.virtual_bytes,
        );
        if let Some(boot) = read("/proc/stat").and_then(|t| parse_boot_time(&t)) {
            metric(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                boot as f64 + s.start_ticks as f64 / USER_HZ,
            );
        }
    }
    if let Some(rss) = read("/proc/self/status").and_then(|t| parse_status_bytes(&t, "VmRSS:")) {
        metric(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        metric(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            dir.count(),
        );
    }
    if let Some(max) = read("/proc/self/limits").and_then(|t| parse_max_open_files(&t)) {
        metric(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis of its own.
        let text = "4242 (dvt cds) x) S 1 4242 4242 0 -1 4194560 1500 0 3 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 4000 18446744073709551615";
        let s = parse_stat(text).expect("parsed");
        assert_eq!(
            s,
            Stat {
                cpu_seconds: 3.25,
                start_ticks: 123456,
                virtual_bytes: 987654321,
            }
        );
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn status_limits_and_boot_time_parse() {
        let status = "Name:\tdvt-cds\nVmPeak:\t  900000 kB\nVmRSS:\t   51200 kB\n";
        assert_eq!(parse_status_bytes(status, "VmRSS:"), Some(51200 * 1024));
        assert_eq!(parse_status_bytes(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             95000                95000                processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), None);
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
    }

    /// On Linux every metric is there, with values this very process can vouch for.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let mut text = String::new();
        render_metrics(&mut text);
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in\n{text}"))
                .parse()
                .unwrap()
        };
        assert!(
            value("process_resident_memory_bytes") > 1_000_000.0,
            "{text}"
        );
        assert!(
            value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"),
            "{text}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0, "{text}");
        // stdin, stdout, stderr at least.
        assert!(value("process_open_fds") >= 3.0, "{text}");
        assert!(
            value("process_max_fds") >= value("process_open_fds"),
            "{text}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        // Started before now, and not before this test binary could have been built.
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} vs {now}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
    }
}
