//! Shared helpers for the integration tests.
#![allow(dead_code)]

use minidom::Element;
use time::OffsetDateTime;
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::{ServiceConfig, SlotService};

pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The fixed time of all tests: 2017-12-03T23:42:05Z (the XEP-0363 `<retry/>` example's stamp).
pub fn now() -> OffsetDateTime {
    time::macros::datetime!(2017-12-03 23:42:05 UTC)
}

/// Parses a stanza. Spec examples and client logs omit the stream's default namespace, which
/// the stream header declares; it is added as `jabber:client` when the root has none.
pub fn parse(xml: &str) -> Element {
    let xml = with_default_ns(xml);
    xml.parse()
        .unwrap_or_else(|e| panic!("fixture does not parse: {e}\n{xml}"))
}

pub fn with_default_ns(xml: &str) -> String {
    let xml = xml.trim_start();
    let Some(start) = xml.find('<') else {
        return xml.to_owned();
    };
    let end = xml[start..]
        .find('>')
        .map(|e| start + e)
        .unwrap_or(xml.len());
    let head = &xml[start..end];
    if head.contains("xmlns=") || head.contains("xmlns =") {
        return xml.to_owned();
    }
    let name_end = head
        .find(|c: char| c.is_whitespace() || c == '/')
        .map(|i| start + i)
        .unwrap_or(end);
    format!(
        "{} xmlns='jabber:client'{}",
        &xml[..name_end],
        &xml[name_end..]
    )
}

pub fn store() -> SignedUrlStore {
    SignedUrlStore::new(
        "https://files.montague.tld/up/".parse().unwrap(),
        *b"store key: 32 bytes of entropy!!",
    )
}

pub fn config() -> ServiceConfig {
    ServiceConfig::new(
        "upload.montague.tld".parse().unwrap(),
        *b"service secret: 32 random bytes!",
    )
}

pub fn service() -> SlotService<SignedUrlStore> {
    SlotService::new(config(), store())
}

/// The defined condition of an error reply, with its type.
pub fn error_of(reply: &Element) -> (String, String) {
    let error = reply
        .children()
        .find(|c| c.name() == "error")
        .expect("an <error/>");
    let cond = error
        .children()
        .find(|c| c.has_ns(STANZAS) && c.name() != "text")
        .map(|c| c.name().to_owned())
        .expect("a condition");
    (error.attr("type").unwrap_or_default().to_owned(), cond)
}

/// The application payload of an error reply (`<file-too-large/>`, `<retry/>`), if any.
pub fn error_payload(reply: &Element) -> Option<Element> {
    let error = reply.children().find(|c| c.name() == "error")?;
    error.children().find(|c| !c.has_ns(STANZAS)).cloned()
}
