//! XEP-0334: Message Processing Hints (`urn:xmpp:hints`): the `<store/>` hint, which asks
//! servers to archive a message that has no body (an XEP-0447 announcement without fallback).

use minidom::Element;
use xmpp_parsers::message::MessagePayload;
use xmpp_parsers::FromElementError;

use super::{from_owned, ParseError};
use crate::ns;
use crate::xml::el;

/// `<store xmlns='urn:xmpp:hints'/>`.
///
/// ```
/// use xmpp_upload::stanza::hints::Store;
/// let el = minidom::Element::from(Store);
/// assert_eq!(String::from(&el), "<store xmlns='urn:xmpp:hints'/>");
/// assert_eq!(Store::try_from(&el)?, Store);
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Store;

impl Store {
    /// Parses a `<store/>` (children and attributes are ignored).
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if e.is("store", ns::HINTS) {
            Ok(Store)
        } else {
            Err(ParseError::unexpected("an XEP-0334 <store/>", e))
        }
    }
}

impl TryFrom<&Element> for Store {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for Store {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<Store> for Element {
    fn from(_: Store) -> Element {
        el("store", ns::HINTS)
    }
}

impl MessagePayload for Store {}
