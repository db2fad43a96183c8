//! Verifying: what the HTTP server calls for each PUT and GET, and what a verified request
//! may store or serve.

use std::borrow::Cow;

use base64::Engine as _;
use hmac::Mac as _;
use jid::BareJid;
use time::OffsetDateTime;
use url::Url;

use super::{SignedUrlStore, B64URL, VERSION};
use crate::checked::{ContentType, FileName};
use crate::crypto::unhex;

/// What a verified PUT may store. It borrows from the verified URL where nothing had to be
/// decoded (the key and file name of the path, the bound type and owner of the query), so a
/// verification allocates nothing in the common case; [`VerifiedPut::into_owned`] detaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedPut<'u> {
    /// The object key to store under: `{slot id}/{file name}`.
    pub key: Cow<'u, str>,
    /// The file name (the last segment of the key).
    pub filename: Cow<'u, str>,
    /// The number of bytes the body must have: the request's `Content-Length`, or the size
    /// bound into the URL when the request declared no length (a chunked body).
    pub size: u64,
    /// The content type bound into the URL, when the slot request declared one: store it and
    /// serve it, whatever the PUT said (`application/octet-stream` when `None`).
    pub content_type: Option<Cow<'u, str>>,
    /// The SHA-256 the body must have, when bound.
    pub sha256: Option<[u8; 32]>,
    /// The MD5 the body must have, when bound (`p1:http-file-transfer`).
    pub md5: Option<[u8; 16]>,
    /// When the PUT URL expires: a server should not let an upload that started before
    /// run on much past this (finish it by then plus a short grace).
    pub expires: OffsetDateTime,
    /// The bound owner, as the service wrote it (a normalised bare JID).
    pub(super) by: Option<Cow<'u, str>>,
}

impl VerifiedPut<'_> {
    /// Who the slot was issued to (bound into the URL), so any HTTP node can record the
    /// upload in the host's [`Inventory`](crate::service::Inventory) without shared state.
    /// `None` for a URL that binds no owner.
    ///
    /// The JID is parsed here, not during verification (a server that records nothing does
    /// not pay for it); it is the service's own normalised text, authenticated by the
    /// signature, so it always parses.
    #[must_use]
    pub fn owner(&self) -> Option<BareJid> {
        self.by.as_deref().and_then(|by| BareJid::new(by).ok())
    }

    /// [`VerifiedPut::owner`] as the bound text, without parsing it.
    #[must_use]
    pub fn owner_str(&self) -> Option<&str> {
        self.by.as_deref()
    }

    /// The same value, owning its strings (to keep it past the URL it was verified from).
    #[must_use]
    pub fn into_owned(self) -> VerifiedPut<'static> {
        VerifiedPut {
            key: Cow::Owned(self.key.into_owned()),
            filename: Cow::Owned(self.filename.into_owned()),
            size: self.size,
            content_type: self.content_type.map(|t| Cow::Owned(t.into_owned())),
            sha256: self.sha256,
            md5: self.md5,
            expires: self.expires,
            by: self.by.map(|b| Cow::Owned(b.into_owned())),
        }
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
    /// The store's key is shorter than [`MIN_KEY_LEN`](crate::storage::MIN_KEY_LEN) bytes:
    /// anyone could mint URLs it would accept, so it verifies nothing (a configuration error,
    /// which [`SlotService::try_new`](crate::SlotService::try_new) reports at start).
    #[error("the store's key is too short to verify URLs")]
    KeyTooShort,
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
            VerifyError::KeyTooShort => 500,
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
        // One pass over the bytes: pairs end at `&`, the name at the first `=`, and a `%` or
        // `+` marks a value to decode. Every split is at an ASCII byte, a character boundary.
        let (mut start, mut eq, mut encoded) = (0, None, false);
        let mut end_pair = |i: usize, eq: Option<usize>, encoded: bool| {
            let at = eq.ok_or(VerifyError::Malformed("query parameter without value"))?;
            let name = query.get(start..at).unwrap_or_default();
            let value = query.get(at + 1..i).unwrap_or_default();
            start = i + 1;
            p.set(name, value, encoded, get_only)
        };
        for (i, &b) in query.as_bytes().iter().enumerate() {
            match b {
                b'=' if eq.is_none() => eq = Some(i),
                b'%' | b'+' => encoded = true,
                b'&' => {
                    end_pair(i, eq, encoded)?;
                    (eq, encoded) = (None, false);
                }
                _ => {}
            }
        }
        end_pair(query.len(), eq, encoded)?;
        Ok(p)
    }

    /// Stores one parameter: known names only, each at most once.
    fn set(
        &mut self,
        name: &str,
        value: &'a str,
        encoded: bool,
        get_only: bool,
    ) -> Result<(), VerifyError> {
        let slot = match (name.as_bytes(), get_only) {
            (b"exp", _) => &mut self.exp,
            (b"sig", _) => &mut self.sig,
            (b"v", false) => &mut self.v,
            (b"size", false) => &mut self.size,
            (b"max", false) => &mut self.max,
            (b"type", false) => &mut self.ty,
            (b"sha256", false) => &mut self.sha256,
            (b"md5", false) => &mut self.md5,
            (b"by", false) => &mut self.by,
            _ => return Err(VerifyError::Malformed("unknown query parameter")),
        };
        let value = if encoded {
            form_decode(value)?
        } else {
            Cow::Borrowed(value)
        };
        if slot.replace(value).is_some() {
            return Err(VerifyError::Malformed("repeated query parameter"));
        }
        Ok(())
    }
}

/// Decodes an `application/x-www-form-urlencoded` value (`+` is a space), borrowing when
/// there is nothing to decode.
fn form_decode(v: &str) -> Result<Cow<'_, str>, VerifyError> {
    if !v.bytes().any(|b| b == b'%' || b == b'+') {
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
    /// Fails closed on a key anyone could guess, whichever constructor built the store.
    fn usable_key(&self) -> Result<(), VerifyError> {
        if self.key.len() < crate::storage::MIN_KEY_LEN {
            return Err(VerifyError::KeyTooShort);
        }
        Ok(())
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
    pub fn verify_put<'u>(
        &self,
        url: &'u Url,
        content_length: u64,
        content_type: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<VerifiedPut<'u>, VerifyError> {
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
    pub fn verify_put_request<'u>(
        &self,
        url: &'u Url,
        content_length: Option<u64>,
        content_type: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<VerifiedPut<'u>, VerifyError> {
        self.usable_key()?;
        let (key, id, name) = self.key_of(url)?;
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
            let given = ContentType::essence_of(given).map_err(|_| VerifyError::TypeMismatch)?;
            if !given.eq_ignore_ascii_case(essence(bound)) {
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
        Ok(VerifiedPut {
            key,
            filename: name,
            size,
            content_type: p.ty,
            sha256,
            md5,
            expires,
            by: p.by,
        })
    }

    /// Checks a GET URL's signature and expiry: the path form this store issues
    /// (`{base}/{slot id}/{sig}/{file name}`, `{base}/{slot id}/{expiry}.{sig}/{file name}`,
    /// no query) or the older query form (`{base}/{key}?sig=…`). The MAC is compared in
    /// constant time; the error says what was wrong, never with the URL in it.
    pub fn verify_get(&self, url: &Url, now: OffsetDateTime) -> Result<VerifiedGet, VerifyError> {
        self.usable_key()?;
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

    /// The object key of a PUT URL, with its slot ID (32 lower-case hex digits) and
    /// percent-decoded file name below the base path; the name must be a valid file name. The
    /// key is the URL's own text when the name needed no decoding.
    fn key_of<'u>(
        &self,
        url: &'u Url,
    ) -> Result<(Cow<'u, str>, &'u str, Cow<'u, str>), VerifyError> {
        let mut rest = url
            .path()
            .strip_prefix('/')
            .ok_or(VerifyError::NotUnderBase)?;
        for base in &self.base_segments {
            rest = rest
                .strip_prefix(base.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .ok_or(VerifyError::NotUnderBase)?;
        }
        let Some((id, name)) = rest
            .split_once('/')
            .filter(|(_, n)| !n.bytes().any(|b| b == b'/'))
        else {
            return Err(VerifyError::Malformed("path is not {slot id}/{file name}"));
        };
        let (id, name) = check_key_segments(id, name)?;
        let key = match name {
            Cow::Borrowed(_) => Cow::Borrowed(rest),
            Cow::Owned(ref n) => Cow::Owned(join_key(id, n)),
        };
        Ok((key, id, name))
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
    let name = if name.bytes().any(|b| b == b'%') {
        percent_encoding::percent_decode_str(name)
            .decode_utf8()
            .map_err(|_| VerifyError::Malformed("path is not UTF-8"))?
    } else {
        Cow::Borrowed(name)
    };
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
