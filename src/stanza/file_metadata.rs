//! XEP-0446: File metadata element (`<file xmlns='urn:xmpp:file:metadata:0'>`), with its
//! XEP-0264 thumbnails and XEP-0300 hashes.
//!
//! Reading is lenient, because the clients that send it differ:
//!
//! * Dino writes the media type twice, as `<media_type>` and `<media-type>`: both are read
//!   (the hyphenated one wins);
//! * the XEP-0448 example still has XEP-0446 0.1's `<dimension>WxH</dimension>`: read as
//!   width and height when those are absent;
//! * slixmpp writes `<date>` without an offset (`2023-11-14T22:13:20`): the raw text is kept,
//!   and [`FileMetadata::parsed_date`] reads it as UTC;
//! * hash digests of any length are kept (the XEP examples' `id-blake2b256` values are 20
//!   bytes), under any algorithm name;
//! * thumbnails with `width='0'` and `data:` URIs are kept.
//!
//! One bad item is dropped, not the element: a `<size>` that is not a decimal `u64`, a
//! `<hash>` that is not base64, a thumbnail without `uri` or with a dimension outside
//! 0..=65535. Unknown children are ignored. At most [`MAX_HASHES`], [`MAX_DESCS`] and
//! [`MAX_THUMBNAILS`] are kept.
//!
//! Writing is strict: only `<media-type>`, `<width>`/`<height>`, a date in XEP-0082 UTC form,
//! children in one canonical order (media-type, name, date, size, desc, width, height, length,
//! hash, thumbnail).

use std::collections::BTreeMap;

use base64::Engine as _;
use minidom::rxml::{Namespace, NcName};
use minidom::Element;
use time::OffsetDateTime;
use xmpp_parsers::hashes::{Algo, Hash};
use xmpp_parsers::FromElementError;

use super::{format_stamp, from_owned, parse_stamp, ParseError};
use crate::ns;
use crate::xml::{el, set, text_el, with};

/// The most `<hash/>` children kept; further ones are dropped.
pub const MAX_HASHES: usize = 16;
/// The most `<desc/>` languages kept; further ones are dropped.
pub const MAX_DESCS: usize = 16;
/// The most `<thumbnail/>` children kept; further ones are dropped.
pub const MAX_THUMBNAILS: usize = 8;

/// `<file xmlns='urn:xmpp:file:metadata:0'>`: what a shared file is, every field optional.
///
/// ```
/// use xmpp_upload::stanza::file_metadata::FileMetadata;
/// use xmpp_upload::xmpp_parsers::hashes::{Algo, Hash};
///
/// let meta = FileMetadata::new()
///     .with_name("fox.txt")
///     .with_media_type("text/plain")
///     .with_size(43)
///     .with_hash(Hash::from_base64(Algo::Sha_256, "16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI=")?);
/// let el = minidom::Element::from(&meta);
/// assert_eq!(
///     String::from(&el),
///     "<file xmlns='urn:xmpp:file:metadata:0'><media-type>text/plain</media-type>\
///      <name>fox.txt</name><size>43</size><hash xmlns='urn:xmpp:hashes:2' \
///      algo='sha-256'>16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI=</hash></file>"
/// );
/// assert_eq!(FileMetadata::try_from(&el)?, meta);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileMetadata {
    /// `<name>`: the file name. Untrusted: it may contain path syntax, escape it before any
    /// file-system use.
    pub name: Option<String>,
    /// `<media-type>` (or Dino's `<media_type>`); absent means `application/octet-stream`.
    pub media_type: Option<String>,
    /// `<size>` in bytes.
    pub size: Option<u64>,
    /// XEP-0300 `<hash/>`es, in document order.
    pub hashes: Vec<Hash>,
    /// `<date>` as written (see [`FileMetadata::parsed_date`]).
    pub date: Option<String>,
    /// `<desc>` texts by `xml:lang` (`""` when the element has none).
    pub descs: BTreeMap<String, String>,
    /// `<width>` in pixels (or the first number of `<dimension>WxH</dimension>`).
    pub width: Option<u32>,
    /// `<height>` in pixels (or the second number of `<dimension>`).
    pub height: Option<u32>,
    /// `<length>` of audio or video, in milliseconds.
    pub length: Option<u64>,
    /// XEP-0264 thumbnails.
    pub thumbnails: Vec<Thumbnail>,
}

impl FileMetadata {
    /// Metadata with no field set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the media type.
    #[must_use]
    pub fn with_media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    /// Sets the size in bytes.
    #[must_use]
    pub fn with_size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Adds a hash.
    #[must_use]
    pub fn with_hash(mut self, hash: Hash) -> Self {
        self.hashes.push(hash);
        self
    }

    /// Adds hashes (for example those of a `share::hash::FileHasher`).
    #[must_use]
    pub fn with_hashes(mut self, hashes: impl IntoIterator<Item = Hash>) -> Self {
        self.hashes.extend(hashes);
        self
    }

    /// Sets the date (written in XEP-0082 UTC form).
    #[must_use]
    pub fn with_date(mut self, date: OffsetDateTime) -> Self {
        self.date = Some(format_stamp(date));
        self
    }

    /// Sets the description in a language (`""` for none).
    #[must_use]
    pub fn with_desc(mut self, lang: impl Into<String>, desc: impl Into<String>) -> Self {
        self.descs.insert(lang.into(), desc.into());
        self
    }

    /// The date: an XEP-0082 date-time with any offset, a date-time without offset (as
    /// slixmpp writes it) taken as UTC, or a bare `YYYY-MM-DD` taken as midnight UTC.
    #[must_use]
    pub fn parsed_date(&self) -> Option<OffsetDateTime> {
        parse_lenient_date(self.date.as_deref()?)
    }

    /// Parses a `<file/>` leniently (see the [module documentation](self)).
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("file", ns::FILE_METADATA) {
            return Err(ParseError::unexpected("an XEP-0446 <file/>", e));
        }
        let mut m = Self::default();
        let mut underscore_type = None;
        let mut dimension = None;
        for c in e.children() {
            if c.has_ns(ns::FILE_METADATA) {
                match c.name() {
                    "name" => first(&mut m.name, || Some(c.text())),
                    "media-type" => first(&mut m.media_type, || nonempty(&c.text())),
                    "media_type" => first(&mut underscore_type, || nonempty(&c.text())),
                    "size" => first(&mut m.size, || c.text().trim().parse().ok()),
                    "date" => first(&mut m.date, || nonempty(&c.text())),
                    "width" => first(&mut m.width, || c.text().trim().parse().ok()),
                    "height" => first(&mut m.height, || c.text().trim().parse().ok()),
                    "length" => first(&mut m.length, || c.text().trim().parse().ok()),
                    "dimension" | "dimensions" => {
                        first(&mut dimension, || parse_dimension(&c.text()));
                    }
                    "desc" => {
                        let lang = c.attr_ns(ns::XML, "lang").unwrap_or_default().to_owned();
                        if m.descs.len() < MAX_DESCS || m.descs.contains_key(&lang) {
                            m.descs.entry(lang).or_insert_with(|| c.text());
                        }
                    }
                    _ => {}
                }
            } else if c.is("hash", ns::HASHES) {
                if m.hashes.len() < MAX_HASHES {
                    if let Some(h) = parse_hash_lenient(c) {
                        m.hashes.push(h);
                    }
                }
            } else if c.is("thumbnail", ns::THUMBS) && m.thumbnails.len() < MAX_THUMBNAILS {
                if let Ok(t) = Thumbnail::parse(c) {
                    m.thumbnails.push(t);
                }
            }
        }
        if m.media_type.is_none() {
            m.media_type = underscore_type;
        }
        if let (None, None, Some((w, h))) = (m.width, m.height, dimension) {
            m.width = Some(w);
            m.height = Some(h);
        }
        Ok(m)
    }

    /// Builds the `<file/>` strictly, in the canonical order.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let ns = ns::FILE_METADATA;
        let mut e = el("file", ns);
        if let Some(t) = &self.media_type {
            e.append_child(text_el("media-type", ns, t.as_str()));
        }
        if let Some(n) = &self.name {
            e.append_child(text_el("name", ns, n.as_str()));
        }
        if let Some(d) = self.parsed_date() {
            e.append_child(text_el("date", ns, format_stamp(d)));
        }
        if let Some(s) = self.size {
            e.append_child(text_el("size", ns, s.to_string()));
        }
        for (lang, desc) in &self.descs {
            let mut d = text_el("desc", ns, desc.as_str());
            if !lang.is_empty() {
                if let Ok(name) = NcName::try_from("lang") {
                    d.set_attr(Namespace::XML, name, lang.clone());
                }
            }
            e.append_child(d);
        }
        if let Some(w) = self.width {
            e.append_child(text_el("width", ns, w.to_string()));
        }
        if let Some(h) = self.height {
            e.append_child(text_el("height", ns, h.to_string()));
        }
        if let Some(l) = self.length {
            e.append_child(text_el("length", ns, l.to_string()));
        }
        for h in &self.hashes {
            e.append_child(hash_element(h));
        }
        for t in &self.thumbnails {
            e.append_child(t.to_element());
        }
        e
    }
}

impl TryFrom<&Element> for FileMetadata {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for FileMetadata {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&FileMetadata> for Element {
    fn from(m: &FileMetadata) -> Element {
        m.to_element()
    }
}

impl From<FileMetadata> for Element {
    fn from(m: FileMetadata) -> Element {
        m.to_element()
    }
}

/// XEP-0264 `<thumbnail xmlns='urn:xmpp:thumbs:1' uri= media-type= width= height=/>`, read
/// leniently: `width='0'` and `data:` URIs are kept (unlike
/// `xmpp_parsers::jingle_thumbnails::Thumbnail`). The dimensions are the sender's claim: do
/// not size buffers by them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// Where the thumbnail is: `cid:` (XEP-0231), `https:`, or inline `data:`.
    pub uri: String,
    /// Its media type.
    pub media_type: Option<String>,
    /// Its width in pixels.
    pub width: Option<u16>,
    /// Its height in pixels.
    pub height: Option<u16>,
}

impl Thumbnail {
    /// A thumbnail at this URI, with no other attribute.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            media_type: None,
            width: None,
            height: None,
        }
    }

    /// Parses a `<thumbnail/>`: `uri` is required and non-empty, `width`/`height` when
    /// present must be in 0..=65535.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("thumbnail", ns::THUMBS) {
            return Err(ParseError::unexpected("an XEP-0264 <thumbnail/>", e));
        }
        let uri = e
            .attr("uri")
            .filter(|u| !u.is_empty())
            .ok_or(ParseError::MissingAttribute("uri"))?
            .to_owned();
        let dim = |name: &'static str| -> Result<Option<u16>, ParseError> {
            e.attr(name)
                .map(|v| v.trim().parse().map_err(|_| ParseError::InvalidValue(name)))
                .transpose()
        };
        Ok(Self {
            uri,
            media_type: e.attr("media-type").map(str::to_owned),
            width: dim("width")?,
            height: dim("height")?,
        })
    }

    /// Builds the `<thumbnail/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut e = with(el("thumbnail", ns::THUMBS), "uri", self.uri.as_str());
        if let Some(t) = &self.media_type {
            set(&mut e, "media-type", t.as_str());
        }
        if let Some(w) = self.width {
            set(&mut e, "width", w.to_string());
        }
        if let Some(h) = self.height {
            set(&mut e, "height", h.to_string());
        }
        e
    }
}

impl TryFrom<&Element> for Thumbnail {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

impl From<&Thumbnail> for Element {
    fn from(t: &Thumbnail) -> Element {
        t.to_element()
    }
}

impl From<Thumbnail> for Element {
    fn from(t: Thumbnail) -> Element {
        t.to_element()
    }
}

fn first<T>(slot: &mut Option<T>, value: impl FnOnce() -> Option<T>) {
    if slot.is_none() {
        *slot = value();
    }
}

fn nonempty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn parse_dimension(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.trim().split_once(['x', 'X'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

/// XEP-0082 with any offset, a date-time without offset as UTC, a bare date as midnight UTC.
pub(crate) fn parse_lenient_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Some(t) = parse_stamp(s) {
        return Some(t);
    }
    if s.len() == 10 {
        return parse_stamp(&format!("{s}T00:00:00Z"));
    }
    let time_part = s.split_once(['T', 't'])?.1;
    if time_part.contains(['Z', 'z', '+', '-']) {
        return None;
    }
    parse_stamp(&format!("{s}Z"))
}

/// Reads an XEP-0300 `<hash algo=>base64</hash>` leniently: any non-empty algorithm name,
/// a non-empty digest of any length; `None` when it is not usable.
pub(crate) fn parse_hash_lenient(e: &Element) -> Option<Hash> {
    let algo: Algo = e.attr("algo")?.trim().parse().ok()?;
    let digest = crate::xml::base64_text(e).ok().filter(|d| !d.is_empty())?;
    Some(Hash::new(algo, digest))
}

/// Builds `<hash xmlns='urn:xmpp:hashes:2' algo=>base64</hash>`.
pub(crate) fn hash_element(h: &Hash) -> Element {
    let algo: String = h.algo.clone().into();
    with(
        text_el(
            "hash",
            ns::HASHES,
            base64::engine::general_purpose::STANDARD.encode(&h.hash),
        ),
        "algo",
        algo,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_dates() {
        let utc = |s| parse_lenient_date(s).map(format_stamp);
        assert_eq!(
            utc("2015-07-26T21:46:00+01:00").as_deref(),
            Some("2015-07-26T20:46:00Z")
        );
        assert_eq!(
            utc("2023-11-14T22:13:20").as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(
            utc("2023-11-14T22:13:20.25").as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(utc("2023-11-14").as_deref(), Some("2023-11-14T00:00:00Z"));
        assert_eq!(utc("2023-11-14T22:13:20-25:00"), None);
        assert_eq!(utc("yesterday"), None);
        assert_eq!(utc(""), None);
    }

    #[test]
    fn dimensions() {
        assert_eq!(parse_dimension("4096x2160"), Some((4096, 2160)));
        assert_eq!(parse_dimension(" 1 X 2 "), Some((1, 2)));
        assert_eq!(parse_dimension("4096"), None);
        assert_eq!(parse_dimension("-1x2"), None);
    }
}
