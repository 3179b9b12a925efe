//! The declarative connector engine. Provider behaviour is data: a connector file in
//! `connectors/catalog/` says how a provider signs its webhooks, where the event id and
//! type are, and how each event type maps to a unified event (JSONata). No provider has
//! Rust code of its own.
//!
//! # Layout
//! - [`model`]: the connector file format (TOML), strictly typed.
//! - [`catalog`]: loading a folder of connector files, validating all of it, reporting
//!   every problem at once.
//! - [`signature`]: the one generic verifier; [`signature::verify`] turns a
//!   [`signature::RawWebhook`] into a [`signature::VerifiedWebhook`].
//! - [`template`]: the signed-bytes template a connector file declares.
//! - [`body`]: JSON and form bodies as one JSON value.
//! - [`extract`]: event ids, types and times out of a verified request.
//! - [`handshake`]: the endpoint-ownership handshakes providers send before events.
//! - [`live`]: the catalog a running binary uses, reloaded when its files change.
//! - [`jsonpath`]: the small dotted-path language connector files use to point into JSON.
//! - [`mapping`]: JSONata, behind one small module (compile, evaluate with limits).
//! - [`unified`]: the unified models, one JSON Schema per unified event type.
//! - [`compile`]: a connector's mappings, compiled and checked when the catalog loads.
//! - [`apply`]: a connector's mappings applied to one provider event.
//! - [`coverage`]: how many of the provider's documented event types are mapped.
//! - [`problems`]: what is wrong in a connector file, with its line and field.
//! - [`fixtures`]: documented provider payloads with their expected unified events.

pub mod apply;
pub mod body;
pub mod catalog;
pub mod compile;
pub mod coverage;
pub mod docs;
pub mod extract;
pub mod fixtures;
pub mod handshake;
pub mod jsonpath;
pub mod live;
pub mod mapping;
pub mod model;
pub mod problems;
pub mod signature;
pub mod template;
pub mod unified;

pub use catalog::{Catalog, CatalogError, Connector};
