//! Client authentication: the EHR's JWT on every CDS Hooks route.
//!
//! Spec: `cds-hooks-2.0.1.md` "Trusting CDS Clients" and "JWT Signing Algorithm";
//! contract.md "Security". Checks, in order: algorithm (ES384, RS384, ES256, RS256 only),
//! issuer on the allowlist, key by `kid` from that issuer's JWKS (a `jku` followed only
//! if listed for the issuer), signature, `aud`, `exp` / `nbf` with leeway, `jti` not
//! replayed. A failure names the check for the log; the client only learns "401".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

use crate::fhir::ServerBase;

/// Leeway for `exp` and `nbf` (clock skew between EHR and service).
pub const LEEWAY_SECS: u64 = 60;
/// At most one JWKS refetch per source in this window: an attacker sending random
/// `kid`s must not turn us into a request amplifier.
const REFETCH_COOLDOWN: Duration = Duration::from_secs(5);
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// Most live `jti`s remembered. Tokens live minutes, so a well-behaved EHR stays far
/// below; past this the service refuses new tokens rather than forget one (which would
/// let it be replayed) or grow without bound (about 100 bytes an entry: ~20 MB here).
pub const REPLAY_CACHE_CAP: usize = 200_000;

/// `--auth-config FILE` (TOML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    #[serde(default)]
    pub issuer: Vec<IssuerConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    pub iss: String,
    /// JWKS file; a relative path is relative to the config file.
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    /// `jku` header values that may be followed for this issuer.
    #[serde(default)]
    pub jku: Vec<String>,
    /// FHIR servers (base URLs) this issuer's calls may name in `fhirServer`; none:
    /// prefetch only (besides `--fhir-server`).
    #[serde(default)]
    pub fhir_servers: Vec<ServerBase>,
}

#[derive(Debug, Clone)]
enum KeySource {
    File(PathBuf),
    Url(url::Url),
}

#[derive(Default)]
struct KeyCache {
    keys: Option<JwkSet>,
    last_refetch: Option<Instant>,
}

struct Issuer {
    source: KeySource,
    jku_allowed: Vec<String>,
    fhir_servers: Arc<[ServerBase]>,
}

/// Why a token was refused: for the log only.
#[derive(Debug)]
pub struct AuthFailure {
    pub check: &'static str,
    pub iss: Option<String>,
    pub kid: Option<String>,
    pub jti: Option<String>,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "check={} iss={} kid={} jti={}",
            self.check,
            self.iss.as_deref().map(clip).unwrap_or("-"),
            self.kid.as_deref().map(clip).unwrap_or("-"),
            self.jti.as_deref().map(clip).unwrap_or("-"),
        )
    }
}

/// Header and claim values are attacker-controlled: keep log lines short.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(100) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    exp: u64,
    iat: Option<serde_json::Value>,
    jti: Option<String>,
}

/// What a verified token tells us: who called (for the log), and where its calls may
/// query FHIR data.
#[derive(Debug, Clone)]
pub struct Verified {
    pub iss: String,
    pub jti: String,
    /// The issuer's `fhir_servers`.
    pub fhir_servers: Arc<[ServerBase]>,
}

pub struct Authenticator {
    issuers: HashMap<String, Issuer>,
    /// Keys per source: the configured JWKS (by file path or URL) and listed `jku`s.
    caches: tokio::sync::Mutex<HashMap<String, KeyCache>>,
    /// `(iss, jti)` of live tokens already used.
    seen: Mutex<ReplayCache>,
    http: reqwest::Client,
}

impl Authenticator {
    /// Read and check `--auth-config`: every issuer has exactly one key source, files
    /// are readable JWK sets. Errors name the file and the issuer.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--auth-config {}: {e}", path.display()))?;
        let file: AuthFile =
            toml::from_str(&text).map_err(|e| format!("--auth-config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_config(file, base).map_err(|e| format!("--auth-config {}: {e}", path.display()))
    }

    pub fn from_config(file: AuthFile, base: &Path) -> Result<Self, String> {
        if file.issuer.is_empty() {
            return Err("no [[issuer]]: list at least one trusted EHR".into());
        }
        let mut issuers = HashMap::new();
        let mut caches = HashMap::new();
        for i in file.issuer {
            let source = match (i.jwks_file, i.jwks_url) {
                (Some(f), None) => {
                    let f = if f.is_relative() { base.join(f) } else { f };
                    let set = read_jwks_file(&f).map_err(|e| format!("issuer {}: {e}", i.iss))?;
                    caches.insert(
                        source_key(&KeySource::File(f.clone())),
                        KeyCache {
                            keys: Some(set),
                            last_refetch: None,
                        },
                    );
                    KeySource::File(f)
                }
                (None, Some(u)) => KeySource::Url(
                    parse_http_url(&u).map_err(|e| format!("issuer {}: jwks_url {e}", i.iss))?,
                ),
                _ => {
                    return Err(format!(
                        "issuer {}: give exactly one of jwks_file or jwks_url",
                        i.iss
                    ));
                }
            };
            for u in &i.jku {
                parse_http_url(u).map_err(|e| format!("issuer {}: jku {e}", i.iss))?;
            }
            let jku_allowed = i.jku;
            if issuers
                .insert(
                    i.iss.clone(),
                    Issuer {
                        source,
                        jku_allowed,
                        fhir_servers: i.fhir_servers.into(),
                    },
                )
                .is_some()
            {
                return Err(format!("issuer {} is listed twice", i.iss));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            // A redirect could lead around the jku allowlist.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Authenticator {
            issuers,
            caches: tokio::sync::Mutex::new(caches),
            seen: Mutex::new(ReplayCache::new(REPLAY_CACHE_CAP)),
            http,
        })
    }

    pub fn issuer_count(&self) -> usize {
        self.issuers.len()
    }

    /// Each issuer and the FHIR servers it lists (for the startup log).
    pub fn fhir_servers(&self) -> impl Iterator<Item = (&str, &[ServerBase])> {
        self.issuers
            .iter()
            .map(|(iss, i)| (iss.as_str(), &*i.fhir_servers))
    }

    /// Verify `token` for a call to `audience` (public URL + route).
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Verified, AuthFailure> {
        let mut fail = AuthFailure {
            check: "header",
            iss: None,
            kid: None,
            jti: None,
        };
        // `alg: none` and unknown algorithms do not even parse as a header.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| fail_with(&mut fail, "header"))?;
        fail.kid = header.kid.clone();
        if !matches!(
            header.alg,
            Algorithm::ES384 | Algorithm::RS384 | Algorithm::ES256 | Algorithm::RS256
        ) {
            return Err(fail_with(&mut fail, "alg"));
        }
        let Some(kid) = header.kid.clone() else {
            return Err(fail_with(&mut fail, "kid missing"));
        };
        // Peek at the claims to pick the issuer's keys; nothing is trusted before the
        // signature is checked below.
        let peek = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token)
            .map_err(|_| fail_with(&mut fail, "claims"))?;
        fail.iss = peek
            .claims
            .get("iss")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        fail.jti = peek
            .claims
            .get("jti")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let Some(iss) = fail.iss.clone() else {
            return Err(fail_with(&mut fail, "iss missing"));
        };
        let Some(issuer) = self.issuers.get(&iss) else {
            return Err(fail_with(&mut fail, "iss not allowed"));
        };
        let source = match &header.jku {
            None => issuer.source.clone(),
            Some(jku) if issuer.jku_allowed.iter().any(|a| a == jku) => {
                match url::Url::parse(jku) {
                    Ok(u) => KeySource::Url(u),
                    Err(_) => return Err(fail_with(&mut fail, "jku")),
                }
            }
            Some(_) => return Err(fail_with(&mut fail, "jku not allowed")),
        };
        let jwk = self
            .key(&source, &kid)
            .await
            .map_err(|check| fail_with(&mut fail, check))?;
        let key = decoding_key(&jwk, header.alg).map_err(|check| fail_with(&mut fail, check))?;

        let mut v = Validation::new(header.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_audience(&[audience]);
        v.set_issuer(&[&iss]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| {
            let check = match e.kind() {
                ErrorKind::InvalidSignature => "signature",
                ErrorKind::ExpiredSignature => "exp",
                ErrorKind::ImmatureSignature => "nbf",
                ErrorKind::InvalidAudience => "aud",
                ErrorKind::InvalidIssuer => "iss",
                ErrorKind::MissingRequiredClaim(_) => "required claim missing",
                ErrorKind::InvalidAlgorithm => "alg does not match key",
                _ => "token",
            };
            fail_with(&mut fail, check)
        })?;
        let claims = data.claims;
        if claims.iat.is_none() {
            return Err(fail_with(&mut fail, "iat missing"));
        }
        let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
            return Err(fail_with(&mut fail, "jti missing"));
        };
        self.check_replay(&claims.iss, &jti, claims.exp)
            .map_err(|check| fail_with(&mut fail, check))?;
        Ok(Verified {
            iss: claims.iss,
            jti,
            fhir_servers: issuer.fhir_servers.clone(),
        })
    }

    /// A `jti` is accepted once within its token's lifetime (exp + leeway).
    fn check_replay(&self, iss: &str, jti: &str, exp: u64) -> Result<(), &'static str> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.check(iss, jti, exp.saturating_add(LEEWAY_SECS), now)
    }

    /// The key `kid` from `source`: cached; refetched once when unknown.
    async fn key(&self, source: &KeySource, kid: &str) -> Result<Jwk, &'static str> {
        let sk = source_key(source);
        let mut caches = self.caches.lock().await;
        let cache = caches.entry(sk).or_default();
        if let Some(k) = cache.keys.as_ref().and_then(|s| s.find(kid)) {
            return Ok(k.clone());
        }
        let may_refetch = cache.keys.is_none()
            || cache
                .last_refetch
                .is_none_or(|t| t.elapsed() >= REFETCH_COOLDOWN);
        if !may_refetch {
            return Err("kid unknown");
        }
        cache.last_refetch = Some(Instant::now());
        let fetched = match source {
            KeySource::File(p) => read_jwks_file(p).map_err(|e| {
                tracing::warn!(file = %p.display(), error = %e, "JWKS file unreadable");
                "jwks unavailable"
            }),
            KeySource::Url(u) => self.fetch_jwks(u).await.map_err(|e| {
                tracing::warn!(url = %u, error = %e, "JWKS fetch failed");
                "jwks unavailable"
            }),
        };
        match fetched {
            Ok(set) => {
                let found = set.find(kid).cloned();
                cache.keys = Some(set);
                found.ok_or("kid unknown")
            }
            Err(check) => Err(check),
        }
    }

    async fn fetch_jwks(&self, url: &url::Url) -> Result<JwkSet, String> {
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        if bytes.len() > 1 << 20 {
            return Err("JWKS larger than 1 MiB".into());
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("not a JWK Set: {e}"))
    }
}

fn fail_with(fail: &mut AuthFailure, check: &'static str) -> AuthFailure {
    AuthFailure {
        check,
        iss: fail.iss.take(),
        kid: fail.kid.take(),
        jti: fail.jti.take(),
    }
}

fn parse_http_url(s: &str) -> Result<url::Url, String> {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(format!("\"{s}\": expected an absolute http(s) URL")),
    }
}

fn source_key(s: &KeySource) -> String {
    match s {
        KeySource::File(p) => format!("file:{}", p.display()),
        KeySource::Url(u) => format!("url:{u}"),
    }
}

fn read_jwks_file(p: &Path) -> Result<JwkSet, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a JWK Set: {e}", p.display()))
}

/// The verifying key, only if the JWK's type (and its `alg`, when given) fits the
/// token's algorithm: an RSA or EC public key is never used as an HMAC secret.
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, &'static str> {
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        _ => false,
    };
    if !fits {
        return Err("key type does not match alg");
    }
    if let Some(ka) = jwk.common.key_algorithm {
        let same = matches!(
            (ka, alg),
            (KeyAlgorithm::RS256, Algorithm::RS256)
                | (KeyAlgorithm::RS384, Algorithm::RS384)
                | (KeyAlgorithm::ES256, Algorithm::ES256)
                | (KeyAlgorithm::ES384, Algorithm::ES384)
        );
        if !same {
            return Err("key alg does not match alg");
        }
    }
    DecodingKey::from_jwk(jwk).map_err(|_| "key unusable")
}

/// The `jti`s of live tokens, each kept until its token is dead anyway (`exp` + leeway).
/// A map for the lookup and a min-heap by expiry for the clean-up, so each call costs
/// O(log n) however many tokens are live (a linear sweep over 10,000 entries was seen as
/// a slowdown by the JWT fuzzer).
#[derive(Debug)]
pub struct ReplayCache {
    live: HashMap<(String, String), u64>,
    by_expiry: std::collections::BinaryHeap<std::cmp::Reverse<(u64, String, String)>>,
    cap: usize,
}

impl ReplayCache {
    pub fn new(cap: usize) -> Self {
        ReplayCache {
            live: HashMap::new(),
            by_expiry: std::collections::BinaryHeap::new(),
            cap,
        }
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Accept `(iss, jti)` once until `dead_after` (unix s); `now` is the current time.
    pub fn check(
        &mut self,
        iss: &str,
        jti: &str,
        dead_after: u64,
        now: u64,
    ) -> Result<(), &'static str> {
        self.expire(now);
        let key = (iss.to_string(), jti.to_string());
        if self.live.contains_key(&key) {
            return Err("jti replayed");
        }
        if dead_after < now {
            // Already dead: the exp check refuses it before we get here; nothing to keep.
            return Ok(());
        }
        if self.live.len() >= self.cap {
            return Err("jti cache full (too many live tokens)");
        }
        self.by_expiry.push(std::cmp::Reverse((
            dead_after,
            key.0.clone(),
            key.1.clone(),
        )));
        self.live.insert(key, dead_after);
        Ok(())
    }

    /// Forget every token dead before `now`.
    fn expire(&mut self, now: u64) {
        while let Some(std::cmp::Reverse((dead_after, _, _))) = self.by_expiry.peek() {
            if *dead_after >= now {
                break;
            }
            if let Some(std::cmp::Reverse((_, iss, jti))) = self.by_expiry.pop() {
                self.live.remove(&(iss, jti));
            }
        }
    }
}

#[cfg(test)]
mod replay_tests {
    use super::ReplayCache;

    #[test]
    fn a_jti_is_accepted_once_while_its_token_lives() {
        let mut c = ReplayCache::new(10);
        assert_eq!(c.check("ehr", "a", 100, 10), Ok(()));
        assert_eq!(c.check("ehr", "a", 100, 50), Err("jti replayed"));
        // The same jti from another issuer is another token.
        assert_eq!(c.check("other", "a", 100, 50), Ok(()));
        // Still refused at its last live second, forgotten after.
        assert_eq!(c.check("ehr", "a", 100, 100), Err("jti replayed"));
        assert_eq!(c.check("ehr", "a", 200, 101), Ok(()));
    }

    #[test]
    fn dead_entries_are_dropped_in_expiry_order() {
        let mut c = ReplayCache::new(1_000);
        for i in 0..500u64 {
            c.check("ehr", &i.to_string(), 1_000 + (i * 7919) % 500, 0)
                .unwrap();
        }
        assert_eq!(c.len(), 500);
        c.check("ehr", "new", 5_000, 1_250).unwrap();
        // Those dead before 1250 (expiry 1000..=1249) are gone, the rest remain.
        assert_eq!(c.len(), 250 + 1);
        // "0" died at 1000: usable again; "1" (expiry 1000 + 7919 % 500 = 1419) is live.
        assert_eq!(c.check("ehr", "0", 9_999, 1_250), Ok(()));
        assert_eq!(c.check("ehr", "1", 9_999, 1_250), Err("jti replayed"));
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let mut c = ReplayCache::new(3);
        for jti in ["a", "b", "c"] {
            c.check("ehr", jti, 100, 0).unwrap();
        }
        assert!(c.check("ehr", "d", 100, 0).is_err());
        assert_eq!(c.check("ehr", "a", 100, 0), Err("jti replayed"));
        // Once tokens die there is room again.
        assert_eq!(c.check("ehr", "d", 300, 150), Ok(()));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn many_live_tokens_stay_fast() {
        // 100,000 live tokens, then 100,000 more checks: with a linear sweep per call
        // this is 10^10 steps and would not finish; with the heap it is instant.
        let mut c = ReplayCache::new(1_000_000);
        for i in 0..100_000u64 {
            c.check("ehr", &format!("t{i}"), 10_000, 0).unwrap();
        }
        for i in 0..100_000u64 {
            assert!(c.check("ehr", &format!("t{i}"), 10_000, 1).is_err());
        }
        assert_eq!(c.len(), 100_000);
    }
}
