//! The HTTP listener: routing, connection handling and graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use switchyard_plumbing::telemetry::{ops_response, Readiness};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::receive::Target;
use crate::reject::Rejection;
use crate::State;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_GRACE: Duration = Duration::from_secs(20);

pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: CancellationToken, readiness: Readiness) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "Accept failed.");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let svc = hyper::service::service_fn(move |req| route(state.clone(), req));
        let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
        tokio::spawn(graceful.watch(conn));
    }
    // Stop accepting; say so on /readyz; let in-flight requests become durable and answer.
    readiness.start_draining();
    drop(listener);
    drop(state);
    if tokio::time::timeout(DRAIN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::error!(grace = ?DRAIN_GRACE, "Connections still open after the drain grace period; closing them.");
    }
}

async fn route(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/v1/webhooks/") {
        // `/v1/webhooks/<connector>/<account>`, or `/v1/webhooks/<connector>` where the
        // account comes from the connector's routing key.
        let mut parts = rest.split('/');
        let connector = parts.next().unwrap_or("").to_string();
        let account = parts.next().map(str::to_string);
        if parts.next().is_some() || connector.is_empty() || account.as_deref() == Some("") {
            return Ok(Rejection::NotFound("not_found", "no such route").into_response(0));
        }
        let target = match &account {
            Some(a) => Target::Account(a),
            None => Target::Routed,
        };
        return Ok(crate::receive::webhook(state, req, &connector, target).await);
    }
    if req.method() == Method::GET {
        if let Some(r) = ops_response(&path, &state.prometheus, &state.readiness) {
            return Ok(r);
        }
    }
    let mut r = Rejection::NotFound("not_found", "no such route").into_response(0);
    *r.status_mut() = StatusCode::NOT_FOUND;
    Ok(r)
}
