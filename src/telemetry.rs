//! The log subscriber and, when configured, OpenTelemetry traces.
//!
//! Logs go to stderr (stdout carries the "listening on" line and command output), text or
//! JSON, level from `RUST_LOG` (default `info`).
//!
//! Traces are off unless an OTLP endpoint is configured ([`traces_endpoint`]): then the
//! spans of this crate (a hook call, each FHIR query and GET, the assessment) are batched
//! and sent over OTLP/HTTP with protobuf bodies, W3C `traceparent` is read from the EHR's
//! request and sent on every FHIR request. The `RUST_LOG` level filters the log only: the
//! spans are exported whatever it is.
//!
//! What goes into logs and spans is decided where they are written: ids, statuses,
//! counts and timings; never patient ids, prefetch, bodies, URLs with their query,
//! bearer tokens or JWTs.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The path OTLP/HTTP collectors take traces on, below a base endpoint.
const TRACES_PATH: &str = "v1/traces";

/// Longest wait for the last spans to reach the collector when the process stops.
const FLUSH_WITHIN: Duration = Duration::from_secs(5);

/// Where traces go, and which setting said so (for the startup log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracesEndpoint {
    /// The full URL spans are POSTed to (e.g. `http://collector:4318/v1/traces`).
    pub url: url::Url,
    /// The flag or variable it came from.
    pub from: &'static str,
}

/// Where `--otlp-endpoint` came from, if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagSource {
    /// Written on the command line: it wins over every variable.
    CommandLine,
    /// From its environment twin `DVT_CDS_OTLP_ENDPOINT`: the standard `OTEL_*`
    /// variables win over it (an OpenTelemetry operator or platform sets those for every
    /// service of a cluster; a site's own variable is the fallback).
    Environment,
}

/// The traces endpoint, or `None` (traces off). In order:
/// 1. `--otlp-endpoint` on the command line (a base URL: `/v1/traces` is added);
/// 2. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is, as the OpenTelemetry
///    specification says of the per-signal variable);
/// 3. `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL: `/v1/traces` is added);
/// 4. `DVT_CDS_OTLP_ENDPOINT`, the flag's own variable (a base URL).
///
/// An empty variable counts as unset (the specification's rule). `OTEL_SDK_DISABLED=true`
/// or `OTEL_TRACES_EXPORTER=none` turn traces off whatever else is set. Only OTLP over
/// HTTP with protobuf is spoken: once traces are on, `OTEL_TRACES_EXPORTER` without
/// `otlp`, or `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` other than `http/protobuf`, is an
/// error rather than spans sent where or how the collector does not expect them.
///
/// `env` reads a variable (the process's, or a test's table).
pub fn traces_endpoint(
    flag: Option<(&str, FlagSource)>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<TracesEndpoint>, String> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let exporters = var("OTEL_TRACES_EXPORTER");
    let exporters: Vec<&str> = exporters
        .as_deref()
        .map(|v| v.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if exporters == ["none"] {
        return Ok(None);
    }
    let (value, from, is_base) = match flag {
        Some((v, FlagSource::CommandLine)) => (v.to_string(), "--otlp-endpoint", true),
        _ => {
            if let Some(v) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                (v, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", false)
            } else if let Some(v) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                (v, "OTEL_EXPORTER_OTLP_ENDPOINT", true)
            } else if let Some((v, FlagSource::Environment)) = flag {
                (v.to_string(), "DVT_CDS_OTLP_ENDPOINT", true)
            } else {
                return Ok(None);
            }
        }
    };
    // Judged only once traces are on: settings meant for other services of a cluster
    // must not stop this one when it exports nothing.
    if !exporters.is_empty() && !exporters.contains(&"otlp") {
        return Err(format!(
            "OTEL_TRACES_EXPORTER={}: dvt-cds exports traces over OTLP only (set it to \
             otlp, or none to turn traces off)",
            exporters.join(",")
        ));
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(p) = var(name)
            && p.trim() != "http/protobuf"
        {
            return Err(format!(
                "{name}={p}: dvt-cds sends traces over OTLP/HTTP with protobuf bodies only \
                 (set it to http/protobuf or unset it, and point the endpoint at the \
                 collector's OTLP/HTTP port, usually 4318)"
            ));
        }
    }
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let mut url = url::Url::parse(value)
        .map_err(|e| format!("{from} {value}: {e}: expected e.g. http://otel-collector:4318"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{from} {value}: expected an http(s) URL such as http://otel-collector:4318"
        ));
    }
    if is_base {
        // `http://c:4318` and `http://c:4318/` both mean `http://c:4318/v1/traces`; a
        // base with a path keeps it (`http://gw/otlp` -> `http://gw/otlp/v1/traces`).
        let path = format!("{}/{TRACES_PATH}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Ok(Some(TracesEndpoint { url, from }))
}

/// What [`init`] started; [`Telemetry::shutdown`] sends the spans still buffered.
#[must_use = "call shutdown() so the last spans are sent"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether traces are exported.
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Flush the spans still buffered (at most [`FLUSH_WITHIN`]) and stop exporting.
    /// The flush blocks its thread while the export runs on the runtime, so it runs on a
    /// blocking thread: on a runtime worker it would wait for a task that the worker it
    /// blocks may be the one to run.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_WITHIN)).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "traces: the last spans could not be sent");
        }
    }
}

/// Install the global subscriber: the log, and when `traces` is given the OpenTelemetry
/// layer exporting to it, with the W3C trace-context propagator. Safe to call once per
/// process; the exporter sends from `runtime` (it must outlive [`Telemetry::shutdown`]).
pub fn init(
    format: LogFormat,
    traces: Option<&TracesEndpoint>,
    runtime: &tokio::runtime::Handle,
) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi)
            .boxed(),
    }
    // The log sees events only: the spans are for traces, and a line's shape must not
    // depend on where in a call it was written (the request's line carries the call's
    // facts itself; text lines would otherwise be prefixed with every span's fields).
    .with_filter(filter.and(filter_fn(|meta| meta.is_event())));
    let provider = traces.map(|t| provider(t, runtime)).transpose()?;
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("dvt-cds"))
            // Source locations and thread names say nothing an operator needs.
            .with_location(false)
            .with_threads(false)
            // Our spans and the events within them; not the libraries' (hyper's, h2's).
            .with_filter(Targets::new().with_target("dvt_cds", tracing::Level::INFO))
    });
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(otel)
        .try_init();
    Ok(Telemetry { provider })
}

/// The tracer provider: a batch of spans sent to `traces` every few seconds
/// (`OTEL_BSP_*` tune it), as service `dvt-cds` unless `OTEL_SERVICE_NAME` (or
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) names it otherwise.
fn provider(
    traces: &TracesEndpoint,
    runtime: &tokio::runtime::Handle,
) -> Result<SdkTracerProvider, String> {
    let client = OnRuntime::new(runtime.clone())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces.url.as_str())
        .build()
        .map_err(|e| format!("{} {}: {e}", traces.from, traces.url))?;
    // The SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without either it
    // would say `unknown_service`.
    let unnamed = Resource::builder()
        .build()
        .get(&opentelemetry::Key::new("service.name"))
        .is_none_or(|n| n.as_str().starts_with("unknown_service"));
    let resource = if unnamed {
        Resource::builder().with_service_name("dvt-cds")
    } else {
        Resource::builder()
    }
    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
    .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: this crate's reqwest (rustls), its requests run on the
/// service's tokio runtime. The SDK's batch processor exports from a thread of its own
/// with a plain executor, where reqwest's async client cannot run (it needs tokio's
/// reactor); rather than a second runtime (reqwest's blocking client) the request is
/// handed to ours and its answer awaited (a tokio `JoinHandle` can be awaited from any
/// executor).
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

/// The most of a collector's answer read (it is a small protobuf message, or an error).
const MAX_ANSWER: usize = 1 << 20;

impl OnRuntime {
    fn new(runtime: tokio::runtime::Handle) -> Result<Self, String> {
        // The OTLP exporter's own default timeout (OTEL_EXPORTER_OTLP_TIMEOUT's).
        let client = reqwest::Client::builder()
            .user_agent(concat!("dvt-cds/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("the traces HTTP client could not be built: {e}"))?;
        Ok(OnRuntime { client, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let client = self.client.clone();
        let exchange = async move {
            let request = reqwest::Request::try_from(request)?;
            let mut response = client.execute(request).await?;
            let mut answer = opentelemetry_http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = std::mem::take(response.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err("the collector's answer is larger than 1 MiB".into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, opentelemetry_http::HttpError>(answer.body(body.into())?)
        };
        self.runtime.spawn(exchange).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(
        flag: Option<(&str, FlagSource)>,
        vars: &[(&str, &str)],
    ) -> Result<Option<(String, &'static str)>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        traces_endpoint(flag, |name| vars.get(name).cloned())
            .map(|e| e.map(|e| (e.url.to_string(), e.from)))
    }

    fn some(url: &str, from: &'static str) -> Result<Option<(String, &'static str)>, String> {
        Ok(Some((url.to_string(), from)))
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert_eq!(resolve(None, &[]), Ok(None));
        // Empty variables count as unset.
        assert_eq!(
            resolve(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]),
            Ok(None)
        );
        // Other OTEL_* variables alone turn nothing on.
        assert_eq!(
            resolve(
                None,
                &[
                    ("OTEL_SERVICE_NAME", "x"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
                ]
            ),
            Ok(None)
        );
    }

    #[test]
    fn the_precedence_is_flag_then_standard_variables_then_the_flags_variable() {
        let all = [
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/custom/path",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
        ];
        let flag = |from| Some(("http://flag:4318", from));
        // Written on the command line: the flag wins over everything.
        assert_eq!(
            resolve(flag(FlagSource::CommandLine), &all),
            some("http://flag:4318/v1/traces", "--otlp-endpoint")
        );
        // From DVT_CDS_OTLP_ENDPOINT: the standard variables win, the per-signal one
        // first and used as it is.
        assert_eq!(
            resolve(flag(FlagSource::Environment), &all),
            some(
                "http://traces:4318/custom/path",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
            )
        );
        assert_eq!(
            resolve(flag(FlagSource::Environment), &all[1..]),
            some(
                "http://generic:4318/v1/traces",
                "OTEL_EXPORTER_OTLP_ENDPOINT"
            )
        );
        assert_eq!(
            resolve(flag(FlagSource::Environment), &[]),
            some("http://flag:4318/v1/traces", "DVT_CDS_OTLP_ENDPOINT")
        );
    }

    #[test]
    fn a_base_endpoint_gets_the_traces_path_once() {
        for (base, url) in [
            ("http://c:4318", "http://c:4318/v1/traces"),
            ("http://c:4318/", "http://c:4318/v1/traces"),
            (
                "https://gw.example/otlp/",
                "https://gw.example/otlp/v1/traces",
            ),
        ] {
            assert_eq!(
                resolve(Some((base, FlagSource::CommandLine)), &[]),
                some(url, "--otlp-endpoint"),
                "{base}"
            );
        }
    }

    #[test]
    fn the_kill_switches_and_wrong_protocols() {
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = on.to_vec();
            v.push(extra);
            resolve(Some(("http://flag:4318", FlagSource::CommandLine)), &v)
        };
        assert_eq!(with(("OTEL_SDK_DISABLED", "true")), Ok(None));
        assert_eq!(with(("OTEL_TRACES_EXPORTER", "none")), Ok(None));
        assert!(with(("OTEL_TRACES_EXPORTER", "otlp")).unwrap().is_some());
        let e = with(("OTEL_TRACES_EXPORTER", "zipkin")).unwrap_err();
        assert!(e.contains("OTEL_TRACES_EXPORTER=zipkin"), "{e}");
        let e = with(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")).unwrap_err();
        assert!(e.contains("http/protobuf"), "{e}");
        let e = with(("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")).unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "{e}");
        assert!(
            with(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"))
                .unwrap()
                .is_some()
        );
        assert!(
            with(("OTEL_TRACES_EXPORTER", "otlp,console"))
                .unwrap()
                .is_some()
        );
        // Without an endpoint traces are off, and settings for other exporters are
        // none of this service's business.
        for other in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ] {
            assert_eq!(resolve(None, &[other]), Ok(None), "{other:?}");
        }
    }

    #[test]
    fn endpoints_that_are_not_http_urls_are_refused() {
        for bad in ["collector:4318", "ftp://c/", "http://"] {
            let e = resolve(Some((bad, FlagSource::CommandLine)), &[]).unwrap_err();
            assert!(e.starts_with("--otlp-endpoint "), "{e}");
        }
        let e = resolve(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")]).unwrap_err();
        assert!(e.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT "), "{e}");
    }
}
