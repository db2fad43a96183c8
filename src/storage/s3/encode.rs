//! S3's `UriEncode`: the percent-encoding SigV4 uses for paths and query components.
//!
//! Every byte except the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`
//! with upper-case hex digits; in paths `/` stays between segments. The same text goes into
//! the canonical request and into the URL, so the store sees exactly what was signed.

use percent_encoding::percent_decode_str;

/// Appends `bytes`, percent-encoded as S3 wants, to `out` (`/` included: it becomes `%2F`):
/// the crate's one segment encoding, which is exactly `UriEncode`.
pub(super) fn encode_into(out: &mut String, bytes: &[u8]) {
    crate::storage::urls::push_segment(out, bytes);
}

/// One query name or value, or one path segment, encoded.
#[cfg(test)]
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(&mut out, s.as_bytes());
    out
}

/// Appends `/` and each `/`-separated segment of an object key, encoded.
pub(super) fn push_key_path(out: &mut String, key: &str) {
    for segment in key.split('/') {
        out.push('/');
        encode_into(out, segment.as_bytes());
    }
}

/// The endpoint's path prefix in canonical form: each segment of the URL's path is decoded and
/// encoded again the S3 way, without a trailing `/` (`""` for the root).
pub(super) fn canonical_prefix(path: &str) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut out = String::new();
    if path.is_empty() {
        return out;
    }
    for segment in path.split('/') {
        out.push('/');
        let raw: Vec<u8> = percent_decode_str(segment).collect();
        encode_into(&mut out, &raw);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_kept_everything_else_upper_hex() {
        assert_eq!(encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(encode("a b/c+d=e&f;g"), "a%20b%2Fc%2Bd%3De%26f%3Bg");
        assert_eq!(encode("é€😀"), "%C3%A9%E2%82%AC%F0%9F%98%80");
        assert_eq!(encode("%41*!'()"), "%2541%2A%21%27%28%29");
    }

    #[test]
    fn key_path_keeps_slashes_between_segments() {
        let mut p = String::new();
        push_key_path(&mut p, "dir/sub dir/fïle (1).txt");
        assert_eq!(p, "/dir/sub%20dir/f%C3%AFle%20%281%29.txt");
        let mut p = String::new();
        push_key_path(&mut p, "a//b/");
        assert_eq!(p, "/a//b/");
    }

    #[test]
    fn prefix_is_recanonicalised() {
        assert_eq!(canonical_prefix("/"), "");
        assert_eq!(canonical_prefix(""), "");
        assert_eq!(canonical_prefix("/s3/"), "/s3");
        assert_eq!(canonical_prefix("/a!b/c%20d/%C3%A9"), "/a%21b/c%20d/%C3%A9");
        assert_eq!(canonical_prefix("/%ZZ"), "/%25ZZ");
    }
}
