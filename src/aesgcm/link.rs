//! The `aesgcm://` link of XEP-0454: an HTTPS GET URL whose scheme reads `aesgcm` and whose
//! fragment carries the IV and the key in hex.

use core::fmt;
use core::str::FromStr;

use url::Url;
use zeroize::Zeroizing;

use super::{Iv, LinkError, KEY_LEN};
use crate::redact::RedactedUrl;

/// An `aesgcm://` link (XEP-0454 OMEMO Media Sharing): where to fetch the encrypted file, and
/// the AES-256-GCM key and IV that open it.
///
/// ```text
/// aesgcm://download.montague.tld/4a77…/tr%C3%A8s%20cool.jpg#8c3d050e9386ec173861778f68e9af38…f587
///          └─ the HTTPS GET URL, scheme swapped ─────────┘ └─ IV (12 bytes) ─────┘└─ key (32 bytes)
/// ```
///
/// * [`FromStr`] accepts 12-byte IVs (88 hex digits of fragment, what every client sends
///   since 2020) and the legacy 16-byte IVs (96 hex digits), in either case.
/// * [`Display`](fmt::Display) writes the canonical form: lowercase hex, the IV as long as it
///   was (new links have 12-byte IVs, a parsed 16-byte link is written back unchanged).
///   **It contains the key**: send it only inside an end-to-end encrypted message body (the
///   whole body, one line), never in an OOB element, a log or an HTTP request.
/// * [`Debug`](fmt::Debug) shows neither the key nor the IV, and hides the GET URL's query.
/// * [`AesGcmUrl::https_url`] is what to fetch, without the fragment.
///
/// ```
/// use xmpp_upload::aesgcm::AesGcmUrl;
///
/// let link: AesGcmUrl = "aesgcm://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/\
///     tr%C3%A8s%20cool.jpg#8c3d050e9386ec173861778f68e9af38a97aaf82faa4063b4d0878a6\
///     1261534410c8a84331eaac851759f587".parse()?;
/// assert_eq!(link.https_url().as_str(),
///     "https://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg");
/// assert_eq!(link.iv().as_bytes().len(), 12);
/// assert!(!format!("{link:?}").contains("68e9af38"));
/// # Ok::<(), xmpp_upload::aesgcm::LinkError>(())
/// ```
#[derive(Clone)]
pub struct AesGcmUrl {
    /// The GET URL: https, no fragment.
    https: Url,
    iv: Iv,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl AesGcmUrl {
    /// The link for a file uploaded to `get` (the slot's GET URL) and encrypted with `key`
    /// and a 12-byte `iv`.
    ///
    /// Only `https` URLs can become `aesgcm` links (XEP-0454 §3), and the URL must not have a
    /// fragment already (the fragment is where the key goes).
    ///
    /// ```
    /// use xmpp_upload::aesgcm::{AesGcmUrl, LinkError};
    /// use xmpp_upload::url::Url;
    ///
    /// let get = Url::parse("https://files.montague.tld/a/b.jpg")?;
    /// let link = AesGcmUrl::new(&get, [7; 32], [1; 12])?;
    /// assert!(link.to_string().starts_with("aesgcm://files.montague.tld/a/b.jpg#010101"));
    ///
    /// let http = Url::parse("http://files.montague.tld/a/b.jpg")?;
    /// assert_eq!(AesGcmUrl::new(&http, [7; 32], [1; 12]), Err(LinkError::NotHttps));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(get: &Url, key: [u8; KEY_LEN], iv: [u8; 12]) -> Result<Self, LinkError> {
        let key = Zeroizing::new(key);
        Self::checked(get, Iv::Standard(iv), key)
    }

    /// Like [`AesGcmUrl::new`], with any [`Iv`] (a 16-byte one only to re-create a legacy
    /// link; new links should use 12 bytes, which every client accepts).
    pub fn with_iv(get: &Url, key: [u8; KEY_LEN], iv: Iv) -> Result<Self, LinkError> {
        Self::checked(get, iv, Zeroizing::new(key))
    }

    /// A link for `get` with a fresh random key and 12-byte IV from `rng` (any
    /// cryptographically secure `rand_core` 0.10 generator, for example `rand::rngs::OsRng`
    /// or `getrandom::SysRng`; this crate itself never reads a system RNG).
    ///
    /// ```
    /// use xmpp_upload::aesgcm::{AesGcmUrl, Encryptor};
    /// # struct Fixed(u8);
    /// # impl rand_core::TryRng for Fixed {
    /// #     type Error = core::convert::Infallible;
    /// #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(self.0.into()) }
    /// #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { Ok(self.0.into()) }
    /// #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { d.fill(self.0); Ok(()) }
    /// # }
    /// # impl rand_core::TryCryptoRng for Fixed {}
    /// # let mut rng = Fixed(9);
    /// let get = "https://files.montague.tld/a/b.jpg".parse()?;
    /// let link = AesGcmUrl::generate(&get, &mut rng)?;
    /// let mut enc = Encryptor::for_link(&link);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generate<R>(get: &Url, rng: &mut R) -> Result<Self, LinkError>
    where
        R: rand_core::TryCryptoRng + ?Sized,
    {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let mut iv = [0u8; 12];
        rng.try_fill_bytes(key.as_mut_slice())
            .map_err(|_| LinkError::Rng)?;
        rng.try_fill_bytes(&mut iv).map_err(|_| LinkError::Rng)?;
        Self::checked(get, Iv::Standard(iv), key)
    }

    fn checked(get: &Url, iv: Iv, key: Zeroizing<[u8; KEY_LEN]>) -> Result<Self, LinkError> {
        if get.scheme() != "https" {
            return Err(LinkError::NotHttps);
        }
        if get.fragment().is_some() {
            return Err(LinkError::HasFragment);
        }
        Ok(Self {
            https: get.clone(),
            iv,
            key,
        })
    }

    /// What to fetch: the HTTPS GET URL, without the fragment (sending the fragment to a
    /// server would leak the key).
    #[must_use]
    pub fn https_url(&self) -> Url {
        self.https.clone()
    }

    /// The IV (12 bytes, or 16 for a legacy link).
    pub fn iv(&self) -> &Iv {
        &self.iv
    }

    /// The AES-256 key. Keep it out of logs.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }
}

impl fmt::Display for AesGcmUrl {
    /// The canonical link: `aesgcm` + the GET URL after its scheme + `#` + hex(IV ‖ key),
    /// lowercase. Contains the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rest = self
            .https
            .as_str()
            .strip_prefix("https")
            .unwrap_or_default();
        f.write_str("aesgcm")?;
        f.write_str(rest)?;
        f.write_str("#")?;
        let mut hex = Zeroizing::new([0u8; 2 * (16 + KEY_LEN)]);
        let iv = self.iv.as_bytes();
        let n = 2 * (iv.len() + KEY_LEN);
        let Some(dst) = hex.get_mut(..n) else {
            return Err(fmt::Error);
        };
        let (iv_hex, key_hex) = dst.split_at_mut(2 * iv.len());
        hex::encode_to_slice(iv, iv_hex).map_err(|_| fmt::Error)?;
        hex::encode_to_slice(self.key.as_slice(), key_hex).map_err(|_| fmt::Error)?;
        f.write_str(core::str::from_utf8(dst).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for AesGcmUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesGcmUrl")
            .field("https", &RedactedUrl(&self.https))
            .field("iv_len", &self.iv.as_bytes().len())
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

impl PartialEq for AesGcmUrl {
    /// Same URL, IV and key (the key compared in constant time).
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.https == other.https
            && self.iv == other.iv
            && bool::from(self.key.as_slice().ct_eq(other.key.as_slice()))
    }
}

impl Eq for AesGcmUrl {}

impl FromStr for AesGcmUrl {
    type Err = LinkError;

    /// Reads `aesgcm://…#hex(IV ‖ key)`, with a 12- or 16-byte IV, hex in either case. The
    /// scheme is matched case-insensitively; the rest goes through the URL parser as
    /// `https://…`, so the result is normalised as any `Url` is.
    fn from_str(s: &str) -> Result<Self, LinkError> {
        let (scheme, rest) = s.split_once(':').ok_or(LinkError::NotAesGcm)?;
        if !scheme.eq_ignore_ascii_case("aesgcm") || !rest.starts_with("//") {
            return Err(LinkError::NotAesGcm);
        }
        let (location, fragment) = rest.split_once('#').ok_or(LinkError::MissingFragment)?;
        let iv_len = match fragment.len() {
            88 => 12,
            96 => 16,
            n => return Err(LinkError::FragmentLength(n)),
        };
        let mut bytes = Zeroizing::new([0u8; 16 + KEY_LEN]);
        let dst = bytes
            .get_mut(..iv_len + KEY_LEN)
            .ok_or(LinkError::FragmentLength(fragment.len()))?;
        hex::decode_to_slice(fragment, dst).map_err(|_| LinkError::FragmentNotHex)?;
        let (iv_bytes, key_bytes) = dst.split_at(iv_len);
        let iv = Iv::from_slice(iv_bytes).ok_or(LinkError::FragmentLength(fragment.len()))?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(key_bytes);

        let mut https = String::with_capacity(6 + location.len());
        https.push_str("https:");
        https.push_str(location);
        let url = Url::parse(&https).map_err(LinkError::Url)?;
        Self::checked(&url, iv, key)
    }
}
