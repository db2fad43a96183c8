//! `Debug` helpers that never print a signed URL's query (crate-private): signed URLs are
//! bearer capabilities, and `Debug` output ends up in logs.

use core::fmt;

use url::Url;

/// A URL shown without its query or fragment, where signatures live.
pub(crate) struct RedactedUrl<'a>(pub(crate) &'a Url);

impl fmt::Debug for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        let had_query = shown.query().is_some() || shown.fragment().is_some();
        shown.set_query(None);
        shown.set_fragment(None);
        write!(
            f,
            "\"{}{}\"",
            shown.as_str(),
            if had_query { "?…" } else { "" }
        )
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
