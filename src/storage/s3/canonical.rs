//! Step 1 of SigV4: the canonical request.
//!
//! ```text
//! HTTPMethod \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HashedPayload
//! ```
//! Presigned S3 URLs use the literal payload hash `UNSIGNED-PAYLOAD`: the body is bound by the
//! signed `content-length`, `content-md5` and `x-amz-checksum-sha256` headers instead.

use super::encode::encode;

/// The payload hash of a presigned request.
pub(super) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The canonical query string: names and values encoded, pairs sorted by encoded name (then
/// value), joined with `&`. The same text is the URL's query, before `X-Amz-Signature`.
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
/// spaces and tabs collapsed to one space.
pub(super) fn normalize_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split([' ', '\t']).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The headers a request signs: lower-case names with normalised values, kept sorted by name.
#[derive(Debug, Clone, Default)]
pub(super) struct SignedHeaders {
    headers: Vec<(String, String)>,
}

impl SignedHeaders {
    /// Adds a header (the name is lower-cased, the value normalised).
    pub(super) fn insert(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        let value = normalize_header_value(value);
        let at = self.headers.partition_point(|(n, _)| *n < name);
        self.headers.insert(at, (name, value));
    }

    /// The `SignedHeaders` line: names joined with `;`.
    pub(super) fn names(&self) -> String {
        let mut out = String::new();
        for (n, _) in &self.headers {
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(n);
        }
        out
    }

    /// The `CanonicalHeaders` block: one `name:value\n` per header.
    fn canonical(&self) -> String {
        let mut out = String::new();
        for (n, v) in &self.headers {
            out.push_str(n);
            out.push(':');
            out.push_str(v);
            out.push('\n');
        }
        out
    }
}

/// The canonical request text. `path` and `query` must already be in canonical (encoded) form,
/// as [`canonical_query`] and [`super::encode`] produce them.
pub(super) fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &SignedHeaders,
) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut out = String::with_capacity(256);
    for part in [method, path, query, &headers.canonical(), &headers.names()] {
        out.push_str(part);
        out.push('\n');
    }
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
