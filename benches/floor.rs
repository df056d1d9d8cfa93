//! The floor for `scripts/bench-load`: the cheapest axum service that does what every
//! CDS Hooks call must do (read the whole body, parse it into `serde_json::Value`, answer
//! one card as JSON). dvt-cds's throughput is compared with this one on the same machine.
//!
//! Run: `floor --listen 127.0.0.1:0` (the release bench binary, see `scripts/bench-load`);
//! it prints `floor listening on http://ADDR` once bound. Without `--listen` (as under
//! `cargo bench`) it does nothing, so `cargo bench` stays quick.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Same allocator as the dvt-cds binary, so the comparison measures dvt-cds's own work
/// rather than the allocator (with glibc malloc the floor is slower: BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Same default multi-threaded runtime as dvt-cds (one worker per core).
fn main() {
    let mut args = std::env::args().skip(1);
    let mut listen: Option<SocketAddr> = None;
    while let Some(a) = args.next() {
        if a == "--listen" {
            listen = args.next().and_then(|v| v.parse().ok());
            if listen.is_none() {
                eprintln!("--listen needs an address such as 127.0.0.1:0");
                std::process::exit(2);
            }
        }
    }
    let Some(addr) = listen else {
        println!("floor: pass --listen ADDR to serve (used by scripts/bench-load)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(serve(addr));
}

async fn serve(addr: SocketAddr) {
    let card = json!({"cards": [{
        "uuid": "5c0a7f8e-1b2d-4e3f-9a10-000000000000",
        "summary": "Possible DVT: consider a leg-vein ultrasound",
        "indicator": "warning",
        "source": {"label": "floor"}
    }]})
    .to_string();
    let card = Bytes::from(card);
    let app = Router::new()
        .route(
            "/cds-services/{id}",
            post(move |Path(_id): Path<String>, body: Bytes| {
                let card = card.clone();
                async move { answer(&body, card) }
            }),
        )
        .layer(DefaultBodyLimit::max(64 << 20));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind --listen");
    let local = listener.local_addr().expect("local address");
    println!("floor listening on http://{local}");
    axum::serve(listener, app).await.expect("serve");
}

/// Parse the body as dvt-cds does (into a `Value`), so the floor pays the same JSON cost.
fn answer(body: &[u8], card: Bytes) -> Response {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            std::hint::black_box(&v);
            ([(header::CONTENT_TYPE, "application/json")], card).into_response()
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
