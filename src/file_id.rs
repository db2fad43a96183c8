//! File IDs: opaque, unforgeable names for stored files that any node holding the service
//! secret can resolve, without shared state.
//!
//! A file ID is the base64url (no padding) of `version (1 byte) ‖ AES-SIV(plaintext)`, sealed
//! with AES-256-CMAC-SIV (RFC 5297, RustCrypto's `aes-siv`): deterministic and
//! misuse-resistant authenticated encryption, so no nonce is needed and the same input always
//! gives the same ID.
//!
//! * the plaintext is `issued-at (8 bytes, big-endian Unix seconds) ‖ owner length (2 bytes)
//!   ‖ owner (the uploader's bare JID) ‖ object key (UTF-8)`;
//! * the associated data is a fixed label and the version byte;
//! * the 512-bit SIV key is derived from the service secret for this purpose only.
//!
//! Changing any bit makes decryption fail, and neither the object key (slot ID, file name)
//! nor the owner can be read out of the ID. IDs made under a previous secret still resolve
//! while that secret is configured as previous.

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit as _;
use base64::Engine as _;
use jid::BareJid;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::crypto::SecretKey;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const VERSION: u8 = 3;
const LABEL: &[u8] = b"xmpp-upload file id";
/// Longest accepted file ID, in characters (object keys are short; this bounds the work a
/// hostile ID can cause).
pub const MAX_FILE_ID_LEN: usize = 1024;

/// Why a file ID was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileIdError {
    /// Not a file ID of this service: malformed, altered, or made with another secret.
    #[error("unknown file ID")]
    Unknown,
    /// A genuine file ID past its lifetime.
    #[error("expired file ID")]
    Expired,
}

/// A verified file ID's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedFileId {
    /// The object key it names.
    pub key: String,
    /// Who uploaded the file.
    pub owner: BareJid,
    /// When it was issued.
    pub issued: OffsetDateTime,
}

/// The SIV key of one secret (wiped on drop).
#[derive(Clone)]
/// `None` when the secret is shorter than [`MIN_KEY_LEN`](crate::storage::MIN_KEY_LEN): such a
/// secret seals and opens nothing, whichever constructor the service was built with.
struct Keys(Option<Zeroizing<[u8; 64]>>);

impl core::fmt::Debug for Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    fn new(secret: &SecretKey) -> Self {
        if secret.len() < crate::storage::MIN_KEY_LEN {
            return Self(None);
        }
        let mut k = Zeroizing::new([0u8; 64]);
        let (mac, enc) = k.split_at_mut(32);
        mac.copy_from_slice(&*secret.derive_bytes("file-id siv mac"));
        enc.copy_from_slice(&*secret.derive_bytes("file-id siv enc"));
        Self(Some(k))
    }

    fn cipher(&self) -> Option<Aes256Siv> {
        Aes256Siv::new_from_slice(&self.0.as_ref()?[..]).ok()
    }
}

/// Seals and opens file IDs with the current secret and any previous ones.
#[derive(Debug, Clone)]
pub(crate) struct FileIdSealer {
    current: Keys,
    previous: Vec<Keys>,
}

impl FileIdSealer {
    pub(crate) fn new(current: &SecretKey, previous: &[SecretKey]) -> Self {
        Self {
            current: Keys::new(current),
            previous: previous.iter().map(Keys::new).collect(),
        }
    }

    /// Seals `key`, uploaded by `owner`, issued at `issued`. `None` only when the owner does
    /// not fit the format (a bare JID longer than 65,535 bytes, which `jid` never produces).
    pub(crate) fn seal(
        &self,
        key: &str,
        owner: &BareJid,
        issued: OffsetDateTime,
    ) -> Option<String> {
        let owner = owner.as_str().as_bytes();
        let owner_len = u16::try_from(owner.len()).ok()?;
        let mut plaintext = Zeroizing::new(Vec::with_capacity(10 + owner.len() + key.len()));
        plaintext.extend_from_slice(&issued.unix_timestamp().to_be_bytes());
        plaintext.extend_from_slice(&owner_len.to_be_bytes());
        plaintext.extend_from_slice(owner);
        plaintext.extend_from_slice(key.as_bytes());
        let sealed = self
            .current
            .cipher()?
            .encrypt([LABEL, &[VERSION]], &plaintext)
            .ok()?;
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&sealed);
        Some(B64URL.encode(out))
    }

    /// Opens an ID; `lifetime` bounds its age when set.
    pub(crate) fn open(
        &self,
        id: &str,
        now: OffsetDateTime,
        lifetime: Option<time::Duration>,
    ) -> Result<ResolvedFileId, FileIdError> {
        if id.len() > MAX_FILE_ID_LEN {
            return Err(FileIdError::Unknown);
        }
        let buf = B64URL.decode(id).map_err(|_| FileIdError::Unknown)?;
        let (version, sealed) = buf.split_first().ok_or(FileIdError::Unknown)?;
        if *version != VERSION {
            return Err(FileIdError::Unknown);
        }
        let plaintext = std::iter::once(&self.current)
            .chain(&self.previous)
            .find_map(|keys| keys.cipher()?.decrypt([LABEL, &[VERSION]], sealed).ok())
            .map(Zeroizing::new)
            .ok_or(FileIdError::Unknown)?;
        let secs = plaintext
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .ok_or(FileIdError::Unknown)?;
        let issued = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| FileIdError::Unknown)?;
        let owner_len = plaintext
            .get(8..10)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| usize::from(u16::from_be_bytes(b)))
            .ok_or(FileIdError::Unknown)?;
        let owner = plaintext
            .get(10..10 + owner_len)
            .and_then(|o| std::str::from_utf8(o).ok())
            .and_then(|o| BareJid::new(o).ok())
            .ok_or(FileIdError::Unknown)?;
        let key = plaintext
            .get(10 + owner_len..)
            .and_then(|k| std::str::from_utf8(k).ok())
            .filter(|k| !k.is_empty())
            .ok_or(FileIdError::Unknown)?
            .to_owned();
        if let Some(life) = lifetime {
            if issued.checked_add(life).is_none_or(|end| now >= end) {
                return Err(FileIdError::Expired);
            }
        }
        Ok(ResolvedFileId { key, owner, issued })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn romeo() -> BareJid {
        "romeo@montague.tld".parse().unwrap()
    }

    #[test]
    fn seal_open_rotate_expire() {
        let old = SecretKey::new("old secret, 16+ bytes");
        let new = SecretKey::new("new secret, 16+ bytes");
        let s_old = FileIdSealer::new(&old, &[]);
        let s_new = FileIdSealer::new(&new, std::slice::from_ref(&old));
        let id = s_old.seal("ab/c.jpg", &romeo(), now()).unwrap();
        let opened = s_new.open(&id, now(), None).unwrap();
        assert_eq!(
            (opened.key.as_str(), &opened.owner, opened.issued),
            ("ab/c.jpg", &romeo(), now())
        );
        assert_eq!(
            FileIdSealer::new(&new, &[]).open(&id, now(), None),
            Err(FileIdError::Unknown)
        );
        assert_eq!(
            s_old.open(
                &id,
                now() + time::Duration::days(2),
                Some(time::Duration::days(1))
            ),
            Err(FileIdError::Expired)
        );
    }

    #[test]
    fn neither_key_nor_owner_can_be_read_out_of_the_id() {
        let s = FileIdSealer::new(&SecretKey::new("a secret of 16+ bytes"), &[]);
        let id = s.seal("0123abcd/secret-name.jpg", &romeo(), now()).unwrap();
        let raw = B64URL.decode(&id).unwrap();
        assert!(!raw.windows(11).any(|w| w == b"secret-name"));
        assert!(!raw.windows(5).any(|w| w == b"romeo"));
        assert!(!id.contains("secret") && !id.contains("romeo"));
        // Deterministic: the same key, owner and time give the same ID (no randomness needed).
        assert_eq!(
            s.seal("0123abcd/secret-name.jpg", &romeo(), now()).unwrap(),
            id
        );
        assert_ne!(
            s.seal(
                "0123abcd/secret-name.jpg",
                &romeo(),
                now() + time::Duration::SECOND
            )
            .unwrap(),
            id
        );
        assert_ne!(
            s.seal(
                "0123abcd/secret-name.jpg",
                &"juliet@capulet.tld".parse().unwrap(),
                now()
            )
            .unwrap(),
            id
        );
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let s = FileIdSealer::new(&SecretKey::new("a secret of 16+ bytes"), &[]);
        let raw = B64URL
            .decode(s.seal("0123/x.bin", &romeo(), now()).unwrap())
            .unwrap();
        for i in 0..raw.len() * 8 {
            let mut m = raw.clone();
            m[i / 8] ^= 1 << (i % 8);
            assert!(s.open(&B64URL.encode(&m), now(), None).is_err(), "bit {i}");
        }
        // Truncations and extensions too.
        for n in 0..raw.len() {
            assert!(
                s.open(&B64URL.encode(&raw[..n]), now(), None).is_err(),
                "len {n}"
            );
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert!(s.open(&B64URL.encode(&longer), now(), None).is_err());
    }
}
