//! The integration and end-to-end tests, one binary (faster to link).

mod admin_api;
mod admin_props;
mod batches;
mod body_shapes;
mod claim_store;
mod cluster;
mod delivery;
mod deploy_files;
mod durability;
mod event_type_globs;
mod filter_isolation;
mod handshakes;
mod harness;
mod manifests;
mod metrics_names;
mod pipeline;
mod proxy_env;
mod readiness;
mod reload;
mod replay;
mod routing;
mod sealed_headers;
mod signed_url;
mod streams;
mod undelivered;
mod walking_skeleton;
