//! Query parameters of the lists: `limit` and the opaque `cursor` a previous page gave
//! as `next_cursor`. A page answers `{"data": [...], "next_cursor": "..." | null}`.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use serde_json::{json, Value};
use switchyard_registry::store::Page;

use super::ApiError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

/// The query string as given; each handler reads the parameters it knows.
pub type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

pub fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(q)| q)
        .map_err(|e| ApiError::invalid("query", e.body_text()))
}

/// `limit`, 1 to `max`, `default` when absent.
pub fn limit(q: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid("limit", format!("a number from 1 to {max}"))),
        },
    }
}

/// `cursor`, when given and not empty.
pub fn cursor(q: &HashMap<String, String>) -> Option<&str> {
    q.get("cursor").map(String::as_str).filter(|c| !c.is_empty())
}

/// A page as the API answers it, each item through `view`.
pub fn answer<T>(page: &Page<T>, view: impl Fn(&T) -> Value) -> Value {
    json!({
        "data": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })
}
