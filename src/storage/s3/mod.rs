//! S3 and S3-compatible stores: AWS SigV4 query presigning.
//!
//! [`S3Store`] turns a grant into presigned URLs (`X-Amz-Algorithm=AWS4-HMAC-SHA256`, payload
//! `UNSIGNED-PAYLOAD`) that the store itself verifies: nothing is stored per slot and no HTTP
//! request is made. The PUT URL signs `host` plus whatever the grant binds:
//!
//! | grant | signed header | the PUT must send |
//! |---|---|---|
//! | exact size (always) | `content-length` | `Content-Length: N` |
//! | content type (always) | `content-type` | `Content-Type: …` as requested, or `application/octet-stream` |
//! | MD5 (`p1:http-file-transfer`) | `content-md5` | `Content-MD5: base64` |
//! | SHA-256 (XEP-0300 `<hash/>`) | `x-amz-checksum-sha256` | `x-amz-checksum-sha256: base64` |
//!
//! The store refuses a PUT whose signed headers differ from what was signed (S3 answers 403),
//! and S3 checks `Content-MD5` and `x-amz-checksum-sha256` against the body. The required
//! headers are listed in [`UploadTarget::required_headers`]; XEP-0363 slot headers stay empty,
//! as that protocol only allows `Authorization`, `Cookie` and `Expires` there.
//!
//! `content-type` is signed even when the request named no type, as
//! `application/octet-stream` (the type the service checked against its allow-list, XEP-0363
//! §5), so the uploader cannot choose the stored type. The price: a client that requested no
//! type must send `Content-Type: application/octet-stream` (p1 results list it); one that sends
//! no `Content-Type` at all gets 403 from S3. The type is signed as the client gave it
//! ([`ContentType::as_given`]), since that is what its PUT carries.
//!
//! GET URLs (the slot's and [`StorageBackend::issue_download`]'s) sign the response header
//! overrides `response-content-type` (the [normalised](ContentType::as_str) type,
//! `application/octet-stream` when unknown) and `response-content-disposition` by the store's
//! [`InlinePolicy`] (`inline` for the types it shows, else `attachment; filename*=…`), so
//! S3 serves HTML or SVG as a download whatever type the object was stored with. A download by
//! file ID does not know the type: it is served as an `application/octet-stream` attachment
//! named after the key's last segment.
//!
//! # Housekeeping
//! Retention needs no SDK either: [`S3Store::presign_list`] signs a ListObjectsV2 by prefix
//! (with continuation), [`ListPage::parse`] reads its XML answer with bounded work, and
//! [`S3Store::presign_delete`] signs the `DELETE` of one object; the host sends them with any
//! HTTP client. [`S3Store::key_prefix`] keeps the uploads under a prefix of their own (for a
//! bucket lifecycle rule, or for listing), and [`S3Store::public_get_base`] hands out unsigned
//! GET links on a public bucket or CDN. The README shows the lifecycle rule and the bucket CORS
//! rule web clients need.
//!
//! The implementation follows AWS's "Authenticating Requests: Using Query Parameters (AWS
//! Signature Version 4)", one step per file: `canonical` (canonical request), `sign` (string
//! to sign, signing key, signature), `encode` (S3's `UriEncode`); `list` reads listings.
//!
//! # Limits
//! * `X-Amz-Expires` is 1 to [`MAX_EXPIRES_SECONDS`] (7 days): SigV4 cannot sign longer. Slot
//!   GET URLs are capped at 7 days; download URLs are re-issued through file IDs.
//! * A presigned PUT signs one exact `Content-Length` and cannot carry a range (only POST
//!   policies have `content-length-range`): a grant without a declared size (a
//!   `p1:http-file-transfer` request by MD5 alone) is refused with [`StorageError::SizeRequired`].
//! * Object keys are 1 to 1024 bytes of any Unicode, without `.` or `..` segments (URL
//!   normalisation would remove them).

use core::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use time::{Duration, OffsetDateTime};
use url::Url;

use self::canonical::{canonical_request, normalize_header_value, SignedHeaders};
use self::encode::{canonical_prefix, encode_into, push_key_path};
use self::sign::{
    root_key, scope, signature, signing_key, string_to_sign, DayKey, KeyCache, Timestamp, ALGORITHM,
};
use super::{check_base, DownloadGrant, StorageBackend, StorageError, UploadGrant, UploadTarget};
use crate::checked::{ContentType, InlinePolicy, OCTET_STREAM};
use crate::crypto::SecretKey;

mod canonical;
mod encode;
mod list;
mod sign;

pub use self::list::{ListError, ListPage, ListedObject, MAX_LIST_BODY};
#[cfg(test)]
mod tests;

/// The longest lifetime SigV4 can sign: 7 days, in seconds (`X-Amz-Expires`).
pub const MAX_EXPIRES_SECONDS: u64 = 604_800;

/// [`MAX_EXPIRES_SECONDS`] as a duration.
const MAX_EXPIRES: Duration = Duration::seconds(604_800);

/// The longest object key S3 accepts, in bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;

/// The longest [`S3Store::key_prefix`], in bytes: room is left for the slot ID and a 255-byte
/// file name within [`MAX_KEY_BYTES`].
const MAX_KEY_PREFIX_BYTES: usize = 512;

/// The largest `max-keys` of a ListObjectsV2 request S3 honours.
const MAX_LIST_KEYS: u32 = 1000;

/// The longest continuation token [`S3Store::presign_list`] signs, in bytes (S3's are a few
/// hundred bytes of base64).
const MAX_TOKEN_BYTES: usize = 4096;

/// Where the store is and who signs for it.
///
/// `Debug` prints the endpoint, bucket, region and access key ID, never the secret access key
/// or the session token.
#[derive(Clone)]
pub struct S3Config {
    /// The service endpoint, for example `https://s3.eu-west-1.amazonaws.com` or
    /// `http://127.0.0.1:9000` (plain http only on loopback unless
    /// [`S3Store::allow_insecure_http`]). A path (`https://host/prefix`) is kept in front of
    /// every object path; user info, query and fragment are refused.
    pub endpoint: Url,
    /// The bucket. With virtual-hosted style it must be a DNS name (3 to 63 characters of
    /// `a-z`, `0-9`, `-` and `.`).
    pub bucket: String,
    /// The signing region (`us-east-1`, or whatever an S3-compatible store expects).
    pub region: String,
    /// The access key ID, public: it appears in every URL (`X-Amz-Credential`).
    pub access_key_id: String,
    /// The secret access key. It never leaves the signer.
    pub secret_access_key: String,
    /// The STS session token of temporary credentials. It travels in every URL as
    /// `X-Amz-Security-Token` (signed, as S3 requires).
    pub session_token: Option<String>,
    /// `true`: `endpoint/bucket/key`; `false`: `bucket.endpoint-host/key` (virtual-hosted).
    pub path_style: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &redacted_endpoint(&self.endpoint))
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The endpoint without any user info, for `Debug`.
fn redacted_endpoint(endpoint: &Url) -> String {
    let mut url = endpoint.clone();
    // Both fail only for URLs that cannot have user info, which then have none to hide.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// What a presigned PUT binds besides the key. Each bound value becomes a signed header that
/// the PUT must send with exactly that value ([`S3Store::presign_put`] returns them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutBinding<'a> {
    /// The exact body length (`Content-Length`). Without it (or an MD5) the store accepts a
    /// body of any size.
    pub content_length: Option<u64>,
    /// The content type (`Content-Type`), visible ASCII.
    pub content_type: Option<&'a str>,
    /// The MD5 of the body (`Content-MD5`, RFC 1864 base64).
    pub content_md5: Option<[u8; 16]>,
    /// The SHA-256 of the body (`x-amz-checksum-sha256`, base64).
    pub sha256: Option<[u8; 32]>,
}

/// Response header overrides a presigned GET signs (S3 `GetObject`'s `response-content-type`
/// and `response-content-disposition` query parameters): S3 serves the object with these
/// headers instead of the ones stored with it. Each value must be visible ASCII (spaces
/// allowed), not empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetOverrides<'a> {
    /// The `Content-Type` to serve.
    pub content_type: Option<&'a str>,
    /// The `Content-Disposition` to serve.
    pub content_disposition: Option<&'a str>,
}

/// The checked, canonical form of the configuration's URL parts.
#[derive(Debug, Clone)]
struct Base {
    /// `http` or `https`.
    scheme: String,
    /// The `Host` header value: `[bucket.]host[:port]`, port only when not the default.
    host: String,
    /// The encoded path in front of the key: endpoint prefix, plus `/bucket` in path style.
    prefix: String,
    /// `scheme://host[:port]/path` of [`S3Store::public_get_base`], path canonical and
    /// without a trailing `/`.
    public: Option<String>,
}

/// One presigned request with its intermediate values (the URL is the result; the rest is
/// kept for the step-by-step tests).
#[derive(Debug)]
struct Presigned {
    url: Url,
    #[cfg_attr(not(test), allow(dead_code))]
    canonical_request: String,
    #[cfg_attr(not(test), allow(dead_code))]
    string_to_sign: String,
    #[cfg_attr(not(test), allow(dead_code))]
    signature: String,
}

/// An S3 (or S3-compatible) bucket as a [`StorageBackend`]: SigV4 presigned PUT and GET URLs,
/// and presigned DELETE and ListObjectsV2 requests for housekeeping.
///
/// It is `Send + Sync` and cheap to share: the only mutable state is the cached signing key of
/// the current day. `Debug` prints the endpoint, bucket, region and access key ID only.
///
/// Configuration errors (plain http off loopback, a bucket that is no DNS name in
/// virtual-hosted style, …) are reported by [`S3Store::validate`] and by every call.
///
/// # Example
/// AWS's documented presigning example, then a PUT slot for a 1 KiB JPEG:
/// ```
/// use time::{Duration, OffsetDateTime};
/// use url::Url;
/// use xmpp_upload::storage::s3::{PutBinding, S3Config, S3Store};
///
/// let store = S3Store::new(S3Config {
///     endpoint: Url::parse("https://s3.amazonaws.com")?,
///     bucket: "examplebucket".into(),
///     region: "us-east-1".into(),
///     access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
///     secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
///     session_token: None,
///     path_style: false,
/// });
/// store.validate()?;
/// let now = OffsetDateTime::from_unix_timestamp(1_369_353_600)?; // 2013-05-24T00:00:00Z
///
/// let get = store.presign_get("test.txt", now, Duration::days(1))?;
/// assert_eq!(get.host_str(), Some("examplebucket.s3.amazonaws.com"));
/// assert!(get.as_str().ends_with(
///     "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
/// ));
///
/// let binding = PutBinding {
///     content_length: Some(1024),
///     content_type: Some("image/jpeg"),
///     ..PutBinding::default()
/// };
/// let (put, headers) = store.presign_put("uploads/photo.jpg", now, Duration::minutes(5), &binding)?;
/// assert_eq!(put.path(), "/uploads/photo.jpg");
/// assert!(put.as_str().contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"));
/// assert_eq!(headers, [
///     ("Content-Length".to_owned(), "1024".to_owned()),
///     ("Content-Type".to_owned(), "image/jpeg".to_owned()),
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct S3Store {
    endpoint: Url,
    bucket: String,
    region: String,
    access_key_id: String,
    session_token: Option<String>,
    path_style: bool,
    allow_insecure_http: bool,
    /// `"AWS4" + secret access key`.
    root: SecretKey,
    secret_empty: bool,
    base: Result<Base, StorageError>,
    keys: KeyCache,
    inline: InlinePolicy,
    /// Prepended to the keys of slot uploads ([`S3Store::key_prefix`]).
    key_prefix: String,
    /// Where slot GET URLs point, unsigned ([`S3Store::public_get_base`]).
    public_get_base: Option<Url>,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("endpoint", &redacted_endpoint(&self.endpoint))
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("key_prefix", &self.key_prefix)
            .field(
                "public_get_base",
                &self.public_get_base.as_ref().map(redacted_endpoint),
            )
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// A store for one bucket. The configuration is checked here, and a problem is returned by
    /// [`S3Store::validate`] and by every presign call.
    #[must_use]
    pub fn new(config: S3Config) -> Self {
        let S3Config {
            endpoint,
            bucket,
            region,
            access_key_id,
            secret_access_key,
            session_token,
            path_style,
        } = config;
        let mut store = Self {
            root: root_key(&secret_access_key),
            secret_empty: secret_access_key.is_empty(),
            endpoint,
            bucket,
            region,
            access_key_id,
            session_token,
            path_style,
            allow_insecure_http: false,
            base: Err(StorageError::InvalidBaseUrl),
            keys: KeyCache::default(),
            inline: InlinePolicy::default(),
            key_prefix: String::new(),
            public_get_base: None,
        };
        store.base = store.prepare();
        store
    }

    /// Allows a plain `http` endpoint on a non-loopback host (a store on a private network).
    /// Presigned URLs are bearer credentials: anyone on the path can read them and replay them
    /// until they expire.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self.base = self.prepare();
        self
    }

    /// Which types the GET URLs this store issues as a [`StorageBackend`] serve `inline`
    /// (default: [`InlinePolicy::default`]); everything else is served as an attachment. HTML,
    /// SVG and XML are never inline.
    #[must_use]
    pub fn inline_policy(mut self, policy: InlinePolicy) -> Self {
        self.inline = policy;
        self
    }

    /// Puts the objects of slot uploads under `prefix`: their keys become
    /// `{prefix}{32 hex digits}/{file name}` instead of `{32 hex digits}/{file name}`, so one
    /// bucket can hold other data next to them, and a lifecycle rule or a
    /// [`S3Store::presign_list`] can find exactly the uploads. Default: none.
    ///
    /// The prefix is taken literally (end it with `/` to make it a folder, as in
    /// `"uploads/"`). Rules, checked by [`S3Store::validate`]: at most 512 bytes, no leading
    /// `/`, no empty, `.` or `..` segment, no control character.
    ///
    /// Only the keys this store issues for slots change: [`S3Store::presign_get`],
    /// [`S3Store::presign_put`], [`S3Store::presign_delete`] and downloads by file ID take the
    /// full object key, as [`UploadTarget::object_key`] and [`ListPage`] give it.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self.base = self.prepare();
        self
    }

    /// The prefix of the keys issued for slots (see [`S3Store::key_prefix`]; `""` by default).
    /// List it with [`S3Store::presign_list`] to see every upload.
    #[must_use]
    pub fn issued_key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Makes slot GET URLs public and unsigned: `{base}/{object key}` (each key segment
    /// percent-encoded), where `base` is a CDN or a public bucket website that maps its root to
    /// the bucket's root. Default: none (slot GET URLs are presigned, at most 7 days).
    ///
    /// What this means for the operator:
    /// * The bucket (or the CDN in front of it) must serve everything under
    ///   [`S3Store::key_prefix`] to anyone, without a signature. The URLs stay unguessable
    ///   (128-bit slot IDs) but never expire: whoever gets a link keeps it, and deleting the
    ///   object (a lifecycle rule, [`S3Store::presign_delete`]) is the only way to revoke it; a
    ///   CDN may keep serving a cached copy until its own cache expires.
    /// * The response header overrides of presigned GETs do not apply: the object is served
    ///   with the `Content-Type` its PUT stored (signed, so it is the type the service checked)
    ///   and no `Content-Disposition`. Serve the base from a domain of its own, without
    ///   cookies, and let the CDN add `Content-Disposition: attachment` or a strict
    ///   `Content-Security-Policy` for types it should not render (HTML, SVG, XML).
    /// * PUT URLs stay presigned, and downloads by file ID stay presigned and short-lived
    ///   (an `attachment`), as [`StorageBackend::issue_download`] issues them.
    ///
    /// Rules, checked by [`S3Store::validate`]: a hierarchical `https` URL (plain `http` on
    /// loopback or with [`S3Store::allow_insecure_http`]), without user info, query or
    /// fragment. A path is kept (`https://cdn.example/files/` gives
    /// `https://cdn.example/files/{key}`).
    #[must_use]
    pub fn public_get_base(mut self, base: Url) -> Self {
        self.public_get_base = Some(base);
        self.base = self.prepare();
        self
    }

    /// Whether the configuration can sign at all: the error every presign call would return.
    pub fn validate(&self) -> Result<(), StorageError> {
        self.base.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// A presigned GET URL for `key`, valid from `now` for `expires_in` (whole seconds,
    /// 1 to [`MAX_EXPIRES_SECONDS`]).
    ///
    /// # Errors
    /// [`StorageError::ExpiryTooLong`] beyond 7 days, [`StorageError::InvalidExpiry`] below one
    /// second or for a time that cannot be formatted, [`StorageError::InvalidKey`] for an
    /// empty, too long or dot-segment key, and the configuration errors of
    /// [`S3Store::validate`].
    #[must_use = "the URL is the only result"]
    pub fn presign_get(
        &self,
        key: &str,
        now: OffsetDateTime,
        expires_in: Duration,
    ) -> Result<Url, StorageError> {
        self.presign("GET", key, now, expires_in, SignedHeaders::default(), &[])
            .map(|p| p.url)
    }

    /// A presigned GET URL for `key` that also signs response header overrides: S3 serves the
    /// object with `overrides`' `Content-Type` and `Content-Disposition`, whatever it was
    /// stored with.
    ///
    /// # Errors
    /// Those of [`S3Store::presign_get`], and [`StorageError::Unsupported`] for an override
    /// that is empty or not visible ASCII.
    pub fn presign_get_with(
        &self,
        key: &str,
        now: OffsetDateTime,
        expires_in: Duration,
        overrides: &GetOverrides<'_>,
    ) -> Result<Url, StorageError> {
        let mut query = Vec::new();
        for (name, value) in [
            (
                "response-content-disposition",
                overrides.content_disposition,
            ),
            ("response-content-type", overrides.content_type),
        ] {
            if let Some(value) = value {
                if !is_header_value(value) {
                    return Err(StorageError::Unsupported(
                        "a response override is not a valid HTTP header value",
                    ));
                }
                query.push((name, value));
            }
        }
        self.presign(
            "GET",
            key,
            now,
            expires_in,
            SignedHeaders::default(),
            &query,
        )
        .map(|p| p.url)
    }

    /// A presigned GET URL for a file named `filename` of type `content_type` (`None`:
    /// unknown), served as this store's [`InlinePolicy`] says: `response-content-type` is the
    /// normalised type (`application/octet-stream` when unknown) and
    /// `response-content-disposition` is `inline` or `attachment; filename*=UTF-8''…`.
    ///
    /// # Errors
    /// Those of [`S3Store::presign_get`].
    pub fn presign_download(
        &self,
        key: &str,
        now: OffsetDateTime,
        expires_in: Duration,
        content_type: Option<&ContentType>,
        filename: &str,
    ) -> Result<Url, StorageError> {
        let disposition = self.inline.content_disposition(content_type, filename);
        let overrides = GetOverrides {
            content_type: Some(content_type.map_or(OCTET_STREAM, ContentType::as_str)),
            content_disposition: Some(&disposition),
        };
        self.presign_get_with(key, now, expires_in, &overrides)
    }

    /// A presigned PUT URL for `key` that binds what `binding` gives, and the headers the PUT
    /// must send with exactly these values (`Content-Length`, `Content-Type`, `Content-MD5`,
    /// `x-amz-checksum-sha256`, in that order, as bound).
    ///
    /// Without `content_length` or `content_md5` the store accepts a body of any size: bind
    /// at least one of them when the size matters ([`StorageBackend::issue_upload`] does).
    ///
    /// # Errors
    /// Those of [`S3Store::presign_get`], and [`StorageError::Unsupported`] for a content type
    /// that is empty or not visible ASCII.
    pub fn presign_put(
        &self,
        key: &str,
        now: OffsetDateTime,
        expires_in: Duration,
        binding: &PutBinding<'_>,
    ) -> Result<(Url, Vec<(String, String)>), StorageError> {
        let bound = put_headers(binding)?;
        let mut headers = SignedHeaders::default();
        for (signed, _, value) in &bound {
            headers.insert(signed, value);
        }
        let presigned = self.presign("PUT", key, now, expires_in, headers, &[])?;
        let required = bound
            .into_iter()
            .map(|(_, name, value)| (name.to_owned(), value))
            .collect();
        Ok((presigned.url, required))
    }

    /// A presigned DELETE URL for `key` (S3 `DeleteObject`), valid from `now` for `expires_in`:
    /// the host's retention job sends `DELETE` to it, without a body or any other header. S3
    /// answers 204, also when the object did not exist.
    ///
    /// A DELETE URL is a bearer credential for destroying that object until it expires: sign
    /// it just before use, for seconds or minutes, and never hand it to a client.
    ///
    /// # Errors
    /// Those of [`S3Store::presign_get`] (same key, expiry and configuration rules).
    #[must_use = "the URL is the only result"]
    pub fn presign_delete(
        &self,
        key: &str,
        now: OffsetDateTime,
        expires_in: Duration,
    ) -> Result<Url, StorageError> {
        self.presign(
            "DELETE",
            key,
            now,
            expires_in,
            SignedHeaders::default(),
            &[],
        )
        .map(|p| p.url)
    }

    /// A presigned ListObjectsV2 URL (`GET` on the bucket with `list-type=2`): the keys that
    /// start with `prefix` (`""`: all), at most `max_keys` of them (1 to 1000; `None`: the
    /// store's default, 1000 on S3), in UTF-8 binary order, starting after the page that
    /// returned `continuation` as its [`ListPage::next_continuation_token`]. Parse the answer
    /// with [`ListPage::parse`]; while [`ListPage::is_truncated`], sign the next page with its
    /// token.
    ///
    /// The prefix is the full key prefix: pass [`S3Store::issued_key_prefix`] to list the
    /// uploads of slots. The listing reveals every key under it (file names included): keep
    /// the URL on the host, and its lifetime short.
    ///
    /// # Errors
    /// The expiry and configuration errors of [`S3Store::presign_get`];
    /// [`StorageError::InvalidKey`] for a prefix longer than 1024 bytes or an empty or overlong
    /// (over 4096 bytes) continuation token; [`StorageError::Unsupported`] for `max_keys` 0
    /// or above 1000.
    ///
    /// # Example
    /// ```
    /// # use time::{Duration, OffsetDateTime};
    /// # use xmpp_upload::storage::s3::{ListPage, S3Config, S3Store};
    /// # let store = S3Store::new(S3Config {
    /// #     endpoint: "https://s3.example.org".parse()?, bucket: "chat-uploads".into(),
    /// #     region: "us-east-1".into(), access_key_id: "AKIDEXAMPLE".into(),
    /// #     secret_access_key: "secret".into(), session_token: None, path_style: true,
    /// # }).key_prefix("xmpp/");
    /// # let now = OffsetDateTime::from_unix_timestamp(1_714_564_800)?;
    /// let url = store.presign_list(store.issued_key_prefix(), None, Some(2), now, Duration::minutes(1))?;
    /// assert_eq!(url.path(), "/chat-uploads");
    /// assert!(url.as_str().contains("&list-type=2&max-keys=2&prefix=xmpp%2F&X-Amz-Signature="));
    /// // The host GETs it; S3 answers (abridged):
    /// let body = "<ListBucketResult><IsTruncated>true</IsTruncated>\
    ///     <NextContinuationToken>dG9rZW4=</NextContinuationToken>\
    ///     <Contents><Key>xmpp/0a1b/cat.jpg</Key><LastModified>2024-04-01T09:30:00.000Z</LastModified>\
    ///     <ETag>&quot;70ee1738b6b21e2c8a43f3a5ab0eee71&quot;</ETag><Size>23026</Size></Contents>\
    ///     </ListBucketResult>";
    /// let page = ListPage::parse(body)?;
    /// assert_eq!((page.objects[0].key.as_str(), page.objects[0].size), ("xmpp/0a1b/cat.jpg", 23026));
    /// let delete = store.presign_delete(&page.objects[0].key, now, Duration::minutes(1))?;
    /// assert_eq!(delete.path(), "/chat-uploads/xmpp/0a1b/cat.jpg");
    /// // Next page:
    /// let next = store.presign_list(
    ///     store.issued_key_prefix(), page.next_continuation_token.as_deref(), Some(2), now, Duration::minutes(1),
    /// )?;
    /// assert!(next.as_str().contains("continuation-token=dG9rZW4%3D&"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the URL is the only result"]
    pub fn presign_list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: Option<u32>,
        now: OffsetDateTime,
        expires_in: Duration,
    ) -> Result<Url, StorageError> {
        self.list_presigned(prefix, continuation, max_keys, now, expires_in)
            .map(|p| p.url)
    }

    /// [`S3Store::presign_list`] with its intermediate values.
    fn list_presigned(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: Option<u32>,
        now: OffsetDateTime,
        expires_in: Duration,
    ) -> Result<Presigned, StorageError> {
        let base = self.base.as_ref().map_err(Clone::clone)?;
        if prefix.len() > MAX_KEY_BYTES {
            return Err(StorageError::InvalidKey(
                "list prefix longer than 1024 bytes",
            ));
        }
        let max_keys = match max_keys {
            None => None,
            Some(n @ 1..=MAX_LIST_KEYS) => Some(n.to_string()),
            Some(_) => return Err(StorageError::Unsupported("max-keys: 1 to 1000")),
        };
        let mut query = vec![("list-type", "2")];
        if !prefix.is_empty() {
            query.push(("prefix", prefix));
        }
        if let Some(token) = continuation {
            if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
                return Err(StorageError::InvalidKey(
                    "continuation token: 1 to 4096 bytes",
                ));
            }
            query.push(("continuation-token", token));
        }
        if let Some(n) = &max_keys {
            query.push(("max-keys", n));
        }
        // The bucket's URL: `endpoint-path/bucket` in path style, the host's root otherwise.
        let path = if base.prefix.is_empty() {
            "/"
        } else {
            base.prefix.as_str()
        };
        self.sign_path(
            base,
            "GET",
            path,
            now,
            expires_in,
            SignedHeaders::default(),
            &query,
        )
    }

    /// The public, unsigned GET URL of `key` under [`S3Store::public_get_base`] (`None` when
    /// no public base is set).
    fn public_url(&self, key: &str) -> Result<Option<Url>, StorageError> {
        let base = self.base.as_ref().map_err(Clone::clone)?;
        let Some(public) = &base.public else {
            return Ok(None);
        };
        check_key(key)?;
        let mut text = public.clone();
        let at = text.len();
        push_key_path(&mut text, key);
        let url = Url::parse(&text).map_err(|_| StorageError::InvalidBaseUrl)?;
        if text
            .get(at..)
            .is_none_or(|path| !url.path().ends_with(path))
        {
            return Err(StorageError::InvalidKey(
                "the key does not survive URL normalisation",
            ));
        }
        Ok(Some(url))
    }

    /// Checks the configuration and computes its canonical URL parts.
    fn prepare(&self) -> Result<Base, StorageError> {
        let endpoint = &self.endpoint;
        check_base(endpoint, self.allow_insecure_http)?;
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(StorageError::InvalidS3Config(
                "region: letters, digits, `-`, `_` or `.`, not empty",
            ));
        }
        if self.access_key_id.is_empty()
            || !self
                .access_key_id
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/')
        {
            return Err(StorageError::InvalidS3Config(
                "access key ID: visible ASCII without `/`, not empty",
            ));
        }
        if self.secret_empty {
            return Err(StorageError::InvalidS3Config(
                "secret access key: must not be empty",
            ));
        }
        bucket_rule(&self.bucket).map_err(StorageError::InvalidS3Config)?;
        let host = endpoint.host_str().ok_or(StorageError::InvalidBaseUrl)?;
        let port = endpoint.port().map(|p| format!(":{p}")).unwrap_or_default();
        let mut prefix = canonical_prefix(endpoint.path());
        let host = if self.path_style {
            let b = self.bucket.as_str();
            prefix.push('/');
            encode_into(&mut prefix, b.as_bytes());
            format!("{host}{port}")
        } else {
            if !matches!(endpoint.host(), Some(url::Host::Domain(_))) {
                return Err(StorageError::InvalidS3Config(
                    "endpoint: virtual-hosted style needs a domain name, not an IP address (use path style)",
                ));
            }
            format!("{}.{host}{port}", self.bucket)
        };
        key_prefix_rule(&self.key_prefix).map_err(StorageError::InvalidS3Config)?;
        let public = match &self.public_get_base {
            Some(url) => Some(
                public_base(url, self.allow_insecure_http)
                    .map_err(StorageError::InvalidS3Config)?,
            ),
            None => None,
        };
        Ok(Base {
            scheme: endpoint.scheme().to_owned(),
            host,
            prefix,
            public,
        })
    }

    /// Signs one request: canonical request, string to sign, signature, URL. `extra` are query
    /// parameters signed along with the `X-Amz-*` ones (the `response-*` overrides).
    fn presign(
        &self,
        method: &str,
        key: &str,
        now: OffsetDateTime,
        expires_in: Duration,
        headers: SignedHeaders<'_>,
        extra: &[(&str, &str)],
    ) -> Result<Presigned, StorageError> {
        let base = self.base.as_ref().map_err(Clone::clone)?;
        check_key(key)?;
        let mut path = String::with_capacity(base.prefix.len() + 3 * key.len() + 1);
        path.push_str(&base.prefix);
        push_key_path(&mut path, key);
        self.sign_path(base, method, &path, now, expires_in, headers, extra)
    }

    /// Signs one request for an encoded `path` (an object's, or the bucket's for a listing).
    #[allow(clippy::too_many_arguments)]
    fn sign_path<'a>(
        &self,
        base: &'a Base,
        method: &str,
        path: &str,
        now: OffsetDateTime,
        expires_in: Duration,
        mut headers: SignedHeaders<'a>,
        extra: &[(&str, &str)],
    ) -> Result<Presigned, StorageError> {
        use core::fmt::Write as _;
        let expires = expires_seconds(expires_in)?;
        now.checked_add(expires_in)
            .ok_or(StorageError::InvalidExpiry)?;
        let ts = Timestamp::new(now)?;
        headers.insert("host", &base.host);
        let day = self.keys.get(ts.day, || {
            let scope = scope(ts.date(), &self.region);
            let mut credential = String::with_capacity(self.access_key_id.len() + 3 * 40);
            encode_into(&mut credential, self.access_key_id.as_bytes());
            credential.push_str("%2F");
            encode_into(&mut credential, scope.as_bytes());
            DayKey {
                key: signing_key(&self.root, ts.date(), &self.region),
                scope,
                credential,
            }
        });

        // The canonical query, written in order: the `X-Amz-*` names sort as listed here,
        // and before every extra parameter (all lower-case, so after `X`).
        let mut query = String::with_capacity(320);
        query.push_str("X-Amz-Algorithm=");
        query.push_str(ALGORITHM);
        query.push_str("&X-Amz-Credential=");
        query.push_str(&day.credential);
        query.push_str("&X-Amz-Date=");
        query.push_str(ts.amz_date());
        // Writing to a String cannot fail.
        let _ = write!(query, "&X-Amz-Expires={expires}");
        // S3 signs the session token: it is part of the canonical query string.
        if let Some(token) = &self.session_token {
            query.push_str("&X-Amz-Security-Token=");
            encode_into(&mut query, token.as_bytes());
        }
        query.push_str("&X-Amz-SignedHeaders=");
        headers.push_names(&mut query, "%3B");
        if !extra.is_empty() {
            // The extra parameters of this crate (`response-*`, `list-type`, `prefix`, …) are
            // lower-case, so they sort after every `X-Amz-*` name.
            if !extra
                .iter()
                .all(|(n, _)| n.starts_with(|c: char| c.is_ascii_lowercase()))
            {
                return Err(StorageError::Unsupported(
                    "extra query parameters must have lower-case names",
                ));
            }
            let mut sorted = extra.to_vec();
            sorted.sort_unstable();
            for (name, value) in sorted {
                query.push('&');
                encode_into(&mut query, name.as_bytes());
                query.push('=');
                encode_into(&mut query, value.as_bytes());
            }
        }

        let canonical_request = canonical_request(method, path, &query, &headers);
        let string_to_sign = string_to_sign(ts.amz_date(), &day.scope, &canonical_request);
        let signature = signature(&day.key, &string_to_sign);

        let mut text = String::with_capacity(
            base.scheme.len() + base.host.len() + path.len() + query.len() + 96,
        );
        for part in [
            &base.scheme,
            "://",
            &base.host,
            path,
            "?",
            &query,
            "&X-Amz-Signature=",
            &signature,
        ] {
            text.push_str(part);
        }
        let url = Url::parse(&text).map_err(|_| StorageError::InvalidBaseUrl)?;
        // The URL must carry exactly the signed path, or the store would compute another one.
        if url.path() != path {
            return Err(StorageError::InvalidKey(
                "the key does not survive URL normalisation",
            ));
        }
        Ok(Presigned {
            url,
            canonical_request,
            string_to_sign,
            signature,
        })
    }
}

impl StorageBackend for S3Store {
    fn validate(&self) -> Result<(), StorageError> {
        S3Store::validate(self)
    }

    /// A presigned PUT for [`UploadGrant::key`] valid until [`UploadGrant::put_expires`],
    /// binding the grant's size, content type (`application/octet-stream` when none), MD5 and
    /// SHA-256; and a presigned GET valid until [`UploadGrant::get_expires`], capped at 7 days,
    /// serving the normalised type inline or as an attachment by the store's [`InlinePolicy`].
    ///
    /// # Errors
    /// [`StorageError::SizeRequired`] when the grant has no declared size, and those of
    /// [`S3Store::presign_put`].
    fn issue_upload(&self, grant: &UploadGrant) -> Result<UploadTarget, StorageError> {
        // A presigned PUT cannot sign a length range: without the exact size, the body would
        // be unlimited (issue 11, finding c).
        let size = grant.size().ok_or(StorageError::SizeRequired)?;
        let now = grant.now();
        let binding = PutBinding {
            content_length: Some(size),
            // Signed as the client gave it (its PUT carries that string); without a type, the
            // one the service checked against the allow-list.
            content_type: Some(
                grant
                    .content_type()
                    .map_or(OCTET_STREAM, ContentType::as_given),
            ),
            content_md5: grant.md5().copied(),
            // XEP-0363 clients cannot be told to send `x-amz-checksum-sha256`: bind the hash
            // only where the required headers reach the client (p1 results list them).
            sha256: grant
                .sha256()
                .copied()
                .filter(|_| grant.client_sends_required_headers()),
        };
        // The object key: the service's suggestion under the store's prefix.
        let key = format!("{}{}", self.key_prefix, grant.key());
        let (put_url, required) =
            self.presign_put(&key, now, grant.put_expires() - now, &binding)?;
        let get_url = match self.public_url(&key)? {
            Some(url) => url,
            None => self.presign_download(
                &key,
                now,
                capped(grant.get_expires(), now),
                grant.content_type(),
                grant.filename().as_str(),
            )?,
        };
        let mut target = UploadTarget::new(put_url, get_url, key);
        for (name, value) in &required {
            target = target.with_required_header(name, value);
        }
        Ok(target)
    }

    /// A presigned GET for [`DownloadGrant::key`] valid until [`DownloadGrant::expires`],
    /// capped at 7 days. The type is not known here: the file is served as an
    /// `application/octet-stream` attachment named after the key's last segment.
    fn issue_download(&self, grant: &DownloadGrant) -> Result<Url, StorageError> {
        let key = grant.key();
        let filename = key.rsplit('/').next().unwrap_or(key);
        self.presign_download(
            key,
            grant.now(),
            capped(Some(grant.expires()), grant.now()),
            None,
            filename,
        )
    }
}

/// The lifetime until `expires`, at most 7 days (`None`: 7 days).
fn capped(expires: Option<OffsetDateTime>, now: OffsetDateTime) -> Duration {
    match expires {
        Some(t) => (t - now).min(MAX_EXPIRES),
        None => MAX_EXPIRES,
    }
}

/// The headers a PUT binding signs: (signed name, header name, normalised value), each also
/// a header the PUT must send.
fn put_headers(
    binding: &PutBinding<'_>,
) -> Result<Vec<(&'static str, &'static str, String)>, StorageError> {
    let mut bound = Vec::with_capacity(4);
    if let Some(len) = binding.content_length {
        bound.push(("content-length", "Content-Length", len.to_string()));
    }
    if let Some(ct) = binding.content_type {
        if !is_header_value(ct) {
            return Err(StorageError::Unsupported(
                "the content type is not a valid HTTP header value",
            ));
        }
        let value = normalize_header_value(ct).into_owned();
        bound.push(("content-type", "Content-Type", value));
    }
    if let Some(md5) = &binding.content_md5 {
        bound.push(("content-md5", "Content-MD5", BASE64.encode(md5)));
    }
    if let Some(sha256) = &binding.sha256 {
        bound.push((
            "x-amz-checksum-sha256",
            "x-amz-checksum-sha256",
            BASE64.encode(sha256),
        ));
    }
    Ok(bound)
}

/// Whether `value` can travel as a header value: visible ASCII, spaces and tabs, not blank.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        && !value.trim_matches([' ', '\t']).is_empty()
}

/// `X-Amz-Expires` in whole seconds (truncated, so the URL never outlives the request).
fn expires_seconds(expires_in: Duration) -> Result<u64, StorageError> {
    let seconds =
        u64::try_from(expires_in.whole_seconds()).map_err(|_| StorageError::InvalidExpiry)?;
    if seconds == 0 {
        return Err(StorageError::InvalidExpiry);
    }
    if seconds > MAX_EXPIRES_SECONDS {
        return Err(StorageError::ExpiryTooLong {
            max_seconds: MAX_EXPIRES_SECONDS,
        });
    }
    Ok(seconds)
}

/// Keys S3 can store and a URL can carry unchanged.
fn check_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() {
        return Err(StorageError::InvalidKey("empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::InvalidKey("longer than 1024 bytes"));
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err(StorageError::InvalidKey("`.` or `..` path segment"));
    }
    Ok(())
}

/// [`S3Store::key_prefix`]'s rules: at most 512 bytes, no leading `/`, no empty, `.` or `..`
/// segment (a trailing `/` is the one empty segment allowed), no control character.
fn key_prefix_rule(prefix: &str) -> Result<(), &'static str> {
    if prefix.len() > MAX_KEY_PREFIX_BYTES {
        return Err("key prefix: at most 512 bytes");
    }
    if prefix.starts_with('/') {
        return Err("key prefix: must not start with `/`");
    }
    if prefix.chars().any(char::is_control) {
        return Err("key prefix: no control characters");
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if !prefix.is_empty()
        && body
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("key prefix: no empty, `.` or `..` segment");
    }
    Ok(())
}

/// [`S3Store::public_get_base`]'s rules, and its canonical text `scheme://host[:port]/path`
/// (path segments re-encoded the S3 way, no trailing `/`).
fn public_base(url: &Url, allow_http: bool) -> Result<String, &'static str> {
    if url.cannot_be_a_base() {
        return Err("public GET base: must be a hierarchical http(s) URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("public GET base: must not carry user info");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("public GET base: must not have a query or a fragment");
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_http || super::urls::is_loopback(url) => {}
        _ => {
            return Err(
                "public GET base: must be https (plain http only on loopback or with allow_insecure_http)",
            )
        }
    }
    let host = url.host_str().ok_or("public GET base: must have a host")?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "{}://{host}{port}{}",
        url.scheme(),
        canonical_prefix(url.path())
    ))
}

/// A bucket name usable as a DNS label prefix (virtual-hosted style): 3 to 63 characters of
/// `a-z`, `0-9`, `-` and `.`, starting and ending with a letter or digit, no empty label.
/// S3's bucket naming rules (AWS "Bucket naming rules", general purpose buckets): 3 to 63
/// characters of lowercase letters, digits, `-` and `.`, starting and ending with a letter or
/// digit, no `..`, not an IPv4 address. The same rules hold in path style: S3-compatible
/// stores (MinIO, Ceph RGW) enforce them too.
fn bucket_rule(bucket: &str) -> Result<(), &'static str> {
    let b = bucket.as_bytes();
    let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&b.len()) {
        return Err("bucket: 3 to 63 characters");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.'))
    {
        return Err("bucket: only lowercase letters, digits, `-` and `.`");
    }
    if !edge(b.first()) || !edge(b.last()) {
        return Err("bucket: must start and end with a lowercase letter or digit");
    }
    if bucket.contains("..") {
        return Err("bucket: no two adjacent dots");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("bucket: must not look like an IPv4 address");
    }
    Ok(())
}
