//! XEP-0363: HTTP File Upload — the slot request and the slot, in every dialect.
//!
//! * `urn:xmpp:http:upload:0` (XEP-0363 ≥ 0.3.0): `<request filename= size= content-type=/>`,
//!   `<slot><put url=><header name=>value</header></put><get url=/></slot>`;
//! * `urn:xmpp:http:upload` (XEP-0363 0.1–0.2.x) and `eu:siacs:conversations:http:upload`
//!   (Conversations, 2015): `<request><filename/><size/><content-type/></request>`,
//!   `<slot><put>URL</put><get>URL</get></slot>`;
//! * the Smack 4.2.0 hybrid: the `:0` namespace with the legacy children.
//!
//! XEP-0363 1.2.0 purposes (`urn:xmpp:http:upload:purpose:0`) and XEP-0300 `<hash/>`
//! children of `<request/>` are read and written in every dialect.

use base64::Engine as _;
use minidom::Element;
use time::OffsetDateTime;
use url::Url;
use xmpp_parsers::hashes::{Algo, Hash};
pub use xmpp_parsers::http_upload::HeaderName;
use xmpp_parsers::iq::{IqGetPayload, IqResultPayload};
use xmpp_parsers::FromElementError;

use super::{format_stamp, from_owned, parse_size, parse_stamp, Dialect, ParseError};
use crate::ns;
use crate::xml::{child, el, set, text_el, with};

/// Why the file is uploaded (XEP-0363 1.2.0, `urn:xmpp:http:upload:purpose:0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// Shared in a message (the default when no purpose is given).
    Message,
    /// A profile picture or similar, kept as long as the profile uses it.
    Profile,
    /// Needed only for a while, optionally only until `expire_before`.
    Ephemeral {
        /// The time after which the file is no longer needed.
        expire_before: Option<OffsetDateTime>,
    },
    /// To be kept indefinitely.
    Permanent,
}

impl Purpose {
    /// The element name of this purpose.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Purpose::Message => "message",
            Purpose::Profile => "profile",
            Purpose::Ephemeral { .. } => "ephemeral",
            Purpose::Permanent => "permanent",
        }
    }

    /// The service discovery feature announcing support for this purpose.
    #[must_use]
    pub const fn feature(self) -> &'static str {
        match self {
            Purpose::Message => "urn:xmpp:http:upload:purpose:0#message",
            Purpose::Profile => "urn:xmpp:http:upload:purpose:0#profile",
            Purpose::Ephemeral { .. } => "urn:xmpp:http:upload:purpose:0#ephemeral",
            Purpose::Permanent => "urn:xmpp:http:upload:purpose:0#permanent",
        }
    }

    fn parse(e: &Element) -> Result<Option<Purpose>, ParseError> {
        Ok(Some(match e.name() {
            "message" => Purpose::Message,
            "profile" => Purpose::Profile,
            "permanent" => Purpose::Permanent,
            "ephemeral" => Purpose::Ephemeral {
                expire_before: match e.attr("expire-before") {
                    None => None,
                    Some(s) => {
                        Some(parse_stamp(s).ok_or(ParseError::InvalidDateTime("expire-before"))?)
                    }
                },
            },
            // A purpose from a later revision: ignored, as unknown children are.
            _ => return Ok(None),
        }))
    }

    fn to_element(self) -> Element {
        let mut e = el(self.name(), ns::UPLOAD_PURPOSE);
        if let Purpose::Ephemeral {
            expire_before: Some(t),
        } = self
        {
            set(&mut e, "expire-before", format_stamp(t));
        }
        e
    }
}

/// A slot request: `<request/>` in any dialect.
///
/// ```
/// use xmpp_upload::stanza::{upload::SlotRequest, Dialect};
/// let xml = "<request xmlns='urn:xmpp:http:upload:0' filename='my-juliet.jpg' \
///            size='23456' content-type='image/jpeg'/>";
/// let req = SlotRequest::try_from(&xml.parse::<minidom::Element>()?)?;
/// assert_eq!((req.dialect, req.filename.as_str(), req.size), (Dialect::V0, "my-juliet.jpg", 23456));
///
/// // An xmpp-parsers IQ payload:
/// let iq = xmpp_parsers::iq::Iq::from_get("step_03", SlotRequest::new("my-juliet.jpg", 23456));
/// let xmpp_parsers::iq::Iq::Get { payload, .. } = iq else { unreachable!() };
/// assert_eq!(SlotRequest::try_from(payload)?, SlotRequest::new("my-juliet.jpg", 23456));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SlotRequest {
    /// The dialect the request came in (or is to be sent in).
    pub dialect: Dialect,
    /// The file name, as sent (checked by the service, not here, beyond being non-empty).
    pub filename: String,
    /// The size in bytes.
    pub size: u64,
    /// The MIME type; an empty value is read as absent.
    pub content_type: Option<String>,
    /// The XEP-0363 1.2.0 purpose, when given.
    pub purpose: Option<Purpose>,
    /// XEP-0300 hashes of the file, when given (the Snikket SDK sends a SHA-256).
    pub hashes: Vec<Hash>,
}

impl SlotRequest {
    /// A request in the current dialect, with no type, purpose or hash.
    #[must_use]
    pub fn new(filename: impl Into<String>, size: u64) -> Self {
        Self {
            dialect: Dialect::V0,
            filename: filename.into(),
            size,
            content_type: None,
            purpose: None,
            hashes: Vec::new(),
        }
    }

    /// Sets the content type.
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        let t = content_type.into();
        self.content_type = if t.is_empty() { None } else { Some(t) };
        self
    }

    /// Sets the dialect.
    #[must_use]
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Sets the purpose.
    #[must_use]
    pub fn with_purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = Some(purpose);
        self
    }

    /// Adds a SHA-256 of the file.
    #[must_use]
    pub fn with_sha256(mut self, digest: [u8; 32]) -> Self {
        self.hashes.push(Hash::new(Algo::Sha_256, digest.to_vec()));
        self
    }

    /// The SHA-256 of the file, when the request carries one.
    #[must_use]
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.hashes
            .iter()
            .find(|h| h.algo == Algo::Sha_256)
            .and_then(|h| <[u8; 32]>::try_from(h.hash.as_slice()).ok())
    }

    /// Parses a `<request/>` in any of the three namespaces.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        let dialect = match Dialect::from_namespace(&e.ns()) {
            Some(d) if e.name() == "request" => d,
            _ => return Err(ParseError::unexpected("an XEP-0363 <request/>", e)),
        };
        let ns = dialect.namespace();
        let (dialect, filename, size, content_type) =
            if dialect == Dialect::V0 && e.attr("filename").is_some() {
                let filename = e.attr("filename").unwrap_or_default().to_owned();
                let size = parse_size(e.attr("size").ok_or(ParseError::MissingAttribute("size"))?)?;
                (
                    dialect,
                    filename,
                    size,
                    e.attr("content-type").map(str::to_owned),
                )
            } else if dialect == Dialect::V0 && child(e, "filename", ns).is_none() {
                return Err(ParseError::MissingAttribute("filename"));
            } else {
                let dialect = if dialect == Dialect::V0 {
                    Dialect::HybridV0
                } else {
                    dialect
                };
                let filename =
                    unique_text(e, "filename", ns)?.ok_or(ParseError::MissingChild("filename"))?;
                let size = unique_text(e, "size", ns)?.ok_or(ParseError::MissingChild("size"))?;
                let size = parse_size(size.trim())?;
                (
                    dialect,
                    filename.trim().to_owned(),
                    size,
                    unique_text(e, "content-type", ns)?,
                )
            };
        if filename.is_empty() {
            return Err(ParseError::EmptyFilename);
        }
        let content_type = content_type
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());

        let mut purpose = None;
        let mut hashes = Vec::new();
        for c in e.children() {
            if c.has_ns(ns::UPLOAD_PURPOSE) {
                if let Some(p) = Purpose::parse(c)? {
                    if purpose.replace(p).is_some() {
                        return Err(ParseError::DuplicateChild("purpose"));
                    }
                }
            } else if c.is("hash", ns::HASHES) {
                hashes.push(parse_hash(c)?);
            }
        }
        Ok(Self {
            dialect,
            filename,
            size,
            content_type,
            purpose,
            hashes,
        })
    }

    /// Builds the `<request/>` in [`SlotRequest::dialect`].
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = self.dialect.namespace();
        let mut e = el("request", ns);
        if self.dialect == Dialect::V0 {
            set(&mut e, "filename", self.filename.as_str());
            set(&mut e, "size", self.size.to_string());
            if let Some(t) = &self.content_type {
                set(&mut e, "content-type", t.as_str());
            }
        } else {
            e.append_child(text_el("filename", ns, self.filename.as_str()));
            e.append_child(text_el("size", ns, self.size.to_string()));
            if let Some(t) = &self.content_type {
                e.append_child(text_el("content-type", ns, t.as_str()));
            }
        }
        if let Some(p) = self.purpose {
            e.append_child(p.to_element());
        }
        for h in &self.hashes {
            let algo: String = h.algo.clone().into();
            e.append_child(with(
                text_el(
                    "hash",
                    ns::HASHES,
                    base64::engine::general_purpose::STANDARD.encode(&h.hash),
                ),
                "algo",
                algo,
            ));
        }
        e
    }
}

impl TryFrom<&Element> for SlotRequest {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention: the element back on a mismatch, the typed error boxed
/// otherwise (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for SlotRequest {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

/// `Iq::from_get(id, SlotRequest::new(name, size))` builds the request IQ.
impl IqGetPayload for SlotRequest {}

impl From<&SlotRequest> for Element {
    fn from(r: &SlotRequest) -> Element {
        r.to_element()
    }
}

impl From<SlotRequest> for Element {
    fn from(r: SlotRequest) -> Element {
        r.to_element()
    }
}

/// The text of a child that may appear at most once.
fn unique_text(e: &Element, name: &'static str, ns: &str) -> Result<Option<String>, ParseError> {
    let mut found = None;
    for c in e.children().filter(|c| c.name() == name && c.has_ns(ns)) {
        if found.replace(c.text()).is_some() {
            return Err(ParseError::DuplicateChild(name));
        }
    }
    Ok(found)
}

/// Reads an XEP-0300 `<hash algo=>base64</hash>`; the digest length is checked for the
/// algorithms whose length is known.
pub(crate) fn parse_hash(e: &Element) -> Result<Hash, ParseError> {
    let algo: Algo = e
        .attr("algo")
        .ok_or(ParseError::InvalidHash("missing 'algo'"))?
        .parse()
        .map_err(|_| ParseError::InvalidHash("empty 'algo'"))?;
    let hash = crate::xml::base64_text(e).map_err(|_| ParseError::InvalidHash("not base64"))?;
    let expected = match algo {
        Algo::Sha_1 => Some(20),
        Algo::Sha_256 | Algo::Sha3_256 | Algo::Blake2b_256 => Some(32),
        Algo::Sha_512 | Algo::Sha3_512 | Algo::Blake2b_512 => Some(64),
        Algo::Unknown(_) => None,
    };
    if expected.is_some_and(|n| n != hash.len()) || hash.is_empty() {
        return Err(ParseError::InvalidHash("wrong digest length"));
    }
    Ok(Hash::new(algo, hash))
}

/// An HTTP header the client must send with its PUT: `<header name=>value</header>` inside
/// `<put/>` (XEP-0363 ≥ 0.3.0 only).
///
/// ```
/// use xmpp_upload::stanza::upload::{HeaderName, SlotHeader};
/// let h = SlotHeader::new(HeaderName::Cookie, "foo=bar; user=romeo");
/// let el = minidom::Element::from(&h);
/// let xml = "<header xmlns='urn:xmpp:http:upload:0' name='Cookie'>foo=bar; user=romeo</header>";
/// assert_eq!(el, xml.parse::<minidom::Element>().unwrap());
/// assert_eq!(SlotHeader::try_from(&el)?, h);
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SlotHeader {
    /// One of the three names XEP-0363 allows.
    pub name: HeaderName,
    /// The value, without CR or LF.
    pub value: String,
}

impl SlotHeader {
    /// A header; CR and LF are removed from the value.
    #[must_use]
    pub fn new(name: HeaderName, value: &str) -> Self {
        Self {
            name,
            value: strip_crlf(value),
        }
    }

    /// Parses a `<header name=>value</header>` in any XEP-0363 namespace. The name is matched
    /// without regard to case; a name other than `Authorization`, `Cookie` and `Expires` is
    /// [`ParseError::InvalidValue`] (a [`Slot`] skips such headers, as XEP-0363 requires). CR
    /// and LF are removed from the value.
    pub fn parse(h: &Element) -> Result<Self, ParseError> {
        if h.name() != "header" || Dialect::from_namespace(&h.ns()).is_none() {
            return Err(ParseError::unexpected("an XEP-0363 <header/>", h));
        }
        let name = match h
            .attr("name")
            .ok_or(ParseError::MissingAttribute("name"))?
            .to_ascii_lowercase()
            .as_str()
        {
            "authorization" => HeaderName::Authorization,
            "cookie" => HeaderName::Cookie,
            "expires" => HeaderName::Expires,
            _ => return Err(ParseError::InvalidValue("header name")),
        };
        Ok(Self::new(name, &h.text()))
    }

    /// Builds the `<header/>` in `ns`, the exact-case name and the value without CR or LF.
    fn build(&self, ns: &str) -> Element {
        with(
            text_el("header", ns, strip_crlf(&self.value)),
            "name",
            self.name.as_str(),
        )
    }
}

impl TryFrom<&Element> for SlotHeader {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for SlotHeader {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

/// In `urn:xmpp:http:upload:0`, the only namespace with headers.
impl From<&SlotHeader> for Element {
    fn from(h: &SlotHeader) -> Element {
        h.build(ns::UPLOAD_0)
    }
}

/// In `urn:xmpp:http:upload:0`, the only namespace with headers.
impl From<SlotHeader> for Element {
    fn from(h: SlotHeader) -> Element {
        h.build(ns::UPLOAD_0)
    }
}

fn strip_crlf(s: &str) -> String {
    s.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// A slot: where to PUT the file, with which headers, and where it can be fetched.
///
/// A slot knows its [`dialect`](Slot::dialect): [`Slot::parse`] records the one it found,
/// [`Slot::new`] starts in [`Dialect::V0`] and [`Slot::with_dialect`] changes it, and
/// `Element::from(slot)` writes the slot in it. [`Slot::to_element`] writes it in the dialect
/// of a request instead.
///
/// ```
/// use xmpp_upload::stanza::{upload::Slot, Dialect};
/// let slot = Slot::new("https://up.example/a/b.jpg".parse()?, "https://dl.example/a/b.jpg".parse()?)
///     .with_dialect(Dialect::Legacy);
/// let legacy = minidom::Element::from(&slot);
/// assert_eq!(legacy.ns(), "urn:xmpp:http:upload");
/// assert_eq!(Slot::try_from(&legacy)?, slot);
/// // As the answer to a request in the current namespace:
/// assert_eq!(slot.to_element(Dialect::V0).ns(), "urn:xmpp:http:upload:0");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Slot {
    /// The dialect the slot came in, or is written in (`Element::from`).
    pub dialect: Dialect,
    /// The PUT URL.
    pub put: Url,
    /// Headers the client must send with the PUT (not written in [`Dialect::Legacy`] and
    /// [`Dialect::Siacs`], which have none).
    pub headers: Vec<SlotHeader>,
    /// The GET URL to share.
    pub get: Url,
}

impl core::fmt::Debug for Slot {
    /// The URLs without their query, and only the names of the headers (an `Authorization`
    /// value is a credential).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slot")
            .field("dialect", &self.dialect)
            .field("put", &crate::redact::RedactedUrl(&self.put))
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .field("get", &crate::redact::RedactedUrl(&self.get))
            .finish()
    }
}

impl Slot {
    /// A slot without headers, in [`Dialect::V0`].
    #[must_use]
    pub fn new(put: Url, get: Url) -> Self {
        Self {
            dialect: Dialect::V0,
            put,
            headers: Vec::new(),
            get,
        }
    }

    /// Sets the dialect the slot is written in. [`Dialect::HybridV0`] writes the legacy
    /// layout (URLs as text) in the `urn:xmpp:http:upload:0` namespace, as the Smack 4.2.0
    /// era servers did.
    #[must_use]
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Adds a header the client must send with the PUT; CR and LF are removed from the value.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        self.headers.push(SlotHeader::new(name, value));
        self
    }

    /// Parses a `<slot/>` in any dialect and records it in [`Slot::dialect`] (the
    /// `urn:xmpp:http:upload:0` namespace with text URLs is [`Dialect::HybridV0`]). Headers
    /// with names other than `Authorization`, `Cookie` and `Expires` are skipped, as XEP-0363
    /// requires; CR and LF are removed from header values.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        let dialect = match Dialect::from_namespace(&e.ns()) {
            Some(d) if e.name() == "slot" => d,
            _ => return Err(ParseError::unexpected("an XEP-0363 <slot/>", e)),
        };
        let ns = dialect.namespace();
        let one = |name: &'static str| -> Result<&Element, ParseError> {
            let mut it = e.children().filter(|c| c.name() == name && c.has_ns(ns));
            let first = it.next().ok_or(ParseError::MissingChild(name))?;
            if it.next().is_some() {
                return Err(ParseError::DuplicateChild(name));
            }
            Ok(first)
        };
        let put_el = one("put")?;
        let get_el = one("get")?;
        let url_of = |c: &Element, name: &'static str| -> Result<Url, ParseError> {
            let text;
            let raw = if let Some(u) = c.attr("url") {
                u
            } else {
                text = c.text();
                text.trim()
            };
            if raw.is_empty() {
                return Err(ParseError::MissingAttribute("url"));
            }
            Url::parse(raw).map_err(|_| ParseError::InvalidUrl(name))
        };
        let put = url_of(put_el, "put")?;
        let get = url_of(get_el, "get")?;
        let dialect = if dialect == Dialect::V0 && put_el.attr("url").is_none() {
            Dialect::HybridV0
        } else {
            dialect
        };
        let headers = put_el
            .children()
            .filter(|h| h.name() == "header" && h.has_ns(ns))
            .filter_map(|h| SlotHeader::parse(h).ok())
            .collect();
        Ok(Self {
            dialect,
            put,
            headers,
            get,
        })
    }

    /// Builds the `<slot/>` for a request made in `dialect` (the hybrid is answered as
    /// [`Dialect::V0`]), whatever [`Slot::dialect`] says. The legacy dialects have no
    /// headers, so none are written there.
    ///
    /// To write the slot in its own dialect, use `Element::from(&slot)`.
    #[must_use]
    pub fn to_element(&self, dialect: Dialect) -> Element {
        self.build(dialect.answer())
    }

    /// Builds the `<slot/>` in exactly `dialect`.
    fn build(&self, dialect: Dialect) -> Element {
        let ns = dialect.namespace();
        let mut slot = el("slot", ns);
        let mut put = if dialect == Dialect::V0 {
            with(el("put", ns), "url", self.put.as_str())
        } else {
            text_el("put", ns, self.put.as_str())
        };
        if matches!(dialect, Dialect::V0 | Dialect::HybridV0) {
            for h in &self.headers {
                put.append_child(h.build(ns));
            }
        }
        slot.append_child(put);
        slot.append_child(if dialect == Dialect::V0 {
            with(el("get", ns), "url", self.get.as_str())
        } else {
            text_el("get", ns, self.get.as_str())
        });
        slot
    }
}

impl TryFrom<&Element> for Slot {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for Slot {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

/// In the slot's own [`dialect`](Slot::dialect).
impl From<&Slot> for Element {
    fn from(s: &Slot) -> Element {
        s.build(s.dialect)
    }
}

/// In the slot's own [`dialect`](Slot::dialect).
impl From<Slot> for Element {
    fn from(s: Slot) -> Element {
        s.build(s.dialect)
    }
}

/// `Iq::from_result(id, Some(slot))` builds the reply, in the slot's dialect.
impl IqResultPayload for Slot {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<SlotRequest, ParseError> {
        SlotRequest::parse(&xml.parse::<Element>().unwrap())
    }

    #[test]
    fn hybrid_is_recognised_and_rebuilt() {
        let r = parse(
            "<request xmlns='urn:xmpp:http:upload:0'><filename>a.png</filename><size>7</size></request>",
        )
        .unwrap();
        assert_eq!(r.dialect, Dialect::HybridV0);
        assert_eq!(SlotRequest::parse(&r.to_element()).unwrap(), r);
    }

    #[test]
    fn purpose_and_hash_round_trip() {
        let r = SlotRequest::new("a.png", 1)
            .with_purpose(Purpose::Ephemeral {
                expire_before: parse_stamp("2030-01-01T00:00:00Z"),
            })
            .with_sha256([7; 32]);
        for d in [Dialect::V0, Dialect::Legacy, Dialect::Siacs] {
            let r = r.clone().with_dialect(d);
            assert_eq!(SlotRequest::parse(&r.to_element()).unwrap(), r);
        }
        assert_eq!(r.sha256(), Some([7; 32]));
    }

    #[test]
    fn header_values_lose_crlf() {
        let mut slot = Slot::new(
            "https://a.example/x".parse().unwrap(),
            "https://a.example/y".parse().unwrap(),
        );
        slot.headers.push(SlotHeader {
            name: HeaderName::Cookie,
            value: "a=b\r\nX: y".into(),
        });
        let e = slot.to_element(Dialect::V0);
        let back = Slot::parse(&e).unwrap();
        assert_eq!(back.headers[0].value, "a=bX: y");
    }

    #[test]
    fn slot_serialises_in_its_own_dialect() {
        let slot = Slot::new(
            "https://a.example/x".parse().unwrap(),
            "https://a.example/y".parse().unwrap(),
        )
        .with_header(HeaderName::Authorization, "Basic Base64String==");
        for d in [
            Dialect::V0,
            Dialect::Legacy,
            Dialect::Siacs,
            Dialect::HybridV0,
        ] {
            let slot = slot.clone().with_dialect(d);
            let e = Element::from(&slot);
            assert_eq!(e.ns(), d.namespace());
            let back = Slot::try_from(e).unwrap();
            assert_eq!(back.dialect, d);
            if d.uses_child_elements() {
                // The 0.x dialects have no headers.
                assert!(back.headers.is_empty());
                assert_eq!((back.put, back.get), (slot.put, slot.get));
            } else {
                assert_eq!(back, slot);
            }
        }
        // Answering a request: the hybrid is answered as V0, whatever the slot's dialect.
        let answered = slot.clone().with_dialect(Dialect::Siacs);
        let e = answered.to_element(Dialect::HybridV0);
        assert_eq!(Slot::parse(&e).unwrap().dialect, Dialect::V0);
    }

    #[test]
    fn owned_conversions_follow_xmpp_parsers() {
        let other: Element = "<ping xmlns='urn:xmpp:ping'/>".parse().unwrap();
        match SlotRequest::try_from(other.clone()) {
            Err(FromElementError::Mismatch(back)) => assert_eq!(back, other),
            r => panic!("{r:?}"),
        }
        let bad: Element = "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='1e3'/>"
            .parse()
            .unwrap();
        match SlotRequest::try_from(bad.clone()) {
            Err(FromElementError::Invalid(e)) => assert_eq!(
                ParseError::from_xso(&e),
                Some(&ParseError::InvalidSize(
                    crate::stanza::SizeError::NotDecimal
                ))
            ),
            r => panic!("{r:?}"),
        }
        // And back into a ParseError, text and variant kept.
        let err = Slot::try_from(bad.clone()).unwrap_err();
        assert!(matches!(
            ParseError::from(err),
            ParseError::UnexpectedElement { .. }
        ));
        let err = SlotRequest::try_from(bad).unwrap_err();
        assert_eq!(
            ParseError::from(err),
            ParseError::InvalidSize(crate::stanza::SizeError::NotDecimal)
        );
    }

    #[test]
    fn header_parsing() {
        let h: Element = "<header xmlns='urn:xmpp:http:upload:0' name='expires'>Fri, 03 Dec 2017 23:42:05 GMT</header>"
            .parse()
            .unwrap();
        let parsed = SlotHeader::try_from(&h).unwrap();
        assert_eq!(parsed.name, HeaderName::Expires);
        assert_eq!(
            Element::from(&parsed).attr("name"),
            Some("Expires"),
            "written in exact case"
        );
        let evil: Element = "<header xmlns='urn:xmpp:http:upload:0' name='EvilHeader'>x</header>"
            .parse()
            .unwrap();
        assert_eq!(
            SlotHeader::parse(&evil),
            Err(ParseError::InvalidValue("header name"))
        );
    }
}
