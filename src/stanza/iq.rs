//! The IQ envelope around upload payloads, in whichever stanza namespace it arrives in.
//!
//! A server sees client IQs in `jabber:client`; an XEP-0114 component sees them in
//! `jabber:component:accept`. Replies are written in the namespace of the request, so the same
//! code serves both, whatever xmpp-parsers' `component` feature is set to.

use minidom::Element;
use xmpp_parsers::stanza_error::StanzaError;

use super::ParseError;
use crate::ns;
use crate::xml::{el, set};

/// The `type` of an IQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    /// `get`
    Get,
    /// `set`
    Set,
    /// `result`
    Result,
    /// `error`
    Error,
}

impl IqType {
    /// The attribute value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }
}

/// A borrowed view of an `<iq/>`.
#[derive(Debug, Clone, Copy)]
pub struct Iq<'a> {
    /// The stanza namespace (`jabber:client`, `jabber:component:accept` or `jabber:server`).
    pub ns: &'static str,
    /// The `id`, if any.
    pub id: Option<&'a str>,
    /// The `type`.
    pub type_: IqType,
    /// The `from`, if any.
    pub from: Option<&'a str>,
    /// The `to`, if any.
    pub to: Option<&'a str>,
    /// The first child element, if any.
    pub payload: Option<&'a Element>,
}

impl<'a> Iq<'a> {
    /// Reads an `<iq/>`. `None` when the element is not an IQ in a stanza namespace; an
    /// error when it is one with a missing or unknown `type`.
    pub fn parse(e: &'a Element) -> Option<Result<Iq<'a>, ParseError>> {
        if e.name() != "iq" {
            return None;
        }
        let ns = ns::STANZA_NAMESPACES.into_iter().find(|n| e.has_ns(*n))?;
        let type_ = match e.attr("type") {
            Some("get") => IqType::Get,
            Some("set") => IqType::Set,
            Some("result") => IqType::Result,
            Some("error") => IqType::Error,
            Some(_) => return Some(Err(ParseError::InvalidValue("IQ 'type'"))),
            None => return Some(Err(ParseError::MissingAttribute("type"))),
        };
        Some(Ok(Iq {
            ns,
            id: e.attr("id"),
            type_,
            from: e.attr("from"),
            to: e.attr("to"),
            payload: e.children().next(),
        }))
    }

    fn reply_envelope(&self, type_: IqType, default_from: Option<&str>) -> Element {
        let mut iq = el("iq", self.ns);
        set(&mut iq, "type", type_.as_str());
        if let Some(id) = self.id {
            set(&mut iq, "id", id);
        }
        if let Some(from) = self.to.or(default_from) {
            set(&mut iq, "from", from);
        }
        if let Some(to) = self.from {
            set(&mut iq, "to", to);
        }
        iq
    }

    /// A `result` reply: `id` kept, `from`/`to` swapped (`from` = `default_from` when the
    /// request had no `to`).
    #[must_use]
    pub fn result(&self, default_from: Option<&str>, payload: Option<Element>) -> Element {
        let mut iq = self.reply_envelope(IqType::Result, default_from);
        if let Some(p) = payload {
            iq.append_child(p);
        }
        iq
    }

    /// An `error` reply carrying `error`, echoing `echo` (the request payload) when given.
    #[must_use]
    pub fn error(
        &self,
        default_from: Option<&str>,
        echo: Option<Element>,
        error: StanzaError,
    ) -> Element {
        let mut iq = self.reply_envelope(IqType::Error, default_from);
        if let Some(e) = echo {
            iq.append_child(e);
        }
        iq.append_child(super::error::error_element(error, self.ns));
        iq
    }
}

/// Builds a request IQ (for clients): `<iq xmlns='jabber:client' type= id= to=>payload</iq>`.
///
/// ```
/// use xmpp_upload::stanza::{iq::{request, IqType}, upload::SlotRequest};
/// let iq = request(IqType::Get, "u1", "upload.example.org", SlotRequest::new("a.jpg", 5).to_element());
/// assert_eq!(iq.attr("type"), Some("get"));
/// ```
#[must_use]
pub fn request(type_: IqType, id: &str, to: &str, payload: Element) -> Element {
    let mut iq = el("iq", ns::JABBER_CLIENT);
    set(&mut iq, "type", type_.as_str());
    set(&mut iq, "id", id);
    set(&mut iq, "to", to);
    iq.append_child(payload);
    iq
}

/// The RFC 6120 answer to an IQ `get`/`set` nobody handles: `cancel`/`service-unavailable`,
/// in the request's stanza namespace. `None` for anything else (IQ results and errors must
/// never be answered; messages and presences are not IQs).
///
/// A component calls this for stanzas [`SlotService::handle`](crate::SlotService::handle)
/// returns `None` for and that it does not serve otherwise.
///
/// ```
/// use xmpp_upload::stanza::iq::service_unavailable;
/// let ping: minidom::Element = "<iq xmlns='jabber:component:accept' type='get' id='p' \
///     from='a@b.c/d' to='upload.b.c'><ping xmlns='urn:xmpp:ping'/></iq>".parse()?;
/// let reply = service_unavailable(&ping).expect("IQ gets are answered");
/// assert_eq!((reply.attr("type"), reply.attr("to")), (Some("error"), Some("a@b.c/d")));
/// # Ok::<(), minidom::Error>(())
/// ```
#[must_use]
pub fn service_unavailable(stanza: &Element) -> Option<Element> {
    let iq = Iq::parse(stanza)?.ok()?;
    if !matches!(iq.type_, IqType::Get | IqType::Set) {
        return None;
    }
    let error = super::error::plain(
        xmpp_parsers::stanza_error::ErrorType::Cancel,
        xmpp_parsers::stanza_error::DefinedCondition::ServiceUnavailable,
        "This service does not handle this request",
    );
    Some(iq.error(None, None, error))
}
