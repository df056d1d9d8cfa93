//! Test support for FHIR access: a real Helios FHIR server (`hfs`) per test, synthetic
//! patients, and fake servers for the faults a real server cannot show.
#![allow(dead_code)] // each test crate uses a different part

pub mod synthetic;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

/// A running `hfs`, killed on drop (with its temp data dir removed).
pub struct Hfs {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

fn env_path(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(p) => PathBuf::from(p),
        None => panic!("{name} is not set: run scripts/test (it installs hfs and exports it)"),
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl Hfs {
    /// Start hfs with its own data dir and wait for `GET /health`.
    pub async fn start(default_page_size: u32) -> Hfs {
        let bin = env_path("DVT_HFS_BIN");
        let params = env_path("DVT_HFS_SEARCH_PARAMS");
        let dir = tempfile::tempdir().expect("temp dir");
        // Without this file hfs ignores patient= and date= (fhir-notes.md).
        std::fs::copy(&params, dir.path().join("search-parameters-r4.json"))
            .expect("copy search-parameters-r4.json");
        let client = reqwest::Client::new();
        for _attempt in 0..3 {
            let port = free_port();
            let child = Command::new(&bin)
                .arg("--port")
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(dir.path())
                .arg("--database-url")
                .arg(dir.path().join("fhir.db"))
                .arg("--default-page-size")
                .arg(default_page_size.to_string())
                .env("HFS_BASE_URL", format!("http://127.0.0.1:{port}"))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("hfs.log")).expect("log file"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut hfs = Hfs {
                child: Some(child),
                port,
                _dir: tempfile::tempdir().expect("temp dir"),
                client: client.clone(),
            };
            if hfs.wait_healthy(Duration::from_secs(60)).await {
                hfs._dir = dir;
                return hfs;
            }
            hfs.stop();
        }
        let log = std::fs::read_to_string(dir.path().join("hfs.log")).unwrap_or_default();
        panic!("hfs did not become healthy; its log:\n{log}");
    }

    async fn wait_healthy(&mut self, within: Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < until {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false; // exited (e.g. the port was taken meanwhile)
            }
            let health = self.url("health");
            if let Ok(r) = self.client.get(health).send().await
                && r.status().is_success()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The FHIR base (`http://127.0.0.1:P/`).
    pub fn base(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}/", self.port)).unwrap()
    }

    pub fn url(&self, path: &str) -> Url {
        self.base().join(path).unwrap()
    }

    /// POST a transaction Bundle to `/`.
    pub async fn load(&self, bundle: &Value) {
        let r = self
            .client
            .post(self.base())
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .expect("POST transaction");
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "transaction failed: {status} {body}");
    }

    /// GET a relative FHIR URL (what an EHR would prefetch).
    pub async fn get(&self, relative: &str) -> Value {
        let r = self
            .client
            .get(self.url(relative))
            .header("accept", "application/fhir+json")
            .send()
            .await
            .expect("GET");
        assert!(r.status().is_success(), "GET {relative}: {}", r.status());
        r.json().await.expect("JSON")
    }

    /// Kill the server (a "server stopped" fault).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Hfs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fake HTTP server on 127.0.0.1 that counts connections and records requests.
pub struct Fake {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a fake server does with each request.
#[derive(Clone)]
pub enum Behaviour {
    /// Read the request, never answer (and keep the connection open).
    Hang,
    /// Answer with this status, content type and body.
    Answer(u16, &'static str, String),
    /// The same, after a delay (a server with latency but no CPU cost).
    AnswerAfter(Duration, u16, &'static str, String),
}

async fn answer(socket: &mut tokio::net::TcpStream, status: u16, content_type: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
    let _ = socket.shutdown().await;
}

impl Fake {
    pub async fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let behaviour = behaviour.clone();
                let r = r.clone();
                held.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    r.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&got).into_owned());
                    match behaviour {
                        Behaviour::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Behaviour::AnswerAfter(delay, status, content_type, body) => {
                            tokio::time::sleep(delay).await;
                            answer(&mut socket, status, content_type, &body).await;
                        }
                        Behaviour::Answer(status, content_type, body) => {
                            answer(&mut socket, status, content_type, &body).await;
                        }
                    }
                }));
            }
        });
        Fake {
            addr,
            connections,
            requests,
            task,
        }
    }

    pub fn base(&self) -> Url {
        Url::parse(&format!("http://{}/fhir/", self.addr)).unwrap()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
