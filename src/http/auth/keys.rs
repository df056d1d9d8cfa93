//! Key sources: where an issuer's public keys come from (its JWKS file or URL, or a
//! listed `jku`), cached for a lifetime and fetched by one caller at a time.
//!
//! Each source has its own locks, so a slow or hanging source delays only the calls that
//! need its keys (issue 10: one global lock let one issuer's hanging JWKS stall every
//! issuer). Keys expire (`Cache-Control: max-age`, at most an hour) so a key removed from
//! a JWKS stops verifying; a background task refreshes them before they do. A failed
//! fetch is not retried before a backoff (5 s doubling to 5 min), so a dead source is
//! not hammered by every call. The parsing and timing rules are pure functions of the
//! document and `now`, tested without a network.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};

/// Timeout of one JWKS request (connect to last byte).
pub const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Lifetime of keys served without `Cache-Control: max-age`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Keys are refetched at least this often, whatever the server says.
pub const MAX_TTL: Duration = Duration::from_secs(60 * 60);
/// ...and at most this often: no source is fetched more than once per 5 s.
pub const MIN_TTL: Duration = Duration::from_secs(5);
/// Lifetime when the server asks not to cache (`no-store`, `no-cache`): we cannot
/// revalidate on every call, so keys are kept a minute.
pub const SHORT_TTL: Duration = Duration::from_secs(60);
/// At most one refetch per source in this window for an unknown `kid`: an attacker
/// sending random `kid`s must not turn us into a request amplifier.
pub const KID_REFETCH_COOLDOWN: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// How often a JWKS file's modification time is looked at.
const FILE_POLL: Duration = Duration::from_secs(2);

/// The signing keys of one JWKS document.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The `kid`s, in order (to tell a changed set from a refresh).
    fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A JWKS document read key by key: a key we cannot use for verifying a signature
/// (an encryption key, a curve or type we do not support, a symmetric secret, no `kid`)
/// is skipped and counted, and the others still load (issue 10: one X25519 key used to
/// make the whole set unreadable).
#[derive(Debug)]
pub struct ParsedJwks {
    pub keys: KeySet,
    pub skipped: usize,
}

pub fn parse_jwks(bytes: &[u8]) -> Result<ParsedJwks, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a JWK Set ({{\"keys\": [...]}}): {e}"))?;
    let total = doc.keys.len();
    let keys: Vec<Jwk> = doc
        .keys
        .into_iter()
        .filter_map(|raw| serde_json::from_value::<Jwk>(raw).ok())
        .filter(verifies_signatures)
        .collect();
    Ok(ParsedJwks {
        skipped: total - keys.len(),
        keys: KeySet { keys },
    })
}

/// A public key with a `kid` for one of the algorithms we accept (RSA, EC P-256 / P-384),
/// not marked for encryption only.
fn verifies_signatures(k: &Jwk) -> bool {
    let kind_ok = match &k.algorithm {
        AlgorithmParameters::RSA(_) => true,
        AlgorithmParameters::EllipticCurve(p) => {
            matches!(p.curve, EllipticCurve::P256 | EllipticCurve::P384)
        }
        // Symmetric secrets and Ed25519 / X25519: never a verifying key here.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => false,
    };
    let use_ok = !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption));
    let ops_ok = k
        .common
        .key_operations
        .as_ref()
        .is_none_or(|ops| ops.contains(&KeyOperations::Verify));
    kind_ok && use_ok && ops_ok && k.common.key_id.is_some()
}

/// How long keys from a response may be used: `max-age` clamped to
/// [`MIN_TTL`, `MAX_TTL`]; [`SHORT_TTL`] for `no-store` / `no-cache`; [`DEFAULT_TTL`]
/// without either.
pub fn ttl_from_cache_control(value: Option<&str>) -> Duration {
    let Some(value) = value else {
        return DEFAULT_TTL;
    };
    let mut max_age = None;
    for directive in value.split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return SHORT_TTL;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok().or(max_age);
        }
    }
    match max_age {
        Some(s) => Duration::from_secs(s).clamp(MIN_TTL, MAX_TTL),
        None => DEFAULT_TTL,
    }
}

/// Wait before the next fetch after `failures` failures in a row (1, 2, ...).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF)
}

/// When keys loaded at `fetched_at` for `ttl` are refreshed in the background: at three
/// quarters of their life (a refresh that fails still leaves time for retries).
fn refresh_at(fetched_at: Instant, ttl: Duration) -> Instant {
    fetched_at + ttl * 3 / 4
}

/// Where a source's keys are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Url(url::Url),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Why no key came out of a source: the check named in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    KidUnknown,
    Unavailable,
}

impl KeyError {
    pub fn check(self) -> &'static str {
        match self {
            KeyError::KidUnknown => "kid unknown",
            KeyError::Unavailable => "jwks unavailable",
        }
    }
}

/// May a lookup refetch the source when the `kid` is not among its (fresh) keys?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnknownKid {
    Refetch,
    Fail,
}

/// One successful read of a source.
#[derive(Debug)]
pub struct Fetched {
    pub keys: Arc<KeySet>,
    pub skipped: usize,
    pub ttl: Duration,
    /// Modification time of a JWKS file when it was read.
    pub mtime: Option<SystemTime>,
}

#[derive(Debug)]
struct Loaded {
    keys: Arc<KeySet>,
    fetched_at: Instant,
    ttl: Duration,
    mtime: Option<SystemTime>,
}

/// What a source knows, and the rules deciding when it fetches. Pure: every method takes
/// `now`, so the timing rules are tested without waiting.
#[derive(Debug, Default)]
struct State {
    loaded: Option<Loaded>,
    /// Bumped by every fetch attempt: a caller that waited for another's fetch sees it
    /// changed and uses that result instead of fetching again (single flight).
    generation: u64,
    failures: u32,
    /// No fetch before this (backoff after a failure).
    retry_at: Option<Instant>,
    last_kid_refetch: Option<Instant>,
}

/// What a lookup does next.
#[derive(Debug)]
enum Plan {
    Found(Box<Jwk>),
    Fail(KeyError),
    /// Fetch, unless the generation moved on while waiting for the fetch lock.
    Fetch {
        generation: u64,
    },
}

impl State {
    fn fresh(&self, now: Instant) -> Option<&Loaded> {
        self.loaded.as_ref().filter(|l| now < l.fetched_at + l.ttl)
    }

    fn in_backoff(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now < t)
    }

    fn plan(&mut self, kid: &str, on_unknown: OnUnknownKid, now: Instant) -> Plan {
        if let Some(l) = self.fresh(now) {
            if let Some(k) = l.keys.find(kid) {
                return Plan::Found(Box::new(k.clone()));
            }
            let cooled = self
                .last_kid_refetch
                .is_none_or(|t| now.duration_since(t) >= KID_REFETCH_COOLDOWN);
            if on_unknown == OnUnknownKid::Fail || !cooled || self.in_backoff(now) {
                return Plan::Fail(KeyError::KidUnknown);
            }
            self.last_kid_refetch = Some(now);
            return Plan::Fetch {
                generation: self.generation,
            };
        }
        // No keys, or expired ones.
        if self.in_backoff(now) {
            return Plan::Fail(KeyError::Unavailable);
        }
        Plan::Fetch {
            generation: self.generation,
        }
    }

    /// The key after a fetch (ours or the one we waited for).
    fn find_fresh(&self, kid: &str, now: Instant) -> Result<Jwk, KeyError> {
        match self.fresh(now) {
            Some(l) => l.keys.find(kid).cloned().ok_or(KeyError::KidUnknown),
            None => Err(KeyError::Unavailable),
        }
    }

    fn record(&mut self, result: &Result<Fetched, String>, now: Instant) {
        self.generation += 1;
        match result {
            Ok(f) => {
                self.loaded = Some(Loaded {
                    keys: f.keys.clone(),
                    fetched_at: now,
                    ttl: f.ttl,
                    mtime: f.mtime,
                });
                self.failures = 0;
                self.retry_at = None;
            }
            Err(_) => {
                // Keys already held stay usable until their own expiry.
                self.failures = self.failures.saturating_add(1);
                self.retry_at = Some(now + backoff(self.failures));
            }
        }
    }

    /// When the background task should next look at this source: before its keys
    /// expire, after a failure's backoff, and (a file) every [`FILE_POLL`]. `None`: never
    /// loaded and not `eager` (a `jku` is fetched only once a token needs it).
    fn next_refresh(&self, eager: bool, is_file: bool, now: Instant) -> Option<Instant> {
        let natural = match &self.loaded {
            Some(l) => {
                let due = refresh_at(l.fetched_at, l.ttl);
                if is_file {
                    due.min(now + FILE_POLL)
                } else {
                    due
                }
            }
            None if eager => now,
            None => return None,
        };
        // Never earlier than the backoff allows: `refresh_due` says no until then.
        Some(self.retry_at.map_or(natural, |t| natural.max(t)))
    }

    /// Is a background refresh due now? For a file, also when it changed on disk.
    fn refresh_due(&self, mtime_now: Option<SystemTime>, now: Instant) -> bool {
        if self.in_backoff(now) {
            return false;
        }
        match &self.loaded {
            None => true,
            Some(l) => {
                now >= refresh_at(l.fetched_at, l.ttl)
                    || (mtime_now.is_some() && mtime_now != l.mtime)
            }
        }
    }
}

/// One key source with its own cache, fetch lock and background refresh.
pub struct KeySource {
    location: Location,
    http: reqwest::Client,
    state: Mutex<State>,
    /// Held by the one caller fetching this source; only calls needing this source wait.
    fetching: tokio::sync::Mutex<()>,
    /// Wakes the background task when keys first load (a `jku` loads on first use).
    loaded: Arc<tokio::sync::Notify>,
}

impl KeySource {
    pub fn new(location: Location, http: reqwest::Client) -> Self {
        KeySource {
            location,
            http,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
            loaded: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read a JWKS file now (startup: an unreadable file or one without a usable key
    /// stops the process with a message).
    pub fn load_file_now(&self) -> Result<(), String> {
        let Location::File(p) = &self.location else {
            return Err("not a file".into());
        };
        let fetched = read_file(p)?;
        if fetched.keys.is_empty() {
            return Err(format!(
                "{}: no usable signing key ({} skipped: encryption, unsupported or without kid)",
                p.display(),
                fetched.skipped
            ));
        }
        self.record(Ok(fetched));
        Ok(())
    }

    /// The key `kid`: from the cache while fresh; otherwise fetched, one caller at a time.
    pub async fn key(&self, kid: &str, on_unknown: OnUnknownKid) -> Result<Jwk, KeyError> {
        let generation = match self.state().plan(kid, on_unknown, Instant::now()) {
            Plan::Found(k) => return Ok(*k),
            Plan::Fail(e) => return Err(e),
            Plan::Fetch { generation } => generation,
        };
        let _flight = self.fetching.lock().await;
        if self.state().generation == generation {
            let result = self.fetch().await;
            self.record(result);
        }
        self.state().find_fresh(kid, Instant::now())
    }

    /// The key `kid` if held and fresh, without any fetch.
    pub fn cached(&self, kid: &str) -> Option<Jwk> {
        self.state()
            .fresh(Instant::now())
            .and_then(|l| l.keys.find(kid).cloned())
    }

    fn record(&self, result: Result<Fetched, String>) {
        let now = Instant::now();
        let (first, changed) = {
            let mut s = self.state();
            let before = s.loaded.as_ref().map(|l| l.keys.kids());
            let failures = s.failures;
            s.record(&result, now);
            if let Err(e) = &result {
                tracing::warn!(source = %self.location, error = %e,
                    retry_in_s = backoff(failures + 1).as_secs(), "JWKS fetch failed");
            }
            let after = s.loaded.as_ref().map(|l| l.keys.kids());
            (
                before.is_none() && after.is_some(),
                result.is_ok() && before != after,
            )
        };
        if let Ok(f) = &result {
            // Routine refreshes log at debug: a short max-age would flood the log.
            if changed {
                tracing::info!(source = %self.location, keys = f.keys.len(), skipped = f.skipped,
                    ttl_s = f.ttl.as_secs(), "JWKS loaded");
            } else {
                tracing::debug!(source = %self.location, keys = f.keys.len(), skipped = f.skipped,
                    ttl_s = f.ttl.as_secs(), "JWKS refreshed");
            }
            if f.skipped > 0 && changed {
                tracing::warn!(source = %self.location, skipped = f.skipped,
                    "JWKS: keys skipped (encryption keys, unsupported types or curves, no kid)");
            }
        }
        if first {
            self.loaded.notify_one();
        }
    }

    async fn fetch(&self) -> Result<Fetched, String> {
        match &self.location {
            Location::File(p) => read_file(p),
            Location::Url(u) => {
                // The client's own timeout bounds this too; this one also covers a body
                // that trickles in.
                match tokio::time::timeout(JWKS_TIMEOUT, fetch_url(&self.http, u)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {} s", JWKS_TIMEOUT.as_secs())),
                }
            }
        }
    }

    /// Keep this source's keys fresh: fetch now if `eager` (a configured `jwks_url` at
    /// startup), then before each expiry, retrying failures with backoff. Holds only a
    /// weak reference: the task ends when the source is dropped.
    pub fn refresh_in_background(self: &Arc<Self>, eager: bool) {
        let weak = Arc::downgrade(self);
        let loaded = self.loaded.clone();
        tokio::spawn(refresh_loop(weak, loaded, eager));
    }

    async fn refresh_if_due(&self) {
        let mtime = match &self.location {
            Location::File(p) => file_mtime(p),
            Location::Url(_) => None,
        };
        let generation = {
            let s = self.state();
            if !s.refresh_due(mtime, Instant::now()) {
                return;
            }
            s.generation
        };
        let _flight = self.fetching.lock().await;
        if self.state().generation == generation {
            let result = self.fetch().await;
            self.record(result);
        }
    }
}

async fn refresh_loop(weak: Weak<KeySource>, loaded: Arc<tokio::sync::Notify>, eager: bool) {
    loop {
        let next = match weak.upgrade() {
            Some(src) => {
                let is_file = matches!(src.location, Location::File(_));
                src.state().next_refresh(eager, is_file, Instant::now())
            }
            None => return,
        };
        match next {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => loaded.notified().await,
        }
        let Some(src) = weak.upgrade() else { return };
        src.refresh_if_due().await;
    }
}

fn file_mtime(p: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn read_file(p: &std::path::Path) -> Result<Fetched, String> {
    let mtime = file_mtime(p);
    let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let parsed = parse_jwks(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(Fetched {
        keys: Arc::new(parsed.keys),
        skipped: parsed.skipped,
        ttl: DEFAULT_TTL,
        mtime,
    })
}

async fn fetch_url(http: &reqwest::Client, url: &url::Url) -> Result<Fetched, String> {
    let mut resp = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let ttl = ttl_from_cache_control(
        resp.headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err("JWKS larger than 1 MiB".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err("JWKS larger than 1 MiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    let parsed = parse_jwks(&body)?;
    Ok(Fetched {
        keys: Arc::new(parsed.keys),
        skipped: parsed.skipped,
        ttl,
        mtime: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A public P-384 key as a JWK (a fixed point; only its shape matters here).
    fn ec384(kid: &str) -> serde_json::Value {
        json!({"kty": "EC", "crv": "P-384", "kid": kid, "use": "sig", "alg": "ES384",
            "x": "nMtAOFJJBhKg9Kxel2MuX6Qj_BFGcrsHRf1Ul09dZKB-7ut0z7nvgagzKjfZj5so",
            "y": "5Fd8GnZ29f6ksOI4bRjaeARS8NO7y8JL9D6tu6QzBBak3B5xaVAqbhT9RYJFvbAR"})
    }

    fn jwks(keys: &[serde_json::Value]) -> Vec<u8> {
        json!({ "keys": keys }).to_string().into_bytes()
    }

    #[test]
    fn unusable_keys_are_skipped_one_by_one() {
        let doc = jwks(&[
            json!({"kty": "OKP", "crv": "X25519", "use": "enc", "kid": "x25519",
                "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}),
            json!({"kty": "EC", "crv": "secp256k1", "kid": "k1",
                "x": "WfjOrWF3GAYrkHLyDmDSLlHDH7LLnhbs6jBNtVcENAM",
                "y": "vVJGg0-F1DDMxZzT7KoTrsE5PO6nnz9tpMZ2Dd27YP0"}),
            json!({"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            {
                let mut k = ec384("enc-ec");
                k["use"] = json!("enc");
                k
            },
            {
                let mut k = ec384("wrap-only");
                k["key_ops"] = json!(["wrapKey"]);
                k
            },
            {
                let mut k = ec384("x");
                k.as_object_mut().unwrap().remove("kid");
                k
            },
            json!({"kty": "RSA", "kid": "broken"}),
            json!("not an object"),
            ec384("good-es384"),
            json!({"kty": "RSA", "kid": "good-rsa", "n": "sXch", "e": "AQAB"}),
        ]);
        let parsed = parse_jwks(&doc).unwrap();
        assert_eq!(parsed.keys.len(), 2);
        assert_eq!(parsed.skipped, 9);
        assert!(parsed.keys.find("good-es384").is_some());
        assert!(parsed.keys.find("good-rsa").is_some());
        assert!(parsed.keys.find("x25519").is_none());
        // Not a set at all is still an error.
        assert!(parse_jwks(b"[1, 2]").is_err());
        assert!(parse_jwks(b"{\"keys\": 5}").is_err());
    }

    #[test]
    fn cache_control_sets_the_key_lifetime_within_bounds() {
        assert_eq!(ttl_from_cache_control(None), DEFAULT_TTL);
        assert_eq!(ttl_from_cache_control(Some("public")), DEFAULT_TTL);
        assert_eq!(
            ttl_from_cache_control(Some("max-age=600")),
            Duration::from_secs(600)
        );
        assert_eq!(
            ttl_from_cache_control(Some("public, Max-Age=\"120\", must-revalidate")),
            Duration::from_secs(120)
        );
        assert_eq!(ttl_from_cache_control(Some("max-age=86400")), MAX_TTL);
        assert_eq!(ttl_from_cache_control(Some("max-age=1")), MIN_TTL);
        assert_eq!(ttl_from_cache_control(Some("max-age=0")), MIN_TTL);
        assert_eq!(ttl_from_cache_control(Some("max-age=soon")), DEFAULT_TTL);
        assert_eq!(ttl_from_cache_control(Some("no-store")), SHORT_TTL);
        assert_eq!(
            ttl_from_cache_control(Some("max-age=3600, no-cache")),
            SHORT_TTL
        );
    }

    #[test]
    fn backoff_doubles_from_5_s_to_5_min() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    fn fetched(keys: &[serde_json::Value], ttl: Duration) -> Result<Fetched, String> {
        let p = parse_jwks(&jwks(keys)).unwrap();
        Ok(Fetched {
            keys: Arc::new(p.keys),
            skipped: p.skipped,
            ttl,
            mtime: None,
        })
    }

    #[test]
    fn keys_expire_after_their_ttl_and_are_then_refetched() {
        let t0 = Instant::now();
        let mut s = State::default();
        assert!(matches!(
            s.plan("a", OnUnknownKid::Refetch, t0),
            Plan::Fetch { .. }
        ));
        s.record(&fetched(&[ec384("a")], Duration::from_secs(10)), t0);
        assert!(matches!(
            s.plan("a", OnUnknownKid::Refetch, t0 + Duration::from_secs(9)),
            Plan::Found(_)
        ));
        // Expired: no longer found from the cache, a fetch is planned.
        let later = t0 + Duration::from_secs(10);
        assert!(matches!(
            s.plan("a", OnUnknownKid::Fail, later),
            Plan::Fetch { .. }
        ));
        // The key was removed from the JWKS: after the refetch it is unknown.
        s.record(&fetched(&[ec384("b")], Duration::from_secs(10)), later);
        assert_eq!(s.find_fresh("a", later).unwrap_err(), KeyError::KidUnknown);
        assert!(s.find_fresh("b", later).is_ok());
    }

    #[test]
    fn a_failure_is_not_retried_before_its_backoff() {
        let t0 = Instant::now();
        let mut s = State::default();
        s.record(&Err("down".into()), t0);
        assert!(matches!(
            s.plan("a", OnUnknownKid::Refetch, t0 + Duration::from_secs(4)),
            Plan::Fail(KeyError::Unavailable)
        ));
        assert!(matches!(
            s.plan("a", OnUnknownKid::Refetch, t0 + Duration::from_secs(5)),
            Plan::Fetch { .. }
        ));
        s.record(&Err("down".into()), t0 + Duration::from_secs(5));
        // Second failure: 10 s.
        assert!(matches!(
            s.plan("a", OnUnknownKid::Refetch, t0 + Duration::from_secs(14)),
            Plan::Fail(KeyError::Unavailable)
        ));
        // A success clears the backoff.
        s.record(
            &fetched(&[ec384("a")], DEFAULT_TTL),
            t0 + Duration::from_secs(15),
        );
        assert_eq!(s.failures, 0);
        assert!(matches!(
            s.plan("a", OnUnknownKid::Refetch, t0 + Duration::from_secs(15)),
            Plan::Found(_)
        ));
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_once_per_cooldown() {
        let t0 = Instant::now();
        let mut s = State::default();
        s.record(&fetched(&[ec384("a")], DEFAULT_TTL), t0);
        assert!(matches!(
            s.plan("x", OnUnknownKid::Refetch, t0),
            Plan::Fetch { .. }
        ));
        s.record(&fetched(&[ec384("a")], DEFAULT_TTL), t0);
        for kid in ["y", "z", "x"] {
            assert!(matches!(
                s.plan(kid, OnUnknownKid::Refetch, t0 + Duration::from_secs(4)),
                Plan::Fail(KeyError::KidUnknown)
            ));
        }
        assert!(matches!(
            s.plan("y", OnUnknownKid::Refetch, t0 + Duration::from_secs(5)),
            Plan::Fetch { .. }
        ));
        // A lookup that may not refetch never plans one.
        assert!(matches!(
            s.plan("q", OnUnknownKid::Fail, t0 + Duration::from_secs(60)),
            Plan::Fail(KeyError::KidUnknown)
        ));
    }

    #[test]
    fn the_background_refresh_runs_before_expiry_and_never_spins() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(100);
        let mut s = State::default();
        // A jku never used: nothing to do; a configured URL: fetch now.
        assert_eq!(s.next_refresh(false, false, t0), None);
        assert_eq!(s.next_refresh(true, false, t0), Some(t0));
        s.record(&fetched(&[ec384("a")], ttl), t0);
        assert_eq!(
            s.next_refresh(false, false, t0),
            Some(t0 + Duration::from_secs(75))
        );
        assert!(!s.refresh_due(None, t0 + Duration::from_secs(74)));
        assert!(s.refresh_due(None, t0 + Duration::from_secs(75)));
        // A file is looked at every FILE_POLL, re-read only when it changed.
        assert_eq!(s.next_refresh(false, true, t0), Some(t0 + FILE_POLL));
        assert!(s.refresh_due(Some(SystemTime::now()), t0 + FILE_POLL));
        // After a failed kid refetch the next look waits for the backoff, and a look
        // that is not due is always in the future (no busy loop).
        s.record(&Err("down".into()), t0 + Duration::from_secs(1));
        for dt in [1, 5, 6, 30, 74] {
            let now = t0 + Duration::from_secs(dt);
            let next = s.next_refresh(false, false, now).unwrap();
            assert!(s.refresh_due(None, now) || next > now, "spins at {dt} s");
        }
    }

    /// A JWKS server on loopback that counts requests and answers after `delay`.
    async fn jwks_server(body: Vec<u8>, delay: Duration) -> (url::Url, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let body = body.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    body
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            url::Url::parse(&format!("http://{}/jwks", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, hits)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn concurrent_calls_share_one_fetch() {
        let (url, hits) = jwks_server(jwks(&[ec384("a")]), Duration::from_millis(300)).await;
        let source = Arc::new(KeySource::new(Location::Url(url), client()));
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let s = source.clone();
                tokio::spawn(async move { s.key("a", OnUnknownKid::Refetch).await })
            })
            .collect();
        for c in calls {
            assert!(c.await.unwrap().is_ok());
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_hanging_source_does_not_delay_another() {
        // Accepts connections (the kernel does) and never answers.
        let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hang_url =
            url::Url::parse(&format!("http://{}/jwks", hang.local_addr().unwrap())).unwrap();
        let hanging = Arc::new(KeySource::new(Location::Url(hang_url), client()));
        let (url, _) = jwks_server(jwks(&[ec384("b")]), Duration::ZERO).await;
        let healthy = Arc::new(KeySource::new(Location::Url(url), client()));
        let waiting: Vec<_> = (0..4)
            .map(|_| {
                let s = hanging.clone();
                tokio::spawn(async move { s.key("a", OnUnknownKid::Refetch).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        assert!(healthy.key("b", OnUnknownKid::Refetch).await.is_ok());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        for w in waiting {
            w.abort();
        }
    }

    #[tokio::test]
    async fn a_file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(&[ec384("old")])).unwrap();
        let source = Arc::new(KeySource::new(Location::File(path.clone()), client()));
        source.load_file_now().unwrap();
        source.refresh_in_background(false);
        assert!(source.cached("old").is_some());
        std::fs::write(&path, jwks(&[ec384("new")])).unwrap();
        let until = Instant::now() + FILE_POLL * 3;
        while source.cached("old").is_some() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            source.cached("old").is_none(),
            "a removed key still verifies"
        );
        assert!(source.cached("new").is_some());
    }

    #[test]
    fn a_file_without_a_usable_key_is_a_startup_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(
            &path,
            jwks(&[json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0"})]),
        )
        .unwrap();
        let source = KeySource::new(Location::File(path), client());
        let err = source.load_file_now().unwrap_err();
        assert!(
            err.contains("no usable signing key") && err.contains("1 skipped"),
            "{err}"
        );
    }
}
