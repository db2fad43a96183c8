//! The [`http`] crate's types on both sides of an upload (feature `http`).
//!
//! * A server holding an [`http::request::Parts`] (hyper, axum, …) verifies a PUT or GET with
//!   [`SignedUrlStore::verify_put_parts`] / [`SignedUrlStore::verify_get_parts`]: the
//!   origin-form request target is resolved against the store's base URL, and `Content-Length`
//!   (or its absence, for a chunked body), `Content-Type` and `Content-MD5` are read from the
//!   headers. A refusal gives the status to answer ([`VerifyError::status_code`]); a PUT gives
//!   the [`BodyCheck`](crate::storage::signed::BodyCheck) to stream the body through.
//! * A client turns an [`UploadTarget`] into the headers its PUT must carry
//!   ([`UploadTarget::put_headers`], e.g. S3's signed `content-type` and `content-md5`) or a
//!   whole [`http::Request`] ([`UploadTarget::put_request`]).
//!
//! Nothing here does I/O: the body stays in the host's hands.
//!
//! ```
//! use xmpp_upload::storage::signed::{SignedUrlStore, VerifyError};
//! use xmpp_upload::{ServiceConfig, SlotService, stanza::upload::SlotRequest};
//!
//! let store = SignedUrlStore::new("https://files.example/up/".parse()?, *b"a key of 32 random bytes........");
//! let service = SlotService::new(
//!     ServiceConfig::new("upload.example.org".parse()?, *b"32 bytes of host secret........."),
//!     store,
//! );
//! let now = time::OffsetDateTime::now_utc();
//! let request = SlotRequest::new("cat.jpg", 3).with_content_type("image/jpeg");
//! let slot = service.request_slot(&"romeo@example.org/a".parse()?, &request, "id1", now)?.slot;
//!
//! // What the HTTP server receives: an origin-form target, a chunked body, no Content-Type.
//! let target = &slot.put[url::Position::BeforePath..];
//! let (parts, ()) = http::Request::put(target)
//!     .header("transfer-encoding", "chunked")
//!     .body(())?
//!     .into_parts();
//! let put = service.storage().verify_put_parts(&parts, now)?;
//! assert_eq!((put.size, put.content_type.as_deref()), (3, Some("image/jpeg")));
//! let mut check = put.body_check();
//! check.update(b"m")?;
//! check.update(b"ew")?;
//! check.finish()?; // store the file only now: 201
//!
//! // The GET link, through the same path.
//! let get = &slot.get[url::Position::BeforePath..];
//! let (parts, ()) = http::Request::get(get).body(())?.into_parts();
//! assert_eq!(service.storage().verify_get_parts(&parts, now)?.filename, "cat.jpg");
//!
//! // A PUT with another type is refused with the status to answer.
//! let (parts, ()) = http::Request::put(target)
//!     .header("content-length", "3")
//!     .header("content-type", "text/html")
//!     .body(())?
//!     .into_parts();
//! let err = service.storage().verify_put_parts(&parts, now).unwrap_err();
//! assert_eq!(err.status_code(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode, Uri};
use time::OffsetDateTime;
use url::Url;

use crate::storage::signed::{SignedUrlStore, VerifiedGet, VerifiedPut, VerifyError};
use crate::storage::UploadTarget;

/// The URL a request was sent to, as the store issued it: the scheme and authority of `base`
/// with the request target's path and query. Use it when the server sits behind a proxy
/// (the `Host` the server sees is not the one in the URLs); an absolute-form target's own
/// scheme and authority are ignored too, as the store does not check them.
///
/// ```
/// let base: url::Url = "https://files.example/up/".parse()?;
/// let uri: http::Uri = "/up/0123/a%20b.jpg?v=1".parse()?;
/// assert_eq!(xmpp_upload::http::request_url(&base, &uri).as_str(), "https://files.example/up/0123/a%20b.jpg?v=1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn request_url(base: &Url, uri: &Uri) -> Url {
    let mut url = base.clone();
    url.set_fragment(None);
    // `set_path` keeps percent-escapes as they are and resolves dot segments.
    url.set_path(uri.path());
    url.set_query(uri.query());
    url
}

/// The request's declared body length: `Some` from a single decimal `Content-Length`, `None`
/// without one (a chunked HTTP/1.1 body, HTTP/2 framing). `Content-Length` together with
/// `Transfer-Encoding`, repeated, or not a plain decimal is refused (RFC 9112 §6.3: such a
/// message is a smuggling risk).
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, VerifyError> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::BadRequest("repeated Content-Length"));
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(VerifyError::BadRequest(
            "Content-Length with Transfer-Encoding",
        ));
    }
    let v = value.as_bytes();
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return Err(VerifyError::BadRequest("Content-Length"));
    }
    v.iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?
                .checked_add(u64::from(d.wrapping_sub(b'0')))
        })
        .map(Some)
        .ok_or(VerifyError::BadRequest("Content-Length"))
}

/// A single header's value as text; absent or empty is `None`, repeated or not visible ASCII
/// is refused.
fn single_text<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    what: &'static str,
) -> Result<Option<&'h str>, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::BadRequest(what));
    }
    let text = value.to_str().map_err(|_| VerifyError::BadRequest(what))?;
    Ok(Some(text.trim()).filter(|t| !t.is_empty()))
}

#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
impl SignedUrlStore {
    /// Verifies a PUT from its request head: the method, the URL (the request target resolved
    /// with [`request_url`] against this store's base URL), `Content-Length` or its absence
    /// (see [`SignedUrlStore::verify_put_request`]), `Content-Type` (see
    /// [`SignedUrlStore::verify_put`] for the rule) and, where the URL binds an MD5,
    /// `Content-MD5`. On success, stream the body through [`VerifiedPut::body_check`] and keep
    /// it only if [`BodyCheck::finish`](crate::storage::signed::BodyCheck::finish) succeeds;
    /// on failure, answer [`VerifyError::status_code`].
    pub fn verify_put_parts(
        &self,
        parts: &Parts,
        now: OffsetDateTime,
    ) -> Result<VerifiedPut<'static>, VerifyError> {
        if parts.method != Method::PUT {
            return Err(VerifyError::MethodNotAllowed);
        }
        let length = content_length(&parts.headers)?;
        let content_type = single_text(&parts.headers, &header::CONTENT_TYPE, "Content-Type")?;
        let md5 = single_text(
            &parts.headers,
            &HeaderName::from_static("content-md5"),
            "Content-MD5",
        )?;
        let url = request_url(self.base_url(), &parts.uri);
        let verified = self.verify_put_request(&url, length, content_type, now)?;
        verified.check_content_md5(md5)?;
        Ok(verified.into_owned())
    }

    /// Verifies a GET or HEAD from its request head: the method and the URL (the request
    /// target resolved with [`request_url`] against this store's base URL), as
    /// [`SignedUrlStore::verify_get`] does.
    pub fn verify_get_parts(
        &self,
        parts: &Parts,
        now: OffsetDateTime,
    ) -> Result<VerifiedGet, VerifyError> {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return Err(VerifyError::MethodNotAllowed);
        }
        self.verify_get(&request_url(self.base_url(), &parts.uri), now)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
impl VerifyError {
    /// [`VerifyError::status`] as an [`http::StatusCode`].
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::FORBIDDEN)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
impl UploadTarget {
    /// The headers the PUT must carry: the XEP-0363 slot headers and the
    /// [`required_headers`](UploadTarget::required_headers) (S3's signed `content-type`,
    /// `content-md5`, …), ready for an HTTP client. `Content-Length` is the client's to add.
    ///
    /// # Errors
    /// A header name or value that HTTP cannot carry (a host-provided backend's mistake; the
    /// built-in backends never produce one).
    pub fn put_headers(&self) -> Result<HeaderMap, http::Error> {
        let mut map =
            HeaderMap::with_capacity(self.slot_headers.len() + self.required_headers.len());
        for h in &self.slot_headers {
            map.append(
                HeaderName::from_bytes(h.name.as_bytes())?,
                HeaderValue::from_str(&h.value)?,
            );
        }
        for h in &self.required_headers {
            map.append(
                HeaderName::from_bytes(h.name.as_bytes())?,
                HeaderValue::from_str(&h.value)?,
            );
        }
        Ok(map)
    }

    /// The PUT as a body-less [`http::Request`]: method, URL, [`UploadTarget::put_headers`]
    /// and `Content-Length`. Attach the body with [`http::Request::map`].
    ///
    /// # Errors
    /// As [`UploadTarget::put_headers`], or a URL `http` does not accept.
    pub fn put_request(&self, content_length: u64) -> Result<http::Request<()>, http::Error> {
        let mut request = http::Request::put(self.put_url.as_str()).body(())?;
        let headers = request.headers_mut();
        *headers = self.put_headers()?;
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checked::{ContentType, FileName};
    use crate::storage::{CheckedUpload, StorageBackend, UploadGrant};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn store() -> SignedUrlStore {
        SignedUrlStore::new("https://files.example/up/".parse().unwrap(), "k".repeat(32))
    }

    fn target(size: u64, ty: Option<&str>, md5: Option<[u8; 16]>) -> UploadTarget {
        let grant = UploadGrant::new(CheckedUpload {
            slot_id: [0xab; 16],
            filename: FileName::new("a.jpg").unwrap(),
            size: Some(size),
            max_size: size,
            content_type: ty.map(|t| ContentType::new(t).unwrap()),
            sha256: None,
            md5,
            requester: "romeo@montague.tld".parse().unwrap(),
            now: now(),
            put_expires: now() + time::Duration::seconds(300),
            get_expires: None,
        });
        store().issue_upload(&grant).unwrap()
    }

    fn parts(method: Method, url: &Url, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder()
            .method(method)
            .uri(&url[url::Position::BeforePath..]);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn put_heads_as_clients_send_them() {
        let t = target(3, Some("image/jpeg"), None);
        let s = store();
        let ok = |h: &[(&str, &str)]| s.verify_put_parts(&parts(Method::PUT, &t.put_url, h), now());
        // Content-Length and Content-Type; no type; chunked without either.
        assert_eq!(
            ok(&[("content-length", "3"), ("content-type", "image/jpeg")])
                .unwrap()
                .size,
            3
        );
        assert_eq!(
            ok(&[("content-length", "3")])
                .unwrap()
                .content_type
                .as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(ok(&[("transfer-encoding", "chunked")]).unwrap().size, 3);
        assert_eq!(ok(&[]).unwrap().size, 3);
        // Refusals, each with its status.
        for (h, status) in [
            (&[("content-length", "4")][..], 413),
            (
                &[("content-length", "3"), ("content-type", "text/html")][..],
                415,
            ),
            (
                &[("content-length", "3"), ("transfer-encoding", "chunked")][..],
                400,
            ),
            (&[("content-length", "3"), ("content-length", "3")][..], 400),
            (&[("content-length", "+3")][..], 400),
            (&[("content-length", "99999999999999999999999")][..], 400),
            (
                &[
                    ("content-type", "image/jpeg"),
                    ("content-type", "text/html"),
                ][..],
                400,
            ),
        ] {
            assert_eq!(
                ok(h).map_err(|e| e.status_code().as_u16()),
                Err(status),
                "{h:?}"
            );
        }
        let get = s.verify_put_parts(&parts(Method::GET, &t.put_url, &[]), now());
        assert_eq!(get, Err(VerifyError::MethodNotAllowed));
        assert_eq!(
            VerifyError::MethodNotAllowed.status_code(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn content_md5_is_checked_from_the_head() {
        let md5 = crate::checked::decode_md5("qN48INKsmQyPMZkHs0DWog==").unwrap();
        let t = target(3, None, Some(md5));
        let s = store();
        let with =
            |h: &[(&str, &str)]| s.verify_put_parts(&parts(Method::PUT, &t.put_url, h), now());
        assert!(with(&[
            ("content-length", "3"),
            ("content-md5", "qN48INKsmQyPMZkHs0DWog==")
        ])
        .is_ok());
        assert_eq!(
            with(&[("content-length", "3")]),
            Err(VerifyError::DigestMismatch)
        );
        assert_eq!(
            with(&[
                ("content-length", "3"),
                ("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")
            ]),
            Err(VerifyError::DigestMismatch)
        );
    }

    #[test]
    fn get_heads_resolve_against_the_base() {
        let t = target(3, None, None);
        let s = store();
        for m in [Method::GET, Method::HEAD] {
            assert_eq!(
                s.verify_get_parts(&parts(m, &t.get_url, &[]), now())
                    .unwrap()
                    .filename,
                "a.jpg"
            );
        }
        assert_eq!(
            s.verify_get_parts(&parts(Method::DELETE, &t.get_url, &[]), now()),
            Err(VerifyError::MethodNotAllowed)
        );
        // Absolute-form: the authority is not the store's business, the path is.
        let mut elsewhere = t.get_url.clone();
        elsewhere.set_host(Some("proxy.internal")).unwrap();
        let p = http::Request::get(elsewhere.as_str())
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert!(s.verify_get_parts(&p, now()).is_ok());
        let off = http::Request::get("/elsewhere/x")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            s.verify_get_parts(&off, now()),
            Err(VerifyError::NotUnderBase)
        );
    }

    #[test]
    fn target_headers_and_request() {
        let md5 = crate::checked::decode_md5("qN48INKsmQyPMZkHs0DWog==").unwrap();
        let t = target(3, Some("image/jpeg"), Some(md5));
        let h = t.put_headers().unwrap();
        assert_eq!(h.get("content-type").unwrap(), "image/jpeg");
        assert_eq!(h.get("content-md5").unwrap(), "qN48INKsmQyPMZkHs0DWog==");
        let r = t.put_request(3).unwrap();
        assert_eq!(r.method(), Method::PUT);
        assert_eq!(r.uri().to_string(), t.put_url.as_str());
        assert_eq!(r.headers().get("content-length").unwrap(), "3");
        // The request's head verifies.
        let (p, ()) = r.into_parts();
        assert!(store().verify_put_parts(&p, now()).is_ok());
        let bad = t.clone().with_required_header("bad name", "x");
        assert!(bad.put_headers().is_err());
    }
}
