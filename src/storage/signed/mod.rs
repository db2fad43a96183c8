//! HMAC-signed URLs for your own HTTP endpoint, and the verifier that endpoint calls.
//!
//! A PUT URL looks like
//! `https://files.example/up/3f2a…c9/my%20juliet.jpg?v=1&size=23456&type=image%2Fjpeg&exp=1700000300&sig=…`:
//! the object key (`{slot id}/{file name}`) is the path below the base URL, and the query
//! carries every binding (size — or the largest size when only an MD5 binds the content —,
//! content type, SHA-256, MD5, expiry) and an HMAC-SHA256 over all of them. The token sits in
//! the query, so clients that drop slot headers still work, and any number of HTTP nodes
//! sharing the key verify URLs without shared state.
//!
//! GET URLs carry no query string: authenticity lives in the path, and the URL ends with the
//! percent-encoded file name, as links on Prosody and ejabberd do (clients and web UIs detect
//! media by the link's extension):
//! `{base}/{slot id}/{sig}/{file name}` when the URL does not expire (the default for slots),
//! `{base}/{slot id}/{expiry}.{sig}/{file name}` when it does (`expiry` in Unix seconds, `sig`
//! the base64url HMAC). GET URLs of the older query form (`{base}/{key}?sig=…`,
//! `{base}/{key}?exp=…&sig=…`) still verify, so links already shared keep working.
//!
//! The MAC input is a sequence of length-prefixed fields (method, key, bindings), so no two
//! different URLs sign the same bytes, and verification compares tags in constant time.

use core::fmt;

use url::Url;

use super::urls::SEGMENT;
use crate::crypto::SecretKey;

mod body;
mod issue;
mod verify;

pub use body::BodyCheck;
pub use verify::{VerifiedGet, VerifiedPut, VerifyError};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const VERSION: &str = "1";
/// Query value encoding: everything but RFC 3986 unreserved characters, `/` and `@` (both
/// allowed in a query, RFC 3986 §3.4), so common values (`image/jpeg`, `romeo@montague.tld`)
/// need no decoding when verified. Values are signed decoded, so URLs that encode them still
/// verify.
const QUERY_VALUE: &percent_encoding::AsciiSet = &SEGMENT.remove(b'/').remove(b'@');

/// Issues HMAC-signed PUT/GET URLs under a base URL and verifies them.
///
/// ```
/// use xmpp_upload::storage::signed::SignedUrlStore;
/// let store = SignedUrlStore::new("https://files.example.org/upload/".parse()?, *b"a key of 32 random bytes........");
/// // store.verify_put(&url, content_length, content_type, now) in the HTTP server's PUT handler
/// # Ok::<(), url::ParseError>(())
/// ```
#[derive(Clone)]
pub struct SignedUrlStore {
    base: Url,
    base_segments: Vec<String>,
    /// The base URL without query or fragment, ending in `/`.
    base_prefix: String,
    key: SecretKey,
    allow_http: bool,
}

impl fmt::Debug for SignedUrlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key, and never credentials, a query or a fragment of the base URL (the
        // store refuses such a base when validated, but `new` does not check).
        f.debug_struct("SignedUrlStore")
            .field("base", &crate::redact::RedactedUrl(&self.base))
            .field("allow_insecure_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl SignedUrlStore {
    /// A store issuing URLs below `base_url`, signed with `key` (use at least 32 random
    /// bytes; the HTTP server that verifies needs the same key). The base must be `https`,
    /// or `http` on a loopback host, unless [`SignedUrlStore::allow_insecure_http`] is set;
    /// otherwise issuing fails with [`StorageError::InsecureBaseUrl`](crate::storage::StorageError::InsecureBaseUrl).
    #[must_use]
    pub fn new(base_url: Url, key: impl Into<Vec<u8>>) -> Self {
        let base_segments = base_url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let mut prefix = base_url.clone();
        prefix.set_query(None);
        prefix.set_fragment(None);
        let mut base_prefix = prefix.to_string();
        if !base_prefix.ends_with('/') {
            base_prefix.push('/');
        }
        Self {
            base: base_url,
            base_segments,
            base_prefix,
            key: SecretKey::new(key),
            allow_http: false,
        }
    }

    /// Allows a plain `http` base URL on a non-loopback host (for a TLS-terminating proxy in
    /// front of the base URL's host, say). Clients then send files in clear text.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The base URL.
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.base
    }
}

#[cfg(test)]
mod tests;
