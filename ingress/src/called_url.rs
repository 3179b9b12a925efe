//! The URL the provider called, which URL-signing schemes sign (HubSpot v3 and v2,
//! Twilio, Square, Mandrill: the `{url}` of a signature template).
//!
//! Behind a proxy or load balancer that terminates TLS, the ingress sees
//! `http://10.0.3.7:8080/v1/webhooks/…` while the provider signed
//! `https://hooks.example.com/v1/webhooks/…`. Where the URL comes from, in order:
//! 1. `ingress.public_url` (scheme, host, optional port and path prefix), joined with
//!    the request's path and query exactly as received;
//! 2. else, for a peer inside `ingress.trusted_proxies` only, the proxy's `Forwarded`
//!    (`proto=`, `host=`) or `X-Forwarded-Proto` / `X-Forwarded-Host` headers: the last
//!    value of each, the one the nearest proxy wrote;
//! 3. else `http://` and the request's `Host` header.
//!
//! Nothing else a caller sends changes the URL: forwarded headers from any other peer
//! are ignored, so an attacker cannot choose the URL a signature is checked over.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// Where the `{url}` of a signature comes from; built once from configuration.
#[derive(Debug, Clone, Default)]
pub struct CalledUrl {
    /// `scheme://host[:port]` and a path prefix without a trailing `/`.
    public: Option<(String, String)>,
    trusted: Vec<IpNet>,
}

/// A setting that cannot be used; the message names the key and what to write.
#[derive(Debug, thiserror::Error)]
pub enum CalledUrlError {
    #[error("ingress.public_url = {0:?} is not valid: write the URL providers call, e.g. \"https://hooks.example.com\" or \"https://example.com/prefix\" (no query, no fragment)")]
    PublicUrl(String),
    #[error("ingress.trusted_proxies: {0:?} is not a CIDR (write e.g. \"10.0.0.0/8\" or \"192.0.2.10/32\")")]
    TrustedProxy(String),
}

impl CalledUrl {
    pub fn new(public_url: &str, trusted_proxies: &[String]) -> Result<Self, CalledUrlError> {
        let public = if public_url.is_empty() {
            None
        } else {
            Some(split_public(public_url).ok_or_else(|| CalledUrlError::PublicUrl(public_url.into()))?)
        };
        let trusted = trusted_proxies
            .iter()
            .map(|c| {
                c.parse::<IpNet>()
                    .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| CalledUrlError::TrustedProxy(c.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { public, trusted })
    }

    /// The URL the provider called for a request from `peer` with these headers and
    /// this path and query (as received, undecoded).
    pub fn url(&self, peer: IpAddr, headers: &HeaderMap, path_and_query: &str) -> String {
        if let Some((origin, prefix)) = &self.public {
            return format!("{origin}{prefix}{path_and_query}");
        }
        let host = header(headers, "host").unwrap_or("localhost");
        if self.is_trusted(peer) {
            let (proto, fwd_host) = forwarded(headers);
            let proto = proto.filter(|p| matches!(p.as_str(), "http" | "https"));
            let fwd_host = fwd_host.filter(|h| is_host(h));
            if proto.is_some() || fwd_host.is_some() {
                let proto = proto.as_deref().unwrap_or("http");
                let host = fwd_host.as_deref().unwrap_or(host);
                return format!("{proto}://{host}{path_and_query}");
            }
        }
        format!("http://{host}{path_and_query}")
    }

    fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
            v4 => v4,
        };
        self.trusted.iter().any(|n| n.contains(&peer))
    }
}

/// `https://host[:port][/prefix]` → (`https://host[:port]`, `/prefix`).
fn split_public(url: &str) -> Option<(String, String)> {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.contains(['?', '#']) {
        return None;
    }
    let (host, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !is_host(host) {
        return None;
    }
    Some((format!("{scheme}://{host}"), prefix.to_string()))
}

/// A host with an optional port: what a `Host` header may hold.
fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The nearest proxy's `proto` and `host`: from `Forwarded` (RFC 7239) when present, else
/// from `X-Forwarded-Proto` / `X-Forwarded-Host`. Each takes the last value given.
fn forwarded(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let all = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    if let Some(last) = all("forwarded").last() {
        let mut proto = None;
        let mut host = None;
        for pair in last.split(';') {
            let Some((k, v)) = pair.split_once('=') else { continue };
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "proto" => proto = Some(v.to_ascii_lowercase()),
                "host" => host = Some(v),
                _ => {}
            }
        }
        return (proto, host);
    }
    (
        all("x-forwarded-proto").pop().map(|p| p.to_ascii_lowercase()),
        all("x-forwarded-host").pop(),
    )
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const PROXY: &str = "10.0.0.5";
    const PATH: &str = "/v1/webhooks/hubspot?x=a%20b";

    #[test]
    fn the_public_url_wins_and_keeps_path_and_query_as_received() {
        let c = CalledUrl::new("https://hooks.example.test/", &[]).unwrap();
        let h = headers(&[("host", "10.0.3.7:8080"), ("x-forwarded-proto", "http")]);
        assert_eq!(
            c.url(PROXY.parse().unwrap(), &h, PATH),
            "https://hooks.example.test/v1/webhooks/hubspot?x=a%20b"
        );
        let c = CalledUrl::new("https://example.test:8443/switchyard", &[]).unwrap();
        assert_eq!(
            c.url(PROXY.parse().unwrap(), &h, PATH),
            "https://example.test:8443/switchyard/v1/webhooks/hubspot?x=a%20b"
        );
    }

    #[test]
    fn forwarded_headers_count_from_trusted_proxies_only() {
        let c = CalledUrl::new("", &["10.0.0.0/8".into()]).unwrap();
        let h = headers(&[
            ("host", "ingress:8080"),
            ("x-forwarded-proto", "http, https"),
            ("x-forwarded-host", "evil.test, hooks.example.test"),
        ]);
        assert_eq!(
            c.url(PROXY.parse().unwrap(), &h, PATH),
            "https://hooks.example.test/v1/webhooks/hubspot?x=a%20b"
        );
        // The same headers from anyone else change nothing.
        assert_eq!(
            c.url("203.0.113.9".parse().unwrap(), &h, PATH),
            "http://ingress:8080/v1/webhooks/hubspot?x=a%20b"
        );
        // Nor with no trusted proxy configured at all.
        let none = CalledUrl::new("", &[]).unwrap();
        assert_eq!(
            none.url(PROXY.parse().unwrap(), &h, PATH),
            "http://ingress:8080/v1/webhooks/hubspot?x=a%20b"
        );
    }

    #[test]
    fn rfc_7239_forwarded_takes_the_nearest_element() {
        let c = CalledUrl::new("", &["::ffff:10.0.0.0/104".into(), "10.0.0.5".into()]).unwrap();
        let h = headers(&[
            ("host", "ingress:8080"),
            (
                "forwarded",
                r#"for=1.2.3.4;proto=http;host=spoofed.test, for=5.6.7.8;proto=https;host="hooks.example.test""#,
            ),
            ("x-forwarded-proto", "http"),
        ]);
        assert_eq!(
            c.url("::ffff:10.0.0.5".parse().unwrap(), &h, "/p"),
            "https://hooks.example.test/p"
        );
    }

    #[test]
    fn odd_forwarded_values_are_not_used() {
        let c = CalledUrl::new("", &["127.0.0.0/8".into()]).unwrap();
        let h = headers(&[
            ("host", "ingress"),
            ("x-forwarded-proto", "javascript"),
            ("x-forwarded-host", "a.test/b?c"),
        ]);
        assert_eq!(c.url("127.0.0.1".parse().unwrap(), &h, "/p"), "http://ingress/p");
    }

    #[test]
    fn bad_settings_are_refused_with_the_key() {
        for bad in ["hooks.example.test", "ftp://x", "https://x/?q=1", "https://"] {
            let e = CalledUrl::new(bad, &[]).unwrap_err().to_string();
            assert!(e.contains("ingress.public_url"), "{e}");
        }
        let e = CalledUrl::new("", &["ten".into()]).unwrap_err().to_string();
        assert!(e.contains("trusted_proxies"), "{e}");
    }
}
