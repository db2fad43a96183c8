//! # xmpp-upload
//!
//! Everything an XMPP server, component or client needs for HTTP File Upload
//! ([XEP-0363](https://xmpp.org/extensions/xep-0363.html)) and for ProcessOne's file-ID
//! extension (`p1:http-file-transfer`): the stanzas in every dialect seen in the wild, a slot
//! service that answers them under a policy, and storage backends that issue short-lived URLs
//! bound to one file, so the storage master key never leaves the server.
//!
//! ### This crate does no I/O
//! It never opens a socket or a file and never reads the clock. Time comes in as
//! `now: OffsetDateTime`; unguessable values (slot IDs, file IDs) are derived with HMAC from a
//! host secret. Every result is therefore reproducible. The HTTP server that receives the
//! uploads, the XMPP connection and the storage live in your program (see `examples/`).
//!
//! ```text
//! client IQ ──► stanza parsing ──► SlotService (access, name, size, type, quota) ──► StorageBackend ──► reply IQ
//!              (3 dialects, p1,        │ typed SlotError ─► error IQ                   │ signed URLs
//!               disco#info/items)      ▼                                                │ external servers
//!                                   QuotaLedger                                         │ S3 SigV4 presign
//! HTTP server ── SignedUrlStore::verify_put / verify_get ──────────────────────────────► 201 / 403 / 413
//! ```
//!
//! ## Getting started
//! ```
//! use xmpp_upload::{ServiceConfig, SlotService, storage::signed::SignedUrlStore};
//! use xmpp_upload::stanza::upload::Slot;
//!
//! let config = ServiceConfig::new("upload.montague.tld".parse()?, *b"32 bytes of host secret.........")
//!     .max_file_size(10 * 1024 * 1024);
//! let store = SignedUrlStore::new("https://files.montague.tld/".parse()?, *b"32 bytes of storage key.........");
//! let service = SlotService::new(config, store);
//!
//! // A slot request as Conversations sends it, arriving at the service.
//! let request: minidom::Element = "<iq xmlns='jabber:client' type='get' id='step_03' \
//!     from='romeo@montague.tld/garden' to='upload.montague.tld'>\
//!     <request xmlns='urn:xmpp:http:upload:0' filename='my-juliet.jpg' size='23456' \
//!     content-type='image/jpeg'/></iq>".parse()?;
//! let now = time::macros::datetime!(2024-05-01 12:00 UTC);
//! let reply = service.handle(&request, now).expect("the service answers upload requests");
//!
//! let slot = Slot::try_from(reply.children().next().expect("a <slot/>"))?;
//! // The HTTP side accepts exactly that file, for 300 s.
//! let ok = service.storage().verify_put(&slot.put, 23456, Some("image/jpeg"), now)?;
//! assert_eq!(ok.filename, "my-juliet.jpg");
//! assert!(service.storage().verify_put(&slot.put, 23457, Some("image/jpeg"), now).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Map
//! * [`stanza`]: wire types, parsed from and built into [`minidom::Element`]; on the client
//!   side after a slot also [`stanza::sfs`] (XEP-0447 Stateless File Sharing),
//!   [`stanza::file_metadata`] (XEP-0446), [`stanza::url_data`] (XEP-0103),
//!   [`stanza::esfs`] (XEP-0448), [`stanza::fallback`], [`stanza::attach`], [`stanza::hints`].
//! * [`share`]: sharing a slot's GET URL in a message (legacy body + OOB, SFS in one message,
//!   or announce-then-attach), reading incoming shares ([`share::classify`]), and streaming
//!   file hashes with their verification ([`share::hash`]).
//! * [`SlotService`] / [`ServiceConfig`]: the policy and the one entry point, [`SlotService::handle`].
//! * [`storage`]: the [`StorageBackend`] trait and the built-in backends
//!   ([`storage::signed`], [`storage::external`], [`storage::s3`]).
//! * [`file_id`]: opaque, authenticated file IDs.
//! * [`checked`]: validated file names and content types.
//! * `aesgcm` (feature `aesgcm`): encrypted media for clients, XEP-0454 `aesgcm://` links
//!   with streaming AES-256-GCM, and the XEP-0448 (ESFS) ciphers.
//! * `http` (feature `http`): verifying PUT/GET from `http::request::Parts`, slot headers as
//!   an `http::HeaderMap`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::pedantic,
        reason = "unit tests favour spelled-out vectors over the pedantic lints of the API"
    )
)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rustdoc::broken_intra_doc_links)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

#[cfg(feature = "aesgcm")]
#[cfg_attr(docsrs, doc(cfg(feature = "aesgcm")))]
pub mod aesgcm;
pub mod checked;
#[cfg(feature = "service")]
mod crypto;
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub mod file_id;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
pub mod ns;
mod redact;
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub mod service;
pub mod share;
pub mod stanza;
#[cfg(feature = "service")]
#[cfg_attr(docsrs, doc(cfg(feature = "service")))]
pub mod storage;
mod xml;

#[cfg(feature = "service")]
pub use service::{ConfigError, ServiceConfig, SlotError, SlotService};
#[cfg(feature = "service")]
pub use storage::StorageBackend;

// The crates whose types appear in this crate's public API, re-exported so that users get
// exactly the versions this crate was built with (no version skew between, say, the
// `minidom::Element` a user builds and the one `SlotService::handle` takes).
/// `jid`, XMPP addresses (re-exported: the matching version).
pub use jid;
/// `minidom`, the XML element type of every stanza in and out (re-exported: the matching version).
pub use minidom;
/// `time`, the `now: OffsetDateTime` every call takes (re-exported: the matching version).
pub use time;
/// `url`, the type of every PUT and GET URL (re-exported: the matching version).
pub use url;
/// `xmpp_parsers`, whose `Iq`, `Message`, `StanzaError` and disco types the wire types plug
/// into (re-exported: the matching version).
pub use xmpp_parsers;
