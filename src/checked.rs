//! Checked values: once built, a [`FileName`] or [`ContentType`] is safe to put in a path, a
//! URL or an HTTP header, so nothing after the policy check fails because of input.

use core::fmt;

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
        if name.contains(['/', '\\']) {
            return Err(FileNameError::PathSeparator);
        }
        if name
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
        {
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

/// Why a content type was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentTypeError {
    /// Not of the form `type/subtype` with RFC 9110 token characters, optionally followed by
    /// `;` parameters of visible ASCII.
    #[error("the content type is not a valid 'type/subtype'")]
    Invalid,
    /// Longer than 255 bytes.
    #[error("the content type is longer than 255 bytes")]
    TooLong,
}

/// A MIME type fit for an HTTP header: `type/subtype` of RFC 9110 token characters, and
/// optional `; name=value` parameters of visible ASCII; no CR, LF or other control character.
///
/// ```
/// use xmpp_upload::checked::ContentType;
/// assert_eq!(ContentType::new("image/JPEG").unwrap().essence(), "image/jpeg");
/// assert!(ContentType::new("text/html\r\nX: y").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContentType {
    raw: String,
    essence: String,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

impl ContentType {
    /// Checks a content type.
    pub fn new(s: &str) -> Result<Self, ContentTypeError> {
        if s.len() > 255 {
            return Err(ContentTypeError::TooLong);
        }
        let (essence, params) = match s.split_once(';') {
            Some((e, p)) => (e, Some(p)),
            None => (s, None),
        };
        let (ty, sub) = essence.split_once('/').ok_or(ContentTypeError::Invalid)?;
        let token = |t: &str| !t.is_empty() && t.bytes().all(is_tchar);
        if !token(ty) || !token(sub) {
            return Err(ContentTypeError::Invalid);
        }
        if let Some(p) = params {
            if !p
                .bytes()
                .all(|c| c == b' ' || c == b'\t' || c.is_ascii_graphic())
                || p.trim().is_empty()
            {
                return Err(ContentTypeError::Invalid);
            }
        }
        Ok(Self {
            raw: s.to_owned(),
            essence: essence.to_ascii_lowercase(),
        })
    }

    /// The type as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The lower-case `type/subtype`, without parameters.
    #[must_use]
    pub fn essence(&self) -> &str {
        &self.essence
    }

    /// Whether this type matches a pattern: `type/subtype`, `type/*` or `*/*`
    /// (case-insensitive, parameters ignored).
    #[must_use]
    pub fn matches(&self, pattern: &str) -> bool {
        let pattern = pattern.trim();
        if pattern == "*/*" || pattern == "*" {
            return true;
        }
        match pattern.strip_suffix("/*") {
            Some(ty) => self
                .essence
                .split_once('/')
                .is_some_and(|(t, _)| t.eq_ignore_ascii_case(ty)),
            None => self.essence.eq_ignore_ascii_case(pattern),
        }
    }
}

impl fmt::Debug for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
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
}
