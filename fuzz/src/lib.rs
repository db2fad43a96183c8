//! Shared set-up of the fuzz targets and the seed generator (`src/bin/seeds.rs`): one fixed
//! clock and fixed keys, so the seeds' signed URLs and file IDs are genuine for the targets.
//!
//! Every helper is infallible on the fuzzed input; the only property checked is "no panic".

use std::sync::LazyLock;

use minidom::Element;
use time::{Duration, OffsetDateTime};
use url::Url;
use xmpp_upload::stanza::disco::ServiceInfo;
use xmpp_upload::stanza::error::ErrorPayload;
use xmpp_upload::stanza::file_transfer::{FileMessage, Query};
use xmpp_upload::stanza::upload::{Slot, SlotRequest};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService};

/// The service's JID.
pub const SERVICE_JID: &str = "upload.montague.tld";
/// A requester the allow-list admits.
pub const REQUESTER: &str = "romeo@montague.tld/garden";
/// Base URL of the signed-URL store.
pub const STORE_BASE: &str = "https://files.montague.tld/up/";
/// Base URL of the stable GET links.
pub const STABLE_BASE: &str = "https://share.montague.tld/f/";

/// The fixed clock: 2017-12-03T23:42:05Z (the tests' time).
#[must_use]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_512_344_525).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("constant URL")
}

/// The signed-URL store every service here uses.
#[must_use]
pub fn store() -> SignedUrlStore {
    SignedUrlStore::new(url(STORE_BASE), *b"store key: 32 bytes of entropy!!")
}

fn config() -> ServiceConfig {
    ServiceConfig::new(
        SERVICE_JID.parse().expect("constant JID"),
        *b"service secret: 32 random bytes!",
    )
    .max_file_size(20 << 20)
    .daily_quota(10 << 20)
    .global_daily_quota(5 << 20)
    .allow_domains(["montague.tld", "capulet.example"])
    .allowed_content_types([
        "image/*",
        "video/*",
        "audio/*",
        "text/plain",
        "application/pdf",
        "application/octet-stream",
    ])
}

/// A fresh service (fresh quota ledger, so a run depends on its input only): quotas, a
/// domain allow-list, a content-type allow-list, signed URLs.
#[must_use]
pub fn service() -> SlotService<SignedUrlStore> {
    SlotService::new(config(), store())
}

/// The same policy plus stable GET links, GET and file-ID lifetimes and a previous secret.
#[must_use]
pub fn stable_service() -> SlotService<SignedUrlStore> {
    let config = config()
        .stable_get_base(url(STABLE_BASE))
        .get_ttl(Duration::days(30))
        .file_id_ttl(Duration::days(365))
        .download_ttl(Duration::seconds(120))
        .previous_secret(*b"old service secret, 32 bytes!!!!");
    SlotService::new(config, store())
}

/// A shared [`stable_service`] for targets that never charge a quota.
pub static STABLE: LazyLock<SlotService<SignedUrlStore>> = LazyLock::new(stable_service);

/// The requester as a JID.
pub static REQUESTER_JID: LazyLock<jid::Jid> =
    LazyLock::new(|| REQUESTER.parse().expect("constant JID"));

/// Feeds an element to every stanza parser of the crate.
pub fn parse_all(e: &Element) {
    let _ = SlotRequest::parse(e);
    let _ = Slot::parse(e);
    let _ = ErrorPayload::parse(e);
    let _ = Query::parse(e);
    let _ = FileMessage::parse(e);
    let _ = ServiceInfo::parse(e);
}

/// Splits a `verify` input: `URL \n Content-Length \n Content-Type`. A missing or unparsable
/// length is 0; a missing third line is no `Content-Type` (an empty one is `Some("")`).
#[must_use]
pub fn split_verify_input(s: &str) -> (&str, u64, Option<&str>) {
    let mut lines = s.splitn(3, '\n');
    let url = lines.next().unwrap_or_default();
    let len = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (url, len, lines.next())
}

/// The stable link `{STABLE_BASE}{id}/file.bin`, the id as one path segment.
#[must_use]
pub fn stable_link(id: &str) -> Url {
    let mut u = url(STABLE_BASE);
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty().push(id).push("file.bin");
    }
    u
}
