//! Every way a webhook request can be refused, mapped in one place to its HTTP status,
//! its error code (response body and metric label) and its message. Messages are short
//! and never carry internals, secrets or body content.
//!
//! Every 404 answers the same body: an unknown connector, an unknown account, an account
//! of another connector and a connector without configured keys look alike from outside,
//! so the answers reveal nothing about what exists. The metric label says which it was.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use switchyard_connectors::signature::VerifyError;

#[derive(Debug)]
pub enum Rejection {
    /// The reason is the metric label only; the body is the same for every 404.
    NotFound(&'static str),
    MethodNotAllowed,
    /// The body did not arrive within `ingress.body_read_timeout_ms`.
    BodyTimeout,
    TooLarge(usize),
    BadSignature(VerifyError),
    /// Another 400, with its code and message.
    BadRequest(&'static str, &'static str),
    BadBody,
    UnsupportedMediaType,
    /// A dependency (S3, NATS, Redis for an uncached account) is down or slow.
    Unavailable(&'static str),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(..) | Self::BadBody => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(reason) => reason,
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTimeout => "body_timeout",
            Self::TooLarge(_) => "body_too_large",
            Self::BadSignature(e) => e.code(),
            Self::BadRequest(code, _) => code,
            Self::BadBody => "body_unreadable",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unavailable(reason) => reason,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::NotFound(_) => "no webhook URL here; check the connector name and account id".into(),
            Self::MethodNotAllowed => "this connector's webhooks are POSTed".into(),
            Self::BodyTimeout => "the request body did not arrive in time".into(),
            Self::TooLarge(limit) => format!("the body is larger than {limit} bytes"),
            Self::BadSignature(e) => format!("signature rejected: {e}"),
            Self::BadRequest(_, msg) => (*msg).to_string(),
            Self::BadBody => "the request body could not be read".into(),
            Self::UnsupportedMediaType => "this connector does not accept that content type".into(),
            Self::Unavailable(_) => "temporarily unable to store the event; retry later".into(),
        }
    }

    pub fn into_response(self, retry_after_secs: u64) -> Response<Full<Bytes>> {
        let code = match self {
            Self::NotFound(_) => "not_found",
            _ => self.code(),
        };
        let body = serde_json::json!({ "error": self.message(), "code": code }).to_string();
        let mut b = Response::builder()
            .status(self.status())
            .header("content-type", "application/json");
        match self {
            Self::Unavailable(_) => b = b.header("retry-after", retry_after_secs.to_string()),
            Self::MethodNotAllowed => b = b.header("allow", "POST"),
            _ => {}
        }
        b.body(Full::new(Bytes::from(body))).expect("valid response parts")
    }
}
