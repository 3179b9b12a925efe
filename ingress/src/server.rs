//! The public listener: routing, connection handling, limits on slow or too many
//! clients, and graceful shutdown.
//!
//! Only `POST /v1/webhooks/…` (and `/healthz`, `/readyz` for a load balancer) is served
//! here; `/metrics` is on the ops listener. What an unauthenticated client can cost is
//! bounded before any lookup: a path's ids are checked for shape first, a connection
//! that dawdles over its headers is closed (`header_read_timeout_ms`), a body that does
//! not arrive is answered 408 (`body_read_timeout_ms`, in `receive`), and past
//! `max_connections` a new connection is answered 503 at once and closed.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use switchyard_core::names::is_valid_id;
use switchyard_core::telemetry::{ops_response, AcceptBackoff, Readiness};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::receive::Target;
use crate::reject::Rejection;
use crate::State;

pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: CancellationToken, readiness: Readiness) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // 0 turns the header timeout off (behind a proxy that enforces its own).
    if state.cfg.header_read_timeout_ms > 0 {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(state.cfg.header_read_timeout_ms));
        builder.http2().timer(TokioTimer::new());
    }
    let connections = Arc::new(Semaphore::new(state.cfg.max_connections.max(1)));
    let mut backoff = AcceptBackoff::new("ingress");
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => {
                    backoff.succeeded();
                    s
                }
                Err(e) => {
                    // Out of file descriptors, typically: wait rather than spin.
                    backoff.failed(&e).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            state
                .metrics
                .rejections
                .with_label_values(&["unknown", "too_many_connections"])
                .inc();
            tokio::spawn(refuse(stream, state.cfg.retry_after_secs));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let peer_ip = peer.ip();
        let svc = hyper::service::service_fn(move |req| route(state.clone(), peer_ip, req));
        let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = watched.await;
            drop(permit);
        });
    }
    // Stop accepting; say so on /readyz; let in-flight requests become durable and answer.
    readiness.start_draining();
    drop(listener);
    let grace = Duration::from_secs(state.cfg.drain_grace_secs);
    drop(state);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::error!(
            ?grace,
            "Connections still open after ingress.drain_grace_secs; closing them."
        );
    }
}

/// Past `max_connections`: a short 503 written straight to the socket (no HTTP parsing,
/// nothing read), then the connection is closed.
async fn refuse(mut stream: TcpStream, retry_after_secs: u64) {
    let body = r#"{"error":"too many connections; retry later","code":"too_many_connections"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {retry_after_secs}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

async fn route(state: Arc<State>, peer: IpAddr, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v1/webhooks/") {
        // `/v1/webhooks/<connector>/<account>`, or `/v1/webhooks/<connector>` where the
        // account comes from the connector's routing key.
        let mut parts = rest.split('/');
        let connector = parts.next().unwrap_or("").to_string();
        let account = parts.next().map(str::to_string);
        // Ids have a shape (letters, digits, `_`, `-`, at most 64): anything else cannot
        // name an account, and is answered like any unknown one without a lookup, so a
        // flood of made-up ids costs neither Redis round trips nor cache memory.
        let well_formed = is_valid_id(&connector) && account.as_deref().is_none_or(is_valid_id);
        if parts.next().is_some() || !well_formed {
            state
                .metrics
                .rejections
                .with_label_values(&["unknown", "malformed_path"])
                .inc();
            return Ok(Rejection::NotFound("malformed_path").into_response(0));
        }
        let target = match &account {
            Some(a) => Target::Account(a),
            None => Target::Routed,
        };
        return Ok(crate::receive::webhook(state, req, peer, &connector, target).await);
    }
    // Probes for a load balancer; `/metrics` lives on the ops listener only.
    if req.method() == Method::GET && matches!(path, "/healthz" | "/readyz") {
        if let Some(r) = ops_response(path, &state.prometheus, &state.readiness) {
            return Ok(r);
        }
    }
    Ok(Rejection::NotFound("no_route").into_response(0))
}
