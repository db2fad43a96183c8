//! Checked values: once built, a [`FileName`] or [`ContentType`] is safe to put in a path, a
//! URL or an HTTP header, so nothing after the policy check fails because of input.
//! [`InlinePolicy`] is the one rule for serving a file `inline` or as an `attachment`.

use core::fmt::{self, Write as _};
use std::borrow::Cow;

/// The longest file name accepted, in bytes (the common file-system limit).
pub const MAX_FILENAME_BYTES: usize = 255;

/// Why a file name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileNameError {
    /// The name is empty.
    #[error("the file name is empty")]
    Empty,
    /// The name is longer than [`MAX_FILENAME_BYTES`].
    #[error("the file name is longer than 255 bytes")]
    TooLong,
    /// The name contains `/` or `\`.
    #[error("the file name contains a path separator")]
    PathSeparator,
    /// The name contains NUL or another control character.
    #[error("the file name contains a control character")]
    ControlCharacter,
    /// The name is `.` or `..`.
    #[error("the file name is '.' or '..'")]
    DotName,
}

/// A file name that is one safe path segment: non-empty, at most 255 bytes, no `/`, `\`,
/// NUL or control characters (C0, DEL, C1, and the bidi/line separators U+2028/U+2029), not
/// `.` or `..`. Unicode is kept; URLs percent-encode it.
///
/// ```
/// use xmpp_upload::checked::{FileName, FileNameError};
/// assert_eq!(FileName::new("Отчёт 2024.pdf").map(|f| f.extension().map(str::to_owned)), Ok(Some("pdf".into())));
/// assert_eq!(FileName::new("../etc/passwd"), Err(FileNameError::PathSeparator));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    /// Checks a file name.
    pub fn new(name: &str) -> Result<Self, FileNameError> {
        Self::check(name)?;
        Ok(Self(name.to_owned()))
    }

    /// Checks a file name without keeping it.
    pub fn check(name: &str) -> Result<(), FileNameError> {
        if name.is_empty() {
            return Err(FileNameError::Empty);
        }
        if name.len() > MAX_FILENAME_BYTES {
            return Err(FileNameError::TooLong);
        }
        if name.bytes().any(|b| b == b'/' || b == b'\\') {
            return Err(FileNameError::PathSeparator);
        }
        let control = if name.is_ascii() {
            name.bytes().any(|b| b.is_ascii_control())
        } else {
            name.chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
        };
        if control {
            return Err(FileNameError::ControlCharacter);
        }
        if name == "." || name == ".." {
            return Err(FileNameError::DotName);
        }
        Ok(())
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension (after the last `.`), if any.
    #[must_use]
    pub fn extension(&self) -> Option<&str> {
        self.0
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| !e.is_empty())
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type assumed for a file whose type is not known (XEP-0363 §5: a service may assume it
/// when the request names none).
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The longest content type accepted, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// Why a content type was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentTypeError {
    /// Not a `media-type` of RFC 9110 §8.3.1: `type/subtype` of token characters, then
    /// parameters `OWS ";" OWS name=value` where the value is a token or a quoted string; or a
    /// wildcard (`*`), or a non-token `charset`, or `charset` given twice.
    #[error("the content type is not a valid 'type/subtype' with parameters")]
    Invalid,
    /// Contains a `,`: a header value with a comma can be read as a list of types, and a
    /// browser may act on another one than the one checked.
    #[error("the content type contains a ','")]
    Comma,
    /// Longer than [`MAX_CONTENT_TYPE_BYTES`].
    #[error("the content type is longer than 255 bytes")]
    TooLong,
}

/// A media type as RFC 9110 §8.3.1 defines it, checked and normalised.
///
/// Accepted: `type "/" subtype *( OWS ";" OWS parameter )` with `type`, `subtype` and parameter
/// names of token characters (RFC 9110 §5.6.2) and parameter values that are a token or a
/// quoted string (§5.6.4), ASCII only, at most 255 bytes, surrounding spaces and tabs ignored.
/// Refused besides: a `,` anywhere (even quoted), a `*` type or subtype (a pattern is not a
/// type), an empty parameter, and a `charset` that is not a token or is given twice.
///
/// Two forms are kept:
/// * [`ContentType::as_str`], the **normalised** form stored and served: the lower-case
///   [`essence`](ContentType::essence), plus `; charset=` and the lower-case charset for `text/*`
///   types (charset names are case-insensitive, RFC 9110 §8.3.2). Other parameters are dropped.
/// * [`ContentType::as_given`], the value **as the client gave it** (surrounding whitespace
///   removed): what a client sends in its PUT's `Content-Type`, for stores that compare that
///   header byte for byte (S3's signature, the external servers' MACs).
///
/// ```
/// use xmpp_upload::checked::{ContentType, ContentTypeError};
/// let t = ContentType::new("Text/Plain; Charset=\"UTF-8\"; format=flowed")?;
/// assert_eq!((t.essence(), t.as_str()), ("text/plain", "text/plain; charset=utf-8"));
/// assert_eq!(t.as_given(), "Text/Plain; Charset=\"UTF-8\"; format=flowed");
/// assert_eq!(ContentType::new("image/JPEG")?.as_str(), "image/jpeg");
/// assert_eq!(ContentType::new("image/png; x=y, text/html"), Err(ContentTypeError::Comma));
/// assert!(ContentType::new("text/html\r\nX: y").is_err());
/// # Ok::<(), ContentTypeError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContentType {
    given: String,
    normal: String,
    essence_len: usize,
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(is_tchar)
}

/// A cursor over ASCII input; every read is bounds-checked.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// RFC 9110 §5.6.3 `OWS`.
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A non-empty run of `tchar`.
    fn token(&mut self) -> Result<&'a str, ContentTypeError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        self.s
            .get(start..self.pos)
            .filter(|t| !t.is_empty())
            .and_then(|t| core::str::from_utf8(t).ok())
            .ok_or(ContentTypeError::Invalid)
    }

    /// RFC 9110 §5.6.4 `quoted-string`, the opening `"` already read; returns its content
    /// with the quoted pairs resolved. `obs-text` (non-ASCII) is refused.
    fn quoted(&mut self) -> Result<String, ContentTypeError> {
        let mut out = String::new();
        loop {
            match self.bump().ok_or(ContentTypeError::Invalid)? {
                b'"' => return Ok(out),
                b'\\' => match self.bump() {
                    Some(c @ (b'\t' | b' ' | 0x21..=0x7e)) => out.push(char::from(c)),
                    _ => return Err(ContentTypeError::Invalid),
                },
                c @ (b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e) => out.push(char::from(c)),
                _ => return Err(ContentTypeError::Invalid),
            }
        }
    }
}

/// A media type checked against RFC 9110, borrowed from the input.
struct MediaType<'a> {
    /// The input without surrounding whitespace.
    given: &'a str,
    /// `type/subtype`, as written.
    essence: &'a str,
    is_text: bool,
    /// The `charset` parameter's value, as written (quoted strings resolved).
    charset: Option<Cow<'a, str>>,
}

/// RFC 9110 §8.3.1 `media-type`, strictly: see [`ContentType`] for the rules.
fn parse_media_type(s: &str) -> Result<MediaType<'_>, ContentTypeError> {
    if s.len() > MAX_CONTENT_TYPE_BYTES {
        return Err(ContentTypeError::TooLong);
    }
    // Finding: `image/png; x=y, text/html` passed an `image/*` allow-list. A comma has no
    // place in one media type (RFC 9110 §5.6.1 makes it the list separator), so it is
    // refused anywhere, quoted strings included.
    if s.contains(',') {
        return Err(ContentTypeError::Comma);
    }
    let given = s.trim_matches([' ', '\t']);
    let mut cur = Cursor {
        s: given.as_bytes(),
        pos: 0,
    };
    let ty = cur.token()?;
    if cur.bump() != Some(b'/') {
        return Err(ContentTypeError::Invalid);
    }
    let sub = cur.token()?;
    if ty == "*" || sub == "*" {
        return Err(ContentTypeError::Invalid);
    }
    let essence = given.get(..cur.pos).ok_or(ContentTypeError::Invalid)?;
    let mut charset: Option<Cow<'_, str>> = None;
    loop {
        cur.skip_ows();
        match cur.bump() {
            None => break,
            Some(b';') => {}
            Some(_) => return Err(ContentTypeError::Invalid),
        }
        cur.skip_ows();
        // RFC 9110 allows an empty parameter (`;;`); nothing sends one, so it is refused.
        let name = cur.token()?;
        if cur.bump() != Some(b'=') {
            return Err(ContentTypeError::Invalid);
        }
        let value = if cur.peek() == Some(b'"') {
            cur.pos += 1;
            Cow::Owned(cur.quoted()?)
        } else {
            Cow::Borrowed(cur.token()?)
        };
        if name.eq_ignore_ascii_case("charset") {
            if charset.is_some() || !is_token(&value) {
                return Err(ContentTypeError::Invalid);
            }
            charset = Some(value);
        }
    }
    Ok(MediaType {
        given,
        essence,
        is_text: ty.eq_ignore_ascii_case("text"),
        charset,
    })
}

impl ContentType {
    /// Checks and normalises a content type (see the type's docs for the grammar).
    pub fn new(s: &str) -> Result<Self, ContentTypeError> {
        let parsed = parse_media_type(s)?;
        let mut normal = parsed.essence.to_ascii_lowercase();
        let essence_len = normal.len();
        if let Some(cs) = parsed.charset.filter(|_| parsed.is_text) {
            normal.push_str("; charset=");
            normal.push_str(&cs.to_ascii_lowercase());
        }
        Ok(Self {
            given: parsed.given.to_owned(),
            normal,
            essence_len,
        })
    }

    /// The `type/subtype` of `s` as written (case kept), after the checks of
    /// [`ContentType::new`], without building a value: what a verifier compares.
    #[cfg(feature = "signed")]
    pub(crate) fn essence_of(s: &str) -> Result<&str, ContentTypeError> {
        parse_media_type(s).map(|p| p.essence)
    }

    /// `application/octet-stream`, the type assumed when a request names none.
    #[must_use]
    pub fn octet_stream() -> Self {
        Self {
            given: OCTET_STREAM.to_owned(),
            normal: OCTET_STREAM.to_owned(),
            essence_len: OCTET_STREAM.len(),
        }
    }

    /// The normalised type, the one to store and serve: the lower-case essence, plus the
    /// lower-case `charset` for `text/*` (`text/plain; charset=utf-8`).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.normal
    }

    /// The type as the client gave it, without surrounding whitespace: what the client's PUT
    /// carries in `Content-Type`. Valid as a header value (checked: no CR, LF, control
    /// character, non-ASCII or `,`), but not normalised.
    #[must_use]
    pub fn as_given(&self) -> &str {
        &self.given
    }

    /// The lower-case `type/subtype`, without parameters.
    #[must_use]
    pub fn essence(&self) -> &str {
        self.normal.get(..self.essence_len).unwrap_or(&self.normal)
    }

    /// Whether this type matches a pattern: `type/subtype`, `type/*` or `*/*`, compared with the
    /// essence only (case-insensitive; parameters in the pattern are ignored).
    #[must_use]
    pub fn matches(&self, pattern: &str) -> bool {
        let pattern = pattern
            .split_once(';')
            .map_or(pattern, |(p, _)| p)
            .trim_matches([' ', '\t']);
        if pattern == "*/*" || pattern == "*" {
            return true;
        }
        let essence = self.essence();
        match pattern.strip_suffix("/*") {
            Some(ty) => essence
                .split_once('/')
                .is_some_and(|(t, _)| t.eq_ignore_ascii_case(ty)),
            None => essence.eq_ignore_ascii_case(pattern),
        }
    }

    /// Whether a browser may run script or render active markup from a file of this type:
    /// HTML, SVG, anything XML (`*/xml`, `*+xml`: XHTML, XSLT, …), JavaScript, and `multipart/*`
    /// (MHTML). These are never served inline, whatever an [`InlinePolicy`] says.
    #[must_use]
    pub fn is_active(&self) -> bool {
        let essence = self.essence();
        let (ty, sub) = essence.split_once('/').unwrap_or((essence, ""));
        sub == "xml"
            || sub.ends_with("+xml")
            || sub == "html"
            || sub.contains("javascript")
            || sub.contains("ecmascript")
            || ty == "multipart"
    }
}

impl fmt::Debug for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.normal, f)
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normal)
    }
}

/// How a browser should present a downloaded file (RFC 6266 `Content-Disposition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Shown in the page or tab (`inline`).
    Inline,
    /// Saved as a file (`attachment`).
    Attachment,
}

impl Disposition {
    /// The `Content-Disposition` header value: `inline`, or
    /// `attachment; filename*=UTF-8''{name}` with the name percent-encoded per RFC 8187 §3.2.1
    /// (every byte but `attr-char`, so no quote, `;`, `,`, space, CR or LF can appear), or plain
    /// `attachment` when the name is empty.
    ///
    /// ```
    /// use xmpp_upload::checked::Disposition;
    /// assert_eq!(Disposition::Inline.header_value("a.png"), "inline");
    /// assert_eq!(
    ///     Disposition::Attachment.header_value("Отчёт \"1\".html"),
    ///     "attachment; filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20%221%22.html"
    /// );
    /// ```
    #[must_use]
    pub fn header_value(self, filename: &str) -> String {
        match self {
            Self::Inline => "inline".to_owned(),
            Self::Attachment if filename.is_empty() => "attachment".to_owned(),
            Self::Attachment => {
                let mut v = String::from("attachment; filename*=UTF-8''");
                for b in filename.bytes() {
                    // RFC 8187 §3.2.1 attr-char.
                    if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                        v.push(char::from(b));
                    } else {
                        // Writing to a String cannot fail.
                        let _ = write!(v, "%{b:02X}");
                    }
                }
                v
            }
        }
    }
}

/// The types [`InlinePolicy::default`] shows inline: common raster images (not SVG), audio,
/// video and plain text. Browsers render none of these as a document that runs script.
pub const DEFAULT_INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/apng",
    "image/bmp",
    "audio/*",
    "video/*",
    "text/plain",
];

/// Which downloads are served `inline` (shown in the browser) rather than as an `attachment`:
/// the one rule every store uses for `Content-Disposition` (the example HTTP store's header,
/// S3's signed `response-content-disposition`).
///
/// A file is inline only when its type is known, matches one of the policy's patterns
/// (`type/subtype`, `type/*`, `*/*`, as [`ContentType::matches`]) and is not
/// [active](ContentType::is_active): HTML, SVG and XML are never inline, even under `*/*`.
///
/// ```
/// use xmpp_upload::checked::{ContentType, Disposition, InlinePolicy};
/// let policy = InlinePolicy::default();
/// let ty = |t| ContentType::new(t).ok();
/// assert_eq!(policy.disposition(ty("image/png").as_ref()), Disposition::Inline);
/// assert_eq!(policy.disposition(ty("image/svg+xml").as_ref()), Disposition::Attachment);
/// assert_eq!(policy.disposition(None), Disposition::Attachment);
/// assert_eq!(
///     policy.content_disposition(ty("text/html").as_ref(), "x.html"),
///     "attachment; filename*=UTF-8''x.html"
/// );
/// assert_eq!(InlinePolicy::new(["*/*"]).disposition(ty("text/html").as_ref()), Disposition::Attachment);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePolicy {
    patterns: Vec<String>,
}

impl Default for InlinePolicy {
    /// [`DEFAULT_INLINE_TYPES`].
    fn default() -> Self {
        Self::new(DEFAULT_INLINE_TYPES.iter().copied())
    }
}

impl InlinePolicy {
    /// A policy showing inline the types matching `patterns` (active types excepted).
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// A policy under which every download is an attachment.
    #[must_use]
    pub fn never() -> Self {
        Self {
            patterns: Vec::new(),
        }
    }

    /// The patterns of the types shown inline.
    #[must_use]
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// How a file of type `ty` is served; `None` (type unknown) is an attachment.
    #[must_use]
    pub fn disposition(&self, ty: Option<&ContentType>) -> Disposition {
        match ty {
            Some(t) if !t.is_active() && self.patterns.iter().any(|p| t.matches(p)) => {
                Disposition::Inline
            }
            _ => Disposition::Attachment,
        }
    }

    /// The `Content-Disposition` value for a file of type `ty` named `filename`
    /// (see [`Disposition::header_value`]).
    #[must_use]
    pub fn content_disposition(&self, ty: Option<&ContentType>, filename: &str) -> String {
        self.disposition(ty).header_value(filename)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for ok in [
            "a",
            "my-juliet.jpg",
            "Отчёт.pdf",
            "a b.c",
            ".hidden",
            "...",
            &"é".repeat(127),
        ] {
            assert!(FileName::new(ok).is_ok(), "{ok}");
        }
        let bad: [(&str, FileNameError); 9] = [
            ("", FileNameError::Empty),
            ("a/b", FileNameError::PathSeparator),
            ("..\\x", FileNameError::PathSeparator),
            ("../x", FileNameError::PathSeparator),
            ("a\0b", FileNameError::ControlCharacter),
            ("a\nb", FileNameError::ControlCharacter),
            ("a\u{85}b", FileNameError::ControlCharacter),
            ("..", FileNameError::DotName),
            (".", FileNameError::DotName),
        ];
        for (name, err) in bad {
            assert_eq!(FileName::new(name), Err(err), "{name:?}");
        }
        assert_eq!(FileName::new(&"a".repeat(256)), Err(FileNameError::TooLong));
        assert!(FileName::new(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn content_types() {
        let t = ContentType::new("text/plain; charset=utf-8").unwrap();
        assert_eq!(t.essence(), "text/plain");
        assert!(t.matches("text/*") && t.matches("TEXT/PLAIN") && !t.matches("image/*"));
        for bad in [
            "",
            "text",
            "/plain",
            "text/",
            "te xt/plain",
            "text/plain\r\n",
            "text/plain;",
            "a/b;\u{7f}",
        ] {
            assert!(ContentType::new(bad).is_err(), "{bad:?}");
        }
    }

    /// Finding (a) of issue 11: a value that is a list of types must not pass an allow-list
    /// on its first element. RFC 9110 §5.6.1 makes `,` the list separator and §8.3.1's
    /// `media-type` has none, so a comma refuses the type wherever it stands.
    #[test]
    fn comma_refuses_the_type() {
        for bad in [
            "image/png; x=y, text/html",
            "image/png, text/html",
            "image/png,text/html",
            "image/png; x=\"a,b\"",
            ",image/png",
            "image/png,",
        ] {
            assert_eq!(
                ContentType::new(bad),
                Err(ContentTypeError::Comma),
                "{bad:?}"
            );
        }
    }

    /// RFC 9110 §8.3.1: `media-type = type "/" subtype parameters`, §5.6.6:
    /// `parameters = *( OWS ";" OWS [ parameter ] )`, `parameter = name "=" value`,
    /// `value = token / quoted-string` (§5.6.4), no whitespace around `=`.
    #[test]
    fn grammar() {
        let ok = [
            ("image/png", "image/png", "image/png"),
            ("IMAGE/PNG", "image/png", "image/png"),
            ("image/png;q=1", "image/png", "image/png"),
            ("image/png ;\tq=1", "image/png", "image/png"),
            ("  image/png  ", "image/png", "image/png"),
            (
                "application/vnd.oasis.opendocument.text",
                "application/vnd.oasis.opendocument.text",
                "application/vnd.oasis.opendocument.text",
            ),
            (
                "text/plain; charset=utf-8",
                "text/plain",
                "text/plain; charset=utf-8",
            ),
            (
                "text/plain;charset=UTF-8",
                "text/plain",
                "text/plain; charset=utf-8",
            ),
            (
                "Text/Plain; CHARSET=\"utf-8\"",
                "text/plain",
                "text/plain; charset=utf-8",
            ),
            (
                "text/plain; format=flowed; charset=utf-8",
                "text/plain",
                "text/plain; charset=utf-8",
            ),
            (
                "text/plain; name=\"a;b \\\"c\\\"\"; charset=us-ascii",
                "text/plain",
                "text/plain; charset=us-ascii",
            ),
            (
                "text/html;charset=utf-8",
                "text/html",
                "text/html; charset=utf-8",
            ),
            // The charset is kept for text only.
            ("image/jpeg; charset=binary", "image/jpeg", "image/jpeg"),
            (
                "application/json; charset=utf-8",
                "application/json",
                "application/json",
            ),
        ];
        for (given, essence, normal) in ok {
            let t = ContentType::new(given).unwrap_or_else(|e| panic!("{given:?}: {e}"));
            assert_eq!((t.essence(), t.as_str()), (essence, normal), "{given:?}");
            assert_eq!(t.as_given(), given.trim(), "{given:?}");
            assert_eq!(t.to_string(), normal);
        }
        let bad = [
            // Wildcards are patterns, not types.
            "*/*",
            "image/*",
            "*/png",
            // Not `type/subtype`.
            "image",
            "image/png/x",
            "image//png",
            "image /png",
            "image/ png",
            "\"image/png\"",
            // Parameters.
            "image/png;",
            "image/png; ;q=1",
            "image/png; q",
            "image/png; q=",
            "image/png; q =1",
            "image/png; q= 1",
            "image/png; =1",
            "image/png q=1",
            "image/png; q=\"1",
            "image/png; q=\"1\"x",
            "image/png; q=\"a\\\u{1}\"",
            "image/png; q=a b",
            "image/png; q=(x)",
            "image/png; q=\"a\"; q",
            // Charset: one, and a token.
            "text/plain; charset=utf-8; charset=latin1",
            "text/plain; charset=\"utf 8\"",
            "text/plain; charset=\"\"",
            // CR/LF, controls, non-ASCII (obs-text is refused).
            "text/plain\r\nX-Evil: 1",
            "text/plain; q=\"a\r\nb\"",
            "text/plain\n",
            "text/pla\0in",
            "text/plain; q=\"é\"",
            "tëxt/plain",
            "text/plain; q=é",
        ];
        for b in bad {
            assert!(ContentType::new(b).is_err(), "{b:?}");
        }
        assert_eq!(
            ContentType::new(&format!("a/{}", "b".repeat(254))),
            Err(ContentTypeError::TooLong)
        );
        assert!(ContentType::new(&format!("a/{}", "b".repeat(253))).is_ok());
        assert_eq!(
            ContentType::octet_stream(),
            ContentType::new(OCTET_STREAM).unwrap()
        );
    }

    /// The allow-list compares the essence: parameters can neither widen nor narrow a match.
    #[test]
    fn matching_uses_the_essence() {
        let t = ContentType::new("Image/PNG; name=\"x/y\"; q=\"text/html\"").unwrap();
        assert!(t.matches("image/*") && t.matches("image/png") && t.matches("*/*"));
        assert!(t.matches("image/png; charset=x") && t.matches(" IMAGE/PNG "));
        assert!(!t.matches("text/*") && !t.matches("text/html") && !t.matches("image/pn"));
        let svg = ContentType::new("image/svg+xml").unwrap();
        assert!(
            svg.matches("image/*"),
            "an allow-list is not the inline rule"
        );
    }

    #[test]
    fn active_types() {
        for active in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "application/xhtml+xml",
            "image/svg+xml",
            "text/xml",
            "application/xml",
            "application/rss+xml",
            "application/xslt+xml",
            "text/javascript",
            "application/javascript",
            "application/x-javascript",
            "text/ecmascript",
            "multipart/related",
        ] {
            assert!(ContentType::new(active).unwrap().is_active(), "{active}");
        }
        for passive in ["image/png", "text/plain", "video/mp4", "application/pdf"] {
            assert!(!ContentType::new(passive).unwrap().is_active(), "{passive}");
        }
    }

    #[test]
    fn inline_policy() {
        let ty = |t: &str| ContentType::new(t).unwrap();
        let p = InlinePolicy::default();
        for inline in [
            "image/png",
            "image/JPEG",
            "image/gif",
            "image/webp",
            "audio/ogg",
            "audio/mp4",
            "video/mp4",
            "video/webm",
            "text/plain",
            "text/plain; charset=utf-8",
        ] {
            assert_eq!(
                p.disposition(Some(&ty(inline))),
                Disposition::Inline,
                "{inline}"
            );
        }
        for attachment in [
            "image/svg+xml",
            "text/html",
            "text/html;charset=utf-8",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "application/pdf",
            "application/octet-stream",
            "text/javascript",
            "text/css",
            "image/x-unknown",
            "application/x-unknown",
        ] {
            assert_eq!(
                p.disposition(Some(&ty(attachment))),
                Disposition::Attachment,
                "{attachment}"
            );
        }
        assert_eq!(p.disposition(None), Disposition::Attachment);
        // Configurable, but never HTML, SVG or XML.
        let all = InlinePolicy::new(["*/*"]);
        assert_eq!(
            all.disposition(Some(&ty("application/pdf"))),
            Disposition::Inline
        );
        for never in [
            "text/html",
            "image/svg+xml",
            "text/xml",
            "application/atom+xml",
        ] {
            assert_eq!(
                all.disposition(Some(&ty(never))),
                Disposition::Attachment,
                "{never}"
            );
            let named = InlinePolicy::new([never]);
            assert_eq!(
                named.disposition(Some(&ty(never))),
                Disposition::Attachment,
                "{never}"
            );
        }
        let images = InlinePolicy::new(["image/*"]);
        assert_eq!(
            images.disposition(Some(&ty("image/svg+xml"))),
            Disposition::Attachment
        );
        assert_eq!(
            images.disposition(Some(&ty("image/png"))),
            Disposition::Inline
        );
        assert_eq!(
            images.disposition(Some(&ty("text/plain"))),
            Disposition::Attachment
        );
        assert_eq!(
            InlinePolicy::never().disposition(Some(&ty("image/png"))),
            Disposition::Attachment
        );
        assert_eq!(images.patterns(), ["image/*".to_owned()]);
    }

    /// RFC 6266 §4.1 / RFC 8187 §3.2.1: `filename*=UTF-8''` followed by `attr-char`s and
    /// `%XX` for every other byte, so no quote, separator, CR or LF reaches the header.
    #[test]
    fn content_disposition_values() {
        let a = Disposition::Attachment;
        assert_eq!(
            a.header_value("report.pdf"),
            "attachment; filename*=UTF-8''report.pdf"
        );
        assert_eq!(a.header_value(""), "attachment");
        assert_eq!(
            a.header_value("a b;c,d\"e'f\r\ng\\h%i"),
            "attachment; filename*=UTF-8''a%20b%3Bc%2Cd%22e%27f%0D%0Ag%5Ch%25i"
        );
        assert_eq!(
            a.header_value("é.txt"),
            "attachment; filename*=UTF-8''%C3%A9.txt"
        );
        assert_eq!(
            a.header_value("!#$&+-.^_`|~"),
            "attachment; filename*=UTF-8''!#$&+-.^_`|~"
        );
        assert_eq!(Disposition::Inline.header_value("x\r\n"), "inline");
        let hostile = "\"; filename=evil.html\r\nSet-Cookie: a=b";
        let v = a.header_value(hostile);
        assert!(v.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{v}");
        assert_eq!(v.matches(';').count(), 1, "{v}");
        assert!(!v.contains('"') && !v.contains("filename="), "{v}");
        assert_eq!(
            InlinePolicy::default()
                .content_disposition(ContentType::new("image/svg+xml").ok().as_ref(), "a.svg"),
            "attachment; filename*=UTF-8''a.svg"
        );
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
/// use xmpp_upload::checked::{parse_size, SizeError};
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

/// Decodes a base64 MD5 digest (RFC 1864 `Content-MD5` form, surrounding spaces allowed);
/// `None` unless it is exactly 16 bytes.
///
/// ```
/// use xmpp_upload::checked::decode_md5;
/// assert_eq!(decode_md5("qN48INKsmQyPMZkHs0DWog==").map(|d| d[0]), Some(0xa8));
/// assert_eq!(decode_md5("qN48INKsmQ=="), None);
/// ```
#[must_use]
pub fn decode_md5(s: &str) -> Option<[u8; 16]> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    <[u8; 16]>::try_from(bytes.as_slice()).ok()
}

/// Encodes an MD5 digest as base64 (RFC 1864 `Content-MD5` form).
#[must_use]
pub fn encode_md5(md5: &[u8; 16]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(md5)
}
