//! `Debug` helpers that never print a signed URL's query (crate-private): signed URLs are
//! bearer capabilities, and `Debug` output ends up in logs.

use core::fmt;

use url::Url;

/// A URL shown without its query or fragment, where signatures live.
pub(crate) struct RedactedUrl<'a>(pub(crate) &'a Url);

impl fmt::Debug for RedactedUrl<'_> {
    /// Without credentials, query or fragment; `?…` marks a removed query.
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
        f.write_str(u.path())?;
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
        assert_eq!(shown, "\"https://h.example/a/b.jpg?…\"");
        let plain: Url = "https://h.example/a/b.jpg".parse().unwrap();
        assert_eq!(
            format!("{:?}", RedactedOpt(Some(&plain))),
            "Some(\"https://h.example/a/b.jpg\")"
        );
    }
}
