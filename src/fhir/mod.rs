//! FHIR data for a hook call: prefetch templates, prefetch resolution and live queries.
//!
//! The pure core never sees HTTP: it receives the resources gathered here, typed
//! ([`crate::record::resource`]): prefetch resources as the request's parser read them,
//! live pages parsed from their bytes straight into the same types.
//!
//! - [`prefetch`] (pure): the prefetch keys, their templates, and what to do with what
//!   the EHR sent for each key.
//! - [`bundle`] (pure): a Bundle's resources, paging links, date windows, whose patient.
//! - [`egress`] (pure): which `fhirServer` a call may name, which `next` links stay on
//!   it, which addresses an unlisted name may resolve to (no SSRF).
//! - [`medication`] (pure): which referenced Medications a call must read live.
//! - [`http`] (I/O): [`HttpFhirSource`], GETs over shared `reqwest::Client`s whose DNS
//!   resolver applies [`egress`]'s address rule.
//! - here: [`gather`], which runs the live queries of one call concurrently under the
//!   call's deadline, then the reads of referenced Medications, through the
//!   [`FhirSource`] trait so tests can inject faults.

pub mod bundle;
pub mod egress;
mod http;
pub mod medication;
pub mod prefetch;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;
use tracing::field::Empty;
use url::Url;

pub use egress::{EgressPolicy, Route, ServerBase};
pub use http::HttpFhirSource;
pub use prefetch::{ContextId, Decision, FetchReason, KeyKind, KeySpec};

use crate::cds_hooks::{Hook, HookRequest, Prefetch};
use crate::record::quality::{DataQualityCode, DataQualityNote};
use crate::record::resource::{self, Field, Resource, ResourceType};

/// Settings for live queries (flags of `dvt-cds serve`).
#[derive(Debug, Clone)]
pub struct FhirSettings {
    /// Allow queries without `fhirAuthorization` (`--dev`, or configured for a sandbox).
    pub allow_anonymous: bool,
    /// Per-query timeout (each HTTP request, each page).
    pub query_timeout: Duration,
    /// Most pages followed per search (the first page included).
    pub max_pages: usize,
    /// `_count` of live searches; `None`: each key's own size (see `prefetch`).
    pub page_size: Option<u32>,
    /// How far back live searches reach, per resource type.
    pub windows: SearchWindows,
    /// Which servers may be queried (`--dev`, `--fhir-server`); the default allows none.
    pub egress: EgressPolicy,
    /// Live data one hook call may read (`--fhir-max-bytes`), over all its keys and
    /// pages: each response's bytes as they arrive, then what it may cost once parsed
    /// ([`resource::allowance_for`] its length; the parse is held to it). Also bounds any
    /// single response.
    pub max_call_bytes: usize,
    /// Most FHIR requests in flight at once over all calls (`--fhir-max-concurrent`).
    pub max_concurrent: usize,
    /// Live data held by all calls in flight at once (`--fhir-max-inflight-bytes`):
    /// bounds the process's memory however many calls read live data together.
    pub pool: LiveDataPool,
}

impl Default for FhirSettings {
    fn default() -> Self {
        FhirSettings {
            allow_anonymous: false,
            query_timeout: Duration::from_millis(2000),
            max_pages: 10,
            page_size: None,
            windows: SearchWindows::default(),
            egress: EgressPolicy::default(),
            max_call_bytes: 16 * 1024 * 1024,
            max_concurrent: 64,
            pool: LiveDataPool::new(256 * 1024 * 1024),
        }
    }
}

/// Date windows (days before now) that narrow live searches, and filter the prefetch
/// the same way. `None`: no narrowing. Each is the longest window of `dvt-model.md` §2
/// that the resource type serves, derived from the loaded mappings
/// ([`SearchWindows::from_model`]) so a site that widens a window in `mappings/` widens
/// the search too; `Default` equals what the shipped mappings give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchWindows {
    /// Pregnancy status evidence ≤ 294 days (also symptoms ≤ 14, vitals ≤ 1,
    /// D-dimer ≤ 3, alternatives ≤ 30).
    pub observations: Option<u32>,
    /// A delivery since the pregnancy evidence (≤ 294 days; surgery and casts ≤ 84,
    /// delivery ≤ 42).
    pub procedures: Option<u32>,
    /// Cancer-treatment encounters Z51.- ≤ 183 days (inpatient stays ≤ 28 days).
    pub encounters: Option<u32>,
    /// Leg-vein ultrasound ordered ≤ 7 days.
    pub service_requests: Option<u32>,
    /// Leg-vein ultrasound done ≤ 7 days.
    pub diagnostic_reports: Option<u32>,
}

impl Default for SearchWindows {
    fn default() -> Self {
        SearchWindows {
            observations: Some(294),
            procedures: Some(294),
            encounters: Some(183),
            service_requests: Some(7),
            diagnostic_reports: Some(7),
        }
    }
}

impl SearchWindows {
    /// The search windows the model's windows need (`mappings/model.toml` `[windows]`).
    /// Conditions and medications are never narrowed: previous VTE counts at any time
    /// and a current prescription can be old.
    pub fn from_model(w: &crate::mappings::model::Windows) -> SearchWindows {
        let max = |xs: &[u32]| xs.iter().copied().max();
        SearchWindows {
            // Symptoms, warning signs, vitals, D-dimer, pregnancy status, local travel codes.
            observations: max(&[
                w.index_presentation,
                w.warning_sign,
                w.vital_sign,
                w.d_dimer,
                w.pregnancy_evidence,
                w.long_haul_travel,
                w.alternative,
            ]),
            // Surgery, casts, deliveries (a delivery since the pregnancy evidence).
            procedures: max(&[
                w.recent_surgery,
                w.leg_cast,
                w.postpartum,
                w.pregnancy_evidence,
                w.pe_surgery,
            ]),
            // Cancer-treatment encounters, inpatient stays (ongoing ones overlap any range).
            encounters: max(&[w.cancer_activity, w.bedridden_stay_ended]),
            service_requests: Some(w.dvt_imaging),
            diagnostic_reports: Some(w.dvt_imaging),
        }
    }

    /// The window of a resource type, in days.
    pub fn days(&self, resource_type: &str) -> Option<u32> {
        match resource_type {
            "Observation" => self.observations,
            "Procedure" => self.procedures,
            "Encounter" => self.encounters,
            "ServiceRequest" => self.service_requests,
            "DiagnosticReport" => self.diagnostic_reports,
            _ => None,
        }
    }
}

/// The prefetch templates of the service answering `hook` (CDS Hooks 2.0 tokens only).
pub fn prefetch_templates(hook: Hook) -> BTreeMap<&'static str, String> {
    prefetch::key_specs(hook)
        .into_iter()
        .map(|spec| (spec.key, spec.template()))
        .collect()
}

/// Why the data a call needs could not be had: becomes a 412 with an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUnavailable {
    /// Which query failed, by prefetch key and FHIR interaction, e.g.
    /// "conditions (Condition search)" (never the patient id).
    pub query: String,
    /// Why: "no fhirServer in the request", [`UNREACHABLE`], "HTTP 401 from the FHIR
    /// server", ...
    pub reason: String,
    /// For the log only: what lies behind [`UNREACHABLE`] ("connection refused", "no
    /// answer within 2000 ms", a TLS error, ...). Never the URL.
    pub detail: Option<String>,
    /// The data could not be held because calls in flight fill the process's live-data
    /// pool (`--fhir-max-inflight-bytes`): a transient refusal (503), not the record's.
    pub busy: bool,
}

/// The one reason given to the caller for every failure to reach the FHIR server
/// (refused, timed out, DNS, TLS, an address the egress filter refuses): telling them
/// apart would make the service a port scanner. The log keeps the detail.
pub const UNREACHABLE: &str = "the FHIR server could not be reached";

impl fmt::Display for DataUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.query, self.reason)
    }
}

impl std::error::Error for DataUnavailable {}

impl DataUnavailable {
    /// What the caller is told (the 412's diagnostics, and `dvt-cds evaluate`'s message).
    pub fn explanation(&self) -> String {
        format!(
            "the FHIR data this service needs is not available: {} ({}). Send it in \
             prefetch, or send fhirServer and fhirAuthorization so the service can query it",
            self.query, self.reason
        )
    }
}

/// What the call will be assessed on.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Every resource from prefetch and live queries (Patient included when known),
    /// once each (by type and id); Bundles flattened into their resources. Boxed: a
    /// resource moves as a pointer from its parse to the assessment.
    pub resources: Vec<Box<Resource>>,
    /// Prefetch keys that were fetched live (for metrics; no patient data).
    pub fetched_keys: Vec<&'static str>,
    /// What was not read, e.g. pages beyond the cap or a `next` link to another
    /// origin (no patient data: safe to log and to show on a card).
    pub notes: Vec<String>,
    /// The same, for the card (`dvt-model.md` §6): one `PagingCutShort` per search whose
    /// paging stopped before its last page, its evidence the search (key and type).
    pub data_quality: Vec<DataQualityNote>,
    /// The live reads of referenced Medications (for metrics).
    pub medication_reads: MedicationReads,
}

/// How the Medications that `medicationReference`s name, and nothing gathered resolves,
/// were read live ([`medication::unresolved_ids`]). What was not read stays unresolved:
/// never an error of the call (the record notes it, `dvt-model.md` §1).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MedicationReads {
    /// Read, and added to the resources.
    pub read: usize,
    /// Asked for, without a Medication in answer (an error, 404, a timeout, the budget).
    pub failed: usize,
    /// Not asked for: past [`medication::MAX_MEDICATION_READS`], no server this call may
    /// query, or too little time left.
    pub skipped: usize,
}

/// The live data all calls in flight may hold at once ([`FhirSettings::pool`]), in KiB
/// permits. Each call's [`LiveBudget`] draws from it and gives back when the call ends.
#[derive(Debug, Clone)]
pub struct LiveDataPool {
    permits: Arc<Semaphore>,
    total_kib: usize,
}

impl LiveDataPool {
    pub fn new(bytes: usize) -> Self {
        let total_kib = bytes.div_ceil(1024).clamp(1, Semaphore::MAX_PERMITS);
        LiveDataPool {
            permits: Arc::new(Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// KiB held by calls in flight now (for metrics and tests).
    pub fn in_use_kib(&self) -> usize {
        self.total_kib - self.permits.available_permits()
    }

    /// The pool's size in KiB.
    pub fn total_kib(&self) -> usize {
        self.total_kib
    }

    /// The pool's gauges, in the Prometheus text format: in bytes (Prometheus's base
    /// unit), though the pool counts whole KiB, so both are multiples of 1024.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "# HELP dvt_cds_fhir_inflight_bytes Bytes of live FHIR data held by calls in flight (bytes and parsed cost, counted in whole KiB).\n\
             # TYPE dvt_cds_fhir_inflight_bytes gauge\n\
             dvt_cds_fhir_inflight_bytes {}\n\
             # HELP dvt_cds_fhir_inflight_limit_bytes The live-data pool in bytes (--fhir-max-inflight-bytes, rounded up to whole KiB).\n\
             # TYPE dvt_cds_fhir_inflight_limit_bytes gauge\n\
             dvt_cds_fhir_inflight_limit_bytes {}\n",
            self.in_use_kib() as u64 * 1024,
            self.total_kib as u64 * 1024
        );
    }
}

/// The live-data budget of one hook call ([`FhirSettings::max_call_bytes`]), shared by
/// its keys' concurrent queries, and drawn from the process's [`LiveDataPool`].
#[derive(Debug)]
pub struct LiveBudget {
    left: AtomicUsize,
    total: usize,
    pool: Arc<Semaphore>,
    /// What this call holds of the pool, given back when the call's budget is dropped.
    held: Mutex<Option<OwnedSemaphorePermit>>,
    /// Set when a take failed because the pool, not the call's own budget, was spent.
    pool_spent: AtomicBool,
}

impl LiveBudget {
    pub fn new(total: usize, pool: &LiveDataPool) -> Self {
        LiveBudget {
            left: AtomicUsize::new(total),
            total,
            pool: pool.permits.clone(),
            held: Mutex::new(None),
            pool_spent: AtomicBool::new(false),
        }
    }

    /// Take `bytes` from the call's budget and the pool; `false` (and nothing taken)
    /// when either has not that much left.
    pub fn take(&self, bytes: usize) -> bool {
        let own = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            });
        if own.is_err() {
            return false;
        }
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        if kib == 0 {
            return true;
        }
        match self.pool.clone().try_acquire_many_owned(kib) {
            Ok(permit) => {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                match held.as_mut() {
                    Some(h) => h.merge(permit),
                    None => *held = Some(permit),
                }
                true
            }
            Err(_) => {
                self.left.fetch_add(bytes, Ordering::Relaxed);
                self.pool_spent.store(true, Ordering::Relaxed);
                false
            }
        }
    }

    /// Whether a refusal came from the process's pool (calls in flight), not this call.
    pub fn pool_spent(&self) -> bool {
        self.pool_spent.load(Ordering::Relaxed)
    }

    /// The whole budget.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// One GET for a [`FhirSource`].
#[derive(Debug, Clone, Copy)]
pub struct FhirGet<'a> {
    pub url: &'a Url,
    /// How the server may be reached: listed (resolved normally) or public addresses only.
    pub route: Route,
    /// The access token, sent as `Authorization: Bearer`. `gather` asks only for URLs
    /// under `fhirServer` (its origin and base path).
    pub bearer: Option<&'a str>,
    /// Time allowed for the whole exchange, body included.
    pub timeout: Duration,
    /// The call's live-data budget: the source takes the body's bytes from it as they
    /// arrive and fails with [`FetchError::TooLarge`] when it runs out.
    pub budget: &'a LiveBudget,
}

/// The answer to a GET, whatever its status.
#[derive(Debug, Clone)]
pub struct FhirReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A GET that produced no answer. Descriptions never hold the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Connection refused.
    Refused,
    /// No answer within the request's timeout.
    TimedOut,
    /// The server's name resolves only to addresses the egress filter refuses.
    AddressRefused(egress::AddressClass),
    /// Any other failure of the exchange: DNS, TLS, a broken HTTP answer.
    Transport(String),
    /// The call's live-data budget (`--fhir-max-bytes`) ran out while the body was read.
    TooLarge,
    /// The access token cannot be sent as an HTTP header value.
    InvalidToken,
}

impl FetchError {
    /// A short name of the failure, for spans (`error.type`).
    fn kind(&self) -> &'static str {
        match self {
            FetchError::Refused => "connection-refused",
            FetchError::TimedOut => "timeout",
            FetchError::AddressRefused(_) => "address-refused",
            FetchError::Transport(_) => "transport",
            FetchError::TooLarge => "too-large",
            FetchError::InvalidToken => "invalid-token",
        }
    }

    /// What happened, for the log (`timeout`: the request's timeout).
    fn log_detail(&self, timeout: Duration) -> String {
        match self {
            FetchError::Refused => "connection refused".into(),
            FetchError::TimedOut => format!("no answer within {} ms", timeout.as_millis()),
            FetchError::AddressRefused(class) => format!(
                "the name resolves only to addresses the egress filter refuses ({})",
                class.describe()
            ),
            FetchError::Transport(detail) => detail.clone(),
            FetchError::TooLarge => "the response passed --fhir-max-bytes".into(),
            FetchError::InvalidToken => "the access token is not a valid header value".into(),
        }
    }
}

/// The future a [`FhirSource`] returns.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<FhirReply, FetchError>> + Send + 'a>>;

/// Source of live FHIR reads and searches: GET a URL. Implemented over reqwest by
/// [`HttpFhirSource`]; object-safe so the service holds an `Arc<dyn FhirSource>` and
/// tests can inject faults.
pub trait FhirSource: Send + Sync {
    fn get<'a>(&'a self, request: FhirGet<'a>) -> FetchFuture<'a>;
}

/// Gather the data for `req` before `deadline`: its `prefetch` (taken out of the
/// request, so its resources move rather than copy), then live queries for what the
/// prefetch lacks, then the Medications that `medicationReference`s name. `now` is the
/// request time (`dvt-model.md` §1): date windows are measured from it.
///
/// `client_servers`: the FHIR servers the caller's issuer lists (`fhir_servers`), allowed
/// besides those of `settings.egress`. Nothing is sent anywhere else.
pub async fn gather(
    source: &dyn FhirSource,
    settings: &FhirSettings,
    client_servers: &[ServerBase],
    req: &HookRequest,
    prefetch: Prefetch,
    deadline: tokio::time::Instant,
    now: DateTime<Utc>,
) -> Result<Gathered, DataUnavailable> {
    let specs = prefetch::key_specs(req.hook);
    let planned = prefetch::plan(&specs, prefetch);
    // Judged now, reported only by a key that needs the server: a call answered by its
    // prefetch may name any fhirServer.
    let server = req.fhir_server.as_ref().map(|url| Server {
        url,
        base: ServerBase::of(url),
        access: settings.egress.check(client_servers, url),
    });
    let live = Live {
        source,
        settings,
        req,
        server,
        deadline,
        now,
        budget: LiveBudget::new(settings.max_call_bytes, &settings.pool),
    };
    let jobs = planned.into_iter().map(|(spec, decision)| {
        let live = &live;
        async move {
            let outcome = match decision {
                Decision::NoData => Ok(KeyData::default()),
                Decision::Use { resources, next } => match next {
                    None => Ok(KeyData {
                        resources,
                        ..KeyData::default()
                    }),
                    Some(next) => {
                        let span = query_span(&spec);
                        let got = live
                            .follow(spec, resources, &next)
                            .instrument(span.clone())
                            .await;
                        record_query(&span, &got);
                        got
                    }
                },
                Decision::Fetch(_) => {
                    let span = query_span(&spec);
                    let got = live.fetch(spec).instrument(span.clone()).await;
                    record_query(&span, &got);
                    got
                }
            };
            outcome.map(|data| (spec, data))
        }
    });
    let results = futures::future::try_join_all(jobs).await?;

    let mut gathered = combine(results, settings, &req.context.patient_id, now);

    // §1: a medicationReference that nothing gathered resolves is read live.
    let ids =
        medication::unresolved_ids(&gathered.resources, live.server.as_ref().map(|s| &s.base));
    let (medications, reads) = live.read_medications(&ids).await;
    gathered.resources.extend(medications);
    gathered.medication_reads = reads;
    Ok(gathered)
}

/// What the keys yielded, as one list: other patients' resources and those certainly
/// older than their key's window left out, each resource once (by type and id: the
/// first one kept), moved, not copied; with the keys' notes.
fn combine(
    results: Vec<(KeySpec, KeyData)>,
    settings: &FhirSettings,
    patient_id: &str,
    now: DateTime<Utc>,
) -> Gathered {
    let mut gathered = Gathered::default();
    // Judged while borrowing (the de-duplication keys are the resources' own strings),
    // then the kept ones moved: no copy of any resource or key.
    let keep = judge(&results, settings, patient_id, now, &mut gathered);
    let kept = keep.iter().flatten().filter(|k| **k).count();
    gathered.resources.reserve_exact(kept);
    // Kept in place and appended in bulk: an iterator of kept resources moved each one
    // several times (a tenth of combining went on copying them).
    for ((_, mut data), flags) in results.into_iter().zip(keep) {
        let mut flags = flags.into_iter();
        data.resources.retain(|_| flags.next().unwrap_or(false));
        gathered.resources.append(&mut data.resources);
    }
    gathered
}

/// Which resources of each key [`combine`] keeps; the keys' notes go into `gathered`.
fn judge(
    results: &[(KeySpec, KeyData)],
    settings: &FhirSettings,
    patient_id: &str,
    now: DateTime<Utc>,
    gathered: &mut Gathered,
) -> Vec<Vec<bool>> {
    let total: usize = results.iter().map(|(_, d)| d.resources.len()).sum();
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(total);
    let mut keep = Vec::with_capacity(results.len());
    for (spec, data) in results {
        let since = window_start(settings, spec, now);
        let mut other_patient = 0;
        let flags = data
            .resources
            .iter()
            .map(|resource| {
                if bundle::about_other_patient(resource, patient_id) {
                    other_patient += 1;
                    return false;
                }
                if let (Some(param), Some(since)) = (date_param(spec), since)
                    && bundle::before_window(resource, param, since)
                {
                    return false;
                }
                match bundle::type_and_id(resource) {
                    Some(key) => seen.insert(key),
                    None => true,
                }
            })
            .collect();
        keep.push(flags);
        if data.fetched {
            gathered.fetched_keys.push(spec.key);
        }
        gathered.notes.extend(data.notes.iter().cloned());
        if data.cut_short {
            gathered.data_quality.push(DataQualityNote {
                code: DataQualityCode::PagingCutShort,
                evidence: vec![spec.describe()],
            });
        }
        if other_patient > 0 {
            gathered.notes.push(format!(
                "{}: {other_patient} resource(s) about another patient were left out",
                spec.describe()
            ));
        }
    }
    keep
}

/// Time kept back from the call's deadline when reading Medications: their reads end
/// before it, so a slow read leaves its reference unresolved rather than failing the
/// call (the assessment after them takes a few milliseconds).
const MEDICATION_READ_RESERVE: Duration = Duration::from_millis(50);

fn date_param(spec: &KeySpec) -> Option<&'static str> {
    match spec.kind {
        KeyKind::Search { date_param, .. } => date_param,
        KeyKind::Read(_) => None,
    }
}

/// The start of a key's date window, when it has one.
fn window_start(
    settings: &FhirSettings,
    spec: &KeySpec,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    date_param(spec)?;
    let days = settings.windows.days(spec.resource_type)?;
    Some(now - chrono::Duration::days(i64::from(days)))
}

/// What one key yielded.
#[derive(Debug, Default)]
struct KeyData {
    resources: Vec<Box<Resource>>,
    fetched: bool,
    notes: Vec<String>,
    /// Paging stopped before the last page (cap, budget, or a next link not followed).
    cut_short: bool,
    /// Pages (or the one resource of a read) fetched live, for the query's span.
    pages: usize,
}

/// The span of one prefetch key's live query (a read, or a search and its pages),
/// around the spans of its GETs. Named by key and resource type, never by an id: the
/// patient id is in every query's URL, which no span carries.
fn query_span(spec: &KeySpec) -> tracing::Span {
    let interaction = match spec.kind {
        KeyKind::Read(_) => "read",
        KeyKind::Search { .. } => "search",
    };
    let name = format!("FHIR {interaction} {}", spec.resource_type);
    tracing::info_span!(
        "fhir query",
        otel.name = name.as_str(),
        otel.status_code = Empty,
        fhir.query = spec.key,
        fhir.resource_type = spec.resource_type,
        fhir.interaction = interaction,
        fhir.pages = Empty,
        fhir.resources = Empty,
        fhir.cut_short = Empty,
        fhir.unavailable = Empty,
    )
}

/// What a key's query ended with, on its span. The reason a query failed is what the
/// caller's OperationOutcome says (no URL, no id); the detail that only the log gets is
/// left out.
fn record_query(span: &tracing::Span, got: &Result<KeyData, DataUnavailable>) {
    match got {
        Ok(data) => {
            span.record("fhir.pages", data.pages);
            span.record("fhir.resources", data.resources.len());
            span.record("fhir.cut_short", data.cut_short);
        }
        Err(u) => {
            span.record("otel.status_code", "error");
            span.record("fhir.unavailable", u.reason.as_str());
        }
    }
}

/// What a GET is for, as errors and the log name it (never an id).
#[derive(Debug, Clone, Copy)]
enum Query {
    /// A prefetch key's read or search.
    Key(KeySpec),
    /// A Medication read for a `medicationReference` (`dvt-model.md` §1).
    Medication,
}

impl Query {
    /// The prefetch key (or `medication`), for spans.
    fn key(self) -> &'static str {
        match self {
            Query::Key(spec) => spec.key,
            Query::Medication => "medication",
        }
    }

    fn describe(self) -> String {
        match self {
            Query::Key(spec) => spec.describe(),
            Query::Medication => "medication (Medication read)".into(),
        }
    }
}

impl From<&KeySpec> for Query {
    fn from(spec: &KeySpec) -> Query {
        Query::Key(*spec)
    }
}

/// The live side of one call.
struct Live<'a> {
    source: &'a dyn FhirSource,
    settings: &'a FhirSettings,
    req: &'a HookRequest,
    /// `fhirServer`, when the request has one.
    server: Option<Server<'a>>,
    deadline: tokio::time::Instant,
    now: DateTime<Utc>,
    budget: LiveBudget,
}

/// What a GET of one FHIR resource gave, when it gave an answer.
enum Fetched {
    /// A JSON object with a `resourceType` (boxed: a `Resource` is large).
    Resource(Box<Resource>),
    /// A read of something that does not exist (404 / 410), like a `null` prefetch.
    Missing,
    /// The call's live data would pass `--fhir-max-bytes`: not read, or not parsed.
    OverBudget,
}

/// A call's `fhirServer` and whether (and how) it may be queried.
struct Server<'a> {
    url: &'a Url,
    /// Every GET stays under it: same origin, and its path at a segment boundary.
    base: ServerBase,
    access: Result<Route, egress::Refusal>,
}

/// What a GET to `fhirServer` may use.
struct Access<'a> {
    url: &'a Url,
    base: &'a ServerBase,
    route: Route,
    bearer: Option<&'a str>,
}

impl Live<'_> {
    /// The 412 of a key whose first page does not fit the call's live-data budget, or
    /// the 503 of a call whose data does not fit the pool that calls in flight share.
    fn over_budget(&self, spec: &KeySpec) -> DataUnavailable {
        if self.budget.pool_spent() {
            return DataUnavailable {
                busy: true,
                ..self.unavailable(
                    spec,
                    "busy: the live FHIR data of the calls in flight fills \
                     --fhir-max-inflight-bytes",
                )
            };
        }
        self.unavailable(
            spec,
            format!(
                "the FHIR data is larger than --fhir-max-bytes ({} bytes)",
                self.budget.total()
            ),
        )
    }

    fn unavailable(&self, query: impl Into<Query>, reason: impl Into<String>) -> DataUnavailable {
        DataUnavailable {
            query: query.into().describe(),
            reason: reason.into(),
            detail: None,
            busy: false,
        }
    }

    /// `fhirServer`, if this caller may query it (see [`egress`]), and the token to send
    /// there (contract.md, "Talking to the FHIR server": anonymous only where
    /// configuration allows it).
    fn server(&self, query: impl Into<Query>) -> Result<Access<'_>, DataUnavailable> {
        let spec: Query = query.into();
        let server = self
            .server
            .as_ref()
            .ok_or_else(|| self.unavailable(spec, "no fhirServer in the request"))?;
        let route = server
            .access
            .map_err(|refusal| self.unavailable(spec, refusal.to_string()))?;
        let bearer = match &self.req.fhir_authorization {
            Some(auth) => Some(auth.access_token.as_str()),
            None if self.settings.allow_anonymous => None,
            None => {
                return Err(self.unavailable(
                    spec,
                    "no fhirAuthorization in the request, and anonymous FHIR queries are not allowed",
                ));
            }
        };
        Ok(Access {
            url: server.url,
            base: &server.base,
            route,
            bearer,
        })
    }

    /// Whether `url` is under `fhirServer` (same origin and base path).
    fn on_server(&self, url: &Url) -> bool {
        self.server.as_ref().is_some_and(|s| s.base.contains(url))
    }

    /// Read the Medications `ids` (at most [`medication::MAX_MEDICATION_READS`], all at
    /// once, through the same limits as every query: egress, budget, concurrency,
    /// deadline). A read that fails or is refused leaves its reference unresolved.
    async fn read_medications(&self, ids: &[String]) -> (Vec<Box<Resource>>, MedicationReads) {
        let mut reads = MedicationReads::default();
        if ids.is_empty() {
            return (Vec::new(), reads);
        }
        let asked = &ids[..ids.len().min(medication::MAX_MEDICATION_READS)];
        reads.skipped = ids.len() - asked.len();
        let until = self.deadline.checked_sub(MEDICATION_READ_RESERVE);
        let (Ok(access), Some(until)) = (self.server(Query::Medication), until) else {
            reads.skipped += asked.len();
            return (Vec::new(), reads);
        };
        if until <= tokio::time::Instant::now() {
            reads.skipped += asked.len();
            return (Vec::new(), reads);
        }
        let base = access.url;
        let reads_of = asked.iter().map(|id| async move {
            let url = read_url(base, "Medication", id);
            let got = tokio::time::timeout_at(until, self.get_json(Query::Medication, &url, true));
            match got.await {
                Ok(Ok(Fetched::Resource(r)))
                    if r.resource_type() == Some(&ResourceType::Medication) && r.id() == Some(id.as_str()) =>
                {
                    Some(r)
                }
                Ok(Err(e)) => {
                    // The reason only: never the id or the URL.
                    tracing::debug!(reason = %e.reason, "a referenced Medication could not be read");
                    None
                }
                _ => None,
            }
        });
        let got = futures::future::join_all(reads_of).await;
        let medications: Vec<Box<Resource>> = got.into_iter().flatten().collect();
        reads.read = medications.len();
        reads.failed = asked.len() - reads.read;
        (medications, reads)
    }

    /// Query a key live: a read, or a search and its pages.
    async fn fetch(&self, spec: KeySpec) -> Result<KeyData, DataUnavailable> {
        let base = self.server(&spec)?.url;
        let mut data = KeyData {
            fetched: true,
            ..KeyData::default()
        };
        match spec.kind {
            KeyKind::Read(which) => {
                let id = match which {
                    ContextId::Patient => Some(self.req.context.patient_id.as_str()),
                    ContextId::Encounter => self.req.context.encounter_id.as_deref(),
                };
                let Some(id) = id.filter(|id| !id.is_empty()) else {
                    return Ok(data);
                };
                let url = read_url(base, spec.resource_type, id);
                data.pages = 1;
                let resource = match self.get_json(&spec, &url, true).await? {
                    Fetched::Resource(r) => Some(r),
                    Fetched::Missing => None,
                    Fetched::OverBudget => return Err(self.over_budget(&spec)),
                };
                if let Some(resource) = resource {
                    if resource.resource_type().map(ResourceType::as_str)
                        != Some(spec.resource_type)
                    {
                        return Err(self.unavailable(
                            &spec,
                            format!(
                                "the FHIR server answered with a {} resource",
                                kind_of(&resource)
                            ),
                        ));
                    }
                    data.resources.push(resource);
                }
                Ok(data)
            }
            KeyKind::Search {
                count,
                date_param,
                include,
            } => {
                let since = window_start(self.settings, &spec, self.now);
                let mut url = base.clone();
                url.path_segments_mut()
                    .map(|mut p| {
                        p.pop_if_empty().push(spec.resource_type);
                    })
                    .map_err(|_| self.unavailable(&spec, "fhirServer cannot have a path"))?;
                {
                    let mut q = url.query_pairs_mut();
                    q.clear()
                        .append_pair("patient", &self.req.context.patient_id)
                        .append_pair(
                            "_count",
                            &self.settings.page_size.unwrap_or(count).to_string(),
                        );
                    if let (Some(param), Some(since)) = (date_param, since) {
                        q.append_pair(
                            param,
                            &format!(
                                "ge{}",
                                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            ),
                        );
                    }
                    if let Some(include) = include {
                        q.append_pair("_include", include);
                    }
                }
                self.pages(spec, data, url, 0).await
            }
        }
    }

    /// A prefetch Bundle with a `next` link: read the rest with the same token.
    async fn follow(
        &self,
        spec: KeySpec,
        resources: Vec<Box<Resource>>,
        next: &str,
    ) -> Result<KeyData, DataUnavailable> {
        let base = self.server(&spec)?.url;
        let data = KeyData {
            resources,
            fetched: true,
            ..KeyData::default()
        };
        match Url::options().base_url(Some(base)).parse(next) {
            Ok(url) => self.pages(spec, data, url, 1).await,
            Err(_) => {
                Err(self.unavailable(&spec, "the prefetch Bundle has an unreadable next link"))
            }
        }
    }

    /// Read search pages from `url` on, `read` pages already read, up to the cap.
    async fn pages(
        &self,
        spec: KeySpec,
        mut data: KeyData,
        first: Url,
        mut read: usize,
    ) -> Result<KeyData, DataUnavailable> {
        let mut url = first;
        loop {
            if read >= self.settings.max_pages.max(1) {
                data.notes.push(format!(
                    "{}: more than {} page(s); the rest was not read",
                    spec.describe(),
                    self.settings.max_pages
                ));
                data.cut_short = true;
                return Ok(data);
            }
            if !self.on_server(&url) {
                data.notes.push(format!(
                    "{}: a next link outside fhirServer (another origin or path) was not followed",
                    spec.describe()
                ));
                data.cut_short = true;
                return Ok(data);
            }
            // Past the budget, a key's first page fails the call (its data would be
            // missing, not partial); a later one ends the key's data, as the page cap does.
            let page = match self.get_json(&spec, &url, false).await? {
                Fetched::Resource(page) => page,
                Fetched::Missing => {
                    return Err(self.unavailable(&spec, "HTTP 404 from the FHIR server"));
                }
                // A busy pool is transient: fail the call (503, retry) rather than
                // answer on data cut short by other calls' load.
                Fetched::OverBudget if read == 0 || self.budget.pool_spent() => {
                    return Err(self.over_budget(&spec));
                }
                Fetched::OverBudget => {
                    data.notes.push(format!(
                        "{}: the live data passed --fhir-max-bytes ({} bytes); the rest was not read",
                        spec.describe(),
                        self.budget.total()
                    ));
                    data.cut_short = true;
                    return Ok(data);
                }
            };
            if page.resource_type() != Some(&ResourceType::Bundle) {
                return Err(self.unavailable(
                    &spec,
                    format!(
                        "the FHIR server answered with a {}, not a Bundle",
                        kind_of(&page)
                    ),
                ));
            }
            read += 1;
            data.pages += 1;
            let next = bundle::next_link(&page).map(str::to_owned);
            data.resources.extend(bundle::resources(page));
            let Some(next) = next else {
                return Ok(data);
            };
            url = match url.join(&next) {
                Ok(u) => u,
                Err(_) => {
                    return Err(
                        self.unavailable(&spec, "the FHIR server sent an unreadable next link")
                    );
                }
            };
        }
    }

    /// GET a URL on `fhirServer` and read the body as one FHIR resource. The body's
    /// bytes and its parsed cost are taken from the call's live-data budget before it is
    /// parsed.
    async fn get_json(
        &self,
        query: impl Into<Query>,
        url: &Url,
        is_read: bool,
    ) -> Result<Fetched, DataUnavailable> {
        let spec: Query = query.into();
        let Some(reply) = self.send_get(spec, url).await? else {
            return Ok(Fetched::OverBudget);
        };
        if let Some(fetched) = self.judge_status(spec, reply.status, is_read)? {
            return Ok(fetched);
        }
        self.parse_resource(spec, &reply.body)
    }

    /// Send one GET of `url` with the call's token, bounded by the query timeout and the
    /// call's deadline, in its client span. `None`: the body ran past the call's
    /// live-data budget while it was read.
    async fn send_get(&self, spec: Query, url: &Url) -> Result<Option<FhirReply>, DataUnavailable> {
        let access = self.server(spec)?;
        // The token goes to fhirServer and nowhere else.
        if !access.base.contains(url) {
            return Err(self.unavailable(spec, "refused to send the request outside fhirServer"));
        }
        let timeout = self.get_timeout(spec)?;
        let request = FhirGet {
            url,
            route: access.route,
            bearer: access.bearer,
            timeout,
            budget: &self.budget,
        };
        let span = get_span(spec, url);
        let got = tokio::time::timeout_at(
            self.deadline,
            self.source.get(request).instrument(span.clone()),
        )
        .await;
        record_get(&span, &got);
        self.reply_of(spec, got, timeout)
    }

    /// The time one GET may take: the query timeout, cut to what is left before the
    /// call's deadline; an error when the deadline has already passed.
    fn get_timeout(&self, spec: Query) -> Result<Duration, DataUnavailable> {
        let remaining = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(self.unavailable(
                spec,
                "the call's deadline passed before the query could start",
            ));
        }
        Ok(self.settings.query_timeout.min(remaining))
    }

    /// The reply of a GET that ran with `timeout`, or why there is none. A timeout cut
    /// short by the call's deadline is reported as the deadline, not as the server's
    /// slowness. `None`: the body ran past the live-data budget.
    fn reply_of(
        &self,
        spec: Query,
        got: Result<Result<FhirReply, FetchError>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<Option<FhirReply>, DataUnavailable> {
        match got {
            Err(_) => Err(self.unavailable(spec, "no answer before the call's deadline")),
            Ok(Err(FetchError::TimedOut)) if timeout < self.settings.query_timeout => {
                Err(self.unavailable(spec, "no answer before the call's deadline"))
            }
            Ok(Err(FetchError::TooLarge)) => Ok(None),
            Ok(Err(e)) => Err(self.fetch_failed(spec, &e, timeout)),
            Ok(Ok(reply)) => Ok(Some(reply)),
        }
    }

    /// What a reply's HTTP status means: `None` for a 2xx (its body is to be read), a
    /// missing resource for a read's 404 or 410, and otherwise why there is no data.
    fn judge_status(
        &self,
        spec: Query,
        status: u16,
        is_read: bool,
    ) -> Result<Option<Fetched>, DataUnavailable> {
        match status {
            200..=299 => Ok(None),
            404 | 410 if is_read => Ok(Some(Fetched::Missing)),
            401 | 403 => Err(self.unavailable(
                spec,
                format!("HTTP {status} from the FHIR server: the access token was refused"),
            )),
            300..=399 => Err(self.unavailable(
                spec,
                format!("HTTP {status} from the FHIR server: redirects to another origin are not followed"),
            )),
            s => Err(self.unavailable(spec, format!("HTTP {s} from the FHIR server"))),
        }
    }

    /// Take a body's parsed cost from the call's live-data budget, then parse it as one
    /// FHIR resource within that allowance.
    fn parse_resource(&self, spec: Query, body: &[u8]) -> Result<Fetched, DataUnavailable> {
        let cost = resource::allowance_for(body.len());
        if !self.budget.take(cost) {
            return Ok(Fetched::OverBudget);
        }
        // Parsed straight into typed resources (no JSON tree), within what was taken.
        match resource::within_allowance(cost, || resource::from_slice(body)) {
            Err(resource::OverAllowance) => Ok(Fetched::OverBudget),
            Ok(Ok(Field::Value(r))) if r.resource_type().is_some() => {
                Ok(Fetched::Resource(Box::new(r)))
            }
            Ok(_) => Err(self.unavailable(spec, "the response is not a FHIR resource in JSON")),
        }
    }

    /// A GET without an answer: every failure to reach the server reads the same to the
    /// caller ([`UNREACHABLE`]); the log gets the detail.
    fn fetch_failed(&self, spec: Query, error: &FetchError, timeout: Duration) -> DataUnavailable {
        match error {
            FetchError::TooLarge | FetchError::InvalidToken => {
                self.unavailable(spec, error.log_detail(timeout))
            }
            FetchError::Refused
            | FetchError::TimedOut
            | FetchError::AddressRefused(_)
            | FetchError::Transport(_) => DataUnavailable {
                detail: Some(error.log_detail(timeout)),
                ..self.unavailable(spec, UNREACHABLE)
            },
        }
    }
}

/// The client span of one GET: its context is the `traceparent` the FHIR server gets
/// (`http::HttpFhirSource`). The server's address, never the URL: its path or query
/// holds the patient id.
fn get_span(spec: Query, url: &Url) -> tracing::Span {
    tracing::info_span!(
        "fhir GET",
        otel.name = "GET",
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = "GET",
        server.address = url.host_str().unwrap_or(""),
        server.port = url.port_or_known_default().unwrap_or(0),
        fhir.query = spec.key(),
        http.response.status_code = Empty,
        error.type = Empty,
    )
}

/// What a GET ended with, on its span: the status, or the kind of failure.
fn record_get(
    span: &tracing::Span,
    got: &Result<Result<FhirReply, FetchError>, tokio::time::error::Elapsed>,
) {
    match got {
        Ok(Ok(reply)) => {
            span.record("http.response.status_code", reply.status);
            if reply.status >= 400 {
                span.record("otel.status_code", "error");
            }
        }
        Ok(Err(e)) => {
            span.record("otel.status_code", "error");
            span.record("error.type", e.kind());
        }
        Err(_) => {
            span.record("otel.status_code", "error");
            span.record("error.type", "deadline");
        }
    }
}

fn kind_of(resource: &Resource) -> &str {
    resource
        .resource_type()
        .map_or("non-FHIR value", ResourceType::as_str)
}

/// `{fhirServer}/{Type}/{id}`, the id percent-encoded as one path segment.
fn read_url(base: &Url, resource_type: &str, id: &str) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    if let Ok(mut p) = url.path_segments_mut() {
        p.pop_if_empty().push(resource_type).push(id);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds_hooks::{FhirAuthorization, HookContext, Prefetched};
    use serde_json::{Value, json};
    use std::sync::Mutex;

    /// [`super::gather`] of the request's own prefetch, now.
    async fn gather(
        source: &dyn FhirSource,
        settings: &FhirSettings,
        client_servers: &[ServerBase],
        req: &HookRequest,
        deadline: tokio::time::Instant,
    ) -> Result<Gathered, DataUnavailable> {
        gather_at(source, settings, client_servers, req, deadline, Utc::now()).await
    }

    /// [`super::gather`] of the request's own prefetch, at `now`.
    async fn gather_at(
        source: &dyn FhirSource,
        settings: &FhirSettings,
        client_servers: &[ServerBase],
        req: &HookRequest,
        deadline: tokio::time::Instant,
        now: DateTime<Utc>,
    ) -> Result<Gathered, DataUnavailable> {
        let prefetch = req.prefetch.clone();
        super::gather(
            source,
            settings,
            client_servers,
            req,
            prefetch,
            deadline,
            now,
        )
        .await
    }

    /// A fake source: answers from a table by path and query, and records every GET.
    #[derive(Default)]
    struct Table {
        answers: Vec<(String, u16, Value)>,
        seen: Mutex<Vec<(String, Option<String>)>>,
    }

    impl FhirSource for Table {
        fn get<'a>(&'a self, request: FhirGet<'a>) -> FetchFuture<'a> {
            self.seen
                .lock()
                .unwrap()
                .push((request.url.to_string(), request.bearer.map(str::to_owned)));
            let found = self
                .answers
                .iter()
                .find(|(prefix, _, _)| request.url.as_str().starts_with(prefix.as_str()))
                .map(|(_, s, v)| FhirReply {
                    status: *s,
                    body: v.to_string().into_bytes(),
                });
            Box::pin(async move { found.ok_or(FetchError::Refused) })
        }
    }

    fn request(prefetch: Value, token: Option<&str>) -> HookRequest {
        HookRequest {
            hook: Hook::PatientView,
            hook_instance: "h1".into(),
            fhir_server: Some(Url::parse("https://ehr.example/fhir").unwrap()),
            fhir_authorization: token.map(|t| FhirAuthorization {
                access_token: t.into(),
                token_type: "Bearer".into(),
                expires_in: None,
                scope: None,
                subject: None,
            }),
            context: HookContext {
                user_id: "Practitioner/1".into(),
                patient_id: "p1".into(),
                encounter_id: None,
                draft_orders: vec![],
                selections: vec![],
            },
            prefetch: prefetch
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Prefetched::from_value(v)))
                .collect(),
        }
    }

    fn searchset(resources: &[Value], next: Option<&str>) -> Value {
        let mut b = json!({"resourceType": "Bundle", "type": "searchset",
            "entry": resources.iter().map(|r| json!({"resource": r, "search": {"mode": "match"}})).collect::<Vec<_>>()});
        if let Some(n) = next {
            b["link"] = json!([{"relation": "next", "url": n}]);
        }
        b
    }

    /// A prefetch where every key is answered (empty) except those named.
    fn full_prefetch_except(missing: &[&str]) -> Value {
        let mut m = serde_json::Map::new();
        for spec in prefetch::key_specs(Hook::PatientView) {
            if !missing.contains(&spec.key) {
                let v = if spec.key == "patient" {
                    json!({"resourceType": "Patient", "id": "p1"})
                } else {
                    searchset(&[], None)
                };
                m.insert(spec.key.into(), v);
            }
        }
        Value::Object(m)
    }

    /// The servers the test client may query: the one `request` names.
    fn ehr() -> Vec<ServerBase> {
        vec![ServerBase::parse("https://ehr.example/fhir").unwrap()]
    }

    fn deadline() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn complete_prefetch_needs_no_server() {
        let mut req = request(full_prefetch_except(&[]), None);
        req.fhir_server = None;
        let source = Table::default();
        let got = gather(&source, &FhirSettings::default(), &ehr(), &req, deadline())
            .await
            .unwrap();
        assert_eq!(got.resources.len(), 1);
        assert!(got.fetched_keys.is_empty());
        assert!(source.seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn absent_key_is_queried_with_the_token_and_a_date_window() {
        let obs = json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"},
                         "effectiveDateTime": "2026-03-01T00:00:00Z"});
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/Observation?".into(),
                200,
                searchset(&[obs], None),
            )],
            ..Table::default()
        };
        let req = request(full_prefetch_except(&["observations"]), Some("secret"));
        let now = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let got = gather_at(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &req,
            deadline(),
            now,
        )
        .await
        .unwrap();
        assert_eq!(got.fetched_keys, ["observations"]);
        assert_eq!(got.resources.len(), 2);
        let seen = source.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].0,
            "https://ehr.example/fhir/Observation?patient=p1&_count=1000&date=ge2025-05-12T00%3A00%3A00Z"
        );
        assert_eq!(seen[0].1.as_deref(), Some("secret"));
    }

    #[tokio::test]
    async fn conditions_are_not_narrowed_by_date() {
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/Condition?".into(),
                200,
                searchset(&[], None),
            )],
            ..Table::default()
        };
        let req = request(full_prefetch_except(&["conditions"]), Some("t"));
        gather(&source, &FhirSettings::default(), &ehr(), &req, deadline())
            .await
            .unwrap();
        let seen = source.seen.lock().unwrap();
        assert_eq!(
            seen[0].0,
            "https://ehr.example/fhir/Condition?patient=p1&_count=500"
        );
    }

    #[tokio::test]
    async fn operation_outcome_in_prefetch_is_queried() {
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["procedures"] = json!({"resourceType": "OperationOutcome", "issue": []});
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/Procedure?".into(),
                200,
                searchset(&[], None),
            )],
            ..Table::default()
        };
        let got = gather(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, Some("t")),
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(got.fetched_keys, ["procedures"]);
    }

    #[tokio::test]
    async fn null_prefetch_is_not_queried() {
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["patient"] = Value::Null;
        let source = Table::default();
        let got = gather(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, Some("t")),
            deadline(),
        )
        .await
        .unwrap();
        assert!(got.resources.is_empty());
        assert!(source.seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn prefetch_next_link_is_followed_with_the_token() {
        let c = |id: &str| json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p1"}});
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["conditions"] = searchset(&[c("c1")], Some("https://ehr.example/fhir?page=2"));
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir?page=2".into(),
                200,
                searchset(&[c("c2"), c("c1")], None),
            )],
            ..Table::default()
        };
        let got = gather(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, Some("tok")),
            deadline(),
        )
        .await
        .unwrap();
        let ids: Vec<_> = got.resources.iter().filter_map(|r| r.id()).collect();
        assert_eq!(ids, ["p1", "c1", "c2"]);
        assert_eq!(source.seen.lock().unwrap()[0].1.as_deref(), Some("tok"));
    }

    #[tokio::test]
    async fn next_link_to_another_origin_is_not_followed() {
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["conditions"] = searchset(&[], Some("https://elsewhere.example/fhir?page=2"));
        let source = Table::default();
        let got = gather(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, Some("tok")),
            deadline(),
        )
        .await
        .unwrap();
        assert!(source.seen.lock().unwrap().is_empty());
        assert_eq!(got.notes.len(), 1, "{:?}", got.notes);
        assert!(got.notes[0].contains("another origin"));
    }

    #[tokio::test]
    async fn missing_server_or_token_is_data_unavailable() {
        let mut req = request(full_prefetch_except(&["encounters"]), Some("t"));
        req.fhir_server = None;
        let err = gather(
            &Table::default(),
            &FhirSettings::default(),
            &ehr(),
            &req,
            deadline(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.query, "encounters (Encounter search)");
        assert_eq!(err.reason, "no fhirServer in the request");

        let req = request(full_prefetch_except(&["encounters"]), None);
        let err = gather(
            &Table::default(),
            &FhirSettings::default(),
            &ehr(),
            &req,
            deadline(),
        )
        .await
        .unwrap_err();
        assert!(err.reason.contains("anonymous"), "{err}");

        // Anonymous where configuration allows it.
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/Encounter?".into(),
                200,
                searchset(&[], None),
            )],
            ..Table::default()
        };
        let settings = FhirSettings {
            allow_anonymous: true,
            ..FhirSettings::default()
        };
        gather(&source, &settings, &ehr(), &req, deadline())
            .await
            .unwrap();
        assert_eq!(source.seen.lock().unwrap()[0].1, None);
    }

    #[tokio::test]
    async fn next_link_outside_the_base_path_is_not_followed() {
        // Same origin, but not under /fhir: not followed (the token stays under fhirServer).
        for next in [
            "https://ehr.example/admin?page=2",
            "https://ehr.example/fhirx?page=2",
            "/fhir/../internal?page=2",
        ] {
            let mut prefetch = full_prefetch_except(&[]);
            prefetch["conditions"] = searchset(&[], Some(next));
            let source = Table::default();
            let got = gather(
                &source,
                &FhirSettings::default(),
                &ehr(),
                &request(prefetch, Some("tok")),
                deadline(),
            )
            .await
            .unwrap();
            assert!(source.seen.lock().unwrap().is_empty(), "{next}");
            assert!(
                got.notes[0].contains("outside fhirServer"),
                "{next}: {:?}",
                got.notes
            );
            assert_eq!(
                got.data_quality[0].code,
                DataQualityCode::PagingCutShort,
                "{next}"
            );
        }
    }

    #[tokio::test]
    async fn an_unlisted_server_is_never_queried() {
        let req = request(full_prefetch_except(&["conditions"]), Some("t"));
        let source = Table::default();
        // Not listed for this client, nor with --fhir-server.
        let err = gather(&source, &FhirSettings::default(), &[], &req, deadline())
            .await
            .unwrap_err();
        assert_eq!(err.query, "conditions (Condition search)");
        assert!(
            err.reason
                .contains("not a FHIR server this service may query"),
            "{err}"
        );
        assert!(source.seen.lock().unwrap().is_empty());

        // --fhir-server lists it for every client.
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/Condition?".into(),
                200,
                searchset(&[], None),
            )],
            ..Table::default()
        };
        let settings = FhirSettings {
            egress: EgressPolicy {
                dev: false,
                servers: ehr(),
            },
            ..FhirSettings::default()
        };
        gather(&source, &settings, &[], &req, deadline())
            .await
            .unwrap();
        assert_eq!(source.seen.lock().unwrap().len(), 1);

        // A prefetch that answers everything needs no server, listed or not.
        let req = request(full_prefetch_except(&[]), Some("t"));
        gather(
            &Table::default(),
            &FhirSettings::default(),
            &[],
            &req,
            deadline(),
        )
        .await
        .unwrap();
    }

    /// A source that fails every GET the same way.
    struct Failing(FetchError);

    impl FhirSource for Failing {
        fn get<'a>(&'a self, _: FhirGet<'a>) -> FetchFuture<'a> {
            let e = self.0.clone();
            Box::pin(async move { Err(e) })
        }
    }

    #[tokio::test]
    async fn every_failure_to_reach_the_server_reads_the_same() {
        let req = request(full_prefetch_except(&["observations"]), Some("t"));
        for error in [
            FetchError::Refused,
            FetchError::TimedOut,
            FetchError::AddressRefused(egress::AddressClass::Loopback),
            FetchError::Transport("dns error: no such host".into()),
            FetchError::Transport("invalid peer certificate: UnknownIssuer".into()),
        ] {
            let err = gather(
                &Failing(error.clone()),
                &FhirSettings::default(),
                &ehr(),
                &req,
                deadline(),
            )
            .await
            .unwrap_err();
            assert_eq!(err.reason, UNREACHABLE, "{error:?}");
            // The log keeps what happened.
            let detail = err.detail.unwrap_or_default();
            assert!(
                !detail.is_empty() && !detail.contains("p1"),
                "{error:?}: {detail}"
            );
        }
        // Not a failure to reach: said as it is.
        let err = gather(
            &Failing(FetchError::TooLarge),
            &FhirSettings::default(),
            &ehr(),
            &req,
            deadline(),
        )
        .await
        .unwrap_err();
        assert!(err.reason.contains("larger than --fhir-max-bytes"), "{err}");
    }

    #[tokio::test]
    async fn statuses_and_bodies_are_judged() {
        let cases = [
            (401, json!({}), "HTTP 401"),
            (403, json!({}), "HTTP 403"),
            (500, json!({"resourceType": "OperationOutcome"}), "HTTP 500"),
            (200, json!({"hello": "world"}), "not a FHIR resource"),
            (
                200,
                json!({"resourceType": "OperationOutcome"}),
                "OperationOutcome, not a Bundle",
            ),
        ];
        for (status, body, expected) in cases {
            let source = Table {
                answers: vec![("https://ehr.example/fhir/Observation?".into(), status, body)],
                ..Table::default()
            };
            let req = request(full_prefetch_except(&["observations"]), Some("t"));
            let err = gather(&source, &FhirSettings::default(), &ehr(), &req, deadline())
                .await
                .unwrap_err();
            assert_eq!(err.query, "observations (Observation search)");
            assert!(err.reason.contains(expected), "{status}: {err}");
            assert!(!err.to_string().contains("p1"), "{err}");
        }
    }

    #[tokio::test]
    async fn missing_patient_read_is_no_data() {
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/Patient/p1".into(),
                404,
                json!({"resourceType": "OperationOutcome"}),
            )],
            ..Table::default()
        };
        let req = request(full_prefetch_except(&["patient"]), Some("t"));
        let got = gather(&source, &FhirSettings::default(), &ehr(), &req, deadline())
            .await
            .unwrap();
        assert!(got.resources.is_empty());
        assert_eq!(got.fetched_keys, ["patient"]);
    }

    #[tokio::test]
    async fn page_cap_is_honoured() {
        let c = |id: &str| json!({"resourceType": "Condition", "id": id});
        let source = Table {
            answers: vec![
                (
                    "https://ehr.example/fhir/Condition?".into(),
                    200,
                    searchset(&[c("1")], Some("https://ehr.example/fhir?p=2")),
                ),
                (
                    "https://ehr.example/fhir?p=2".into(),
                    200,
                    searchset(&[c("2")], Some("https://ehr.example/fhir?p=3")),
                ),
                (
                    "https://ehr.example/fhir?p=3".into(),
                    200,
                    searchset(&[c("3")], None),
                ),
            ],
            ..Table::default()
        };
        let req = request(full_prefetch_except(&["conditions"]), Some("t"));
        let settings = FhirSettings {
            max_pages: 2,
            ..FhirSettings::default()
        };
        let got = gather(&source, &settings, &ehr(), &req, deadline())
            .await
            .unwrap();
        assert_eq!(source.seen.lock().unwrap().len(), 2);
        assert_eq!(got.resources.len(), 3); // patient + 2 conditions
        assert!(got.notes[0].contains("more than 2 page"), "{:?}", got.notes);
        // The card hears of it too.
        assert_eq!(
            got.data_quality,
            [DataQualityNote {
                code: DataQualityCode::PagingCutShort,
                evidence: vec!["conditions (Condition search)".into()],
            }]
        );
    }

    #[tokio::test]
    async fn live_data_of_calls_in_flight_share_one_pool() {
        let c = |id: &str| json!({"resourceType": "Condition", "id": id});
        let page = searchset(
            &(0..50).map(|i| c(&i.to_string())).collect::<Vec<_>>(),
            None,
        );
        let source = || Table {
            answers: vec![(
                "https://ehr.example/fhir/Condition?".into(),
                200,
                page.clone(),
            )],
            ..Table::default()
        };
        let req = request(full_prefetch_except(&["conditions"]), Some("t"));
        let settings = FhirSettings {
            pool: LiveDataPool::new(1024 * 1024),
            ..FhirSettings::default()
        };
        // Another call in flight holds most of the pool: this one is refused as busy
        // (transient, 503), not as too large, and takes nothing from the pool.
        let other = LiveBudget::new(settings.max_call_bytes, &settings.pool);
        assert!(other.take(1020 * 1024));
        let err = gather(&source(), &settings, &ehr(), &req, deadline())
            .await
            .unwrap_err();
        assert!(err.busy, "{err}");
        assert!(err.reason.contains("--fhir-max-inflight-bytes"), "{err}");
        assert_eq!(settings.pool.in_use_kib(), 1020);
        // The gauges say it in bytes.
        let mut text = String::new();
        settings.pool.render_metrics(&mut text);
        assert!(
            text.contains("\ndvt_cds_fhir_inflight_bytes 1044480\n")
                && text.contains("\ndvt_cds_fhir_inflight_limit_bytes 1048576\n"),
            "{text}"
        );
        // Once it ends, the call is served, and gives its share back when done.
        drop(other);
        let got = gather(&source(), &settings, &ehr(), &req, deadline())
            .await
            .unwrap();
        assert_eq!(got.resources.len(), 51, "patient + 50 conditions");
        assert_eq!(settings.pool.in_use_kib(), 0);
    }

    #[tokio::test]
    async fn live_data_past_the_budget_is_412_on_a_first_page_and_a_note_later() {
        let c = |id: &str| json!({"resourceType": "Condition", "id": id});
        let big: Vec<Value> = (0..200).map(|i| c(&i.to_string())).collect();
        let page1 = searchset(&[c("1")], Some("https://ehr.example/fhir?p=2"));
        let page2 = searchset(&big, None);
        let settings = |max_call_bytes| FhirSettings {
            max_call_bytes,
            ..FhirSettings::default()
        };
        let source = || Table {
            answers: vec![
                (
                    "https://ehr.example/fhir/Condition?".into(),
                    200,
                    page1.clone(),
                ),
                ("https://ehr.example/fhir?p=2".into(), 200, page2.clone()),
            ],
            ..Table::default()
        };
        let req = request(full_prefetch_except(&["conditions"]), Some("t"));
        // Room for the first page only: the second is left out, with a note.
        let first = resource::allowance_for(page1.to_string().len());
        let got = gather(&source(), &settings(first + 100), &ehr(), &req, deadline())
            .await
            .unwrap();
        assert_eq!(got.resources.len(), 2, "patient + the first page");
        assert!(got.notes[0].contains("--fhir-max-bytes"), "{:?}", got.notes);
        assert_eq!(got.data_quality.len(), 1);
        assert_eq!(got.data_quality[0].code, DataQualityCode::PagingCutShort);
        // Not even room for the first page: the call cannot be answered.
        let err = gather(&source(), &settings(first - 1), &ehr(), &req, deadline())
            .await
            .unwrap_err();
        assert_eq!(err.query, "conditions (Condition search)");
        assert!(err.reason.contains("larger than --fhir-max-bytes"), "{err}");
    }

    #[tokio::test]
    async fn other_patients_resources_and_old_ones_are_left_out() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["observations"] = searchset(
            &[
                json!({"resourceType": "Observation", "id": "mine", "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-03-01"}),
                json!({"resourceType": "Observation", "id": "theirs", "subject": {"reference": "Patient/p2"}, "effectiveDateTime": "2026-03-01"}),
                json!({"resourceType": "Observation", "id": "old", "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-01"}),
            ],
            None,
        );
        prefetch["conditions"] = searchset(
            &[
                json!({"resourceType": "Condition", "id": "old-vte", "subject": {"reference": "Patient/p1"}, "onsetDateTime": "2001-01-01"}),
            ],
            None,
        );
        let got = gather_at(
            &Table::default(),
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, None),
            deadline(),
            now,
        )
        .await
        .unwrap();
        let ids: Vec<_> = got.resources.iter().filter_map(|r| r.id()).collect();
        assert_eq!(ids, ["p1", "old-vte", "mine"]);
        assert_eq!(got.notes.len(), 1);
        // Another patient's data left out is not paging cut short.
        assert!(got.data_quality.is_empty(), "{:?}", got.data_quality);
    }

    fn medication_request(id: &str, reference: &str) -> Value {
        json!({"resourceType": "MedicationRequest", "id": id, "status": "active",
               "subject": {"reference": "Patient/p1"},
               "medicationReference": {"reference": reference}})
    }

    fn medication(id: &str) -> Value {
        json!({"resourceType": "Medication", "id": id,
               "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1364430"}]}})
    }

    fn ids_of<'a>(resources: &'a [Box<Resource>], resource_type: &str) -> Vec<&'a str> {
        resources
            .iter()
            .filter(|r| r.resource_type().map(ResourceType::as_str) == Some(resource_type))
            .filter_map(|r| r.id())
            .collect()
    }

    #[tokio::test]
    async fn live_medication_searches_include_the_medications() {
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/MedicationRequest?".into(),
                200,
                json!({"resourceType": "Bundle", "type": "searchset", "entry": [
                    {"resource": medication_request("a", "Medication/m1"), "search": {"mode": "match"}},
                    {"resource": medication("m1"), "search": {"mode": "include"}}]}),
            )],
            ..Table::default()
        };
        let req = request(full_prefetch_except(&["medicationRequests"]), Some("t"));
        let got = gather(&source, &FhirSettings::default(), &ehr(), &req, deadline())
            .await
            .unwrap();
        let seen = source.seen.lock().unwrap();
        assert_eq!(
            seen[0].0,
            "https://ehr.example/fhir/MedicationRequest?patient=p1&_count=200&_include=MedicationRequest%3Amedication"
        );
        // The included Medication is passed on; nothing more is read.
        assert_eq!(seen.len(), 1);
        assert_eq!(ids_of(&got.resources, "Medication"), ["m1"]);
        assert_eq!(got.medication_reads, MedicationReads::default());
    }

    #[tokio::test]
    async fn unresolved_medication_references_are_read_once_each() {
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["medicationRequests"] = json!({"resourceType": "Bundle", "entry": [
            {"resource": medication_request("a", "Medication/m1")},
            {"resource": medication_request("b", "Medication/m1")},
            {"resource": medication_request("c", "#contained")},
            {"resource": medication_request("d", "Medication/inc")},
            {"resource": medication("inc"), "search": {"mode": "include"}}]});
        let source = Table {
            answers: vec![(
                "https://ehr.example/fhir/Medication/m1".into(),
                200,
                medication("m1"),
            )],
            ..Table::default()
        };
        let got = gather(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, Some("tok")),
            deadline(),
        )
        .await
        .unwrap();
        let seen = source.seen.lock().unwrap();
        assert_eq!(
            *seen,
            [(
                "https://ehr.example/fhir/Medication/m1".to_string(),
                Some("tok".to_string())
            )]
        );
        assert_eq!(ids_of(&got.resources, "Medication"), ["inc", "m1"]);
        assert_eq!(
            got.medication_reads,
            MedicationReads {
                read: 1,
                failed: 0,
                skipped: 0
            }
        );
    }

    #[tokio::test]
    async fn a_failed_medication_read_leaves_the_reference_unresolved() {
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["medicationRequests"] = searchset(
            &[
                medication_request("a", "Medication/m500"),
                medication_request("b", "Medication/m404"),
                medication_request("c", "Medication/refused"),
                medication_request("d", "Medication/not-json"),
                medication_request("e", "Medication/wrong-id"),
            ],
            None,
        );
        let source = Table {
            answers: vec![
                (
                    "https://ehr.example/fhir/Medication/m500".into(),
                    500,
                    json!({"resourceType": "OperationOutcome"}),
                ),
                (
                    "https://ehr.example/fhir/Medication/m404".into(),
                    404,
                    json!({"resourceType": "OperationOutcome"}),
                ),
                (
                    "https://ehr.example/fhir/Medication/not-json".into(),
                    200,
                    json!({"hello": "world"}),
                ),
                (
                    "https://ehr.example/fhir/Medication/wrong-id".into(),
                    200,
                    medication("other"),
                ),
            ],
            ..Table::default()
        };
        let got = gather(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, Some("t")),
            deadline(),
        )
        .await
        .expect("a failed Medication read is never an error of the call");
        assert!(ids_of(&got.resources, "Medication").is_empty());
        assert_eq!(ids_of(&got.resources, "MedicationRequest").len(), 5);
        assert_eq!(
            got.medication_reads,
            MedicationReads {
                read: 0,
                failed: 5,
                skipped: 0
            }
        );
    }

    #[tokio::test]
    async fn medication_reads_are_capped_per_call() {
        let n = medication::MAX_MEDICATION_READS + 5;
        let mut prefetch = full_prefetch_except(&[]);
        let requests: Vec<Value> = (0..n)
            .map(|i| medication_request(&format!("r{i}"), &format!("Medication/m{i}")))
            .collect();
        prefetch["medicationRequests"] = searchset(&requests, None);
        let source = Table {
            // Longest ids first: the table matches by prefix (`m1` would answer `m10`).
            answers: (0..n)
                .map(|i| {
                    (
                        format!("https://ehr.example/fhir/Medication/m{i}"),
                        200,
                        medication(&format!("m{i}")),
                    )
                })
                .rev()
                .collect(),
            ..Table::default()
        };
        let got = gather(
            &source,
            &FhirSettings::default(),
            &ehr(),
            &request(prefetch, Some("t")),
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(
            source.seen.lock().unwrap().len(),
            medication::MAX_MEDICATION_READS
        );
        // The first ones in record order are read; the rest stay unresolved.
        let read = ids_of(&got.resources, "Medication");
        assert_eq!(read.len(), medication::MAX_MEDICATION_READS);
        assert!(read.contains(&"m0") && !read.contains(&"m24"), "{read:?}");
        assert_eq!(
            got.medication_reads,
            MedicationReads {
                read: medication::MAX_MEDICATION_READS,
                failed: 0,
                skipped: 5
            }
        );
    }

    #[tokio::test]
    async fn without_a_server_to_query_no_medication_is_read() {
        let mut prefetch = full_prefetch_except(&[]);
        prefetch["medicationRequests"] =
            searchset(&[medication_request("a", "Medication/m1")], None);
        let mut req = request(prefetch.clone(), Some("t"));
        req.fhir_server = None;
        let source = Table::default();
        let got = gather(&source, &FhirSettings::default(), &ehr(), &req, deadline())
            .await
            .unwrap();
        assert_eq!(got.medication_reads.skipped, 1);
        // A server the client may not query is not asked either.
        let got = gather(
            &source,
            &FhirSettings::default(),
            &[],
            &request(prefetch, Some("t")),
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(got.medication_reads.skipped, 1);
        assert!(source.seen.lock().unwrap().is_empty());
    }

    #[test]
    fn templates_are_the_fixed_keys() {
        let t = prefetch_templates(Hook::PatientView);
        assert_eq!(t["patient"], "Patient/{{context.patientId}}");
        assert_eq!(
            t["conditions"],
            "Condition?patient={{context.patientId}}&_count=500"
        );
        assert_eq!(t.len(), 9);
        assert!(!t.contains_key("encounter"));
        assert_eq!(
            t["medicationRequests"],
            "MedicationRequest?patient={{context.patientId}}&_count=200&_include=MedicationRequest:medication"
        );
        assert_eq!(
            t["medicationStatements"],
            "MedicationStatement?patient={{context.patientId}}&_count=200&_include=MedicationStatement:medication"
        );
        let t = prefetch_templates(Hook::EncounterStart);
        assert_eq!(t["encounter"], "Encounter/{{context.encounterId}}");
    }

    #[test]
    fn read_urls_encode_the_id() {
        let base = Url::parse("https://ehr.example/fhir/").unwrap();
        assert_eq!(
            read_url(&base, "Patient", "a/b?c").as_str(),
            "https://ehr.example/fhir/Patient/a%2Fb%3Fc"
        );
    }
}

#[cfg(test)]
mod search_window_tests {
    use super::*;

    #[test]
    fn shipped_mappings_give_the_default_windows() {
        let m = crate::mappings::Mappings::embedded().expect("shipped mappings load");
        assert_eq!(
            SearchWindows::from_model(&m.model.windows),
            SearchWindows::default()
        );
    }

    #[test]
    fn a_wider_model_window_widens_the_search() {
        let m = crate::mappings::Mappings::embedded().expect("shipped mappings load");
        let mut w = m.model.windows.clone();
        w.pregnancy_evidence = 300;
        w.dvt_imaging = 10;
        let s = SearchWindows::from_model(&w);
        assert_eq!(s.observations, Some(300));
        assert_eq!(s.procedures, Some(300));
        assert_eq!(s.service_requests, Some(10));
    }
}
