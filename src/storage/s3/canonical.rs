//! Step 1 of SigV4: the canonical request.
//!
//! ```text
//! HTTPMethod \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HashedPayload
//! ```
//! Presigned S3 URLs use the literal payload hash `UNSIGNED-PAYLOAD`: the body is bound by the
//! signed `content-length`, `content-md5` and `x-amz-checksum-sha256` headers instead.

use std::borrow::Cow;

#[cfg(test)]
use super::encode::encode;

/// The payload hash of a presigned request.
pub(super) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The canonical query string by the general rule: names and values encoded, pairs sorted by
/// encoded name (then value), joined with `&`. The signer writes it in order instead; the
/// tests check that both agree.
#[cfg(test)]
pub(super) fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(n, v)| (encode(n), encode(v))).collect();
    encoded.sort();
    let mut out = String::new();
    for (n, v) in &encoded {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A header value as SigV4 signs it: leading and trailing whitespace removed, inner runs of
/// spaces and tabs collapsed to one space (borrowed when already so).
pub(super) fn normalize_header_value(value: &str) -> Cow<'_, str> {
    let b = value.as_bytes();
    let clean = !b.contains(&b'\t')
        && b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && !b.windows(2).any(|w| w == b"  ");
    if clean {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    for word in value.split([' ', '\t']).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

/// The headers a request signs: lower-case names with normalised values, kept sorted by name.
/// Borrowed where nothing had to change.
#[derive(Debug, Clone, Default)]
pub(super) struct SignedHeaders<'a> {
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> SignedHeaders<'a> {
    /// Adds a header (the name is lower-cased, the value normalised).
    pub(super) fn insert(&mut self, name: &'a str, value: &'a str) {
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        let value = normalize_header_value(value);
        let at = self.headers.partition_point(|(n, _)| *n < name);
        self.headers.insert(at, (name, value));
    }

    /// Appends the `SignedHeaders` value: names joined with `sep` (`;` in the canonical
    /// request, `%3B` in the query).
    pub(super) fn push_names(&self, out: &mut String, sep: &str) {
        for (i, (n, _)) in self.headers.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(n);
        }
    }

    /// The `SignedHeaders` line: names joined with `;`.
    #[cfg(test)]
    pub(super) fn names(&self) -> String {
        let mut out = String::new();
        self.push_names(&mut out, ";");
        out
    }

    /// Appends the `CanonicalHeaders` block: one `name:value\n` per header.
    fn push_canonical(&self, out: &mut String) {
        for (n, v) in &self.headers {
            out.push_str(n);
            out.push(':');
            out.push_str(v);
            out.push('\n');
        }
    }

    #[cfg(test)]
    fn canonical(&self) -> String {
        let mut out = String::new();
        self.push_canonical(&mut out);
        out
    }
}

/// The canonical request text. `path` and `query` must already be in canonical (encoded) form,
/// as [`canonical_query`] and [`super::encode`] produce them.
pub(super) fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &SignedHeaders<'_>,
) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut out = String::with_capacity(
        method.len() + path.len() + query.len() + 64 * headers.headers.len() + 32,
    );
    for part in [method, path, query] {
        out.push_str(part);
        out.push('\n');
    }
    headers.push_canonical(&mut out);
    out.push('\n');
    headers.push_names(&mut out, ";");
    out.push('\n');
    out.push_str(UNSIGNED_PAYLOAD);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_sorted_by_encoded_name() {
        let q = canonical_query(&[("b", "2"), ("A", "x/y"), ("a", "1"), ("a", "0")]);
        assert_eq!(q, "A=x%2Fy&a=0&a=1&b=2");
    }

    #[test]
    fn header_values_trimmed_and_collapsed() {
        assert_eq!(
            normalize_header_value("  text/plain;  charset=utf-8 \t"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(normalize_header_value(""), "");
    }

    #[test]
    fn headers_sorted_and_lower_cased() {
        let mut h = SignedHeaders::default();
        h.insert("Host", "example.org");
        h.insert("Content-Type", "image/png");
        h.insert("content-length", "5");
        assert_eq!(h.names(), "content-length;content-type;host");
        assert_eq!(
            h.canonical(),
            "content-length:5\ncontent-type:image/png\nhost:example.org\n"
        );
    }
}
