//! `switchyard receive`: a webhook receiver for trying Switchyard out. It prints one line
//! per delivery and checks its Standard Webhooks signature against the endpoint secret.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

pub async fn run(listen: SocketAddr, secret: Option<String>, log: Option<PathBuf>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("Receiving webhooks on http://{listen}/ (any path).");
    let out: Arc<Mutex<Box<dyn Write + Send>>> = Arc::new(Mutex::new(match log {
        Some(p) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        None => Box::new(std::io::stdout()),
    }));
    let secret = Arc::new(secret);
    loop {
        let (stream, _) = listener.accept().await?;
        let (out, secret) = (out.clone(), secret.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, out.clone(), secret.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    secret: Arc<Option<String>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let body = match Limited::new(req.into_body(), 4 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    let verdict = match secret.as_ref() {
        None => "unchecked",
        Some(s) => match switchyard_webhooks::Key::from_secret(s).and_then(|k| k.verify(&id, &ts, &body, &sig)) {
            Ok(()) => "valid",
            Err(_) => "INVALID",
        },
    };
    let event_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default();
    let line = format!(
        "{} webhook-id={id} type={event_type} signature={verdict} bytes={}\n",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        body.len()
    );
    if let Ok(mut w) = out.lock() {
        let _ = w.write_all(line.as_bytes());
        let _ = w.flush();
    }
    Ok(reply(if verdict == "INVALID" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::NO_CONTENT
    }))
}

fn reply(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("valid response")
}
