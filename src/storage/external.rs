//! External upload servers speaking the `mod_http_upload_external` protocol.
//!
//! Many deployments already run a small HTTP server that accepts a PUT when the URL carries an
//! HMAC-SHA256 of the path and the declared size (and, in newer variants, the content type),
//! computed with a secret it shares with the XMPP server. [`ExternalStore`] produces exactly
//! those URLs, so such a server keeps working behind this crate's slot service.
//!
//! ```
//! use xmpp_upload::checked::ContentType;
//! use xmpp_upload::storage::external::{ExternalStore, Scheme};
//!
//! let base = url::Url::parse("https://upload.example.org/").unwrap();
//! let store = ExternalStore::new(base, "mysecret", Scheme::V2);
//! let jpeg = ContentType::new("image/jpeg").unwrap();
//! let put = store.put_url_for("thomas/abc/catmetal.jpg", 23026, Some(&jpeg)).unwrap();
//! assert_eq!(
//!     put.as_str(),
//!     "https://upload.example.org/thomas/abc/catmetal.jpg\
//!      ?v2=7318cd44d4c40731e3b2ff869f553ab2326eae631868e7b8054db20d4aee1c06"
//! );
//! ```
//!
//! # Signed string
//! The MAC is HMAC-SHA256 with the shared secret, written as lower-case hex, over the URL path
//! *below the base URL*, as raw UTF-8 (not percent-encoded):
//!
//! | scheme | query | signed string |
//! |---|---|---|
//! | [`Scheme::V1`], [`Scheme::EjabberdV1`] | `?v=` | `"{path} {size}"` |
//! | [`Scheme::V2`] | `?v2=` | `"{path}\0{size}\0{content type}"` |
//! | [`Scheme::Token`] | `?token=` | `"{path}\0{size}\0{content type}"` |
//!
//! The content type is the one the client declared, byte for byte as it gave it
//! ([`ContentType::as_given`]: checked, surrounding whitespace removed, *not* normalised), or
//! `application/octet-stream` when it declared none. These servers compare the MAC with the
//! `Content-Type` header of the PUT, and a client sends the type it declared: signing the
//! normalised form (`image/jpeg` for a declared `image/JPEG`) would get that client a 403. The URL itself carries the path percent-encoded segment by segment (every
//! byte outside `A-Z a-z 0-9 - . _ ~`), so no file name can add a path segment, a query or a
//! fragment, and servers that decode the path get back the signed string's path exactly.
//!
//! # Limitations of the protocol
//! * **PUT URLs do not expire.** The signed string has no time in it and these servers check
//!   none, so a PUT URL stays usable until the file exists (they refuse to overwrite). The
//!   grant's [`put_expires`](super::UploadGrant::put_expires) cannot be enforced.
//! * **GET URLs are unauthenticated and permanent**: these servers serve any stored file to
//!   anyone with its URL, so [`DownloadGrant::expires`](super::DownloadGrant::expires) and
//!   the grant's `get_expires` cannot be enforced either. The slot ID in the path is what
//!   keeps URLs unguessable.
//! * **No hash binding**: a declared SHA-256 or MD5 is not part of the signed string; the
//!   server checks only the size (and, with `V2`/`Token`, the content type).
//! * The exact size is required: grants without one are refused with
//!   [`StorageError::SizeRequired`].

use core::fmt;
use std::borrow::Cow;

use url::Url;

use super::{check_base, DownloadGrant, StorageBackend, StorageError, UploadGrant, UploadTarget};
use crate::checked::ContentType;
use crate::crypto::{hex, SecretKey};

/// The content type signed by `V2` and `Token` when the client declared none (the
/// `mod_http_upload_external` convention, also used by ejabberd and prosody-filer).
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Which signed-URL variant the external server checks.
///
/// All variants sign with HMAC-SHA256 and the shared secret; they differ in the query
/// parameter, the signed string and the path layout (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `?v=`, HMAC of `"{path} {size}"`; path `{slot ID hex}/{file name}`.
    ///
    /// The original protocol, accepted by every server of this family:
    /// * prosody-filer (checks the MAC under any of `v`, `v2` or `token`, and strips its
    ///   `UploadSubDir` prefix: give it that directory as the base URL);
    /// * the `xmpp-http-upload` crate's server (0.6.0 checked; it verifies the MAC over the
    ///   whole URL path, so its base URL must have no path prefix);
    /// * servers written for Prosody's `mod_http_upload_external` in its `v1` mode (its
    ///   `share.php` and other HttpUploadComponent-style servers).
    ///
    /// Does not bind the content type.
    V1,
    /// `?v2=`, HMAC of `"{path}\0{size}\0{content type}"`; path `{slot ID hex}/{file name}`.
    ///
    /// Binds the content type too: the PUT must carry the declared `Content-Type` (listed in
    /// [`UploadTarget::required_headers`]). Accepted by the `xmpp-http-upload` crate's server
    /// (which compares the raw header) and `mod_http_upload_external` servers in `v2` mode.
    /// prosody-filer accepts it only when the declared type is the one it guesses from the
    /// file extension: prefer [`Scheme::V1`] with prosody-filer.
    V2,
    /// `?token=`, same signed string and path as [`Scheme::V2`].
    ///
    /// For `mod_http_upload_external` servers configured for the `token` protocol. The
    /// `xmpp-http-upload` crate's server does not know it (it answers 400).
    Token,
    /// `?v=` like [`Scheme::V1`], with ejabberd's path layout
    /// `{SHA-1 hex of the bare JID}/{slot ID hex}/{sanitized file name}`.
    ///
    /// For external servers set up behind ejabberd's `mod_http_upload` with
    /// `external_secret` (prosody-filer, Holger Weiss's `ngx_http_upload`, …), keeping the
    /// directory layout ejabberd produced (default `jid_in_url: sha1`). The name is sanitized
    /// as ejabberd does: every character that is not a Unicode letter or number, `_`, `.` or
    /// `-` becomes `_`. ejabberd's random directory (40 alphanumerics by default) is the
    /// 32 hex digits of the slot ID here; servers do not care about its length.
    EjabberdV1,
}

impl Scheme {
    /// The query parameter carrying the MAC.
    fn query_param(self) -> &'static str {
        match self {
            Scheme::V1 | Scheme::EjabberdV1 => "v",
            Scheme::V2 => "v2",
            Scheme::Token => "token",
        }
    }

    /// Whether the signed string contains the content type.
    fn binds_content_type(self) -> bool {
        matches!(self, Scheme::V2 | Scheme::Token)
    }
}

/// A [`StorageBackend`] that issues URLs for an external upload server of the
/// `mod_http_upload_external` family (see the [module docs](self) for the protocol and its
/// limitations).
///
/// The base URL must be `https`, or `http` on a loopback host, unless
/// [`allow_insecure_http`](ExternalStore::allow_insecure_http) says otherwise; it must not
/// carry a user name, password, query or fragment (every client would receive them). Both
/// are checked when a URL is issued ([`StorageError::InsecureBaseUrl`],
/// [`StorageError::InvalidBaseUrl`]). A path prefix is kept (`https://h/upload` and
/// `https://h/upload/` are the same base) and is *not* part of the signed string. An empty
/// secret is refused ([`StorageError::Unsupported`]): anyone could sign with it.
///
/// `Debug` output shows neither the secret nor any credentials.
#[derive(Clone)]
pub struct ExternalStore {
    base: Url,
    key: SecretKey,
    empty_secret: bool,
    scheme: Scheme,
    allow_http: bool,
}

impl ExternalStore {
    /// A store for the external server at `base_url`, sharing `secret` with it.
    #[must_use]
    pub fn new(base_url: Url, secret: impl Into<Vec<u8>>, scheme: Scheme) -> Self {
        let secret = secret.into();
        Self {
            base: base_url,
            empty_secret: secret.is_empty(),
            key: SecretKey::new(secret),
            scheme,
            allow_http: false,
        }
    }

    /// Allows a plain `http` base URL on a non-loopback host (for example behind a TLS
    /// terminating proxy on a private network). Off by default: the URLs go to clients, and
    /// anyone on the path could read and reuse them.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The signing scheme.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The PUT URL for `path` (below the base URL, segments separated by `/`, raw UTF-8),
    /// signed for a body of exactly `size` bytes and, with [`Scheme::V2`] and
    /// [`Scheme::Token`], for `content_type` as the client gave it
    /// ([`ContentType::as_given`], the header its PUT carries; `None`:
    /// `application/octet-stream`).
    ///
    /// The path is used as given, whatever the scheme: this is the way to sign for a layout
    /// of your own. Each segment must be non-empty, not `.` or `..`, and free of control
    /// characters and `\` ([`StorageError::InvalidKey`]).
    pub fn put_url_for(
        &self,
        path: &str,
        size: u64,
        content_type: Option<&ContentType>,
    ) -> Result<Url, StorageError> {
        self.check()?;
        let segments = split_path(path)?;
        let mut url = self.url_for(&segments)?;
        let mac = self.mac(path, size, content_type);
        let query = format!("{}={}", self.scheme.query_param(), mac);
        url.set_query(Some(&query));
        Ok(url)
    }

    /// The GET URL for `path` (same rules as [`ExternalStore::put_url_for`]): the PUT URL
    /// without its query. It is not signed and does not expire.
    pub fn get_url_for(&self, path: &str) -> Result<Url, StorageError> {
        self.check()?;
        let segments = split_path(path)?;
        self.url_for(&segments)
    }

    /// Checks the configuration before issuing anything.
    fn check(&self) -> Result<(), StorageError> {
        check_base(&self.base, self.allow_http)?;
        if self.empty_secret {
            return Err(StorageError::Unsupported("an empty shared secret"));
        }
        Ok(())
    }

    /// The base URL with the percent-encoded segments appended below its path.
    fn url_for(&self, segments: &[&str]) -> Result<Url, StorageError> {
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_owned();
        for segment in segments {
            path.push('/');
            super::urls::push_segment(&mut path, segment.as_bytes());
        }
        url.set_path(&path);
        // `set_path` cannot fail, but make sure the encoded path came through unchanged.
        if url.path() != path {
            return Err(StorageError::InvalidKey(
                "path not representable in the base URL",
            ));
        }
        Ok(url)
    }

    /// The lower-case hex MAC for this scheme.
    fn mac(&self, path: &str, size: u64, content_type: Option<&ContentType>) -> String {
        let size = size.to_string();
        let tag = if self.scheme.binds_content_type() {
            let ct = content_type.map_or(DEFAULT_CONTENT_TYPE, ContentType::as_given);
            self.key.sign(&[
                path.as_bytes(),
                b"\0",
                size.as_bytes(),
                b"\0",
                ct.as_bytes(),
            ])
        } else {
            self.key.sign(&[path.as_bytes(), b" ", size.as_bytes()])
        };
        hex(&tag)
    }
}

impl fmt::Debug for ExternalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The origin and path only: no user name or password, no query.
        let base = format!(
            "{}{}",
            self.base.origin().ascii_serialization(),
            self.base.path()
        );
        f.debug_struct("ExternalStore")
            .field("base_url", &base)
            .field("scheme", &self.scheme)
            .field("allow_insecure_http", &self.allow_http)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl StorageBackend for ExternalStore {
    fn validate(&self) -> Result<(), StorageError> {
        self.check()?;
        super::check_key_len(self.key.len())
    }

    fn issue_upload(&self, grant: &UploadGrant) -> Result<UploadTarget, StorageError> {
        // The external server checks the size in the MAC: it must be known.
        let size = grant.size().ok_or(StorageError::SizeRequired)?;
        let path: Cow<'_, str> = match self.scheme {
            Scheme::EjabberdV1 => Cow::Owned(ejabberd_path(grant)),
            _ => Cow::Borrowed(grant.key()),
        };
        let put_url = self.put_url_for(&path, size, grant.content_type())?;
        let get_url = self.get_url_for(&path)?;
        let mut target = UploadTarget::new(put_url, get_url, path.into_owned());
        if self.scheme.binds_content_type() {
            // The server compares the raw header with the signed type: the PUT must carry it
            // as signed (as the client gave it), `application/octet-stream` included when the
            // client declared none.
            let ct = grant
                .content_type()
                .map_or(DEFAULT_CONTENT_TYPE, ContentType::as_given);
            target = target.with_required_header("Content-Type", ct);
        }
        Ok(target)
    }

    fn issue_download(&self, grant: &DownloadGrant) -> Result<Url, StorageError> {
        // These servers serve GET without authentication: the URL cannot carry the grant's
        // expiry (see the module docs).
        self.get_url_for(grant.key())
    }
}

/// Splits a relative path into its segments, refusing any that could change the path.
fn split_path(path: &str) -> Result<Vec<&str>, StorageError> {
    if path.is_empty() {
        return Err(StorageError::InvalidKey("empty path"));
    }
    path.split('/')
        .map(|segment| match segment {
            "" => Err(StorageError::InvalidKey("empty path segment")),
            "." | ".." => Err(StorageError::InvalidKey("'.' or '..' path segment")),
            s if s.contains('\\') => Err(StorageError::InvalidKey("'\\' in a path segment")),
            s if s.chars().any(char::is_control) => Err(StorageError::InvalidKey(
                "control character in a path segment",
            )),
            s => Ok(s),
        })
        .collect()
}

/// ejabberd's path: `{sha1 hex of "user@server"}/{slot ID hex}/{sanitized name}`.
///
/// From ejabberd's `src/mod_http_upload.erl` (`create_slot/7`, `make_user_string/2`,
/// `make_file_string/1`): the user directory is `str:sha(<<LUser/binary, $@, LServer/binary>>)`
/// of the normalized bare JID (empty node for a domain JID), the random directory is
/// `p1_rand:get_alphanum_string(SecretLength)` (here: the slot ID in hex), and the file name
/// goes through `replace_special_chars/1`.
fn ejabberd_path(grant: &UploadGrant) -> String {
    let jid = grant.requester();
    let node = jid.node().map_or("", |n| n.as_str());
    let user = format!("{}@{}", node, jid.domain().as_str());
    format!(
        "{}/{}/{}",
        hex(&sha1(user.as_bytes())),
        hex(&grant.slot_id()),
        ejabberd_sanitize(grant.filename().as_str())
    )
}

/// ejabberd's `replace_special_chars/1`:
/// `re:replace(S, "[^\\p{Xan}_.-]", "_", [unicode, global])`. PCRE's `\p{Xan}` is "general
/// category L (letter) or N (number)", so every other character (punctuation, spaces,
/// symbols, combining marks) becomes one `_`.
fn ejabberd_sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '_' || c == '.' || c == '-' || is_letter_or_number(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Unicode general category L or N.
///
/// `char::is_alphanumeric` is Alphabetic or Numeric, which also covers marks and symbols with
/// the `Other_Alphabetic` property (Devanagari vowel signs, Hebrew points, Arabic harakat,
/// circled letters …); [`NOT_LETTER_OR_NUMBER`] takes those out again.
fn is_letter_or_number(c: char) -> bool {
    c.is_alphanumeric() && !in_ranges(c, NOT_LETTER_OR_NUMBER)
}

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = u32::from(c);
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                core::cmp::Ordering::Less
            } else if lo > c {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Ranges of characters that `char::is_alphanumeric` accepts but whose general category is
/// neither L nor N (categories Mn, Mc and So with `Other_Alphabetic`). Ranges are merged over
/// gaps holding no alphanumeric character.
///
/// Generated from Unicode 14.0 (Python 3.11 `unicodedata`) against Rust 1.95's
/// `is_alphanumeric`, and checked to give exactly "category L or N" for every character
/// assigned in Unicode 14.0:
///
/// ```text
/// keep = [c for c in range(0x110000) if chr(c).isalnum_rust()
///         and unicodedata.category(chr(c))[0] not in "LN"
///         and unicodedata.category(chr(c)) != "Cn"]   # then merge into ranges
/// ```
///
/// Characters assigned after Unicode 14.0 are judged by `is_alphanumeric` alone, and
/// ejabberd's answer for them depends on the PCRE tables of its Erlang/OTP build.
const NOT_LETTER_OR_NUMBER: &[(u32, u32)] = &[
    (0x0345, 0x036F),
    (0x05B0, 0x05C7),
    (0x0610, 0x061A),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06E4),
    (0x06E7, 0x06ED),
    (0x0711, 0x0711),
    (0x0730, 0x073F),
    (0x07A6, 0x07B0),
    (0x0816, 0x0817),
    (0x081B, 0x0823),
    (0x0825, 0x0827),
    (0x0829, 0x082C),
    (0x08D4, 0x0903),
    (0x093A, 0x093B),
    (0x093E, 0x094F),
    (0x0955, 0x0957),
    (0x0962, 0x0963),
    (0x0981, 0x0983),
    (0x09BE, 0x09CC),
    (0x09D7, 0x09D7),
    (0x09E2, 0x09E3),
    (0x0A01, 0x0A03),
    (0x0A3E, 0x0A51),
    (0x0A70, 0x0A71),
    (0x0A75, 0x0A83),
    (0x0ABE, 0x0ACC),
    (0x0AE2, 0x0AE3),
    (0x0AFA, 0x0B03),
    (0x0B3E, 0x0B57),
    (0x0B62, 0x0B63),
    (0x0B82, 0x0B82),
    (0x0BBE, 0x0BCC),
    (0x0BD7, 0x0BD7),
    (0x0C00, 0x0C04),
    (0x0C3E, 0x0C56),
    (0x0C62, 0x0C63),
    (0x0C81, 0x0C83),
    (0x0CBE, 0x0CD6),
    (0x0CE2, 0x0CE3),
    (0x0D00, 0x0D03),
    (0x0D3E, 0x0D4C),
    (0x0D57, 0x0D57),
    (0x0D62, 0x0D63),
    (0x0D81, 0x0D83),
    (0x0DCF, 0x0DDF),
    (0x0DF2, 0x0DF3),
    (0x0E31, 0x0E31),
    (0x0E34, 0x0E3A),
    (0x0E4D, 0x0E4D),
    (0x0EB1, 0x0EB1),
    (0x0EB4, 0x0EBC),
    (0x0ECD, 0x0ECD),
    (0x0F71, 0x0F83),
    (0x0F8D, 0x0FBC),
    (0x102B, 0x103E),
    (0x1056, 0x1059),
    (0x105E, 0x1060),
    (0x1062, 0x1064),
    (0x1067, 0x106D),
    (0x1071, 0x1074),
    (0x1082, 0x108D),
    (0x108F, 0x108F),
    (0x109A, 0x109D),
    (0x1712, 0x1713),
    (0x1732, 0x1733),
    (0x1752, 0x1753),
    (0x1772, 0x1773),
    (0x17B6, 0x17C8),
    (0x1885, 0x1886),
    (0x18A9, 0x18A9),
    (0x1920, 0x1938),
    (0x1A17, 0x1A1B),
    (0x1A55, 0x1A74),
    (0x1ABF, 0x1B04),
    (0x1B35, 0x1B43),
    (0x1B80, 0x1B82),
    (0x1BA1, 0x1BAD),
    (0x1BE7, 0x1BF1),
    (0x1C24, 0x1C36),
    (0x1DD3, 0x1DF4),
    (0x24B6, 0x24E9),
    (0x2DE0, 0x2DFF),
    (0xA674, 0xA67B),
    (0xA69E, 0xA69F),
    (0xA802, 0xA802),
    (0xA80B, 0xA80B),
    (0xA823, 0xA827),
    (0xA880, 0xA881),
    (0xA8B4, 0xA8C5),
    (0xA8FF, 0xA8FF),
    (0xA926, 0xA92A),
    (0xA947, 0xA952),
    (0xA980, 0xA983),
    (0xA9B4, 0xA9BF),
    (0xA9E5, 0xA9E5),
    (0xAA29, 0xAA36),
    (0xAA43, 0xAA43),
    (0xAA4C, 0xAA4D),
    (0xAA7B, 0xAA7D),
    (0xAAB0, 0xAAB0),
    (0xAAB2, 0xAAB4),
    (0xAAB7, 0xAAB8),
    (0xAABE, 0xAABE),
    (0xAAEB, 0xAAEF),
    (0xAAF5, 0xAAF5),
    (0xABE3, 0xABEA),
    (0xFB1E, 0xFB1E),
    (0x10376, 0x1037A),
    (0x10A01, 0x10A0F),
    (0x10D24, 0x10D27),
    (0x10EAB, 0x10EAC),
    (0x11000, 0x11002),
    (0x11038, 0x11045),
    (0x11073, 0x11074),
    (0x11080, 0x11082),
    (0x110B0, 0x110C2),
    (0x11100, 0x11102),
    (0x11127, 0x11132),
    (0x11145, 0x11146),
    (0x11180, 0x11182),
    (0x111B3, 0x111BF),
    (0x111CE, 0x111CF),
    (0x1122C, 0x1123E),
    (0x112DF, 0x112E8),
    (0x11300, 0x11303),
    (0x1133E, 0x1134C),
    (0x11357, 0x11357),
    (0x11362, 0x11363),
    (0x11435, 0x11445),
    (0x114B0, 0x114C1),
    (0x115AF, 0x115BE),
    (0x115DC, 0x115DD),
    (0x11630, 0x11640),
    (0x116AB, 0x116B5),
    (0x1171D, 0x1172A),
    (0x1182C, 0x11838),
    (0x11930, 0x1193C),
    (0x11940, 0x11940),
    (0x11942, 0x11942),
    (0x119D1, 0x119DF),
    (0x119E4, 0x119E4),
    (0x11A01, 0x11A0A),
    (0x11A35, 0x11A39),
    (0x11A3B, 0x11A3E),
    (0x11A51, 0x11A5B),
    (0x11A8A, 0x11A97),
    (0x11C2F, 0x11C3E),
    (0x11C92, 0x11CB6),
    (0x11D31, 0x11D43),
    (0x11D47, 0x11D47),
    (0x11D8A, 0x11D96),
    (0x11EF3, 0x11EF6),
    (0x16F4F, 0x16F4F),
    (0x16F51, 0x16F92),
    (0x16FF0, 0x16FF1),
    (0x1BC9E, 0x1BC9E),
    (0x1E000, 0x1E02A),
    (0x1E947, 0x1E947),
    (0x1F130, 0x1F189),
];

/// SHA-1, only for ejabberd's user directory name, which is not a security boundary: the
/// directory is public in every URL.
fn sha1(data: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checked::FileName;
    use crate::storage::CheckedUpload;
    use jid::BareJid;
    use time::OffsetDateTime;

    // Expected MACs below were computed independently with Python 3.11:
    //   hmac.new(b"mysecret", s.encode("utf-8"), hashlib.sha256).hexdigest()
    // and percent-encodings with urllib.parse.quote(segment, safe="").
    const SLOT: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const SLOT_HEX: &str = "000102030405060708090a0b0c0d0e0f";

    fn store(base: &str, scheme: Scheme) -> ExternalStore {
        ExternalStore::new(Url::parse(base).unwrap(), "mysecret", scheme)
    }

    fn grant(requester: &str, name: &str, size: Option<u64>, ct: Option<&str>) -> UploadGrant {
        let now = OffsetDateTime::UNIX_EPOCH;
        UploadGrant::new(CheckedUpload {
            slot_id: SLOT,
            filename: FileName::new(name).unwrap(),
            size,
            max_size: size.unwrap_or(1 << 20),
            content_type: ct.map(|c| ContentType::new(c).unwrap()),
            sha256: None,
            md5: None,
            requester: BareJid::new(requester).unwrap(),
            now,
            put_expires: now + time::Duration::minutes(5),
            get_expires: None,
        })
    }

    fn query(url: &Url) -> &str {
        url.query().unwrap()
    }

    #[test]
    fn design_vectors_v1_v2_token() {
        // prosody-filer's own test vectors (DESIGN.md), key "mysecret".
        let path = "thomas/abc/catmetal.jpg";
        let jpeg = ContentType::new("image/jpeg").unwrap();
        let v1 = store("https://up.example/", Scheme::V1)
            .put_url_for(path, 23026, None)
            .unwrap();
        assert_eq!(
            v1.as_str(),
            "https://up.example/thomas/abc/catmetal.jpg\
             ?v=7b8879e2d1c733b423a70cde30cecc3a3c64a03f790d1b5bcbb2a6aca52b477e"
        );
        // V1 ignores the content type.
        let v1_ct = store("https://up.example/", Scheme::V1)
            .put_url_for(path, 23026, Some(&jpeg))
            .unwrap();
        assert_eq!(v1, v1_ct);
        let v2 = store("https://up.example/", Scheme::V2)
            .put_url_for(path, 23026, Some(&jpeg))
            .unwrap();
        assert_eq!(
            query(&v2),
            "v2=7318cd44d4c40731e3b2ff869f553ab2326eae631868e7b8054db20d4aee1c06"
        );
        let token = store("https://up.example/", Scheme::Token)
            .put_url_for(path, 23026, Some(&jpeg))
            .unwrap();
        assert_eq!(
            query(&token),
            "token=7318cd44d4c40731e3b2ff869f553ab2326eae631868e7b8054db20d4aee1c06"
        );
        // EjabberdV1 signs a given path like V1.
        let ej = store("https://up.example/", Scheme::EjabberdV1)
            .put_url_for(path, 23026, None)
            .unwrap();
        assert_eq!(ej, v1);
    }

    #[test]
    fn issue_upload_default_layout() {
        let s = store("https://up.example/", Scheme::V1);
        let t = s
            .issue_upload(&grant(
                "juliet@capulet.lit",
                "Отчёт 2024.pdf",
                Some(42),
                None,
            ))
            .unwrap();
        assert_eq!(t.object_key, format!("{SLOT_HEX}/Отчёт 2024.pdf"));
        assert_eq!(
            t.get_url.as_str(),
            format!("https://up.example/{SLOT_HEX}/%D0%9E%D1%82%D1%87%D1%91%D1%82%202024.pdf")
        );
        // python: m(SLOT_HEX + "/Отчёт 2024.pdf 42")
        assert_eq!(
            t.put_url.as_str(),
            format!(
                "{}?v=6514ec55f7e9a9a68bd575a2d3f9a2bc5e3fe7613f1d11ae5302f1223b6d1706",
                t.get_url
            )
        );
        assert!(t.required_headers.is_empty());
        assert!(t.slot_headers.is_empty());
        // The decoded URL path is the signed path.
        let segs: Vec<String> = t
            .put_url
            .path_segments()
            .unwrap()
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            })
            .collect();
        assert_eq!(segs.join("/"), t.object_key);
    }

    #[test]
    fn special_characters_cannot_change_path_or_query() {
        let s = store("https://up.example/", Scheme::V1);
        for (name, encoded, mac) in [
            (
                "a#b?c%d e.txt",
                "a%23b%3Fc%25d%20e.txt",
                "701106f9f6d4a5f5586feba0a5ea22b308e7503a3fe3a15f48a1e40cf4015c43",
            ),
            (
                "日本語 ファイル.png",
                "%E6%97%A5%E6%9C%AC%E8%AA%9E%20%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.png",
                "c6b8f50659eb63136644ad730bec3f094c53a63559decd0814ba6329d80f7761",
            ),
        ] {
            let t = s
                .issue_upload(&grant("a@b.c", name, Some(42), None))
                .unwrap();
            assert_eq!(t.put_url.path(), format!("/{SLOT_HEX}/{encoded}"), "{name}");
            assert_eq!(
                t.put_url.query(),
                Some(format!("v={mac}").as_str()),
                "{name}"
            );
            assert_eq!(t.put_url.fragment(), None);
            assert_eq!(t.put_url.path_segments().unwrap().count(), 2);
            assert_eq!(t.get_url.query(), None);
        }
        // '+' and ';' are encoded too, so no server reads them as a space or parameters.
        let u = s.get_url_for("x/a+b;c=d~e_f-g.h").unwrap();
        assert_eq!(u.path(), "/x/a%2Bb%3Bc%3Dd~e_f-g.h");
        // '%2e%2e' stays a literal name, never a dot segment.
        let u = s.get_url_for("x/%2e%2e").unwrap();
        assert_eq!(u.path(), "/x/%252e%252e");
    }

    #[test]
    fn v2_binds_content_type_and_lists_header() {
        let s = store("https://up.example/", Scheme::V2);
        let t = s
            .issue_upload(&grant("a@b.c", "report.pdf", Some(1024), None))
            .unwrap();
        // python: m(SLOT_HEX + "/report.pdf\x001024\x00application/octet-stream")
        assert_eq!(
            query(&t.put_url),
            "v2=b97af7c1ce24c993e6af0e7d5e1bb416d5ce8751057626bbe29fbbf298375478"
        );
        assert_eq!(t.required_headers.len(), 1);
        assert_eq!(t.required_headers[0].name, "Content-Type");
        assert_eq!(t.required_headers[0].value, "application/octet-stream");

        let t = s
            .issue_upload(&grant(
                "a@b.c",
                "catmetal.jpg",
                Some(23026),
                Some("image/jpeg"),
            ))
            .unwrap();
        assert_eq!(t.required_headers[0].value, "image/jpeg");
        let expected = s
            .put_url_for(
                &format!("{SLOT_HEX}/catmetal.jpg"),
                23026,
                Some(&ContentType::new("image/jpeg").unwrap()),
            )
            .unwrap();
        assert_eq!(t.put_url, expected);
        // A different type or size gives a different MAC.
        let other = s
            .put_url_for(
                &format!("{SLOT_HEX}/catmetal.jpg"),
                23026,
                Some(&ContentType::new("image/png").unwrap()),
            )
            .unwrap();
        assert_ne!(t.put_url, other);
        let other = s
            .put_url_for(
                &format!("{SLOT_HEX}/catmetal.jpg"),
                23027,
                Some(&ContentType::new("image/jpeg").unwrap()),
            )
            .unwrap();
        assert_ne!(t.put_url, other);
    }

    /// The MAC covers the `Content-Type` the client's PUT carries, and a client sends the type
    /// it declared in its slot request (XEP-0363 §5), which this crate's normalisation
    /// (`ContentType::as_str`) would change. The servers compare the raw header
    /// (`mod_http_upload_external` protocol; RFC 9110 §5.5 strips only the surrounding
    /// whitespace), so the type is signed as given.
    #[test]
    fn v2_signs_the_type_as_the_client_sends_it() {
        for scheme in [Scheme::V2, Scheme::Token] {
            let s = store("https://up.example/", scheme);
            let param = scheme.query_param();
            for (declared, sent, name, size, mac) in [
                // python: m(SLOT_HEX + "/cat.jpg\x0023026\x00Image/JPEG")
                (
                    "Image/JPEG",
                    "Image/JPEG",
                    "cat.jpg",
                    23026,
                    "1e2ba87820412093a989b8aa3ddf3162e791c97e01ed8ef46f2b5257b3ec02c5",
                ),
                // python: m(SLOT_HEX + "/cat.jpg\x0023026\x00image/jpeg")
                (
                    " image/jpeg\t",
                    "image/jpeg",
                    "cat.jpg",
                    23026,
                    "33e6245a83bc6d661b3052dff44782a11e6726880ce5ebc9afbc818d65ea6d7f",
                ),
                // python: m(SLOT_HEX + '/notes.txt\x005\x00Text/Plain;  Charset="UTF-8"')
                (
                    "Text/Plain;  Charset=\"UTF-8\"",
                    "Text/Plain;  Charset=\"UTF-8\"",
                    "notes.txt",
                    5,
                    "14cd7d0a85eb970a237618067cf952c8f20fbf388938fa3e0d1919ff482c0ba5",
                ),
            ] {
                let t = s
                    .issue_upload(&grant("a@b.c", name, Some(size), Some(declared)))
                    .unwrap();
                assert_eq!(query(&t.put_url), format!("{param}={mac}"), "{declared:?}");
                assert_eq!(t.required_headers.len(), 1);
                assert_eq!(t.required_headers[0].name, "Content-Type");
                assert_eq!(t.required_headers[0].value, sent, "{declared:?}");
            }
            // Not the normalised form: python: m(SLOT_HEX + "/notes.txt\x005\x00text/plain; charset=utf-8")
            let t = s
                .issue_upload(&grant(
                    "a@b.c",
                    "notes.txt",
                    Some(5),
                    Some("Text/Plain;  Charset=\"UTF-8\""),
                ))
                .unwrap();
            assert_ne!(
                query(&t.put_url),
                format!("{param}=d392f7606b666f963e4299682ca21a47fe9b3658e4601181648faa901e0735a6")
            );
        }
    }

    #[test]
    fn base_with_path_prefix() {
        // python: m(SLOT_HEX + "/x.bin 7"): the prefix is not signed.
        let mac = "v=cb78d4e1915f7b37980e2fb343367c06a2625efb9013758677cb95f65eb059e6";
        for base in [
            "https://h.example/upload/",
            "https://h.example/upload",
            "https://h.example/upload//",
        ] {
            let t = store(base, Scheme::V1)
                .issue_upload(&grant("a@b.c", "x.bin", Some(7), None))
                .unwrap();
            assert_eq!(
                t.put_url.as_str(),
                format!("https://h.example/upload/{SLOT_HEX}/x.bin?{mac}"),
                "{base}"
            );
            assert_eq!(
                t.get_url.as_str(),
                format!("https://h.example/upload/{SLOT_HEX}/x.bin"),
                "{base}"
            );
        }
        let t = store("https://h.example", Scheme::V1)
            .issue_upload(&grant("a@b.c", "x.bin", Some(7), None))
            .unwrap();
        assert_eq!(
            t.put_url.as_str(),
            format!("https://h.example/{SLOT_HEX}/x.bin?{mac}")
        );
        let t = store("https://h.example:8443/a/b%20c/", Scheme::V1)
            .issue_upload(&grant("a@b.c", "x.bin", Some(7), None))
            .unwrap();
        assert_eq!(
            t.put_url.as_str(),
            format!("https://h.example:8443/a/b%20c/{SLOT_HEX}/x.bin?{mac}")
        );
    }

    #[test]
    fn ejabberd_layout() {
        let s = store("https://h.example/upload", Scheme::EjabberdV1);
        // ejabberd issue #2897 shows user1@localhost's directory as 83a4e1d2…562e and
        // "Testä,ü.jpg" stored as "Testä_ü.jpg"; python: hashlib.sha1(b"user1@localhost").
        // The JID is normalized first, as ejabberd uses luser/lserver.
        let t = s
            .issue_upload(&grant(
                "User1@LocalHost",
                "Testä,ü.jpg",
                Some(577716),
                Some("image/jpeg"),
            ))
            .unwrap();
        let path = format!("83a4e1d220e89d9dada2f5ba18c86a576e03562e/{SLOT_HEX}/Testä_ü.jpg");
        assert_eq!(t.object_key, path);
        // python: m(path + " 577716")
        assert_eq!(
            t.put_url.as_str(),
            format!(
                "https://h.example/upload/83a4e1d220e89d9dada2f5ba18c86a576e03562e/{SLOT_HEX}/\
                 Test%C3%A4_%C3%BC.jpg?v=aa9ad32df97404c3983e6381c7637770bc67f4a57e7b31d7790de43552fc070c"
            )
        );
        assert!(t.required_headers.is_empty());

        // A domain JID gives "@localhost"; marks are not letters: python
        // ''.join(c if unicodedata.category(c)[0] in 'LN' or c in '_.-' else '_' for c in name)
        let t = s
            .issue_upload(&grant("localhost", "हिन्दी.txt", Some(10), None))
            .unwrap();
        let path = format!("b9271d7e78549de385697cbb549069c86093ff4c/{SLOT_HEX}/ह_न_द_.txt");
        assert_eq!(t.object_key, path);
        assert_eq!(
            query(&t.put_url),
            "v=03c4da87bac3a5fc8d017b1e4b8bcc3541f8e988e68302e63aa60b6e1753f1b0"
        );
    }

    #[test]
    fn ejabberd_sanitizer() {
        for (name, expected) in [
            ("Testä,ü.jpg", "Testä_ü.jpg"),
            ("हिन्दी.txt", "ह_न_द_.txt"),
            ("a+b c(1)~.tar.gz", "a_b_c_1__.tar.gz"),
            ("e\u{301} \u{24B6} ٣ Ⅻ ² é.x", "e____٣_Ⅻ_²_é.x"),
            (
                "Перечень юр лиц и услуг.xlsx",
                "Перечень_юр_лиц_и_услуг.xlsx",
            ),
            ("my-file_v2.0", "my-file_v2.0"),
            ("%2e%2e", "_2e_2e"),
        ] {
            assert_eq!(ejabberd_sanitize(name), expected, "{name}");
        }
    }

    #[test]
    fn letter_or_number_table_is_sorted() {
        let mut prev: Option<u32> = None;
        for &(lo, hi) in NOT_LETTER_OR_NUMBER {
            assert!(lo <= hi);
            if let Some(p) = prev {
                assert!(p < lo);
            }
            prev = Some(hi);
        }
        assert!(!is_letter_or_number('\u{93F}')); // DEVANAGARI VOWEL SIGN I (Mc)
        assert!(!is_letter_or_number('\u{5B0}')); // HEBREW POINT SHEVA (Mn)
        assert!(is_letter_or_number('\u{5D0}')); // HEBREW LETTER ALEF (Lo)
        assert!(is_letter_or_number('\u{2160}')); // ROMAN NUMERAL ONE (Nl)
    }

    #[test]
    fn sha1_fips_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn size_is_required() {
        let s = store("https://up.example/", Scheme::V1);
        assert_eq!(
            s.issue_upload(&grant("a@b.c", "x", None, None)),
            Err(StorageError::SizeRequired)
        );
        // Zero is a size.
        assert!(s.issue_upload(&grant("a@b.c", "x", Some(0), None)).is_ok());
    }

    #[test]
    fn base_url_checks() {
        let g = grant("a@b.c", "x", Some(1), None);
        assert_eq!(
            store("http://up.example/", Scheme::V1)
                .issue_upload(&g)
                .unwrap_err(),
            StorageError::InsecureBaseUrl
        );
        assert!(store("http://up.example/", Scheme::V1)
            .allow_insecure_http(true)
            .issue_upload(&g)
            .is_ok());
        assert!(store("http://127.0.0.1:5050/", Scheme::V1)
            .issue_upload(&g)
            .is_ok());
        assert!(store("http://[::1]/", Scheme::V1).issue_upload(&g).is_ok());
        assert!(store("http://localhost/", Scheme::V1)
            .issue_upload(&g)
            .is_ok());
        assert_eq!(
            store("ftp://up.example/", Scheme::V1)
                .allow_insecure_http(true)
                .issue_upload(&g)
                .unwrap_err(),
            StorageError::InsecureBaseUrl
        );
        for (bad, err) in [
            ("data:text/plain,x", StorageError::InvalidBaseUrl),
            (
                "https://user:pw@up.example/",
                StorageError::BaseUrlCredentials,
            ),
            (
                "https://up.example/?a=b",
                StorageError::BaseUrlQueryOrFragment,
            ),
            (
                "https://up.example/#frag",
                StorageError::BaseUrlQueryOrFragment,
            ),
        ] {
            assert_eq!(
                store(bad, Scheme::V1).issue_upload(&g).unwrap_err(),
                err,
                "{bad}"
            );
            assert_eq!(store(bad, Scheme::V1).validate().unwrap_err(), err, "{bad}");
        }
        let empty = ExternalStore::new(Url::parse("https://up.example/").unwrap(), "", Scheme::V1);
        assert!(matches!(
            empty.issue_upload(&g),
            Err(StorageError::Unsupported(_))
        ));
    }

    #[test]
    fn downloads_and_invalid_paths() {
        let s = store("https://up.example/files/", Scheme::V2);
        let now = OffsetDateTime::UNIX_EPOCH;
        let d = DownloadGrant::new(format!("{SLOT_HEX}/a b.txt"), now, now);
        assert_eq!(
            s.issue_download(&d).unwrap().as_str(),
            format!("https://up.example/files/{SLOT_HEX}/a%20b.txt")
        );
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", "./a", "a/b\\c", "a/b\nc", "a/\u{7f}",
        ] {
            assert!(
                matches!(s.get_url_for(bad), Err(StorageError::InvalidKey(_))),
                "{bad:?}"
            );
            assert!(
                matches!(
                    s.put_url_for(bad, 1, None),
                    Err(StorageError::InvalidKey(_))
                ),
                "{bad:?}"
            );
            let d = DownloadGrant::new(bad.to_owned(), now, now);
            assert!(
                matches!(s.issue_download(&d), Err(StorageError::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_redacts_secret_and_credentials() {
        let s = ExternalStore::new(
            Url::parse("https://bob:hunter2@up.example/x/").unwrap(),
            "s3cr3t-key",
            Scheme::V1,
        );
        let d = format!("{s:?}");
        assert!(!d.contains("s3cr3t"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(!d.contains("bob"), "{d}");
        assert!(d.contains("<redacted>"), "{d}");
        assert!(d.contains("https://up.example/x/"), "{d}");
        // Errors never carry the secret either.
        let e = s
            .issue_upload(&grant("a@b.c", "x", Some(1), None))
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("s3cr3t"));
    }

    #[test]
    fn store_is_send_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<ExternalStore>();
    }
}
