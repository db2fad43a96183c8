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
use std::borrow::Cow;

use base64::Engine as _;
use hmac::Mac as _;
use jid::BareJid;
use md5::Md5;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::urls::SEGMENT;
use super::{check_base, DownloadGrant, StorageBackend, StorageError, UploadGrant, UploadTarget};
use crate::checked::encode_md5;
use crate::checked::{ContentType, FileName};
use crate::crypto::{hex, unhex, SecretKey};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const VERSION: &str = "1";
/// Query value encoding: everything but RFC 3986 unreserved characters and `/`, so common
/// values (`image/jpeg`) need no decoding when verified.
const QUERY_VALUE: &percent_encoding::AsciiSet = &SEGMENT.remove(b'/');

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

/// What a verified PUT may store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedPut {
    /// The object key to store under: `{slot id}/{file name}`.
    pub key: String,
    /// The file name (the last segment of the key).
    pub filename: String,
    /// The number of bytes the body must have: the request's `Content-Length`, or the size
    /// bound into the URL when the request declared no length (a chunked body).
    pub size: u64,
    /// The content type bound into the URL, when the slot request declared one: store it and
    /// serve it, whatever the PUT said (`application/octet-stream` when `None`).
    pub content_type: Option<String>,
    /// The SHA-256 the body must have, when bound.
    pub sha256: Option<[u8; 32]>,
    /// The MD5 the body must have, when bound (`p1:http-file-transfer`).
    pub md5: Option<[u8; 16]>,
    /// When the PUT URL expires: a server should not let an upload that started before
    /// run on much past this (finish it by then plus a short grace).
    pub expires: OffsetDateTime,
    /// Who the slot was issued to (bound into the URL), so any HTTP node can record the
    /// upload in the host's [`Inventory`](crate::service::Inventory) without shared state.
    pub owner: Option<BareJid>,
}

impl VerifiedPut {
    /// Checks the request's `Content-MD5` header against the bound MD5: required and equal
    /// when an MD5 is bound, ignored otherwise.
    pub fn check_content_md5(&self, header: Option<&str>) -> Result<(), VerifyError> {
        let Some(expected) = self.md5 else {
            return Ok(());
        };
        let given = header
            .and_then(crate::checked::decode_md5)
            .ok_or(VerifyError::DigestMismatch)?;
        if crate::crypto::ct_eq(&given, &expected) {
            Ok(())
        } else {
            Err(VerifyError::DigestMismatch)
        }
    }

    /// A checker to feed the body through while storing it: it refuses more bytes than
    /// [`VerifiedPut::size`] as soon as they arrive ([`VerifyError::SizeMismatch`], 413) and,
    /// at the end, fewer bytes ([`VerifyError::Incomplete`], 400) or a body whose digest
    /// differs from the bound SHA-256 or MD5 ([`VerifyError::DigestMismatch`], 400). Keep the
    /// stored file only if [`BodyCheck::finish`] succeeds.
    #[must_use]
    pub fn body_check(&self) -> BodyCheck {
        BodyCheck {
            expected_len: self.size,
            seen: 0,
            sha256: self.sha256.map(|d| (Sha256::new(), d)),
            md5: self.md5.map(|d| (Md5::new(), d)),
        }
    }
}

/// Streaming check of a PUT body against a [`VerifiedPut`].
#[derive(Debug, Clone)]
pub struct BodyCheck {
    expected_len: u64,
    seen: u64,
    sha256: Option<(Sha256, [u8; 32])>,
    md5: Option<(Md5, [u8; 16])>,
}

impl BodyCheck {
    /// Feeds a chunk; fails as soon as the body is longer than declared.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), VerifyError> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.expected_len {
            return Err(VerifyError::SizeMismatch {
                expected: self.expected_len,
                actual: self.seen,
            });
        }
        if let Some((h, _)) = &mut self.sha256 {
            h.update(chunk);
        }
        if let Some((h, _)) = &mut self.md5 {
            h.update(chunk);
        }
        Ok(())
    }

    /// The number of body bytes seen so far.
    #[must_use]
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Checks the length and the digests once the body is complete.
    pub fn finish(self) -> Result<(), VerifyError> {
        if self.seen != self.expected_len {
            return Err(VerifyError::Incomplete {
                expected: self.expected_len,
                actual: self.seen,
            });
        }
        if let Some((h, d)) = self.sha256 {
            if !crate::crypto::ct_eq(&h.finalize(), &d) {
                return Err(VerifyError::DigestMismatch);
            }
        }
        if let Some((h, d)) = self.md5 {
            if !crate::crypto::ct_eq(&h.finalize(), &d) {
                return Err(VerifyError::DigestMismatch);
            }
        }
        Ok(())
    }
}

/// What a verified GET may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedGet {
    /// The object key.
    pub key: String,
    /// The file name (the last segment of the key).
    pub filename: String,
    /// When the URL stops working, if it does.
    pub expires: Option<OffsetDateTime>,
}

/// Why a URL was refused. The message never contains the URL, key or signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The URL does not have the form this store issues.
    #[error("malformed signed URL: {0}")]
    Malformed(&'static str),
    /// The URL's path is not below the store's base URL.
    #[error("the URL is not below the store's base URL")]
    NotUnderBase,
    /// The signature does not match: the URL was altered or signed with another key.
    #[error("bad signature")]
    BadSignature,
    /// The URL has expired.
    #[error("the URL has expired")]
    Expired,
    /// The body length differs from the size bound into the URL.
    #[error("size mismatch: the slot is for {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The bound size (or limit).
        expected: u64,
        /// The request's length.
        actual: u64,
    },
    /// The content type differs from the one bound into the URL.
    #[error("content type differs from the one the slot was issued for")]
    TypeMismatch,
    /// The body or its `Content-MD5` does not match the bound digest.
    #[error("the body does not match the digest the slot was issued for")]
    DigestMismatch,
    /// The body ended before reaching the size bound into the URL.
    #[error("the body ended early: the slot is for {expected} bytes, got {actual}")]
    Incomplete {
        /// The bound size.
        expected: u64,
        /// The bytes received.
        actual: u64,
    },
    /// The request declared no length and the URL binds none (only a limit): the body cannot
    /// be checked while it streams.
    #[error("the request must declare its length")]
    LengthRequired,
    /// A request header is malformed (`Content-Length` not a decimal, repeated, or sent with
    /// `Transfer-Encoding`; a header value that is not text).
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    /// The request method is not the one the URL is for.
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl VerifyError {
    /// The HTTP status to answer with: 403 for bad, altered or malformed signatures, 404 off
    /// base, 410 for expired URLs (GET: ask for a fresh URL), 413 for a body over the bound
    /// size, 415 for a type mismatch, 400 for a digest mismatch, a body that ended short or a
    /// malformed header, 411 when a length is required, 405 for another method.
    #[must_use]
    pub const fn status(&self) -> u16 {
        match self {
            VerifyError::Malformed(_) | VerifyError::BadSignature => 403,
            VerifyError::NotUnderBase => 404,
            VerifyError::Expired => 410,
            VerifyError::SizeMismatch { .. } => 413,
            VerifyError::TypeMismatch => 415,
            VerifyError::DigestMismatch
            | VerifyError::Incomplete { .. }
            | VerifyError::BadRequest(_) => 400,
            VerifyError::LengthRequired => 411,
            VerifyError::MethodNotAllowed => 405,
        }
    }
}

/// The parameters of a signed URL's query, borrowed from the URL where no decoding is needed.
#[derive(Default)]
struct Params<'a> {
    v: Option<Cow<'a, str>>,
    size: Option<Cow<'a, str>>,
    max: Option<Cow<'a, str>>,
    ty: Option<Cow<'a, str>>,
    sha256: Option<Cow<'a, str>>,
    md5: Option<Cow<'a, str>>,
    exp: Option<Cow<'a, str>>,
    by: Option<Cow<'a, str>>,
    sig: Option<Cow<'a, str>>,
}

impl<'a> Params<'a> {
    /// Parses `name=value&…` strictly: known names only, each at most once, no empty pairs.
    fn parse(query: &'a str, get_only: bool) -> Result<Self, VerifyError> {
        let mut p = Params::default();
        if query.is_empty() {
            return Ok(p);
        }
        for pair in query.split('&') {
            let (name, value) = pair
                .split_once('=')
                .ok_or(VerifyError::Malformed("query parameter without value"))?;
            let slot = match name {
                "exp" => &mut p.exp,
                "sig" => &mut p.sig,
                "v" if !get_only => &mut p.v,
                "size" if !get_only => &mut p.size,
                "max" if !get_only => &mut p.max,
                "type" if !get_only => &mut p.ty,
                "sha256" if !get_only => &mut p.sha256,
                "md5" if !get_only => &mut p.md5,
                "by" if !get_only => &mut p.by,
                _ => return Err(VerifyError::Malformed("unknown query parameter")),
            };
            if slot.replace(form_decode(value)?).is_some() {
                return Err(VerifyError::Malformed("repeated query parameter"));
            }
        }
        Ok(p)
    }
}

/// Decodes an `application/x-www-form-urlencoded` value (`+` is a space), borrowing when
/// there is nothing to decode.
fn form_decode(v: &str) -> Result<Cow<'_, str>, VerifyError> {
    if !v.contains(['%', '+']) {
        return Ok(Cow::Borrowed(v));
    }
    let spaced = v.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| Cow::Owned(c.into_owned()))
        .map_err(|_| VerifyError::Malformed("query value is not UTF-8"))
}

/// Decodes a base64url signature into 32 bytes.
fn decode_sig(sig: &str) -> Result<[u8; 32], VerifyError> {
    let mut out = [0u8; 32];
    // A 32-byte signature is 43 characters; anything else cannot be one.
    if sig.len() != 43 || B64URL.decode_slice(sig, &mut out) != Ok(32) {
        return Err(VerifyError::Malformed(
            "signature is not 32 bytes of base64url",
        ));
    }
    Ok(out)
}

/// Parses a decimal that this store wrote (no sign, no leading zeros beyond "0").
fn parse_num(s: &str) -> Result<u64, VerifyError> {
    if s.len() > 1 && s.starts_with('0') {
        return Err(VerifyError::Malformed("non-canonical number"));
    }
    crate::checked::parse_size(s).map_err(|_| VerifyError::Malformed("bad number"))
}

impl SignedUrlStore {
    /// A store issuing URLs below `base_url`, signed with `key` (use at least 32 random
    /// bytes; the HTTP server that verifies needs the same key). The base must be `https`,
    /// or `http` on a loopback host, unless [`SignedUrlStore::allow_insecure_http`] is set;
    /// otherwise issuing fails with [`StorageError::InsecureBaseUrl`].
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

    /// `{base}/{id}/{name}?` as a string, each segment percent-encoded (everything but RFC 3986
    /// unreserved characters), ready for the query: the URL is parsed once, at the end.
    fn object_url_prefix(&self, key: &str) -> Result<String, StorageError> {
        let (id, name) =
            split_key(key).ok_or(StorageError::InvalidKey("not {slot id}/{file name}"))?;
        let mut out = self.url_start(key.len() + 160)?;
        out.push_str(id);
        out.push('/');
        super::urls::push_segment(&mut out, name.as_bytes());
        out.push('?');
        Ok(out)
    }

    /// The base URL, checked, as a string with room for `extra` more bytes.
    fn url_start(&self, extra: usize) -> Result<String, StorageError> {
        check_base(&self.base, self.allow_http)?;
        let mut out = String::with_capacity(self.base_prefix.len() + extra * 3);
        out.push_str(&self.base_prefix);
        Ok(out)
    }

    fn finish_url(mut url: String, sig: &[u8; 32]) -> Result<Url, StorageError> {
        url.push_str("sig=");
        url.push_str(&B64URL.encode(sig));
        Url::parse(&url).map_err(|_| StorageError::InvalidBaseUrl)
    }

    /// Issues a signed GET URL for `key`, valid until `expires` (`None`: no expiry):
    /// `{base}/{slot id}/{sig}/{file name}` or `{base}/{slot id}/{expiry}.{sig}/{file name}`,
    /// with no query string, so the link ends with the file name and its extension.
    ///
    /// ```
    /// use xmpp_upload::storage::signed::SignedUrlStore;
    /// let store = SignedUrlStore::new("https://files.example/up/".parse()?, *b"a key of 32 random bytes........");
    /// let url = store.sign_get("0123456789abcdef0123456789abcdef/Отчёт 1.pdf", None)?;
    /// assert_eq!(url.query(), None);
    /// assert!(url.path().ends_with("/%D0%9E%D1%82%D1%87%D1%91%D1%82%201.pdf"));
    /// let now = time::OffsetDateTime::now_utc();
    /// assert_eq!(store.verify_get(&url, now)?.filename, "Отчёт 1.pdf");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign_get(
        &self,
        key: &str,
        expires: Option<OffsetDateTime>,
    ) -> Result<Url, StorageError> {
        let (id, name) =
            split_key(key).ok_or(StorageError::InvalidKey("not {slot id}/{file name}"))?;
        let mut url = self.url_start(key.len() + 80)?;
        let exp = expires
            .map(|t| t.unix_timestamp().to_string())
            .unwrap_or_default();
        let sig =
            self.key
                .sign_fields(&[b"GET", VERSION.as_bytes(), key.as_bytes(), exp.as_bytes()]);
        url.push_str(id);
        url.push('/');
        if !exp.is_empty() {
            url.push_str(&exp);
            url.push('.');
        }
        url.push_str(&B64URL.encode(sig));
        url.push('/');
        super::urls::push_segment(&mut url, name.as_bytes());
        Url::parse(&url).map_err(|_| StorageError::InvalidBaseUrl)
    }

    /// Checks a PUT: the URL's signature and expiry, then the request's `Content-Length`
    /// against the bound size and its `Content-Type` against the bound type. The scheme and
    /// host are not checked, so a server behind a proxy can pass the URL it sees; the path must
    /// be below the base URL's path.
    ///
    /// # Content type
    /// A PUT without `Content-Type` is accepted: the slot's bound type is what the server
    /// stores and serves ([`VerifiedPut::content_type`]; XEP-0363 lets a service assume
    /// `application/octet-stream`, and Libervia, say, sends none). A PUT *with* a type must
    /// match the bound type by its normalised essence (`type/subtype`, ASCII case-insensitive,
    /// surrounding whitespace and parameters ignored), else [`VerifyError::TypeMismatch`]
    /// (415): `image/JPEG; q=1` matches a slot for `image/jpeg`, `image/png` or
    /// `image/jpeg, text/html` does not. When the slot bound no type, any `Content-Type` is
    /// accepted and the file is served as `application/octet-stream`: the uploader never
    /// chooses the served type past the service's allow-list.
    ///
    /// On success, feed the body through [`VerifiedPut::body_check`] (and check
    /// `Content-MD5` with [`VerifiedPut::check_content_md5`] when an MD5 is bound). For a
    /// request without `Content-Length` (chunked), use [`SignedUrlStore::verify_put_request`].
    pub fn verify_put(
        &self,
        url: &Url,
        content_length: u64,
        content_type: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<VerifiedPut, VerifyError> {
        self.verify_put_request(url, Some(content_length), content_type, now)
    }

    /// [`SignedUrlStore::verify_put`] for a request that may not declare its length: with
    /// `content_length` `None` (a chunked HTTP/1.1 body, as the xmpp-rs `xmpp` crate sends, or
    /// HTTP/2 without `content-length`), the size bound into the URL becomes
    /// [`VerifiedPut::size`], which [`VerifiedPut::body_check`] then enforces while the body
    /// streams: 413 as soon as it goes over, 400 when it ends short. A URL that binds only a
    /// limit (a `p1:http-file-transfer` upload without a declared size) needs a length:
    /// [`VerifyError::LengthRequired`] (411).
    ///
    /// ```
    /// # use xmpp_upload::storage::signed::{SignedUrlStore, VerifyError};
    /// # use xmpp_upload::{ServiceConfig, SlotService, stanza::upload::SlotRequest};
    /// # let store = SignedUrlStore::new("https://files.example/".parse()?, *b"a key of 32 random bytes........");
    /// # let service = SlotService::new(ServiceConfig::new("upload.example.org".parse()?, *b"32 bytes of host secret........."), store);
    /// # let now = time::OffsetDateTime::now_utc();
    /// # let slot = service.request_slot(&"romeo@example.org/a".parse()?, &SlotRequest::new("a.txt", 5).with_content_type("text/plain"), "id", now)?.slot;
    /// // A chunked PUT without Content-Type: the bound size and type apply.
    /// let put = service.storage().verify_put_request(&slot.put, None, None, now)?;
    /// assert_eq!((put.size, put.content_type.as_deref()), (5, Some("text/plain")));
    /// let mut check = put.body_check();
    /// check.update(b"hell")?;
    /// assert!(matches!(check.clone().finish(), Err(VerifyError::Incomplete { .. })));
    /// assert!(matches!(check.update(b"oo"), Err(VerifyError::SizeMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_put_request(
        &self,
        url: &Url,
        content_length: Option<u64>,
        content_type: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<VerifiedPut, VerifyError> {
        let (id, name) = self.key_of(url)?;
        let p = Params::parse(url.query().unwrap_or_default(), false)?;
        if p.v.as_deref() != Some(VERSION) {
            return Err(VerifyError::Malformed("missing or unknown version"));
        }
        let sig = decode_sig(
            p.sig
                .as_deref()
                .ok_or(VerifyError::Malformed("missing signature"))?,
        )?;
        let exp = p
            .exp
            .as_deref()
            .ok_or(VerifyError::Malformed("missing expiry"))?;
        let mut mac = self.key.mac();
        feed(&mut mac, b"PUT");
        feed(&mut mac, VERSION.as_bytes());
        feed_key(&mut mac, id, &name);
        for f in [&p.size, &p.max, &p.ty, &p.sha256, &p.md5]
            .map(|v| field(v.as_ref()))
            .into_iter()
            .chain([exp.as_bytes(), field(p.by.as_ref())])
        {
            feed(&mut mac, f);
        }
        if mac.verify_slice(&sig).is_err() {
            return Err(VerifyError::BadSignature);
        }
        // Only values this store signed reach this point; they are still parsed defensively.
        let exp =
            i64::try_from(parse_num(exp)?).map_err(|_| VerifyError::Malformed("bad expiry"))?;
        if now.unix_timestamp() >= exp {
            return Err(VerifyError::Expired);
        }
        let expires = OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|_| VerifyError::Malformed("bad expiry"))?;
        let size = match (p.size.as_deref(), p.max.as_deref(), content_length) {
            (Some(size), None, len) => {
                let size = parse_num(size)?;
                match len {
                    Some(len) if len != size => {
                        return Err(VerifyError::SizeMismatch {
                            expected: size,
                            actual: len,
                        })
                    }
                    _ => size,
                }
            }
            (None, Some(max), Some(len)) => {
                let max = parse_num(max)?;
                if len > max {
                    return Err(VerifyError::SizeMismatch {
                        expected: max,
                        actual: len,
                    });
                }
                len
            }
            (None, Some(_), None) => return Err(VerifyError::LengthRequired),
            _ => return Err(VerifyError::Malformed("size binding")),
        };
        if let (Some(bound), Some(given)) = (p.ty.as_deref(), content_type) {
            // Both parsed as RFC 9110 media types (a `,` refuses) and compared by essence.
            let given = ContentType::new(given).map_err(|_| VerifyError::TypeMismatch)?;
            if !given.essence().eq_ignore_ascii_case(essence(bound)) {
                return Err(VerifyError::TypeMismatch);
            }
        }
        let sha256 = match p.sha256.as_deref() {
            Some(h) => Some(unhex::<32>(h).ok_or(VerifyError::Malformed("sha256"))?),
            None => None,
        };
        let md5 = match p.md5.as_deref() {
            Some(h) => Some(unhex::<16>(h).ok_or(VerifyError::Malformed("md5"))?),
            None => None,
        };
        let owner = match p.by.as_deref() {
            Some(by) => Some(BareJid::new(by).map_err(|_| VerifyError::Malformed("owner"))?),
            None => None,
        };
        Ok(VerifiedPut {
            key: join_key(id, &name),
            filename: name.into_owned(),
            size,
            content_type: p.ty.map(Cow::into_owned),
            sha256,
            md5,
            expires,
            owner,
        })
    }

    /// Checks a GET URL's signature and expiry: the path form this store issues
    /// (`{base}/{slot id}/{sig}/{file name}`, `{base}/{slot id}/{expiry}.{sig}/{file name}`,
    /// no query) or the older query form (`{base}/{key}?sig=…`). The MAC is compared in
    /// constant time; the error says what was wrong, never with the URL in it.
    pub fn verify_get(&self, url: &Url, now: OffsetDateTime) -> Result<VerifiedGet, VerifyError> {
        let mut segs = self.below_base(url)?;
        let (id, name, exp, sig) = match (segs.next(), segs.next(), segs.next(), segs.next()) {
            (Some(id), Some(tag), Some(name), None) => {
                if url.query().is_some() {
                    return Err(VerifyError::Malformed("query on a path-signed GET URL"));
                }
                let (exp, sig) = match tag.split_once('.') {
                    Some((exp, sig)) => (Some(Cow::Borrowed(exp)), sig),
                    None => (None, tag),
                };
                (id, name, exp, Cow::Borrowed(sig))
            }
            (Some(id), Some(name), None, None) => {
                let p = Params::parse(url.query().unwrap_or_default(), true)?;
                let sig = p.sig.ok_or(VerifyError::Malformed("missing signature"))?;
                (id, name, p.exp, sig)
            }
            _ => {
                return Err(VerifyError::Malformed(
                    "path is not {slot id}/[{sig}/]{file name}",
                ))
            }
        };
        let (id, name) = check_key_segments(id, name)?;
        let sig = decode_sig(&sig)?;
        let exp_s = exp.as_deref().unwrap_or_default();
        // The expiry's form is checked before the MAC; whether it has passed, after.
        let expires = match exp.as_deref() {
            None => None,
            Some(e) => {
                let secs = i64::try_from(parse_num(e)?)
                    .map_err(|_| VerifyError::Malformed("bad expiry"))?;
                Some(
                    OffsetDateTime::from_unix_timestamp(secs)
                        .map_err(|_| VerifyError::Malformed("bad expiry"))?,
                )
            }
        };
        let mut mac = self.key.mac();
        feed(&mut mac, b"GET");
        feed(&mut mac, VERSION.as_bytes());
        feed_key(&mut mac, id, &name);
        feed(&mut mac, exp_s.as_bytes());
        if mac.verify_slice(&sig).is_err() {
            return Err(VerifyError::BadSignature);
        }
        if expires.is_some_and(|t| now >= t) {
            return Err(VerifyError::Expired);
        }
        Ok(VerifiedGet {
            key: join_key(id, &name),
            filename: name.into_owned(),
            expires,
        })
    }

    /// The path segments of a URL below the base URL's path.
    fn below_base<'u>(&self, url: &'u Url) -> Result<core::str::Split<'u, char>, VerifyError> {
        let mut segs = url.path_segments().ok_or(VerifyError::NotUnderBase)?;
        for base in &self.base_segments {
            if segs.next() != Some(base.as_str()) {
                return Err(VerifyError::NotUnderBase);
            }
        }
        Ok(segs)
    }

    /// The object key of a PUT URL: the slot ID (32 lower-case hex digits) and the
    /// percent-decoded file name below the base path; the name must be a valid file name.
    fn key_of<'u>(&self, url: &'u Url) -> Result<(&'u str, Cow<'u, str>), VerifyError> {
        let mut segs = self.below_base(url)?;
        let (Some(id), Some(name), None) = (segs.next(), segs.next(), segs.next()) else {
            return Err(VerifyError::Malformed("path is not {slot id}/{file name}"));
        };
        check_key_segments(id, name)
    }
}

/// Checks a slot ID segment (32 lower-case hex digits) and decodes a file-name segment (UTF-8,
/// a valid [`FileName`]).
fn check_key_segments<'u>(
    id: &'u str,
    name: &'u str,
) -> Result<(&'u str, Cow<'u, str>), VerifyError> {
    if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(VerifyError::Malformed("slot id"));
    }
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .map_err(|_| VerifyError::Malformed("path is not UTF-8"))?;
    FileName::check(&name).map_err(|_| VerifyError::Malformed("file name"))?;
    Ok((id, name))
}

/// `{id}/{name}`.
fn join_key(id: &str, name: &str) -> String {
    let mut key = String::with_capacity(id.len() + 1 + name.len());
    key.push_str(id);
    key.push('/');
    key.push_str(name);
    key
}

/// A parameter's bytes, empty when absent.
fn field<'a>(f: Option<&'a Cow<'_, str>>) -> &'a [u8] {
    f.map_or(&[][..], |v| v.as_bytes())
}

/// The `type/subtype` of a content type.
fn essence(t: &str) -> &str {
    t.split(';').next().unwrap_or_default().trim()
}

/// Feeds one length-prefixed field, as [`SecretKey::sign_fields`] does.
fn feed(mac: &mut crate::crypto::HmacSha256, field: &[u8]) {
    use hmac::Mac as _;
    mac.update(&(field.len() as u64).to_be_bytes());
    mac.update(field);
}

/// Feeds the key field `{id}/{name}` without building it.
fn feed_key(mac: &mut crate::crypto::HmacSha256, id: &str, name: &str) {
    use hmac::Mac as _;
    let len = id.len() + 1 + name.len();
    mac.update(&(len as u64).to_be_bytes());
    mac.update(id.as_bytes());
    mac.update(b"/");
    mac.update(name.as_bytes());
}

/// Splits `{32 hex}/{file name}`.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let (id, name) = key.split_once('/')?;
    if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    FileName::new(name).ok()?;
    Some((id, name))
}

impl StorageBackend for SignedUrlStore {
    fn validate(&self) -> Result<(), StorageError> {
        super::check_key_len(self.key.len())?;
        check_base(&self.base, self.allow_http)
    }

    fn issue_upload(&self, grant: &UploadGrant) -> Result<UploadTarget, StorageError> {
        let key = grant.key();
        let mut put = self.object_url_prefix(key)?;
        let exp = grant.put_expires().unix_timestamp().to_string();
        let (size, max) = match grant.size() {
            Some(s) => (s.to_string(), String::new()),
            None => (String::new(), grant.max_size().to_string()),
        };
        let ty = grant
            .content_type()
            .map(ContentType::as_str)
            .unwrap_or_default();
        let sha256 = grant.sha256().map(|d| hex(d)).unwrap_or_default();
        let md5 = grant.md5().map(|d| hex(d)).unwrap_or_default();
        let owner = grant.requester().as_str();
        // The fields `verify_put_request` feeds, in the same order.
        let sig = self.key.sign_fields(&[
            b"PUT",
            VERSION.as_bytes(),
            key.as_bytes(),
            size.as_bytes(),
            max.as_bytes(),
            ty.as_bytes(),
            sha256.as_bytes(),
            md5.as_bytes(),
            exp.as_bytes(),
            owner.as_bytes(),
        ]);
        put.push_str("v=");
        put.push_str(VERSION);
        for (name, value) in [
            ("size", size.as_str()),
            ("max", &max),
            ("type", ty),
            ("sha256", &sha256),
            ("md5", &md5),
            ("exp", &exp),
            ("by", owner),
        ] {
            if !value.is_empty() {
                put.push('&');
                put.push_str(name);
                put.push('=');
                put.extend(percent_encoding::utf8_percent_encode(value, QUERY_VALUE));
            }
        }
        put.push('&');
        let put = Self::finish_url(put, &sig)?;
        let get = self.sign_get(key, grant.get_expires())?;
        let mut target = UploadTarget::new(put, get, key);
        if let Some(t) = grant.content_type() {
            target = target.with_required_header("Content-Type", t.as_str());
        }
        if let Some(m) = grant.md5() {
            target = target.with_required_header("Content-MD5", &encode_md5(m));
        }
        Ok(target)
    }

    fn issue_download(&self, grant: &DownloadGrant) -> Result<Url, StorageError> {
        self.sign_get(grant.key(), Some(grant.expires()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checked::{ContentType, FileName};
    use crate::storage::CheckedUpload;
    use time::Duration;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn grant(name: &str, size: u64, ty: Option<&str>) -> UploadGrant {
        UploadGrant::new(CheckedUpload {
            slot_id: [0xab; 16],
            filename: FileName::new(name).unwrap(),
            size: Some(size),
            max_size: size,
            content_type: ty.map(|t| ContentType::new(t).unwrap()),
            sha256: None,
            md5: None,
            requester: "romeo@montague.tld".parse().unwrap(),
            now: now(),
            put_expires: now() + Duration::seconds(300),
            get_expires: None,
        })
    }

    fn store() -> SignedUrlStore {
        SignedUrlStore::new("https://files.example/up/".parse().unwrap(), "k".repeat(32))
    }

    #[test]
    fn put_url_verifies_and_binds() {
        let s = store();
        let t = s
            .issue_upload(&grant("my juliet.jpg", 23456, Some("image/jpeg")))
            .unwrap();
        assert!(t
            .put_url
            .as_str()
            .starts_with("https://files.example/up/abababab"));
        assert!(t.put_url.path().ends_with("/my%20juliet.jpg"));
        let v = s
            .verify_put(&t.put_url, 23456, Some("image/jpeg"), now())
            .unwrap();
        assert_eq!(v.filename, "my juliet.jpg");
        assert_eq!(v.key, format!("{}/my juliet.jpg", "ab".repeat(16)));
        assert_eq!(v.expires, now() + Duration::seconds(300));
        assert!(matches!(
            s.verify_put(&t.put_url, 23457, Some("image/jpeg"), now()),
            Err(VerifyError::SizeMismatch { .. })
        ));
        assert_eq!(
            s.verify_put(&t.put_url, 23456, Some("image/png"), now()),
            Err(VerifyError::TypeMismatch)
        );
        // A PUT without Content-Type is accepted: the bound type is what gets stored.
        let untyped = s.verify_put(&t.put_url, 23456, None, now()).unwrap();
        assert_eq!(untyped.content_type.as_deref(), Some("image/jpeg"));
        // The essence is compared, normalised; a list of types is not a type.
        assert!(s
            .verify_put(&t.put_url, 23456, Some(" Image/JPEG ; q=1"), now())
            .is_ok());
        assert_eq!(
            s.verify_put(&t.put_url, 23456, Some("image/jpeg, text/html"), now()),
            Err(VerifyError::TypeMismatch)
        );
        assert_eq!(
            s.verify_put(
                &t.put_url,
                23456,
                Some("image/jpeg"),
                now() + Duration::seconds(300)
            ),
            Err(VerifyError::Expired)
        );
        let other =
            SignedUrlStore::new("https://files.example/up/".parse().unwrap(), "x".repeat(32));
        assert_eq!(
            other.verify_put(&t.put_url, 23456, Some("image/jpeg"), now()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn get_url_verifies() {
        let s = store();
        let t = s.issue_upload(&grant("Отчёт.pdf", 1, None)).unwrap();
        let g = s
            .verify_get(&t.get_url, now() + Duration::days(3650))
            .unwrap();
        assert_eq!(g.filename, "Отчёт.pdf");
        assert_eq!(g.expires, None);
        assert!(t.get_url.as_str().is_ascii());
        // No query: the link ends with the percent-encoded name, the MAC is a path segment.
        assert_eq!(t.get_url.query(), None);
        assert!(t
            .get_url
            .as_str()
            .ends_with("/%D0%9E%D1%82%D1%87%D1%91%D1%82.pdf"));
        let segs: Vec<&str> = t.get_url.path_segments().unwrap().collect();
        assert_eq!(segs.len(), 4, "{segs:?}");
        assert_eq!(segs[1], "ab".repeat(16));
        assert_eq!(segs[2].len(), 43);
        // A PUT URL is not a GET URL and vice versa.
        assert!(s.verify_get(&t.put_url, now()).is_err());
        assert!(s.verify_put(&t.get_url, 1, None, now()).is_err());
    }

    #[test]
    fn get_url_with_expiry_keeps_it_in_the_path() {
        let s = store();
        let key = format!("{}/clip.mp4", "ab".repeat(16));
        let exp = now() + Duration::hours(1);
        let u = s.sign_get(&key, Some(exp)).unwrap();
        assert_eq!(u.query(), None);
        assert!(u.path().ends_with("/clip.mp4"));
        let tag = u.path_segments().unwrap().nth(2).unwrap().to_owned();
        assert_eq!(
            tag.split_once('.').map(|(e, _)| e.to_owned()),
            Some(exp.unix_timestamp().to_string())
        );
        assert_eq!(s.verify_get(&u, now()).unwrap().expires, Some(exp));
        assert_eq!(s.verify_get(&u, exp), Err(VerifyError::Expired));
        // The expiry moved, dropped, or the tag of the undated link: refused.
        let later = tag.replacen(&exp.unix_timestamp().to_string(), "1900000000", 1);
        let undated = tag.split_once('.').unwrap().1.to_owned();
        for forged in [later, undated] {
            let mut f = u.clone();
            f.set_path(&u.path().replacen(&tag, &forged, 1));
            assert_eq!(
                s.verify_get(&f, now()),
                Err(VerifyError::BadSignature),
                "{forged}"
            );
        }
        // A query added to a path-signed link: refused.
        let mut q = u.clone();
        q.set_query(Some("exp=1"));
        assert!(matches!(
            s.verify_get(&q, now()),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn get_url_forgeries_in_the_path_are_refused() {
        let s = store();
        let key = format!("{}/a.jpg", "ab".repeat(16));
        let u = s.sign_get(&key, None).unwrap();
        let path = u.path().to_owned();
        let sig = u.path_segments().unwrap().nth(2).unwrap().to_owned();
        let other = s
            .sign_get(&format!("{}/a.jpg", "cd".repeat(16)), None)
            .unwrap();
        let other_sig = other.path_segments().unwrap().nth(2).unwrap().to_owned();
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let cases: Vec<(String, VerifyError)> = vec![
            // Another file name in the same slot.
            (
                path.replacen("/a.jpg", "/a.html", 1),
                VerifyError::BadSignature,
            ),
            // Another slot with this MAC.
            (
                path.replacen(&"ab".repeat(16), &"cd".repeat(16), 1),
                VerifyError::BadSignature,
            ),
            // Another slot's MAC, or one character changed.
            (
                path.replacen(&sig, &other_sig, 1),
                VerifyError::BadSignature,
            ),
            (path.replacen(&sig, &flipped, 1), VerifyError::BadSignature),
            // Truncated or extended MAC.
            (
                path.replacen(&sig, &sig[..42], 1),
                VerifyError::Malformed(""),
            ),
            (
                path.replacen(&sig, &format!("{sig}A"), 1),
                VerifyError::Malformed(""),
            ),
            // An empty or non-numeric expiry prefix.
            (
                path.replacen(&sig, &format!(".{sig}"), 1),
                VerifyError::Malformed(""),
            ),
            (
                path.replacen(&sig, &format!("x.{sig}"), 1),
                VerifyError::Malformed(""),
            ),
            // Encoded slash, dot segments, upper-case slot id, an extra segment.
            (
                path.replacen("/a.jpg", "%2Fa.jpg", 1),
                VerifyError::Malformed(""),
            ),
            (
                path.replacen("/a.jpg", "/..%2Fa.jpg", 1),
                VerifyError::Malformed(""),
            ),
            (
                path.replacen(&"ab".repeat(16), &"AB".repeat(16), 1),
                VerifyError::Malformed(""),
            ),
            (format!("{path}/x"), VerifyError::Malformed("")),
        ];
        for (forged, want) in cases {
            let mut f = u.clone();
            f.set_path(&forged);
            let got = s.verify_get(&f, now());
            match want {
                VerifyError::Malformed(_) => {
                    assert!(
                        matches!(got, Err(VerifyError::Malformed(_))),
                        "{forged}: {got:?}"
                    )
                }
                want => assert_eq!(got, Err(want), "{forged}"),
            }
        }
        // Another key: refused.
        let other_key =
            SignedUrlStore::new("https://files.example/up/".parse().unwrap(), "x".repeat(32));
        assert_eq!(
            other_key.verify_get(&u, now()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn legacy_query_get_urls_still_verify() {
        let s = store();
        let key = format!("{}/a b.jpg", "ab".repeat(16));
        let sig =
            B64URL.encode(
                s.key
                    .sign_fields(&[b"GET", VERSION.as_bytes(), key.as_bytes(), b""]),
            );
        let u: Url = format!(
            "https://files.example/up/{}/a%20b.jpg?sig={sig}",
            "ab".repeat(16)
        )
        .parse()
        .unwrap();
        assert_eq!(s.verify_get(&u, now()).unwrap().key, key);
        let mut f = u.clone();
        f.set_query(Some(&format!("exp=1999999999&sig={sig}")));
        assert_eq!(s.verify_get(&f, now()), Err(VerifyError::BadSignature));
    }

    #[test]
    fn chunked_put_takes_the_bound_size() {
        let s = store();
        let t = s.issue_upload(&grant("a.bin", 4, None)).unwrap();
        let v = s.verify_put_request(&t.put_url, None, None, now()).unwrap();
        assert_eq!(v.size, 4);
        let mut c = v.body_check();
        c.update(b"abc").unwrap();
        assert_eq!(
            c.clone().finish(),
            Err(VerifyError::Incomplete {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            VerifyError::Incomplete {
                expected: 4,
                actual: 3
            }
            .status(),
            400
        );
        assert!(matches!(
            c.update(b"de"),
            Err(VerifyError::SizeMismatch { .. })
        ));
        // A slot bound only by a limit needs a declared length.
        let mut g = grant("b.bin", 4, None);
        g.size = None;
        g.md5 = Some([1; 16]);
        let t = s.issue_upload(&g).unwrap();
        assert_eq!(
            s.verify_put_request(&t.put_url, None, None, now()),
            Err(VerifyError::LengthRequired)
        );
        assert!(s
            .verify_put_request(&t.put_url, Some(3), None, now())
            .is_ok());
    }

    #[test]
    fn debug_hides_credentials_and_signed_queries() {
        let s = SignedUrlStore::new(
            "https://user:hunter2@f.example/up/?token=abc#frag"
                .parse()
                .unwrap(),
            "k".repeat(32),
        );
        let d = format!("{s:?}");
        assert!(
            !d.contains("hunter2") && !d.contains("user") && !d.contains("abc"),
            "{d}"
        );
        assert!(d.contains("f.example/up/"), "{d}");
        let t = store()
            .issue_upload(&grant("a.jpg", 1, Some("image/jpeg")))
            .unwrap();
        let d = format!("{t:?}");
        let sig = t
            .put_url
            .query_pairs()
            .find(|(k, _)| k == "sig")
            .unwrap()
            .1
            .into_owned();
        assert!(!d.contains(&sig) && !d.contains("exp="), "{d}");
        assert!(d.contains("/a.jpg?…"), "{d}");
    }

    #[test]
    fn insecure_base_is_refused_unless_loopback_or_allowed() {
        let g = grant("a", 1, None);
        let s = SignedUrlStore::new("http://files.example/".parse().unwrap(), "k");
        assert_eq!(s.issue_upload(&g), Err(StorageError::InsecureBaseUrl));
        assert!(s.allow_insecure_http(true).issue_upload(&g).is_ok());
        let s = SignedUrlStore::new("http://127.0.0.1:8080/".parse().unwrap(), "k");
        assert!(s.issue_upload(&g).is_ok());
    }

    #[test]
    fn debug_redacts_the_key() {
        let s = SignedUrlStore::new("https://f.example/".parse().unwrap(), "supersecretkey");
        assert!(!format!("{s:?}").contains("supersecret"));
        assert!(format!("{s:?}").contains("https://f.example/"));
    }

    #[test]
    fn body_check_enforces_length_and_digests() {
        let v = VerifiedPut {
            key: String::new(),
            filename: String::new(),
            size: 3,
            content_type: None,
            sha256: Some(crate::crypto::sha256(b"abc")),
            md5: None,
            expires: now(),
            owner: None,
        };
        let mut c = v.body_check();
        c.update(b"ab").unwrap();
        c.update(b"c").unwrap();
        c.clone().finish().unwrap();
        assert!(c.update(b"d").is_err());
        let mut c = v.body_check();
        c.update(b"abd").unwrap();
        assert_eq!(c.finish(), Err(VerifyError::DigestMismatch));
    }
}
