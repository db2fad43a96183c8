//! XEP-0103: URL Address Information (`http://jabber.org/protocol/url-data`), with the
//! XEP-0104 HTTP scheme's `<http:header/>` children.
//!
//! The plain source of an XEP-0447 share: `<url-data target='https://…'/>`. Reading is
//! lenient (any `target` text is kept as it is, unknown children are ignored, at most
//! [`MAX_HEADERS`] headers are kept); writing puts the target and the headers back.

use minidom::Element;
use xmpp_parsers::FromElementError;

use super::{from_owned, ParseError};
use crate::ns;
use crate::xml::{el, set, with};

/// The most XEP-0104 headers kept from one `<url-data/>`; further ones are dropped.
pub const MAX_HEADERS: usize = 16;

/// `<url-data xmlns='http://jabber.org/protocol/url-data' target='…'/>`.
///
/// ```
/// use xmpp_upload::stanza::url_data::UrlData;
/// let u = UrlData::new("https://download.montague.tld/4a771ac1/fox.txt");
/// let el = minidom::Element::from(&u);
/// assert_eq!(
///     String::from(&el),
///     "<url-data xmlns='http://jabber.org/protocol/url-data' \
///      target='https://download.montague.tld/4a771ac1/fox.txt'/>"
/// );
/// assert_eq!(UrlData::try_from(&el)?, u);
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlData {
    /// The URL, as the sender wrote it (not re-normalised).
    pub target: String,
    /// XEP-0104 `<http:header name= value=/>` pairs the fetch should send, in order.
    pub http_headers: Vec<(String, String)>,
}

impl UrlData {
    /// A source with this target and no headers.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            http_headers: Vec::new(),
        }
    }

    /// Parses a `<url-data/>`; only a missing `target` is an error.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("url-data", ns::URL_DATA) {
            return Err(ParseError::unexpected("an XEP-0103 <url-data/>", e));
        }
        let target = e
            .attr("target")
            .ok_or(ParseError::MissingAttribute("target"))?
            .to_owned();
        let http_headers = e
            .children()
            .filter(|c| c.is("header", ns::URL_DATA_HTTP))
            .filter_map(|c| Some((c.attr("name")?.to_owned(), c.attr("value")?.to_owned())))
            .take(MAX_HEADERS)
            .collect();
        Ok(Self {
            target,
            http_headers,
        })
    }

    /// Builds the `<url-data/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut e = with(el("url-data", ns::URL_DATA), "target", self.target.as_str());
        for (name, value) in &self.http_headers {
            let mut h = el("header", ns::URL_DATA_HTTP);
            set(&mut h, "name", name.as_str());
            set(&mut h, "value", value.as_str());
            e.append_child(h);
        }
        e
    }
}

impl TryFrom<&Element> for UrlData {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for UrlData {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&UrlData> for Element {
    fn from(u: &UrlData) -> Element {
        u.to_element()
    }
}

impl From<UrlData> for Element {
    fn from(u: UrlData) -> Element {
        u.to_element()
    }
}
