//! No SSRF (issue 10): a hook call makes dvt-cds connect only to a FHIR server the
//! operator listed (the issuer's `fhir_servers`, `--fhir-server`), or with `--dev` to a
//! loopback IP literal or a public server. Every refused case is a 412 and is asserted on
//! listeners that count the connections they accept: none.
//!
//! The table runs inside a network namespace the test makes: `ssrf_table` re-executes
//! this test binary under `unshare -n`, and there puts 169.254.169.254, 10.1.2.3 and
//! fd00::1 on the namespace's own loopback interface and listens on them. A broken check
//! could therefore never send a packet beyond this machine. Where `unshare -n` is not
//! permitted the test says "SKIPPED" and passes, except under `CI=true`, where it fails.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::jwt::{self, KeyPair, PUBLIC_URL};
use common::{TestApp, assert_operation_outcome, hook_request};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Set in the re-executed run, inside the namespace.
const IN_NAMESPACE: &str = "SSRF_TEST_IN_NETNS";

/// Variables that could send HTTP through a proxy (dvt-cds ignores them; so must we).
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
];

#[test]
fn ssrf_table() {
    if std::env::var_os(IN_NAMESPACE).is_some() {
        return tokio::runtime::Runtime::new().unwrap().block_on(table());
    }
    let namespaces = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !namespaces {
        let msg = "SKIPPED: tests/ssrf.rs ssrf_table needs `unshare -n` (root, or user \
                   namespaces) to run the SSRF table in a network namespace of its own";
        // Straight to the file descriptor: libtest hides what a passing test prints.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{msg}");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg}: under CI=true the SSRF table must run"
        );
        return;
    }
    let mut inner = Command::new("unshare");
    inner
        .arg("-n")
        .arg(std::env::current_exe().unwrap())
        .args(["ssrf_table", "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1");
    for var in PROXY_VARS {
        inner.env_remove(var);
    }
    let status = inner
        .status()
        .expect("run the test binary under unshare -n");
    assert!(
        status.success(),
        "the SSRF table failed inside its network namespace (its output is above)"
    );
}

/// The namespace's loopback interface, up, with the addresses the table aims at.
fn set_up_namespace() {
    for args in [
        &["link", "set", "lo", "up"][..],
        &["addr", "add", "169.254.169.254/32", "dev", "lo"],
        &["addr", "add", "10.1.2.3/32", "dev", "lo"],
        &["-6", "addr", "add", "fd00::1/128", "dev", "lo", "nodad"],
    ] {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An HTTP listener that counts the connections it accepts and records each request
/// line; it answers every request with `body` as FHIR JSON, then closes.
#[derive(Clone)]
struct Listener {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    /// Listen on `ip` (port `port`, 0: any); `body` is built from the bound address.
    async fn start(ip: &str, port: u16, body: impl FnOnce(SocketAddr) -> Value) -> Listener {
        let ip: IpAddr = ip.parse().unwrap();
        let listener = tokio::net::TcpListener::bind((ip, port))
            .await
            .unwrap_or_else(|e| panic!("listen on {ip}:{port}: {e}"));
        let addr = listener.local_addr().unwrap();
        let body = body(addr).to_string();
        let me = Listener {
            addr,
            accepted: Arc::default(),
            requests: Arc::default(),
        };
        let (accepted, requests) = (me.accepted.clone(), me.requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (body, requests) = (body.clone(), requests.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    requests
                        .lock()
                        .unwrap()
                        .push(head.lines().next().unwrap_or("").to_string());
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        me
    }

    fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A searchset Bundle, empty, with an optional `next` link.
fn searchset(next: Option<String>) -> Value {
    let mut b = json!({"resourceType": "Bundle", "type": "searchset", "total": 0});
    if let Some(next) = next {
        b["link"] = json!([{"relation": "next", "url": next}]);
    }
    b
}

/// A patient-view call naming `fhir_server`, with a token, whose prefetch holds every
/// key but `conditions`: one live search (or, with `conditions` given, none but its
/// `next` link).
fn call(fhir_server: &str, conditions: Option<Value>) -> Value {
    let mut r = hook_request("patient-view");
    r["fhirServer"] = json!(fhir_server);
    r["fhirAuthorization"] = json!({"access_token": "ssrf-test-token", "token_type": "Bearer",
        "expires_in": 300, "scope": "patient/*.read", "subject": "dvt-cds"});
    let prefetch = r["prefetch"].as_object_mut().unwrap();
    match conditions {
        Some(c) => prefetch.insert("conditions".into(), c),
        None => prefetch.remove("conditions"),
    };
    r
}

/// What a case must produce.
enum Expect {
    /// 412, and no listener accepted a connection; the issue text contains this.
    Refused(&'static str),
    /// 200, and only this listener was connected to (this many times).
    Reached(&'static str, usize),
    /// 200 without any connection (the call's data came from its prefetch).
    NoConnection,
}

struct Case {
    name: &'static str,
    fhir_server: String,
    conditions: Option<Value>,
    expect: Expect,
}

/// The service under test, and how to call it.
struct Service {
    app: TestApp,
    key: Option<KeyPair>,
}

impl Service {
    async fn post(&self, body: &Value) -> (u16, Value) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut req = client
            .post(self.app.url("/cds-services/dvt-patient-view"))
            .json(body);
        if let Some(key) = &self.key {
            let token = jwt::sign(key, &jwt::claims("/cds-services/dvt-patient-view"), None);
            req = req.bearer_auth(token);
        }
        let (status, _, body) = common::send(req).await;
        (status, body)
    }
}

async fn run(service: &Service, cases: Vec<Case>, listeners: &[(&'static str, &Listener)]) {
    for case in cases {
        let before: Vec<usize> = listeners.iter().map(|(_, l)| l.count()).collect();
        let (status, body) = service
            .post(&call(&case.fhir_server, case.conditions))
            .await;
        // A connection a broken check let through would have been accepted by now; give
        // the listener tasks a moment to count it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let connected: Vec<(&str, usize)> = listeners
            .iter()
            .zip(&before)
            .map(|((name, l), b)| (*name, l.count() - b))
            .filter(|(_, n)| *n > 0)
            .collect();
        let name = case.name;
        match case.expect {
            Expect::Refused(text) => {
                assert_eq!(status, 412, "{name}: {body}");
                let issues = assert_operation_outcome(&body);
                assert!(
                    issues.contains(text),
                    "{name}: expected \"{text}\" in {issues}"
                );
                assert!(
                    connected.is_empty(),
                    "{name}: connections made: {connected:?}"
                );
            }
            Expect::Reached(target, times) => {
                assert_eq!(status, 200, "{name}: {body}");
                assert_eq!(connected, [(target, times)], "{name}");
            }
            Expect::NoConnection => {
                assert_eq!(status, 200, "{name}: {body}");
                assert!(
                    connected.is_empty(),
                    "{name}: connections made: {connected:?}"
                );
            }
        }
        println!("ok: {name}");
    }
}

const NOT_LISTED: &str = "not a FHIR server this service may query";
const UNREACHABLE: &str = "the FHIR server could not be reached";

async fn table() {
    set_up_namespace();
    let empty = |_| searchset(None);
    // Reached by the positive controls.
    let ok = Listener::start("127.0.0.1", 0, empty).await;
    let ok6 = Listener::start("::1", 0, empty).await;
    let listed_private = Listener::start("10.1.2.3", 0, empty).await;
    // Its first page links outside its base path (same origin, /admin).
    let paging = Listener::start("127.0.0.1", 0, |a| {
        searchset(Some(format!("http://{a}/admin/Condition?page=2")))
    })
    .await;
    // Never to be connected to.
    let loopback = Listener::start("127.0.0.1", 0, empty).await;
    // `localhost` with ok's port, on IPv6 too.
    let localhost6 = Listener::start("::1", ok.port(), empty).await;
    let metadata = Listener::start("169.254.169.254", 0, empty).await;
    let private = Listener::start("10.1.2.3", 0, empty).await;
    let ula = Listener::start("fd00::1", 0, empty).await;
    let tls_only = Listener::start("127.0.0.1", 0, empty).await;
    let listeners = [
        ("ok", &ok),
        ("ok6", &ok6),
        ("listed_private", &listed_private),
        ("paging", &paging),
        ("loopback", &loopback),
        ("localhost6", &localhost6),
        ("metadata", &metadata),
        ("private", &private),
        ("ula", &ula),
        ("tls_only", &tls_only),
    ];
    let (p_ok, p_loop, p_meta) = (ok.port(), loopback.port(), metadata.port());
    let (p_priv, p_ula) = (private.port(), ula.port());

    // ---- Outside --dev: the issuer lists its servers.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = jwt::es384("ssrf-es384");
    std::fs::write(dir.path().join("jwks.json"), jwt::jwks(&[&key]).to_string()).unwrap();
    let auth = format!(
        "[[issuer]]\niss = \"{}\"\njwks_file = \"jwks.json\"\nfhir_servers = [\
         \"http://127.0.0.1:{p_ok}/fhir\", \"http://{}/fhir\", \"https://127.0.0.1:{}/fhir\"]\n",
        jwt::ISS,
        paging.addr,
        tls_only.port()
    );
    let auth_path = dir.path().join("auth.toml");
    std::fs::write(&auth_path, auth).unwrap();
    let service = Service {
        app: TestApp::spawn_in(
            dir.clone(),
            &[
                "--auth-config",
                auth_path.to_str().unwrap(),
                "--public-url",
                PUBLIC_URL,
            ],
        ),
        key: Some(key),
    };
    let refused = |name, fhir_server: String| Case {
        name,
        fhir_server,
        conditions: None,
        expect: Expect::Refused(NOT_LISTED),
    };
    let cases = vec![
        Case {
            name: "a listed server on loopback is reached and answers (positive control)",
            fhir_server: format!("http://127.0.0.1:{p_ok}/fhir"),
            conditions: None,
            expect: Expect::Reached("ok", 1),
        },
        refused(
            "loopback, unlisted",
            format!("http://127.0.0.1:{p_loop}/fhir"),
        ),
        refused(
            "link-local 169.254.169.254 (cloud metadata)",
            format!("http://169.254.169.254:{p_meta}/latest/meta-data"),
        ),
        refused(
            "a private range (10.x)",
            format!("http://10.1.2.3:{p_priv}/fhir"),
        ),
        refused("ULA fd00::1", format!("http://[fd00::1]:{p_ula}/fhir")),
        refused(
            "a name resolving to loopback (localhost), listed only as 127.0.0.1",
            format!("http://localhost:{p_ok}/fhir"),
        ),
        refused("an unlisted origin", "https://ehr.example/fhir".to_string()),
        refused(
            "a listed origin outside the listed path",
            format!("http://127.0.0.1:{p_ok}/fhirx"),
        ),
        refused(
            "http:// where https:// is listed",
            format!("http://127.0.0.1:{}/fhir", tls_only.port()),
        ),
        Case {
            name: "a user name naming the listed server before the real host",
            fhir_server: format!("http://127.0.0.1:{p_ok}@169.254.169.254:{p_meta}/fhir"),
            conditions: None,
            expect: Expect::Refused("user name or password"),
        },
        Case {
            name: "a server's next link outside its base path is not followed",
            fhir_server: format!("http://{}/fhir", paging.addr),
            conditions: None,
            expect: Expect::Reached("paging", 1),
        },
        Case {
            name: "a prefetch Bundle's next link to another origin is not followed",
            fhir_server: format!("http://127.0.0.1:{p_ok}/fhir"),
            conditions: Some(searchset(Some(format!(
                "http://10.1.2.3:{p_priv}/fhir/Condition?page=2"
            )))),
            expect: Expect::NoConnection,
        },
        Case {
            name: "a prefetch Bundle's next link outside the base path is not followed",
            fhir_server: format!("http://127.0.0.1:{p_ok}/fhir"),
            conditions: Some(searchset(Some(format!(
                "http://127.0.0.1:{p_ok}/admin?page=2"
            )))),
            expect: Expect::NoConnection,
        },
        Case {
            name: "a call answered by its prefetch names any fhirServer",
            fhir_server: format!("http://169.254.169.254:{p_meta}/fhir"),
            conditions: Some(searchset(None)),
            expect: Expect::NoConnection,
        },
    ];
    run(&service, cases, &listeners).await;
    let paged = paging.requests.lock().unwrap().clone();
    assert!(
        paged.iter().all(|r| !r.contains("/admin")),
        "a next link outside the base path was followed: {paged:?}"
    );
    let logs = service.app.logs();
    assert!(
        logs.contains("listed FHIR server: plain http") && logs.contains("loopback"),
        "listing http or loopback servers is logged at startup:\n{logs}"
    );

    // ---- --dev: loopback IP literals and public servers, plus --fhir-server.
    let listed = format!("http://10.1.2.3:{}/fhir", listed_private.port());
    let service = Service {
        app: TestApp::spawn(&["--dev", "--fhir-server", &listed]),
        key: None,
    };
    let refused = |name, fhir_server: String, text| Case {
        name,
        fhir_server,
        conditions: None,
        expect: Expect::Refused(text),
    };
    let cases = vec![
        Case {
            name: "--dev: an IP-literal loopback server is reached (positive control)",
            fhir_server: format!("http://127.0.0.1:{p_ok}/fhir"),
            conditions: None,
            expect: Expect::Reached("ok", 1),
        },
        Case {
            name: "--dev: [::1] is reached (positive control)",
            fhir_server: format!("http://[::1]:{}/fhir", ok6.port()),
            conditions: None,
            expect: Expect::Reached("ok6", 1),
        },
        Case {
            name: "--dev: a private server named with --fhir-server is reached (positive control)",
            fhir_server: listed.clone(),
            conditions: None,
            expect: Expect::Reached("listed_private", 1),
        },
        refused(
            "--dev: a name resolving to loopback (localhost)",
            format!("http://localhost:{p_ok}/fhir"),
            UNREACHABLE,
        ),
        refused(
            "--dev: link-local 169.254.169.254",
            format!("http://169.254.169.254:{p_meta}/latest/meta-data"),
            "link-local",
        ),
        refused(
            "--dev: 169.254.169.254 written as one number",
            format!("http://2852039166:{p_meta}/latest/meta-data"),
            "link-local",
        ),
        refused(
            "--dev: IPv4-mapped IPv6 of 169.254.169.254",
            format!("http://[::ffff:169.254.169.254]:{p_meta}/"),
            "link-local",
        ),
        refused(
            "--dev: a private range (10.x), not the listed port",
            format!("http://10.1.2.3:{p_priv}/fhir"),
            "private",
        ),
        refused(
            "--dev: ULA fd00::1",
            format!("http://[fd00::1]:{p_ula}/fhir"),
            "unique local",
        ),
    ];
    run(&service, cases, &listeners).await;
    // The caller learns "could not be reached"; the log says why.
    let logs = service.app.wait_for_log("egress filter");
    assert!(logs.contains("egress filter"), "{logs}");
    assert!(!logs.contains("example-patient"), "{logs}");
}

/// Outside the namespace (loopback only): an issuer that lists no FHIR server is prefetch
/// only, says so at startup, and its call naming a loopback server makes no connection.
#[tokio::test]
async fn an_issuer_without_fhir_servers_is_prefetch_only() {
    let trap = Listener::start("127.0.0.1", 0, |_| searchset(None)).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = jwt::es384("ssrf-es384");
    let config = jwt::write_auth_config(dir.path(), &[&key], &[]);
    let service = Service {
        app: TestApp::spawn_in(
            dir.clone(),
            &[
                "--auth-config",
                config.to_str().unwrap(),
                "--public-url",
                PUBLIC_URL,
            ],
        ),
        key: Some(key),
    };
    let logs = service.app.wait_for_log("lists no fhir_servers");
    assert!(logs.contains("only be answered from prefetch"), "{logs}");

    let fhir_server = format!("http://127.0.0.1:{}/fhir", trap.port());
    let (status, body) = service.post(&call(&fhir_server, None)).await;
    assert_eq!(status, 412, "{body}");
    assert!(
        assert_operation_outcome(&body).contains(NOT_LISTED),
        "{body}"
    );
    // Fully answered by its prefetch: no server needed.
    let (status, body) = service
        .post(&call(&fhir_server, Some(searchset(None))))
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(trap.count(), 0);
}

/// A listed server that is not a plain http(s) base URL stops the process at startup,
/// with a message naming the entry.
#[test]
fn a_bad_fhir_server_entry_stops_the_process() {
    let out = common::run(&["serve", "--dev", "--fhir-server", "ftp://ehr.example/fhir"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--fhir-server") && err.contains("ftp://ehr.example/fhir"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let key = jwt::es384("k");
    let config = jwt::write_auth_config(dir.path(), &[&key], &[]);
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("fhir_servers = [\"https://user:pw@ehr.example/fhir\"]\n");
    std::fs::write(&config, toml).unwrap();
    let out = common::run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--auth-config",
        config.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fhir_servers") && err.contains("user name or password"),
        "{err}"
    );
}
