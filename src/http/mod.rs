//! The HTTP edge: the axum router, client authentication (JWT), CORS, errors as
//! OperationOutcome, metrics, request ids, the one log line per request and its server
//! span (`trace`).
//!
//! - [`Application`]: build (load, open, bind), then `run_until_stopped` (graceful
//!   shutdown on SIGTERM / Ctrl-C).
//! - [`router`]: the routes over an [`AppState`] (all, or split between the service and
//!   the `--admin-listen` listener), for in-process tests.

pub mod auth;
pub mod budget;
pub mod error;
mod handlers;
pub mod metrics;
pub mod process;
mod trace;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::fhir::{FhirSettings, FhirSource, HttpFhirSource};
use crate::mappings::Mappings;
use crate::store::card_log::DRAIN_WITHIN;
use crate::store::{CardLog, CardShown, Store, StoreConfig};
use auth::Authenticator;
pub use budget::{BodyBudget, BodyPermit, Refused};
use error::{ApiError, ErrorDetail};
use metrics::Metrics;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything `serve` is configured with (flags and environment, see `cli`).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `None`: on `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// External base URL; `None`: `http://<bound address>`.
    pub public_url: Option<url::Url>,
    pub auth_config: Option<PathBuf>,
    pub dev: bool,
    /// Where feedback (and, on PostgreSQL, the replay ledger) lives.
    pub store: StoreConfig,
    /// Site secret of the card log's keyed patient hash (`--id-secret`); `None`: the
    /// card log holds no patient hash.
    pub id_secret: Option<crate::audit::pseudonym::IdSecret>,
    pub cors_origins: Vec<String>,
    pub max_body: usize,
    /// Time allowed for a request head to arrive (and for an idle keep-alive connection).
    pub header_timeout: Duration,
    /// Time allowed for a request body to arrive.
    pub body_timeout: Duration,
    /// Budget of memory held at once by the bodies of all calls, each counted as its
    /// bytes plus its parsed cost (a hook body: `resource::allowance_for` its length,
    /// from its parse; a feedback body: its tree's cost, `json_cost`) (>= 9 times
    /// `max_body` and 16 KiB).
    pub max_inflight_body: usize,
    pub deadline: Duration,
    pub mappings_dir: Option<PathBuf>,
    pub fhir: FhirSettings,
    /// Longest client token lifetime (`exp - iat`) accepted, plus the leeway.
    pub max_token_lifetime: Duration,
    /// A fixed "now" for every call instead of the clock (`serve --dev --now`, for tests
    /// that compare the service with `dvt-cds evaluate --now`). Refused without `dev`.
    pub fixed_now: Option<chrono::DateTime<chrono::Utc>>,
}

/// Shared state of every request.
pub struct App {
    pub mappings: Arc<Mappings>,
    pub fhir: Arc<dyn FhirSource>,
    pub fhir_settings: FhirSettings,
    pub store: Arc<dyn Store>,
    /// Every card returned, queued for the store (`store::card_log`).
    pub card_log: Arc<CardLog>,
    /// `None` only with `--dev` and no `--auth-config`.
    pub auth: Option<Arc<Authenticator>>,
    pub metrics: Metrics,
    /// Without a trailing slash; `aud` is this plus the route.
    pub public_url: String,
    pub max_body: usize,
    pub body_timeout: Duration,
    /// Request bodies (bytes and parsed cost) held by calls in flight, in KiB permits.
    pub body_budget: BodyBudget,
    pub deadline: Duration,
    pub cors: CorsPolicy,
    /// "now" of every call when fixed ([`ServeConfig::fixed_now`]); else the clock.
    pub fixed_now: Option<chrono::DateTime<chrono::Utc>>,
}

impl App {
    /// Log one card returned by a hook call (queued: never waits; see
    /// `store::card_log`). `patient_hash`: from [`CardLog::patient_hash`].
    pub fn card_shown(
        &self,
        hook: crate::cds_hooks::Hook,
        card: uuid::Uuid,
        category: &str,
        indicator: crate::cds_hooks::Indicator,
        issuer: Option<&str>,
        patient_hash: Option<String>,
    ) {
        self.card_log.log(CardShown {
            card,
            service_id: hook.service_id().to_string(),
            hook: hook.as_str().to_string(),
            category: category.to_string(),
            indicator: indicator.as_str().to_string(),
            mapping_version: self.mappings.version.clone(),
            issuer: issuer.map(str::to_string),
            shown_at: chrono::Utc::now(),
            patient_hash,
        });
    }
}

#[derive(Debug, Clone)]
pub enum CorsPolicy {
    Any,
    List(Vec<HeaderValue>),
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl AppState {
    /// Verify the client's JWT for `route` (spec "Trusting CDS Clients"). `None` in dev
    /// mode without an auth config.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        route: &str,
        log: &RequestLog,
    ) -> Result<Option<auth::Verified>, ApiError> {
        let Some(auth) = &self.0.auth else {
            return Ok(None);
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| {
                ApiError::Unauthorized("check=authorization header missing or not Bearer".into())
            })?;
        let audience = format!("{}{}", self.0.public_url, route);
        match auth.verify(token, &audience).await {
            Ok(v) => {
                log.set_client(&v.iss);
                Ok(Some(v))
            }
            Err(f) => Err(ApiError::Unauthorized(f.to_string())),
        }
    }
}

/// Per-request facts the handlers add to the request's log line. Never patient data.
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<LogFields>>);

#[derive(Default)]
struct LogFields {
    service: Option<&'static str>,
    hook_instance: Option<String>,
    client: Option<String>,
    cards: Option<usize>,
    /// The first card's indicator (a call returns at most one card); for the span.
    indicator: Option<&'static str>,
    stored: Option<usize>,
}

impl RequestLog {
    fn with<R>(&self, f: impl FnOnce(&mut LogFields) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
    fn set_service(&self, s: &'static str) {
        self.with(|l| l.service = Some(s));
    }
    fn set_hook_instance(&self, s: &str) {
        // Client-chosen: keep it short in the log.
        self.with(|l| l.hook_instance = Some(s.chars().take(100).collect()));
    }
    fn set_client(&self, iss: &str) {
        self.with(|l| l.client = Some(iss.chars().take(200).collect()));
    }
    fn set_cards(&self, cards: &[crate::cds_hooks::Card]) {
        self.with(|l| {
            l.cards = Some(cards.len());
            l.indicator = cards.first().map(|c| c.indicator.as_str());
        });
    }
    fn set_stored(&self, n: usize) {
        self.with(|l| l.stored = Some(n));
    }
}

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// All of them, on one listener (no `--admin-listen`).
    All,
    /// The CDS Hooks endpoints only (the main listener, with `--admin-listen`).
    Service,
    /// `/healthz`, `/healthz/store`, `/readyz` and `/metrics` only (the `--admin-listen`
    /// listener).
    /// They carry no authentication, hence the option to keep them off the public port.
    Admin,
}

/// The routes of `endpoints`. CORS answers preflight on every route before auth; the
/// outermost layer sets the request id, times the request, records metrics and logs one
/// line. A path of the other listener's endpoints answers 404.
pub fn router(state: AppState, endpoints: Endpoints) -> Router {
    let cors = match &state.0.cors {
        CorsPolicy::Any => AllowOrigin::any(),
        CorsPolicy::List(list) => AllowOrigin::list(list.clone()),
    };
    let cors = CorsLayer::new()
        .allow_origin(cors)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            X_REQUEST_ID.clone(),
        ])
        .expose_headers([X_REQUEST_ID.clone()])
        .max_age(Duration::from_secs(600));
    let service = || {
        Router::new()
            .route("/cds-services", get(handlers::list_services))
            .route("/cds-services/{id}", post(handlers::call_service))
            .route(
                "/cds-services/{id}/feedback",
                post(handlers::record_feedback),
            )
    };
    let admin = || {
        Router::new()
            .route("/healthz", get(handlers::healthz))
            .route("/readyz", get(handlers::readyz))
            .route("/healthz/store", get(handlers::store_health))
            .route("/metrics", get(handlers::metrics))
    };
    let routes = match endpoints {
        Endpoints::All => service().merge(admin()),
        Endpoints::Service => service(),
        Endpoints::Admin => admin(),
    };
    routes
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// The route template of a path, for logs and metric labels (bounded values; the raw
/// path is never logged).
fn route_of(path: &str) -> (&'static str, Option<&'static str>) {
    let service = |id: &str| crate::cds_hooks::Hook::from_service_id(id).map(|h| h.service_id());
    match path.trim_end_matches('/') {
        "/cds-services" => ("/cds-services", None),
        "/healthz" => ("/healthz", None),
        "/readyz" => ("/readyz", None),
        "/healthz/store" => ("/healthz/store", None),
        "/metrics" => ("/metrics", None),
        p => match p.strip_prefix("/cds-services/") {
            Some(rest) => match rest.split_once('/') {
                None => ("/cds-services/{id}", service(rest)),
                Some((id, "feedback")) => ("/cds-services/{id}/feedback", service(id)),
                _ => ("other", None),
            },
            None => ("other", None),
        },
    }
}

/// A client's `x-request-id` is kept when it is short and plain; otherwise we make one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&X_REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 128
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a uuid is a header value")
        })
}

async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(req.headers());
    req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    let log = RequestLog::default();
    req.extensions_mut().insert(log.clone());
    let method = req.method().clone();
    let (route, path_service) = route_of(req.uri().path());
    let span = trace::server_span(&method, route, req.headers(), &id);

    let mut resp = next.run(req).instrument(span.clone()).await;

    resp.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status();
    let fields = log.with(|l| {
        (
            l.service,
            l.hook_instance.take(),
            l.client.take(),
            l.cards,
            l.indicator,
            l.stored,
        )
    });
    let (service, hook_instance, client, cards, indicator, stored) = fields;
    let service = service.or(path_service).unwrap_or("-");
    state
        .0
        .metrics
        .request(route, service, status.as_u16(), secs);
    trace::record_outcome(
        &span,
        trace::Outcome {
            status: status.as_u16(),
            service,
            hook_instance: hook_instance.as_deref(),
            client: client.as_deref(),
            cards,
            indicator,
        },
    );
    // The log line names the trace, so a log search leads to the trace and back.
    let trace_id = trace::trace_id(&span);
    let error = resp.extensions().get::<ErrorDetail>().map(|e| e.0.as_str());
    let request_id = id.to_str().unwrap_or("-");
    let duration_ms = (secs * 1000.0 * 10.0).round() / 10.0;
    if status.is_server_error() {
        tracing::error!(request_id, method = %method, route, service, status = status.as_u16(), duration_ms,
            hook_instance, client, cards, stored, trace_id, error, "request");
    } else if status.is_client_error() {
        tracing::warn!(request_id, method = %method, route, service, status = status.as_u16(), duration_ms,
            hook_instance, client, cards, stored, trace_id, error, "request");
    } else {
        tracing::info!(request_id, method = %method, route, service, status = status.as_u16(), duration_ms,
            hook_instance, client, cards, stored, trace_id, "request");
    }
    resp
}

/// A bound socket and the routes it serves.
struct Listener {
    tcp: tokio::net::TcpListener,
    addr: SocketAddr,
    router: Router,
}

/// Bind `addr` (given as `flag`); the error names the flag.
async fn bind(
    addr: SocketAddr,
    flag: &str,
) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{flag} {addr}: {e}"))?;
    let addr = tcp.local_addr().map_err(|e| e.to_string())?;
    Ok((tcp, addr))
}

/// The service, built and bound, ready to run.
pub struct Application {
    service: Listener,
    /// `--admin-listen`: `/healthz`, `/readyz`, `/metrics` there and not on `service`.
    admin: Option<Listener>,
    header_timeout: Duration,
    /// Drained after the last call ends.
    card_log: Arc<CardLog>,
}

/// With client authentication, a token's `aud` must be the URL the EHR calls plus the
/// route. By default that URL is taken as `http://<listen address>`: right on loopback
/// (a local EHR or a proxy on the same host), but on any other address (`0.0.0.0` in a
/// container) no EHR calls that URL, and every call would get 401. Refuse to start then.
pub fn check_public_url(
    listen: SocketAddr,
    public_url: Option<&url::Url>,
    authenticated: bool,
) -> Result<(), String> {
    if !authenticated || public_url.is_some() || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing to start: --auth-config without --public-url on the non-loopback address \
         {listen}. A token's aud must be the URL the EHR calls plus the route, and without \
         --public-url that URL would be taken as http://{listen}, which no EHR calls: every \
         call would be refused (401). Pass --public-url with the external base URL, e.g. \
         --public-url https://cds.example.org (or DVT_CDS_PUBLIC_URL), or listen on a \
         loopback address such as 127.0.0.1."
    ))
}

/// Refuse the modes a service that real EHRs call must not run in: a fixed clock
/// without `--dev`, no client authentication without `--dev`, and (see
/// [`check_public_url`]) an `aud` that no EHR could send.
fn check_modes(config: &ServeConfig) -> Result<(), String> {
    if config.fixed_now.is_some() && !config.dev {
        return Err(
            "--now (a fixed clock, for tests) is only allowed with --dev: a service \
             that real EHRs call must use the real time"
                .into(),
        );
    }
    if !config.dev && config.auth_config.is_none() {
        return Err(NO_AUTH_MESSAGE.to_string());
    }
    check_public_url(
        config.listen,
        config.public_url.as_ref(),
        config.auth_config.is_some(),
    )
}

/// The mappings of `--mappings-dir`, or the embedded ones.
fn load_mappings(dir: Option<&std::path::Path>) -> Result<Mappings, String> {
    match dir {
        Some(dir) => Mappings::load_dir(dir).map_err(|e| e.to_string()),
        None => Mappings::embedded().map_err(|e| e.to_string()),
    }
}

/// The client authenticator of `--auth-config` (`None` without one), sharing the
/// store's replay ledger when it has one, its JWKS refresh started.
fn load_auth(
    config: &ServeConfig,
    opened: &crate::store::Opened,
) -> Result<Option<Arc<Authenticator>>, String> {
    let Some(path) = &config.auth_config else {
        return Ok(None);
    };
    let options = auth::AuthOptions {
        dev: config.dev,
        max_token_lifetime: config.max_token_lifetime,
    };
    let mut auth = Authenticator::load(path, &options)?;
    if let Some(ledger) = &opened.ledger {
        auth.share_replay(ledger.clone());
    }
    // Fetch each jwks_url now, in the background: a JWKS that is down at
    // startup is retried (and logged), not fatal.
    auth.start_background_refresh();
    Ok(Some(Arc::new(auth)))
}

/// Any origin with `--dev`; else the `--cors-origin` list, each checked.
fn cors_policy(config: &ServeConfig) -> Result<CorsPolicy, String> {
    if config.dev {
        return Ok(CorsPolicy::Any);
    }
    let mut list = Vec::new();
    for o in &config.cors_origins {
        let v = HeaderValue::from_str(o.trim_end_matches('/'))
            .map_err(|_| format!("--cors-origin {o}: not a valid origin"))?;
        list.push(v);
    }
    Ok(CorsPolicy::List(list))
}

/// The FHIR settings of the flags, with the date windows of the mappings' model and,
/// with `--dev`, anonymous queries and dev egress allowed.
fn fhir_settings(config: &ServeConfig, mappings: &Mappings) -> FhirSettings {
    let mut fhir_settings = config.fhir.clone();
    fhir_settings.windows = crate::fhir::SearchWindows::from_model(&mappings.model.windows);
    if config.dev {
        fhir_settings.allow_anonymous = true;
        fhir_settings.egress.dev = true;
    }
    fhir_settings
}

/// Refuse memory budgets shared by the calls in flight that are smaller than what one
/// call may use: that call could never be served.
fn check_memory_budgets(config: &ServeConfig) -> Result<(), String> {
    // A hook body takes its bytes and its parsed resources' allowance.
    let largest = config
        .max_body
        .saturating_add(crate::record::resource::allowance_for(config.max_body));
    if config.max_inflight_body < largest {
        return Err(format!(
            "--max-inflight-body ({} bytes) is smaller than what a body of --max-body ({} \
             bytes) takes, its bytes and {} times them once parsed ({largest} bytes): one \
             call of the largest allowed size could never be served",
            config.max_inflight_body,
            config.max_body,
            crate::record::resource::ALLOWANCE_PER_BYTE,
        ));
    }
    if config.fhir.pool.total_kib() < config.fhir.max_call_bytes.div_ceil(1024) {
        return Err(format!(
            "--fhir-max-inflight-bytes ({} KiB) is smaller than --fhir-max-bytes ({} \
             bytes): one call with the most live data allowed could never be served",
            config.fhir.pool.total_kib(),
            config.fhir.max_call_bytes
        ));
    }
    Ok(())
}

/// `--public-url` without its trailing slash, else `http://<bound address>`.
fn public_url(configured: Option<&url::Url>, addr: SocketAddr) -> String {
    match configured {
        Some(u) => u.as_str().trim_end_matches('/').to_string(),
        None => format!("http://{addr}"),
    }
}

/// Log how the service starts: the warnings of `--dev` and `--now`, the FHIR servers
/// it may query, and its addresses, store and mappings.
fn log_startup(
    config: &ServeConfig,
    fhir_settings: &FhirSettings,
    auth: Option<&Authenticator>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    public_url: &str,
) {
    if config.dev {
        tracing::warn!(
            "DEV MODE (--dev): {}any CORS origin, FHIR queries without a token allowed, \
             to loopback IP literals and public FHIR servers. Never use --dev with real \
             patient data.",
            if auth.is_none() {
                "NO client authentication, "
            } else {
                ""
            }
        );
    }
    if let Some(now) = config.fixed_now {
        tracing::warn!(now = %now.to_rfc3339(), "FIXED CLOCK (--now): every call is assessed at this time (tests only)");
    }
    log_fhir_servers(&fhir_settings.egress, auth);
    tracing::info!(
        listen = %addr,
        admin_listen = admin_addr.map(|a| a.to_string()),
        public_url = %public_url,
        issuers = auth.map(|a| a.issuer_count()).unwrap_or(0),
        store = %config.store.describe(),
        mappings = config.mappings_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "embedded".into()),
        deadline_ms = config.deadline.as_millis() as u64,
        "dvt-cds starting"
    );
}

impl Application {
    /// Load mappings and auth, open the feedback store, bind. Every error says what to fix.
    ///
    /// The steps run in this order and the first error ends the build, so which error a
    /// configuration with several faults gets (and whether the store was opened) is fixed.
    pub async fn build(config: ServeConfig) -> Result<Self, String> {
        check_modes(&config)?;
        let mappings = load_mappings(config.mappings_dir.as_deref())?;
        let opened = config.store.open().await?;
        let auth = load_auth(&config, &opened)?;
        let cors = cors_policy(&config)?;
        let fhir_settings = fhir_settings(&config, &mappings);
        check_memory_budgets(&config)?;
        let (service_tcp, addr) = bind(config.listen, "--listen").await?;
        let admin_tcp = match config.admin_listen {
            Some(a) => Some(bind(a, "--admin-listen").await?),
            None => None,
        };
        let public_url = public_url(config.public_url.as_ref(), addr);
        log_startup(
            &config,
            &fhir_settings,
            auth.as_deref(),
            addr,
            admin_tcp.as_ref().map(|(_, a)| *a),
            &public_url,
        );

        let app = App {
            mappings: Arc::new(mappings),
            fhir: Arc::new(HttpFhirSource::new(&fhir_settings)),
            fhir_settings,
            card_log: Arc::new(CardLog::start(opened.store.clone(), config.id_secret)),
            store: opened.store,
            auth,
            metrics: Metrics::default(),
            public_url,
            max_body: config.max_body,
            body_timeout: config.body_timeout,
            body_budget: BodyBudget::new(config.max_inflight_body),
            deadline: config.deadline,
            cors,
            fixed_now: config.fixed_now,
        };
        Ok(Self::serving(
            app,
            (service_tcp, addr),
            admin_tcp,
            config.header_timeout,
        ))
    }

    /// `app` on its bound sockets: with an admin socket, the service socket serves only
    /// the CDS Hooks routes and the admin one only `/healthz`, `/readyz`, `/metrics`.
    fn serving(
        app: App,
        (service_tcp, addr): (tokio::net::TcpListener, SocketAddr),
        admin_tcp: Option<(tokio::net::TcpListener, SocketAddr)>,
        header_timeout: Duration,
    ) -> Application {
        let card_log = app.card_log.clone();
        let state = AppState(Arc::new(app));
        let service_endpoints = match admin_tcp {
            Some(_) => Endpoints::Service,
            None => Endpoints::All,
        };
        let service = Listener {
            tcp: service_tcp,
            addr,
            router: router(state.clone(), service_endpoints),
        };
        let admin = admin_tcp.map(|(tcp, addr)| Listener {
            tcp,
            addr,
            router: router(state, Endpoints::Admin),
        });
        Application {
            service,
            admin,
            header_timeout,
            card_log,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.service.addr
    }

    /// The bound `--admin-listen` address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// Serve until SIGTERM or Ctrl-C; in-flight calls finish first, on both listeners.
    ///
    /// HTTP/1.1 only, with `--header-timeout` (default [`HEADER_READ_TIMEOUT`]) on every
    /// request head (slowloris), on both listeners.
    /// `axum::serve` cannot set that timeout, hence this accept loop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto;

        let Application {
            service,
            admin,
            header_timeout,
            card_log,
        } = self;
        // HTTP/1 only: the header timer then runs from the first byte a connection
        // could send (auto-detection of HTTP/2 would wait for it without a bound).
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let stop = shutdown_signal();
        tokio::pin!(stop);
        // Without --admin-listen, the admin branch never completes.
        let admin_ref = admin.as_ref();
        let admin_accept = move || async move {
            match admin_ref {
                Some(a) => (a.tcp.accept().await, &a.router),
                None => std::future::pending().await,
            }
        };
        loop {
            let (accepted, router) = tokio::select! {
                accepted = service.tcp.accept() => (accepted, &service.router),
                accepted = admin_accept() => accepted,
                () = &mut stop => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // EMFILE and the like: retrying at once would spin; calls in flight
                    // free descriptors as they end (what axum::serve does too).
                    tracing::error!(error = %e, "accept failed: pausing 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut stop => break,
                    }
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                // Errors here are the client's (reset, header timeout): nothing to log.
                let _ = conn.await;
            });
        }
        drop(service);
        drop(admin);
        graceful.shutdown().await;
        card_log.drain(DRAIN_WITHIN).await;
        tracing::info!("dvt-cds stopped");
        Ok(())
    }
}

/// Say once at startup what the FHIR server allowlists mean: listed servers on plain
/// http or on internal addresses (the operator's decision, made visible), and issuers
/// whose calls can only be answered from prefetch.
fn log_fhir_servers(egress: &crate::fhir::EgressPolicy, auth: Option<&Authenticator>) {
    let issuers = auth.into_iter().flat_map(Authenticator::fhir_servers);
    for (iss, servers) in issuers {
        for server in servers {
            if let Some(why) = server.notice() {
                tracing::warn!(issuer = iss, fhir_server = %server, "listed FHIR server: {why}");
            }
        }
        if servers.is_empty() && egress.servers.is_empty() && !egress.dev {
            tracing::warn!(
                issuer = iss,
                "issuer lists no fhir_servers (and no --fhir-server is given): its calls can \
                 only be answered from prefetch"
            );
        }
    }
    for server in &egress.servers {
        if let Some(why) = server.notice() {
            tracing::warn!(fhir_server = %server, "--fhir-server: {why}");
        }
    }
}

/// Default of `--header-timeout`: longest a client may take to send a request head
/// (request line and headers), and longest an idle keep-alive connection is kept. Without it a client dribbling its
/// headers holds a socket and a task forever (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

pub const NO_AUTH_MESSAGE: &str = "refusing to start without client authentication: pass \
    --auth-config FILE (a TOML list of trusted EHR issuers and their JWKS; see README, \
    \"Security\") or, for local development only, --dev (no authentication). The same \
    as environment variables: DVT_CDS_AUTH_CONFIG or DVT_CDS_DEV=true.";

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal: finishing in-flight calls");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_needs_public_url_unless_listening_on_loopback() {
        let url = url::Url::parse("https://cds.example.org").unwrap();
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        for (listen, public_url, authenticated, ok) in [
            ("0.0.0.0:8080", None, true, false),
            ("[::]:8080", None, true, false),
            ("10.1.2.3:8080", None, true, false),
            ("0.0.0.0:8080", Some(&url), true, true),
            ("127.0.0.1:8080", None, true, true),
            ("[::1]:8080", None, true, true),
            ("127.0.0.2:0", None, true, true),
            // --dev without --auth-config: no token, no aud.
            ("0.0.0.0:8080", None, false, true),
        ] {
            let r = check_public_url(addr(listen), public_url, authenticated);
            assert_eq!(
                r.is_ok(),
                ok,
                "{listen} {public_url:?} {authenticated}: {r:?}"
            );
            if let Err(e) = r {
                assert!(e.contains("--public-url") && e.contains("aud"), "{e}");
            }
        }
    }
}
