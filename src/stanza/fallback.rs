//! XEP-0428: Fallback Indication (`urn:xmpp:fallback:0`): which part of a message's body only
//! stands in for a protocol the receiver may not support.
//!
//! `<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:sfs:0'><body/></fallback>` says the
//! whole body is a fallback for XEP-0447; `<body start= end=/>` names a range (in Unicode code
//! points). Reading is lenient: a range with a bad number is read as the whole body, and at most
//! [`MAX_RANGES`] ranges are kept; `<subject/>` ranges are ignored.

use minidom::Element;
use xmpp_parsers::message::MessagePayload;
use xmpp_parsers::FromElementError;

use super::{from_owned, ParseError};
use crate::ns;
use crate::xml::{el, set};

/// The most `<body/>` ranges kept from one `<fallback/>`.
pub const MAX_RANGES: usize = 16;

/// One `<body start= end=/>`; both `None` = the whole body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BodyRange {
    /// First code point of the fallback text.
    pub start: Option<u32>,
    /// Code point after its last one.
    pub end: Option<u32>,
}

impl BodyRange {
    /// The whole body.
    pub const WHOLE: BodyRange = BodyRange {
        start: None,
        end: None,
    };

    /// Whether this range is the whole body.
    #[must_use]
    pub fn is_whole(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }
}

/// `<fallback xmlns='urn:xmpp:fallback:0' for=?>`.
///
/// ```
/// use xmpp_upload::stanza::fallback::Fallback;
/// let f = Fallback::whole_body("urn:xmpp:sfs:0");
/// let el = minidom::Element::from(&f);
/// assert_eq!(
///     String::from(&el),
///     "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:sfs:0'><body/></fallback>"
/// );
/// assert!(Fallback::try_from(&el)?.covers_whole_body_for("urn:xmpp:sfs:0"));
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fallback {
    /// The namespace of the protocol the fallback stands in for (absent in XEP-0428 0.1).
    pub for_ns: Option<String>,
    /// The `<body/>` ranges; empty when the element has none (0.1: the whole body).
    pub body: Vec<BodyRange>,
}

impl Fallback {
    /// The whole body is a fallback for the protocol `for_ns`.
    pub fn whole_body(for_ns: impl Into<String>) -> Self {
        Self {
            for_ns: Some(for_ns.into()),
            body: vec![BodyRange::WHOLE],
        }
    }

    /// Whether this says the whole body stands in for `for_ns`.
    #[must_use]
    pub fn covers_whole_body_for(&self, for_ns: &str) -> bool {
        self.for_ns.as_deref() == Some(for_ns)
            && (self.body.is_empty() || self.body.iter().any(BodyRange::is_whole))
    }

    /// Parses a `<fallback/>`.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("fallback", ns::FALLBACK) {
            return Err(ParseError::unexpected("an XEP-0428 <fallback/>", e));
        }
        let num = |c: &Element, name: &str| c.attr(name).and_then(|v| v.trim().parse().ok());
        let body = e
            .children()
            .filter(|c| c.is("body", ns::FALLBACK))
            .map(|c| match (num(c, "start"), num(c, "end")) {
                (Some(start), Some(end)) if start <= end => BodyRange {
                    start: Some(start),
                    end: Some(end),
                },
                _ => BodyRange::WHOLE,
            })
            .take(MAX_RANGES)
            .collect();
        Ok(Self {
            for_ns: e.attr("for").map(str::to_owned),
            body,
        })
    }

    /// Builds the `<fallback/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut e = el("fallback", ns::FALLBACK);
        if let Some(f) = &self.for_ns {
            set(&mut e, "for", f.as_str());
        }
        for r in &self.body {
            let mut b = el("body", ns::FALLBACK);
            if let (Some(start), Some(end)) = (r.start, r.end) {
                set(&mut b, "start", start.to_string());
                set(&mut b, "end", end.to_string());
            }
            e.append_child(b);
        }
        e
    }
}

impl TryFrom<&Element> for Fallback {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for Fallback {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&Fallback> for Element {
    fn from(f: &Fallback) -> Element {
        f.to_element()
    }
}

impl From<Fallback> for Element {
    fn from(f: Fallback) -> Element {
        f.to_element()
    }
}

impl MessagePayload for Fallback {}
