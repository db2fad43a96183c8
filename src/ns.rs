//! XML namespaces of the protocols this crate speaks, one documented constant each.

/// XEP-0363 HTTP File Upload, current namespace (XEP-0363 ≥ 0.3.0, 2017; 1.x).
pub const UPLOAD_0: &str = "urn:xmpp:http:upload:0";
/// XEP-0363 HTTP File Upload, legacy namespace (XEP-0363 0.1–0.2.x).
pub const UPLOAD_LEGACY: &str = "urn:xmpp:http:upload";
/// The namespace Conversations used in 2015, before XEP-0363 was published.
pub const SIACS: &str = "eu:siacs:conversations:http:upload";
/// XEP-0363 1.2.0 upload purposes.
pub const UPLOAD_PURPOSE: &str = "urn:xmpp:http:upload:purpose:0";
/// ProcessOne's HTTP file transfer with file IDs (spec by J. Sautret).
pub const FILE_TRANSFER: &str = "p1:http-file-transfer";
/// The same protocol under the name ProcessOne's production service and Conversations use.
pub const FILE_TRANSFER_S3: &str = "p1:s3filetransfer";
/// XEP-0300 Use of Cryptographic Hash Functions in XMPP.
pub const HASHES: &str = "urn:xmpp:hashes:2";
/// XEP-0447 Stateless File Sharing (0.3): `<file-sharing/>` and `<sources/>`.
pub const SFS: &str = "urn:xmpp:sfs:0";
/// XEP-0446 File metadata element: `<file/>`.
pub const FILE_METADATA: &str = "urn:xmpp:file:metadata:0";
/// XEP-0448 Encryption for Stateless File Sharing: the `<encrypted/>` source.
pub const ESFS: &str = "urn:xmpp:esfs:0";
/// XEP-0103 URL Address Information: `<url-data target=/>`.
pub const URL_DATA: &str = "http://jabber.org/protocol/url-data";
/// XEP-0104 HTTP Scheme for URL Data: `<http:header name= value=/>` inside `<url-data/>`.
pub const URL_DATA_HTTP: &str = "http://jabber.org/protocol/url-data/scheme/http";
/// XEP-0264 Jingle Content Thumbnails: `<thumbnail uri=/>`.
pub const THUMBS: &str = "urn:xmpp:thumbs:1";
/// XEP-0428 Fallback Indication: `<fallback for=/>`.
pub const FALLBACK: &str = "urn:xmpp:fallback:0";
/// XEP-0367 Message Attaching: `<attach-to id=/>`.
pub const MESSAGE_ATTACHING: &str = "urn:xmpp:message-attaching:1";
/// XEP-0334 Message Processing Hints: `<store/>`.
pub const HINTS: &str = "urn:xmpp:hints";
/// XEP-0066 Out of Band Data in messages: `<x><url/></x>`.
pub const OOB: &str = "jabber:x:oob";
/// XEP-0359 Unique and Stable Stanza IDs: `<stanza-id/>`, `<origin-id/>`.
pub const SID: &str = "urn:xmpp:sid:0";
/// The `xml:` prefix's namespace (`xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// XEP-0030 Service Discovery, info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030 Service Discovery, items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0004 Data Forms.
pub const DATA_FORMS: &str = "jabber:x:data";
/// RFC 6120 stanza error conditions.
pub const XMPP_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// RFC 6120 client-to-server stanzas.
pub const JABBER_CLIENT: &str = "jabber:client";
/// RFC 6120 server-to-server stanzas.
pub const JABBER_SERVER: &str = "jabber:server";
/// XEP-0114 component stanzas.
pub const COMPONENT_ACCEPT: &str = "jabber:component:accept";

/// The stanza namespaces an IQ may arrive in.
pub(crate) const STANZA_NAMESPACES: [&str; 3] = [JABBER_CLIENT, COMPONENT_ACCEPT, JABBER_SERVER];
