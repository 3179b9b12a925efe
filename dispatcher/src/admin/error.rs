//! Admin API errors: `{"error", "code", "field"}` with the right status. `field` names
//! the request field at fault (a top-level JSON key or a query parameter).

use std::borrow::Cow;

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use switchyard_registry::RegistryError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<Cow<'static, str>>,
}

impl ApiError {
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            message: message.into(),
            field: Some(field.into()),
        }
    }
    /// 409: the request is valid but clashes with what is stored.
    pub fn conflict(field: Option<&'static str>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: field.map(Cow::Borrowed),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            field: None,
        }
    }
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "a valid bearer token is required (dispatcher.admin_token)".into(),
            field: None,
        }
    }
    pub fn method_not_allowed() -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: "this route does not take that method; see /v1/openapi.json".into(),
            field: None,
        }
    }
    /// 503: a dependency is down; the request may be retried as it is.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code,
            message: message.into(),
            field: None,
        }
    }
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "malformed_json",
            message: message.into(),
            field: None,
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        tracing::error!(error = %e, "Registry operation failed.");
        Self::unavailable(
            "registry_unavailable",
            "the registry (Redis) is unavailable; retry later",
        )
    }
}

/// The attempts log's reads.
impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        RegistryError::Redis(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        match e {
            JsonRejection::MissingJsonContentType(_) => Self {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "send the body as JSON with content-type: application/json".into(),
                field: None,
            },
            JsonRejection::JsonDataError(e) => {
                let text = e.body_text();
                let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
                match field_of(detail) {
                    Some(field) => Self::invalid(field, detail.to_string()),
                    None => Self::bad_json(detail.to_string()),
                }
            }
            other => Self::bad_json(other.body_text()),
        }
    }
}

/// The top-level field a deserialization error is about. axum reports it through
/// `serde_path_to_error` as `<path>: <error>` (`event_types[0]: invalid type…`), or, for
/// a top-level field, serde's own `unknown field `x`` / `missing field `x``.
fn field_of(detail: &str) -> Option<String> {
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = detail.strip_prefix(prefix) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    let (path, _) = detail.split_once(": ")?;
    if path.is_empty() || path.contains(' ') {
        return None;
    }
    path.split(['.', '[']).next().map(str::to_string)
}

/// Longest `error` and `field` answered: serde's messages quote a value of the wrong
/// type, or an unknown key, whole, and a request's megabyte must not come back.
const MAX_MESSAGE: usize = 1_000;
const MAX_FIELD: usize = 64;

fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        s.truncate(s.floor_char_boundary(max));
        s.push('…');
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": bounded(self.message, MAX_MESSAGE), "code": self.code });
        if let Some(f) = self.field {
            body["field"] = bounded(f.into_owned(), MAX_FIELD).into();
        }
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn deserialization_errors_name_their_field() {
        let f = |s: &str| field_of(s);
        assert_eq!(
            f("event_types[0]: invalid type: integer `1`, expected a string").as_deref(),
            Some("event_types")
        );
        assert_eq!(
            f("headers.x-a: invalid type: null, expected a string").as_deref(),
            Some("headers")
        );
        assert_eq!(
            f("rate_limit: invalid value: integer `-1`, expected u32").as_deref(),
            Some("rate_limit")
        );
        assert_eq!(
            f("unknown field `colour`, expected one of `url`").as_deref(),
            Some("colour")
        );
        assert_eq!(f("missing field `url` at line 1 column 2").as_deref(), Some("url"));
        assert_eq!(f("invalid type: string \"x\", expected struct Body"), None);
    }

    #[test]
    fn long_quotes_are_cut_on_a_character() {
        assert_eq!(super::bounded("é".repeat(5), 5), "éé…");
        assert_eq!(super::bounded("short".into(), 300), "short");
    }
}
