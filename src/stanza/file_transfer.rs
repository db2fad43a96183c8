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
//! namespace `p1:s3filetransfer`: both are parsed; build in that namespace with
//! [`in_namespace`].
//!
//! `md5` is the base64 of the binary MD5 digest (RFC 1864). The upload request may also carry
//! `filename`, `size` and `content-type` attributes; they are an extension of this crate (the
//! p1 spec names only `md5`) that lets a service apply its limits and keep the file's name.

use base64::Engine as _;
use minidom::Element;
use url::Url;

use super::{parse_size, ParseError};
use crate::ns;
use crate::xml::{el, set, with};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Whether `ns` is one of the two names of this protocol.
#[must_use]
pub fn is_file_transfer_ns(ns: &str) -> bool {
    ns == crate::ns::FILE_TRANSFER || ns == crate::ns::FILE_TRANSFER_S3
}

/// Moves an element built in `p1:http-file-transfer` (and its children) to `ns`
/// (`p1:s3filetransfer`, say), to answer in the namespace a request came in.
#[must_use]
pub fn in_namespace(e: Element, ns: &str) -> Element {
    crate::xml::renamespace_deep(e, crate::ns::FILE_TRANSFER, ns)
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

/// The upload request: `<query md5=…/>` in an IQ `set`.
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
}

impl UploadRequest {
    /// A request for the file with this MD5.
    #[must_use]
    pub fn new(md5: [u8; 16]) -> Self {
        Self {
            md5,
            filename: None,
            size: None,
            content_type: None,
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

    /// Builds the `<query/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut q = with(el("query", ns::FILE_TRANSFER), "md5", encode_md5(&self.md5));
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

/// One `<header name= value=/>` of an upload result: an HTTP header the client must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpHeader {
    /// The header name.
    pub name: String,
    /// The header value.
    pub value: String,
}

/// The upload result: where to PUT, the file ID and/or download URL, and the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl UploadResult {
    /// Builds the `<query/>`. Header names and values lose CR and LF.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut q = with(
            el("query", ns::FILE_TRANSFER),
            "upload",
            self.upload.as_str(),
        );
        if let Some(id) = &self.fileid {
            set(&mut q, "fileid", id.as_str());
        }
        if let Some(d) = &self.download {
            set(&mut q, "download", d.as_str());
        }
        if !self.headers.is_empty() {
            let mut hs = el("headers", ns::FILE_TRANSFER);
            for h in &self.headers {
                let clean = |s: &str| {
                    s.chars()
                        .filter(|c| *c != '\r' && *c != '\n')
                        .collect::<String>()
                };
                let mut e = with(el("header", ns::FILE_TRANSFER), "name", clean(&h.name));
                set(&mut e, "value", clean(&h.value));
                hs.append_child(e);
            }
            q.append_child(hs);
        }
        q
    }
}

/// The download request: `<query fileid=…/>` in an IQ `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    /// The file ID to resolve.
    pub fileid: String,
}

impl DownloadRequest {
    /// Builds the `<query/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        with(
            el("query", ns::FILE_TRANSFER),
            "fileid",
            self.fileid.as_str(),
        )
    }
}

/// The download result: a fresh, short-lived URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadResult {
    /// The download URL.
    pub download: Url,
}

impl DownloadResult {
    /// Builds the `<query/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        with(
            el("query", ns::FILE_TRANSFER),
            "download",
            self.download.as_str(),
        )
    }
}

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
    /// Parses a `<query xmlns='p1:http-file-transfer'/>`.
    pub fn parse(q: &Element) -> Result<Query, ParseError> {
        if q.name() != "query" || !is_file_transfer_ns(&q.ns()) {
            return Err(ParseError::unexpected(
                "a p1:http-file-transfer <query/>",
                q,
            ));
        }
        let url = |name: &'static str| -> Result<Option<Url>, ParseError> {
            q.attr(name)
                .map(|u| Url::parse(u).map_err(|_| ParseError::InvalidUrl(name)))
                .transpose()
        };
        if let Some(md5) = q.attr("md5") {
            let md5 = decode_md5(md5)?;
            let size = q.attr("size").map(parse_size).transpose()?;
            let nonempty = |n: &str| q.attr(n).filter(|s| !s.is_empty()).map(str::to_owned);
            if q.attr("filename") == Some("") {
                return Err(ParseError::EmptyFilename);
            }
            return Ok(Query::UploadRequest(UploadRequest {
                md5,
                filename: nonempty("filename"),
                size,
                content_type: nonempty("content-type"),
            }));
        }
        if let Some(upload) = url("upload")? {
            let fileid = q
                .attr("fileid")
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let download = url("download")?;
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
            return Ok(Query::UploadResult(UploadResult {
                upload,
                fileid,
                download,
                headers,
            }));
        }
        if let Some(fileid) = q.attr("fileid") {
            if fileid.is_empty() {
                return Err(ParseError::InvalidValue("fileid"));
            }
            return Ok(Query::DownloadRequest(DownloadRequest {
                fileid: fileid.to_owned(),
            }));
        }
        if let Some(download) = url("download")? {
            return Ok(Query::DownloadResult(DownloadResult { download }));
        }
        Err(ParseError::MissingAttribute("md5"))
    }

    /// Builds the `<query/>`.
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

/// The message payload sharing a file: `<x name= fileid= download=/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileMessage {
    /// The file name to show.
    pub name: Option<String>,
    /// The file ID the receiver resolves.
    pub fileid: Option<String>,
    /// A download URL, for receivers that cannot resolve IDs.
    pub download: Option<Url>,
}

impl FileMessage {
    /// A message payload for a file ID.
    #[must_use]
    pub fn new(name: impl Into<String>, fileid: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            fileid: Some(fileid.into()),
            download: None,
        }
    }

    /// Parses the `<x/>`; it must carry a file ID or a download URL.
    pub fn parse(x: &Element) -> Result<Self, ParseError> {
        if x.name() != "x" || !is_file_transfer_ns(&x.ns()) {
            return Err(ParseError::unexpected("a p1:http-file-transfer <x/>", x));
        }
        let fileid = x
            .attr("fileid")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let download = x
            .attr("download")
            .map(|u| Url::parse(u).map_err(|_| ParseError::InvalidUrl("download")))
            .transpose()?;
        if fileid.is_none() && download.is_none() {
            return Err(ParseError::MissingAttribute("fileid"));
        }
        Ok(Self {
            name: x.attr("name").map(str::to_owned),
            fileid,
            download,
        })
    }

    /// Builds the `<x/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut x = el("x", ns::FILE_TRANSFER);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip() {
        let cases = [
            Query::UploadRequest(UploadRequest::new([1; 16])),
            Query::UploadRequest(UploadRequest::new([1; 16]).with_file(
                "a b.jpg",
                5,
                Some("image/jpeg"),
            )),
            Query::UploadResult(UploadResult {
                upload: "https://s.example/u".parse().unwrap(),
                fileid: Some("id".into()),
                download: None,
                headers: vec![HttpHeader {
                    name: "Content-MD5".into(),
                    value: "x".into(),
                }],
            }),
            Query::DownloadRequest(DownloadRequest {
                fileid: "id".into(),
            }),
            Query::DownloadResult(DownloadResult {
                download: "https://s.example/d".parse().unwrap(),
            }),
        ];
        for q in cases {
            assert_eq!(Query::parse(&q.to_element()).unwrap(), q);
        }
    }
}
