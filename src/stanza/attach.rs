//! XEP-0367: Message Attaching (`urn:xmpp:message-attaching:1`): `<attach-to id=/>` marks a
//! message as an addition to an earlier one (XEP-0447 uses it to attach sources to a share).
//!
//! Which id to use is a rule of XEP-0367, encoded by `share::AttachTarget`: in a groupchat the
//! room's XEP-0359 stanza-id, otherwise the origin-id or else the message's `id`.

use minidom::Element;
use xmpp_parsers::message::MessagePayload;
use xmpp_parsers::FromElementError;

use super::{from_owned, ParseError};
use crate::ns;
use crate::xml::{el, with};

/// `<attach-to xmlns='urn:xmpp:message-attaching:1' id=/>`.
///
/// ```
/// use xmpp_upload::stanza::attach::AttachTo;
/// let el = minidom::Element::from(AttachTo::new("origin-7"));
/// assert_eq!(String::from(&el), "<attach-to xmlns='urn:xmpp:message-attaching:1' id='origin-7'/>");
/// assert_eq!(AttachTo::try_from(&el)?.id, "origin-7");
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachTo {
    /// The id of the message this one attaches to.
    pub id: String,
}

impl AttachTo {
    /// Attaches to the message with this id.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// Parses an `<attach-to/>`; `id` is required and non-empty.
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("attach-to", ns::MESSAGE_ATTACHING) {
            return Err(ParseError::unexpected("an XEP-0367 <attach-to/>", e));
        }
        let id = e
            .attr("id")
            .filter(|id| !id.is_empty())
            .ok_or(ParseError::MissingAttribute("id"))?;
        Ok(Self { id: id.to_owned() })
    }

    /// Builds the `<attach-to/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        with(
            el("attach-to", ns::MESSAGE_ATTACHING),
            "id",
            self.id.as_str(),
        )
    }
}

impl TryFrom<&Element> for AttachTo {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for AttachTo {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&AttachTo> for Element {
    fn from(a: &AttachTo) -> Element {
        a.to_element()
    }
}

impl From<AttachTo> for Element {
    fn from(a: AttachTo) -> Element {
        a.to_element()
    }
}

impl MessagePayload for AttachTo {}
