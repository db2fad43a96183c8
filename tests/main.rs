//! All integration tests in one binary (one link on 2 cores): the modules are in `suite/`.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

#[path = "suite/common.rs"]
mod common;
#[path = "suite/embedding.rs"]
mod embedding;
#[path = "suite/file_id.rs"]
mod file_id;
#[path = "suite/fixtures.rs"]
mod fixtures;
#[path = "suite/forgery.rs"]
mod forgery;
// The example HTTP store uses the `http` feature (`cargo test --all-features`).
#[cfg(feature = "http")]
#[path = "suite/http_e2e.rs"]
mod http_e2e;
#[cfg(feature = "http")]
#[path = "../component/src/http_store.rs"]
mod http_store;
#[path = "suite/malformed.rs"]
mod malformed;
#[path = "suite/retention.rs"]
mod retention;
#[path = "suite/service_table.rs"]
mod service_table;
#[path = "suite/sfs.rs"]
mod sfs;
#[cfg(all(feature = "http", unix))]
#[path = "suite/store_abuse.rs"]
mod store_abuse;
#[path = "suite/xmpp_parsers.rs"]
mod xmpp_parsers;
