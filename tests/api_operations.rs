//! Operating the service, through the real binary: `--admin-listen` (the unauthenticated
//! endpoints on their own listener, with the same header timeout and graceful shutdown),
//! the refusal to start with an `aud` that could never match, the feedback database's
//! file mode, `/readyz` failing while the database cannot be written, and the
//! `healthcheck` subcommand the container image runs.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

fn admin_app() -> TestApp {
    TestApp::spawn(&["--dev", "--admin-listen", "127.0.0.1:0"])
}

/// The `--admin-listen` port, as `healthcheck --admin-listen` takes it.
fn admin_addr(app: &TestApp) -> String {
    app.admin_base()
        .strip_prefix("http://")
        .unwrap()
        .to_string()
}

/// Hold SQLite's write lock on the app's feedback database from another connection, as
/// a second replica or a `sqlite3` shell on the same file would.
fn lock_database(app: &TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(app.dir.path().join("feedback.sqlite3")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

fn healthcheck(args: &[&str]) -> (Option<i32>, String, String) {
    let out = command()
        .arg("healthcheck")
        .args(args)
        .output()
        .expect("run healthcheck");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn with_admin_listen_the_operations_endpoints_move_off_the_service_port() {
    let app = admin_app();
    let admin = app.admin_base();
    assert_ne!(admin, app.base);
    let lines = app.stdout_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("dvt-cds listening on http://127.0.0.1:"));
    assert!(lines[1].starts_with("dvt-cds admin listening on http://127.0.0.1:"));

    for path in ADMIN_PATHS {
        let (status, _, body) = get(&app.url(path), None).await;
        assert_eq!(status, 404, "{path} on the service port: {body}");
        assert_operation_outcome(&body);
        let (status, _, body) = get(&format!("{admin}{path}"), None).await;
        assert_eq!(status, 200, "{path} on the admin port: {body}");
    }
    // The service endpoints stay on the service port only.
    let (status, _, body) = get(&app.url("/cds-services"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = get(&format!("{admin}/cds-services"), None).await;
    assert_eq!(status, 404);
    let (status, _, _) = post_json(
        &format!("{admin}/cds-services/dvt-patient-view"),
        &hook_request("patient-view"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The admin port's /metrics counts the service port's calls (one state).
    let text = client()
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("route=\"/cds-services\",service=\"-\",status=\"200\""),
        "{text}"
    );
}

#[tokio::test]
async fn without_admin_listen_everything_stays_on_one_port_and_one_line() {
    let app = TestApp::dev();
    for path in ADMIN_PATHS {
        assert_eq!(get(&app.url(path), None).await.0, 200, "{path}");
    }
    assert_eq!(app.stdout_lines().len(), 1, "{:?}", app.stdout_lines());
}

/// A request head dribbled to the admin port is cut off at `--header-timeout`, as on the
/// service port (same connection settings).
#[tokio::test]
async fn the_admin_listener_closes_a_slow_request_head_at_the_header_timeout() {
    let app = TestApp::spawn(&[
        "--dev",
        "--admin-listen",
        "127.0.0.1:0",
        "--header-timeout",
        "1s",
    ]);
    let addr = admin_addr(&app);
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {} // e.g. a 408 before the close
            }
        }
    })
    .await
    .expect("the admin port kept a half-sent request head open for 8 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}"
    );
}

/// SIGTERM while a call waits on each listener: both are answered, then exit 0. The
/// feedback call waits for the database lock the test holds; `/readyz` waits behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_calls_on_both_listeners_finish() {
    let app = admin_app();
    let admin = app.admin_base();
    let lock = lock_database(&app);
    let feedback = {
        let url = app.url("/cds-services/dvt-patient-view/feedback");
        tokio::spawn(async move {
            let body = json!({"feedback": [{"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "overridden", "outcomeTimestamp": "2025-03-01T09:30:00Z"}]});
            post_json(&url, &body, None).await.0
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = tokio::spawn(async move { get(&format!("{admin}/readyz"), None).await.0 });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut app = app;
    let pid = app.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Past the probe's 1 s bound, so /readyz has answered (503) by now.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(lock); // the feedback write can go on
    let status = tokio::task::spawn_blocking(move || {
        let s = app.wait_for_exit(Duration::from_secs(10));
        (s, app)
    })
    .await
    .unwrap();
    let (status, app) = status;
    let feedback = feedback.await.unwrap();
    let ready = ready.await.unwrap();
    assert_eq!(feedback, 200, "feedback in flight at SIGTERM");
    // Waited behind the blocked feedback write past the probe's bound: not ready.
    assert_eq!(ready, 503, "/readyz in flight at SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", app.logs());
    assert!(app.logs().contains("dvt-cds stopped"), "{}", app.logs());
}

#[test]
fn auth_without_public_url_off_loopback_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = jwt::es384("k");
    let config = jwt::write_auth_config(dir.path(), &[&key], &[]);
    let config = config.to_str().unwrap();
    let db = dir.path().join("f.sqlite3");
    let db = db.to_str().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let out = run(&[
            "serve",
            "--listen",
            listen,
            "--auth-config",
            config,
            "--feedback-db",
            db,
        ]);
        assert_eq!(out.status.code(), Some(2), "{listen}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--public-url") && err.contains("aud") && err.contains(listen),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "it must not have listened: {out:?}");
    }
}

#[tokio::test]
async fn auth_without_public_url_on_loopback_starts() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = jwt::es384("k");
    let config = jwt::write_auth_config(dir.path(), &[&key], &[]);
    let app = TestApp::spawn_in(dir, &["--auth-config", config.to_str().unwrap()]);
    // Unauthenticated: 401, so the service is up and checking tokens.
    assert_eq!(get(&app.url("/cds-services"), None).await.0, 401);
}

#[cfg(unix)]
#[tokio::test]
async fn the_feedback_database_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::dev();
    let body = json!({"feedback": [{"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
        "outcome": "overridden", "outcomeTimestamp": "2025-03-01T09:30:00Z"}]});
    let url = app.url("/cds-services/dvt-patient-view/feedback");
    assert_eq!(post_json(&url, &body, None).await.0, 200);
    for name in [
        "feedback.sqlite3",
        "feedback.sqlite3-wal",
        "feedback.sqlite3-shm",
    ] {
        let meta = std::fs::metadata(app.dir.path().join(name)).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: {mode:o}");
    }
}

/// An existing database keeps the mode the operator gave it, with a warning when other
/// users may read it.
#[cfg(unix)]
#[test]
fn an_existing_database_open_to_others_is_kept_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db = dir.path().join("feedback.sqlite3");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let app = TestApp::spawn_in(dir, &["--dev"]);
    let logs = app.wait_for_log("chmod 600");
    assert!(logs.contains("chmod 600") && logs.contains("644"), "{logs}");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

/// Another process holding the database's write lock: `/readyz` answers 503 with an
/// OperationOutcome and `healthcheck` exits 1 saying so; once the lock is gone both
/// recover (within the probe interval).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_healthcheck_fail_while_the_database_cannot_be_written() {
    let app = admin_app();
    let admin = app.admin_base();
    let admin_listen = admin_addr(&app);
    let readyz = format!("{admin}/readyz");
    let (code, out, _) = healthcheck(&["--admin-listen", &admin_listen]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ready"), "{out}");

    let lock = lock_database(&app);
    tokio::time::sleep(dvt_cds::store::sqlite::WRITE_PROBE_INTERVAL).await;
    let started = Instant::now();
    let (status, _, body) = get(&readyz, None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let text = assert_operation_outcome(&body);
    assert!(text.contains("feedback"), "{text}");
    let (code, _, err) = healthcheck(&["--admin-listen", &admin_listen]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("503") && err.contains("/readyz"), "{err}");
    let logs = app.wait_for_log("not ready");
    assert!(logs.contains("locked"), "the log says why: {logs}");

    drop(lock);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, body) = get(&readyz, None).await;
        if status == 200 {
            assert_eq!(body["status"], "ready");
            break;
        }
        assert!(Instant::now() < until, "no recovery: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _, err) = healthcheck(&["--admin-listen", &admin_listen]);
    assert_eq!(code, Some(0), "{err}");
}

/// The same variables as `serve`: `DVT_CDS_LISTEN` alone finds the service (the image
/// sets it once for both).
#[tokio::test]
async fn healthcheck_reads_the_serve_variables() {
    let app = TestApp::dev();
    let out = command()
        .arg("healthcheck")
        .env("DVT_CDS_LISTEN", format!("0.0.0.0:{}", app.port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn healthcheck_of_nothing_listening_exits_1_with_one_line() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let (code, _, err) = healthcheck(&["--listen", &listen]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot connect") && err.contains(&listen),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A listener that accepts and never answers: the check gives up at `--timeout`.
#[test]
fn healthcheck_of_a_hung_service_gives_up_at_its_timeout() {
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = hung.local_addr().unwrap().to_string();
    let started = Instant::now();
    let (code, _, err) = healthcheck(&["--listen", &listen, "--timeout", "500ms"]);
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no answer within 500 ms"), "{err}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(hung);
}
