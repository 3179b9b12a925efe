//! What Switchyard's three binaries share, and nothing else.
//!
//! # Layout
//! - [`config`]: the one configuration file (embedded defaults → `--config` file →
//!   `SWITCHYARD_…` environment), validated on load.
//! - [`names`]: stream, subject, consumer and key names derived from one namespace.
//! - [`envelope`]: what travels on the streams: the raw envelope (ingress → normalizer)
//!   and the unified event (normalizer → dispatcher).
//! - [`claimcheck`]: the S3 claim-check store and the segment format that lets many
//!   bodies share one object (group commit).
//! - [`nats`]: connecting to NATS and declaring the JetStream streams.
//! - [`registry`]: tenants, endpoints and accounts in Redis, with sealed secrets and an
//!   in-process cache invalidated over NATS.
//! - [`telemetry`]: logs, the metrics registry and the small ops listener
//!   (`/healthz`, `/readyz`, `/metrics`).
//! - [`offload`]: slow work (mappings, filters) off the runtime thread, within a
//!   budget per tenant.
//! - [`shutdown`]: turning SIGTERM/SIGINT into a cancellation token.
//! - [`reload`]: when to reload the connector catalog without a restart (SIGHUP, poll).

pub mod claimcheck;
mod claimcheck_direct;
pub mod claimcheck_read;
pub mod config;
pub mod delivery;
pub mod envelope;
pub mod ids;
pub mod names;
pub mod nats;
pub mod offload;
pub mod probe;
pub mod registry;
pub mod reload;
pub mod sealed;
pub mod shutdown;
pub mod telemetry;
pub mod timefmt;
