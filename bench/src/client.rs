//! The HTTP/1.1 client the benchmark uses for everything it sends: the load (a
//! keep-alive connection pool, no TLS, no redirects, as little client CPU as hyper
//! allows), readiness probes, the admin API and `/metrics`. Every call has a timeout.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

pub type Client = HyperClient<HttpConnector, Full<Bytes>>;

/// A pooled client keeping up to `max_idle` idle connections to one host.
pub fn new(max_idle: usize) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Sends `request` and reads the whole answer, within `timeout`: `(status, body)`.
pub async fn call(client: &Client, request: Request<Full<Bytes>>, timeout: Duration) -> anyhow::Result<(u16, Bytes)> {
    let what = format!("{} {}", request.method(), request.uri());
    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{what}: no answer within {timeout:?}"))?
        .with_context(|| what)
}

/// `GET url`.
pub async fn get(client: &Client, url: &str, timeout: Duration) -> anyhow::Result<(u16, Bytes)> {
    let request = Request::get(url).body(Full::default())?;
    call(client, request, timeout).await
}

/// `PUT url` with a JSON body and a bearer token.
pub async fn put_json(
    client: &Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> anyhow::Result<(u16, Bytes)> {
    let request = Request::builder()
        .method(Method::PUT)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    call(client, request, timeout).await
}
