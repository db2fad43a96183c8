//! XEP-0448: Encryption for Stateless File Sharing (`urn:xmpp:esfs:0`), the `<encrypted/>`
//! source.
//!
//! ```xml
//! <encrypted xmlns='urn:xmpp:esfs:0' cipher='urn:xmpp:ciphers:aes-256-gcm-nopadding:0'>
//!   <key>base64</key><iv>base64</iv>
//!   <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>…of the encrypted file…</hash>
//!   <sources xmlns='urn:xmpp:sfs:0'><url-data xmlns='http://jabber.org/protocol/url-data' target='…'/></sources>
//! </encrypted>
//! ```
//!
//! The key travels in this element: send it only inside end-to-end encrypted XML (OMEMO 2's
//! SCE). The key is held in a [`Key`] that is wiped on drop and never printed by `Debug`.
//! This module only reads and writes the element; it does no cryptography. Key and IV lengths
//! are not checked when reading (see [`Cipher::key_len`]): the decryptor checks them.
//!
//! An `<encrypted/>` inside the `<sources/>` of an `<encrypted/>` is not parsed further: it is
//! kept as [`Source::Other`] when small, so nesting never makes the parser recurse.

use base64::Engine as _;
use minidom::Element;
use xmpp_parsers::hashes::Hash;
use xmpp_parsers::FromElementError;

use super::file_metadata::{hash_element, parse_hash_lenient, MAX_HASHES};
use super::sfs::{parse_source_items, sources_element, Source};
use super::{from_owned, ParseError};
use crate::ns;
use crate::xml::{child, el, text_el, with};

/// The cipher of an encrypted source, by its XEP-0448 URN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cipher {
    /// `urn:xmpp:ciphers:aes-128-gcm-nopadding:0`: 16-byte key, 12-byte IV.
    Aes128GcmNoPadding,
    /// `urn:xmpp:ciphers:aes-256-gcm-nopadding:0`: 32-byte key, 12-byte IV.
    Aes256GcmNoPadding,
    /// `urn:xmpp:ciphers:aes-256-cbc-pkcs7:0`: 32-byte key, 16-byte IV (QXmpp's default).
    Aes256CbcPkcs7,
    /// Any other URN, kept as written.
    Other(String),
}

impl Cipher {
    /// The URN of AES-128-GCM without padding.
    pub const AES_128_GCM: &'static str = "urn:xmpp:ciphers:aes-128-gcm-nopadding:0";
    /// The URN of AES-256-GCM without padding.
    pub const AES_256_GCM: &'static str = "urn:xmpp:ciphers:aes-256-gcm-nopadding:0";
    /// The URN of AES-256-CBC with PKCS#7 padding.
    pub const AES_256_CBC: &'static str = "urn:xmpp:ciphers:aes-256-cbc-pkcs7:0";

    /// The cipher named by a URN (exact match; anything else is [`Cipher::Other`]).
    ///
    /// ```
    /// use xmpp_upload::stanza::esfs::Cipher;
    /// let c = Cipher::from_urn("urn:xmpp:ciphers:aes-256-gcm-nopadding:0");
    /// assert_eq!(c, Cipher::Aes256GcmNoPadding);
    /// assert_eq!(c.urn(), "urn:xmpp:ciphers:aes-256-gcm-nopadding:0");
    /// assert_eq!((c.key_len(), c.iv_len()), (Some(32), Some(12)));
    /// ```
    #[must_use]
    pub fn from_urn(urn: &str) -> Self {
        match urn {
            Self::AES_128_GCM => Cipher::Aes128GcmNoPadding,
            Self::AES_256_GCM => Cipher::Aes256GcmNoPadding,
            Self::AES_256_CBC => Cipher::Aes256CbcPkcs7,
            other => Cipher::Other(other.to_owned()),
        }
    }

    /// The URN written in `cipher=`.
    #[must_use]
    pub fn urn(&self) -> &str {
        match self {
            Cipher::Aes128GcmNoPadding => Self::AES_128_GCM,
            Cipher::Aes256GcmNoPadding => Self::AES_256_GCM,
            Cipher::Aes256CbcPkcs7 => Self::AES_256_CBC,
            Cipher::Other(urn) => urn,
        }
    }

    /// The key length in bytes, for the known ciphers.
    #[must_use]
    pub fn key_len(&self) -> Option<usize> {
        match self {
            Cipher::Aes128GcmNoPadding => Some(16),
            Cipher::Aes256GcmNoPadding | Cipher::Aes256CbcPkcs7 => Some(32),
            Cipher::Other(_) => None,
        }
    }

    /// The IV length in bytes, for the known ciphers.
    #[must_use]
    pub fn iv_len(&self) -> Option<usize> {
        match self {
            Cipher::Aes128GcmNoPadding | Cipher::Aes256GcmNoPadding => Some(12),
            Cipher::Aes256CbcPkcs7 => Some(16),
            Cipher::Other(_) => None,
        }
    }
}

/// Key bytes: wiped when dropped, compared in constant time, never shown by `Debug`.
#[derive(Clone, Default)]
pub struct Key(Vec<u8>);

impl Key {
    /// Wraps key bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Key {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Key(<{} bytes>)", self.0.len())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl Eq for Key {}

impl Drop for Key {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// With the `service` feature, `zeroize` (volatile writes); without it, zeroes written and
/// then passed through `black_box` so the writes are not removed as dead.
fn wipe(bytes: &mut Vec<u8>) {
    #[cfg(feature = "service")]
    zeroize::Zeroize::zeroize(bytes);
    #[cfg(not(feature = "service"))]
    {
        bytes.fill(0);
        std::hint::black_box(bytes.as_slice());
    }
}

/// `<encrypted xmlns='urn:xmpp:esfs:0' cipher=…>`: a source whose bytes are the file
/// encrypted with `key` and `iv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncryptedSource {
    /// The cipher.
    pub cipher: Cipher,
    /// The key (`<key>`, base64 on the wire).
    pub key: Key,
    /// The IV (`<iv>`, base64 on the wire).
    pub iv: Vec<u8>,
    /// Hashes of the *encrypted* file (the `<file/>` metadata hashes the plaintext).
    pub hashes: Vec<Hash>,
    /// Where the encrypted file is: the items of the inner `<sources/>`.
    pub sources: Vec<Source>,
}

impl EncryptedSource {
    /// Parses an `<encrypted/>`: `cipher`, `<key>` and `<iv>` are required (base64).
    pub fn parse(e: &Element) -> Result<Self, ParseError> {
        if !e.is("encrypted", ns::ESFS) {
            return Err(ParseError::unexpected("an XEP-0448 <encrypted/>", e));
        }
        let cipher = Cipher::from_urn(
            e.attr("cipher")
                .ok_or(ParseError::MissingAttribute("cipher"))?
                .trim(),
        );
        let b64 = |name: &'static str| -> Result<Vec<u8>, ParseError> {
            let text: String = child(e, name, ns::ESFS)
                .ok_or(ParseError::MissingChild(name))?
                .text()
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| ParseError::InvalidValue(name))
        };
        let key = Key(b64("key")?);
        let iv = b64("iv")?;
        let hashes = e
            .children()
            .filter(|c| c.is("hash", ns::HASHES))
            .filter_map(parse_hash_lenient)
            .take(MAX_HASHES)
            .collect();
        let sources = child(e, "sources", ns::SFS)
            .map(|s| parse_source_items(s, false))
            .unwrap_or_default();
        Ok(Self {
            cipher,
            key,
            iv,
            hashes,
            sources,
        })
    }

    /// Builds the `<encrypted/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut e = with(el("encrypted", ns::ESFS), "cipher", self.cipher.urn());
        e.append_child(text_el("key", ns::ESFS, b64(self.key.as_bytes())));
        e.append_child(text_el("iv", ns::ESFS, b64(&self.iv)));
        for h in &self.hashes {
            e.append_child(hash_element(h));
        }
        e.append_child(sources_element(None, &self.sources));
        e
    }
}

impl TryFrom<&Element> for EncryptedSource {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers)).
impl TryFrom<Element> for EncryptedSource {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, Self::parse)
    }
}

impl From<&EncryptedSource> for Element {
    fn from(s: &EncryptedSource) -> Element {
        s.to_element()
    }
}

impl From<EncryptedSource> for Element {
    fn from(s: EncryptedSource) -> Element {
        s.to_element()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let k = Key::new(vec![0x41; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "Key(<32 bytes>)");
        assert_ne!(k, Key::new(vec![0x41; 31]));
        assert_ne!(k, Key::new(vec![0x42; 32]));
        assert_eq!(k, Key::new(vec![0x41; 32]));
    }
}
