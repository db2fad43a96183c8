//! Issuing: signed PUT URLs (every binding in the query, one MAC over all of them) and the
//! path-signed GET URLs.

use base64::Engine as _;
use time::OffsetDateTime;
use url::Url;

use super::{SignedUrlStore, B64URL, QUERY_VALUE, VERSION};
use crate::checked::{encode_md5, ContentType, FileName};
use crate::crypto::hex;
use crate::storage::{
    check_base, DownloadGrant, StorageBackend, StorageError, UploadGrant, UploadTarget,
};

impl SignedUrlStore {
    /// `{base}/{id}/{name}?` as a string, each segment percent-encoded (everything but RFC 3986
    /// unreserved characters), ready for the query: the URL is parsed once, at the end.
    fn object_url_prefix(&self, key: &str) -> Result<String, StorageError> {
        let (id, name) =
            split_key(key).ok_or(StorageError::InvalidKey("not {slot id}/{file name}"))?;
        let mut out = self.url_start(key.len() + 160)?;
        out.push_str(id);
        out.push('/');
        crate::storage::urls::push_segment(&mut out, name.as_bytes());
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
        crate::storage::check_key_len(self.key.len())?;
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
        crate::storage::urls::push_segment(&mut url, name.as_bytes());
        Url::parse(&url).map_err(|_| StorageError::InvalidBaseUrl)
    }
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
        crate::storage::check_key_len(self.key.len())?;
        check_base(&self.base, self.allow_http)
    }

    fn issue_upload(&self, grant: &UploadGrant) -> Result<UploadTarget, StorageError> {
        // Fail closed whichever constructor was used: `new` checks nothing.
        crate::storage::check_key_len(self.key.len())?;
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
