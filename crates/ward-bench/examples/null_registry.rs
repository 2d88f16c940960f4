#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A registry that does nothing: the ceiling a `ward-bench` driver can measure here.
//!
//! It speaks just enough of the distribution API for `ward-bench manifest-get` (and
//! pushes of small blobs): uploads are drained and accepted without hashing, manifests
//! are kept in memory and served back. Whatever request rate a driver reaches against it
//! is the most that driver can show on this machine, since the client pays the same cost
//! against a real registry.
//!
//! ```text
//! cargo run --release -p ward-bench --example null_registry -- 127.0.0.1:5999 1
//! ward-bench manifest-get --registry http://127.0.0.1:5999 --driver builtin
//! ```
//! The second argument is the number of server threads (default 1).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[derive(Default)]
struct State {
    manifests: Mutex<HashMap<String, (String, Bytes)>>,
    uploads: AtomicU64,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:5999".to_owned());
    let threads: usize = args
        .next()
        .map_or(1, |t| t.parse().expect("threads: a number"));
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    runtime.unwrap().block_on(serve(addr));
}

async fn serve(addr: String) {
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!(
        "null registry listening on {}",
        listener.local_addr().unwrap()
    );
    let state = Arc::new(State::default());
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).unwrap();
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let response = Response::builder();
    let response = match (&parts.method, path.as_str()) {
        (&Method::GET, "/v2/") => response
            .status(StatusCode::OK)
            .body(Full::new(Bytes::from_static(b"{}"))),
        (&Method::POST, p) if p.ends_with("/blobs/uploads/") => {
            let id = state.uploads.fetch_add(1, Ordering::Relaxed);
            response
                .status(StatusCode::ACCEPTED)
                .header(header::LOCATION, format!("{p}{id}"))
                .body(Full::default())
        }
        (&Method::PUT, p) if p.contains("/blobs/uploads/") => {
            response.status(StatusCode::CREATED).body(Full::default())
        }
        (&Method::PUT, p) if p.contains("/manifests/") => {
            let media_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            state
                .manifests
                .lock()
                .unwrap()
                .insert(path.clone(), (media_type.to_owned(), body));
            response.status(StatusCode::CREATED).body(Full::default())
        }
        (&Method::GET, p) => match state.manifests.lock().unwrap().get(p) {
            Some((media_type, manifest)) => response
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, media_type.as_str())
                .body(Full::new(manifest.clone())),
            None => response.status(StatusCode::NOT_FOUND).body(Full::default()),
        },
        _ => response.status(StatusCode::NOT_FOUND).body(Full::default()),
    };
    Ok(response.unwrap())
}
