//! XEP-0447: Stateless File Sharing (`urn:xmpp:sfs:0`, 0.3): `<file-sharing/>` and the
//! `<sources/>` of a share or of a later attach message.
//!
//! ```xml
//! <file-sharing xmlns='urn:xmpp:sfs:0' disposition='inline' id='…'>
//!   <file xmlns='urn:xmpp:file:metadata:0'>…</file>
//!   <sources><url-data xmlns='http://jabber.org/protocol/url-data' target='https://…'/></sources>
//! </file-sharing>
//! ```
//!
//! Sources are XEP-0103 [`UrlData`], XEP-0448 [`EncryptedSource`], or anything else
//! (`<jinglepub/>`…), kept as [`Source::Other`]. Reading is lenient: a source that does not
//! parse is dropped and the others are kept, unknown `disposition` values are ignored, at most
//! [`MAX_SOURCES`] sources are kept, and an unknown source deeper than
//! [`MAX_OTHER_DEPTH`] levels or larger than [`MAX_OTHER_ELEMENTS`] elements is dropped
//! rather than copied.

use minidom::Element;
use xmpp_parsers::message::MessagePayload;
use xmpp_parsers::FromElementError;

use super::esfs::EncryptedSource;
use super::file_metadata::FileMetadata;
use super::url_data::UrlData;
use super::{from_owned, ParseError};
use crate::ns;
use crate::xml::{child, el, exceeds, set};

/// The most sources kept from one `<sources/>`; further ones are dropped.
pub const MAX_SOURCES: usize = 16;
/// The deepest unknown source kept as [`Source::Other`] (levels, itself at level 1).
pub const MAX_OTHER_DEPTH: usize = 8;
/// The largest unknown source kept as [`Source::Other`] (elements in all).
pub const MAX_OTHER_ELEMENTS: usize = 64;

/// Whether a receiver may show or fetch the file by itself (`disposition=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// `inline`: the sender suggests showing it in the conversation.
    Inline,
    /// `attachment`: fetch only when the user asks.
    Attachment,
}

impl Disposition {
    /// The attribute value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "inline" => Some(Disposition::Inline),
            "attachment" => Some(Disposition::Attachment),
            _ => None,
        }
    }
}

/// One place a file can be fetched from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Source {
    /// XEP-0103 `<url-data target=/>`.
    Url(UrlData),
    /// XEP-0448 `<encrypted/>`.
    Encrypted(EncryptedSource),
    /// Any other source element, kept as it is and written back unchanged.
    Other(Element),
}

impl Source {
    /// Parses one source element. An `<encrypted/>` is parsed only when `allow_encrypted`
    /// (nested ones stay [`Source::Other`]); `None` when it is malformed or too complex.
    fn parse(e: &Element, allow_encrypted: bool) -> Option<Self> {
        if e.is("url-data", ns::URL_DATA) {
            UrlData::parse(e).ok().map(Source::Url)
        } else if allow_encrypted && e.is("encrypted", ns::ESFS) {
            EncryptedSource::parse(e).ok().map(Source::Encrypted)
        } else if exceeds(e, MAX_OTHER_DEPTH, MAX_OTHER_ELEMENTS) {
            None
        } else {
            Some(Source::Other(e.clone()))
        }
    }

    /// Builds the source element.
    #[must_use]
    pub fn to_element(&self) -> Element {
        match self {
            Source::Url(u) => u.to_element(),
            Source::Encrypted(e) => e.to_element(),
            Source::Other(e) => e.clone(),
        }
    }
}

impl From<UrlData> for Source {
    fn from(u: UrlData) -> Self {
        Source::Url(u)
    }
}

impl From<EncryptedSource> for Source {
    fn from(e: EncryptedSource) -> Self {
        Source::Encrypted(e)
    }
}

/// The sources of a `<sources/>` element (bounded, bad ones dropped; never recursive).
pub(crate) fn parse_source_items(e: &Element, allow_encrypted: bool) -> Vec<Source> {
    e.children()
        .filter_map(|c| Source::parse(c, allow_encrypted))
        .take(MAX_SOURCES)
        .collect()
}

pub(crate) fn sources_element(id: Option<&str>, items: &[Source]) -> Element {
    let mut e = el("sources", ns::SFS);
    if let Some(id) = id {
        set(&mut e, "id", id);
    }
    for s in items {
        e.append_child(s.to_element());
    }
    e
}

/// `<sources xmlns='urn:xmpp:sfs:0' id=?>`: inside a `<file-sharing/>`, or on its own in an
/// attach message (with the `id` of the share it completes).
///
/// ```
/// use xmpp_upload::stanza::sfs::{Source, Sources};
/// use xmpp_upload::stanza::url_data::UrlData;
/// let xml = "<sources xmlns='urn:xmpp:sfs:0' id='f1'>\
///     <url-data xmlns='http://jabber.org/protocol/url-data' target='https://files.example/a.png'/>\
///     <jinglepub xmlns='urn:xmpp:jinglepub:1' from='romeo@montague.example/resource' id='9559976B'/>\
///     </sources>";
/// let el: minidom::Element = xml.parse()?;
/// let sources = Sources::try_from(&el)?;
/// assert_eq!(sources.id.as_deref(), Some("f1"));
/// assert_eq!(sources.items[0], Source::Url(UrlData::new("https://files.example/a.png")));
/// assert!(matches!(sources.items[1], Source::Other(_)));
/// assert_eq!(minidom::Element::from(&sources), el);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sources {
    /// The `id` of the `<file-sharing/>` these sources belong to (attach messages).
    pub id: Option<String>,
    /// The sources, in document order.
    pub items: Vec<Source>,
}

impl Sources {
    /// Sources with no `id`.
    #[must_use]
    pub fn new(items: Vec<Source>) -> Self {
        Self { id: None, items }
    }

    /// The `<url-data/>` targets, in order.
    #[must_use]
    pub fn urls(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter_map(|s| match s {
                Source::Url(u) => Some(u.target.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Parses a `<sources/>`.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("sources", ns::SFS) {
            return Err(ParseError::unexpected("an XEP-0447 <sources/>", e));
        }
        Ok(Self {
            id: e.attr("id").map(str::to_owned),
            items: parse_source_items(e, true),
        })
    }

    /// Builds the `<sources/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        sources_element(self.id.as_deref(), &self.items)
    }
}

impl TryFrom<&Element> for Sources {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for Sources {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&Sources> for Element {
    fn from(s: &Sources) -> Element {
        s.to_element()
    }
}

impl From<Sources> for Element {
    fn from(s: Sources) -> Element {
        s.to_element()
    }
}

/// `Message::with_payload(sources)` builds an attach message's payload.
impl MessagePayload for Sources {}

/// `<file-sharing xmlns='urn:xmpp:sfs:0'>`: one shared file, its metadata and (unless the
/// sources come later in an attach message) where to fetch it.
///
/// ```
/// use xmpp_upload::stanza::file_metadata::FileMetadata;
/// use xmpp_upload::stanza::sfs::{Disposition, FileSharing};
///
/// let share = FileSharing::new(FileMetadata::new().with_name("fox.txt").with_size(43))
///     .with_id("f1")
///     .with_disposition(Disposition::Attachment)
///     .with_url("https://download.montague.tld/4a771ac1/fox.txt");
/// let el = minidom::Element::from(&share);
/// assert_eq!(
///     String::from(&el),
///     "<file-sharing xmlns='urn:xmpp:sfs:0' disposition='attachment' id='f1'>\
///      <file xmlns='urn:xmpp:file:metadata:0'><name>fox.txt</name><size>43</size></file>\
///      <sources><url-data xmlns='http://jabber.org/protocol/url-data' \
///      target='https://download.montague.tld/4a771ac1/fox.txt'/></sources></file-sharing>"
/// );
/// let back = FileSharing::try_from(&el)?;
/// assert_eq!(back.urls(), ["https://download.montague.tld/4a771ac1/fox.txt"]);
/// assert_eq!(back, share);
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FileSharing {
    /// `id=`: required, and distinct, when a message shares several files, and the key an
    /// attach message's `<sources id=>` refers to.
    pub id: Option<String>,
    /// `disposition=`.
    pub disposition: Option<Disposition>,
    /// The XEP-0446 metadata.
    pub file: FileMetadata,
    /// The sources; `None` when they are to be attached later.
    pub sources: Option<Sources>,
}

impl FileSharing {
    /// A share of this file with no id, disposition or sources.
    #[must_use]
    pub fn new(file: FileMetadata) -> Self {
        Self {
            id: None,
            disposition: None,
            file,
            sources: None,
        }
    }

    /// Sets the id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the disposition.
    #[must_use]
    pub fn with_disposition(mut self, disposition: Disposition) -> Self {
        self.disposition = Some(disposition);
        self
    }

    /// Adds a source.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.sources
            .get_or_insert_with(Sources::default)
            .items
            .push(source.into());
        self
    }

    /// Adds a `<url-data target=/>` source.
    #[must_use]
    pub fn with_url(self, target: impl Into<String>) -> Self {
        self.with_source(UrlData::new(target))
    }

    /// The plain `<url-data/>` targets, in order (encrypted sources are not included).
    #[must_use]
    pub fn urls(&self) -> Vec<&str> {
        self.sources.as_ref().map(Sources::urls).unwrap_or_default()
    }

    /// Parses a `<file-sharing/>`; the `<file/>` child is required.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("file-sharing", ns::SFS) {
            return Err(ParseError::unexpected("an XEP-0447 <file-sharing/>", e));
        }
        let file = FileMetadata::parse(
            child(e, "file", ns::FILE_METADATA).ok_or(ParseError::MissingChild("file"))?,
        )?;
        let sources = child(e, "sources", ns::SFS)
            .map(Sources::parse)
            .transpose()?;
        Ok(Self {
            id: e.attr("id").map(str::to_owned),
            disposition: e.attr("disposition").and_then(Disposition::parse),
            file,
            sources,
        })
    }

    /// Builds the `<file-sharing/>`: the file first, then the sources.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut e = el("file-sharing", ns::SFS);
        if let Some(d) = self.disposition {
            set(&mut e, "disposition", d.as_str());
        }
        if let Some(id) = &self.id {
            set(&mut e, "id", id.as_str());
        }
        e.append_child(self.file.to_element());
        if let Some(s) = &self.sources {
            e.append_child(sources_element(s.id.as_deref(), &s.items));
        }
        e
    }
}

impl TryFrom<&Element> for FileSharing {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for FileSharing {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&FileSharing> for Element {
    fn from(s: &FileSharing) -> Element {
        s.to_element()
    }
}

impl From<FileSharing> for Element {
    fn from(s: FileSharing) -> Element {
        s.to_element()
    }
}

/// `Message::with_payload(share)` and `Message::extract_payload::<FileSharing>()`.
impl MessagePayload for FileSharing {}
