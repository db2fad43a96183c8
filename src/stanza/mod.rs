//! Wire types: every stanza of the upload flows, parsed from and built into
//! [`minidom::Element`].
//!
//! Parsing is lenient where real clients differ (unknown attributes and children are
//! ignored, unknown slot header names are skipped, legacy text values may carry surrounding
//! whitespace) and strict where a value matters (sizes are plain decimal `u64`s, URLs must
//! parse, timestamps must be XEP-0082). Building is strict: only the exact-case
//! `Authorization`, `Cookie` and `Expires` slot headers, without CR or LF, and integers
//! written plainly.
//!
//! | module | protocol |
//! |---|---|
//! | [`upload`] | XEP-0363 slot request and slot, in the three namespaces and the Smack 4.2.0 hybrid |
//! | [`error`] | XEP-0363 `<file-too-large/>` and `<retry/>`, mapped onto [`StanzaError`](xmpp_parsers::stanza_error::StanzaError) |
//! | [`disco`] | XEP-0030/XEP-0128 service discovery of an upload service |
//! | [`file_transfer`] | ProcessOne `p1:http-file-transfer`: upload by MD5, file IDs, download URLs |
//! | [`iq`] | the IQ envelope around them, in `jabber:client` or `jabber:component:accept` |

use xmpp_parsers::FromElementError;

use crate::ns;

pub mod disco;
pub mod error;
pub mod file_transfer;
pub mod iq;
pub mod upload;

/// Why a stanza could not be parsed.
///
/// Values quoted from the input are shortened, so that a hostile stanza cannot make an error
/// message arbitrarily long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The element is not the one expected, or is in another namespace.
    #[error("expected {expected}, found <{name}/> in namespace '{ns}'")]
    UnexpectedElement {
        /// What was expected.
        expected: &'static str,
        /// The local name found (shortened).
        name: String,
        /// The namespace found (shortened).
        ns: String,
    },
    /// A required attribute is missing.
    #[error("missing attribute '{0}'")]
    MissingAttribute(&'static str),
    /// A required child element is missing.
    #[error("missing child element <{0}/>")]
    MissingChild(&'static str),
    /// A child element that may appear once appears more than once.
    #[error("more than one <{0}/>")]
    DuplicateChild(&'static str),
    /// The filename is empty.
    #[error("the filename is empty")]
    EmptyFilename,
    /// The size is not a plain decimal `u64`.
    #[error("invalid size: {0}")]
    InvalidSize(#[from] SizeError),
    /// A URL does not parse as an absolute URL.
    #[error("<{0}/> does not hold an absolute URL")]
    InvalidUrl(&'static str),
    /// A `stamp` or `expire-before` is not an XEP-0082 date-time.
    #[error("'{0}' is not an XEP-0082 date-time")]
    InvalidDateTime(&'static str),
    /// An `md5` attribute is not the base64 of 16 bytes.
    #[error("'md5' is not the base64 of a 16-byte MD5 digest")]
    InvalidMd5,
    /// A `<hash/>` is malformed.
    #[error("invalid <hash/>: {0}")]
    InvalidHash(&'static str),
    /// Some other value does not have the required form.
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    /// The IQ `type` is not one this request is sent with.
    #[error("wrong IQ type for this request: expected '{expected}'")]
    WrongIqType {
        /// The type this payload must come in.
        expected: &'static str,
    },
    /// A disco#info result announces neither an XEP-0363 dialect nor
    /// `p1:http-file-transfer`: the entity is not an upload service.
    #[error("the entity announces no HTTP upload feature")]
    NotUploadService,
    /// xmpp-parsers rejected an element this crate hands to it (a `<hash/>`, an `<error/>`, a
    /// data form), or a [`FromElementError`] from another crate's parser was converted into
    /// a `ParseError`. The text is its message (shortened).
    #[error("rejected by xmpp-parsers: {0}")]
    Xso(String),
}

impl ParseError {
    pub(crate) fn unexpected(expected: &'static str, el: &minidom::Element) -> Self {
        Self::UnexpectedElement {
            expected,
            name: shorten(el.name()),
            ns: shorten(&el.ns()),
        }
    }

    /// Whether the element was simply not the one a parser looks for (another name or
    /// namespace, or a disco#info result of an entity that is no upload service), as opposed
    /// to the right element with bad content.
    ///
    /// The owned `TryFrom<Element>` conversions turn exactly these errors into
    /// [`FromElementError::Mismatch`], giving the element back.
    #[must_use]
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            ParseError::UnexpectedElement { .. } | ParseError::NotUploadService
        )
    }

    /// The typed error inside an [`xmpp_parsers::Error`] built by this crate (see
    /// [Errors and xmpp-parsers](self#errors-and-xmpp-parsers)); `None` for errors from
    /// elsewhere.
    ///
    /// ```
    /// use xmpp_upload::stanza::{upload::SlotRequest, ParseError, SizeError};
    /// use xmpp_upload::xmpp_parsers::FromElementError;
    ///
    /// let el: minidom::Element =
    ///     "<request xmlns='urn:xmpp:http:upload:0' filename='a.jpg' size='-1'/>".parse()?;
    /// match SlotRequest::try_from(el) {
    ///     Err(FromElementError::Invalid(e)) => assert_eq!(
    ///         ParseError::from_xso(&e),
    ///         Some(&ParseError::InvalidSize(SizeError::Sign))
    ///     ),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), minidom::Error>(())
    /// ```
    #[must_use]
    pub fn from_xso(error: &xmpp_parsers::Error) -> Option<&ParseError> {
        match error {
            xmpp_parsers::Error::TextParseError(inner) => inner.downcast_ref::<ParseError>(),
            _ => None,
        }
    }
}

/// Keeps the typed error: [`xmpp_parsers::Error::TextParseError`] boxes it, and
/// [`ParseError::from_xso`] gets it back.
impl From<ParseError> for xmpp_parsers::Error {
    fn from(e: ParseError) -> Self {
        xmpp_parsers::Error::TextParseError(Box::new(e))
    }
}

/// The reverse direction, for code that mixes this crate's owned conversions with its own
/// `ParseError`s: a [`FromElementError::Mismatch`] becomes
/// [`ParseError::UnexpectedElement`], a boxed `ParseError` comes back as it was, and any other
/// xmpp-parsers error becomes [`ParseError::Xso`] with its text.
impl From<FromElementError> for ParseError {
    fn from(e: FromElementError) -> Self {
        match e {
            FromElementError::Mismatch(el) => ParseError::unexpected("another element", &el),
            FromElementError::Invalid(e) => match ParseError::from_xso(&e) {
                Some(p) => p.clone(),
                None => ParseError::Xso(shorten(&e.to_string())),
            },
        }
    }
}

/// The owned conversion shared by every wire type: parse by reference; give the element back
/// when it is not this type's, box the typed error otherwise.
pub(crate) fn from_owned<T>(
    e: minidom::Element,
    parse: impl FnOnce(&minidom::Element) -> Result<T, ParseError>,
) -> Result<T, FromElementError> {
    match parse(&e) {
        Ok(v) => Ok(v),
        Err(err) if err.is_mismatch() => Err(FromElementError::Mismatch(e)),
        Err(err) => Err(FromElementError::Invalid(err.into())),
    }
}

/// Why a size is not a plain decimal `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// The value is empty.
    #[error("empty")]
    Empty,
    /// The value has a sign (`-1`, `+5`).
    #[error("a sign is not allowed")]
    Sign,
    /// The value has a character other than an ASCII digit (`1e3`, `0x10`, ` 5`).
    #[error("not a plain decimal integer")]
    NotDecimal,
    /// The value is larger than `u64::MAX`.
    #[error("larger than 18446744073709551615")]
    TooLarge,
}

/// Parses a plain decimal `u64`: ASCII digits only, no sign, no spaces, no exponent.
///
/// ```
/// use xmpp_upload::stanza::{parse_size, SizeError};
/// assert_eq!(parse_size("23456"), Ok(23456));
/// assert_eq!(parse_size("+5"), Err(SizeError::Sign));
/// assert_eq!(parse_size("18446744073709551616"), Err(SizeError::TooLarge));
/// ```
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if s.starts_with(['-', '+']) {
        return Err(SizeError::Sign);
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(SizeError::NotDecimal);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(SizeError::TooLarge)?;
    }
    Ok(n)
}

/// Which flavour of XEP-0363 a request was made in; the answer mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Dialect {
    /// `urn:xmpp:http:upload:0` (XEP-0363 ≥ 0.3.0): attributes on `<request/>`, `<put url=>`
    /// with `<header/>` children, `<get url=/>`.
    V0,
    /// `urn:xmpp:http:upload` (XEP-0363 0.1–0.2.x): `<filename/>`, `<size/>`,
    /// `<content-type/>` children; `<put>URL</put><get>URL</get>`.
    Legacy,
    /// `eu:siacs:conversations:http:upload` (Conversations, 2015): as [`Dialect::Legacy`].
    Siacs,
    /// `urn:xmpp:http:upload:0` with legacy child elements, as Smack 4.2.0 sent it; answered
    /// as [`Dialect::V0`].
    HybridV0,
}

impl Dialect {
    /// The dialects a service can advertise, newest first.
    pub const ALL: [Dialect; 3] = [Dialect::V0, Dialect::Legacy, Dialect::Siacs];

    /// The XML namespace of this dialect.
    #[must_use]
    pub const fn namespace(self) -> &'static str {
        match self {
            Dialect::V0 | Dialect::HybridV0 => ns::UPLOAD_0,
            Dialect::Legacy => ns::UPLOAD_LEGACY,
            Dialect::Siacs => ns::SIACS,
        }
    }

    /// The dialect of a namespace (never [`Dialect::HybridV0`], which shares `V0`'s).
    #[must_use]
    pub fn from_namespace(ns: &str) -> Option<Dialect> {
        match ns {
            ns::UPLOAD_0 => Some(Dialect::V0),
            ns::UPLOAD_LEGACY => Some(Dialect::Legacy),
            ns::SIACS => Some(Dialect::Siacs),
            _ => None,
        }
    }

    /// The dialect whose slot format answers this one: `HybridV0` is answered as `V0`.
    #[must_use]
    pub const fn answer(self) -> Dialect {
        match self {
            Dialect::HybridV0 => Dialect::V0,
            d => d,
        }
    }

    /// Whether values travel as child elements with text (0.x, Conversations) rather than
    /// attributes.
    #[must_use]
    pub const fn uses_child_elements(self) -> bool {
        matches!(self, Dialect::Legacy | Dialect::Siacs)
    }
}

/// Shortens a value quoted from the input for an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s.get(..end).unwrap_or_default().to_owned();
    out.push('…');
    out
}

/// Formats a UTC date-time as XEP-0082 `YYYY-MM-DDThh:mm:ssZ`.
pub(crate) fn format_stamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an XEP-0082 date-time (RFC 3339 profile, any offset, optional fraction).
pub(crate) fn parse_stamp(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("18446744073709551616"), Err(SizeError::TooLarge));
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("-1"), Err(SizeError::Sign));
        assert_eq!(parse_size("1e3"), Err(SizeError::NotDecimal));
        assert_eq!(parse_size("0x10"), Err(SizeError::NotDecimal));
        assert_eq!(parse_size(" 1"), Err(SizeError::NotDecimal));
        assert_eq!(parse_size("１"), Err(SizeError::NotDecimal));
    }

    #[test]
    fn stamps_round_trip() {
        let t = parse_stamp("2017-12-03T23:42:05Z").unwrap();
        assert_eq!(format_stamp(t), "2017-12-03T23:42:05Z");
        let t = parse_stamp("2017-12-04T01:42:05.5+02:00").unwrap();
        assert_eq!(format_stamp(t), "2017-12-03T23:42:05Z");
        assert!(parse_stamp("yesterday").is_none());
    }

    #[test]
    fn shorten_keeps_char_boundaries() {
        let s = "я".repeat(100);
        let out = shorten(&s);
        assert!(out.len() < 80);
        assert!(out.ends_with('…'));
    }
}
