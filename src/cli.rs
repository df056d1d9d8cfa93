//! The command line: `serve`, `healthcheck`, `evaluate`, `audit`, `report`, `mappings check`,
//! `feedback export`.
//! Every `serve` flag also reads an environment variable `DVT_CDS_<NAME>`; defaults are
//! written here, beside the flags, and invalid values stop the process with a message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::audit::pseudonym::IdSecret;
use crate::cds_hooks::Hook;
use crate::fhir::{EgressPolicy, FhirSettings, LiveDataPool, ServerBase};
use crate::http::{Application, ServeConfig};
use crate::store::{PgSettings, StoreConfig};
use crate::telemetry::{FlagSource, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "dvt-cds",
    version,
    about = "CDS Hooks 2.0 service: deep vein thrombosis assessment from FHIR R4 data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the CDS Hooks service.
    Serve(Box<ServeArgs>),
    /// Ask a running service on this host whether it is ready (GET /readyz): exit 0 if
    /// it answers 200, else 1 with the reason on one line (the container health check).
    Healthcheck(HealthcheckArgs),
    /// Assess one patient from files and print the CDS Hooks response (JSON).
    Evaluate(EvaluateArgs),
    /// Population report before go-live: run every patient of a directory of Bundles
    /// (Synthea's fhir/) or Bulk Data NDJSON files through the assessment and count the
    /// cards, their categories, risk factors, findings and data-quality notes.
    Audit(AuditArgs),
    /// The clinical mappings.
    Mappings {
        #[command(subcommand)]
        command: MappingsCommand,
    },
    /// Governance report from the card log and the feedback: cards shown, accepted and
    /// overridden per category and indicator, override reasons, median time from card
    /// to feedback.
    Report(ReportArgs),
    /// Stored feedback.
    Feedback {
        #[command(subcommand)]
        command: FeedbackCommand,
    },
}

#[derive(Debug, Subcommand)]
enum MappingsCommand {
    /// Load and check a mapping set (default: the embedded one) and report it.
    Check { dir: Option<PathBuf> },
}

#[derive(Debug, Subcommand)]
enum FeedbackCommand {
    /// Print every stored feedback entry as one JSON line.
    Export {
        #[arg(
            long,
            env = "DVT_CDS_FEEDBACK_DB",
            default_value = "dvt-cds-feedback.sqlite3"
        )]
        feedback_db: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "DVT_CDS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve /healthz, /readyz and /metrics on this address only (not on --listen).
    #[arg(long, env = "DVT_CDS_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// External base URL (JWT audience). Default: http://<listen address>; required with
    /// --auth-config unless --listen is a loopback address.
    #[arg(long, env = "DVT_CDS_PUBLIC_URL", value_parser = parse_public_url)]
    public_url: Option<url::Url>,
    /// TOML file of trusted EHR issuers and their keys.
    #[arg(long, env = "DVT_CDS_AUTH_CONFIG")]
    auth_config: Option<PathBuf>,
    /// Development mode: no client authentication (unless --auth-config), any CORS
    /// origin, FHIR queries without a token allowed.
    #[arg(long, env = "DVT_CDS_DEV", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    dev: bool,
    /// SQLite file for feedback (the default store, for one machine).
    #[arg(
        long,
        env = "DVT_CDS_FEEDBACK_DB",
        default_value = "dvt-cds-feedback.sqlite3"
    )]
    feedback_db: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Site secret of the card log's keyed patient hash (HMAC-SHA256 of the patient id,
    /// as `audit`'s pseudonyms); unset: the card log holds no patient hash.
    #[arg(long, env = "DVT_CDS_ID_SECRET", hide_env_values = true)]
    id_secret: Option<String>,
    /// Allowed CORS origin (repeatable; the variable takes a comma-separated list).
    #[arg(
        long = "cors-origin",
        env = "DVT_CDS_CORS_ORIGIN",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// Largest request body (e.g. 4MiB, 512KiB, 1000000).
    #[arg(long, env = "DVT_CDS_MAX_BODY", default_value = "4MiB", value_parser = parse_size)]
    max_body: usize,
    /// Longest a client may take to send a request head (request line and headers), and
    /// longest an idle keep-alive connection is kept; past it the connection is closed.
    #[arg(long, env = "DVT_CDS_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// Longest a client may take to send a request body, once its headers are in
    /// (a client dribbling its body gets 408).
    #[arg(long, env = "DVT_CDS_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    body_timeout: Duration,
    /// Most request-body memory held at once over all calls in flight; a call that would
    /// pass it gets 503 with Retry-After at once (bounds memory under a flood of large
    /// bodies). A hook call's body counts its bytes as they arrive, and 8 times them and
    /// 16 KiB for its parsed resources once its parse starts (the parse is held to
    /// that); a feedback body its bytes and its JSON tree's cost. At least 9 times
    /// --max-body and 16 KiB.
    #[arg(long, env = "DVT_CDS_MAX_INFLIGHT_BODY", default_value = "128MiB", value_parser = parse_size)]
    max_inflight_body: usize,
    /// Budget for a whole hook call (e.g. 2.5s, 800ms).
    #[arg(long, env = "DVT_CDS_DEADLINE", default_value = "2.5s", value_parser = parse_duration)]
    deadline: Duration,
    /// Load the mappings from this directory instead of the embedded ones.
    #[arg(long, env = "DVT_CDS_MAPPINGS")]
    mappings: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "DVT_CDS_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Send OpenTelemetry traces to this OTLP/HTTP collector (base URL, e.g.
    /// http://otel-collector:4318; spans go to URL/v1/traces, protobuf). Off unless this
    /// or OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. The
    /// flag on the command line wins; the standard OTEL_* variables win over its
    /// variable DVT_CDS_OTLP_ENDPOINT. OTEL_SERVICE_NAME (default dvt-cds), OTEL_BSP_*,
    /// OTEL_TRACES_SAMPLER and OTEL_EXPORTER_OTLP_HEADERS are honoured.
    #[arg(long, env = "DVT_CDS_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Timeout of each FHIR request.
    #[arg(long, env = "DVT_CDS_FHIR_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    fhir_timeout: Duration,
    /// Most pages followed per FHIR search.
    #[arg(long, env = "DVT_CDS_FHIR_MAX_PAGES", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    fhir_max_pages: u16,
    /// A FHIR server (base URL, e.g. https://ehr.example/fhir) every client may name in
    /// fhirServer, besides its issuer's fhir_servers (repeatable; the variable takes a
    /// comma-separated list). May be http:// or on a private address: listing is the
    /// operator's decision.
    #[arg(long = "fhir-server", env = "DVT_CDS_FHIR_SERVER", value_delimiter = ',', value_parser = parse_fhir_server)]
    fhir_servers: Vec<ServerBase>,
    /// Longest lifetime (exp - iat) of a client's JWT; 60 s of leeway is added (e.g. 5m,
    /// 300s).
    #[arg(long, env = "DVT_CDS_MAX_TOKEN_LIFETIME", default_value = "5m", value_parser = parse_duration)]
    max_token_lifetime: Duration,
    /// Live FHIR data one hook call may read, over all its queries and pages: response
    /// bytes plus what they cost once parsed. Past it on a query's first page the call
    /// gets 412; later pages are left unread, with a note.
    #[arg(long, env = "DVT_CDS_FHIR_MAX_BYTES", default_value = "16MiB", value_parser = parse_size)]
    fhir_max_bytes: usize,
    /// Most FHIR requests in flight at once over all calls; a request waits for a free
    /// slot within its call's deadline.
    #[arg(long, env = "DVT_CDS_FHIR_MAX_CONCURRENT", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    fhir_max_concurrent: u16,
    /// Live FHIR data held at once by all calls in flight (bytes plus parsed cost, as
    /// --fhir-max-bytes counts them); a call whose data does not fit gets 503 with
    /// Retry-After. At least --fhir-max-bytes.
    #[arg(long, env = "DVT_CDS_FHIR_MAX_INFLIGHT_BYTES", default_value = "256MiB", value_parser = parse_size)]
    fhir_max_inflight_bytes: usize,
    /// Query fhirServer without fhirAuthorization (test sandboxes; implied by --dev).
    #[arg(long, env = "DVT_CDS_FHIR_ALLOW_ANONYMOUS", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    fhir_allow_anonymous: bool,
    /// Tests only, with --dev: assess every call at this time (RFC 3339) instead of the
    /// clock, so a served answer can be compared with `evaluate --now`. Hidden from
    /// --help and without a variable: a deployed service never has it.
    #[arg(long, hide = true, value_parser = parse_now)]
    now: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Cards shown at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_now)]
    since: chrono::DateTime<chrono::Utc>,
    /// Cards shown before this time (RFC 3339); default: now.
    #[arg(long, value_parser = parse_now)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long, value_enum, default_value = "text")]
    format: crate::store::report::ReportFormat,
    #[arg(
        long,
        env = "DVT_CDS_FEEDBACK_DB",
        default_value = "dvt-cds-feedback.sqlite3"
    )]
    feedback_db: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

/// `--store` and its pool settings (`serve`; `--store` alone for `feedback export`).
#[derive(Debug, Args)]
struct StoreArgs {
    /// PostgreSQL for feedback and the token replay ledger, shared by replicas
    /// (postgres://user:password@host:port/database). Not with --feedback-db.
    #[arg(
        long,
        env = "DVT_CDS_STORE",
        hide_env_values = true,
        conflicts_with = "feedback_db"
    )]
    store: Option<String>,
    /// Most PostgreSQL connections this process holds.
    #[arg(long, env = "DVT_CDS_STORE_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    store_pool_size: u16,
    /// Longest wait to connect to PostgreSQL, or for a free pooled connection.
    #[arg(long, env = "DVT_CDS_STORE_CONNECT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    store_connect_timeout: Duration,
    /// PostgreSQL cancels a statement running longer (statement_timeout).
    #[arg(long, env = "DVT_CDS_STORE_STATEMENT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    store_statement_timeout: Duration,
    /// Longest a token check waits for the shared replay ledger before this process's
    /// own cache decides alone (it is on every authenticated call's path).
    #[arg(long, env = "DVT_CDS_STORE_REPLAY_TIMEOUT", default_value = "250ms", value_parser = parse_duration)]
    store_replay_timeout: Duration,
}

impl StoreArgs {
    fn config(&self, feedback_db: PathBuf) -> StoreConfig {
        match &self.store {
            None => StoreConfig::Sqlite(feedback_db),
            Some(url) => StoreConfig::Postgres(PgSettings {
                url: url.clone(),
                pool_size: usize::from(self.store_pool_size),
                connect_timeout: self.store_connect_timeout,
                statement_timeout: self.store_statement_timeout,
                replay_timeout: self.store_replay_timeout,
            }),
        }
    }
}

/// The same variables as `serve`, so the check finds the service it runs beside.
#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// The service's --listen (0.0.0.0 and [::] are asked on loopback).
    #[arg(long, env = "DVT_CDS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The service's --admin-listen: when set, /readyz is asked there.
    #[arg(long, env = "DVT_CDS_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Longest wait for the answer.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
struct EvaluateArgs {
    /// A FHIR Bundle holding the patient and their resources.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// A CDS Hooks request with prefetch.
    #[arg(long)]
    request: Option<PathBuf>,
    /// Which patient, when the bundle holds several.
    #[arg(long)]
    patient: Option<String>,
    /// The hook. With --request: replaces the request's own hook (default: the
    /// request's). With --bundle: default patient-view.
    #[arg(long, value_parser = parse_hook)]
    hook: Option<Hook>,
    /// "Now" for the assessment (RFC 3339); default: the current time.
    #[arg(long, value_parser = parse_now)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Load the mappings from this directory instead of the embedded ones.
    #[arg(long)]
    mappings: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// A directory of patient Bundles (*.json, one patient each) or of Bulk Data NDJSON
    /// files (*.ndjson, one resource type each).
    dir: PathBuf,
    /// The hook each patient is assessed under: patient-view or encounter-start (order
    /// hooks need drafted orders and are refused).
    #[arg(long, default_value = "patient-view", value_parser = parse_hook)]
    hook: Hook,
    /// "Now" for the assessment (RFC 3339); default: the current time.
    #[arg(long, value_parser = parse_now)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Output: a text summary, the summary as JSON, or one csv row per patient.
    #[arg(long, value_enum, default_value = "text")]
    format: crate::audit::AuditFormat,
    /// Secret of the csv's pseudonymous ids (HMAC-SHA256 of the patient id); unset: a
    /// random secret for this run (ids then link within the run only).
    #[arg(long, env = "DVT_CDS_ID_SECRET", hide_env_values = true)]
    id_secret: Option<String>,
    /// Load the mappings from this directory instead of the embedded ones.
    #[arg(long)]
    mappings: Option<PathBuf>,
    /// Patients assessed at once (default: the number of cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

/// `dvt-cds --version`: the crate's version and the embedded mapping set's id and
/// version (the clinical content has its own version: CHANGELOG.md), e.g. `dvt-cds 0.1.0
/// (mappings dvt-cds-default 2.0.0)`.
pub fn version() -> String {
    match crate::mappings::embedded_identity() {
        Some((id, version)) => format!("{} (mappings {id} {version})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The command line, with [`version`] as `--version` says it. Built once per process.
fn command() -> clap::Command {
    Cli::command().version(version().leak() as &'static str)
}

pub fn run() -> ExitCode {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Serve(args) => {
            // Whether --otlp-endpoint was written or came from its variable decides
            // whether the standard OTEL_* variables win over it (`telemetry`).
            let otlp_source = matches
                .subcommand_matches("serve")
                .and_then(|m| m.value_source("otlp_endpoint"));
            let otlp_source = match otlp_source {
                Some(ValueSource::CommandLine) => FlagSource::CommandLine,
                _ => FlagSource::Environment,
            };
            serve(*args, otlp_source)
        }
        Command::Healthcheck(args) => healthcheck(&args),
        Command::Evaluate(a) => {
            let args = crate::evaluate::EvaluateArgs {
                bundle: a.bundle,
                request: a.request,
                patient: a.patient,
                hook: a.hook,
                now: a.now,
                mappings_dir: a.mappings,
            };
            match crate::evaluate::evaluate_command(&args) {
                Ok(v) => print_or_fail(serde_json::to_string_pretty(&v).map_err(|e| e.to_string())),
                Err(e) => fail(&e),
            }
        }
        Command::Audit(a) => audit(a),
        Command::Report(a) => report(a),
        Command::Mappings {
            command: MappingsCommand::Check { dir },
        } => {
            print_or_fail(crate::mappings::check_command(dir.as_deref()).map_err(|e| e.to_string()))
        }
        Command::Feedback {
            command: FeedbackCommand::Export { feedback_db, store },
        } => export(store.config(feedback_db)),
    }
}

fn print_or_fail(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(s) => {
            // A closed pipe (`| head`) is the reader's choice, not a failure to report.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{s}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(&format!("writing the output: {e}")),
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("dvt-cds: {msg}");
    ExitCode::from(2)
}

fn audit(a: AuditArgs) -> ExitCode {
    let args = crate::audit::AuditArgs {
        dir: a.dir,
        hook: a.hook,
        now: a.now.unwrap_or_else(chrono::Utc::now),
        format: a.format,
        id_secret: a.id_secret,
        mappings_dir: a.mappings,
        jobs: a.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        ),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match crate::audit::audit_command(&args, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure to report.
        Err(crate::audit::AuditError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn serve(a: ServeArgs, otlp_source: FlagSource) -> ExitCode {
    let traces = match crate::telemetry::traces_endpoint(
        a.otlp_endpoint.as_deref().map(|e| (e, otlp_source)),
        |name| std::env::var(name).ok(),
    ) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    // Before the log: the traces exporter sends from this runtime.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let telemetry = match crate::telemetry::init(a.log_format, traces.as_ref(), runtime.handle()) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    if let Some(t) = &traces {
        // The URL without any user or password it may carry.
        tracing::info!(
            endpoint = %format!("{}{}", t.url.origin().ascii_serialization(), t.url.path()),
            from = t.from,
            "traces: OpenTelemetry spans are sent over OTLP/HTTP"
        );
    }
    let code = runtime.block_on(async {
        let code = serve_on_runtime(a).await;
        // The spans of the last calls, then the process ends.
        telemetry.shutdown().await;
        code
    });
    // Tasks still blocked (a collector that never answers) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn serve_on_runtime(a: ServeArgs) -> ExitCode {
    let id_secret = match a.id_secret.as_deref().map(IdSecret::from_text).transpose() {
        Ok(s) => s,
        Err(e) => return fail(&format!("--id-secret: {e}")),
    };
    let config = ServeConfig {
        listen: a.listen,
        admin_listen: a.admin_listen,
        public_url: a.public_url,
        auth_config: a.auth_config,
        dev: a.dev,
        store: a.store.config(a.feedback_db),
        id_secret,
        cors_origins: a.cors_origins,
        max_body: a.max_body,
        header_timeout: a.header_timeout,
        body_timeout: a.body_timeout,
        max_inflight_body: a.max_inflight_body,
        deadline: a.deadline,
        mappings_dir: a.mappings,
        fhir: FhirSettings {
            allow_anonymous: a.fhir_allow_anonymous || a.dev,
            query_timeout: a.fhir_timeout,
            max_pages: usize::from(a.fhir_max_pages),
            egress: EgressPolicy {
                dev: a.dev,
                servers: a.fhir_servers,
            },
            max_call_bytes: a.fhir_max_bytes,
            max_concurrent: usize::from(a.fhir_max_concurrent),
            pool: LiveDataPool::new(a.fhir_max_inflight_bytes),
            ..FhirSettings::default()
        },
        max_token_lifetime: a.max_token_lifetime,
        fixed_now: a.now,
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => return fail(&e),
    };
    // The lines black-box tests and scripts wait for (stdout; logs go to stderr):
    // the service first, then the admin listener when there is one.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "dvt-cds listening on http://{}", app.local_addr());
        if let Some(admin) = app.admin_addr() {
            let _ = writeln!(out, "dvt-cds admin listening on http://{admin}");
        }
        let _ = out.flush();
    }
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("server error: {e}")),
    }
}

/// Exit 0 when `/readyz` answers 200; otherwise 1 (what Docker's HEALTHCHECK expects),
/// with one line saying why.
fn healthcheck(a: &HealthcheckArgs) -> ExitCode {
    let unhealthy = |why: &str| {
        eprintln!("dvt-cds healthcheck: {why}");
        ExitCode::from(1)
    };
    let url = match readyz_url(a.listen, a.admin_listen) {
        Ok(u) => u,
        Err(e) => return unhealthy(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return unhealthy(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(ask_ready(&url, a.timeout)) {
        Ok(()) => {
            println!("dvt-cds healthcheck: ready ({url})");
            ExitCode::SUCCESS
        }
        Err(why) => unhealthy(&format!("{url}: {why}")),
    }
}

/// The `/readyz` URL of a service run with these settings: on the admin listener when
/// there is one; an unspecified address (`0.0.0.0`, `[::]`) is asked on loopback.
fn readyz_url(listen: SocketAddr, admin_listen: Option<SocketAddr>) -> Result<String, String> {
    let mut addr = admin_listen.unwrap_or(listen);
    if addr.port() == 0 {
        return Err(format!(
            "{addr}: port 0 (any free port) cannot be asked; set the port the service \
             listens on (--listen / --admin-listen or their variables)"
        ));
    }
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    Ok(format!("http://{addr}/readyz"))
}

/// GET `url`: `Ok` on 200, else the reason in one line (the answer's first issue when
/// it is an OperationOutcome).
async fn ask_ready(url: &str, timeout: Duration) -> Result<(), String> {
    // No proxy: a proxy variable in the container must not redirect a loopback probe.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {} ms", timeout.as_millis())
        } else {
            // reqwest's own message only says "error sending request": the cause is
            // at the end of the chain (e.g. "Connection refused").
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("cannot connect: {cause}")
        }
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::OK {
        return Ok(());
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let issue = body["issue"][0]["diagnostics"].as_str().unwrap_or("");
    let line: String = format!("HTTP {status} {issue}")
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    Err(line)
}

/// `f` over the store of `config` (an SQLite file must exist: reading never creates one).
fn with_store<T>(
    config: StoreConfig,
    f: impl AsyncFnOnce(&dyn crate::store::Store) -> Result<T, String>,
) -> Result<T, String> {
    if let StoreConfig::Sqlite(path) = &config
        && !path.exists()
    {
        return Err(format!("--feedback-db {}: no such file", path.display()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let opened = config.open().await?;
        f(opened.store.as_ref()).await
    })
}

fn report(a: ReportArgs) -> ExitCode {
    let until = a.until.unwrap_or_else(chrono::Utc::now);
    let since = a.since;
    let rows = with_store(a.store.config(a.feedback_db), async |store| {
        store
            .report_rows(since, until)
            .await
            .map_err(|e| e.to_string())
    });
    match rows {
        Ok(rows) => {
            let summary = crate::store::report::summarise(&rows.cards, &rows.feedback);
            let text = crate::store::report::render(&summary, a.format);
            print_or_fail(Ok(text.trim_end().to_string()))
        }
        Err(e) => fail(&e),
    }
}

fn export(config: StoreConfig) -> ExitCode {
    let stored = with_store(config, async |store| {
        store.export().await.map_err(|e| e.to_string())
    });
    let stored = match stored {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = stored
        .iter()
        .try_for_each(|f| {
            serde_json::to_writer(&mut out, f)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("writing: {e}")),
    }
}

fn parse_public_url(s: &str) -> Result<url::Url, String> {
    let u =
        url::Url::parse(s).map_err(|e| format!("{e}: expected e.g. https://cds.example.org"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err("expected an http(s) URL such as https://cds.example.org".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("expected a base URL without ?query or #fragment".into());
    }
    Ok(u)
}

fn parse_fhir_server(s: &str) -> Result<ServerBase, String> {
    ServerBase::parse(s)
}

fn parse_hook(s: &str) -> Result<Hook, String> {
    Hook::from_wire(s).ok_or_else(|| {
        "expected one of patient-view, encounter-start, order-select, order-sign".to_string()
    })
}

fn parse_now(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}: expected RFC 3339, e.g. 2025-03-01T09:30:00Z"))
}

/// `2.5s`, `800ms`, `5m`, `1h`, `2` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\": expected a duration such as 2.5s, 800ms or 5m"))?;
    let secs = v * scale;
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        return Err(format!(
            "\"{s}\": expected a duration above 0 and at most 1 hour"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `4MiB`, `512KiB`, `1MB`, `1000` (bytes).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let units: [(&str, u64); 6] = [
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("KB", 1000),
        ("MB", 1_000_000),
        ("B", 1),
    ];
    let (num, mult) = units
        .iter()
        .find_map(|(u, m)| t.strip_suffix(u).map(|n| (n.trim(), *m)))
        .unwrap_or((t, 1));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("\"{s}\": expected a size such as 4MiB, 512KiB or 1000000"))?;
    let bytes = n
        .checked_mul(mult)
        .filter(|b| *b > 0 && *b <= 1 << 30)
        .ok_or_else(|| format!("\"{s}\": expected a size above 0 and at most 1GiB"))?;
    usize::try_from(bytes).map_err(|_| format!("\"{s}\": too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("800ms").unwrap(), Duration::from_millis(800));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("61m").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("-1").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn healthcheck_asks_readyz_on_the_admin_listener_or_loopback() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let url = |l: &str, a: Option<&str>| readyz_url(addr(l), a.map(addr));
        assert_eq!(
            url("127.0.0.1:8080", None).unwrap(),
            "http://127.0.0.1:8080/readyz"
        );
        assert_eq!(
            url("0.0.0.0:8080", None).unwrap(),
            "http://127.0.0.1:8080/readyz"
        );
        assert_eq!(url("[::]:8080", None).unwrap(), "http://[::1]:8080/readyz");
        assert_eq!(
            url("0.0.0.0:8080", Some("0.0.0.0:9090")).unwrap(),
            "http://127.0.0.1:9090/readyz"
        );
        assert_eq!(
            url("0.0.0.0:8080", Some("10.0.0.7:9090")).unwrap(),
            "http://10.0.0.7:9090/readyz"
        );
        assert!(url("127.0.0.1:0", None).unwrap_err().contains("port 0"));
    }

    #[test]
    fn command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn version_names_the_crate_and_the_embedded_mapping_set() {
        let e = command()
            .try_get_matches_from(["dvt-cds", "--version"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(
            e.to_string(),
            format!(
                "dvt-cds {} (mappings dvt-cds-default 2.0.0)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    /// Whether `--otlp-endpoint` was written decides the precedence (`telemetry`): clap
    /// must tell the command line from the variable.
    #[test]
    fn the_otlp_flags_source_is_known() {
        let source = |args: &[&str]| {
            let m = command().try_get_matches_from(args).unwrap();
            m.subcommand_matches("serve")
                .unwrap()
                .value_source("otlp_endpoint")
        };
        assert_eq!(
            source(&["dvt-cds", "serve", "--otlp-endpoint", "http://c:4318"]),
            Some(ValueSource::CommandLine)
        );
        assert_eq!(source(&["dvt-cds", "serve"]), None);
    }
}
