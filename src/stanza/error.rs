//! XEP-0363 error payloads (`<file-too-large/>`, `<retry/>`) and their mapping onto
//! [`StanzaError`].
//!
//! The payload lives in the namespace of the request's dialect, as a child of `<error/>`:
//!
//! ```xml
//! <error type='modify'>
//!   <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
//!   <file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>20000</max-file-size></file-too-large>
//! </error>
//! ```

use minidom::Element;
use time::OffsetDateTime;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use xmpp_parsers::FromElementError;

use super::{format_stamp, from_owned, parse_size, parse_stamp, Dialect, ParseError};
use crate::xml::{child, el, text_el, with};

/// The upload-specific child of an `<error/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorPayload {
    /// `<file-too-large><max-file-size>N</max-file-size></file-too-large>`.
    FileTooLarge {
        /// The largest size the service accepts, in bytes.
        max_file_size: u64,
    },
    /// `<retry stamp='…'/>`: the time (UTC) at which a request may succeed again.
    Retry {
        /// When to retry.
        stamp: OffsetDateTime,
    },
}

impl ErrorPayload {
    /// Builds the payload in the namespace of `dialect`.
    #[must_use]
    pub fn to_element(&self, dialect: Dialect) -> Element {
        let ns = dialect.namespace();
        match *self {
            ErrorPayload::FileTooLarge { max_file_size } => {
                let mut e = el("file-too-large", ns);
                e.append_child(text_el("max-file-size", ns, max_file_size.to_string()));
                e
            }
            ErrorPayload::Retry { stamp } => with(el("retry", ns), "stamp", format_stamp(stamp)),
        }
    }

    /// Parses a payload in any dialect. `<max-size/>`, which some old servers wrote instead of
    /// `<max-file-size/>`, is accepted.
    pub fn parse(e: &Element) -> Result<(Dialect, ErrorPayload), ParseError> {
        let dialect = Dialect::from_namespace(&e.ns())
            .ok_or_else(|| ParseError::unexpected("an XEP-0363 error payload", e))?;
        let ns = dialect.namespace();
        match e.name() {
            "file-too-large" => {
                let max = child(e, "max-file-size", ns)
                    .or_else(|| child(e, "max-size", ns))
                    .ok_or(ParseError::MissingChild("max-file-size"))?;
                let max_file_size = parse_size(max.text().trim())?;
                Ok((dialect, ErrorPayload::FileTooLarge { max_file_size }))
            }
            "retry" => {
                let stamp = e
                    .attr("stamp")
                    .ok_or(ParseError::MissingAttribute("stamp"))?;
                let stamp = parse_stamp(stamp).ok_or(ParseError::InvalidDateTime("stamp"))?;
                Ok((dialect, ErrorPayload::Retry { stamp }))
            }
            _ => Err(ParseError::unexpected("<file-too-large/> or <retry/>", e)),
        }
    }

    /// The payload of a received [`StanzaError`], if it has one.
    #[must_use]
    pub fn from_stanza_error(error: &StanzaError) -> Option<(Dialect, ErrorPayload)> {
        error.other.as_ref().and_then(|e| Self::parse(e).ok())
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers));
/// the dialect is dropped: [`UploadErrorPayload`] keeps it.
impl TryFrom<&Element> for ErrorPayload {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e).map(|(_, p)| p)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers));
/// the dialect is dropped: [`UploadErrorPayload`] keeps it.
impl TryFrom<Element> for ErrorPayload {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, |e| Self::parse(e).map(|(_, p)| p))
    }
}

/// An XEP-0363 error payload with the dialect it is written in: the `<file-too-large/>` or
/// `<retry/>` child of an `<error/>`, in both directions.
///
/// ```
/// use xmpp_upload::stanza::error::{ErrorPayload, UploadErrorPayload};
/// use xmpp_upload::stanza::Dialect;
///
/// let el: minidom::Element = "<file-too-large xmlns='urn:xmpp:http:upload'>\
///     <max-file-size>20000</max-file-size></file-too-large>".parse()?;
/// let p = UploadErrorPayload::try_from(&el)?;
/// assert_eq!(p, UploadErrorPayload::new(Dialect::Legacy, ErrorPayload::FileTooLarge { max_file_size: 20000 }));
/// assert_eq!(minidom::Element::from(p), el);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadErrorPayload {
    /// The dialect whose namespace the payload is in ([`Dialect::HybridV0`] is written as
    /// [`Dialect::V0`]).
    pub dialect: Dialect,
    /// The payload.
    pub payload: ErrorPayload,
}

impl UploadErrorPayload {
    /// A payload in the namespace of `dialect`.
    #[must_use]
    pub const fn new(dialect: Dialect, payload: ErrorPayload) -> Self {
        Self { dialect, payload }
    }

    /// Parses a payload in any dialect (see [`ErrorPayload::parse`]).
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        ErrorPayload::parse(e).map(|(dialect, payload)| Self { dialect, payload })
    }

    /// The payload of a received [`StanzaError`], if it has one.
    #[must_use]
    pub fn from_stanza_error(error: &StanzaError) -> Option<Self> {
        error.other.as_ref().and_then(|e| Self::parse(e).ok())
    }
}

impl TryFrom<&Element> for UploadErrorPayload {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for UploadErrorPayload {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&UploadErrorPayload> for Element {
    fn from(p: &UploadErrorPayload) -> Element {
        p.payload.to_element(p.dialect.answer())
    }
}

impl From<UploadErrorPayload> for Element {
    fn from(p: UploadErrorPayload) -> Element {
        p.payload.to_element(p.dialect.answer())
    }
}

/// The XEP-0363 error for a file above the service's limit: `modify`/`not-acceptable` with
/// `<file-too-large/>` in the request's namespace.
#[must_use]
pub fn file_too_large(dialect: Dialect, max_file_size: u64) -> StanzaError {
    let mut e = StanzaError::new(
        ErrorType::Modify,
        DefinedCondition::NotAcceptable,
        "en",
        format!("File too large. The maximum file size is {max_file_size} bytes"),
    );
    e.other = Some(ErrorPayload::FileTooLarge { max_file_size }.to_element(dialect));
    e
}

/// The XEP-0363 error for an exhausted quota: `wait`/`resource-constraint`, with `<retry/>`
/// when the time the quota frees up is known.
#[must_use]
pub fn quota_exceeded(dialect: Dialect, retry: Option<OffsetDateTime>) -> StanzaError {
    let text = match retry {
        Some(t) => format!("Quota reached. Try again after {}", format_stamp(t)),
        None => "Quota reached".to_owned(),
    };
    let mut e = StanzaError::new(
        ErrorType::Wait,
        DefinedCondition::ResourceConstraint,
        "en",
        text,
    );
    e.other = retry.map(|stamp| ErrorPayload::Retry { stamp }.to_element(dialect));
    e
}

/// An error without an upload payload.
#[must_use]
pub fn plain(type_: ErrorType, condition: DefinedCondition, text: &str) -> StanzaError {
    StanzaError::new(type_, condition, "en", text)
}

/// Serialises a [`StanzaError`] as the `<error/>` child of an IQ in `stanza_ns`
/// (`jabber:client` or `jabber:component:accept`), whatever namespace xmpp-parsers was
/// built to default to.
#[must_use]
pub fn error_element(error: StanzaError, stanza_ns: &str) -> Element {
    crate::xml::renamespace(Element::from(error), stanza_ns)
}

/// Parses the `<error/>` child of an IQ in any stanza namespace. What xmpp-parsers rejects is
/// [`ParseError::Xso`], with its reason. An `<error/>` deeper than 8 levels or with more than
/// 64 elements is refused before it is copied ([`ParseError::TooComplex`]): no error a
/// server sends comes near, and the copy would otherwise cost what the sender chose.
pub fn parse_error_element(e: &Element) -> Result<StanzaError, ParseError> {
    if e.name() != "error" {
        return Err(ParseError::unexpected("<error/>", e));
    }
    if crate::xml::exceeds(e, 8, 64) {
        return Err(ParseError::TooComplex);
    }
    let e = crate::xml::renamespace(e.clone(), xmpp_parsers::ns::DEFAULT_NS);
    // xmpp-parsers' reason is kept as text (`ParseError::Xso`).
    StanzaError::try_from(e).map_err(ParseError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_in_each_dialect() {
        let stamp = parse_stamp("2017-12-03T23:42:05Z").unwrap();
        for d in Dialect::ALL {
            for p in [
                ErrorPayload::FileTooLarge {
                    max_file_size: 20000,
                },
                ErrorPayload::Retry { stamp },
            ] {
                assert_eq!(ErrorPayload::parse(&p.to_element(d)).unwrap(), (d, p));
            }
        }
    }

    #[test]
    fn error_element_uses_the_stanza_namespace() {
        for ns in [crate::ns::JABBER_CLIENT, crate::ns::COMPONENT_ACCEPT] {
            let e = error_element(file_too_large(Dialect::V0, 5), ns);
            assert_eq!(e.ns(), ns);
            let back = parse_error_element(&e).unwrap();
            assert_eq!(back.defined_condition, DefinedCondition::NotAcceptable);
            assert_eq!(
                ErrorPayload::from_stanza_error(&back),
                Some((Dialect::V0, ErrorPayload::FileTooLarge { max_file_size: 5 }))
            );
        }
    }

    #[test]
    fn upload_error_payload_keeps_its_dialect() {
        let stamp = parse_stamp("2017-12-03T23:42:05Z").unwrap();
        for d in Dialect::ALL {
            let p = UploadErrorPayload::new(d, ErrorPayload::Retry { stamp });
            let e = Element::from(&p);
            assert_eq!(e.ns(), d.namespace());
            assert_eq!(UploadErrorPayload::try_from(e.clone()).unwrap(), p);
            assert_eq!(
                ErrorPayload::try_from(&e).unwrap(),
                ErrorPayload::Retry { stamp }
            );
        }
        let mut err = quota_exceeded(Dialect::Siacs, Some(stamp));
        assert_eq!(
            UploadErrorPayload::from_stanza_error(&err),
            Some(UploadErrorPayload::new(
                Dialect::Siacs,
                ErrorPayload::Retry { stamp }
            ))
        );
        err.other = None;
        assert_eq!(UploadErrorPayload::from_stanza_error(&err), None);
    }

    #[test]
    fn a_rejected_error_keeps_the_reason() {
        let e: Element = "<error xmlns='jabber:client' type='nonsense'/>"
            .parse()
            .unwrap();
        assert!(
            matches!(parse_error_element(&e), Err(ParseError::Xso(reason)) if !reason.is_empty())
        );
    }

    #[test]
    fn a_nested_or_bloated_error_is_refused_before_it_is_copied() {
        let ok: Element = "<error xmlns='jabber:client' type='modify'>\
             <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>5</max-file-size>\
             </file-too-large></error>"
            .parse()
            .unwrap();
        assert!(parse_error_element(&ok).is_ok());
        // 50 levels of app-specific nesting.
        let mut inner = Element::bare("x", "urn:example");
        for _ in 0..50 {
            let mut outer = Element::bare("x", "urn:example");
            outer.append_child(inner);
            inner = outer;
        }
        let mut deep = ok.clone();
        deep.append_child(inner);
        assert_eq!(parse_error_element(&deep), Err(ParseError::TooComplex));
        // 100 text elements side by side.
        let mut wide = ok.clone();
        for _ in 0..100 {
            wide.append_child(Element::bare("text", "urn:ietf:params:xml:ns:xmpp-stanzas"));
        }
        assert_eq!(parse_error_element(&wide), Err(ParseError::TooComplex));
    }
}
