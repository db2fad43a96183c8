//! ProcessOne's HTTP file transfer with file IDs (`p1:http-file-transfer`, spec by
//! J. Sautret): upload by MD5, share an opaque file ID, resolve it to a fresh download URL.
//!
//! ```xml
//! <iq type='set'><query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog=='/></iq>
//! <iq type='result'><query xmlns='p1:http-file-transfer' upload='https://…' fileid='6e84…' download='https://…'>
//!   <headers><header name='Content-MD5' value='qN48INKsmQyPMZkHs0DWog=='/></headers></query></iq>
//! <message><x xmlns='p1:http-file-transfer' name='FILENAME' fileid='6e84…'/></message>
//! <iq type='get'><query xmlns='p1:http-file-transfer' fileid='6e84…'/></iq>
//! <iq type='result'><query xmlns='p1:http-file-transfer' download='https://…'/></iq>
//! ```
//!
//! Conversations and ProcessOne's production service use the same protocol under the
//! namespace `p1:s3filetransfer`. Both are parsed, and every type here carries the
//! [`Namespace`] it came in (or is to be written in), so a reply is built directly in the
//! namespace of its request: `UploadResult::new(..).with_namespace(request.namespace)`.
//!
//! `md5` is the base64 of the binary MD5 digest (RFC 1864). The upload request may also carry
//! `filename`, `size` and `content-type` attributes; they are an extension of this crate (the
//! p1 spec names only `md5`) that lets a service apply its limits and keep the file's name.
//!
//! Each `<query/>` form has its own type, an xmpp-parsers payload of the IQ type it travels
//! in: [`UploadRequest`] (`set`), [`UploadResult`] (`result`), [`DownloadRequest`] (`get`),
//! [`DownloadResult`] (`result`); [`FileMessage`] is a message payload. [`Query`] reads any of
//! the four. A `<query/>` of another form is a mismatch for a type (the owned `TryFrom` gives
//! the element back), so a receiver can try the types one after the other.

use base64::Engine as _;
use minidom::Element;
use url::Url;
use xmpp_parsers::iq::{IqGetPayload, IqResultPayload, IqSetPayload};
use xmpp_parsers::message::MessagePayload;
use xmpp_parsers::FromElementError;

use super::{from_owned, parse_size, ParseError};
use crate::ns;
use crate::xml::{el, set, with};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The two names of this protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Namespace {
    /// `p1:http-file-transfer`, the name in the spec (the default).
    #[default]
    HttpFileTransfer,
    /// `p1:s3filetransfer`, the name ProcessOne's production service and Conversations use.
    S3FileTransfer,
}

impl Namespace {
    /// The XML namespace.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Namespace::HttpFileTransfer => ns::FILE_TRANSFER,
            Namespace::S3FileTransfer => ns::FILE_TRANSFER_S3,
        }
    }

    /// The name of an XML namespace, if it is one of the two.
    #[must_use]
    pub fn from_namespace(ns: &str) -> Option<Namespace> {
        match ns {
            ns::FILE_TRANSFER => Some(Namespace::HttpFileTransfer),
            ns::FILE_TRANSFER_S3 => Some(Namespace::S3FileTransfer),
            _ => None,
        }
    }
}

/// Whether `ns` is one of the two names of this protocol.
#[must_use]
pub fn is_file_transfer_ns(ns: &str) -> bool {
    ns == crate::ns::FILE_TRANSFER || ns == crate::ns::FILE_TRANSFER_S3
}

/// Decodes a base64 MD5 digest (RFC 1864 `Content-MD5` form).
///
/// ```
/// use xmpp_upload::stanza::file_transfer::decode_md5;
/// assert_eq!(decode_md5("qN48INKsmQyPMZkHs0DWog==").map(|d| d[0]), Ok(0xa8));
/// assert!(decode_md5("qN48INKsmQ==").is_err());
/// ```
pub fn decode_md5(s: &str) -> Result<[u8; 16], ParseError> {
    let bytes = B64.decode(s.trim()).map_err(|_| ParseError::InvalidMd5)?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| ParseError::InvalidMd5)
}

/// Encodes an MD5 digest as base64.
#[must_use]
pub fn encode_md5(md5: &[u8; 16]) -> String {
    B64.encode(md5)
}

/// Which of the four `<query/>` forms an element is, told apart by its attributes (`md5`,
/// else `upload`, else `fileid`, else `download`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    UploadRequest,
    UploadResult,
    DownloadRequest,
    DownloadResult,
}

fn query_kind(q: &Element) -> Result<(Namespace, Kind), ParseError> {
    let namespace = Namespace::from_namespace(&q.ns())
        .filter(|_| q.name() == "query")
        .ok_or_else(|| ParseError::unexpected("a p1:http-file-transfer <query/>", q))?;
    let kind = if q.attr("md5").is_some() {
        Kind::UploadRequest
    } else if q.attr("upload").is_some() {
        Kind::UploadResult
    } else if q.attr("fileid").is_some() {
        Kind::DownloadRequest
    } else if q.attr("download").is_some() {
        Kind::DownloadResult
    } else {
        return Err(ParseError::MissingAttribute("md5"));
    };
    Ok((namespace, kind))
}

/// The namespace of a `<query/>` of the wanted form; another form is a mismatch.
fn expect_kind(q: &Element, want: Kind, expected: &'static str) -> Result<Namespace, ParseError> {
    match query_kind(q)? {
        (namespace, kind) if kind == want => Ok(namespace),
        _ => Err(ParseError::unexpected(expected, q)),
    }
}

fn url_attr(e: &Element, name: &'static str) -> Result<Option<Url>, ParseError> {
    e.attr(name)
        .map(|u| Url::parse(u).map_err(|_| ParseError::InvalidUrl(name)))
        .transpose()
}

fn strip_crlf(s: &str) -> String {
    s.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// Implements the conversions every wire type of this module has: `TryFrom<&Element>` with
/// [`ParseError`], the owned `TryFrom<Element>` with xmpp-parsers' [`FromElementError`], and
/// `From<T>`/`From<&T>` for `Element`, all through the type's `parse` and `to_element`.
macro_rules! conversions {
    ($t:ty) => {
        impl TryFrom<&Element> for $t {
            type Error = ParseError;
            fn try_from(e: &Element) -> Result<Self, ParseError> {
                Self::parse(e)
            }
        }

        /// The xmpp-parsers convention (see
        /// [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
        impl TryFrom<Element> for $t {
            type Error = FromElementError;
            fn try_from(e: Element) -> Result<Self, FromElementError> {
                from_owned(e, Self::parse)
            }
        }

        /// In the value's own namespace.
        impl From<&$t> for Element {
            fn from(v: &$t) -> Element {
                v.to_element()
            }
        }

        /// In the value's own namespace.
        impl From<$t> for Element {
            fn from(v: $t) -> Element {
                v.to_element()
            }
        }
    };
}

/// The upload request: `<query md5=…/>` in an IQ `set`.
///
/// ```
/// use xmpp_upload::stanza::file_transfer::{decode_md5, UploadRequest};
/// let request = UploadRequest::new(decode_md5("qN48INKsmQyPMZkHs0DWog==")?);
/// let iq = xmpp_parsers::iq::Iq::from_set("upload1", request.clone());
/// let xmpp_parsers::iq::Iq::Set { payload, .. } = iq else { unreachable!() };
/// assert_eq!(payload.attr("md5"), Some("qN48INKsmQyPMZkHs0DWog=="));
/// assert_eq!(UploadRequest::try_from(&payload)?, request);
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadRequest {
    /// The binary MD5 of the file.
    pub md5: [u8; 16],
    /// The file name (extension; see the module docs).
    pub filename: Option<String>,
    /// The size in bytes (extension).
    pub size: Option<u64>,
    /// The MIME type (extension).
    pub content_type: Option<String>,
    /// The namespace the request came in, or is written in.
    pub namespace: Namespace,
}

impl UploadRequest {
    /// A request for the file with this MD5, in `p1:http-file-transfer`.
    #[must_use]
    pub fn new(md5: [u8; 16]) -> Self {
        Self {
            md5,
            filename: None,
            size: None,
            content_type: None,
            namespace: Namespace::default(),
        }
    }

    /// Adds the file's name, size and type.
    #[must_use]
    pub fn with_file(
        mut self,
        filename: impl Into<String>,
        size: u64,
        content_type: Option<&str>,
    ) -> Self {
        self.filename = Some(filename.into());
        self.size = Some(size);
        self.content_type = content_type.filter(|t| !t.is_empty()).map(str::to_owned);
        self
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Parses a `<query md5=…/>` in either namespace. An empty `filename` is an error; an
    /// empty `content-type` is read as absent.
    pub fn parse(q: &Element) -> Result<Self, ParseError> {
        let namespace = expect_kind(
            q,
            Kind::UploadRequest,
            "a p1:http-file-transfer upload request (md5=)",
        )?;
        let md5 = decode_md5(q.attr("md5").unwrap_or_default())?;
        let size = q.attr("size").map(parse_size).transpose()?;
        if q.attr("filename") == Some("") {
            return Err(ParseError::EmptyFilename);
        }
        let nonempty = |n: &str| q.attr(n).filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Self {
            md5,
            filename: nonempty("filename"),
            size,
            content_type: nonempty("content-type"),
            namespace,
        })
    }

    /// Builds the `<query/>` in [`UploadRequest::namespace`].
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut q = with(
            el("query", self.namespace.as_str()),
            "md5",
            encode_md5(&self.md5),
        );
        if let Some(f) = &self.filename {
            set(&mut q, "filename", f.as_str());
        }
        if let Some(s) = self.size {
            set(&mut q, "size", s.to_string());
        }
        if let Some(t) = &self.content_type {
            set(&mut q, "content-type", t.as_str());
        }
        q
    }
}

conversions!(UploadRequest);

/// `Iq::from_set(id, UploadRequest::new(md5))` builds the request IQ.
impl IqSetPayload for UploadRequest {}

/// One `<header name= value=/>` of an upload result: an HTTP header the client must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpHeader {
    /// The header name.
    pub name: String,
    /// The header value.
    pub value: String,
}

/// The upload result: where to PUT, the file ID and/or download URL, and the headers.
///
/// The spec requires `upload` and at least one of `fileid` and `download`; the constructors
/// keep to that.
///
/// ```
/// use xmpp_upload::stanza::file_transfer::{Namespace, UploadResult};
/// let result = UploadResult::new("https://files.example.com/upload/x6zM".parse()?, "6e84ff49")
///     .with_header("Content-MD5", "qN48INKsmQyPMZkHs0DWog==")
///     .with_namespace(Namespace::S3FileTransfer);
/// let el = minidom::Element::from(&result);
/// assert_eq!(el.ns(), "p1:s3filetransfer");
/// assert_eq!(UploadResult::try_from(&el)?, result);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadResult {
    /// The PUT URL.
    pub upload: Url,
    /// The opaque file ID to share.
    pub fileid: Option<String>,
    /// A download URL.
    pub download: Option<Url>,
    /// HTTP headers the PUT must carry.
    pub headers: Vec<HttpHeader>,
    /// The namespace the result came in, or is written in.
    pub namespace: Namespace,
}

impl core::fmt::Debug for UploadResult {
    /// The URLs without their query (signed URLs are bearer capabilities).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UploadResult")
            .field("upload", &crate::redact::RedactedUrl(&self.upload))
            .field("fileid", &self.fileid)
            .field(
                "download",
                &crate::redact::RedactedOpt(self.download.as_ref()),
            )
            .field("headers", &self.headers)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl UploadResult {
    /// A result with a file ID, in `p1:http-file-transfer`.
    #[must_use]
    pub fn new(upload: Url, fileid: impl Into<String>) -> Self {
        Self {
            upload,
            fileid: Some(fileid.into()),
            download: None,
            headers: Vec::new(),
            namespace: Namespace::default(),
        }
    }

    /// A result with a download URL and no file ID, in `p1:http-file-transfer`.
    #[must_use]
    pub fn with_download_only(upload: Url, download: Url) -> Self {
        Self {
            upload,
            fileid: None,
            download: Some(download),
            headers: Vec::new(),
            namespace: Namespace::default(),
        }
    }

    /// Sets the download URL.
    #[must_use]
    pub fn with_download(mut self, download: Url) -> Self {
        self.download = Some(download);
        self
    }

    /// Adds an HTTP header the PUT must carry.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(HttpHeader {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Parses a `<query upload=…/>` in either namespace: `upload` and at least one of
    /// `fileid` (an empty one is read as absent) and `download`. A header's value is its
    /// `value` attribute, or its text when the attribute is missing.
    pub fn parse(q: &Element) -> Result<Self, ParseError> {
        let namespace = expect_kind(
            q,
            Kind::UploadResult,
            "a p1:http-file-transfer upload result (upload=)",
        )?;
        let upload = url_attr(q, "upload")?.ok_or(ParseError::MissingAttribute("upload"))?;
        let fileid = q
            .attr("fileid")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let download = url_attr(q, "download")?;
        if fileid.is_none() && download.is_none() {
            return Err(ParseError::MissingAttribute("fileid"));
        }
        let headers = q
            .children()
            .filter(|c| c.name() == "headers" && is_file_transfer_ns(&c.ns()))
            .flat_map(|hs| {
                hs.children()
                    .filter(|h| h.name() == "header" && is_file_transfer_ns(&h.ns()))
            })
            .map(|h| {
                Ok(HttpHeader {
                    name: h
                        .attr("name")
                        .ok_or(ParseError::MissingAttribute("name"))?
                        .to_owned(),
                    value: h.attr("value").map_or_else(|| h.text(), str::to_owned),
                })
            })
            .collect::<Result<_, ParseError>>()?;
        Ok(Self {
            upload,
            fileid,
            download,
            headers,
            namespace,
        })
    }

    /// Builds the `<query/>` in [`UploadResult::namespace`]. Header names and values lose CR
    /// and LF.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = self.namespace.as_str();
        let mut q = with(el("query", ns), "upload", self.upload.as_str());
        if let Some(id) = &self.fileid {
            set(&mut q, "fileid", id.as_str());
        }
        if let Some(d) = &self.download {
            set(&mut q, "download", d.as_str());
        }
        if !self.headers.is_empty() {
            let mut hs = el("headers", ns);
            for h in &self.headers {
                let mut e = with(el("header", ns), "name", strip_crlf(&h.name));
                set(&mut e, "value", strip_crlf(&h.value));
                hs.append_child(e);
            }
            q.append_child(hs);
        }
        q
    }
}

conversions!(UploadResult);

/// `Iq::from_result(id, Some(result))` builds the reply.
impl IqResultPayload for UploadResult {}

/// The download request: `<query fileid=…/>` in an IQ `get`.
///
/// ```
/// use xmpp_upload::stanza::file_transfer::DownloadRequest;
/// let iq = xmpp_parsers::iq::Iq::from_get("download1", DownloadRequest::new("6e84ff49"));
/// let xmpp_parsers::iq::Iq::Get { payload, .. } = iq else { unreachable!() };
/// assert_eq!(DownloadRequest::try_from(payload)?.fileid, "6e84ff49");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadRequest {
    /// The file ID to resolve.
    pub fileid: String,
    /// The namespace the request came in, or is written in.
    pub namespace: Namespace,
}

impl DownloadRequest {
    /// A request for this file ID, in `p1:http-file-transfer`.
    #[must_use]
    pub fn new(fileid: impl Into<String>) -> Self {
        Self {
            fileid: fileid.into(),
            namespace: Namespace::default(),
        }
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Parses a `<query fileid=…/>` (without `md5` or `upload`) in either namespace; the file
    /// ID must not be empty.
    pub fn parse(q: &Element) -> Result<Self, ParseError> {
        let namespace = expect_kind(
            q,
            Kind::DownloadRequest,
            "a p1:http-file-transfer download request (fileid=)",
        )?;
        let fileid = q.attr("fileid").unwrap_or_default();
        if fileid.is_empty() {
            return Err(ParseError::InvalidValue("fileid"));
        }
        Ok(Self {
            fileid: fileid.to_owned(),
            namespace,
        })
    }

    /// Builds the `<query/>` in [`DownloadRequest::namespace`].
    #[must_use]
    pub fn to_element(&self) -> Element {
        with(
            el("query", self.namespace.as_str()),
            "fileid",
            self.fileid.as_str(),
        )
    }
}

conversions!(DownloadRequest);

/// `Iq::from_get(id, DownloadRequest::new(fileid))` builds the request IQ.
impl IqGetPayload for DownloadRequest {}

/// The download result: a fresh, short-lived URL.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadResult {
    /// The download URL.
    pub download: Url,
    /// The namespace the result came in, or is written in.
    pub namespace: Namespace,
}

impl core::fmt::Debug for DownloadResult {
    /// The URL without its query (a signed URL is a bearer capability).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DownloadResult")
            .field("download", &crate::redact::RedactedUrl(&self.download))
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl DownloadResult {
    /// A result with this URL, in `p1:http-file-transfer`.
    #[must_use]
    pub fn new(download: Url) -> Self {
        Self {
            download,
            namespace: Namespace::default(),
        }
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Parses a `<query download=…/>` (without `md5`, `upload` or `fileid`) in either
    /// namespace.
    pub fn parse(q: &Element) -> Result<Self, ParseError> {
        let namespace = expect_kind(
            q,
            Kind::DownloadResult,
            "a p1:http-file-transfer download result (download=)",
        )?;
        let download = url_attr(q, "download")?.ok_or(ParseError::MissingAttribute("download"))?;
        Ok(Self {
            download,
            namespace,
        })
    }

    /// Builds the `<query/>` in [`DownloadResult::namespace`].
    #[must_use]
    pub fn to_element(&self) -> Element {
        with(
            el("query", self.namespace.as_str()),
            "download",
            self.download.as_str(),
        )
    }
}

conversions!(DownloadResult);

/// `Iq::from_result(id, Some(result))` builds the reply.
impl IqResultPayload for DownloadResult {}

/// Any `p1:http-file-transfer` `<query/>`, told apart by its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Query {
    /// `md5=` (IQ set).
    UploadRequest(UploadRequest),
    /// `upload=` (IQ result).
    UploadResult(UploadResult),
    /// `fileid=` alone (IQ get).
    DownloadRequest(DownloadRequest),
    /// `download=` alone (IQ result).
    DownloadResult(DownloadResult),
}

impl Query {
    /// Parses a `<query/>` in `p1:http-file-transfer` or `p1:s3filetransfer`.
    pub fn parse(q: &Element) -> Result<Query, ParseError> {
        Ok(match query_kind(q)?.1 {
            Kind::UploadRequest => Query::UploadRequest(UploadRequest::parse(q)?),
            Kind::UploadResult => Query::UploadResult(UploadResult::parse(q)?),
            Kind::DownloadRequest => Query::DownloadRequest(DownloadRequest::parse(q)?),
            Kind::DownloadResult => Query::DownloadResult(DownloadResult::parse(q)?),
        })
    }

    /// The namespace the query came in, or is written in.
    #[must_use]
    pub fn namespace(&self) -> Namespace {
        match self {
            Query::UploadRequest(q) => q.namespace,
            Query::UploadResult(q) => q.namespace,
            Query::DownloadRequest(q) => q.namespace,
            Query::DownloadResult(q) => q.namespace,
        }
    }

    /// Builds the `<query/>` in its own namespace.
    #[must_use]
    pub fn to_element(&self) -> Element {
        match self {
            Query::UploadRequest(q) => q.to_element(),
            Query::UploadResult(q) => q.to_element(),
            Query::DownloadRequest(q) => q.to_element(),
            Query::DownloadResult(q) => q.to_element(),
        }
    }
}

conversions!(Query);

/// The message payload sharing a file: `<x name= fileid= download=/>`.
///
/// ```
/// use xmpp_parsers::message::{Lang, Message};
/// use xmpp_upload::stanza::file_transfer::FileMessage;
///
/// let x = FileMessage::new("FILENAME", "6e84ff49-8156-4d59-8108-1069cd3e78ad");
/// let mut message = Message::chat(None).with_payload(x.clone());
/// // xmpp-parsers finds it among the message's payloads:
/// assert_eq!(message.extract_payload::<FileMessage>()?, Some(x));
/// # Ok::<(), xmpp_parsers::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileMessage {
    /// The file name to show.
    pub name: Option<String>,
    /// The file ID the receiver resolves.
    pub fileid: Option<String>,
    /// A download URL, for receivers that cannot resolve IDs.
    pub download: Option<Url>,
    /// The namespace the payload came in, or is written in.
    pub namespace: Namespace,
}

impl FileMessage {
    /// A message payload for a file ID, in `p1:http-file-transfer`.
    #[must_use]
    pub fn new(name: impl Into<String>, fileid: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            fileid: Some(fileid.into()),
            download: None,
            namespace: Namespace::default(),
        }
    }

    /// Adds a download URL, for receivers that cannot resolve file IDs.
    #[must_use]
    pub fn with_download(mut self, download: Url) -> Self {
        self.download = Some(download);
        self
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Parses the `<x/>` in either namespace; it must carry a file ID or a download URL.
    pub fn parse(x: &Element) -> Result<Self, ParseError> {
        let namespace = Namespace::from_namespace(&x.ns())
            .filter(|_| x.name() == "x")
            .ok_or_else(|| ParseError::unexpected("a p1:http-file-transfer <x/>", x))?;
        let fileid = x
            .attr("fileid")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let download = url_attr(x, "download")?;
        if fileid.is_none() && download.is_none() {
            return Err(ParseError::MissingAttribute("fileid"));
        }
        Ok(Self {
            name: x.attr("name").map(str::to_owned),
            fileid,
            download,
            namespace,
        })
    }

    /// Builds the `<x/>` in [`FileMessage::namespace`].
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut x = el("x", self.namespace.as_str());
        if let Some(n) = &self.name {
            set(&mut x, "name", n.as_str());
        }
        if let Some(id) = &self.fileid {
            set(&mut x, "fileid", id.as_str());
        }
        if let Some(d) = &self.download {
            set(&mut x, "download", d.as_str());
        }
        x
    }
}

conversions!(FileMessage);

/// `Message::with_payload(file_message)` attaches it; `Message::extract_payload` finds it.
impl MessagePayload for FileMessage {}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_forms() -> Vec<Query> {
        vec![
            Query::UploadRequest(UploadRequest::new([1; 16])),
            Query::UploadRequest(UploadRequest::new([1; 16]).with_file(
                "a b.jpg",
                5,
                Some("image/jpeg"),
            )),
            Query::UploadResult(
                UploadResult::new("https://s.example/u".parse().unwrap(), "id")
                    .with_header("Content-MD5", "x"),
            ),
            Query::UploadResult(UploadResult::with_download_only(
                "https://s.example/u".parse().unwrap(),
                "https://s.example/d".parse().unwrap(),
            )),
            Query::DownloadRequest(DownloadRequest::new("id")),
            Query::DownloadResult(DownloadResult::new("https://s.example/d".parse().unwrap())),
        ]
    }

    #[test]
    fn queries_round_trip_in_both_namespaces() {
        for q in all_forms() {
            assert_eq!(Query::parse(&q.to_element()).unwrap(), q);
            assert_eq!(q.to_element().ns(), ns::FILE_TRANSFER);
            let s3 = match q {
                Query::UploadRequest(r) => {
                    Query::UploadRequest(r.with_namespace(Namespace::S3FileTransfer))
                }
                Query::UploadResult(r) => {
                    Query::UploadResult(r.with_namespace(Namespace::S3FileTransfer))
                }
                Query::DownloadRequest(r) => {
                    Query::DownloadRequest(r.with_namespace(Namespace::S3FileTransfer))
                }
                Query::DownloadResult(r) => {
                    Query::DownloadResult(r.with_namespace(Namespace::S3FileTransfer))
                }
            };
            let e = Element::from(&s3);
            assert_eq!(e.ns(), ns::FILE_TRANSFER_S3);
            assert!(e.children().all(|c| c.has_ns(ns::FILE_TRANSFER_S3)));
            assert_eq!(Query::try_from(e).unwrap(), s3);
        }
    }

    #[test]
    fn another_form_is_a_mismatch() {
        // Each typed parser rejects the three other forms as "not mine", giving the element
        // back, so a receiver can try them in turn.
        for q in all_forms() {
            let e = q.to_element();
            let hits = [
                UploadRequest::try_from(e.clone()).is_ok(),
                UploadResult::try_from(e.clone()).is_ok(),
                DownloadRequest::try_from(e.clone()).is_ok(),
                DownloadResult::try_from(e.clone()).is_ok(),
            ];
            assert_eq!(hits.iter().filter(|h| **h).count(), 1, "{q:?}");
            match DownloadResult::try_from(e.clone()) {
                Ok(_) => assert!(matches!(q, Query::DownloadResult(_))),
                Err(FromElementError::Mismatch(back)) => assert_eq!(back, e),
                Err(FromElementError::Invalid(err)) => panic!("{err}"),
            }
        }
    }

    #[test]
    fn bad_content_is_invalid_and_typed() {
        let e: Element = "<query xmlns='p1:http-file-transfer' md5='qN48INKsmQ=='/>"
            .parse()
            .unwrap();
        match UploadRequest::try_from(e) {
            Err(FromElementError::Invalid(err)) => {
                assert_eq!(ParseError::from_xso(&err), Some(&ParseError::InvalidMd5));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_message_keeps_its_namespace() {
        let x = FileMessage::new("a.jpg", "id")
            .with_download("https://s.example/d".parse().unwrap())
            .with_namespace(Namespace::S3FileTransfer);
        let e = Element::from(&x);
        assert_eq!(e.ns(), ns::FILE_TRANSFER_S3);
        assert_eq!(FileMessage::try_from(&e).unwrap(), x);
    }
}
