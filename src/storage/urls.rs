//! The URL rules every backend shares (crate-private): base URL validation and RFC 3986
//! path-segment encoding, written once.

#[cfg(any(feature = "signed", feature = "external", feature = "s3"))]
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use url::Url;

use super::StorageError;

/// Bytes left as they are in a path segment: RFC 3986 unreserved characters only
/// (`A-Z a-z 0-9 - . _ ~`). Everything else, `/`, `?`, `#`, `%`, `+`, `;` and every non-ASCII
/// byte included, becomes `%XX` with upper-case hex digits, which is also S3's `UriEncode`.
#[cfg(any(feature = "signed", feature = "external", feature = "s3"))]
pub(crate) const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends one path segment (or query component), encoded with [`SEGMENT`].
#[cfg(any(feature = "signed", feature = "external", feature = "s3"))]
pub(crate) fn push_segment(out: &mut String, segment: &[u8]) {
    out.extend(percent_encoding::percent_encode(segment, SEGMENT));
}

/// Whether a URL's host is loopback, where plain http cannot be intercepted.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a backend's base URL: hierarchical, https (or http on loopback, or http when
/// allowed), without credentials, query or fragment.
pub(crate) fn check_base(url: &Url, allow_http: bool) -> Result<(), StorageError> {
    if url.cannot_be_a_base() {
        return Err(StorageError::InvalidBaseUrl);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(StorageError::BaseUrlCredentials);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(StorageError::BaseUrlQueryOrFragment);
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        _ => Err(StorageError::InsecureBaseUrl),
    }
}
