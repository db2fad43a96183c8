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

mod ejabberd;
use ejabberd::ejabberd_path;

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
