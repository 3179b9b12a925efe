//! The types and wiring every Switchyard binary shares, and nothing that talks to S3 or
//! Redis (those are `switchyard-claimcheck` and `switchyard-registry`).
//!
//! # Layout
//! - [`config`]: the one configuration file (embedded defaults → `--config` file →
//!   `SWITCHYARD_…` environment), validated on load.
//! - [`secret`]: the one type secrets are held in.
//! - [`names`]: stream, subject, consumer and key names derived from one namespace.
//! - [`envelope`]: what travels on the streams: the raw envelope (ingress → normalizer)
//!   and the unified event (normalizer → dispatcher).
//! - [`delivery`]: the retry messages the dispatcher schedules for itself.
//! - [`ids`]: deterministic event ids.
//! - [`nats`]: connecting to NATS and declaring the JetStream streams.
//! - [`publish`]: publishing durably (a message counts once its PubAck is in).
//! - [`consume`]: the one pull-consumer loop (pull, handle, settle, drain).
//! - [`service`]: the start-up and shut-down every binary shares.
//! - [`telemetry`]: logs, the metrics registry and the small ops listener
//!   (`/healthz`, `/readyz`, `/metrics`).
//! - [`offload`]: slow work (mappings, filters) off the runtime thread, within a
//!   budget per tenant.
//! - [`shutdown`]: turning SIGTERM/SIGINT into a cancellation token.
//! - [`reload`]: when to reload the connector catalog without a restart (SIGHUP, poll).
//! - [`timefmt`]: RFC 3339 and Unix milliseconds.

pub mod config;
pub mod consume;
pub mod delivery;
pub mod envelope;
pub mod error_text;
pub mod ids;
pub mod names;
pub mod nats;
pub mod offload;
pub mod publish;
pub mod reload;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod timefmt;
