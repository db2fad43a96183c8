//! Wire types: every stanza of the upload flows, parsed from and built into
//! [`minidom::Element`].
//!
//! Parsing is lenient where real clients differ (unknown attributes and children are
//! ignored, unknown slot header names are skipped, legacy text values may carry surrounding
//! whitespace) and strict where a value matters (sizes are plain decimal `u64`s, URLs must
//! parse, timestamps must be XEP-0082). Building is strict: only the exact-case
//! `Authorization`, `Cookie` and `Expires` slot headers, without CR or LF, and integers
//! written plainly.
//!
//! | module | protocol |
//! |---|---|
//! | [`upload`] | XEP-0363 slot request and slot, in the three namespaces and the Smack 4.2.0 hybrid |
//! | [`error`] | XEP-0363 `<file-too-large/>` and `<retry/>`, mapped onto [`StanzaError`](xmpp_parsers::stanza_error::StanzaError) |
//! | [`disco`] | XEP-0030/XEP-0128 service discovery of an upload service |
//! | [`file_transfer`] | ProcessOne `p1:http-file-transfer`: upload by MD5, file IDs, download URLs |
//! | [`iq`] | the IQ envelope around them, in `jabber:client` or `jabber:component:accept` |
//! | [`sfs`] | XEP-0447 Stateless File Sharing: `<file-sharing/>`, `<sources/>` (client side, after a slot) |
//! | [`file_metadata`] | XEP-0446 `<file/>` metadata, with XEP-0264 thumbnails and XEP-0300 hashes |
//! | [`url_data`] | XEP-0103/0104 `<url-data/>` sources |
//! | [`esfs`] | XEP-0448 `<encrypted/>` sources and their ciphers (no cryptography) |
//! | [`fallback`] | XEP-0428 `<fallback/>` |
//! | [`attach`] | XEP-0367 `<attach-to/>` |
//! | [`hints`] | XEP-0334 `<store/>` |
//!
//! # Conversions and xmpp-parsers
//!
//! Every wire type converts the way xmpp-parsers' own types do: `TryFrom<&Element>` and
//! `TryFrom<Element>` to read it, `From<T>` and `From<&T>` for `Element` to write it, each in
//! the namespace the value carries (a [`Slot`](upload::Slot) in its
//! [`Dialect`], a p1 type in its [`Namespace`](file_transfer::Namespace)), so a reply is built
//! directly in the namespace of its request. The payloads implement xmpp-parsers' marker
//! traits, so its stanza builders take them:
//!
//! | type | marker | stanza |
//! |---|---|---|
//! | [`upload::SlotRequest`] | [`IqGetPayload`](xmpp_parsers::iq::IqGetPayload) | `Iq::from_get(id, request)` |
//! | [`upload::Slot`] | [`IqResultPayload`](xmpp_parsers::iq::IqResultPayload) | `Iq::from_result(id, Some(slot))` |
//! | [`disco::ServiceInfo`] | [`IqResultPayload`](xmpp_parsers::iq::IqResultPayload) | `Iq::from_result(id, Some(info))` |
//! | [`file_transfer::UploadRequest`] | [`IqSetPayload`](xmpp_parsers::iq::IqSetPayload) | `Iq::from_set(id, request)` |
//! | [`file_transfer::UploadResult`], [`file_transfer::DownloadResult`] | [`IqResultPayload`](xmpp_parsers::iq::IqResultPayload) | `Iq::from_result(id, Some(result))` |
//! | [`file_transfer::DownloadRequest`] | [`IqGetPayload`](xmpp_parsers::iq::IqGetPayload) | `Iq::from_get(id, request)` |
//! | [`file_transfer::FileMessage`] | [`MessagePayload`](xmpp_parsers::message::MessagePayload) | `Message::with_payload(x)`, `Message::extract_payload` |
//! | [`sfs::FileSharing`], [`sfs::Sources`], [`fallback::Fallback`], [`attach::AttachTo`], [`hints::Store`] | [`MessagePayload`](xmpp_parsers::message::MessagePayload) | `Message::with_payload(x)`, `Message::extract_payload` |
//!
//! [`upload::SlotHeader`], [`error::UploadErrorPayload`], [`error::ErrorPayload`] and
//! [`file_transfer::Query`] convert the same way without a marker (they are not payloads of
//! a stanza on their own).
//!
//! # Errors and xmpp-parsers
//!
//! The marker traits accept any `TryFrom<Element>` error, but xmpp-parsers' conventions do
//! not: `Message::extract_payload` requires `Error = FromElementError`, and its dispatch relies
//! on [`FromElementError::Mismatch`] handing the element back when it belongs to another type.
//! So each type has two readers with two error types:
//!
//! * `TryFrom<&Element>` (and the `parse` functions) return this crate's typed
//!   [`ParseError`], as before;
//! * `TryFrom<Element>` follows xmpp-parsers: [`FromElementError::Mismatch`] with the element
//!   untouched when it is not this type's element ([`ParseError::is_mismatch`]: another name
//!   or namespace, another p1 `<query/>` form, a disco#info result without upload features),
//!   and [`FromElementError::Invalid`] otherwise, with the `ParseError` boxed inside
//!   ([`xmpp_parsers::Error::TextParseError`]), its text shown by `Display` and the value
//!   itself returned by [`ParseError::from_xso`]. `ParseError: From<FromElementError>` goes
//!   back, for code that wants one error type.
//!
//! Reading stays lenient and writing strict in both: the conversions call the same parsers
//! and builders as the rest of the crate.
//!
//! # For client developers
//!
//! An XEP-0363 upload, from the service's disco#info result (XEP-0363 example 4) to the
//! message sharing the file: the request IQ, the slot (example 6), the PUT as an
//! [`http::Request`](https://docs.rs/http/1/http/request/struct.Request.html) and the message
//! with a body and an XEP-0066 `<x xmlns='jabber:x:oob'>`.
//!
//! ```
//! use xmpp_upload::jid::Jid;
//! use xmpp_upload::minidom::Element;
//! use xmpp_upload::stanza::{disco::ServiceInfo, upload::{Slot, SlotRequest}};
//! use xmpp_upload::xmpp_parsers::iq::Iq;
//! use xmpp_upload::xmpp_parsers::message::{Lang, Message};
//! use xmpp_upload::xmpp_parsers::oob::Oob;
//!
//! // The stream's namespace: `jabber:client` in a client. (xmpp-parsers' `component` feature
//! // makes it `jabber:component:accept`; this crate's own tests are built with it.)
//! let ns = xmpp_upload::xmpp_parsers::ns::DEFAULT_NS;
//!
//! // 1. The upload service (found with disco#items) answers disco#info.
//! let disco: Element = format!(
//!     "<iq xmlns='{ns}' from='upload.montague.tld' id='step_02' to='romeo@montague.tld/garden' type='result'>
//!        <query xmlns='http://jabber.org/protocol/disco#info'>
//!          <identity category='store' type='file' name='HTTP File Upload'/>
//!          <feature var='urn:xmpp:http:upload:0'/>
//!          <x type='result' xmlns='jabber:x:data'>
//!            <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>
//!            <field var='max-file-size'><value>5242880</value></field>
//!          </x>
//!        </query>
//!      </iq>"
//! ).parse()?;
//! let Iq::Result { from: Some(service), payload: Some(payload), .. } = Iq::try_from(disco)? else {
//!     return Err("not a disco#info result".into());
//! };
//! let info = ServiceInfo::try_from(payload)?;
//! let (size, content_type) = (23456_u64, "image/jpeg");
//! assert!(info.max_file_size.is_some_and(|max| size <= max));
//!
//! // 2. The slot request, in the newest dialect the service speaks.
//! let dialect = info.preferred_dialect().ok_or("no XEP-0363 dialect")?;
//! let request = SlotRequest::new("très cool.jpg", size)
//!     .with_content_type(content_type)
//!     .with_dialect(dialect);
//! let to_send = Element::from(Iq::from_get("step_03", request).with_to(service));
//! assert_eq!(to_send.get_child("request", "urn:xmpp:http:upload:0").and_then(|r| r.attr("size")), Some("23456"));
//!
//! // 3. The slot.
//! let reply: Element = format!(
//!     "<iq xmlns='{ns}' from='upload.montague.tld' id='step_03' to='romeo@montague.tld/garden' type='result'>
//!        <slot xmlns='urn:xmpp:http:upload:0'>
//!          <put url='https://upload.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg'>
//!            <header name='Authorization'>Basic Base64String==</header>
//!            <header name='Cookie'>foo=bar; user=romeo</header>
//!          </put>
//!          <get url='https://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg' />
//!        </slot>
//!      </iq>"
//! ).parse()?;
//! let Iq::Result { id, payload: Some(payload), .. } = Iq::try_from(reply)? else {
//!     return Err("not a slot".into());
//! };
//! assert_eq!(id, "step_03");
//! let slot = Slot::try_from(payload)?;
//!
//! // 4. The PUT: exactly `size` bytes, the requested type, and the slot's headers.
//! let mut put = http::Request::put(slot.put.as_str())
//!     .header(http::header::CONTENT_LENGTH, size)
//!     .header(http::header::CONTENT_TYPE, content_type);
//! for h in &slot.headers {
//!     put = put.header(h.name.as_str(), h.value.as_str());
//! }
//! let put: http::Request<()> = put.body(())?; // send it with the file as the body
//! assert_eq!(put.headers()["authorization"], "Basic Base64String==");
//! assert_eq!(put.uri().path(), "/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg");
//!
//! // 5. Once the PUT got 201 Created: share the GET URL, as the body and as XEP-0066 OOB data.
//! let message = Message::chat(Some(Jid::new("juliet@capulet.lit")?))
//!     .with_body(Lang::new(), slot.get.to_string())
//!     .with_payload(Oob { url: slot.get.to_string(), desc: None });
//! let message = Element::from(message);
//! let oob = message.get_child("x", "jabber:x:oob").ok_or("no OOB")?;
//! assert_eq!(oob.get_child("url", "jabber:x:oob").map(Element::text), Some(slot.get.to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same with ProcessOne's file IDs (`p1:http-file-transfer`, spec examples): the sender
//! asks by MD5, PUTs the file, sends the file ID in `<x xmlns='p1:http-file-transfer'/>`; the
//! receiver resolves the ID to a short-lived download URL.
//!
//! ```
//! use md5::{Digest as _, Md5};
//! use xmpp_upload::jid::Jid;
//! use xmpp_upload::minidom::Element;
//! use xmpp_upload::stanza::file_transfer::{
//!     encode_md5, DownloadRequest, DownloadResult, FileMessage, UploadRequest, UploadResult,
//! };
//! use xmpp_upload::xmpp_parsers::iq::Iq;
//! use xmpp_upload::xmpp_parsers::message::{Lang, Message};
//!
//! let ns = xmpp_upload::xmpp_parsers::ns::DEFAULT_NS; // `jabber:client` in a client
//!
//! // Sender. 1. Ask for an upload URL for this exact file (base64 of the binary MD5).
//! let file = b"the bytes of the file";
//! let md5: [u8; 16] = Md5::digest(file).into();
//! let ask = Element::from(
//!     Iq::from_set("upload1", UploadRequest::new(md5)).with_to(Jid::new("domain.com")?),
//! );
//! assert_eq!(ask.get_child("query", "p1:http-file-transfer").and_then(|q| q.attr("md5")), Some(encode_md5(&md5).as_str()));
//!
//! // 2. The server's answer: where to PUT, the file ID, the headers to send.
//! let reply: Element = format!(
//!     "<iq xmlns='{ns}' type='result' id='upload1' to='sender@domain.com/resource'>
//!        <query xmlns='p1:http-file-transfer'
//!               upload='https://files.example.com/upload/x6zMZnWUxgNwOamwkpWID4X2gsc'
//!               fileid='6e84ff49-8156-4d59-8108-1069cd3e78ad'>
//!          <headers>
//!            <header name='x-auth-custom' value='MjzIOP7vKMQzCnNSkl'/>
//!            <header name='Content-MD5' value='{}'/>
//!          </headers>
//!        </query>
//!      </iq>", encode_md5(&md5)
//! ).parse()?;
//! let Iq::Result { payload: Some(payload), .. } = Iq::try_from(reply)? else {
//!     return Err("not an upload result".into());
//! };
//! let result = UploadResult::try_from(payload)?;
//! let fileid = result.fileid.clone().ok_or("no file ID")?;
//!
//! // 3. The PUT with the listed headers (Content-MD5 binds it to the file).
//! let mut put = http::Request::put(result.upload.as_str())
//!     .header(http::header::CONTENT_LENGTH, file.len());
//! for h in &result.headers {
//!     put = put.header(h.name.as_str(), h.value.as_str());
//! }
//! let put: http::Request<()> = put.body(())?;
//! assert_eq!(put.headers()["content-md5"], encode_md5(&md5).as_str());
//!
//! // 4. The message: a readable body and the file ID.
//! let message = Message::chat(Some(Jid::new("receiver@domain.com")?))
//!     .with_body(Lang::new(), format!("I am sending you a file FILENAME with id {fileid}"))
//!     .with_payload(FileMessage::new("FILENAME", fileid.as_str()));
//! let on_the_wire = String::from(&Element::from(message));
//!
//! // Receiver. 5. Find the file ID in the message and ask for a download URL.
//! let mut received = Message::try_from(on_the_wire.parse::<Element>()?)?;
//! let x = received.extract_payload::<FileMessage>()?.ok_or("no file in this message")?;
//! let ask = Iq::from_get("download1", DownloadRequest::new(x.fileid.ok_or("no file ID")?))
//!     .with_to(Jid::new("domain.com")?);
//! let ask = Element::from(ask);
//! assert_eq!(
//!     ask.get_child("query", "p1:http-file-transfer").and_then(|q| q.attr("fileid")),
//!     Some("6e84ff49-8156-4d59-8108-1069cd3e78ad")
//! );
//!
//! // 6. The answer: a fresh URL to GET (ask again with the file ID when it has expired).
//! let reply: Element = format!(
//!     "<iq xmlns='{ns}' type='result' id='download1' to='receiver@domain.com/resource'>
//!        <query xmlns='p1:http-file-transfer'
//!               download='http://files.example.com/download/58351C33-9F3A-4D84-913C-BD6A2D8CED12/FILENAME'/>
//!      </iq>"
//! ).parse()?;
//! let Iq::Result { payload: Some(payload), .. } = Iq::try_from(reply)? else {
//!     return Err("not a download result".into());
//! };
//! let download = DownloadResult::try_from(payload)?.download;
//! let get: http::Request<()> = http::Request::get(download.as_str()).body(())?;
//! assert_eq!(get.uri().host(), Some("files.example.com"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use xmpp_parsers::FromElementError;

use crate::ns;

pub mod attach;
pub mod disco;
pub mod error;
pub mod esfs;
pub mod fallback;
pub mod file_metadata;
pub mod file_transfer;
pub mod hints;
pub mod iq;
pub mod sfs;
pub mod upload;
pub mod url_data;

/// Why a stanza could not be parsed.
///
/// Values quoted from the input are shortened, so that a hostile stanza cannot make an error
/// message arbitrarily long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The element is not the one expected, or is in another namespace.
    #[error("expected {expected}, found <{name}/> in namespace '{ns}'")]
    UnexpectedElement {
        /// What was expected.
        expected: &'static str,
        /// The local name found (shortened).
        name: String,
        /// The namespace found (shortened).
        ns: String,
    },
    /// A required attribute is missing.
    #[error("missing attribute '{0}'")]
    MissingAttribute(&'static str),
    /// A required child element is missing.
    #[error("missing child element <{0}/>")]
    MissingChild(&'static str),
    /// A child element that may appear once appears more than once.
    #[error("more than one <{0}/>")]
    DuplicateChild(&'static str),
    /// The filename is empty.
    #[error("the filename is empty")]
    EmptyFilename,
    /// The size is not a plain decimal `u64`.
    #[error("invalid size: {0}")]
    InvalidSize(#[from] SizeError),
    /// A URL does not parse as an absolute URL.
    #[error("<{0}/> does not hold an absolute URL")]
    InvalidUrl(&'static str),
    /// A `stamp` or `expire-before` is not an XEP-0082 date-time.
    #[error("'{0}' is not an XEP-0082 date-time")]
    InvalidDateTime(&'static str),
    /// An `md5` attribute is not the base64 of 16 bytes.
    #[error("'md5' is not the base64 of a 16-byte MD5 digest")]
    InvalidMd5,
    /// A `<hash/>` is malformed.
    #[error("invalid <hash/>: {0}")]
    InvalidHash(&'static str),
    /// Some other value does not have the required form.
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    /// A disco#info result announces neither an XEP-0363 dialect nor
    /// `p1:http-file-transfer`: the entity is not an upload service.
    #[error("the entity announces no HTTP upload feature")]
    NotUploadService,
    /// The element is nested deeper or holds more elements than the form it should have ever
    /// needs, and was refused before being copied.
    #[error("the element is too deeply nested or too large")]
    TooComplex,
    /// xmpp-parsers rejected an element this crate hands to it (a `<hash/>`, an `<error/>`, a
    /// data form), or a [`FromElementError`] from another crate's parser was converted into
    /// a `ParseError`. The text is its message (shortened).
    #[error("rejected by xmpp-parsers: {0}")]
    Xso(String),
}

impl ParseError {
    pub(crate) fn unexpected(expected: &'static str, el: &minidom::Element) -> Self {
        Self::UnexpectedElement {
            expected,
            name: shorten(el.name()),
            ns: shorten(&el.ns()),
        }
    }

    /// Whether the element was simply not the one a parser looks for (another name or
    /// namespace, or a disco#info result of an entity that is no upload service), as opposed
    /// to the right element with bad content.
    ///
    /// The owned `TryFrom<Element>` conversions turn exactly these errors into
    /// [`FromElementError::Mismatch`], giving the element back.
    #[must_use]
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            ParseError::UnexpectedElement { .. } | ParseError::NotUploadService
        )
    }

    /// The typed error inside an [`xmpp_parsers::Error`] built by this crate (see
    /// [Errors and xmpp-parsers](self#errors-and-xmpp-parsers)); `None` for errors from
    /// elsewhere.
    ///
    /// ```
    /// use xmpp_upload::stanza::{upload::SlotRequest, ParseError, SizeError};
    /// use xmpp_upload::xmpp_parsers::FromElementError;
    ///
    /// let el: minidom::Element =
    ///     "<request xmlns='urn:xmpp:http:upload:0' filename='a.jpg' size='-1'/>".parse()?;
    /// match SlotRequest::try_from(el) {
    ///     Err(FromElementError::Invalid(e)) => assert_eq!(
    ///         ParseError::from_xso(&e),
    ///         Some(&ParseError::InvalidSize(SizeError::Sign))
    ///     ),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), minidom::Error>(())
    /// ```
    #[must_use]
    pub fn from_xso(error: &xmpp_parsers::Error) -> Option<&ParseError> {
        match error {
            xmpp_parsers::Error::TextParseError(inner) => inner.downcast_ref::<ParseError>(),
            _ => None,
        }
    }
}

/// Keeps the typed error: [`xmpp_parsers::Error::TextParseError`] boxes it, and
/// [`ParseError::from_xso`] gets it back.
impl From<ParseError> for xmpp_parsers::Error {
    fn from(e: ParseError) -> Self {
        xmpp_parsers::Error::TextParseError(Box::new(e))
    }
}

/// The reverse direction, for code that mixes this crate's owned conversions with its own
/// `ParseError`s: a [`FromElementError::Mismatch`] becomes
/// [`ParseError::UnexpectedElement`], a boxed `ParseError` comes back as it was, and any other
/// xmpp-parsers error becomes [`ParseError::Xso`] with its text.
impl From<FromElementError> for ParseError {
    fn from(e: FromElementError) -> Self {
        match e {
            FromElementError::Mismatch(el) => ParseError::unexpected("another element", &el),
            FromElementError::Invalid(e) => match ParseError::from_xso(&e) {
                Some(p) => p.clone(),
                None => ParseError::Xso(shorten(&e.to_string())),
            },
        }
    }
}

/// The owned conversion shared by every wire type: parse by reference; give the element back
/// when it is not this type's, box the typed error otherwise.
pub(crate) fn from_owned<T>(
    e: minidom::Element,
    parse: impl FnOnce(&minidom::Element) -> Result<T, ParseError>,
) -> Result<T, FromElementError> {
    match parse(&e) {
        Ok(v) => Ok(v),
        Err(err) if err.is_mismatch() => Err(FromElementError::Mismatch(e)),
        Err(err) => Err(FromElementError::Invalid(err.into())),
    }
}

pub use crate::checked::{parse_size, SizeError};

/// Which flavour of XEP-0363 a request was made in; the answer mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Dialect {
    /// `urn:xmpp:http:upload:0` (XEP-0363 ≥ 0.3.0): attributes on `<request/>`, `<put url=>`
    /// with `<header/>` children, `<get url=/>`.
    V0,
    /// `urn:xmpp:http:upload` (XEP-0363 0.1–0.2.x): `<filename/>`, `<size/>`,
    /// `<content-type/>` children; `<put>URL</put><get>URL</get>`.
    Legacy,
    /// `eu:siacs:conversations:http:upload` (Conversations, 2015): as [`Dialect::Legacy`].
    Siacs,
    /// `urn:xmpp:http:upload:0` with legacy child elements, as Smack 4.2.0 sent it; answered
    /// as [`Dialect::V0`].
    HybridV0,
}

impl Dialect {
    /// The dialects a service can advertise, newest first.
    pub const ALL: [Dialect; 3] = [Dialect::V0, Dialect::Legacy, Dialect::Siacs];

    /// The XML namespace of this dialect.
    #[must_use]
    pub const fn namespace(self) -> &'static str {
        match self {
            Dialect::V0 | Dialect::HybridV0 => ns::UPLOAD_0,
            Dialect::Legacy => ns::UPLOAD_LEGACY,
            Dialect::Siacs => ns::SIACS,
        }
    }

    /// The dialect of a namespace (never [`Dialect::HybridV0`], which shares `V0`'s).
    #[must_use]
    pub fn from_namespace(ns: &str) -> Option<Dialect> {
        match ns {
            ns::UPLOAD_0 => Some(Dialect::V0),
            ns::UPLOAD_LEGACY => Some(Dialect::Legacy),
            ns::SIACS => Some(Dialect::Siacs),
            _ => None,
        }
    }

    /// The dialect whose slot format answers this one: `HybridV0` is answered as `V0`.
    #[must_use]
    pub const fn answer(self) -> Dialect {
        match self {
            Dialect::HybridV0 => Dialect::V0,
            d => d,
        }
    }

    /// Whether values travel as child elements with text (0.x, Conversations) rather than
    /// attributes.
    #[must_use]
    pub const fn uses_child_elements(self) -> bool {
        matches!(self, Dialect::Legacy | Dialect::Siacs)
    }
}

/// Shortens a value quoted from the input for an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s.get(..end).unwrap_or_default().to_owned();
    out.push('…');
    out
}

/// Formats a UTC date-time as XEP-0082 `YYYY-MM-DDThh:mm:ssZ`.
pub(crate) fn format_stamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an XEP-0082 date-time (RFC 3339 profile, any offset, optional fraction).
pub(crate) fn parse_stamp(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("18446744073709551616"), Err(SizeError::TooLarge));
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("-1"), Err(SizeError::Sign));
        assert_eq!(parse_size("1e3"), Err(SizeError::NotDecimal));
        assert_eq!(parse_size("0x10"), Err(SizeError::NotDecimal));
        assert_eq!(parse_size(" 1"), Err(SizeError::NotDecimal));
        assert_eq!(parse_size("１"), Err(SizeError::NotDecimal));
    }

    #[test]
    fn stamps_round_trip() {
        let t = parse_stamp("2017-12-03T23:42:05Z").unwrap();
        assert_eq!(format_stamp(t), "2017-12-03T23:42:05Z");
        let t = parse_stamp("2017-12-04T01:42:05.5+02:00").unwrap();
        assert_eq!(format_stamp(t), "2017-12-03T23:42:05Z");
        assert!(parse_stamp("yesterday").is_none());
    }

    #[test]
    fn shorten_keeps_char_boundaries() {
        let s = "я".repeat(100);
        let out = shorten(&s);
        assert!(out.len() < 80);
        assert!(out.ends_with('…'));
    }
}
