//! `Debug` helpers that never print the capability of a URL (crate-private): signed URLs are
//! bearer capabilities, and `Debug` output ends up in logs. The capability may sit in the
//! query (S3, external servers) or in the path (the signed store's `{id}/{sig}/{name}` GET
//! links, ejabberd's random directory), so only the host and the last path segment, the file
//! name, are shown.

use core::fmt;

use url::Url;

/// A URL shown without credentials, query, fragment or any path segment but the last.
pub(crate) struct RedactedUrl<'a>(pub(crate) &'a Url);

impl fmt::Debug for RedactedUrl<'_> {
    /// `scheme://host[:port]/…/name`: `/…/` marks removed segments, `?…` a removed query or
    /// fragment. A path of one segment is shown as `/…` unless it is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.0;
        if u.cannot_be_a_base() {
            return write!(f, "\"{}:…\"", u.scheme());
        }
        write!(f, "\"{}://", u.scheme())?;
        if !u.username().is_empty() || u.password().is_some() {
            f.write_str("…@")?;
        }
        if let Some(host) = u.host_str() {
            f.write_str(host)?;
        }
        if let Some(port) = u.port() {
            write!(f, ":{port}")?;
        }
        let path = u.path();
        match path.rsplit_once('/') {
            Some(("", "")) => f.write_str("/")?,
            Some((head, last)) if !head.is_empty() => write!(f, "/…/{last}")?,
            // "/name": a single segment may itself be the capability (a token path).
            _ => f.write_str("/…")?,
        }
        if u.query().is_some() || u.fragment().is_some() {
            f.write_str("?…")?;
        }
        f.write_str("\"")
    }
}

/// An optional URL, redacted.
pub(crate) struct RedactedOpt<'a>(pub(crate) Option<&'a Url>);

impl fmt::Debug for RedactedOpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(u) => write!(f, "Some({:?})", RedactedUrl(u)),
            None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_fragment_are_hidden() {
        let u: Url = "https://h.example/a/b.jpg?sig=SECRET&e=1#x"
            .parse()
            .unwrap();
        let shown = format!("{:?}", RedactedUrl(&u));
        assert_eq!(shown, "\"https://h.example/…/b.jpg?…\"");
        let plain: Url = "https://h.example/a/b.jpg".parse().unwrap();
        assert_eq!(
            format!("{:?}", RedactedOpt(Some(&plain))),
            "Some(\"https://h.example/…/b.jpg\")"
        );
    }

    #[test]
    fn path_capabilities_are_hidden() {
        // The signed store's GET link: slot ID and signature in the path.
        let u: Url = "https://files.example:8443/up/0123abcd/SIGNATURE/cat.jpg"
            .parse()
            .unwrap();
        assert_eq!(
            format!("{:?}", RedactedUrl(&u)),
            "\"https://files.example:8443/…/cat.jpg\""
        );
        // A token as the whole path, credentials in the authority.
        let u: Url = "https://user:pw@h.example/TOKEN".parse().unwrap();
        assert_eq!(
            format!("{:?}", RedactedUrl(&u)),
            "\"https://…@h.example/…\""
        );
        let u: Url = "https://h.example/".parse().unwrap();
        assert_eq!(format!("{:?}", RedactedUrl(&u)), "\"https://h.example/\"");
    }
}
