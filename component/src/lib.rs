//! # xmpp-upload-component
//!
//! The upload service operators install: an XEP-0114 component that answers XEP-0363 slot
//! requests (every dialect) and `p1:http-file-transfer` file IDs with the
//! [`xmpp_upload`] library, and stores the files on the built-in HTTP store, on S3, or on an
//! external upload server. The binary is `xmpp-upload-component`; this library exposes its
//! parts so that its tests (and hosts that want the same pieces) can reach them.
//!
//! | module | idea |
//! |---|---|
//! | [`config`] | the TOML file, flags' targets, secrets from files or the environment |
//! | [`session`] / [`stanza_guard`] | the XMPP session and the byte-level guard in front of it |
//! | [`http_store`] | the HTTP side of the signed store: PUT, GET, HEAD, ranges |
//! | [`ops`] / [`metrics`] | `/healthz`, `/metrics`, the admin endpoint |
//! | [`stable_links`] | S3 stable links: a 302 to a fresh presigned URL |
//! | [`retention`] | the record of stored files, the planner's deletions, account removal |
//! | [`pg_state`] | the shared state on PostgreSQL (quotas, records) for several nodes |
//! | [`app`] | the wiring for each storage kind |
#![forbid(unsafe_code)]
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    missing_docs,
    reason = "an application: pedantic lints and API reachability are for the library"
)]

pub mod app;
pub mod config;
pub mod http_store;
pub mod metrics;
pub mod ops;
pub mod pg_state;
pub mod retention;
pub mod session;
pub mod stable_links;
pub mod stanza_guard;
