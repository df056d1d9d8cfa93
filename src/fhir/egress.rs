//! Where live FHIR queries may go (no SSRF): which `fhirServer` a call may name, which
//! `next` links stay on it, and which addresses an unlisted name may resolve to.
//!
//! Pure: parsed URLs and IP addresses in, decisions out. `http.rs` applies the address
//! rule in its DNS resolver; `gather` applies the rest before any request.
//!
//! The rules (README, "Which FHIR servers dvt-cds queries"):
//! - A server listed by the operator (the issuer's `fhir_servers`, or `--fhir-server`)
//!   may be queried wherever it lives, `http://` included: listing is the operator's
//!   decision. A URL is under a listed server when scheme, host and port are the same and
//!   its path continues the listed path at a segment boundary.
//! - With `--dev`, an unlisted server may also be queried over http or https when it is a
//!   loopback IP literal, a public IP literal, or a name; a name then resolves only to
//!   public addresses ([`AddressClass::is_public`]), so it cannot rebind inward.
//! - Nothing else.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// What an IP address is, as far as egress is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally routable: the only class an unlisted name may resolve to.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16 (cloud metadata at 169.254.169.254), fe80::/10.
    LinkLocal,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    /// RFC 6598 carrier-grade NAT: 100.64.0.0/10.
    SharedNat,
    /// fc00::/7 (ULA) and the deprecated site-local fec0::/10.
    UniqueLocal,
    /// 0.0.0.0/8 and :: (connecting to 0.0.0.0 reaches this host on Linux).
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// Special-purpose ranges that are not on the public Internet (RFC 6890):
    /// 192.0.0.0/24, documentation, benchmarking, 240.0.0.0/4, ::/8, 100::/64, 2001:db8::/32.
    Reserved,
}

impl AddressClass {
    /// Whether an unlisted server may be reached at an address of this class.
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// For messages and logs: "a link-local address".
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Private => "a private (RFC 1918) address",
            AddressClass::SharedNat => "a carrier-grade NAT (100.64.0.0/10) address",
            AddressClass::UniqueLocal => "a unique local IPv6 address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// The class of `ip`. IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`,
/// NAT64 `64:ff9b::a.b.c.d`) are judged by that IPv4 address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (10, _, _) | (192, 168, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedNat,
        (224..=239, _, _) => AddressClass::Multicast,
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => AddressClass::Broadcast,
        (240..=255, _, _) => AddressClass::Reserved,
        // IETF protocol assignments, TEST-NET-1/2/3, benchmarking (RFC 6890).
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Reserved,
        (198, 18..=19, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): reaches the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    match s[0] {
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfec0..=0xfeff | 0xfc00..=0xfdff => AddressClass::UniqueLocal,
        0xff00..=0xffff => AddressClass::Multicast,
        // ::/8 (IPv4-compatible and other reserved forms), 100::/64 (discard).
        0x0000..=0x00ff => AddressClass::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => AddressClass::Reserved,
        0x2001 if s[1] == 0x0db8 => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// The class of a URL's host when it is an IP literal; `None` for a name (which the
/// resolver judges) or no host.
pub fn literal_class(url: &Url) -> Option<AddressClass> {
    match url.host()? {
        Host::Ipv4(ip) => Some(classify_v4(ip)),
        Host::Ipv6(ip) => Some(classify_v6(ip)),
        Host::Domain(_) => None,
    }
}

/// A FHIR server base: scheme, host, port and path prefix. Built from configuration
/// (`fhir_servers`, `--fhir-server`) with [`ServerBase::parse`], or from a call's
/// `fhirServer` with [`ServerBase::of`] to keep `next` links under it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ServerBase {
    /// The URL as parsed (hosts lower-cased, `.` and `..` segments resolved; no trailing
    /// slash, query or fragment), for comparison of scheme, host and port, and display.
    url: Url,
    /// The path's segments, percent-encoded as parsed, without trailing empty ones:
    /// `https://ehr.example/fhir/` is `["fhir"]`.
    segments: Vec<String>,
}

impl ServerBase {
    /// A configured server: an absolute http(s) URL with a host, without user name,
    /// password, query or fragment.
    pub fn parse(s: &str) -> Result<ServerBase, String> {
        let url = Url::parse(s.trim()).map_err(|e| format!("\"{s}\": {e}"))?;
        let problem = if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            Some("expected an absolute http(s) URL such as https://ehr.example/fhir")
        } else if !url.username().is_empty() || url.password().is_some() {
            Some("a user name or password in the URL is not allowed")
        } else if url.query().is_some() || url.fragment().is_some() {
            Some("expected a base URL without ?query or #fragment")
        } else {
            None
        };
        match problem {
            Some(p) => Err(format!("\"{s}\": {p}")),
            None => Ok(ServerBase::of(&url)),
        }
    }

    /// The base a URL names (its query and fragment ignored).
    pub fn of(url: &Url) -> ServerBase {
        let mut segments: Vec<String> = url
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default();
        while segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        let mut url = url.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.set_path(&segments.join("/"));
        ServerBase { url, segments }
    }

    /// Whether `url` is on this server: same scheme, host (case-insensitive, as parsed)
    /// and port (default ports normalised), no user name or password, and a path that
    /// starts with this path at a segment boundary (`/fhir` holds `/fhir/Patient`, not
    /// `/fhirx`).
    pub fn contains(&self, url: &Url) -> bool {
        url.scheme() == self.url.scheme()
            && url.username().is_empty()
            && url.password().is_none()
            && url.host() == self.url.host()
            && url.port_or_known_default() == self.url.port_or_known_default()
            && url.path_segments().is_some_and(|mut path| {
                self.segments
                    .iter()
                    .all(|want| path.next() == Some(want.as_str()))
            })
    }

    /// Why listing this server deserves a line in the startup log, if it does: it is
    /// plain http, or its host is an IP literal that is not public.
    pub fn notice(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.url.scheme() == "http" {
            why.push("plain http (the access token travels unencrypted)".to_string());
        }
        if let Some(class) = literal_class(&self.url).filter(|c| !c.is_public()) {
            why.push(format!("on {}", class.describe()));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

impl TryFrom<String> for ServerBase {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ServerBase::parse(&s)
    }
}

impl std::str::FromStr for ServerBase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ServerBase::parse(s)
    }
}

impl fmt::Display for ServerBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// How an allowed server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Under a listed server: its name resolves normally, to any address.
    Listed,
    /// Unlisted, allowed by `--dev`: a name resolves only to public addresses.
    PublicOnly,
}

/// Why a call's `fhirServer` is not queried. The text goes to the caller (it names no
/// address and nothing the caller did not send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not under any server listed for the caller (outside `--dev`).
    NotListed,
    /// A user name or password in the URL.
    Credentials,
    /// `--dev`, unlisted, and an IP literal of a class never queried unless listed.
    Address(AddressClass),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotListed => f.write_str(
                "fhirServer is not a FHIR server this service may query for this client (the \
                 operator lists them: fhir_servers of the issuer in --auth-config, or \
                 --fhir-server)",
            ),
            Refusal::Credentials => f.write_str("fhirServer must not hold a user name or password"),
            Refusal::Address(class) => write!(
                f,
                "fhirServer is on {}, which is only queried when listed with --fhir-server",
                class.describe()
            ),
        }
    }
}

/// The egress rules of the process (`--dev`, `--fhir-server`); the caller's issuer adds
/// its own `fhir_servers` per call.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// `--dev`: unlisted servers on loopback IP literals and public addresses.
    pub dev: bool,
    /// `--fhir-server`: listed for every caller.
    pub servers: Vec<ServerBase>,
}

impl EgressPolicy {
    /// May a call whose issuer lists `client_servers` query `server`, and how?
    pub fn check(&self, client_servers: &[ServerBase], server: &Url) -> Result<Route, Refusal> {
        if !server.username().is_empty() || server.password().is_some() {
            return Err(Refusal::Credentials);
        }
        if client_servers
            .iter()
            .chain(&self.servers)
            .any(|s| s.contains(server))
        {
            return Ok(Route::Listed);
        }
        if !self.dev || !matches!(server.scheme(), "http" | "https") {
            return Err(Refusal::NotListed);
        }
        match literal_class(server) {
            None | Some(AddressClass::Public | AddressClass::Loopback) => Ok(Route::PublicOnly),
            Some(class) => Err(Refusal::Address(class)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified() {
        use AddressClass::*;
        let table = [
            ("8.8.8.8", Public),
            ("93.184.216.34", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("169.254.169.254", LinkLocal),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedNat),
            ("100.127.255.255", SharedNat),
            ("100.128.0.1", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.2.1", Reserved),
            ("198.18.0.1", Reserved),
            ("2606:4700::1111", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fd00::1", UniqueLocal),
            ("fc00::1", UniqueLocal),
            ("fec0::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("2001:db8::1", Reserved),
            ("::7f00:1", Reserved),
            ("100::1", Reserved),
            // IPv4 inside IPv6 is judged as IPv4.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::808:808", Public),
        ];
        for (addr, want) in table {
            assert_eq!(ip(addr), want, "{addr}");
        }
    }

    fn base(s: &str) -> ServerBase {
        ServerBase::parse(s).unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_listed_server_holds_urls_under_its_path_only() {
        let b = base("https://ehr.example/fhir");
        for inside in [
            "https://ehr.example/fhir",
            "https://ehr.example/fhir/",
            "https://ehr.example/fhir/Patient/1",
            "https://ehr.example/fhir?page=2",
            "https://EHR.Example/fhir/Patient",
            "https://ehr.example:443/fhir/Patient",
            "https://ehr.example/other/../fhir/Patient",
        ] {
            assert!(b.contains(&url(inside)), "{inside}");
        }
        for outside in [
            "https://ehr.example/fhirx",
            "https://ehr.example/fhirx/Patient",
            "https://ehr.example/",
            "https://ehr.example/other",
            "https://ehr.example/fhir/../admin",
            "https://ehr.example/fhir/%2e%2e/admin",
            "https://ehr.example.evil.com/fhir",
            "https://evil.com/ehr.example/fhir",
            "https://ehr.example@evil.com/fhir",
            "https://user:pw@ehr.example/fhir",
            "https://ehr.example:8443/fhir",
            "http://ehr.example/fhir",
            "https://ehr.example./fhir",
            "https://sub.ehr.example/fhir",
        ] {
            assert!(!b.contains(&url(outside)), "{outside}");
        }
        // A trailing slash on the listed entry changes nothing.
        assert_eq!(
            base("https://ehr.example/fhir/"),
            base("https://ehr.example/fhir")
        );
        // The root holds the whole origin.
        assert!(base("https://ehr.example").contains(&url("https://ehr.example/any/path")));
        // An explicit default port equals none; an http entry is http only.
        let h = base("http://fhir.internal:80/r4");
        assert!(h.contains(&url("http://fhir.internal/r4/Patient")));
        assert!(!h.contains(&url("https://fhir.internal/r4/Patient")));
        // IP literals compare as addresses.
        let l = base("http://127.0.0.1:8090/fhir");
        assert!(l.contains(&url("http://127.0.0.1:8090/fhir/Patient")));
        assert!(!l.contains(&url("http://127.0.0.2:8090/fhir/Patient")));
        assert!(!l.contains(&url("http://localhost:8090/fhir/Patient")));
        assert!(base("http://[::1]:8090/").contains(&url("http://[0:0::1]:8090/x")));
    }

    #[test]
    fn configured_servers_must_be_plain_base_urls() {
        for bad in [
            "ehr.example/fhir",
            "ftp://ehr.example/fhir",
            "file:///etc/passwd",
            "https://user:pw@ehr.example/fhir",
            "https://ehr.example/fhir?x=1",
            "https://ehr.example/fhir#top",
            "not a url",
        ] {
            assert!(ServerBase::parse(bad).is_err(), "{bad}");
        }
        let b = base(" https://EHR.example/fhir/ ");
        assert_eq!(b.to_string(), "https://ehr.example/fhir");
    }

    #[test]
    fn listing_http_or_an_internal_literal_is_noticed() {
        assert_eq!(base("https://ehr.example/fhir").notice(), None);
        assert!(
            base("http://ehr.example/fhir")
                .notice()
                .unwrap()
                .contains("http")
        );
        assert!(
            base("https://10.0.0.5/fhir")
                .notice()
                .unwrap()
                .contains("private")
        );
        let both = base("http://127.0.0.1:8090/fhir").notice().unwrap();
        assert!(both.contains("http") && both.contains("loopback"), "{both}");
    }

    #[test]
    fn outside_dev_only_listed_servers_are_allowed() {
        let policy = EgressPolicy {
            dev: false,
            servers: vec![base("https://shared.example/fhir")],
        };
        let mine = [
            base("https://ehr.example/fhir"),
            base("http://10.0.0.5:8080/r4"),
        ];
        let check = |s: &str| policy.check(&mine, &url(s));
        assert_eq!(check("https://ehr.example/fhir"), Ok(Route::Listed));
        assert_eq!(check("https://shared.example/fhir/"), Ok(Route::Listed));
        // A listed private http server is the operator's decision.
        assert_eq!(check("http://10.0.0.5:8080/r4"), Ok(Route::Listed));
        for refused in [
            "http://ehr.example/fhir",
            "https://ehr.example/fhirx",
            "https://other.example/fhir",
            "https://127.0.0.1/fhir",
            "http://localhost:8080/fhir",
            "http://169.254.169.254/latest",
        ] {
            assert_eq!(check(refused), Err(Refusal::NotListed), "{refused}");
        }
        assert_eq!(
            check("https://u:p@ehr.example/fhir"),
            Err(Refusal::Credentials)
        );
        // Another issuer's list is not this client's.
        assert_eq!(
            policy.check(&[], &url("https://ehr.example/fhir")),
            Err(Refusal::NotListed)
        );
    }

    #[test]
    fn dev_allows_loopback_literals_and_public_servers_never_internal_ranges() {
        let policy = EgressPolicy {
            dev: true,
            servers: vec![base("http://10.1.2.3:8080/fhir")],
        };
        let check = |s: &str| policy.check(&[], &url(s));
        assert_eq!(check("http://127.0.0.1:8080/fhir"), Ok(Route::PublicOnly));
        assert_eq!(check("http://[::1]:8080/fhir"), Ok(Route::PublicOnly));
        assert_eq!(check("https://hapi.fhir.org/baseR4"), Ok(Route::PublicOnly));
        assert_eq!(check("http://8.8.8.8/fhir"), Ok(Route::PublicOnly));
        // A name goes to the resolver, which refuses loopback (localhost) there.
        assert_eq!(check("http://localhost:8080/fhir"), Ok(Route::PublicOnly));
        // Named with --fhir-server: reached even on a private address.
        assert_eq!(
            check("http://10.1.2.3:8080/fhir/Patient"),
            Ok(Route::Listed)
        );
        use AddressClass::*;
        for (s, class) in [
            ("http://169.254.169.254/latest/meta-data", LinkLocal),
            ("http://10.1.2.3:8081/fhir", Private),
            ("http://10.1.2.3:8080/other", Private),
            ("http://192.168.0.1/", Private),
            ("http://100.64.0.1/", SharedNat),
            ("http://[fd00::1]/fhir", UniqueLocal),
            ("http://[fe80::1]/fhir", LinkLocal),
            ("http://[::ffff:169.254.169.254]/", LinkLocal),
            ("http://0.0.0.0:8080/", Unspecified),
            ("http://2852039166/", LinkLocal), // 169.254.169.254 as one number
            ("http://0xa9.0xfe.0xa9.0xfe/", LinkLocal),
        ] {
            assert_eq!(check(s), Err(Refusal::Address(class)), "{s}");
        }
        assert_eq!(check("http://u@127.0.0.1/"), Err(Refusal::Credentials));
    }
}
